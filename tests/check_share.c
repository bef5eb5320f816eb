/* SPDX-License-Identifier: MIT */
/*
 * Handing a segment to another process: mfs_export_fd, mfs_spawn and
 * mfs_attach_inherited, hand-written fork+exec, SCM_RIGHTS with
 * mfs_send/mfs_recv (socketpairs and an unrelated exec'd peer on a named
 * socket), locators, and the death of peers (kill -9 while holding the
 * lock or an attachment).  Every test checks that no descriptor leaks.
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFS_PEER
#error "MFS_PEER (the path of tests/helper-peer) must be defined"
#endif

/* Keys of this run start "t-sh<main pid>-", so main() can sweep /dev/shm. */
static char tag[32];
static char tmproot[256];

#define KEY() mt_key(tag)

#define EXPECT(call, want) MT_EXPECT(call, want)

/* Every test: the same number of open descriptors at the end. */
#define FDS_BEGIN() int fds0_ = mt_count_fds()
#define FDS_END() ck_assert_msg(mt_count_fds() == fds0_,                     \
	"descriptor leak: %d open at the start, %d now", fds0_, mt_count_fds())

#define JUNK ((mfs_segment *)(uintptr_t)0x5a5a5a5a)
#define KILLED (128 + SIGKILL)
#define ATTACH_FAILED(code) (100 - (code)) /* helper-peer's exit status */
#define INC_OFF 1024 /* helper-peer's "inc" counter */
#define GO_OFF  2048 /* helper-peer's "gate" word */
#define INCS    20000

/* _i of the loop tests that run on both kinds of segment. */
enum { MEMFD = 0, SHM = 1 };

/* ------------------------------------------------------------ helpers */

static mfs_segment *mkseg(int kind, const char *key)
{
	mfs_options o = { kind == MEMFD ? MFS_BACKEND_MEMFD : MFS_BACKEND_SHM, 0, 0, NULL };
	mfs_segment *s = JUNK;

	EXPECT(mfs_create(key, 8192, &o, &s), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

static mfs_stat stat_of(mfs_segment *s)
{
	mfs_stat st;

	EXPECT(mfs_stat_segment(s, &st), 0);
	return st;
}

/* A path through which mfs_inspect_path sees @s. */
static const char *path_of(mfs_segment *s)
{
	return mt_proc_fd((long)getpid(), mfs_fd(s));
}

static void expect_line(int fd, const char *want)
{
	const char *line = mt_read_line(fd, 5000);

	ck_assert_msg(line && strcmp(line, want) == 0, "peer said %s%s%s, not \"%s\"",
	              line ? "\"" : "", line ? line : "nothing", line ? "\"" : "", want);
}

/* argv for helper-peer: MFS_PEER, then @args. */
static void peer_argv(const char **argv, const char *const *args)
{
	int n = 0;

	argv[n++] = MFS_PEER;
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
}

/*
 * fork + exec helper-peer with @args (after argv[0]), inheriting nothing
 * of ours except @keep (close-on-exec cleared in the child; -1: none).
 * @to / @from (may be NULL): our ends of pipes on its stdin / stdout.
 */
static pid_t peer(const char *const *args, int keep, int *to, int *from)
{
	return mt_exec_peer(MFS_PEER, args, keep, to, from);
}

/* Put @fd on descriptor @target for the duration of a spawn; returns the
 * saved original (or -1 when @target was closed). */
static int swap_in(int fd, int target)
{
	int saved = fcntl(target, F_DUPFD_CLOEXEC, 10);

	ck_assert_int_ge(dup2(fd, target), 0);
	return saved;
}

static void swap_out(int saved, int target)
{
	if (saved >= 0) {
		dup2(saved, target);
		close(saved);
	} else {
		close(target);
	}
}

/*
 * mfs_spawn helper-peer with @args, its stdin and stdout on our pipes
 * (@to / @from, may be NULL): mfs_spawn passes on our own 0 and 1, so we
 * swap the pipes in around the call.  Returns mfs_spawn's answer.
 */
static int spawn_peer(mfs_segment *s, const char *const *args, char *const envp[],
                      int child_fd, long *pid, int *to, int *from)
{
	const char *argv[32];
	int in[2], out[2], s0 = -1, s1 = -1, r;

	peer_argv(argv, args);
	if (to) {
		ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
		s0 = swap_in(in[0], 0);
	}
	if (from) {
		ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
		s1 = swap_in(out[1], 1);
	}
	r = mfs_spawn(s, MFS_PEER, (char *const *)argv, envp, child_fd, pid);
	if (to) {
		swap_out(s0, 0);
		close(in[0]);
		*to = in[1];
	}
	if (from) {
		swap_out(s1, 1);
		close(out[1]);
		*from = out[0];
	}
	return r;
}

/* mfs_spawn helper-peer with @args and the default descriptor; its exit
 * status. */
static int spawn_run(mfs_segment *s, const char *const *args, char *const envp[],
                     int child_fd)
{
	long pid = -1;

	EXPECT(spawn_peer(s, args, envp, child_fd, &pid, NULL, NULL), 0);
	ck_assert_int_gt(pid, 0);
	return mt_wait((pid_t)pid, 15000);
}

/* The attacher row of @pid seen through @path is @alive (1/0). */
static void assert_row(const char *path, long pid, int alive)
{
	mfs_attacher att[16];
	unsigned n = 0;
	int k;

	EXPECT(mfs_inspect_path(path, 0, NULL, att, 16, &n), 0);
	k = mt_find_attacher(att, n, pid);
	ck_assert_msg(k >= 0, "no attacher row for pid %ld", pid);
	ck_assert_msg(att[k].alive == alive, "pid %ld's row: alive %d, want %d",
	              pid, att[k].alive, alive);
}

/* Board shared with fork()ed children. */
struct board {
	int ready, quit, rc, fd;
	long pid, tester;
};

/* ============================================================ export */

START_TEST(export_fd_basics)
{
	mfs_segment *s;
	struct stat a, b;
	int efd = 7, ifd = 7;
	FDS_BEGIN();

	s = mkseg(_i, KEY());
	EXPECT(mfs_export_fd(s, 0, &efd), 0);
	EXPECT(mfs_export_fd(s, 1, &ifd), 0);
	ck_assert_int_ge(efd, 0);
	ck_assert_int_ne(efd, mfs_fd(s));
	ck_assert_int_ne(efd, ifd);
	ck_assert_int_eq(fcntl(efd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
	ck_assert_int_eq(fcntl(ifd, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(fcntl(efd, F_GETFL) & O_ACCMODE, O_RDWR);
	ck_assert_int_eq(fstat(mfs_fd(s), &a), 0);
	ck_assert_int_eq(fstat(efd, &b), 0);
	ck_assert(a.st_dev == b.st_dev && a.st_ino == b.st_ino);
	/* Its own open file description: the file offset is not shared. */
	ck_assert_int_eq(lseek(mfs_fd(s), 0, SEEK_SET), 0);
	ck_assert_int_eq(lseek(efd, 123, SEEK_SET), 123);
	ck_assert_int_eq(lseek(mfs_fd(s), 0, SEEK_CUR), 0);
	ck_assert_int_eq(lseek(ifd, 0, SEEK_CUR), 0);
	/* Exporting is not attaching. */
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	ck_assert_uint_eq(stat_of(s).attach_count, 1);
	close(efd);
	close(ifd);

	efd = 7;
	EXPECT(mfs_export_fd(NULL, 0, &efd), MFS_E_INVALID);
	ck_assert_int_eq(efd, -1);
	EXPECT(mfs_export_fd(s, 0, NULL), MFS_E_INVALID);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* An exported descriptor carries no token: detaching the only handle
 * destroys the segment although the descriptor is still open. */
START_TEST(export_fd_no_token)
{
	const char *key = KEY();
	mfs_segment *s, *t;
	mfs_stat st;
	struct stat sb;
	char path[300];
	int efd;
	FDS_BEGIN();

	s = mkseg(_i, key);
	snprintf(path, sizeof path, "%s", mfs_native_key(s));
	EXPECT(mfs_export_fd(s, 1, &efd), 0);
	EXPECT(mfs_detach(s), 0);
	t = JUNK;
	EXPECT(mfs_attach_fd(efd, NULL, &t), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(t);
	EXPECT(mfs_inspect_path(mt_proc_fd((long)getpid(), efd), 0, &st, NULL, 0, NULL),
	       MFS_E_NOT_FOUND);
	EXPECT(mfs_inspect_path(mt_proc_fd((long)getpid(), efd), 1, &st, NULL, 0, NULL), 0);
	ck_assert_uint_eq(st.state, MFS_STATE_DEAD);
	ck_assert_uint_eq(st.refcount, 0);
	if (_i == SHM) {
		EXPECT(mfs_attach(key, NULL, &t), MFS_E_NOT_FOUND);
		ck_assert_msg(lstat(path, &sb) < 0 && errno == ENOENT, "%s still exists", path);
	}
	close(efd);
	FDS_END();
}
END_TEST

static int export_in_fork(void *arg)
{
	int fd = 7;

	if (mfs_export_fd(arg, 0, &fd) != MFS_E_INVALID)
		return 10;
	return fd == -1 ? 0 : 11;
}

/* A handle copied by fork() is no attachment of the child: nothing to
 * export. */
START_TEST(export_fd_fork_copy)
{
	mfs_segment *s;
	FDS_BEGIN();

	s = mkseg(_i, KEY());
	ck_assert_int_eq(mt_wait(mt_spawn(export_in_fork, s), 10000), 0);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ spawn */

START_TEST(spawn_inherit)
{
	const char *args[] = { "inherit", "env", MFS_FD_ENV, "3", "sole",
	                       "check", "spawned", "write", "child-wrote", NULL };
	mfs_segment *s;
	FDS_BEGIN();

	unsetenv(MFS_FD_ENV);
	s = mkseg(_i, KEY());
	strcpy(mfs_data(s), "spawned");
	ck_assert_int_eq(spawn_run(s, args, NULL, -1), 0);
	ck_assert_str_eq(mfs_data(s), "child-wrote");
	ck_assert_ptr_null(getenv(MFS_FD_ENV)); /* our environment is untouched */
	ck_assert_int_ge(mt_wait_refcount(s, 1, 1000), 0);
	ck_assert_uint_eq(stat_of(s).attach_count, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* Other descriptor numbers: 7, and the number our own export would get
 * (mfs_spawn must not leave it close-on-exec). */
START_TEST(spawn_child_fd)
{
	mfs_segment *s;
	long pid = 1;
	int low, n;
	FDS_BEGIN();

	s = mkseg(MEMFD, KEY());
	strcpy(mfs_data(s), "numbered");
	{
		const char *args[] = { "inherit", "env", MFS_FD_ENV, "7", "sole",
		                       "check", "numbered", NULL };
		ck_assert_int_eq(spawn_run(s, args, NULL, 7), 0);
	}
	low = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(low, 0);
	close(low);
	{
		const char *args[] = { "inherit", "env", MFS_FD_ENV, mt_itoa(low), "sole",
		                       "check", "numbered", NULL };
		ck_assert_int_eq(spawn_run(s, args, NULL, low), 0);
	}
	n = mt_count_fds();
	{
		const char *args[] = { "inherit", NULL };
		EXPECT(spawn_peer(s, args, NULL, 65536, &pid, NULL, NULL), MFS_E_INVALID);
		ck_assert_int_eq(pid, 0);
	}
	ck_assert_int_eq(mt_count_fds(), n);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* Lines of @text that start with @prefix. */
static int count_lines(const char *text, const char *prefix)
{
	const char *p = text;
	int n = 0;

	while ((p = strchr(p, '\n')) != NULL) {
		p++;
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
	}
	return n;
}

/* What env(1) started by mfs_spawn sees. */
static char *env_of(mfs_segment *s, char *const envp[], int child_fd)
{
	const char *argv[] = { "env", NULL };
	long pid = 0;
	int out[2], s1, r;
	char *text;

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	s1 = swap_in(out[1], 1);
	r = mfs_spawn(s, "env", (char *const *)argv, envp, child_fd, &pid);
	swap_out(s1, 1);
	close(out[1]);
	EXPECT(r, 0);
	text = mt_read_all(out[0], 1);
	close(out[0]);
	ck_assert_int_eq(mt_wait((pid_t)pid, 10000), 0);
	return text;
}

/* An explicit environment: kept as given, MFSHARE_FD replaced, nothing of
 * ours added; with NULL, ours (MFSHARE_FD replaced in the child only). */
START_TEST(spawn_envp)
{
	char path[4200];
	char *envp[] = { "MFS_T_FOO=bar", MFS_FD_ENV "=99", "MFS_T_BAZ=x=y", path, NULL };
	const char *p = getenv("PATH");
	mfs_segment *s;
	char *out;
	FDS_BEGIN();

	snprintf(path, sizeof path, "PATH=%s", p ? p : "/usr/bin:/bin");
	setenv("MFS_T_PARENT_ONLY", "yes", 1);
	setenv(MFS_FD_ENV, "99", 1);
	s = mkseg(MEMFD, KEY());
	strcpy(mfs_data(s), "env");
	{
		const char *args[] = { "inherit", "env", "MFS_T_FOO", "bar",
		                       "env", "MFS_T_BAZ", "x=y", "env", MFS_FD_ENV, "3",
		                       "env", "MFS_T_PARENT_ONLY", "-", "check", "env", NULL };
		ck_assert_int_eq(spawn_run(s, args, envp, -1), 0);
	}
	{
		const char *args[] = { "inherit", "env", "MFS_T_FOO", "-",
		                       "env", MFS_FD_ENV, "5", "env", "MFS_T_PARENT_ONLY",
		                       "yes", "check", "env", NULL };
		ck_assert_int_eq(spawn_run(s, args, NULL, 5), 0);
	}
	/* The raw environment, as env(1) prints it (no shell in between to
	 * tidy up a duplicate): exactly one MFSHARE_FD. */
	out = env_of(s, envp, -1);
	ck_assert_msg(strstr(out, "\nMFS_T_FOO=bar\n") && strstr(out, "\nMFS_T_BAZ=x=y\n") &&
	              count_lines(out, MFS_FD_ENV "=") == 1 &&
	              strstr(out, "\n" MFS_FD_ENV "=3\n") &&
	              !strstr(out, "MFS_T_PARENT_ONLY"), "environment:\n%s", out);
	free(out);
	out = env_of(s, NULL, 6);
	ck_assert_msg(strstr(out, "\nMFS_T_PARENT_ONLY=yes\n") &&
	              count_lines(out, MFS_FD_ENV "=") == 1 &&
	              strstr(out, "\n" MFS_FD_ENV "=6\n"), "environment:\n%s", out);
	free(out);
	ck_assert_str_eq(getenv(MFS_FD_ENV), "99");
	ck_assert_str_eq(envp[1], MFS_FD_ENV "=99");
	unsetenv(MFS_FD_ENV);
	unsetenv("MFS_T_PARENT_ONLY");
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* Under valgrind, posix_spawn's vfork becomes a fork and an exec failure
 * can no longer be reported: the child exits 127 instead. */
static int under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "vgpreload") != NULL;
}

/* mfs_spawn of @file must fail with @want, with no child left. */
static void spawn_fails(mfs_segment *s, const char *file, int want)
{
	char *argv[] = { "x", NULL };
	long pid = 1;
	int r;

	r = mfs_spawn(s, file, argv, NULL, -1, &pid);
	if (r == 0 && under_valgrind()) {
		ck_assert_int_eq(mt_wait((pid_t)pid, 10000), 127);
		return;
	}
	EXPECT(r, want);
	ck_assert_int_eq(pid, 0);
}

START_TEST(spawn_failures)
{
	char *argv[] = { "x", NULL }, *none[] = { NULL };
	char file[300];
	const char *dir;
	mfs_segment *s;
	long pid;
	int fd;
	FDS_BEGIN();

	s = mkseg(MEMFD, KEY());
	spawn_fails(s, "/nonexistent-mfs-dir/helper", MFS_E_NOT_FOUND);
	spawn_fails(s, "mfshare-no-such-program-here", MFS_E_NOT_FOUND);
	/* A file without execute permission. */
	dir = mt_tmpdir();
	ck_assert_ptr_nonnull(dir);
	snprintf(file, sizeof file, "%s/not-executable", dir);
	fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "#!/bin/sh\n", 10), 10);
	close(fd);
	spawn_fails(s, file, MFS_E_PERMISSION);
	mt_rmtree(dir);

	EXPECT(mfs_spawn(NULL, MFS_PEER, argv, NULL, -1, &pid), MFS_E_INVALID);
	EXPECT(mfs_spawn(s, NULL, argv, NULL, -1, &pid), MFS_E_INVALID);
	EXPECT(mfs_spawn(s, MFS_PEER, NULL, NULL, -1, &pid), MFS_E_INVALID);
	EXPECT(mfs_spawn(s, MFS_PEER, none, NULL, -1, &pid), MFS_E_INVALID);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* fork + exec by hand, as the header documents: an inheritable export and
 * MFSHARE_FD set before exec. */
START_TEST(spawn_by_hand)
{
	const char *args[] = { "inherit", "check", "by-hand", "write", "done", NULL };
	const char *argv[32];
	char buf[16];
	mfs_segment *s;
	pid_t p;
	int fd;
	FDS_BEGIN();

	s = mkseg(_i, KEY());
	strcpy(mfs_data(s), "by-hand");
	EXPECT(mfs_export_fd(s, 1, &fd), 0);
	snprintf(buf, sizeof buf, "%d", fd);
	setenv(MFS_FD_ENV, buf, 1);
	peer_argv(argv, args);
	p = fork();
	ck_assert_int_ge(p, 0);
	if (p == 0) {
		execv(MFS_PEER, (char *const *)argv);
		_exit(127);
	}
	close(fd);
	unsetenv(MFS_FD_ENV);
	ck_assert_int_eq(mt_wait(p, 10000), 0);
	ck_assert_str_eq(mfs_data(s), "done");
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* Two spawned children count under the lock: the total is exact. */
START_TEST(spawn_counter)
{
	const char *args[] = { "inherit", "gate", "inc", mt_itoa(INCS), NULL };
	mfs_segment *s;
	long pid[2];
	int i;
	FDS_BEGIN();

	s = mkseg(_i, KEY());
	for (i = 0; i < 2; i++)
		EXPECT(spawn_peer(s, args, NULL, -1, &pid[i], NULL, NULL), 0);
	ck_assert_msg(mt_wait_refcount(s, 3, 10000) >= 0, "the children did not attach");
	__atomic_store_n((int *)(void *)((char *)mfs_data(s) + GO_OFF), 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < 2; i++)
		ck_assert_int_eq(mt_wait((pid_t)pid[i], 25000), 0);
	ck_assert_int_eq(*(volatile int *)(void *)((char *)mfs_data(s) + INC_OFF), 2 * INCS);
	ck_assert_int_eq(stat_of(s).locked, 0);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ death */

struct killer {
	pid_t pid;
	uint64_t t_kill;
};

static void *kill_later(void *arg)
{
	struct killer *k = arg;

	mt_sleep_ms(100);
	k->t_kill = mt_now_ms();
	kill(k->pid, SIGKILL);
	return NULL;
}

/*
 * A spawned child holding the lock is killed: our next lock call
 * (_i & 2: one already waiting) answers MFS_E_OWNER_DEAD within 200 ms.
 * _i & 1: memfd or SHM.
 */
START_TEST(killed_holder)
{
	const char *args[] = { "inherit", "lock-hold", NULL };
	struct killer k;
	pthread_t th;
	mfs_segment *s;
	mfs_stat st;
	uint64_t t1;
	long pid;
	int from, r;
	FDS_BEGIN();

	s = mkseg(_i & 1, KEY());
	EXPECT(spawn_peer(s, args, NULL, -1, &pid, NULL, &from), 0);
	expect_line(from, "locked");
	st = stat_of(s);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, pid);
	ck_assert_int_eq(st.lock_owner_alive, 1);
	EXPECT(mfs_trylock(s), MFS_E_BUSY);
	k.pid = (pid_t)pid;
	if (_i & 2) {
		ck_assert_int_eq(pthread_create(&th, NULL, kill_later, &k), 0);
		r = mfs_timedlock(s, 5000);
		t1 = mt_now_ms();
		pthread_join(th, NULL);
	} else {
		k.t_kill = mt_now_ms();
		ck_assert_int_eq(kill(k.pid, SIGKILL), 0);
		r = mfs_lock(s);
		t1 = mt_now_ms();
	}
	EXPECT(r, MFS_E_OWNER_DEAD);
	ck_assert_msg(t1 - k.t_kill <= 200, "MFS_E_OWNER_DEAD came %d ms after the kill",
	              (int)(t1 - k.t_kill));
	st = stat_of(s);
	ck_assert_int_eq(st.lock_owner, (long)getpid());
	EXPECT(mfs_unlock(s), 0);
	ck_assert_int_eq(stat_of(s).locked, 0);
	ck_assert_int_eq(mt_wait((pid_t)pid, 5000), KILLED);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_lock(s), 0);
	EXPECT(mfs_unlock(s), 0);
	close(from);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* A spawned child killed while attached: seen dead within 200 ms (before
 * it is reaped), our own attachment alive. */
START_TEST(killed_attacher)
{
	const char *key = KEY();
	const char *args[] = { "inherit", "hold", NULL };
	mfs_segment *s, *t;
	char path[300];
	uint64_t t0;
	long pid;
	int from, to, ms;
	FDS_BEGIN();

	s = mkseg(_i, key);
	snprintf(path, sizeof path, "%s", _i == SHM ? mfs_native_key(s) : path_of(s));
	EXPECT(spawn_peer(s, args, NULL, -1, &pid, &to, &from), 0);
	expect_line(from, "attached");
	ck_assert_uint_eq(stat_of(s).refcount, 2);
	assert_row(path, pid, 1);
	t0 = mt_now_ms();
	ck_assert_int_eq(kill((pid_t)pid, SIGKILL), 0);
	ms = mt_wait_refcount(s, 1, 200);
	ck_assert_msg(ms >= 0, "refcount still %u %d ms after the kill",
	              (unsigned)stat_of(s).refcount, (int)(mt_now_ms() - t0));
	assert_row(path, pid, 0);
	assert_row(path, (long)getpid(), 1);
	ck_assert_int_eq(mt_wait((pid_t)pid, 5000), KILLED);
	if (_i == SHM) {
		EXPECT(mfs_attach(key, NULL, &t), 0); /* not stale: we live */
		EXPECT(mfs_detach(t), 0);
	}
	close(to);
	close(from);
	EXPECT(mfs_detach(s), 0);
	if (_i == SHM)
		EXPECT(mfs_attach(key, NULL, &t), MFS_E_NOT_FOUND);
	FDS_END();
}
END_TEST

/* A fork()ed child (no exec) attaches through a descriptor it inherited:
 * its handle's (_i = 0) or a dup made before fork, which shares our open
 * file description (_i = 1).  Its attachment has its own token: killed,
 * it is dead and ours is not. */
static struct board *g_b;
static int g_dupfd = -1;

static int fork_attacher(void *arg)
{
	mfs_segment *s = arg, *t;
	int fd = g_dupfd >= 0 ? g_dupfd : mfs_fd(s);

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mfs_attach_fd(fd, NULL, &t) != 0)
		return 10;
	g_b->fd = mfs_fd(t);
	mt_put(&g_b->ready, 1);
	mt_await(&g_b->quit, 1, 20000);
	return 0;
}

START_TEST(forked_child_own_token)
{
	mfs_segment *s;
	pid_t p;
	FDS_BEGIN();

	g_b = mt_shared_new(sizeof *g_b);
	s = mkseg(MEMFD, KEY());
	g_dupfd = _i ? dup(mfs_fd(s)) : -1;
	p = mt_spawn(fork_attacher, s);
	ck_assert_int_gt(p, 0);
	ck_assert_msg(mt_await(&g_b->ready, 1, 5000), "the child did not attach");
	ck_assert_uint_eq(stat_of(s).refcount, 2);
	assert_row(path_of(s), (long)p, 1);
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	ck_assert_msg(mt_wait_refcount(s, 1, 200) >= 0, "refcount still %u 200 ms after "
	              "the kill", (unsigned)stat_of(s).refcount);
	assert_row(path_of(s), (long)p, 0);
	assert_row(path_of(s), (long)getpid(), 1);
	ck_assert_int_eq(mt_wait(p, 5000), KILLED);
	if (g_dupfd >= 0)
		close(g_dupfd);
	EXPECT(mfs_detach(s), 0);
	munmap(g_b, sizeof *g_b);
	FDS_END();
}
END_TEST

/* P creates a memfd and forks C, which attaches through its copy of P's
 * handle's descriptor; P is killed: P's attachment is dead although C
 * lives on with P's copied handle, and C's is alive. */
static int grandchild(void *arg)
{
	mfs_segment *s = arg, *t;

	if (mfs_attach_fd(mfs_fd(s), NULL, &t) != 0)
		return 10;
	g_b->fd = mfs_fd(t);
	g_b->pid = (long)getpid();
	mt_put(&g_b->ready, 1);
	/* Until told, or until the test itself is gone (a failed test). */
	while (!mt_await(&g_b->quit, 1, 100))
		if (kill((pid_t)g_b->tester, 0) < 0 && errno == ESRCH)
			break;
	return mfs_detach(t) == 0 ? 0 : 11;
}

static int middle(void *arg)
{
	mfs_options o = { MFS_BACKEND_MEMFD, 0, 0, NULL };
	mfs_segment *s;

	(void)arg;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mfs_create(NULL, 4096, &o, &s) != 0)
		return 10;
	if (mt_spawn(grandchild, s) < 0)
		return 11;
	for (;;)
		pause();
}

START_TEST(forked_parent_killed)
{
	mfs_stat st;
	char path[64];
	pid_t p;
	int status = -1;
	uint64_t t0;
	FDS_BEGIN();

	g_b = mt_shared_new(sizeof *g_b);
	g_b->tester = (long)getpid();
	ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1), 0); /* C comes to us */
	p = mt_spawn(middle, NULL);
	ck_assert_int_gt(p, 0);
	ck_assert_msg(mt_await(&g_b->ready, 1, 5000), "the grandchild did not attach");
	snprintf(path, sizeof path, "%s", mt_proc_fd(g_b->pid, g_b->fd));
	EXPECT(mfs_inspect_path(path, 0, &st, NULL, 0, NULL), 0);
	ck_assert_uint_eq(st.refcount, 2);
	assert_row(path, (long)p, 1);
	t0 = mt_now_ms();
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	do {
		EXPECT(mfs_inspect_path(path, 0, &st, NULL, 0, NULL), 0);
		if (st.refcount == 1)
			break;
		mt_sleep_ms(1);
	} while (mt_now_ms() - t0 <= 200);
	ck_assert_msg(st.refcount == 1, "refcount still %u 200 ms after the kill",
	              (unsigned)st.refcount);
	assert_row(path, (long)p, 0);
	assert_row(path, g_b->pid, 1);
	ck_assert_int_eq(mt_wait(p, 5000), KILLED);
	mt_put(&g_b->quit, 1);
	ck_assert_int_eq(waitpid((pid_t)g_b->pid, &status, 0), (pid_t)g_b->pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	munmap(g_b, sizeof *g_b);
	FDS_END();
}
END_TEST

/* ============================================================ send / recv */

START_TEST(send_recv_pair)
{
	mfs_options req = { 0, MFS_REQUIRE_SEALED, 0, NULL };
	mfs_segment *s, *t;
	int sv[2], kind = _i & 1;
	FDS_BEGIN();

	s = mkseg(kind, KEY());
	strcpy(mfs_data(s), "paired");
	ck_assert_int_eq(socketpair(AF_UNIX, (_i & 2 ? SOCK_SEQPACKET : SOCK_STREAM) |
	                            SOCK_CLOEXEC, 0, sv), 0);
	EXPECT(mfs_send(sv[0], s), 0);
	t = JUNK;
	EXPECT(mfs_recv(sv[1], NULL, 2000, &t), 0);
	ck_assert_ptr_ne(mfs_data(t), mfs_data(s));
	ck_assert_str_eq(mfs_data(t), "paired");
	strcpy(mfs_data(t), "answered");
	ck_assert_str_eq(mfs_data(s), "answered");
	ck_assert_uint_eq(mfs_size(t), mfs_size(s));
	ck_assert_str_eq(mfs_native_key(t), mfs_native_key(s));
	if (kind == SHM)
		ck_assert_str_eq(mfs_key(t), mfs_key(s));
	ck_assert_uint_eq(stat_of(s).refcount, 2);
	EXPECT(mfs_detach(t), 0);

	/* The receiver may insist on a sealed segment. */
	EXPECT(mfs_send(sv[0], s), 0);
	t = JUNK;
	EXPECT(mfs_recv(sv[1], &req, 2000, &t), kind == MEMFD ? 0 : MFS_E_PERMISSION);
	if (kind == MEMFD) {
		ck_assert_int_eq(stat_of(t).sealed, 1);
		EXPECT(mfs_detach(t), 0);
	} else {
		ck_assert_ptr_null(t);
	}
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	close(sv[0]);
	close(sv[1]);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* A listening socket at a fresh path under a temp dir. */
static int listen_at(char *path, size_t len, const char **dir)
{
	struct sockaddr_un sa;
	int l;

	*dir = mt_tmpdir();
	ck_assert_ptr_nonnull(*dir);
	snprintf(path, len, "%s/sock", *dir);
	ck_assert_uint_lt(strlen(path), sizeof sa.sun_path);
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(l, 0);
	ck_assert_int_eq(bind(l, (struct sockaddr *)&sa, sizeof sa), 0);
	ck_assert_int_eq(listen(l, 4), 0);
	return l;
}

static int accept_within(int l, unsigned ms)
{
	struct pollfd p = { l, POLLIN, 0 };

	ck_assert_msg(poll(&p, 1, (int)ms) == 1, "nobody connected");
	return accept4(l, NULL, NULL, SOCK_CLOEXEC);
}

/*
 * An unrelated exec'd program (it inherits nothing of ours) connects to a
 * named socket and receives the segment.  _i & 1: memfd or SHM; _i & 2:
 * the peer insists on a sealed segment.  On a memfd the peer also tries
 * to resize it and must be refused.
 */
START_TEST(send_to_unrelated)
{
	const char *dir;
	char path[300];
	mfs_segment *s;
	int l, c, kind = _i & 1, sealed = (_i & 2) != 0, rc;
	pid_t p;
	FDS_BEGIN();

	s = mkseg(kind, KEY());
	strcpy(mfs_data(s), "over-socket");
	l = listen_at(path, sizeof path, &dir);
	{
		const char *args[12];
		int n = 0;

		if (sealed)
			args[n++] = "-s";
		args[n++] = "recv";
		args[n++] = path;
		args[n++] = "check";
		args[n++] = "over-socket";
		args[n++] = "write";
		args[n++] = "peer-wrote";
		if (kind == MEMFD)
			args[n++] = "try-resize";
		args[n] = NULL;
		p = peer(args, -1, NULL, NULL);
	}
	c = accept_within(l, 5000);
	ck_assert_int_ge(c, 0);
	EXPECT(mfs_send(c, s), 0);
	rc = mt_wait(p, 10000);
	if (sealed && kind == SHM) {
		ck_assert_int_eq(rc, ATTACH_FAILED(MFS_E_PERMISSION));
		ck_assert_str_eq(mfs_data(s), "over-socket");
	} else {
		ck_assert_int_eq(rc, 0);
		ck_assert_str_eq(mfs_data(s), "peer-wrote");
	}
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	ck_assert_uint_eq(stat_of(s).file_size, stat_of(s).data_offset + mfs_size(s));
	close(c);
	close(l);
	mt_rmtree(dir);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

START_TEST(peer_closed)
{
	mfs_segment *s, *t;
	int sv[2];
	FDS_BEGIN();

	signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would kill this test */
	s = mkseg(MEMFD, KEY());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[1]);
	EXPECT(mfs_send(sv[0], s), MFS_E_NOT_FOUND);
	close(sv[0]);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	close(sv[0]);
	t = JUNK;
	EXPECT(mfs_recv(sv[1], NULL, 1000, &t), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(t);
	EXPECT(mfs_recv(sv[1], NULL, -1, &t), MFS_E_NOT_FOUND);
	close(sv[1]);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* sendmsg @len bytes of @msg with @nfds descriptors. */
static void send_raw(int sock, const void *msg, size_t len, const int *fds, int nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 4)];
	} ctl;
	struct msghdr m;
	struct iovec iov;
	struct cmsghdr *c;

	memset(&m, 0, sizeof m);
	memset(&ctl, 0, sizeof ctl);
	iov.iov_base = (void *)msg;
	iov.iov_len = len;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	if (nfds > 0) {
		m.msg_control = ctl.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)nfds);
		c = CMSG_FIRSTHDR(&m);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * (size_t)nfds);
	}
	ck_assert_int_eq(sendmsg(sock, &m, MSG_NOSIGNAL), (ssize_t)len);
}

/* libmfshare's message: the magic and a size. */
static void good_msg(unsigned char msg[16], uint64_t size)
{
	memcpy(msg, "mfshare1", 8);
	memcpy(msg + 8, &size, 8);
}

/* What mfs_recv says to one message (descriptors it carries are ours to
 * close here; mfs_recv must close its copies). */
static int recv_one(const void *msg, size_t len, const int *fds, int nfds)
{
	mfs_segment *t = JUNK;
	int sv[2], r;

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_raw(sv[0], msg, len, fds, nfds);
	close(sv[0]);
	r = mfs_recv(sv[1], NULL, 2000, &t);
	if (r == 0)
		mfs_detach(t);
	else
		ck_assert_ptr_null(t);
	close(sv[1]);
	return r;
}

START_TEST(recv_bad_messages)
{
	unsigned char msg[16];
	const char *dir;
	char file[300];
	mfs_segment *s;
	int fd[2], pfd[2], nul, tmp, m;
	FDS_BEGIN();

	s = mkseg(MEMFD, KEY());
	good_msg(msg, mfs_size(s));
	/* Sanity: the hand-made message with the segment's descriptor works. */
	EXPECT(mfs_export_fd(s, 0, &fd[0]), 0);
	EXPECT(recv_one(msg, 16, fd, 1), 0);
	/* No descriptor; garbage; short. */
	EXPECT(recv_one(msg, 16, NULL, 0), MFS_E_CORRUPT);
	EXPECT(recv_one("garbage-garbage!", 16, NULL, 0), MFS_E_CORRUPT);
	EXPECT(recv_one("garbage-garbage!", 16, fd, 1), MFS_E_CORRUPT);
	EXPECT(recv_one(msg, 5, fd, 1), MFS_E_CORRUPT);
	EXPECT(recv_one("mfshare1", 8, fd, 1), MFS_E_CORRUPT);
	/* Two descriptors in one message, both of the real segment. */
	EXPECT(mfs_export_fd(s, 0, &fd[1]), 0);
	EXPECT(recv_one(msg, 16, fd, 2), MFS_E_CORRUPT);
	close(fd[1]);
	/* The right message with descriptors of things that are not segments. */
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(nul, 0);
	EXPECT(recv_one(msg, 16, &nul, 1), MFS_E_CORRUPT);
	close(nul);
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	EXPECT(recv_one(msg, 16, &pfd[0], 1), MFS_E_CORRUPT);
	close(pfd[0]);
	close(pfd[1]);
	dir = mt_tmpdir();
	ck_assert_ptr_nonnull(dir);
	snprintf(file, sizeof file, "%s/garbage", dir);
	tmp = open(file, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	ck_assert_int_ge(tmp, 0);
	memset(file, 0x5a, sizeof file);
	ck_assert_int_eq(write(tmp, file, sizeof file), (ssize_t)sizeof file);
	EXPECT(recv_one(msg, 16, &tmp, 1), MFS_E_CORRUPT);
	close(tmp);
	mt_rmtree(dir);
	m = memfd_create("mfshare:empty", MFD_CLOEXEC);
	ck_assert_int_ge(m, 0);
	EXPECT(recv_one(msg, 16, &m, 1), MFS_E_CORRUPT);
	close(m);
	/* A real segment's descriptor, but the segment ended before the
	 * receiver got it: validated, not trusted. */
	EXPECT(mfs_detach(s), 0);
	EXPECT(recv_one(msg, 16, fd, 1), MFS_E_NOT_FOUND);
	close(fd[0]);
	FDS_END();
}
END_TEST

START_TEST(recv_timeout_and_misuse)
{
	mfs_segment *s, *t;
	const char *dir;
	char file[300];
	uint64_t t0;
	int sv[2], pfd[2], reg, closed, r;
	FDS_BEGIN();

	s = mkseg(MEMFD, KEY());
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	t0 = mt_now_ms();
	t = JUNK;
	EXPECT(mfs_recv(sv[1], NULL, 100, &t), MFS_E_TIMEOUT);
	ck_assert_ptr_null(t);
	ck_assert_uint_ge(mt_now_ms() - t0, 95);
	EXPECT(mfs_recv(sv[1], NULL, 0, &t), MFS_E_TIMEOUT);
	/* Still usable afterwards. */
	EXPECT(mfs_send(sv[0], s), 0);
	EXPECT(mfs_recv(sv[1], NULL, 1000, &t), 0);
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_recv(sv[1], NULL, 1000, NULL), MFS_E_INVALID);
	EXPECT(mfs_recv(-1, NULL, 1000, &t), MFS_E_INVALID);
	EXPECT(mfs_send(-1, s), MFS_E_INVALID);
	EXPECT(mfs_send(sv[0], NULL), MFS_E_INVALID);
	close(sv[0]);
	close(sv[1]);

	/* Not sockets: a pipe (empty, so a poll would only time out), a
	 * regular file, a closed number. */
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	t0 = mt_now_ms();
	r = mfs_recv(pfd[0], NULL, 300, &t);
	EXPECT(r, MFS_E_INVALID);
	EXPECT(mfs_recv(pfd[0], NULL, -1, &t), MFS_E_INVALID);
	EXPECT(mfs_send(pfd[1], s), MFS_E_INVALID);
	close(pfd[0]);
	close(pfd[1]);
	dir = mt_tmpdir();
	ck_assert_ptr_nonnull(dir);
	snprintf(file, sizeof file, "%s/regular", dir);
	reg = open(file, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
	ck_assert_int_ge(reg, 0);
	EXPECT(mfs_recv(reg, NULL, 1000, &t), MFS_E_INVALID);
	EXPECT(mfs_send(reg, s), MFS_E_INVALID);
	close(reg);
	mt_rmtree(dir);
	closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(closed, 0);
	close(closed);
	EXPECT(mfs_recv(closed, NULL, 1000, &t), MFS_E_INVALID);
	EXPECT(mfs_recv(closed, NULL, -1, &t), MFS_E_INVALID);
	EXPECT(mfs_send(closed, s), MFS_E_INVALID);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/*
 * A named segment shared by descriptor, whose last attachment is the one
 * made through that descriptor: its name goes with it, as with any last
 * detach.  The descriptors all come from the creator's handle.
 * _i: 0 mfs_attach_fd of the creator's mfs_fd (SHM), 1 the same on a FILE
 * segment, 2 mfs_send/mfs_recv (SHM), 3 a spawned peer (SHM).
 */
START_TEST(last_detach_through_fd)
{
	mfs_options o = { _i == 1 ? MFS_BACKEND_FILE : MFS_BACKEND_SHM, 0, 0, NULL };
	const char *key = KEY(), *dir = NULL;
	const char *args[] = { "inherit", "hold", NULL };
	mfs_segment *s, *t = NULL;
	char path[4400];
	struct stat sb;
	long pid = 0;
	int sv[2], to = -1, from = -1;
	FDS_BEGIN();

	if (_i == 1) {
		dir = mt_tmpdir();
		ck_assert_ptr_nonnull(dir);
		o.dir = dir;
	}
	EXPECT(mfs_create(key, 4096, &o, &s), 0);
	snprintf(path, sizeof path, "%s", mfs_native_key(s));
	switch (_i) {
	case 0:
	case 1:
		EXPECT(mfs_attach_fd(mfs_fd(s), NULL, &t), 0);
		break;
	case 2:
		ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
		EXPECT(mfs_send(sv[0], s), 0);
		EXPECT(mfs_recv(sv[1], NULL, 2000, &t), 0);
		close(sv[0]);
		close(sv[1]);
		break;
	default:
		EXPECT(spawn_peer(s, args, NULL, -1, &pid, &to, &from), 0);
		expect_line(from, "attached");
		break;
	}
	if (t) {
		/* It knows its name, like an attachment by key. */
		ck_assert_str_eq(mfs_native_key(t), path);
		ck_assert_str_eq(mfs_key(t), key);
	}
	ck_assert_uint_eq(stat_of(s).refcount, 2);
	EXPECT(mfs_detach(s), 0);
	ck_assert_int_eq(lstat(path, &sb), 0); /* still in use */
	if (t) {
		EXPECT(mfs_detach(t), 0);
	} else {
		close(to);
		ck_assert_int_eq(mt_wait((pid_t)pid, 5000), 0);
		close(from);
	}
	ck_assert_msg(lstat(path, &sb) < 0 && errno == ENOENT,
	              "%s outlived its last attachment", path);
	if (dir)
		mt_rmtree(dir);
	FDS_END();
}
END_TEST

/* ============================================================ locators */

/*
 * For each kind (_i: 0 memfd, 1 SHM, 2 FILE, 3 RUNTIME_DIR): the locator's
 * form, an attachment through it here, and one in an exec'd peer given it
 * on its command line.
 */
START_TEST(locator_forms)
{
	static const int backends[] = { MFS_BACKEND_MEMFD, MFS_BACKEND_SHM,
	                                MFS_BACKEND_FILE, MFS_BACKEND_RUNTIME_DIR };
	mfs_options o = { backends[_i], 0, 0, NULL };
	const char *key = KEY(), *dir = NULL;
	char loc[4400], want[4400];
	mfs_segment *s, *t;
	pid_t p;
	FDS_BEGIN();

	if (_i >= 2) {
		dir = mt_tmpdir();
		ck_assert_ptr_nonnull(dir);
		o.dir = dir;
	}
	EXPECT(mfs_create(key, 4096, &o, &s), 0);
	strcpy(mfs_data(s), "located");
	EXPECT(mfs_locator(s, loc, sizeof loc), 0);
	switch (_i) {
	case 0:
		snprintf(want, sizeof want, "memfd:%ld/%d", (long)getpid(), mfs_fd(s));
		break;
	case 1:
		snprintf(want, sizeof want, "shm:%s", key);
		break;
	case 2:
		snprintf(want, sizeof want, "file:%s/%s", dir, key);
		break;
	default:
		snprintf(want, sizeof want, "file:%s/mfshare/%s", dir, key);
		break;
	}
	ck_assert_str_eq(loc, want);
	if (_i >= 2) {
		snprintf(want, sizeof want, "file:%s", mfs_native_key(s));
		ck_assert_str_eq(loc, want);
	}
	t = JUNK;
	EXPECT(mfs_attach_locator(loc, NULL, &t), 0);
	ck_assert_str_eq(mfs_data(t), "located");
	ck_assert_uint_eq(stat_of(s).refcount, 2);
	EXPECT(mfs_detach(t), 0);
	{
		const char *args[] = { "locator", loc, "check", "located",
		                       "write", "peer-located", NULL };
		p = peer(args, -1, NULL, NULL);
	}
	ck_assert_int_eq(mt_wait(p, 10000), 0);
	ck_assert_str_eq(mfs_data(s), "peer-located");
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	/* The segment is gone: so is what its locator named. */
	EXPECT(mfs_attach_locator(loc, NULL, &t), MFS_E_NOT_FOUND);
	if (dir)
		mt_rmtree(dir);
	FDS_END();
}
END_TEST

START_TEST(locator_fd)
{
	mfs_options req = { 0, MFS_REQUIRE_SEALED, 0, NULL };
	mfs_segment *s, *t, *u;
	char loc[64];
	int closed;
	FDS_BEGIN();

	s = mkseg(MEMFD, KEY());
	u = mkseg(SHM, KEY());
	strcpy(mfs_data(s), "by-number");
	snprintf(loc, sizeof loc, "fd:%d", mfs_fd(s));
	EXPECT(mfs_attach_locator(loc, &req, &t), 0);
	ck_assert_str_eq(mfs_data(t), "by-number");
	ck_assert_uint_eq(stat_of(s).refcount, 2);
	EXPECT(mfs_detach(t), 0);
	/* opts->flags apply. */
	snprintf(loc, sizeof loc, "fd:%d", mfs_fd(u));
	EXPECT(mfs_attach_locator(loc, &req, &t), MFS_E_PERMISSION);
	EXPECT(mfs_attach_locator(loc, NULL, &t), 0);
	EXPECT(mfs_detach(t), 0);
	closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(closed, 0);
	close(closed);
	snprintf(loc, sizeof loc, "fd:%d", closed);
	t = JUNK;
	EXPECT(mfs_attach_locator(loc, NULL, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	EXPECT(mfs_attach_locator("fd:", NULL, &t), MFS_E_INVALID);
	EXPECT(mfs_attach_locator("fd:-1", NULL, &t), MFS_E_INVALID);
	EXPECT(mfs_attach_locator("fd:x", NULL, &t), MFS_E_INVALID);
	EXPECT(mfs_attach_locator("fd:3x", NULL, &t), MFS_E_INVALID);
	EXPECT(mfs_attach_locator("fd:99999999999", NULL, &t), MFS_E_INVALID);
	EXPECT(mfs_detach(u), 0);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

START_TEST(locator_bad)
{
	static const struct {
		const char *loc;
		int want;
	} bad[] = {
		{ "", MFS_E_INVALID },
		{ "shm:", MFS_E_KEY },
		{ "shm:bad key", MFS_E_KEY },
		{ "shm:.hidden", MFS_E_KEY },
		{ "shm:a/b", MFS_E_KEY },
		{ "file:", MFS_E_INVALID },
		{ "file:relative", MFS_E_INVALID },
		{ "file:relative/path", MFS_E_INVALID },
		{ "memfd:", MFS_E_INVALID },
		{ "memfd:x", MFS_E_INVALID },
		{ "memfd:1", MFS_E_INVALID },
		{ "memfd:1/", MFS_E_INVALID },
		{ "memfd:/3", MFS_E_INVALID },
		{ "memfd:-1/3", MFS_E_INVALID },
		{ "memfd:0/3", MFS_E_INVALID },
		{ "memfd:1/x", MFS_E_INVALID },
		{ "memfd:1/3x", MFS_E_INVALID },
		{ "nope:x", MFS_E_INVALID },
		{ "SHM:x", MFS_E_INVALID },
		{ "x", MFS_E_INVALID },
	};
	char loc[4400];
	const char *dir;
	mfs_segment *t;
	size_t i;
	int closed;
	FDS_BEGIN();

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int r;

		t = JUNK;
		r = mfs_attach_locator(bad[i].loc, NULL, &t);
		ck_assert_msg(r == bad[i].want, "\"%s\": got %s, want %s (%s)", bad[i].loc,
		              mfs_err_name(r), mfs_err_name(bad[i].want), mfs_last_error());
		ck_assert_ptr_null(t);
	}
	t = JUNK;
	EXPECT(mfs_attach_locator(NULL, NULL, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	EXPECT(mfs_attach_locator("shm:x", NULL, NULL), MFS_E_INVALID);

	/* Well-formed, naming nothing. */
	snprintf(loc, sizeof loc, "shm:%s", KEY());
	EXPECT(mfs_attach_locator(loc, NULL, &t), MFS_E_NOT_FOUND);
	dir = mt_tmpdir();
	ck_assert_ptr_nonnull(dir);
	snprintf(loc, sizeof loc, "file:%s/absent", dir);
	EXPECT(mfs_attach_locator(loc, NULL, &t), MFS_E_NOT_FOUND);
	mt_rmtree(dir);
	closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(closed, 0);
	close(closed);
	snprintf(loc, sizeof loc, "memfd:%ld/%d", (long)getpid(), closed);
	EXPECT(mfs_attach_locator(loc, NULL, &t), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(t);
	/* Names something that is not a segment. */
	closed = open("/dev/null", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(closed, 0);
	snprintf(loc, sizeof loc, "memfd:%ld/%d", (long)getpid(), closed);
	EXPECT(mfs_attach_locator(loc, NULL, &t), MFS_E_CORRUPT);
	close(closed);
	FDS_END();
}
END_TEST

START_TEST(locator_buffer)
{
	mfs_segment *s;
	char buf[300];
	size_t n;
	FDS_BEGIN();

	s = mkseg(_i, KEY());
	EXPECT(mfs_locator(s, buf, sizeof buf), 0);
	n = strlen(buf);
	ck_assert_uint_gt(n, 6);
	memset(buf, 'z', sizeof buf);
	EXPECT(mfs_locator(s, buf, n), MFS_E_INVALID);
	EXPECT(mfs_locator(s, buf, 4), MFS_E_INVALID);
	EXPECT(mfs_locator(s, buf, 0), MFS_E_INVALID);
	EXPECT(mfs_locator(s, buf, n + 1), 0);
	ck_assert_uint_eq(strlen(buf), n);
	EXPECT(mfs_locator(NULL, buf, sizeof buf), MFS_E_INVALID);
	EXPECT(mfs_locator(s, NULL, sizeof buf), MFS_E_INVALID);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ attach_inherited */

START_TEST(attach_inherited_errors)
{
	mfs_segment *s, *t;
	char num[16];
	int closed;
	FDS_BEGIN();

	s = mkseg(MEMFD, KEY());
	unsetenv(MFS_FD_ENV);
	t = JUNK;
	EXPECT(mfs_attach_inherited(NULL, &t), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(t);
	setenv(MFS_FD_ENV, "abc", 1);
	t = JUNK;
	EXPECT(mfs_attach_inherited(NULL, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	setenv(MFS_FD_ENV, "", 1);
	EXPECT(mfs_attach_inherited(NULL, &t), MFS_E_INVALID);
	setenv(MFS_FD_ENV, "-1", 1);
	EXPECT(mfs_attach_inherited(NULL, &t), MFS_E_INVALID);
	setenv(MFS_FD_ENV, "3x", 1);
	EXPECT(mfs_attach_inherited(NULL, &t), MFS_E_INVALID);
	closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(closed, 0);
	close(closed);
	snprintf(num, sizeof num, "%d", closed);
	setenv(MFS_FD_ENV, num, 1);
	EXPECT(mfs_attach_inherited(NULL, &t), MFS_E_INVALID);
	/* A good one, in this very process. */
	snprintf(num, sizeof num, "%d", mfs_fd(s));
	setenv(MFS_FD_ENV, num, 1);
	EXPECT(mfs_attach_inherited(NULL, NULL), MFS_E_INVALID);
	EXPECT(mfs_attach_inherited(NULL, &t), 0);
	ck_assert_uint_eq(stat_of(s).refcount, 2);
	EXPECT(mfs_detach(t), 0);
	unsetenv(MFS_FD_ENV);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ main */

int main(void)
{
	Suite *s = suite_create("share");
	TCase *tc;

	if (mt_begin("sh", tag, sizeof tag, tmproot, sizeof tmproot) != 0)
		return 99;

	tc = mt_tcase(s, "export", 10, NULL);
	tcase_add_loop_test(tc, export_fd_basics, 0, 2);
	tcase_add_loop_test(tc, export_fd_no_token, 0, 2);
	tcase_add_loop_test(tc, export_fd_fork_copy, 0, 2);

	tc = mt_tcase(s, "spawn", 20, NULL);
	tcase_add_loop_test(tc, spawn_inherit, 0, 2);
	tcase_add_test(tc, spawn_child_fd);
	tcase_add_test(tc, spawn_envp);
	tcase_add_test(tc, spawn_failures);
	tcase_add_loop_test(tc, spawn_by_hand, 0, 2);
	tcase_add_loop_test(tc, spawn_counter, 0, 2);

	tc = mt_tcase(s, "death", 20, NULL);
	tcase_add_loop_test(tc, killed_holder, 0, 4);
	tcase_add_loop_test(tc, killed_attacher, 0, 2);
	tcase_add_loop_test(tc, forked_child_own_token, 0, 2);
	tcase_add_test(tc, forked_parent_killed);

	tc = mt_tcase(s, "send_recv", 20, NULL);
	tcase_add_loop_test(tc, send_recv_pair, 0, 4);
	tcase_add_loop_test(tc, send_to_unrelated, 0, 4);
	tcase_add_test(tc, peer_closed);
	tcase_add_test(tc, recv_bad_messages);
	tcase_add_test(tc, recv_timeout_and_misuse);
	tcase_add_loop_test(tc, last_detach_through_fd, 0, 4);

	tc = mt_tcase(s, "locators", 20, NULL);
	tcase_add_loop_test(tc, locator_forms, 0, 4);
	tcase_add_test(tc, locator_fd);
	tcase_add_test(tc, locator_bad);
	tcase_add_loop_test(tc, locator_buffer, 0, 2);

	tc = mt_tcase(s, "inherited", 10, NULL);
	tcase_add_test(tc, attach_inherited_errors);

	return mt_run_clean(s, tag, "check_share", tmproot);
}
