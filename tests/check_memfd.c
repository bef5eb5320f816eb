/* SPDX-License-Identifier: MIT */
/*
 * MFS_BACKEND_MEMFD: anonymous segments described "mfshare:KEY", sealed
 * against resizing (here and in exec'd peers), attached through
 * descriptors, MFS_REQUIRE_SEALED, the header's counts while peers attach,
 * detach and die, the memfd freed once its last holder goes, mfshare-dump
 * on /proc/PID/fd/N, and read-only attachments.  Every test checks that it
 * leaves no descriptor open behind it.
 */
#include "testutil.h"
#include "header.h" /* MFS_SLOT_BYTE: to hold a token on a hand-made copy */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MFS_PEER
#error "MFS_PEER (the path of tests/helper-peer) must be defined"
#endif
#ifndef MFS_DUMP
#error "MFS_DUMP (the path of tools/mfshare-dump) must be defined"
#endif

/* Keys of this run start "t-mf<main pid>-", so main() can sweep /dev/shm. */
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

static const mfs_options memfd_opts = { MFS_BACKEND_MEMFD, 0, 0, NULL };

/* ------------------------------------------------------------ helpers */

static mfs_segment *mkmem(const char *key, size_t size)
{
	mfs_segment *s = JUNK;

	EXPECT(mfs_create(key, size, &memfd_opts, &s), 0);
	ck_assert_ptr_nonnull(s);
	return s;
}

static mfs_stat stat_of(mfs_segment *s)
{
	mfs_stat st;

	EXPECT(mfs_stat_segment(s, &st), 0);
	return st;
}

static long page_size(void)
{
	return sysconf(_SC_PAGESIZE);
}

/*
 * fork + exec helper-peer with @args (NULL-terminated, after argv[0]).
 * @keep: a descriptor the peer inherits (close-on-exec cleared in the
 * child), or -1.  @to / @from (may be NULL): our ends of pipes on the
 * peer's stdin / stdout.
 */
static pid_t peer(const char *const *args, int keep, int *to, int *from)
{
	return mt_exec_peer(MFS_PEER, args, keep, to, from);
}

/* A new inheritable descriptor of @s's memfd, for an exec'd peer. */
static int export_fd(mfs_segment *s)
{
	int fd = -1;

	EXPECT(mfs_export_fd(s, 1, &fd), 0);
	ck_assert_int_ge(fd, 0);
	return fd;
}

/* A watch for the memfd behind @fd being freed (IN_DELETE_SELF); the
 * watch itself keeps nothing alive. */
static int watch_free(int fd)
{
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);

	ck_assert_int_ge(in, 0);
	ck_assert_msg(inotify_add_watch(in, mt_proc_fd((long)getpid(), fd), IN_DELETE_SELF) >= 0,
	              "inotify_add_watch: %s", strerror(errno));
	return in;
}

/* 1 if the watched memfd was freed within @ms. */
static int freed_within(int in, unsigned ms)
{
	union {
		struct inotify_event e;
		char buf[4096];
	} u;
	uint64_t end = mt_now_ms() + ms;
	struct pollfd p;
	ssize_t n;
	char *q;

	do {
		p.fd = in;
		p.events = POLLIN;
		if (poll(&p, 1, 10) > 0 && (n = read(in, u.buf, sizeof u.buf)) > 0)
			for (q = u.buf; q < u.buf + n;
			     q += sizeof(struct inotify_event) + ((struct inotify_event *)(void *)q)->len)
				if (((struct inotify_event *)(void *)q)->mask & IN_DELETE_SELF)
					return 1;
	} while (mt_now_ms() < end);
	return 0;
}

/* ============================================================ create */

START_TEST(create_labelled)
{
	const char *key = KEY();
	char want[300], link[300];
	mfs_segment *s;
	mfs_stat st;
	struct stat sb;
	ssize_t n;
	size_t i;
	FDS_BEGIN();

	s = mkmem(key, 100);
	ck_assert_str_eq(mfs_key(s), key);
	snprintf(want, sizeof want, "memfd:mfshare:%s", key);
	ck_assert_str_eq(mfs_native_key(s), want);
	ck_assert_int_ge(mfs_fd(s), 0);
	/* The kernel's own name for it is the description. */
	n = readlink(mt_proc_fd((long)getpid(), mfs_fd(s)), link, sizeof link - 1);
	ck_assert_int_gt(n, 0);
	link[n] = '\0';
	snprintf(want, sizeof want, "/memfd:mfshare:%s", key);
	ck_assert_msg(strncmp(link, want, strlen(want)) == 0, "fd links to %s", link);
	ck_assert_int_eq(fstat(mfs_fd(s), &sb), 0);
	ck_assert(S_ISREG(sb.st_mode));
	ck_assert_int_eq(sb.st_nlink, 0); /* no name anywhere */
	ck_assert_int_eq(sb.st_mode & 07777, 0600);
	/* Rounded up to whole pages, all zero. */
	ck_assert_uint_ge(mfs_size(s), 100);
	ck_assert_uint_eq(mfs_size(s) % (size_t)page_size(), 0);
	ck_assert_uint_eq((uintptr_t)mfs_data(s) % (uintptr_t)page_size(), 0);
	for (i = 0; i < mfs_size(s); i++)
		ck_assert_msg(((unsigned char *)mfs_data(s))[i] == 0, "byte %zu not zero", i);
	st = stat_of(s);
	ck_assert_uint_eq(st.size, mfs_size(s));
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(st.attach_count, 1);
	ck_assert_uint_eq(st.state, MFS_STATE_READY);
	ck_assert_int_eq(st.creator_pid, (long)getpid());
	ck_assert_uint_eq(st.file_size, (uint64_t)sb.st_size);
	ck_assert_uint_eq(st.file_size, st.data_offset + st.size);
	EXPECT(mfs_detach(s), 0);

	/* More than a page: rounded to two. */
	s = mkmem(key, (size_t)page_size() + 1);
	ck_assert_uint_ge(mfs_size(s), 2 * (size_t)page_size());
	ck_assert_uint_eq(mfs_size(s) % (size_t)page_size(), 0);
	memset(mfs_data(s), 0x77, mfs_size(s)); /* all of it is writable */
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

START_TEST(create_anonymous)
{
	char link[300];
	mfs_segment *s;
	mfs_options o = memfd_opts;
	struct stat sb;
	ssize_t n;
	FDS_BEGIN();

	s = mkmem(NULL, 4096);
	ck_assert_ptr_null(mfs_key(s));
	ck_assert_str_eq(mfs_native_key(s), "memfd:mfshare");
	n = readlink(mt_proc_fd((long)getpid(), mfs_fd(s)), link, sizeof link - 1);
	ck_assert_int_gt(n, 0);
	link[n] = '\0';
	ck_assert_msg(strncmp(link, "/memfd:mfshare", 14) == 0 &&
	              (link[14] == '\0' || link[14] == ' '), "fd links to %s", link);
	EXPECT(mfs_detach(s), 0);

	/* The mode is applied exactly. */
	o.mode = 0640;
	EXPECT(mfs_create(NULL, 4096, &o, &s), 0);
	ck_assert_int_eq(fstat(mfs_fd(s), &sb), 0);
	ck_assert_int_eq(sb.st_mode & 07777, 0640);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* The key is only a label: two memfds may share it, and never collide. */
START_TEST(create_same_label_twice)
{
	const char *key = KEY();
	mfs_segment *a, *b;
	struct stat sa, sb;
	FDS_BEGIN();

	a = mkmem(key, 4096);
	b = mkmem(key, 4096);
	ck_assert_int_eq(fstat(mfs_fd(a), &sa), 0);
	ck_assert_int_eq(fstat(mfs_fd(b), &sb), 0);
	ck_assert(sa.st_ino != sb.st_ino);
	strcpy(mfs_data(a), "a");
	strcpy(mfs_data(b), "b");
	ck_assert_str_eq(mfs_data(a), "a");
	ck_assert_uint_eq(stat_of(a).refcount, 1);
	EXPECT(mfs_detach(a), 0);
	EXPECT(mfs_detach(b), 0);
	FDS_END();
}
END_TEST

START_TEST(create_bad_arguments)
{
	mfs_segment *s;
	mfs_options o = memfd_opts;
	FDS_BEGIN();

	s = JUNK;
	EXPECT(mfs_create("bad key", 4096, &memfd_opts, &s), MFS_E_KEY);
	ck_assert_ptr_null(s);
	s = JUNK;
	EXPECT(mfs_create("", 4096, &memfd_opts, &s), MFS_E_KEY);
	ck_assert_ptr_null(s);
	EXPECT(mfs_create(".hidden", 4096, &memfd_opts, &s), MFS_E_KEY);
	s = JUNK;
	EXPECT(mfs_create(NULL, 0, &memfd_opts, &s), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(s);
	EXPECT(mfs_create(NULL, SIZE_MAX, &memfd_opts, &s), MFS_E_INVALID_SIZE);
	EXPECT(mfs_create(NULL, 4096, &memfd_opts, NULL), MFS_E_INVALID);
	o.flags = 1u << 12;
	EXPECT(mfs_create(NULL, 4096, &o, &s), MFS_E_INVALID);
	/* A key is needed by every other backend. */
	EXPECT(mfs_create(NULL, 4096, NULL, &s), MFS_E_KEY);
	FDS_END();
}
END_TEST

/* A memfd has no name: everything by key answers MFS_E_INVALID. */
START_TEST(by_key_invalid)
{
	const char *key = KEY();
	mfs_segment *s, *t;
	mfs_stat st;
	char buf[512];
	int created = 7;
	FDS_BEGIN();

	s = mkmem(key, 4096);
	t = JUNK;
	EXPECT(mfs_attach(key, &memfd_opts, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	t = JUNK;
	EXPECT(mfs_open(key, 4096, &memfd_opts, &t, &created), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(created, 0);
	EXPECT(mfs_inspect(key, &memfd_opts, &st), MFS_E_INVALID);
	EXPECT(mfs_remove(key, &memfd_opts), MFS_E_INVALID);
	EXPECT(mfs_native_path(key, &memfd_opts, buf, sizeof buf), MFS_E_INVALID);
	/* Nor does the label leak into the SHM namespace. */
	EXPECT(mfs_attach(key, NULL, &t), MFS_E_NOT_FOUND);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ seals */

START_TEST(sealed_state)
{
	const char *key = KEY();
	mfs_segment *s, *t;
	int seals;
	FDS_BEGIN();

	s = mkmem(key, 4096);
	ck_assert_int_eq(stat_of(s).sealed, 1);
	seals = fcntl(mfs_fd(s), F_GET_SEALS);
	ck_assert_int_ge(seals, 0);
	ck_assert_msg((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
	              (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), "seals 0x%x", seals);
	ck_assert_msg(!(seals & (F_SEAL_WRITE | F_SEAL_FUTURE_WRITE)),
	              "the data must stay writable: seals 0x%x", seals);
	/* An SHM segment is not sealed (and says so). */
	EXPECT(mfs_create(key, 4096, NULL, &t), 0);
	ck_assert_int_eq(stat_of(t).sealed, 0);
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* Resizing is refused through the handle's descriptor (_i = 0) and
 * through a new open file description of the same memfd (_i = 1). */
START_TEST(sealed_resize_refused)
{
	mfs_segment *s;
	struct stat a, b;
	off_t size;
	char c = 'x';
	int fd, seals;
	FDS_BEGIN();

	s = mkmem(KEY(), 4096);
	strcpy(mfs_data(s), "intact");
	if (_i == 0)
		fd = mfs_fd(s);
	else
		fd = open(mt_proc_fd((long)getpid(), mfs_fd(s)), O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &a), 0);
	size = a.st_size;
	errno = 0;
	ck_assert_int_eq(ftruncate(fd, size / 2), -1);
	ck_assert_int_eq(errno, EPERM);
	errno = 0;
	ck_assert_int_eq(ftruncate(fd, 0), -1);
	ck_assert_int_eq(errno, EPERM);
	errno = 0;
	ck_assert_int_eq(ftruncate(fd, size * 2), -1);
	ck_assert_int_eq(errno, EPERM);
	errno = 0;
	ck_assert_int_eq(pwrite(fd, &c, 1, size), -1);
	ck_assert_int_eq(errno, EPERM);
	errno = 0;
	ck_assert_int_eq(pwrite(fd, &c, 1, size + 100000), -1);
	ck_assert_int_eq(errno, EPERM);
	errno = 0;
	ck_assert_int_eq(fallocate(fd, 0, size, 4096), -1);
	ck_assert_int_eq(errno, EPERM);
	/* No further seal can be added (F_SEAL_SEAL). */
	errno = 0;
	ck_assert_int_eq(fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE), -1);
	ck_assert_int_eq(errno, EPERM);
	seals = fcntl(fd, F_GET_SEALS);
	ck_assert(!(seals & F_SEAL_WRITE));
	/* Nothing changed; writing inside the file still works and shows. */
	ck_assert_int_eq(fstat(fd, &b), 0);
	ck_assert_int_eq(b.st_size, size);
	ck_assert_str_eq(mfs_data(s), "intact");
	ck_assert_int_eq(pwrite(fd, "W", 1, (off_t)stat_of(s).data_offset), 1);
	ck_assert_str_eq(mfs_data(s), "Wntact");
	ck_assert_uint_eq(stat_of(s).state, MFS_STATE_READY);
	if (_i == 1)
		close(fd);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* An exec'd peer that inherited the descriptor cannot resize it either. */
START_TEST(sealed_peer_resize_refused)
{
	mfs_segment *s;
	struct stat a;
	int fd;
	pid_t p;
	FDS_BEGIN();

	s = mkmem(KEY(), 8192);
	strcpy(mfs_data(s), "sealed");
	fd = export_fd(s);
	{
		const char *args[] = { "fd", mt_itoa(fd), "try-resize", "check", "sealed", NULL };
		p = peer(args, fd, NULL, NULL);
	}
	ck_assert_int_eq(mt_wait(p, 10000), 0);
	ck_assert_int_eq(fstat(mfs_fd(s), &a), 0);
	ck_assert_uint_eq((uint64_t)a.st_size, stat_of(s).file_size);
	ck_assert_uint_eq((uint64_t)a.st_size, stat_of(s).data_offset + mfs_size(s));
	close(fd);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ attach_fd */

START_TEST(attach_fd_same_process)
{
	const char *key = _i ? KEY() : NULL;
	mfs_options o = { 12345, 0, 0, NULL }; /* the backend is ignored */
	mfs_segment *s, *t, *u;
	struct stat a, b;
	char want[300];
	mfs_stat st;
	FDS_BEGIN();

	s = mkmem(key, 8192);
	strcpy(mfs_data(s), "first");
	EXPECT(mfs_attach_fd(mfs_fd(s), &o, &t), 0);
	ck_assert_ptr_ne(mfs_data(t), mfs_data(s));
	ck_assert_uint_eq(mfs_size(t), mfs_size(s));
	ck_assert_str_eq(mfs_data(t), "first");
	strcpy((char *)mfs_data(t) + 4096, "second");
	ck_assert_str_eq((char *)mfs_data(s) + 4096, "second");
	/* Its own descriptor of the same memfd. */
	ck_assert_int_ne(mfs_fd(t), mfs_fd(s));
	ck_assert_int_eq(fstat(mfs_fd(s), &a), 0);
	ck_assert_int_eq(fstat(mfs_fd(t), &b), 0);
	ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	/* What it knows of itself comes from the memfd's description. */
	snprintf(want, sizeof want, key ? "memfd:mfshare:%s" : "memfd:mfshare", key);
	ck_assert_str_eq(mfs_native_key(t), want);
	if (key)
		ck_assert_str_eq(mfs_key(t), key);
	else
		ck_assert_ptr_null(mfs_key(t));
	st = stat_of(t);
	ck_assert_uint_eq(st.refcount, 2);
	ck_assert_uint_eq(st.attach_count, 2);
	ck_assert_int_eq(st.sealed, 1);
	/* An attachment through the second handle's descriptor: a third. */
	o.backend = MFS_BACKEND_MEMFD;
	EXPECT(mfs_attach_fd(mfs_fd(t), &o, &u), 0);
	ck_assert_uint_eq(stat_of(s).refcount, 3);
	EXPECT(mfs_detach(u), 0);
	EXPECT(mfs_detach(t), 0);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	ck_assert_uint_eq(stat_of(s).attach_count, 1);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* fork + exec: the peer attaches through the inherited descriptor number,
 * sees our data, writes back, and reports the counts it sees. */
START_TEST(attach_fd_exec_child)
{
	const char *key = _i ? KEY() : NULL;
	mfs_segment *s;
	char *out;
	int fd, from;
	pid_t p;
	FDS_BEGIN();

	s = mkmem(key, 4096);
	strcpy(mfs_data(s), "from-parent");
	fd = export_fd(s);
	{
		const char *args[] = { "fd", mt_itoa(fd), "check", "from-parent",
		                       "write", "from-child", "stat", NULL };
		p = peer(args, fd, NULL, &from);
	}
	out = mt_read_all(from, 0);
	close(from);
	ck_assert_int_eq(mt_wait(p, 10000), 0);
	ck_assert_str_eq(mfs_data(s), "from-child");
	ck_assert_msg(strstr(out, "refcount: 2\n") && strstr(out, "sealed: 1\n"),
	              "peer said: %s", out);
	free(out);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	ck_assert_uint_eq(stat_of(s).attach_count, 1);
	close(fd);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* Descriptors that are not segments: refused, nothing leaked. */
START_TEST(attach_fd_bad)
{
	mfs_segment *t;
	mfs_options o = { 0, 1u << 12, 0, NULL };
	unsigned char junk[8192];
	int m, pfd[2], nul, closed;
	FDS_BEGIN();

	t = JUNK;
	EXPECT(mfs_attach_fd(-1, NULL, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	ck_assert_int_ge(closed, 0);
	close(closed);
	t = JUNK;
	EXPECT(mfs_attach_fd(closed, NULL, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	nul = open("/dev/null", O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(nul, 0);
	EXPECT(mfs_attach_fd(nul, NULL, &t), MFS_E_CORRUPT);
	close(nul);
	ck_assert_int_eq(pipe2(pfd, O_CLOEXEC), 0);
	EXPECT(mfs_attach_fd(pfd[0], NULL, &t), MFS_E_CORRUPT);
	close(pfd[0]);
	close(pfd[1]);
	/* An empty memfd, then one full of garbage. */
	m = memfd_create("not-a-segment", MFD_CLOEXEC);
	ck_assert_int_ge(m, 0);
	t = JUNK;
	EXPECT(mfs_attach_fd(m, NULL, &t), MFS_E_CORRUPT);
	ck_assert_ptr_null(t);
	memset(junk, 0xab, sizeof junk);
	ck_assert_int_eq(pwrite(m, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	EXPECT(mfs_attach_fd(m, NULL, &t), MFS_E_CORRUPT);
	EXPECT(mfs_attach_fd(m, &o, &t), MFS_E_INVALID);
	EXPECT(mfs_attach_fd(m, NULL, NULL), MFS_E_INVALID);
	close(m);
	FDS_END();
}
END_TEST

/* ============================================================ sealing required */

/*
 * A segment in an unsealed memfd: @s's bytes copied into a fresh memfd
 * (made with sealing allowed, no seal added).  Its header names its slot 0
 * as an attacher, so we hold slot 0's token through a second description
 * (*@tok), as a live creator would.
 */
static int unsealed_copy(mfs_segment *s, int *tok)
{
	struct flock fl;
	struct stat sb;
	unsigned char *buf;
	int m;

	ck_assert_int_eq(fstat(mfs_fd(s), &sb), 0);
	buf = malloc((size_t)sb.st_size);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(mfs_fd(s), buf, (size_t)sb.st_size, 0), sb.st_size);
	m = memfd_create("mfshare:unsealed", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(pwrite(m, buf, (size_t)sb.st_size, 0), sb.st_size);
	free(buf);
	ck_assert_int_eq(fcntl(m, F_GET_SEALS), 0);
	*tok = open(mt_proc_fd((long)getpid(), m), O_RDWR | O_CLOEXEC);
	ck_assert_int_ge(*tok, 0);
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)MFS_SLOT_BYTE(0);
	fl.l_len = 1;
	ck_assert_int_eq(fcntl(*tok, F_OFD_SETLK, &fl), 0);
	return m;
}

START_TEST(require_sealed_unsealed_memfd)
{
	mfs_options req = { 0, MFS_REQUIRE_SEALED, 0, NULL };
	mfs_segment *s, *t;
	int m, tok;
	FDS_BEGIN();

	s = mkmem(KEY(), 4096);
	strcpy(mfs_data(s), "copied");
	m = unsealed_copy(s, &tok);
	EXPECT(mfs_detach(s), 0);

	t = JUNK;
	EXPECT(mfs_attach_fd(m, &req, &t), MFS_E_PERMISSION);
	ck_assert_ptr_null(t);
	/* Without the option it is an ordinary (unsealed) segment. */
	EXPECT(mfs_attach_fd(m, NULL, &t), 0);
	ck_assert_str_eq(mfs_data(t), "copied");
	ck_assert_int_eq(stat_of(t).sealed, 0);
	ck_assert_uint_eq(stat_of(t).refcount, 2); /* our token and t */
	EXPECT(mfs_detach(t), 0);
	/* Sealed against shrinking only: still refused. */
	ck_assert_int_eq(fcntl(m, F_ADD_SEALS, F_SEAL_SHRINK), 0);
	EXPECT(mfs_attach_fd(m, &req, &t), MFS_E_PERMISSION);
	/* Against growing too: accepted. */
	ck_assert_int_eq(fcntl(m, F_ADD_SEALS, F_SEAL_GROW), 0);
	EXPECT(mfs_attach_fd(m, &req, &t), 0);
	ck_assert_int_eq(stat_of(t).sealed, 1);
	ck_assert_str_eq(mfs_data(t), "copied");
	EXPECT(mfs_detach(t), 0);
	close(tok);
	close(m);
	FDS_END();
}
END_TEST

/* An SHM segment's descriptor (or key) is never sealed; a memfd's is. */
START_TEST(require_sealed_shm_refused)
{
	const char *key = KEY();
	mfs_options req = { 0, MFS_REQUIRE_SEALED, 0, NULL };
	mfs_options shm_req = { MFS_BACKEND_SHM, MFS_REQUIRE_SEALED, 0, NULL };
	mfs_segment *s, *m, *t;
	int fd;
	pid_t p;
	FDS_BEGIN();

	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	t = JUNK;
	EXPECT(mfs_attach_fd(mfs_fd(s), &req, &t), MFS_E_PERMISSION);
	ck_assert_ptr_null(t);
	EXPECT(mfs_attach(key, &shm_req, &t), MFS_E_PERMISSION);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	ck_assert_uint_eq(stat_of(s).attach_count, 1);
	EXPECT(mfs_attach_fd(mfs_fd(s), NULL, &t), 0);
	EXPECT(mfs_detach(t), 0);

	m = mkmem(key, 4096);
	EXPECT(mfs_attach_fd(mfs_fd(m), &req, &t), 0);
	ck_assert_uint_eq(stat_of(m).refcount, 2);
	EXPECT(mfs_detach(t), 0);

	/* The same in an exec'd peer: refused for SHM, accepted for memfd. */
	fd = export_fd(s);
	{
		const char *args[] = { "-s", "fd", mt_itoa(fd), NULL };
		p = peer(args, fd, NULL, NULL);
	}
	ck_assert_int_eq(mt_wait(p, 10000), ATTACH_FAILED(MFS_E_PERMISSION));
	close(fd);
	fd = export_fd(m);
	{
		const char *args[] = { "-s", "fd", mt_itoa(fd), "check", "", NULL };
		p = peer(args, fd, NULL, NULL);
	}
	ck_assert_int_eq(mt_wait(p, 10000), 0);
	close(fd);
	ck_assert_uint_eq(stat_of(s).refcount, 1);
	ck_assert_uint_eq(stat_of(m).refcount, 1);
	EXPECT(mfs_detach(m), 0);
	EXPECT(mfs_detach(s), 0);
	EXPECT(mfs_attach(key, NULL, &t), MFS_E_NOT_FOUND);
	FDS_END();
}
END_TEST

/* ============================================================ lifetime */

/*
 * The memfd outlives our detach while exec'd peers hold it, and is freed
 * (the kernel drops the inode) once the last of them goes: one detaches
 * cleanly, the other is killed.
 */
START_TEST(freed_after_last_holder)
{
	mfs_segment *s;
	mfs_stat st;
	int fd, in, to[2], from[2], i;
	pid_t p[2];
	FDS_BEGIN();

	s = mkmem(KEY(), 4096);
	strcpy(mfs_data(s), "alive");
	in = watch_free(mfs_fd(s));
	fd = export_fd(s);
	for (i = 0; i < 2; i++) {
		const char *args[] = { "fd", mt_itoa(fd), "check", "alive", "hold", NULL };
		const char *line;

		p[i] = peer(args, fd, &to[i], &from[i]);
		line = mt_read_line(from[i], 5000);
		ck_assert_msg(line && strcmp(line, "attached") == 0, "peer %d did not attach", i);
	}
	close(fd);
	ck_assert_uint_eq(stat_of(s).refcount, 3);
	EXPECT(mfs_detach(s), 0);
	ck_assert_msg(!freed_within(in, 100), "freed while peers hold it");
	/* Through the second peer's descriptor: two attachments, ready. */
	EXPECT(mfs_inspect_path(mt_proc_fd((long)p[1], fd), 0, &st, NULL, 0, NULL), 0);
	ck_assert_uint_eq(st.refcount, 2);
	ck_assert_uint_eq(st.attach_count, 2);
	ck_assert_uint_eq(st.state, MFS_STATE_READY);

	close(to[0]); /* the first detaches and exits */
	ck_assert_int_eq(mt_wait(p[0], 5000), 0);
	close(from[0]);
	ck_assert_msg(!freed_within(in, 100), "freed while a peer holds it");
	EXPECT(mfs_inspect_path(mt_proc_fd((long)p[1], fd), 0, &st, NULL, 0, NULL), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(st.attach_count, 1);

	ck_assert_int_eq(kill(p[1], SIGKILL), 0);
	ck_assert_int_eq(mt_wait(p[1], 5000), KILLED);
	ck_assert_msg(freed_within(in, 2000), "the memfd was not freed after its "
	              "last holder died");
	close(to[1]);
	close(from[1]);
	close(in);
	FDS_END();
}
END_TEST

/* The last detach marks the header dead even while a bare descriptor
 * (mfs_export_fd: no token) still holds the memfd; then closing that
 * descriptor frees it. */
START_TEST(last_detach_marks_dead)
{
	mfs_segment *s, *t;
	mfs_attacher att[4];
	unsigned natt = 99;
	mfs_stat st;
	int efd, in;
	FDS_BEGIN();

	s = mkmem(KEY(), 4096);
	EXPECT(mfs_attach_fd(mfs_fd(s), NULL, &t), 0);
	EXPECT(mfs_export_fd(s, 0, &efd), 0);
	in = watch_free(efd);
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_inspect_path(mt_proc_fd((long)getpid(), efd), 0, &st, att, 4, &natt), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(natt, 1);
	ck_assert_int_eq(att[0].pid, (long)getpid());
	ck_assert_int_eq(att[0].alive, 1);
	EXPECT(mfs_detach(s), 0);

	EXPECT(mfs_inspect_path(mt_proc_fd((long)getpid(), efd), 0, &st, NULL, 0, NULL),
	       MFS_E_NOT_FOUND);
	EXPECT(mfs_inspect_path(mt_proc_fd((long)getpid(), efd), 1, &st, att, 4, &natt), 0);
	ck_assert_uint_eq(st.state, MFS_STATE_DEAD);
	ck_assert_uint_eq(st.refcount, 0);
	ck_assert_uint_eq(st.attach_count, 0);
	ck_assert_uint_eq(natt, 0);
	t = JUNK;
	EXPECT(mfs_attach_fd(efd, NULL, &t), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(t);
	ck_assert(!freed_within(in, 50));
	close(efd);
	ck_assert_msg(freed_within(in, 2000), "not freed after the last descriptor closed");
	close(in);
	FDS_END();
}
END_TEST

/* refcount and the header's attach_count while exec'd peers attach,
 * detach, are killed, and a new one takes a freed slot. */
START_TEST(counts_truthful)
{
	mfs_segment *s;
	mfs_attacher att[8];
	unsigned natt;
	mfs_stat st;
	char path[64];
	int fd, to[4], from[4], i, t;
	pid_t p[4];
	FDS_BEGIN();

	s = mkmem(KEY(), 4096);
	snprintf(path, sizeof path, "%s", mt_proc_fd((long)getpid(), mfs_fd(s)));
	fd = export_fd(s);
	for (i = 0; i < 3; i++) {
		const char *args[] = { "fd", mt_itoa(fd), "hold", NULL };
		const char *line;

		p[i] = peer(args, fd, &to[i], &from[i]);
		line = mt_read_line(from[i], 5000);
		ck_assert_msg(line && strcmp(line, "attached") == 0, "peer %d did not attach", i);
	}
	st = stat_of(s);
	ck_assert_uint_eq(st.refcount, 4);
	ck_assert_uint_eq(st.attach_count, 4);
	EXPECT(mfs_inspect_path(path, 0, &st, att, 8, &natt), 0);
	ck_assert_uint_eq(natt, 4);
	ck_assert_uint_eq(st.refcount, 4);
	for (i = 0; i < 3; i++) {
		int k = mt_find_attacher(att, natt, (long)p[i]);
		ck_assert_msg(k >= 0 && att[k].alive == 1, "peer %d: no live row", i);
	}
	ck_assert_int_ge(mt_find_attacher(att, natt, (long)getpid()), 0);

	/* A clean detach: both counts follow. */
	close(to[0]);
	ck_assert_int_eq(mt_wait(p[0], 5000), 0);
	st = stat_of(s);
	ck_assert_uint_eq(st.refcount, 3);
	ck_assert_uint_eq(st.attach_count, 3);

	/* A kill: the live count follows within 200 ms, before reaping. */
	ck_assert_int_eq(kill(p[1], SIGKILL), 0);
	t = mt_wait_refcount(s, 2, 200);
	ck_assert_msg(t >= 0, "refcount still %u 200 ms after the kill",
	              (unsigned)stat_of(s).refcount);
	EXPECT(mfs_inspect_path(path, 0, &st, att, 8, &natt), 0);
	ck_assert_uint_eq(st.refcount, 2);
	ck_assert_uint_eq(st.dead_slots, 1);
	i = mt_find_attacher(att, natt, (long)p[1]);
	ck_assert_msg(i >= 0 && att[i].alive == 0, "the killed peer's row is not dead");
	i = mt_find_attacher(att, natt, (long)p[2]);
	ck_assert_msg(i >= 0 && att[i].alive == 1, "the live peer's row is not alive");
	ck_assert_int_eq(mt_wait(p[1], 5000), KILLED);

	/* A new peer, then a clean detach: the header's count is exact again. */
	{
		const char *args[] = { "fd", mt_itoa(fd), "hold", NULL };
		const char *line;

		p[3] = peer(args, fd, &to[3], &from[3]);
		line = mt_read_line(from[3], 5000);
		ck_assert_msg(line && strcmp(line, "attached") == 0, "peer 3 did not attach");
	}
	ck_assert_uint_eq(stat_of(s).refcount, 3);
	close(to[2]);
	ck_assert_int_eq(mt_wait(p[2], 5000), 0);
	st = stat_of(s);
	ck_assert_uint_eq(st.refcount, 2);
	ck_assert_uint_eq(st.attach_count, 2);
	close(to[3]);
	ck_assert_int_eq(mt_wait(p[3], 5000), 0);
	st = stat_of(s);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(st.attach_count, 1);
	for (i = 0; i < 4; i++)
		close(from[i]);
	close(to[1]);
	close(fd);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ mfshare-dump */

/* Run mfshare-dump with @a1 [@a2]; its stdout (malloc'd), exit in *@rc. */
static char *dump(const char *a1, const char *a2, int *rc)
{
	int out[2];
	char *text;
	pid_t p;

	ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	p = fork();
	ck_assert_int_ge(p, 0);
	if (p == 0) {
		dup2(out[1], 1);
		execl(MFS_DUMP, "mfshare-dump", a1, a2, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	text = mt_read_all(out[0], 0);
	close(out[0]);
	*rc = mt_wait(p, 10000);
	return text;
}

START_TEST(dump_proc_fd)
{
	mfs_segment *s, *t;
	char path[64], *out, *sealed;
	int rc, m;
	FDS_BEGIN();

	s = mkmem(KEY(), 4096);
	EXPECT(mfs_attach_fd(mfs_fd(s), NULL, &t), 0);
	snprintf(path, sizeof path, "%s", mt_proc_fd((long)getpid(), mfs_fd(s)));
	out = dump(path, NULL, &rc);
	ck_assert_msg(rc == 0, "mfshare-dump %s: exit %d", path, rc);
	ck_assert_msg(strstr(out, "version: 1\n") != NULL, "output: %s", out);
	ck_assert_msg(strstr(out, "refcount: 2\n") != NULL, "output: %s", out);
	/* The "sealed:" field is newer than the tool's contract: when it is
	 * printed, it must be right. */
	if ((sealed = strstr(out, "sealed:")) != NULL)
		ck_assert_msg(strncmp(sealed, "sealed: 1\n", 10) == 0, "output: %s", out);
	free(out);
	out = dump("--json", path, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strstr(out, "\"refcount\":2") != NULL, "output: %s", out);
	free(out);
	EXPECT(mfs_detach(t), 0);
	out = dump(path, NULL, &rc);
	ck_assert_int_eq(rc, 0);
	ck_assert_msg(strstr(out, "refcount: 1\n") != NULL, "output: %s", out);
	free(out);

	/* A memfd that is not a segment: exit 1. */
	m = memfd_create("mfshare:junk", MFD_CLOEXEC);
	ck_assert_int_ge(m, 0);
	ck_assert_int_eq(pwrite(m, "garbage!", 8, 0), 8);
	out = dump(mt_proc_fd((long)getpid(), m), NULL, &rc);
	ck_assert_int_eq(rc, 1);
	free(out);
	close(m);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ read-only */

/* A fork()ed child attaches read-only through the memfd descriptor: it
 * reads, locks, and faults on a write; the data is unchanged. */
static int ro_child(void *arg)
{
	mfs_options ro = { 0, MFS_READ_ONLY, 0, NULL };
	mfs_segment *s = arg, *t;
	volatile char *d;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mfs_attach_fd(mfs_fd(s), &ro, &t) != 0)
		return 10;
	d = mfs_data(t);
	if (strcmp((const char *)d, "read-only") != 0)
		return 11;
	if (mfs_lock(t) != 0 || mfs_unlock(t) != 0)
		return 12;
	signal(SIGSEGV, SIG_DFL); /* a sanitizer's handler would exit instead */
	d[0] = 'X';
	return 13;
}

START_TEST(read_only_attach_fd)
{
	mfs_segment *s;
	pid_t p;
	int fd;
	FDS_BEGIN();

	s = mkmem(KEY(), 4096);
	strcpy(mfs_data(s), "read-only");
	p = mt_spawn(ro_child, s);
	ck_assert_int_ge(p, 0);
	ck_assert_int_eq(mt_wait(p, 10000), 128 + SIGSEGV);
	ck_assert_str_eq(mfs_data(s), "read-only");
	ck_assert_int_ge(mt_wait_refcount(s, 1, 200), 0);
	ck_assert_int_eq(stat_of(s).locked, 0);
	/* An exec'd peer attaches read-only through its inherited descriptor. */
	fd = export_fd(s);
	{
		const char *args[] = { "-r", "fd", mt_itoa(fd), "check", "read-only", NULL };
		p = peer(args, fd, NULL, NULL);
	}
	ck_assert_int_eq(mt_wait(p, 10000), 0);
	close(fd);
	EXPECT(mfs_detach(s), 0);
	FDS_END();
}
END_TEST

/* ============================================================ main */

int main(void)
{
	Suite *s = suite_create("memfd");
	TCase *tc;

	if (mt_begin("mf", tag, sizeof tag, tmproot, sizeof tmproot) != 0)
		return 99;

	tc = mt_tcase(s, "create", 10, NULL);
	tcase_add_test(tc, create_labelled);
	tcase_add_test(tc, create_anonymous);
	tcase_add_test(tc, create_same_label_twice);
	tcase_add_test(tc, create_bad_arguments);
	tcase_add_test(tc, by_key_invalid);

	tc = mt_tcase(s, "seals", 15, NULL);
	tcase_add_test(tc, sealed_state);
	tcase_add_loop_test(tc, sealed_resize_refused, 0, 2);
	tcase_add_test(tc, sealed_peer_resize_refused);

	tc = mt_tcase(s, "attach_fd", 15, NULL);
	tcase_add_loop_test(tc, attach_fd_same_process, 0, 2);
	tcase_add_loop_test(tc, attach_fd_exec_child, 0, 2);
	tcase_add_test(tc, attach_fd_bad);

	tc = mt_tcase(s, "require_sealed", 15, NULL);
	tcase_add_test(tc, require_sealed_unsealed_memfd);
	tcase_add_test(tc, require_sealed_shm_refused);

	tc = mt_tcase(s, "lifetime", 20, NULL);
	tcase_add_test(tc, freed_after_last_holder);
	tcase_add_test(tc, last_detach_marks_dead);
	tcase_add_test(tc, counts_truthful);

	tc = mt_tcase(s, "dump", 15, NULL);
	tcase_add_test(tc, dump_proc_fd);

	tc = mt_tcase(s, "read_only", 15, NULL);
	tcase_add_test(tc, read_only_attach_fd);

	return mt_run_clean(s, tag, "check_memfd", tmproot);
}
