/* SPDX-License-Identifier: MIT */
/*
 * The threat model of docs/SECURITY.md, tested with real processes and
 * real users: names squatted or planted by another user, hostile
 * descriptors, a peer that truncates a segment, garbage written into a
 * live header, the gate and the tokens held by a hostile peer, bounded
 * waits, and every invalid key/option/size combination.  Complements
 * check_hostile.c (hostile objects made by the segment's own user).
 */
#include "testutil.h"
#include "header.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOBODY 65534u  /* the other user: plants names, reads, squats */
#define OTHER  65533u  /* a third user, neither root nor the planter */
#define JMAX   256

#define OFF(field) ((unsigned)offsetof(struct mfs_header, field))

/* ------------------------------------------------------------ janitor */

/*
 * Shared with every test's process and its children.  The runner sweeps
 * it after each TCase (an unchecked fixture), so names made by a test
 * that failed (Check ends it with _exit: no teardown) go too.
 */
struct janitor {
	unsigned n;
	char paths[JMAX][512];
	char msg[1024];  /* why a child failed */
};

static struct janitor *jan;
static char g_tmp[512];  /* this TCase's directory: 01777, like /dev/shm */

static void jan_add(const char *path)
{
	mt_note_path(&jan->n, (char *)jan->paths, sizeof jan->paths[0], JMAX, path);
}

/* Unchecked: in the runner, once per TCase. */
static void tmp_setup(void)
{
	const char *t = mt_tmpdir();

	g_tmp[0] = '\0';
	/* Everyone may search and write it, and it is sticky, as /dev/shm:
	 * other users reach their files and only the modes decide. */
	if (t && chmod(t, 01777) == 0)
		snprintf(g_tmp, sizeof g_tmp, "%s", t);
	else
		fprintf(stderr, "check_security: no temp dir: %s\n", strerror(errno));
}

static void sweep(void)
{
	mt_remove_noted(&jan->n, (char *)jan->paths, sizeof jan->paths[0], JMAX);
	if (g_tmp[0])
		mt_rmtree(g_tmp);
	g_tmp[0] = '\0';
}

/* Checked: at the start of each test. */
static void test_setup(void)
{
	jan->msg[0] = '\0';
	ck_assert_msg(g_tmp[0] != '\0', "no temp directory");
}

/* A child's explanation of its failure, for the parent's message. */
static int cfail(int step, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int cfail(int step, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(jan->msg, sizeof jan->msg, fmt, ap);
	va_end(ap);
	return step;
}

static const char *path_of(const char *key, const mfs_options *o, char *buf, size_t len)
{
	ck_assert_int_eq(mfs_native_path(key, o, buf, len), 0);
	jan_add(buf);
	return buf;
}

static mfs_options opts_for(int file)
{
	mfs_options o;

	memset(&o, 0, sizeof o);
	o.backend = file ? MFS_BACKEND_FILE : MFS_BACKEND_SHM;
	o.dir = file ? g_tmp : NULL;
	return o;
}

static uint64_t ms_since(uint64_t t0)
{
	return mt_now_ms() - t0;
}

/* ------------------------------------------------------------ peers */

/*
 * A peer is a forked child driven over two pipes.  It dies with the test
 * (PR_SET_PDEATHSIG, set again after a change of user, which clears it)
 * and after 25 s whatever happens, so no failed test leaves one behind.
 */
struct peer {
	pid_t pid;
	int cmd;  /* parent -> child */
	int rep;  /* child -> parent */
};

typedef int (*peer_fn)(struct peer *p, void *arg);

static pid_t g_parent;

static void die_with_parent(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != g_parent)
		_exit(98);
}

static int become(uid_t uid)
{
	if (setgroups(0, NULL) != 0 || setgid((gid_t)uid) != 0 || setuid(uid) != 0)
		return -1;
	die_with_parent();
	return geteuid() == uid && getuid() == uid && getegid() == (gid_t)uid ? 0 : -1;
}

/* In a new peer: close every descriptor but stdio and its own two, so
 * that it holds no other peer's pipe (whose EOF would then never come). */
static void close_others(int keep1, int keep2)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int fd;

	if (!d)
		return;
	while ((e = readdir(d))) {
		fd = atoi(e->d_name);
		if (e->d_name[0] == '.' || fd <= 2 || fd == keep1 || fd == keep2 || fd == dirfd(d))
			continue;
		close(fd);
	}
	closedir(d);
}

static void peer_start(struct peer *p, peer_fn fn, void *arg)
{
	int a[2], b[2];
	pid_t pid;

	ck_assert_int_eq(pipe2(a, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(b, O_CLOEXEC), 0);
	g_parent = getpid();
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };

		close(a[1]);
		close(b[0]);
		p->pid = 0;
		p->cmd = a[0];
		p->rep = b[1];
		close_others(p->cmd, p->rep);
		setrlimit(RLIMIT_CORE, &no_core);
		die_with_parent();
		alarm(25);
		_exit(fn(p, arg) & 255);
	}
	close(a[0]);
	close(b[1]);
	p->pid = pid;
	p->cmd = a[1];
	p->rep = b[0];
}

/* Child side. */
static void say(struct peer *p, char c)
{
	if (write(p->rep, &c, 1) != 1)
		_exit(97);
}

static int hear(struct peer *p)
{
	ssize_t n;
	char c;

	do
		n = read(p->cmd, &c, 1);
	while (n < 0 && errno == EINTR);
	return n == 1 ? (unsigned char)c : -1;
}

/* Parent side: the peer's next byte within @ms; -1 when it ended, -2 when
 * nothing came. */
static int peer_get(struct peer *p, int ms)
{
	struct pollfd pf = { p->rep, POLLIN, 0 };
	char c;
	int r;

	do
		r = poll(&pf, 1, ms);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return -2;
	if (read(p->rep, &c, 1) != 1)
		return -1;
	return (unsigned char)c;
}

static void peer_send(struct peer *p, char c)
{
	ck_assert_int_eq(write(p->cmd, &c, 1), 1);
}

/* Close the pipes (the peer reads EOF) and reap it: its exit status,
 * 128 + signal, or -1 if it had to be killed after @ms. */
static int peer_end(struct peer *p, int ms)
{
	close(p->cmd);
	close(p->rep);
	return mt_wait(p->pid, ms);
}

static void peer_kill(struct peer *p)
{
	kill(p->pid, SIGKILL);
	peer_end(p, 5000);
}

/* Wait for @want from the peer, or fail the test with its explanation. */
static void peer_expect(struct peer *p, int want, int ms, const char *who)
{
	int c = peer_get(p, ms), rc;

	if (c == want)
		return;
	rc = peer_end(p, 5000);
	ck_abort_msg("%s: got %d instead of '%c'; it ended with status %d: %s", who, c,
	             want, rc, jan->msg);
}

static void peer_done(struct peer *p, const char *who)
{
	int rc = peer_end(p, 10000);

	ck_assert_msg(rc == 0, "%s failed at step %d: %s", who, rc, jan->msg);
}

/* Wait until @pid is inside openat(2) (e.g. blocked opening a FIFO). */
static int in_open(pid_t pid, int ms)
{
	char path[64], buf[64];
	uint64_t end = mt_now_ms() + (uint64_t)ms;
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%ld/syscall", (long)pid);
	do {
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			mt_sleep_ms(100); /* no /proc/PID/syscall: give it time */
			return 1;
		}
		n = read(fd, buf, sizeof buf - 1);
		close(fd);
		if (n > 0) {
			buf[n] = '\0';
			if (atol(buf) == SYS_openat)
				return 1;
		}
		mt_sleep_ms(2);
	} while (mt_now_ms() < end);
	return 0;
}

/* A nobody process that blocks opening the FIFO @path for writing and
 * says 'O' once that open returns, i.e. once somebody opened the FIFO. */
static int fifo_opener(struct peer *p, void *arg)
{
	const char *path = arg;
	int fd;

	if (become(NOBODY) != 0)
		return cfail(1, "fifo opener: cannot become nobody");
	say(p, 'S');
	fd = open(path, O_WRONLY | O_CLOEXEC);
	say(p, fd >= 0 ? 'O' : 'F');
	hear(p);
	return 0;
}

/* ------------------------------------------------------------ snapshots */

struct snap {
	struct stat st;
	unsigned char *bytes;  /* regular files: the whole content */
	size_t len;
	char target[512];      /* symbolic links */
};

static int snap_take(const char *path, struct snap *s)
{
	ssize_t n;

	memset(s, 0, sizeof *s);
	if (lstat(path, &s->st) != 0)
		return -1;
	if (S_ISREG(s->st.st_mode)) {
		s->bytes = mt_slurp(path, (size_t)s->st.st_size + 1, &s->len);
		if (!s->bytes)
			return -1;
	} else if (S_ISLNK(s->st.st_mode)) {
		n = readlink(path, s->target, sizeof s->target - 1);
		if (n < 0)
			return -1;
		s->target[n] = '\0';
	}
	return 0;
}

#define TS_EQ(a, b) ((a).tv_sec == (b).tv_sec && (a).tv_nsec == (b).tv_nsec)

/*
 * NULL if the object at @path is still @a's and unchanged, else what
 * differs.  @strict: every byte, mtime and ctime; otherwise only what an
 * attachment may not change (identity, owner, mode, size, the data).
 */
static const char *snap_diff(const char *path, const struct snap *a, int strict)
{
	static char why[256];
	struct snap b;
	const char *d = NULL;

	if (snap_take(path, &b) != 0) {
		snprintf(why, sizeof why, "%s is gone: %s", path, strerror(errno));
		return why;
	}
	if (a->st.st_ino != b.st.st_ino || a->st.st_dev != b.st.st_dev)
		d = "replaced (another inode)";
	else if (a->st.st_mode != b.st.st_mode)
		d = "mode or type changed";
	else if (a->st.st_uid != b.st.st_uid || a->st.st_gid != b.st.st_gid)
		d = "owner changed";
	else if (a->st.st_nlink != b.st.st_nlink)
		d = "link count changed";
	else if (a->st.st_size != b.st.st_size || a->len != b.len)
		d = "size changed";
	else if (strcmp(a->target, b.target) != 0)
		d = "link target changed";
	else if (strict && !TS_EQ(a->st.st_mtim, b.st.st_mtim))
		d = "mtime changed";
	else if (strict && !TS_EQ(a->st.st_ctim, b.st.st_ctim))
		d = "ctime changed";
	else if (strict && a->len && memcmp(a->bytes, b.bytes, a->len) != 0)
		d = "content changed";
	else if (!strict && a->len > MFS_HEADER_SIZE &&
	         memcmp(a->bytes + MFS_HEADER_SIZE, b.bytes + MFS_HEADER_SIZE,
	                a->len - MFS_HEADER_SIZE) != 0)
		d = "data changed";
	free(b.bytes);
	if (!d)
		return NULL;
	snprintf(why, sizeof why, "%s: %s", path, d);
	return why;
}

/* ============================================================ squatting */

/*
 * Another user (nobody) puts something at a segment's name: a live
 * segment of its own, a stale one (it died attached), a plain file, or a
 * hard link to a segment of its own; in mode 0600, 0644 or 0666.  Then
 * root, or a third unprivileged user, calls every lifecycle function on
 * the name.  Expected (one letter per call, in this order):
 *   attach, attach+ALLOW_FOREIGN, inspect, inspect_path, remove, open |
 *   open+ALLOW_FOREIGN, create, create+ALLOW_FOREIGN, remove+ALLOW_FOREIGN
 * P permission, E exists, C corrupt, N not found, 0 success (attached and
 * detached, or read), R success that replaced the planted (stale) file by
 * a new segment of the caller's, D success that removed the name, - not
 * run.  Calls before '|' never replace or remove the object (and only an
 * attachment that succeeded writes to it: its slot); the others may, and
 * run after the object has been checked.
 */
enum { SQ_LIVE, SQ_STALE, SQ_PLAIN, SQ_LINK };

enum {
	A_ATTACH, A_ATTACH_F, A_INSPECT, A_INSPECT_PATH, A_REMOVE, A_OPEN,
	A_OPEN_F, A_CREATE, A_CREATE_F, A_REMOVE_F, NACTS
};
#define PHASE2 A_OPEN_F

static const char *const act_name[NACTS] = {
	"attach", "attach(ALLOW_FOREIGN)", "inspect", "inspect_path", "remove", "open",
	"open(ALLOW_FOREIGN)", "create", "create(ALLOW_FOREIGN)", "remove(ALLOW_FOREIGN)"
};

struct sq_row {
	const char *name;
	int kind;
	unsigned mode;
	const char *root;   /* expected for root */
	const char *other;  /* expected for the third user */
};

/*
 * Root may open anything, so only the library's policy stands between it
 * and nobody's files; it replaces a stale segment (create reaps what the
 * file system lets it unlink, see mfs_reap), never a live one or a
 * non-segment.  The third user cannot unlink nobody's files in a sticky
 * directory, so its reaps and removes end in MFS_E_PERMISSION.
 */
static const struct sq_row sq_rows[] = {
	{ "live 0600",  SQ_LIVE,  0600, "PPPPPP" "PEEP", "PPPPPP" "PEEP" },
	{ "live 0644",  SQ_LIVE,  0644, "PP00PP" "PEEP", "PP00PP" "PEEP" },
	{ "live 0666",  SQ_LIVE,  0666, "P000PP" "0EED", "P000PP" "0EEP" },
	{ "stale 0600", SQ_STALE, 0600, "PPPPPP" "PR--", "PPPPPP" "PEEP" },
	{ "stale 0644", SQ_STALE, 0644, "PPNNPP" "PR--", "PPNNPP" "PEEP" },
	{ "stale 0666", SQ_STALE, 0666, "PNNNPP" "R---", "PNNNPP" "PPPP" },
	{ "plain 0600", SQ_PLAIN, 0600, "PPPPPP" "PEEP", "PPPPPP" "PEEP" },
	{ "plain 0644", SQ_PLAIN, 0644, "PPCCPP" "PEEP", "PPCCPP" "PEEP" },
	{ "plain 0666", SQ_PLAIN, 0666, "PCCCPP" "CEEC", "PCCCPP" "CEEC" },
	{ "hard link 0600", SQ_LINK, 0600, "PPPPPP" "PEEP", "PPPPPP" "PEEP" },
	{ "hard link 0666", SQ_LINK, 0666, "P000PP" "0EED", "P000PP" "0EEP" },
};
#define NROWS ((int)(sizeof sq_rows / sizeof sq_rows[0]))

struct sq_args {
	const struct sq_row *row;
	int other;                  /* the caller is OTHER, not root */
	const char *where;          /* "shm" or "file" */
	mfs_options o;
	const char *key, *path;     /* the squatted name */
	const char *key_a, *path_a; /* SQ_LINK: nobody's own segment */
	unsigned max_slot_high;     /* nobody's segment at the end: 1 = never attached */
};

static int code_of(char c)
{
	switch (c) {
	case 'P': return MFS_E_PERMISSION;
	case 'E': return MFS_E_EXISTS;
	case 'C': return MFS_E_CORRUPT;
	case 'N': return MFS_E_NOT_FOUND;
	default: return 0; /* '0', 'R', 'D' */
	}
}

static int planter(struct peer *p, void *arg)
{
	static const char junk[] = "not a segment: planted by nobody\n";
	struct sq_args *a = arg;
	mfs_options o = a->o;
	mfs_segment *s = NULL;
	mfs_stat st;
	int fd;

	if (become(NOBODY) != 0)
		return cfail(1, "planter: cannot become nobody");
	o.mode = a->row->mode;
	switch (a->row->kind) {
	case SQ_PLAIN:
		fd = open(a->path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 || write(fd, junk, sizeof junk - 1) != (ssize_t)(sizeof junk - 1) ||
		    fchmod(fd, a->row->mode) != 0)
			return cfail(2, "planter: %s: %s", a->path, strerror(errno));
		close(fd);
		say(p, 'R');
		return 0;
	case SQ_LINK:
		if (mfs_create(a->key_a, 4096, &o, &s) != 0)
			return cfail(3, "planter: create: %s", mfs_last_error());
		if (link(a->path_a, a->path) != 0)
			return cfail(4, "planter: link %s: %s", a->path, strerror(errno));
		break;
	default:
		if (mfs_create(a->key, 4096, &o, &s) != 0)
			return cfail(5, "planter: create: %s", mfs_last_error());
	}
	say(p, 'R');
	if (a->row->kind == SQ_STALE)
		_exit(0); /* dies attached: its segment is stale */
	hear(p);
	if (mfs_stat_segment(s, &st) != 0 || st.refcount != 1)
		return cfail(6, "nobody's segment: refcount %u at the end", st.refcount);
	if (st.slot_high > a->max_slot_high)
		return cfail(7, "nobody's segment was attached (slot_high %u)", st.slot_high);
	if (mfs_detach(s) != 0)
		return cfail(8, "nobody's detach: %s", mfs_last_error());
	return 0;
}

/* 'R': the caller holds a new segment of its own, nothing of nobody's. */
static int replaced(const struct sq_args *a, mfs_segment *s)
{
	const unsigned char *d = mfs_const_data(s);
	struct stat fst;
	mfs_stat st;
	size_t i;

	if (mfs_stat_segment(s, &st) != 0 || fstat(mfs_fd(s), &fst) != 0)
		return cfail(40, "stat of the new segment failed");
	/* (The inode number may come back: the old file is freed first.) */
	if (fst.st_uid != geteuid() || fst.st_uid == NOBODY)
		return cfail(41, "the planted file was used instead of replaced");
	if (st.uid != geteuid() || st.mode != 0600 || st.creator_pid != (long)getpid() ||
	    st.refcount != 1 || st.slot_high != 1)
		return cfail(42, "the new segment: uid %u mode %o creator %ld refcount %u",
		             st.uid, st.mode, st.creator_pid, st.refcount);
	for (i = 0; i < mfs_size(s); i++)
		if (d[i] != 0)
			return cfail(43, "the new segment's data is not zero at %zu", i);
	if (mfs_detach(s) != 0 || access(a->path, F_OK) == 0)
		return cfail(44, "the new segment was not destroyed by its detach");
	return 0;
}

static int caller(struct peer *p, void *arg)
{
	struct sq_args *a = arg;
	const char *want = a->other ? a->row->other : a->row->root;
	const char *who = a->other ? "uid 65533" : "root";
	struct stat x;
	int i;

	if (a->other && become(OTHER) != 0)
		return cfail(1, "caller: cannot become uid %u", OTHER);
	for (i = 0; i < NACTS && want[i] != '-'; i++) {
		mfs_segment *s = (mfs_segment *)&s;
		mfs_options o = a->o;
		mfs_stat st;
		uint64_t t0;
		int r, created = 7, out = 1;

		if (i == PHASE2) {
			say(p, '1');
			if (hear(p) != 'g')
				return cfail(2, "caller: not told to go on");
		}
		if (i == A_ATTACH_F || i == A_OPEN_F || i == A_CREATE_F || i == A_REMOVE_F)
			o.flags |= MFS_ALLOW_FOREIGN;
		t0 = mt_now_ms();
		switch (i) {
		case A_ATTACH: case A_ATTACH_F:
			r = mfs_attach(a->key, &o, &s);
			break;
		case A_OPEN: case A_OPEN_F:
			r = mfs_open(a->key, 4096, &o, &s, &created);
			break;
		case A_CREATE: case A_CREATE_F:
			r = mfs_create(a->key, 4096, &o, &s);
			break;
		case A_INSPECT:
			r = mfs_inspect(a->key, &o, &st);
			out = 0;
			break;
		case A_INSPECT_PATH:
			r = mfs_inspect_path(a->path, 0, &st, NULL, 0, NULL);
			out = 0;
			break;
		default:
			r = mfs_remove(a->key, &o);
			out = 0;
		}
		if (r != code_of(want[i]))
			return cfail(10 + i, "%s (%s), %s by %s: %s, want %s (%s)", a->row->name,
			             a->where, act_name[i], who, mfs_err_name(r),
			             mfs_err_name(code_of(want[i])), mfs_last_error());
		if (ms_since(t0) > 900)
			return cfail(30 + i, "%s: %s took %d ms", a->row->name, act_name[i],
			             (int)ms_since(t0));
		if (out && r != 0 && s != NULL)
			return cfail(50 + i, "%s: failed %s left a handle", a->row->name, act_name[i]);
		if ((i == A_OPEN || i == A_OPEN_F) && created != (want[i] == 'R'))
			return cfail(60 + i, "%s: %s set created=%d", a->row->name, act_name[i],
			             created);
		if (want[i] == 'R')
			return replaced(a, s);
		if (want[i] == 'D') {
			if (lstat(a->path, &x) == 0 || errno != ENOENT)
				return cfail(70, "%s: the name survived its removal", a->row->name);
			if (a->path_a && lstat(a->path_a, &x) != 0)
				return cfail(71, "%s: the link's other name went too", a->row->name);
			return 0;
		}
		if (r == 0 && out && mfs_detach(s) != 0)
			return cfail(80 + i, "%s: detach after %s: %s", a->row->name, act_name[i],
			             mfs_last_error());
	}
	return 0;
}

START_TEST(squat)
{
	const struct sq_row *row = &sq_rows[_i % NROWS];
	int other = (_i / NROWS) % 2, file = _i / NROWS / 2;
	char path[4352], path_a[4352];
	const char *want, *why;
	struct sq_args a;
	struct peer pl, ca;
	struct snap before;
	int strict, alive;

	ck_assert_uint_eq(geteuid(), 0);
	memset(&a, 0, sizeof a);
	a.row = row;
	a.other = other;
	a.where = file ? "file" : "shm";
	a.o = opts_for(file);
	a.key = mt_key("squat");
	a.path = path_of(a.key, &a.o, path, sizeof path);
	if (row->kind == SQ_LINK) {
		a.key_a = mt_key("squat-own");
		a.path_a = path_of(a.key_a, &a.o, path_a, sizeof path_a);
	}
	want = other ? row->other : row->root;
	a.max_slot_high = want[A_ATTACH_F] == '0' || want[A_OPEN_F] == '0' ? 2 : 1;
	alive = row->kind == SQ_LIVE || row->kind == SQ_LINK;

	peer_start(&pl, planter, &a);
	peer_expect(&pl, 'R', 5000, "planter");
	if (!alive)
		peer_done(&pl, "planter");
	ck_assert_int_eq(snap_take(path, &before), 0);
	ck_assert_uint_eq(before.st.st_uid, NOBODY);
	ck_assert_uint_eq(before.st.st_mode & 07777, row->mode);

	/* Only an attachment that succeeded may have written (its slot). */
	strict = want[A_ATTACH_F] != '0';
	peer_start(&ca, caller, &a);
	peer_expect(&ca, '1', 10000, "caller");
	why = snap_diff(path, &before, strict);
	ck_assert_msg(!why, "%s (%s): %s", row->name, a.where, why);
	peer_send(&ca, 'g');
	peer_done(&ca, "caller");
	if (!strchr(want, 'R') && !strchr(want, 'D')) {
		why = snap_diff(path, &before, strict && want[A_OPEN_F] != '0');
		ck_assert_msg(!why, "%s (%s): %s", row->name, a.where, why);
	}
	if (alive)
		peer_done(&pl, "planter");
	mt_remove_object(path);
	free(before.bytes);
}
END_TEST

/* ============================================================ planted objects */

struct plant {
	const char *path;
	const char *target;  /* symlink */
	int kind;
};

enum { PL_SYMLINK, PL_DIR, PL_FIFO, PL_SOCKET };

static int plant_fn(struct peer *p, void *arg)
{
	struct plant *pl = arg;
	struct sockaddr_un sa;
	int fd;

	if (become(NOBODY) != 0)
		return cfail(1, "plant: cannot become nobody");
	switch (pl->kind) {
	case PL_SYMLINK:
		if (symlink(pl->target, pl->path) != 0)
			return cfail(2, "symlink %s: %s", pl->path, strerror(errno));
		break;
	case PL_DIR:
		if (mkdir(pl->path, 0777) != 0)
			return cfail(3, "mkdir %s: %s", pl->path, strerror(errno));
		break;
	case PL_FIFO:
		if (mkfifo(pl->path, 0666) != 0)
			return cfail(4, "mkfifo %s: %s", pl->path, strerror(errno));
		break;
	case PL_SOCKET:
		memset(&sa, 0, sizeof sa);
		sa.sun_family = AF_UNIX;
		if (strlen(pl->path) >= sizeof sa.sun_path)
			return cfail(5, "socket path too long: %s", pl->path);
		strcpy(sa.sun_path, pl->path);
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4) != 0)
			return cfail(6, "bind %s: %s", pl->path, strerror(errno));
		break;
	}
	say(p, 'R');
	hear(p); /* a listening socket stays live until the test is done */
	return 0;
}

/* Every call by key refuses @key's object as a non-segment, and never
 * opens it; create finds the name taken. */
static void refuse_all(const char *key, const char *path, const mfs_options *base,
                       const char *why)
{
	mfs_options of = *base;
	mfs_segment *s;
	mfs_stat st;
	int created = 7, r, i;

	of.flags |= MFS_ALLOW_FOREIGN;
	for (i = 0; i < 2; i++) {
		const mfs_options *o = i ? &of : base;

		s = (mfs_segment *)&s;
		r = mfs_attach(key, o, &s);
		ck_assert_msg(r == MFS_E_CORRUPT, "attach: %s (%s)", mfs_err_name(r), mfs_last_error());
		ck_assert_ptr_null(s);
		if (why)
			ck_assert_msg(strstr(mfs_last_error(), why), "attach: \"%s\" lacks \"%s\"",
			              mfs_last_error(), why);
		s = (mfs_segment *)&s;
		r = mfs_open(key, 4096, o, &s, &created);
		ck_assert_msg(r == MFS_E_CORRUPT, "open: %s (%s)", mfs_err_name(r), mfs_last_error());
		ck_assert_ptr_null(s);
		ck_assert_int_eq(created, 0);
		r = mfs_inspect(key, o, &st);
		ck_assert_msg(r == MFS_E_CORRUPT, "inspect: %s (%s)", mfs_err_name(r),
		              mfs_last_error());
		r = mfs_remove(key, o);
		ck_assert_msg(r == MFS_E_CORRUPT, "remove: %s (%s)", mfs_err_name(r),
		              mfs_last_error());
		r = mfs_reap(key, o);
		ck_assert_msg(r == MFS_E_CORRUPT, "reap: %s (%s)", mfs_err_name(r), mfs_last_error());
		s = (mfs_segment *)&s;
		r = mfs_create(key, 4096, o, &s);
		ck_assert_msg(r == MFS_E_EXISTS, "create: %s (%s)", mfs_err_name(r), mfs_last_error());
		ck_assert_ptr_null(s);
		ck_assert_msg(strstr(mfs_last_error(), path), "create: \"%s\" lacks the path",
		              mfs_last_error());
	}
	r = mfs_reap_path(path);
	ck_assert_msg(r == MFS_E_CORRUPT, "reap_path: %s (%s)", mfs_err_name(r), mfs_last_error());
}

static void write_text(const char *path, const char *text, unsigned mode)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	size_t len = strlen(text);

	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
	ck_assert_int_eq(fchmod(fd, mode), 0);
	ck_assert_int_eq(close(fd), 0);
}

/*
 * A symbolic link planted by nobody at the name, to (0) a live segment of
 * root's or (1) a copy of a passwd file: never followed by a call by key
 * (a followed link to the segment would attach), the target untouched.
 */
START_TEST(symlink_planted)
{
	int to_segment = _i % 2 == 0, file = _i / 2;
	mfs_options o = opts_for(file);
	const char *key = mt_key("link");
	char path[4352], tpath[600];
	struct plant pl = { path, NULL, PL_SYMLINK };
	struct snap tsnap, lsnap;
	mfs_segment *t = NULL;
	struct peer p;
	const char *why;
	mfs_stat st;
	uint64_t t0;

	path_of(key, &o, path, sizeof path);
	if (to_segment) {
		ck_assert_int_eq(mfs_create(mt_key("link-target"), 4096, &o, &t), 0);
		jan_add(mfs_native_key(t));
		memset(mfs_data(t), 0xa5, 64);
		pl.target = mfs_native_key(t);
	} else {
		snprintf(tpath, sizeof tpath, "%s/passwd-%s", g_tmp, key);
		jan_add(tpath);
		write_text(tpath, "root:x:0:0:root:/root:/bin/sh\n"
		           "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", 0644);
		pl.target = tpath;
	}
	ck_assert_int_eq(snap_take(pl.target, &tsnap), 0);
	peer_start(&p, plant_fn, &pl);
	peer_expect(&p, 'R', 5000, "planter");
	peer_done(&p, "planter");
	ck_assert_int_eq(snap_take(path, &lsnap), 0);
	ck_assert(S_ISLNK(lsnap.st.st_mode));
	ck_assert_uint_eq(lsnap.st.st_uid, NOBODY);

	t0 = mt_now_ms();
	refuse_all(key, path, &o, "symbolic link");
	ck_assert_uint_lt(ms_since(t0), 1000);

	why = snap_diff(pl.target, &tsnap, 1);
	ck_assert_msg(!why, "the link's target: %s", why);
	why = snap_diff(path, &lsnap, 1);
	ck_assert_msg(!why, "the link: %s", why);
	if (t) {
		ck_assert_int_eq(mfs_stat_segment(t, &st), 0);
		ck_assert_uint_eq(st.refcount, 1);
		ck_assert_uint_eq(st.slot_high, 1); /* nobody attached through the link */
		ck_assert_int_eq(mfs_detach(t), 0);
	}
	mt_remove_object(path);
	free(tsnap.bytes);
}
END_TEST

/*
 * A directory, a FIFO or a listening Unix socket planted by nobody at the
 * name: refused at once, and never opened: a nobody process blocked
 * opening the FIFO for writing stays blocked (an open for reading, even
 * non-blocking, would release it).
 */
START_TEST(nonregular_planted)
{
	static const int kinds[] = { PL_DIR, PL_FIFO, PL_SOCKET };
	int kind = kinds[_i % 3], file = _i / 3;
	mfs_options o = opts_for(file);
	const char *key = mt_key("obj");
	char path[4352];
	struct plant pl = { path, NULL, kind };
	struct peer p, opener;
	struct snap before;
	mfs_stat st;
	const char *why;
	uint64_t t0;
	int r;

	path_of(key, &o, path, sizeof path);
	peer_start(&p, plant_fn, &pl);
	peer_expect(&p, 'R', 5000, "planter");
	ck_assert_int_eq(snap_take(path, &before), 0);
	ck_assert_uint_eq(before.st.st_uid, NOBODY);
	if (kind == PL_FIFO) {
		peer_start(&opener, fifo_opener, path);
		peer_expect(&opener, 'S', 5000, "FIFO opener");
		ck_assert(in_open(opener.pid, 2000));
	}

	t0 = mt_now_ms();
	refuse_all(key, path, &o, kind == PL_DIR ? NULL : kind == PL_FIFO ?
	           "not a regular file" : NULL);
	r = mfs_inspect_path(path, 1, &st, NULL, 0, NULL);
	ck_assert_msg(r == MFS_E_CORRUPT, "inspect_path: %s (%s)", mfs_err_name(r),
	              mfs_last_error());
	ck_assert_uint_lt(ms_since(t0), 1000);

	if (kind == PL_FIFO) {
		r = peer_get(&opener, 200);
		ck_assert_msg(r == -2, "the FIFO was opened by a library call ('%c')", r);
		peer_kill(&opener);
	}
	why = snap_diff(path, &before, 0);
	ck_assert_msg(!why, "%s", why);
	peer_done(&p, "planter");
	mt_remove_object(path);
}
END_TEST

/* ============================================================ descriptors */

enum {
	FD_FIFO_PATH, FD_FIFO, FD_SOCKETPAIR, FD_PIPE_READ, FD_PIPE_WRITE, FD_DEVNULL,
	FD_DEVZERO, FD_DIR, FD_DIR_PATH, FD_EVENTFD, FD_MEMFD_EMPTY, FD_MEMFD_JUNK,
	FD_LISTENER, NFDKINDS
};

static const char *const fd_name[NFDKINDS] = {
	"an O_PATH FIFO", "a FIFO", "a socketpair end", "a pipe's read end",
	"a pipe's write end", "/dev/null", "/dev/zero", "a directory",
	"an O_PATH directory", "an eventfd", "an empty memfd", "a memfd of junk",
	"a listening socket"
};

/* A descriptor of kind @k; *@other is a second one to close, or -1. */
static int hostile_fd(int k, const char *fifo, int *other)
{
	struct sockaddr_un sa;
	int v[2], fd = -1;

	*other = -1;
	switch (k) {
	case FD_FIFO_PATH: fd = open(fifo, O_PATH | O_CLOEXEC); break;
	case FD_FIFO: fd = open(fifo, O_RDWR | O_CLOEXEC); break;
	case FD_SOCKETPAIR:
	case FD_PIPE_READ:
	case FD_PIPE_WRITE:
		if (k == FD_SOCKETPAIR)
			ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, v), 0);
		else
			ck_assert_int_eq(pipe2(v, O_CLOEXEC), 0);
		fd = k == FD_PIPE_WRITE ? v[1] : v[0];
		*other = k == FD_PIPE_WRITE ? v[0] : v[1];
		break;
	case FD_DEVNULL: fd = open("/dev/null", O_RDWR | O_CLOEXEC); break;
	case FD_DEVZERO: fd = open("/dev/zero", O_RDWR | O_CLOEXEC); break;
	case FD_DIR: fd = open(g_tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC); break;
	case FD_DIR_PATH: fd = open(g_tmp, O_PATH | O_CLOEXEC); break;
	case FD_EVENTFD: fd = eventfd(0, EFD_CLOEXEC); break;
	case FD_MEMFD_EMPTY: fd = memfd_create("mfshare:hostile", MFD_CLOEXEC); break;
	case FD_MEMFD_JUNK:
		fd = memfd_create("mfshare:hostile", MFD_CLOEXEC);
		ck_assert_int_eq(write(fd, "junk, not a header", 18), 18);
		break;
	case FD_LISTENER:
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		memset(&sa, 0, sizeof sa);
		sa.sun_family = AF_UNIX;
		ck_assert_uint_lt(strlen(fifo) + 6, sizeof sa.sun_path);
		memcpy(sa.sun_path, fifo, strlen(fifo));
		memcpy(sa.sun_path + strlen(fifo), ".sock", 6);
		jan_add(sa.sun_path);
		ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
		ck_assert_int_eq(listen(fd, 1), 0);
		break;
	}
	ck_assert_msg(fd >= 0, "%s: %s", fd_name[k], strerror(errno));
	return fd;
}

/* What mfs_send puts on the wire, forged: the magic, a size, and @fd. */
static void send_forged(int sock, int fd)
{
	unsigned char msgbuf[16];
	uint64_t size = 4096;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct msghdr msg;
	struct iovec iov;
	struct cmsghdr *c;

	memcpy(msgbuf, "mfshare1", 8);
	memcpy(msgbuf + 8, &size, 8);
	iov.iov_base = msgbuf;
	iov.iov_len = sizeof msgbuf;
	memset(&msg, 0, sizeof msg);
	memset(&ctl, 0, sizeof ctl);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof ctl.buf;
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	ck_assert_int_eq(sendmsg(sock, &msg, MSG_NOSIGNAL), (ssize_t)sizeof msgbuf);
}

/*
 * Descriptors a hostile peer could hand over (inherited, over a socket,
 * in a locator): refused as MFS_E_CORRUPT at once, whatever the flags,
 * never reopened (the FIFO's blocked writer stays blocked), never leaked,
 * and the caller's descriptor stays the caller's.
 */
START_TEST(attach_fd_hostile)
{
	static const unsigned flag_sets[] = {
		0, MFS_READ_ONLY, MFS_REQUIRE_SEALED | MFS_ALLOW_FOREIGN
	};
	char fifo[600], loc[32];
	struct peer opener;
	mfs_options o;
	mfs_segment *s;
	int fd, other, fds, sv[2], r, i;
	uint64_t t0;

	snprintf(fifo, sizeof fifo, "%s/%s", g_tmp, mt_key("fifo"));
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	ck_assert_int_eq(chmod(fifo, 0666), 0); /* nobody opens it for writing */
	jan_add(fifo);
	if (_i == FD_FIFO_PATH) {
		peer_start(&opener, fifo_opener, fifo);
		peer_expect(&opener, 'S', 5000, "FIFO opener");
		ck_assert(in_open(opener.pid, 2000));
	}
	fd = hostile_fd(_i, fifo, &other);
	fds = mt_count_fds();
	t0 = mt_now_ms();
	memset(&o, 0, sizeof o);
	o.backend = 12345; /* ignored by attach_fd, whatever its value */
	for (i = 0; i < 3; i++) {
		o.flags = flag_sets[i];
		s = (mfs_segment *)&s;
		r = mfs_attach_fd(fd, &o, &s);
		ck_assert_msg(r == MFS_E_CORRUPT, "%s: attach_fd gave %s (%s)", fd_name[_i],
		              mfs_err_name(r), mfs_last_error());
		ck_assert_ptr_null(s);
	}
	snprintf(loc, sizeof loc, "fd:%d", fd);
	s = (mfs_segment *)&s;
	r = mfs_attach_locator(loc, NULL, &s);
	ck_assert_msg(r == MFS_E_CORRUPT, "%s: attach_locator gave %s", fd_name[_i],
	              mfs_err_name(r));
	ck_assert_ptr_null(s);

	/* Over a socket, in a message that looks like mfs_send's. */
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	send_forged(sv[0], fd);
	s = (mfs_segment *)&s;
	r = mfs_recv(sv[1], NULL, 1000, &s);
	ck_assert_msg(r == MFS_E_CORRUPT, "%s: recv gave %s", fd_name[_i], mfs_err_name(r));
	ck_assert_ptr_null(s);
	close(sv[0]);
	close(sv[1]);

	ck_assert_uint_lt(ms_since(t0), 1000);
	ck_assert_int_eq(mt_count_fds(), fds);          /* nothing leaked */
	ck_assert_int_ge(fcntl(fd, F_GETFD), 0);       /* and ours is still ours */
	if (_i == FD_FIFO_PATH) {
		r = peer_get(&opener, 200);
		ck_assert_msg(r == -2, "the FIFO was reopened ('%c')", r);
		peer_kill(&opener);
	}
	close(fd);
	if (other >= 0)
		close(other);
}
END_TEST

static int recv_partial(void *arg)
{
	int *sv = arg;
	mfs_segment *s = NULL;
	uint64_t t0 = mt_now_ms();
	int r = mfs_recv(sv[1], NULL, 300, &s);

	if (r == 0)
		return 1;
	return ms_since(t0) < 1000 ? 0 : 2;
}

/*
 * A peer that sends the start of a message (with or without a
 * descriptor) and then stays silent, its end of the socket open: mfs_recv
 * still answers within about its timeout, and keeps no descriptor.
 */
START_TEST(recv_partial_message_bounded)
{
	int sv[2], fd, fds, r;
	pid_t pid;
	struct msghdr msg;
	struct iovec iov;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct cmsghdr *c;

	fd = memfd_create("mfshare:partial", MFD_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	iov.iov_base = (void *)"mfsha";
	iov.iov_len = 5;
	memset(&msg, 0, sizeof msg);
	memset(&ctl, 0, sizeof ctl);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	if (_i == 1) {
		msg.msg_control = ctl.buf;
		msg.msg_controllen = sizeof ctl.buf;
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof fd);
	}
	ck_assert_int_eq(sendmsg(sv[0], &msg, MSG_NOSIGNAL), 5);
	pid = mt_spawn(recv_partial, sv);
	ck_assert_int_gt(pid, 0);
	r = mt_wait(pid, 3000);
	ck_assert_msg(r == 0, "mfs_recv of a partial message: %s",
	              r < 0 ? "still blocked after 3 s" : "answered wrongly or late");
	/* The same in this process: the descriptor is not leaked. */
	if (_i == 1)
		ck_assert_int_eq(sendmsg(sv[0], &msg, MSG_NOSIGNAL), 5);
	fds = mt_count_fds();
	ck_assert_int_eq(recv_partial(sv), 0);
	ck_assert_int_eq(mt_count_fds(), fds);
	close(sv[0]);
	close(sv[1]);
	close(fd);
}
END_TEST

/* ============================================================ truncation */

static int touch_data(void *arg)
{
	mfs_segment *s = arg;
	struct rlimit no_core = { 0, 0 };
	volatile unsigned char *d = mfs_data(s);

	/* The default action, so the fault kills us with SIGBUS even when a
	 * sanitizer runtime has installed its own handler. */
	signal(SIGBUS, SIG_DFL);
	setrlimit(RLIMIT_CORE, &no_core);
	return d[0] == 0x5a ? 0 : 1; /* SIGBUS first, if the page is gone */
}

static int stat_copy(void *arg)
{
	mfs_segment *s = arg;
	struct rlimit no_core = { 0, 0 };
	mfs_stat st;
	signal(SIGBUS, SIG_DFL); /* see touch_data */

	setrlimit(RLIMIT_CORE, &no_core);
	return mfs_stat_segment(s, &st) == 0 ? 0 : 1;
}

static int truncate_peer(void *arg)
{
	const char *spec = arg; /* "SIZE PATH" */
	char *end;
	long long size = strtoll(spec, &end, 10);
	int fd = open(end + 1, O_RDWR | O_CLOEXEC);

	if (fd < 0 || ftruncate(fd, (off_t)size) != 0)
		return 1;
	close(fd);
	return 0;
}

static void run_truncate(const char *path, long long size)
{
	char spec[4400];
	pid_t pid;

	snprintf(spec, sizeof spec, "%lld %s", size, path);
	pid = mt_spawn(truncate_peer, spec);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(mt_wait(pid, 5000), 0);
}

/* Every call by name refuses the truncated file (its header promises
 * more than the file holds), and none of them crashes or changes it. */
static void refuse_truncated(const char *key, const char *path, const char *why)
{
	mfs_segment *s2 = (mfs_segment *)&s2;
	struct snap before;
	const char *d;
	mfs_stat st;
	int created = 7;

	ck_assert_int_eq(snap_take(path, &before), 0);
	ck_assert_int_eq(mfs_inspect(key, NULL, &st), MFS_E_CORRUPT);
	ck_assert_msg(strstr(mfs_last_error(), why), "\"%s\" lacks \"%s\"", mfs_last_error(), why);
	ck_assert_int_eq(mfs_inspect_path(path, 1, &st, NULL, 0, NULL), MFS_E_CORRUPT);
	ck_assert_int_eq(mfs_attach(key, NULL, &s2), MFS_E_CORRUPT);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(mfs_open(key, 4096, NULL, &s2, &created), MFS_E_CORRUPT);
	ck_assert_int_eq(created, 0);
	ck_assert_int_eq(mfs_remove(key, NULL), MFS_E_CORRUPT);
	ck_assert_int_eq(mfs_reap(key, NULL), MFS_E_CORRUPT);
	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s2), MFS_E_EXISTS);
	d = snap_diff(path, &before, 1);
	ck_assert_msg(!d, "%s", d);
	free(before.bytes);
}

/*
 * A peer that may write a SHM segment truncates it while we are
 * attached, keeping the header page: the documented hazard is SIGBUS for
 * whoever touches the lost pages (shown in a forked child); nothing in
 * the library crashes, and it refuses the file by name from then on.
 */
START_TEST(shm_truncated_keep_header)
{
	const char *key = mt_key("trunc");
	mfs_segment *seg = NULL;
	char path[4352];
	mfs_stat st;
	pid_t pid;

	path_of(key, NULL, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, 3 * 4096, NULL, &seg), 0);
	memset(mfs_data(seg), 0x5a, mfs_size(seg));
	pid = mt_spawn(touch_data, seg);
	ck_assert_int_eq(mt_wait(pid, 5000), 0); /* the control: readable */

	run_truncate(path, MFS_HEADER_SIZE);
	refuse_truncated(key, path, "total_size");

	pid = mt_spawn(touch_data, seg);
	ck_assert_int_eq(mt_wait(pid, 5000), 128 + SIGBUS);
	pid = mt_spawn(stat_copy, seg);
	ck_assert_int_eq(mt_wait(pid, 5000), 0);

	/* Our own handle only touches the header: it still works. */
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_uint_eq(st.file_size, MFS_HEADER_SIZE);
	ck_assert_uint_eq(st.size, mfs_size(seg));
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_int_eq(mfs_lock(seg), 0);
	ck_assert_int_eq(mfs_unlock(seg), 0);
	ck_assert_int_eq(mfs_notify(seg), 0);
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* Truncated to nothing: even the header page is gone, so any library
 * call on a handle of it would fault too (shown with a forked copy). */
START_TEST(shm_truncated_to_zero)
{
	const char *key = mt_key("trunc0");
	mfs_segment *seg = NULL;
	char path[4352];
	pid_t pid;

	path_of(key, NULL, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, 4096, NULL, &seg), 0);
	run_truncate(path, 0);
	refuse_truncated(key, path, "truncated");
	pid = mt_spawn(stat_copy, seg);
	ck_assert_int_eq(mt_wait(pid, 5000), 128 + SIGBUS);
	/* Give the file its size back (zeros) so that our detach is safe. */
	ck_assert_int_eq(ftruncate(mfs_fd(seg), 2 * 4096), 0);
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

static int memfd_peer(void *arg)
{
	const int *fdp = arg;
	int fd = *fdp, seals;
	char proc[64];
	struct stat st;
	mfs_options req = { 0, MFS_REQUIRE_SEALED, 0, NULL };
	mfs_segment *s = NULL;

	if (fstat(fd, &st) != 0)
		return 1;
	if (ftruncate(fd, st.st_size / 2) == 0 || errno != EPERM)
		return 2;
	if (ftruncate(fd, 0) == 0 || errno != EPERM)
		return 3;
	if (ftruncate(fd, st.st_size * 2) == 0 || errno != EPERM)
		return 4;
	if (fallocate(fd, 0, 0, st.st_size * 2) == 0 || errno != EPERM)
		return 5;
	snprintf(proc, sizeof proc, "/proc/%ld/fd/%d", (long)getppid(), fd);
	if (truncate(proc, 0) == 0 || errno != EPERM)
		return 6;
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_WRITE) == 0 || errno != EPERM)
		return 7;
	seals = fcntl(fd, F_GET_SEALS);
	if (seals < 0 || (seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) !=
	    (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL))
		return 8;
	if (mfs_attach_fd(fd, &req, &s) != 0)
		return 9;
	memset(mfs_data(s), 0x33, mfs_size(s));
	return mfs_detach(s) == 0 ? 0 : 10;
}

/*
 * What to use instead: a MEMFD segment is sealed, so a peer holding its
 * descriptor (a fresh description, as handed over) cannot shrink or grow
 * it by any route, and MFS_REQUIRE_SEALED refuses every segment that is
 * not, by name or by descriptor.
 */
START_TEST(memfd_sealed_against_truncation)
{
	mfs_options mo = { MFS_BACKEND_MEMFD, 0, 0, NULL };
	mfs_options req = { 0, MFS_REQUIRE_SEALED, 0, NULL };
	const char *key = mt_key("sealed");
	mfs_segment *seg = NULL, *shm = NULL, *s2 = (mfs_segment *)&s2;
	unsigned char *d;
	struct stat before, after;
	mfs_stat st;
	size_t i;
	pid_t pid;
	int efd;

	ck_assert_int_eq(mfs_create(key, 3 * 4096, &mo, &seg), 0);
	ck_assert_int_eq(mfs_export_fd(seg, 0, &efd), 0);
	ck_assert_int_eq(fstat(efd, &before), 0);
	pid = mt_spawn(memfd_peer, &efd);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(mt_wait(pid, 5000), 0);
	ck_assert_int_eq(fstat(efd, &after), 0);
	ck_assert_int_eq((long long)after.st_size, (long long)before.st_size);
	d = mfs_data(seg);
	for (i = 0; i < mfs_size(seg); i++)
		ck_assert_uint_eq(d[i], 0x33); /* every page there: no SIGBUS */
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_int_eq(st.sealed, 1);
	ck_assert_int_eq(mfs_attach_fd(efd, &req, &s2), 0);
	ck_assert_int_eq(mfs_detach(s2), 0);
	close(efd);

	/* A named segment can always be truncated by its writers: refused. */
	ck_assert_int_eq(mfs_create(key, 4096, NULL, &shm), 0);
	jan_add(mfs_native_key(shm));
	s2 = (mfs_segment *)&s2;
	ck_assert_int_eq(mfs_attach(key, &req, &s2), MFS_E_PERMISSION);
	ck_assert_ptr_null(s2);
	s2 = (mfs_segment *)&s2;
	ck_assert_int_eq(mfs_attach_fd(mfs_fd(shm), &req, &s2), MFS_E_PERMISSION);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(mfs_detach(shm), 0);
	ck_assert_int_eq(mfs_detach(seg), 0);
}
END_TEST

/* ============================================================ hostile header */

static unsigned char *hdr_of(mfs_segment *s)
{
	mfs_stat st;

	if (mfs_stat_segment(s, &st) != 0)
		return NULL;
	return (unsigned char *)mfs_data(s) - st.data_offset;
}

static void put(unsigned char *h, unsigned off, unsigned width, uint64_t v)
{
	if (width == 4)
		__atomic_store_n((uint32_t *)(void *)(h + off), (uint32_t)v, __ATOMIC_SEQ_CST);
	else
		__atomic_store_n((uint64_t *)(void *)(h + off), v, __ATOMIC_SEQ_CST);
}

struct hw {
	const char *name;
	unsigned off, width;
	uint64_t val;
	int inspect, attach;  /* what a newcomer gets afterwards */
	unsigned refcount;    /* what the victim's mfs_stat_segment counts */
};

#define C_ MFS_E_CORRUPT
#define N_ MFS_E_NOT_FOUND

/*
 * Garbage a live attacher writes into the header.  The attachments that
 * exist keep their validated sizes and keep working; newcomers validate
 * and are refused (CORRUPT), or find the segment looking stale or
 * destroyed (NOT_FOUND); counts are advisory (the tokens count).
 */
static const struct hw hw_cases[] = {
	{ "slot_high 241", OFF(slot_high), 4, 241, C_, C_, 2 },
	{ "slot_high 0xffffffff", OFF(slot_high), 4, 0xffffffffu, C_, C_, 2 },
	{ "slot_high 0", OFF(slot_high), 4, 0, N_, N_, 1 },
	{ "attach_count 0xffffffff", OFF(attach_count), 4, 0xffffffffu, 0, 0, 2 },
	{ "attach_count 0", OFF(attach_count), 4, 0, 0, 0, 2 },
	{ "lock_waiters 0xffffffff", OFF(lock_waiters), 4, 0xffffffffu, 0, 0, 2 },
	{ "seq_waiters 0xffffffff", OFF(seq_waiters), 4, 0xffffffffu, 0, 0, 2 },
	{ "seq 0xffffffff", OFF(seq), 4, 0xffffffffu, 0, 0, 2 },
	{ "owner_pid 1", OFF(owner_pid), 4, 1, 0, 0, 2 },
	{ "owner_tid garbage", OFF(owner_tid), 4, 0xdeadbeefu, 0, 0, 2 },
	{ "creator_pid 1", OFF(creator_pid), 4, 1, 0, 0, 2 },
	{ "reserved bytes", OFF(reserved0), 8, ~(uint64_t)0, 0, 0, 2 },
	{ "victim's slot pid 0", OFF(slots[0].pid), 4, 0, 0, 0, 2 },
	{ "slot 7 pid garbage", OFF(slots[7].pid), 4, 0x7fffffffu, 0, 0, 2 },
	{ "state DEAD", OFF(state), 4, MFS_STATE_DEAD, N_, N_, 2 },
	{ "state INIT", OFF(state), 4, MFS_STATE_INIT, N_, N_, 2 },
	{ "state 7", OFF(state), 4, 7, C_, C_, 2 },
	{ "slot_count 0", OFF(slot_count), 4, 0, C_, C_, 2 },
	{ "slot_count 241", OFF(slot_count), 4, 241, C_, C_, 2 },
	{ "version 2", OFF(version), 4, 2, C_, C_, 2 },
	{ "layout", OFF(layout), 4, 0x00200004u, C_, C_, 2 },
	{ "magic", OFF(magic), 8, 0, C_, C_, 2 },
	{ "data_offset 0", OFF(data_offset), 8, 0, C_, C_, 2 },
	{ "data_size huge", OFF(data_size), 8, UINT64_MAX - 4095, C_, C_, 2 },
	{ "total_size huge", OFF(total_size), 8, UINT64_MAX, C_, C_, 2 },
	{ "lock word out of range", OFF(lock), 4, 0xffffffffu, C_, C_, 2 },
};
#define NHW ((int)(sizeof hw_cases / sizeof hw_cases[0]))

struct attacker {
	const char *key;
	unsigned off, width;
	uint64_t val;
	pid_t victim;
};

/* Attach, write the garbage, say so, and die attached when told. */
static int scribbler(struct peer *p, void *arg)
{
	struct attacker *a = arg;
	mfs_segment *s = NULL;
	unsigned char *h;

	if (mfs_attach(a->key, NULL, &s) != 0 || !(h = hdr_of(s)))
		return cfail(1, "attacker: attach: %s", mfs_last_error());
	put(h, a->off, a->width, a->val);
	say(p, 'R');
	hear(p);
	_exit(0); /* dies attached */
}

START_TEST(header_garbage)
{
	const struct hw *c = &hw_cases[_i];
	const char *key = mt_key("hdr");
	struct attacker a = { key, c->off, c->width, c->val, 0 };
	mfs_segment *seg = NULL, *s2;
	unsigned char *d;
	char path[4352];
	struct peer p;
	uint32_t seen;
	uint64_t t0;
	mfs_stat st;
	size_t i;
	int r;

	path_of(key, NULL, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, 2 * 4096, NULL, &seg), 0);
	peer_start(&p, scribbler, &a);
	peer_expect(&p, 'R', 5000, "attacker");
	t0 = mt_now_ms();

	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_msg(st.refcount == c->refcount, "%s: refcount %u, want %u", c->name,
	              st.refcount, c->refcount);
	ck_assert_uint_eq(mfs_size(seg), 2 * 4096); /* ours was validated once */
	r = mfs_inspect(key, NULL, &st);
	ck_assert_msg(r == c->inspect, "%s: inspect gave %s (%s)", c->name, mfs_err_name(r),
	              mfs_last_error());
	if (r == 0)
		ck_assert_uint_eq(st.refcount, 2);
	s2 = (mfs_segment *)&s2;
	r = mfs_attach(key, NULL, &s2);
	ck_assert_msg(r == c->attach, "%s: attach gave %s (%s)", c->name, mfs_err_name(r),
	              mfs_last_error());
	if (r == 0)
		ck_assert_int_eq(mfs_detach(s2), 0);
	else
		ck_assert_ptr_null(s2);
	if (c->off != OFF(lock)) {
		ck_assert_int_eq(mfs_lock(seg), 0);
		ck_assert_int_eq(mfs_unlock(seg), 0);
	}
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	seen = st.seq;
	ck_assert_int_eq(mfs_notify(seg), 0);
	ck_assert_int_eq(mfs_wait(seg, &seen, 1000), 0);
	ck_assert_int_eq(mfs_wait(seg, &seen, 20), MFS_E_TIMEOUT);
	d = mfs_data(seg);
	for (i = 0; i < mfs_size(seg); i++)
		d[i] = (unsigned char)i;
	ck_assert_uint_lt(ms_since(t0), 1000);

	/* The attacker dies; our detach is the last and cleans up. */
	peer_done(&p, "attacker");
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_uint_lt(ms_since(t0), 500);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

static const uint32_t lock_garbage[] = {
	0xffffffffu,          /* state 3, no slot */
	(240u << 2) | 1u,     /* slot 239: nobody there */
	(240u << 2) | 2u,     /* slot 239, "sleepers" */
	(2u << 2) | 3u,       /* state 3 naming the attacker's own live slot */
	(1u << 2) | 3u,       /* state 3 naming the victim's slot */
	6u << 2,              /* state 0 */
	(1000u << 2) | 1u,    /* slot 999 */
	1u,                   /* slot -1 */
	0x80000002u,
};
#define NLOCKG ((int)(sizeof lock_garbage / sizeof lock_garbage[0]))

static int lock_valid(uint32_t w)
{
	return w == 0 || ((w & 3u) != 0 && (w >> 2) - 1u < MFS_SLOTS);
}

/* Attach, write the garbage word, then answer 't' with a trylock. */
static int lock_scribbler(struct peer *p, void *arg)
{
	struct attacker *a = arg;
	mfs_segment *s = NULL;
	unsigned char *h;
	int c, r;

	if (mfs_attach(a->key, NULL, &s) != 0 || !(h = hdr_of(s)))
		return cfail(1, "attacker: attach: %s", mfs_last_error());
	put(h, OFF(lock), 4, a->val);
	say(p, 'R');
	while ((c = hear(p)) == 't') {
		r = mfs_trylock(s);
		say(p, r == MFS_E_BUSY ? 'B' : r == 0 ? '0' : 'X');
		if (r == 0 || r == MFS_E_OWNER_DEAD)
			mfs_unlock(s);
	}
	return mfs_detach(s) == 0 ? 0 : cfail(2, "attacker: detach: %s", mfs_last_error());
}

/*
 * A live attacher writes garbage into the lock word: the next locker
 * (mfs_lock, or trylock) takes it over within 200 ms with
 * MFS_E_OWNER_DEAD and holds it; newcomers are refused while the word
 * names no slot, and welcome again once it is released.
 */
START_TEST(lock_word_garbage)
{
	uint32_t w = lock_garbage[_i / 2];
	int use_try = _i % 2;
	const char *key = mt_key("lockw");
	struct attacker a = { key, OFF(lock), 4, w, 0 };
	mfs_segment *seg = NULL, *s2 = NULL;
	char path[4352];
	struct peer p;
	mfs_stat st;
	uint64_t t0;
	int r;

	path_of(key, NULL, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, 4096, NULL, &seg), 0);
	peer_start(&p, lock_scribbler, &a);
	peer_expect(&p, 'R', 5000, "attacker");

	r = mfs_inspect(key, NULL, &st);
	ck_assert_msg(r == (lock_valid(w) ? 0 : MFS_E_CORRUPT), "word 0x%08x: inspect %s",
	              w, mfs_err_name(r));
	t0 = mt_now_ms();
	r = use_try ? mfs_trylock(seg) : mfs_lock(seg);
	ck_assert_msg(r == MFS_E_OWNER_DEAD, "word 0x%08x: %s gave %s", w,
	              use_try ? "trylock" : "lock", mfs_err_name(r));
	ck_assert_uint_lt(ms_since(t0), 200);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, (long)getpid());
	ck_assert_int_eq(st.lock_owner_alive, 1);
	peer_send(&p, 't');
	ck_assert_int_eq(peer_get(&p, 2000), 'B'); /* we hold it */
	ck_assert_int_eq(mfs_unlock(seg), 0);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_uint_eq(st.lock_word, 0);
	ck_assert_int_eq(mfs_inspect(key, NULL, &st), 0);
	ck_assert_int_eq(mfs_attach(key, NULL, &s2), 0);
	ck_assert_int_eq(mfs_detach(s2), 0);
	peer_send(&p, 't');
	ck_assert_int_eq(peer_get(&p, 2000), '0'); /* free for everyone */
	peer_done(&p, "attacker");
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* Lock legitimately; on 'f' forge the owner record to name the victim;
 * on 'l' lock again. */
static int holder(struct peer *p, void *arg)
{
	struct attacker *a = arg;
	mfs_segment *s = NULL;
	unsigned char *h;
	int c;

	if (mfs_attach(a->key, NULL, &s) != 0 || !(h = hdr_of(s)))
		return cfail(1, "holder: attach: %s", mfs_last_error());
	if (mfs_lock(s) != 0)
		return cfail(2, "holder: lock: %s", mfs_last_error());
	say(p, 'R');
	while ((c = hear(p)) > 0) {
		if (c == 'f') {
			put(h, OFF(owner_pid), 4, (uint64_t)a->victim);
			put(h, OFF(owner_tid), 4, (uint64_t)a->victim);
			say(p, 'F');
		} else if (c == 'l') {
			say(p, mfs_lock(s) == 0 ? 'L' : 'X');
		}
	}
	return 0;
}

/*
 * A live attacher may hold the lock forever, and others' trylock and
 * timedlock still answer within their bounds.  Forging the owner record
 * only misleads the thread it names (its lock calls answer MFS_E_LOCK at
 * once, and its unlock releases the lock).  Once the attacker dies, the
 * next mfs_lock takes over within 200 ms.
 */
START_TEST(lock_held_by_live_attacker)
{
	const char *key = mt_key("lockh");
	struct attacker a = { key, 0, 0, 0, getpid() };
	mfs_segment *seg = NULL;
	char path[4352];
	struct peer p;
	mfs_stat st;
	uint64_t t0;
	int r;

	path_of(key, NULL, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, 4096, NULL, &seg), 0);
	peer_start(&p, holder, &a);
	peer_expect(&p, 'R', 5000, "holder");

	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_trylock(seg), MFS_E_BUSY);
	ck_assert_uint_lt(ms_since(t0), 100);
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_timedlock(seg, 100), MFS_E_TIMEOUT);
	ck_assert_uint_ge(ms_since(t0), 100);
	ck_assert_uint_lt(ms_since(t0), 400);
	ck_assert_int_eq(mfs_inspect(key, NULL, &st), 0);
	ck_assert_int_eq(st.lock_owner, (long)p.pid);
	ck_assert_int_eq(st.lock_owner_alive, 1);

	peer_send(&p, 'f');
	ck_assert_int_eq(peer_get(&p, 2000), 'F');
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_lock(seg), MFS_E_LOCK);
	ck_assert_int_eq(mfs_timedlock(seg, 100), MFS_E_LOCK);
	ck_assert_uint_lt(ms_since(t0), 100); /* at once, not after the 100 ms */
	ck_assert_int_eq(mfs_unlock(seg), 0);   /* told it holds it: it may release it */
	peer_send(&p, 'l');
	ck_assert_int_eq(peer_get(&p, 2000), 'L'); /* the attacker locks again */

	kill(p.pid, SIGKILL);
	ck_assert_int_eq(peer_end(&p, 5000), 128 + SIGKILL);
	t0 = mt_now_ms();
	r = mfs_lock(seg);
	ck_assert_msg(r == MFS_E_OWNER_DEAD, "lock after the holder died: %s", mfs_err_name(r));
	ck_assert_uint_lt(ms_since(t0), 200);
	ck_assert_int_eq(mfs_unlock(seg), 0);
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* Rewrite the lock word and the change counter as fast as possible for
 * @val milliseconds. */
static int hammer(struct peer *p, void *arg)
{
	struct attacker *a = arg;
	mfs_segment *s = NULL;
	unsigned char *h;
	uint64_t end;
	unsigned n = 0;
	uint32_t words[8];

	if (mfs_attach(a->key, NULL, &s) != 0 || !(h = hdr_of(s)))
		return cfail(1, "hammer: attach: %s", mfs_last_error());
	words[0] = 0;
	words[1] = 0xffffffffu;
	words[2] = (3u << 2) | 1u;   /* "held" by the attacker's live slot 2 */
	words[3] = (3u << 2) | 2u;
	words[4] = (1u << 2) | 1u;   /* "held" by the victim's slot */
	words[5] = (240u << 2) | 1u;
	words[6] = 6u << 2;
	words[7] = 0;
	say(p, 'R');
	end = mt_now_ms() + a->val;
	while (mt_now_ms() < end) {
		put(h, OFF(lock), 4, words[n % 8]);
		put(h, OFF(seq), 4, n * 2654435761u);
		put(h, OFF(seq_waiters), 4, n & 1 ? 0 : 0xffffffffu);
		n++;
	}
	say(p, 'D');
	return mfs_detach(s) == 0 ? 0 : 2;
}

/* Under a storm of garbage in the lock word and the counter, every
 * bounded call stays bounded and answers one of its documented codes. */
START_TEST(lock_word_hammered)
{
	const char *key = mt_key("hammer");
	struct attacker a = { key, 0, 0, 800, 0 };
	mfs_segment *seg = NULL, *s2 = NULL;
	char path[4352];
	struct peer p;
	uint32_t seen = 0;
	uint64_t t0, t;
	unsigned rounds = 0;
	int r, u;

	path_of(key, NULL, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, 4096, NULL, &seg), 0);
	ck_assert_int_eq(mfs_attach(key, NULL, &s2), 0); /* slot 1: never named */
	peer_start(&p, hammer, &a);
	peer_expect(&p, 'R', 5000, "hammer");
	t0 = mt_now_ms();
	while (ms_since(t0) < 1000) {
		t = mt_now_ms();
		r = mfs_timedlock(seg, 20);
		ck_assert_uint_lt(ms_since(t), 300);
		ck_assert_msg(r == 0 || r == MFS_E_OWNER_DEAD || r == MFS_E_TIMEOUT ||
		              r == MFS_E_LOCK, "timedlock gave %s", mfs_err_name(r));
		if (r == 0 || r == MFS_E_OWNER_DEAD || r == MFS_E_LOCK) {
			u = mfs_unlock(seg);
			ck_assert_msg(u == 0 || u == MFS_E_LOCK, "unlock gave %s", mfs_err_name(u));
		}
		t = mt_now_ms();
		r = mfs_trylock(seg);
		ck_assert_uint_lt(ms_since(t), 100);
		ck_assert_msg(r == 0 || r == MFS_E_OWNER_DEAD || r == MFS_E_BUSY ||
		              r == MFS_E_LOCK, "trylock gave %s", mfs_err_name(r));
		if (r != MFS_E_BUSY)
			mfs_unlock(seg);
		t = mt_now_ms();
		r = mfs_wait(seg, &seen, 10);
		ck_assert_uint_lt(ms_since(t), 200);
		ck_assert(r == 0 || r == MFS_E_TIMEOUT);
		rounds++;
	}
	ck_assert_uint_ge(rounds, 5);
	ck_assert_int_eq(peer_get(&p, 2000), 'D');
	peer_done(&p, "hammer");
	/* The storm is over.  Its last word may name our slot 0 as the holder:
	 * the lock then looks held by us until that attachment ends (bounded
	 * calls still answer).  Once it has, the lock is taken over. */
	t = mt_now_ms();
	r = mfs_timedlock(seg, 100);
	ck_assert_uint_lt(ms_since(t), 400);
	ck_assert_msg(r == 0 || r == MFS_E_OWNER_DEAD || r == MFS_E_TIMEOUT || r == MFS_E_LOCK,
	              "after the storm: %s", mfs_err_name(r));
	if (r == 0 || r == MFS_E_OWNER_DEAD)
		ck_assert_int_eq(mfs_unlock(seg), 0);
	ck_assert_int_eq(mfs_detach(seg), 0);
	t = mt_now_ms();
	r = mfs_timedlock(s2, 500);
	ck_assert_msg(r == 0 || r == MFS_E_OWNER_DEAD, "after the storm: %s", mfs_err_name(r));
	ck_assert_uint_lt(ms_since(t), 200);
	ck_assert_int_eq(mfs_unlock(s2), 0);
	ck_assert_int_eq(mfs_detach(s2), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* ============================================================ denial of service */

static int ofd_lock(int fd, short type, uint64_t byte)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = type;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)byte;
	fl.l_len = 1;
	return fcntl(fd, F_OFD_SETLK, &fl);
}

struct gate_args {
	const char *path;
	int uid;          /* 0: stay root */
	short type;       /* F_WRLCK / F_RDLCK */
	unsigned first, last;  /* slots to read-lock too (first > last: none) */
};

/* Open the file (read-only for a read lock), lock the gate byte, and
 * slot bytes first..last, and hold them until told. */
static int gate_holder(struct peer *p, void *arg)
{
	struct gate_args *g = arg;
	unsigned i;
	int fd;

	if (g->uid && become((uid_t)g->uid) != 0)
		return cfail(1, "gate holder: cannot become %d", g->uid);
	fd = open(g->path, (g->type == F_WRLCK ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return cfail(2, "gate holder: open %s: %s", g->path, strerror(errno));
	if (g->type != F_UNLCK && ofd_lock(fd, g->type, MFS_GATE_BYTE) != 0)
		return cfail(3, "gate holder: lock: %s", strerror(errno));
	for (i = g->first; i <= g->last && i < MFS_SLOTS; i++)
		if (ofd_lock(fd, F_RDLCK, MFS_SLOT_BYTE(i)) != 0)
			return cfail(4, "gate holder: slot %u: %s", i, strerror(errno));
	say(p, 'R');
	hear(p);
	return 0;
}

struct timed {
	int rc[2];
	uint64_t ms[2];
};

static struct timed *timed;

struct victim_args {
	const char *key;
	int which;   /* 0: attach, 1: open */
};

static int victim(struct peer *p, void *arg)
{
	struct victim_args *v = arg;
	mfs_segment *s = NULL;
	uint64_t t0;
	int created = 0;

	say(p, 'S');
	t0 = mt_now_ms();
	if (v->which == 0)
		timed->rc[0] = mfs_attach(v->key, NULL, &s);
	else
		timed->rc[1] = mfs_open(v->key, 4096, NULL, &s, &created);
	timed->ms[v->which] = ms_since(t0);
	if (s)
		mfs_detach(s);
	return 0;
}

static int create_and_die(void *arg)
{
	mfs_options o = { MFS_BACKEND_SHM, 0, 0644, NULL };
	mfs_segment *s = NULL;

	return mfs_create(arg, 4096, &o, &s) == 0 ? 0 : 1; /* dies attached */
}

#define BETWEEN(v, lo, hi) ck_assert_msg((v) >= (lo) && (v) <= (hi), \
	"%s: %llu ms, not within [%d, %d]", #v, (unsigned long long)(v), lo, hi)

/*
 * The gate held against everyone: by a writer exclusively (segment A,
 * alive) and by a reader (nobody, read access only) shared (segment B,
 * stale).  Every call still returns within its bound: attach gives up
 * after 10 s, open likewise, remove and reaping after 1 s, and detach
 * leaves after 1 s (the segment is then stale, reaped once the gate is
 * free); inspect and the lock never wait for the gate.
 */
START_TEST(gate_held_bounds)
{
	const char *ka = mt_key("gateA"), *kb = mt_key("gateB");
	char pa[4352], pb[4352];
	struct gate_args ga = { pa, 0, F_WRLCK, 1, 0 };
	struct gate_args gb = { pb, (int)NOBODY, F_RDLCK, 1, 0 };
	struct victim_args va = { ka, 0 }, vb = { kb, 1 };
	mfs_options o644 = { MFS_BACKEND_SHM, 0, 0644, NULL };
	struct peer wa, rb, v1, v2;
	mfs_segment *ha = NULL, *s = NULL;
	mfs_stat st;
	uint64_t t0, dt;
	pid_t pid;

	timed = mmap(NULL, sizeof *timed, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	             -1, 0);
	ck_assert_ptr_ne(timed, MAP_FAILED);
	path_of(ka, NULL, pa, sizeof pa);
	path_of(kb, NULL, pb, sizeof pb);
	ck_assert_int_eq(mfs_create(ka, 4096, NULL, &ha), 0);
	pid = mt_spawn(create_and_die, (void *)kb);
	ck_assert_int_eq(mt_wait(pid, 5000), 0);
	ck_assert_int_eq(mfs_inspect(kb, &o644, &st), MFS_E_NOT_FOUND); /* stale */

	peer_start(&wa, gate_holder, &ga);
	peer_expect(&wa, 'R', 5000, "writer holding A's gate");
	peer_start(&rb, gate_holder, &gb);
	peer_expect(&rb, 'R', 5000, "reader holding B's gate");
	peer_start(&v1, victim, &va);
	peer_start(&v2, victim, &vb);
	peer_expect(&v1, 'S', 5000, "attacher of A");
	peer_expect(&v2, 'S', 5000, "opener of B");

	/* Meanwhile, on A (alive, gate held exclusively). */
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_inspect(ka, NULL, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_int_eq(mfs_lock(ha), 0);
	ck_assert_int_eq(mfs_unlock(ha), 0);
	ck_assert_uint_lt(ms_since(t0), 200);
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_remove(ka, NULL), MFS_E_TIMEOUT);
	dt = ms_since(t0);
	BETWEEN(dt, 900, 2500);
	ck_assert_int_eq(access(pa, F_OK), 0);
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_create(ka, 4096, NULL, &s), MFS_E_EXISTS);
	dt = ms_since(t0);
	ck_assert_uint_lt(dt, 2500);
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_detach(ha), 0);
	dt = ms_since(t0);
	BETWEEN(dt, 900, 2500);
	ck_assert_int_eq(access(pa, F_OK), 0); /* left behind, stale */
	ck_assert_int_eq(mfs_inspect(ka, NULL, &st), MFS_E_NOT_FOUND);

	/* On B (stale, gate held shared by a reader). */
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_attach(kb, NULL, &s), MFS_E_NOT_FOUND);
	ck_assert_int_eq(mfs_inspect(kb, NULL, &st), MFS_E_NOT_FOUND);
	ck_assert_uint_lt(ms_since(t0), 200);
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_remove(kb, NULL), MFS_E_TIMEOUT);
	dt = ms_since(t0);
	BETWEEN(dt, 900, 2500);
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_create(kb, 4096, NULL, &s), MFS_E_EXISTS);
	dt = ms_since(t0);
	BETWEEN(dt, 900, 2500);

	peer_done(&v1, "attacher of A");
	ck_assert_msg(timed->rc[0] == MFS_E_TIMEOUT, "attach of A: %s", mfs_err_name(timed->rc[0]));
	BETWEEN(timed->ms[0], 9500, 12500);
	peer_done(&v2, "opener of B");
	ck_assert_msg(timed->ms[1] <= 12500, "open of B took %llu ms",
	              (unsigned long long)timed->ms[1]);
	ck_assert_msg(timed->rc[1] == MFS_E_TIMEOUT, "open of B: %s", mfs_err_name(timed->rc[1]));

	/* The holders go: both names are reaped by the next create. */
	peer_done(&wa, "writer");
	peer_done(&rb, "reader");
	ck_assert_int_eq(mfs_create(ka, 4096, NULL, &s), 0);
	ck_assert_int_eq(mfs_detach(s), 0);
	ck_assert_int_eq(mfs_create(kb, 4096, NULL, &s), 0);
	ck_assert_int_eq(mfs_detach(s), 0);
	ck_assert_int_eq(access(pa, F_OK), -1);
	ck_assert_int_eq(access(pb, F_OK), -1);
	munmap(timed, sizeof *timed);
}
END_TEST

static int lock_and_wait(struct peer *p, void *arg)
{
	mfs_segment *s = NULL;

	if (mfs_attach(arg, NULL, &s) != 0 || mfs_lock(s) != 0)
		return cfail(1, "holder: %s", mfs_last_error());
	say(p, 'R');
	hear(p);
	return 0;
}

/*
 * A user with read access only (mode 0644) takes shared OFD locks on the
 * slot bytes.  It cannot make a dead lock holder look alive (the lock is
 * taken over), nor inflate the live count, nor keep the segment alive;
 * it can only keep free slots from being claimed (MFS_E_NO_RESOURCES
 * for newcomers, at once).
 */
START_TEST(reader_cannot_forge_liveness)
{
	const char *key = mt_key("reader");
	mfs_options o644 = { MFS_BACKEND_SHM, 0, 0644, NULL };
	char path[4352];
	struct gate_args g = { path, (int)NOBODY, F_UNLCK, 1, MFS_SLOTS - 1 };
	mfs_segment *seg = NULL, *s2 = (mfs_segment *)&s2;
	struct peer h, r;
	mfs_stat st;
	uint64_t t0;
	int rc;

	path_of(key, NULL, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, 4096, &o644, &seg), 0);
	peer_start(&h, lock_and_wait, (void *)key);
	peer_expect(&h, 'R', 5000, "lock holder");
	kill(h.pid, SIGKILL);
	ck_assert_int_eq(peer_end(&h, 5000), 128 + SIGKILL);
	/* The holder (slot 1) is dead; the reader grabs its slot byte. */
	peer_start(&r, gate_holder, &g);
	peer_expect(&r, 'R', 5000, "reader");

	t0 = mt_now_ms();
	rc = mfs_timedlock(seg, 1000);
	ck_assert_msg(rc == MFS_E_OWNER_DEAD, "timedlock: %s (a reader made the dead "
	              "holder look alive)", mfs_err_name(rc));
	ck_assert_uint_lt(ms_since(t0), 200);
	ck_assert_int_eq(mfs_unlock(seg), 0);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_int_eq(mfs_inspect(key, NULL, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_attach(key, NULL, &s2), MFS_E_NO_RESOURCES);
	ck_assert_ptr_null(s2);
	ck_assert_uint_lt(ms_since(t0), 200);
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(path, F_OK), -1); /* nothing kept it alive */
	peer_done(&r, "reader");
}
END_TEST

/* ============================================================ keys and options */

/* Names of this process's matrix: every object a call could make would
 * carry it. */
static char g_mark[32];

/* Entries of @dir whose name contains g_mark, as "name\n" lines. */
static char *marked_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t len = 0, cap = 256;
	char *out = malloc(cap);

	ck_assert_ptr_nonnull(out);
	out[0] = '\0';
	if (!d)
		return out;
	while ((e = readdir(d))) {
		size_t n = strlen(e->d_name);

		if (!strstr(e->d_name, g_mark))
			continue;
		if (len + n + 2 > cap) {
			cap = (len + n + 2) * 2;
			out = realloc(out, cap);
			ck_assert_ptr_nonnull(out);
		}
		memcpy(out + len, e->d_name, n);
		len += n;
		out[len++] = '\n';
		out[len] = '\0';
	}
	closedir(d);
	return out;
}

/* Everything under @dir, recursively, as "path mode\n" lines. */
static void tree(const char *dir, char *out, size_t cap)
{
	struct dirent *e;
	struct stat st;
	char sub[1024];
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof sub, "%s/%s", dir, e->d_name);
		if (lstat(sub, &st) != 0)
			continue;
		snprintf(out + strlen(out), cap - strlen(out), "%s %o\n", sub, (unsigned)st.st_mode);
		if (S_ISDIR(st.st_mode))
			tree(sub, out, cap);
	}
	closedir(d);
}

enum { OP_CREATE, OP_OPEN, OP_ATTACH, OP_INSPECT, OP_REMOVE, OP_NATIVE, NOPS };
static const char *const op_name[NOPS] = {
	"create", "open", "attach", "inspect", "remove", "native_path"
};

#define MAXSET 8

struct expect {
	int n;
	int codes[MAXSET];
};

static void add(struct expect *e, int code)
{
	int i;

	for (i = 0; i < e->n; i++)
		if (e->codes[i] == code)
			return;
	e->codes[e->n++] = code;
}

/*
 * The documented error of each invalid part of a call; a call with
 * several invalid parts may answer any of theirs.  With none, the call
 * does its work (there is no segment under the key).
 */
static struct expect expected(int op, int key_ok, int key_null, int opts_ok, int be,
                              int dir_ok, int size_ok)
{
	struct expect e = { 0, { 0 } };

	if (!opts_ok)
		add(&e, MFS_E_INVALID);
	if (be < MFS_BACKEND_DEFAULT || be > MFS_BACKEND_TEMPFILE)
		add(&e, MFS_E_INVALID);
	else if (be == MFS_BACKEND_TEMPFILE)
		add(&e, MFS_E_NOT_SUPPORTED);
	else if (be == MFS_BACKEND_MEMFD && op != OP_CREATE)
		add(&e, MFS_E_INVALID);
	if (!key_ok && !(key_null && op == OP_CREATE && be == MFS_BACKEND_MEMFD))
		add(&e, MFS_E_KEY);
	if (be == MFS_BACKEND_FILE && !dir_ok)
		add(&e, MFS_E_INVALID);
	if (be == MFS_BACKEND_RUNTIME_DIR && !dir_ok)
		add(&e, MFS_E_NOT_SUPPORTED);
	if (!size_ok && (op == OP_CREATE || op == OP_OPEN))
		add(&e, MFS_E_INVALID_SIZE);
	return e;
}

/*
 * Every combination of a key (valid, 200 bytes, or one of many invalid
 * ones), flags and mode (known or not), backend (each, and numbers out of
 * range), directory (given, NULL, empty) and size (fine, 0, too large),
 * for create, open, attach, inspect, remove and native_path: the
 * documented error, out NULL and created 0 on failure, and no file or
 * directory made anywhere, nor a descriptor leaked.
 */
START_TEST(invalid_matrix)
{
	static const struct { unsigned flags, mode; int ok; } ov[] = {
		{ 0, 0, 1 }, { MFS_READ_ONLY | MFS_ALLOW_FOREIGN, 0640, 1 },
		{ MFS_POPULATE, 0, 1 }, { 1u << 4, 0, 0 }, { 1u << 15, 0, 0 }, { 1u << 16, 0, 0 }, { 1u << 31, 0, 0 },
		{ ~0u, 0, 0 }, { 0, 010000, 0 }, { 0, ~0u, 0 },
	};
	static const int backends[] = {
		MFS_BACKEND_DEFAULT, MFS_BACKEND_SHM, MFS_BACKEND_RUNTIME_DIR, MFS_BACKEND_MEMFD,
		MFS_BACKEND_FILE, MFS_BACKEND_TEMPFILE, -1, 6, 7, 1000, INT_MIN, INT_MAX
	};
	static const char *const suffixes[] = {
		"/x", " x", "\n", "\xc3\xa9", ":x", "*", "\\x", "\t", "%s", "\x7f",
	};
	enum { NOV = sizeof ov / sizeof ov[0], NBE = sizeof backends / sizeof backends[0],
	       NSUF = sizeof suffixes / sizeof suffixes[0] };
	char valid[64], k200[MFS_KEY_MAX + 1], k201[MFS_KEY_MAX + 2], lead[72], up[72],
	     slash[72], kbuf[NSUF][72], fdir[600], rdir[600];
	const char *keys[NSUF + 8];
	int key_ok[NSUF + 8], key_null[NSUF + 8];
	size_t sizes[5];
	int size_ok[5], nsizes = 0, nkeys = 0, ki, oi, bi, si, di, op, fds, i, r, calls = 0;
	char *shm0, *tmp0, *cwd0, *shm1, *tmp1, *cwd1, *tree0, *tree1;
	const char *dirs[3];

	snprintf(g_mark, sizeof g_mark, "secmx%ld", (long)getpid());
	snprintf(valid, sizeof valid, "t-%s-ok", g_mark);
	memset(k200, 'k', MFS_KEY_MAX);
	memcpy(k200, valid, strlen(valid));
	k200[MFS_KEY_MAX] = '\0';
	memset(k201, 'k', MFS_KEY_MAX + 1);
	memcpy(k201, valid, strlen(valid));
	k201[MFS_KEY_MAX + 1] = '\0';
	snprintf(lead, sizeof lead, ".%s", valid);
	snprintf(up, sizeof up, "../%s", valid);
	snprintf(slash, sizeof slash, "/%s", valid);
	keys[nkeys] = valid; key_ok[nkeys] = 1; key_null[nkeys++] = 0;
	keys[nkeys] = k200; key_ok[nkeys] = 1; key_null[nkeys++] = 0;
	keys[nkeys] = NULL; key_ok[nkeys] = 0; key_null[nkeys++] = 1;
	keys[nkeys] = ""; key_ok[nkeys] = 0; key_null[nkeys++] = 0;
	keys[nkeys] = k201; key_ok[nkeys] = 0; key_null[nkeys++] = 0;
	keys[nkeys] = lead; key_ok[nkeys] = 0; key_null[nkeys++] = 0;
	keys[nkeys] = up; key_ok[nkeys] = 0; key_null[nkeys++] = 0;
	keys[nkeys] = slash; key_ok[nkeys] = 0; key_null[nkeys++] = 0;
	for (i = 0; i < NSUF; i++) {
		snprintf(kbuf[i], sizeof kbuf[i], "%s%s", valid, suffixes[i]);
		keys[nkeys] = kbuf[i]; key_ok[nkeys] = 0; key_null[nkeys++] = 0;
	}
	sizes[nsizes] = 4096; size_ok[nsizes++] = 1;
	sizes[nsizes] = 0; size_ok[nsizes++] = 0;
	if (sizeof(size_t) >= 8) {
		sizes[nsizes] = SIZE_MAX; size_ok[nsizes++] = 0;
		sizes[nsizes] = (size_t)INT64_MAX; size_ok[nsizes++] = 0;
	}
	if (sizeof(size_t) >= 8 && sysconf(_SC_PAGESIZE) == 4096) {
		/* the smallest size whose page-rounded total passes INT64_MAX */
		sizes[nsizes] = (size_t)(INT64_MAX - 2 * 4096 + 2); size_ok[nsizes++] = 0;
	}

	snprintf(fdir, sizeof fdir, "%s/file", g_tmp);
	snprintf(rdir, sizeof rdir, "%s/run", g_tmp);
	ck_assert_int_eq(mkdir(fdir, 0700), 0);
	ck_assert_int_eq(mkdir(rdir, 0700), 0);
	unsetenv("XDG_RUNTIME_DIR");
	{
		/* The control: RUNTIME_DIR makes its mfshare/ directory on
		 * first use, before the listings. */
		mfs_options o = { MFS_BACKEND_RUNTIME_DIR, 0, 0, rdir };
		mfs_segment *s = NULL;

		ck_assert_int_eq(mfs_create(valid, 4096, &o, &s), 0);
		ck_assert_int_eq(mfs_detach(s), 0);
	}
	tree0 = calloc(1, 65536);
	tree1 = calloc(1, 65536);
	ck_assert(tree0 && tree1);
	tree(g_tmp, tree0, 65536);
	shm0 = marked_entries("/dev/shm");
	tmp0 = marked_entries("/tmp");
	cwd0 = marked_entries(".");
	fds = mt_count_fds();

	for (bi = 0; bi < NBE; bi++)
	for (di = 0; di < 3; di++) {
		int be = backends[bi];

		dirs[0] = be == MFS_BACKEND_FILE ? fdir : rdir;
		dirs[1] = NULL;
		dirs[2] = "";
		for (oi = 0; oi < NOV; oi++)
		for (ki = 0; ki < nkeys; ki++)
		for (si = 0; si < nsizes; si++)
		for (op = 0; op < NOPS; op++) {
			mfs_options o = { be, ov[oi].flags, ov[oi].mode, dirs[di] };
			int dir_ok = di == 0 || (be != MFS_BACKEND_FILE && be != MFS_BACKEND_RUNTIME_DIR);
			struct expect e = expected(op, key_ok[ki], key_null[ki], ov[oi].ok, be,
			                           dir_ok, size_ok[si]);
			mfs_segment *s = (mfs_segment *)&s;
			char buf[4400];
			mfs_stat st;
			int created = 7, want = 0, ok = 0, j;

			if (op != OP_CREATE && op != OP_OPEN && si > 0)
				continue; /* the size only matters to these */
			switch (op) {
			case OP_CREATE: r = mfs_create(keys[ki], sizes[si], &o, &s); break;
			case OP_OPEN: r = mfs_open(keys[ki], sizes[si], &o, &s, &created); break;
			case OP_ATTACH: r = mfs_attach(keys[ki], &o, &s); break;
			case OP_INSPECT: r = mfs_inspect(keys[ki], &o, &st); break;
			case OP_REMOVE: r = mfs_remove(keys[ki], &o); break;
			default: r = mfs_native_path(keys[ki], &o, buf, sizeof buf); break;
			}
			calls++;
			if (e.n == 0)
				want = op == OP_ATTACH || op == OP_INSPECT || op == OP_REMOVE
				       ? MFS_E_NOT_FOUND : 0;
			for (j = 0; j < e.n; j++)
				ok |= r == e.codes[j];
			if (e.n == 0 || e.n == 1)
				ok = r == (e.n ? e.codes[0] : want);
			ck_assert_msg(ok, "%s(key %d, flags 0x%x mode 0%o, backend %d, dir %d, "
			              "size %zu): %s, want %s%s (%s)", op_name[op], ki, ov[oi].flags,
			              ov[oi].mode, be, di, sizes[si], mfs_err_name(r),
			              mfs_err_name(e.n ? e.codes[0] : want),
			              e.n > 1 ? " or another of its errors" : "", mfs_last_error());
			if (op == OP_CREATE || op == OP_OPEN || op == OP_ATTACH) {
				if (r != 0)
					ck_assert_ptr_null(s);
				else
					ck_assert_int_eq(mfs_detach(s), 0);
			}
			if (op == OP_OPEN)
				ck_assert_int_eq(created, r == 0);
		}
	}
	ck_assert_int_gt(calls, 10000);

	ck_assert_int_eq(mt_count_fds(), fds);
	tree(g_tmp, tree1, 65536);
	ck_assert_str_eq(tree1, tree0);
	shm1 = marked_entries("/dev/shm");
	tmp1 = marked_entries("/tmp");
	cwd1 = marked_entries(".");
	ck_assert_str_eq(shm1, shm0);
	ck_assert_str_eq(tmp1, tmp0);
	ck_assert_str_eq(cwd1, cwd0);
	ck_assert_str_eq(shm1, "");
	free(shm0); free(tmp0); free(cwd0); free(shm1); free(tmp1); free(cwd1);
	free(tree0); free(tree1);
}
END_TEST

/* Sizes the system cannot hold fail at create with nothing left behind. */
START_TEST(too_large_leaves_nothing)
{
	const char *key = mt_key("huge");
	mfs_options fo = opts_for(1);
	mfs_segment *s = (mfs_segment *)&s;
	char path[4352];
	int created = 7, fds = mt_count_fds();

	if (sizeof(size_t) < 8)
		return;
	path_of(key, NULL, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, (size_t)1 << 46, NULL, &s), MFS_E_NO_RESOURCES);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(mfs_open(key, (size_t)1 << 46, NULL, &s, &created), MFS_E_NO_RESOURCES);
	ck_assert_int_eq(created, 0);
	ck_assert_int_eq(access(path, F_OK), -1);
	path_of(key, &fo, path, sizeof path);
	ck_assert_int_eq(mfs_create(key, (size_t)1 << 46, &fo, &s), MFS_E_NO_RESOURCES);
	ck_assert_int_eq(access(path, F_OK), -1);
	ck_assert_int_eq(mt_count_fds(), fds);
}
END_TEST

/* Descriptors, environment and locators that name nothing. */
START_TEST(bad_descriptors_and_locators)
{
	static const char *const env[] = { "", "abc", "-1", "3x", "99999999999", " 3" };
	static const char *const locs[] = {
		"", "bogus", "shm:", "fd:", "fd:-1", "fd:x", "memfd:", "memfd:0/3",
		"memfd:1/", "memfd:x/1", "file:relative", "file:", "shm:../x", "shm:.hidden"
	};
	mfs_options mo = { MFS_BACKEND_MEMFD, 0, 0, NULL };
	mfs_options bad = { 0, 1u << 20, 0, NULL };
	mfs_options be = { 999, 0, 0, NULL };
	mfs_segment *seg = NULL, *s;
	int fd, closed, r;
	size_t i;

	ck_assert_int_eq(mfs_create(NULL, 4096, &mo, &seg), 0);
	fd = mfs_fd(seg);
	closed = open("/dev/null", O_RDONLY | O_CLOEXEC);
	close(closed);
	s = (mfs_segment *)&s;
	ck_assert_int_eq(mfs_attach_fd(-1, NULL, &s), MFS_E_INVALID);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(mfs_attach_fd(closed, NULL, &s), MFS_E_INVALID);
	ck_assert_int_eq(mfs_attach_fd(INT_MAX, NULL, &s), MFS_E_INVALID);
	ck_assert_int_eq(mfs_attach_fd(fd, NULL, NULL), MFS_E_INVALID);
	ck_assert_int_eq(mfs_attach_fd(fd, &bad, &s), MFS_E_INVALID);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(mfs_attach_fd(fd, &be, &s), 0); /* backend: ignored */
	ck_assert_int_eq(mfs_detach(s), 0);

	unsetenv(MFS_FD_ENV);
	ck_assert_int_eq(mfs_attach_inherited(NULL, &s), MFS_E_NOT_FOUND);
	for (i = 0; i < sizeof env / sizeof env[0]; i++) {
		setenv(MFS_FD_ENV, env[i], 1);
		s = (mfs_segment *)&s;
		r = mfs_attach_inherited(NULL, &s);
		ck_assert_msg(r == MFS_E_INVALID, "%s=\"%s\": %s", MFS_FD_ENV, env[i],
		              mfs_err_name(r));
		ck_assert_ptr_null(s);
	}
	unsetenv(MFS_FD_ENV);
	for (i = 0; i < sizeof locs / sizeof locs[0]; i++) {
		s = (mfs_segment *)&s;
		r = mfs_attach_locator(locs[i], NULL, &s);
		ck_assert_msg(r == MFS_E_INVALID || r == MFS_E_KEY, "locator \"%s\": %s", locs[i],
		              mfs_err_name(r));
		ck_assert_ptr_null(s);
	}
	ck_assert_int_eq(mfs_detach(seg), 0);
}
END_TEST

/* ------------------------------------------------------------ suite */

static TCase *tcase(Suite *s, const char *name, int timeout)
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, tmp_setup, sweep);
	tcase_add_checked_fixture(tc, test_setup, NULL);
	tcase_set_timeout(tc, timeout);
	suite_add_tcase(s, tc);
	return tc;
}

int main(void)
{
	Suite *s = suite_create("security");
	TCase *tc;

	jan = mmap(NULL, sizeof *jan, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	           -1, 0);
	if (jan == MAP_FAILED)
		return 99;
	signal(SIGPIPE, SIG_IGN);

	tc = tcase(s, "squatting", 20);
	tcase_add_loop_test(tc, squat, 0, NROWS * 4);

	tc = tcase(s, "planted", 10);
	tcase_add_loop_test(tc, symlink_planted, 0, 4);
	tcase_add_loop_test(tc, nonregular_planted, 0, 6);

	tc = tcase(s, "descriptors", 10);
	tcase_add_loop_test(tc, attach_fd_hostile, 0, NFDKINDS);
	tcase_add_loop_test(tc, recv_partial_message_bounded, 0, 2);

	tc = tcase(s, "truncation", 10);
	tcase_add_test(tc, shm_truncated_keep_header);
	tcase_add_test(tc, shm_truncated_to_zero);
	tcase_add_test(tc, memfd_sealed_against_truncation);

	tc = tcase(s, "header", 10);
	tcase_add_loop_test(tc, header_garbage, 0, NHW);
	tcase_add_loop_test(tc, lock_word_garbage, 0, NLOCKG * 2);
	tcase_add_test(tc, lock_held_by_live_attacker);
	tcase_add_test(tc, lock_word_hammered);

	tc = tcase(s, "denial", 25);
	tcase_add_test(tc, gate_held_bounds);
	tcase_add_test(tc, reader_cannot_forge_liveness);

	tc = tcase(s, "keys", 20);
	tcase_add_test(tc, invalid_matrix);
	tcase_add_test(tc, too_large_leaves_nothing);
	tcase_add_test(tc, bad_descriptors_and_locators);

	return mt_run(s);
}
