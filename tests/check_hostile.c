/* SPDX-License-Identifier: MIT */
/*
 * Hostile objects under a segment's name (garbage, broken headers,
 * directories, FIFOs, symbolic links) must be refused as MFS_E_CORRUPT and
 * left byte-for-byte alone; and other users' segments obey their mode.
 */
#include "testutil.h"
#include "header.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define NOBODY 65534

/* ------------------------------------------------------------ fixture */

/*
 * Each TCase gets its options (and, for FILE, its directory) from an
 * unchecked fixture, which runs in the runner process, so that the sweep
 * after the TCase also cleans up after a test that failed (Check ends a
 * failed test's process with _exit: no teardown, no atexit).  Tests record
 * every name they make outside that directory in a shared list.
 */
#define JMAX 128

struct janitor {
	unsigned n;
	char paths[JMAX][512];
};

static struct janitor *jan;    /* shared with every test's process */
static const char *g_tmp;      /* FILE: the directory of this TCase */
static mfs_options g_opts;
static char g_path[4096];      /* this test's object or segment */
static mfs_segment *g_target;  /* a live segment, detached at teardown */

static void jan_add(const char *path)
{
	mt_note_path(&jan->n, (char *)jan->paths, sizeof jan->paths[0], JMAX, path);
}

static void common_setup(int backend)
{
	memset(&g_opts, 0, sizeof g_opts);
	g_opts.backend = backend;
	g_tmp = NULL;
	if (backend == MFS_BACKEND_FILE) {
		/* Searchable and writable by everyone, sticky like /dev/shm, so
		 * that "another user" reaches the file and only its mode decides. */
		g_tmp = mt_tmpdir();
		if (!g_tmp || chmod(g_tmp, 01777) != 0) {
			/* no ck_assert in the runner: the tests will fail instead */
			fprintf(stderr, "check_hostile: no temp dir: %s\n", strerror(errno));
			g_tmp = "/nonexistent";
		}
		g_opts.dir = g_tmp;
	}
}

/* Unchecked: in the runner, once per TCase. */
static void shm_setup(void) { common_setup(MFS_BACKEND_SHM); }
static void file_setup(void) { common_setup(MFS_BACKEND_FILE); }

static void sweep(void)
{
	mt_remove_noted(&jan->n, (char *)jan->paths, sizeof jan->paths[0], JMAX);
	if (g_tmp && strcmp(g_tmp, "/nonexistent") != 0)
		mt_rmtree(g_tmp);
	g_tmp = NULL;
}

static void test_setup(void)
{
	g_path[0] = '\0';
	g_target = NULL;
}

/* Checked: in each test's process, after a test that passed. */
static void test_teardown(void)
{
	if (g_target) {
		mfs_detach(g_target);
		g_target = NULL;
	}
	mt_remove_object(g_path);
	g_path[0] = '\0';
}

static const char *path_of(const char *key)
{
	ck_assert_int_eq(mfs_native_path(key, &g_opts, g_path, sizeof g_path), 0);
	jan_add(g_path);
	return g_path;
}

/* ------------------------------------------------------------ snapshots */

struct snap {
	struct stat st;
	unsigned char *bytes; /* regular files: the whole content */
	size_t len;
	char link[4096];      /* symbolic links: the target */
};

static void take_snap(const char *path, struct snap *s)
{
	memset(s, 0, sizeof *s);
	ck_assert_msg(lstat(path, &s->st) == 0, "%s is gone: %s", path, strerror(errno));
	if (S_ISREG(s->st.st_mode)) {
		s->bytes = mt_slurp(path, (size_t)s->st.st_size + 1, &s->len);
		ck_assert_ptr_nonnull(s->bytes);
		ck_assert_uint_eq(s->len, (size_t)s->st.st_size);
	} else if (S_ISLNK(s->st.st_mode)) {
		ssize_t n = readlink(path, s->link, sizeof s->link - 1);
		ck_assert_int_gt(n, 0);
		s->link[n] = '\0';
	}
}

#define TS_EQ(a, b) ((a).tv_sec == (b).tv_sec && (a).tv_nsec == (b).tv_nsec)

/* The object is still there, the same, and untouched. */
static void same_snap(const char *path, const struct snap *a)
{
	struct snap b;

	take_snap(path, &b);
	ck_assert_msg(a->st.st_ino == b.st.st_ino && a->st.st_dev == b.st.st_dev,
	              "%s was replaced", path);
	ck_assert_uint_eq(a->st.st_mode, b.st.st_mode);
	ck_assert_uint_eq(a->st.st_uid, b.st.st_uid);
	ck_assert_uint_eq(a->st.st_nlink, b.st.st_nlink);
	ck_assert_int_eq((long long)a->st.st_size, (long long)b.st.st_size);
	ck_assert_msg(TS_EQ(a->st.st_mtim, b.st.st_mtim), "%s: mtime changed", path);
	ck_assert_msg(TS_EQ(a->st.st_ctim, b.st.st_ctim), "%s: ctime changed", path);
	ck_assert_uint_eq(a->len, b.len);
	if (a->len)
		ck_assert_msg(memcmp(a->bytes, b.bytes, a->len) == 0, "%s: content changed", path);
	ck_assert_str_eq(a->link, b.link);
	free(b.bytes);
}

/* ------------------------------------------------------------ the cases */

enum kind { K_BYTES, K_DIR, K_FIFO, K_SYMLINK, K_DANGLING };

/* A mutation of a valid segment's bytes (@b has room for 8192 bytes and
 * @len is the valid segment's length on entry). */
typedef void (*mutator)(unsigned char *b, size_t *len);

#define SET(b, field, v) do { \
	__typeof__(((struct mfs_header *)0)->field) v_ = (v); \
	memcpy((b) + offsetof(struct mfs_header, field), &v_, sizeof v_); \
} while (0)
#define GET64(b, field, out) memcpy(&(out), (b) + offsetof(struct mfs_header, field), 8)

static void m_empty(unsigned char *b, size_t *len) { (void)b; *len = 0; }

static void m_garbage(unsigned char *b, size_t *len)
{
	size_t i;

	for (i = 0; i < 100; i++)
		b[i] = (unsigned char)(i * 37u + 11u);
	*len = 100;
}

static void m_zero4096(unsigned char *b, size_t *len) { memset(b, 0, 4096); *len = 4096; }
static void m_zero8192(unsigned char *b, size_t *len) { memset(b, 0, 8192); *len = 8192; }
static void m_magic(unsigned char *b, size_t *len) { (void)len; SET(b, magic, UINT64_C(0x0123456789abcdef)); }
static void m_swapped(unsigned char *b, size_t *len) { (void)len; SET(b, magic, MFS_MAGIC_SWAPPED); }
static void m_version(unsigned char *b, size_t *len) { (void)len; SET(b, version, 2u); }
static void m_layout(unsigned char *b, size_t *len) { (void)len; SET(b, layout, (8192u << 8) | 4u); }
static void m_truncated(unsigned char *b, size_t *len) { (void)b; *len = 4096; }
static void m_offset(unsigned char *b, size_t *len) { (void)len; SET(b, data_offset, (uint64_t)4097); }
static void m_size0(unsigned char *b, size_t *len) { (void)len; SET(b, data_size, (uint64_t)0); }

static void m_total(unsigned char *b, size_t *len)
{
	uint64_t off, size;

	(void)len;
	GET64(b, data_offset, off);
	GET64(b, data_size, size);
	SET(b, total_size, off + size - 4096); /* still within the file */
}

static void m_huge(unsigned char *b, size_t *len) { (void)len; SET(b, data_size, UINT64_MAX); }

/* A 4096-multiple data_size whose sum with data_offset wraps around, with
 * total_size set to the wrapped sum. */
static void m_overflow(unsigned char *b, size_t *len)
{
	uint64_t off, size = UINT64_MAX - 4095;

	(void)len;
	GET64(b, data_offset, off);
	SET(b, data_size, size);
	SET(b, total_size, off + size);
}

static void m_state(unsigned char *b, size_t *len) { (void)len; SET(b, state, 7u); }
static void m_slot_high(unsigned char *b, size_t *len) { (void)len; SET(b, slot_high, 1000u); }
static void m_slot_count(unsigned char *b, size_t *len) { (void)len; SET(b, slot_count, 0u); }
static void m_lock(unsigned char *b, size_t *len) { (void)len; SET(b, lock, ((999u + 1u) << 2) | 1u); }

struct hcase {
	const char *name;
	int kind;
	mutator mut;      /* K_BYTES */
	const char *why;  /* in mfs_last_error() of attach/open/inspect/remove */
};

static const struct hcase cases[] = {
	{ "empty file", K_BYTES, m_empty, "truncated" },
	{ "100 bytes of garbage", K_BYTES, m_garbage, "truncated" },
	{ "4096 zero bytes", K_BYTES, m_zero4096, "magic" },
	{ "8192 zero bytes", K_BYTES, m_zero8192, "magic" },
	{ "bad magic", K_BYTES, m_magic, "magic" },
	{ "byte-swapped magic", K_BYTES, m_swapped, "byte order" },
	{ "version 2", K_BYTES, m_version, "version" },
	{ "wrong layout word", K_BYTES, m_layout, "layout" },
	{ "file shorter than total_size", K_BYTES, m_truncated, "total_size" },
	{ "data_offset not a page multiple", K_BYTES, m_offset, "data_offset" },
	{ "data_size 0", K_BYTES, m_size0, "data_size" },
	{ "total_size != data_offset + data_size", K_BYTES, m_total, "total_size" },
	{ "data_size UINT64_MAX", K_BYTES, m_huge, "data_size" },
	{ "data_offset + data_size overflows", K_BYTES, m_overflow, "total_size" },
	{ "state 7", K_BYTES, m_state, "state" },
	{ "slot_high 1000", K_BYTES, m_slot_high, "slot_high" },
	{ "slot_count 0", K_BYTES, m_slot_count, "slot_count" },
	{ "lock word naming slot 999", K_BYTES, m_lock, "lock" },
	{ "a directory", K_DIR, NULL, NULL },
	{ "a FIFO", K_FIFO, NULL, "not a regular file" },
	{ "a symlink to a live segment", K_SYMLINK, NULL, "symbolic link" },
	{ "a dangling symlink", K_DANGLING, NULL, "symbolic link" },
};
#define NCASES ((int)(sizeof cases / sizeof cases[0]))

/* A valid segment's file bytes (its name is gone afterwards). */
static unsigned char *valid_bytes(const char *key, size_t *len)
{
	mfs_segment *s = NULL;
	unsigned char *b = malloc(8192);
	unsigned char *got;
	size_t n;

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(mfs_create(key, 4096, &g_opts, &s), 0);
	got = mt_slurp(mfs_native_key(s), 8193, &n);
	ck_assert_ptr_nonnull(got);
	ck_assert_uint_eq(n, 8192);
	memcpy(b, got, n);
	free(got);
	ck_assert_int_eq(mfs_detach(s), 0);
	*len = n;
	return b;
}

static void write_file(const char *path, const unsigned char *b, size_t len)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	size_t done = 0;
	ssize_t n;

	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	while (done < len) {
		n = write(fd, b + done, len - done);
		ck_assert_int_gt(n, 0);
		done += (size_t)n;
	}
	ck_assert_int_eq(close(fd), 0);
}

/* Put the hostile object of @c at @path. */
static void make_object(const struct hcase *c, const char *key, const char *path)
{
	unsigned char *b;
	size_t len;

	switch (c->kind) {
	case K_BYTES:
		b = valid_bytes(key, &len);
		ck_assert_int_eq(access(path, F_OK), -1);
		c->mut(b, &len);
		write_file(path, b, len);
		free(b);
		break;
	case K_DIR:
		ck_assert_int_eq(mkdir(path, 0700), 0);
		break;
	case K_FIFO:
		ck_assert_int_eq(mkfifo(path, 0600), 0);
		break;
	case K_SYMLINK:
		/* A live, valid segment under another key: following the link
		 * would succeed, so only refusing it passes. */
		ck_assert_int_eq(mfs_create(mt_key("target"), 4096, &g_opts, &g_target), 0);
		jan_add(mfs_native_key(g_target));
		ck_assert_int_eq(symlink(mfs_native_key(g_target), path), 0);
		break;
	case K_DANGLING:
		ck_assert_int_eq(symlink("no-such-segment-file", path), 0);
		break;
	}
}

/* The last error names the object and, where given, the reason. */
static void said(const char *op, const char *what, const char *why)
{
	const char *e = mfs_last_error();

	ck_assert_msg(strstr(e, what) != NULL, "%s: last error \"%s\" does not name %s",
	              op, e, what);
	if (why)
		ck_assert_msg(strstr(e, why) != NULL, "%s: last error \"%s\" does not say "
		              "\"%s\"", op, e, why);
}

START_TEST(hostile_object)
{
	const struct hcase *c = &cases[_i];
	const char *key = mt_key("hostile");
	const char *path = path_of(key);
	mfs_segment *seg = (mfs_segment *)&seg;
	mfs_stat st;
	struct snap before;
	char what[64];
	uint64_t t0;
	int created = 7, fd, r;

	make_object(c, key, path);
	take_snap(path, &before);
	t0 = mt_now_ms();

	r = mfs_attach(key, &g_opts, &seg);
	ck_assert_msg(r == MFS_E_CORRUPT, "%s: attach gave %s", c->name, mfs_err_name(r));
	ck_assert_ptr_null(seg);
	said("attach", path, c->why);

	seg = (mfs_segment *)&seg;
	r = mfs_open(key, 4096, &g_opts, &seg, &created);
	ck_assert_msg(r == MFS_E_CORRUPT, "%s: open gave %s", c->name, mfs_err_name(r));
	ck_assert_ptr_null(seg);
	ck_assert_int_eq(created, 0);
	said("open", path, c->why);

	r = mfs_inspect(key, &g_opts, &st);
	ck_assert_msg(r == MFS_E_CORRUPT, "%s: inspect gave %s", c->name, mfs_err_name(r));
	said("inspect", path, c->why);

	r = mfs_remove(key, &g_opts);
	ck_assert_msg(r == MFS_E_CORRUPT, "%s: remove gave %s", c->name, mfs_err_name(r));
	said("remove", path, c->why);

	seg = (mfs_segment *)&seg;
	r = mfs_create(key, 4096, &g_opts, &seg);
	ck_assert_msg(r == MFS_E_EXISTS, "%s: create gave %s", c->name, mfs_err_name(r));
	ck_assert_ptr_null(seg);
	said("create", path, NULL);

	if (c->kind != K_SYMLINK && c->kind != K_DANGLING) {
		/* By path (as mfshare-dump does), even when stale is allowed. */
		r = mfs_inspect_path(path, 1, &st, NULL, 0, NULL);
		ck_assert_msg(r == MFS_E_CORRUPT, "%s: inspect_path gave %s", c->name,
		              mfs_err_name(r));
		said("inspect_path", path, c->kind == K_DIR ? "not a regular file" : c->why);

		/* By descriptor. */
		fd = open(path, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC);
		ck_assert_int_ge(fd, 0);
		seg = (mfs_segment *)&seg;
		r = mfs_attach_fd(fd, NULL, &seg);
		ck_assert_msg(r == MFS_E_CORRUPT, "%s: attach_fd gave %s", c->name,
		              mfs_err_name(r));
		ck_assert_ptr_null(seg);
		snprintf(what, sizeof what, "descriptor %d", fd);
		if (c->kind == K_BYTES)
			said("attach_fd", what, c->why);
		ck_assert_int_eq(close(fd), 0);
	}

	/* Nothing waited for a gate or blocked on the FIFO. */
	ck_assert_uint_lt(mt_now_ms() - t0, 2000);
	same_snap(path, &before);
	free(before.bytes);

	if (c->kind == K_SYMLINK) {
		/* Nobody attached through the link. */
		ck_assert_int_eq(mfs_stat_segment(g_target, &st), 0);
		ck_assert_uint_eq(st.refcount, 1);
		ck_assert_uint_eq(st.slot_high, 1);
	}
}
END_TEST

/* The control: the same valid bytes, unmutated, are a stale segment (not
 * found, and replaced by create), so every refusal above is the mutation's
 * doing. */
START_TEST(valid_copy_is_stale_not_corrupt)
{
	const char *key = mt_key("hostile");
	const char *path = path_of(key);
	mfs_segment *seg = NULL;
	unsigned char *b;
	mfs_stat st;
	size_t len;

	b = valid_bytes(key, &len);
	write_file(path, b, len);
	free(b);
	ck_assert_int_eq(mfs_attach(key, &g_opts, &seg), MFS_E_NOT_FOUND);
	ck_assert_int_eq(mfs_inspect(key, &g_opts, &st), MFS_E_NOT_FOUND);
	ck_assert_int_eq(mfs_inspect_path(path, 1, &st, NULL, 0, NULL), 0);
	ck_assert_uint_eq(st.refcount, 0);
	ck_assert_uint_eq(st.state, MFS_STATE_READY);
	ck_assert_int_eq(mfs_create(key, 4096, &g_opts, &seg), 0);
	ck_assert_ptr_nonnull(seg);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(path, F_OK), -1);
}
END_TEST

/* ------------------------------------------------------------ other users */

static int become_nobody(void)
{
	if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
		return -1;
	return geteuid() == NOBODY && getegid() == NOBODY && getuid() == NOBODY ? 0 : -1;
}

struct uarg {
	const char *key;
	int ready[2], go[2];  /* pipes for users_created_by_nobody */
};

/* Each child returns 0, or the number of the step that went wrong. */
static int child_denied(void *p)
{
	struct uarg *a = p;
	mfs_segment *s = (mfs_segment *)&s;
	mfs_stat st;
	int created = 7;

	if (become_nobody() != 0)
		return 1;
	if (mfs_attach(a->key, &g_opts, &s) != MFS_E_PERMISSION || s != NULL)
		return 2;
	if (!strstr(mfs_last_error(), a->key))
		return 3;
	s = (mfs_segment *)&s;
	if (mfs_open(a->key, 4096, &g_opts, &s, &created) != MFS_E_PERMISSION ||
	    s != NULL || created != 0)
		return 4;
	if (mfs_inspect(a->key, &g_opts, &st) != MFS_E_PERMISSION)
		return 5;
	if (mfs_remove(a->key, &g_opts) != MFS_E_PERMISSION)
		return 6;
	if (mfs_create(a->key, 4096, &g_opts, &s) != MFS_E_EXISTS || s != NULL)
		return 7;
	return 0;
}

static int child_allowed(void *p)
{
	struct uarg *a = p;
	mfs_segment *s = NULL;
	mfs_stat st;

	if (become_nobody() != 0)
		return 1;
	mfs_options o = g_opts;

	if (mfs_inspect(a->key, &g_opts, &st) != 0 || st.refcount != 1)
		return 2;
	/* Another user's segment is never used without the caller's consent,
	 * whatever its mode... */
	if (mfs_attach(a->key, &g_opts, &s) != MFS_E_PERMISSION || s != NULL)
		return 6;
	if (mfs_open(a->key, 4096, &g_opts, &s, NULL) != MFS_E_PERMISSION || s != NULL)
		return 7;
	/* ...and with it, the mode decides. */
	o.flags |= MFS_ALLOW_FOREIGN;
	if (mfs_attach(a->key, &o, &s) != 0)
		return 3;
	((unsigned char *)mfs_data(s))[0] = 0x5a;
	if (mfs_stat_segment(s, &st) != 0 || st.refcount != 2)
		return 4;
	if (mfs_detach(s) != 0)
		return 5;
	return 0;
}

static int child_read_only(void *p)
{
	struct uarg *a = p;
	mfs_segment *s = (mfs_segment *)&s;
	mfs_stat st;

	if (become_nobody() != 0)
		return 1;
	mfs_options o = g_opts;

	if (mfs_inspect(a->key, &g_opts, &st) != 0 || st.refcount != 1)
		return 2; /* reading the header needs only read permission */
	if (mfs_attach(a->key, &g_opts, &s) != MFS_E_PERMISSION || s != NULL)
		return 3; /* attaching needs write permission */
	o.flags |= MFS_ALLOW_FOREIGN;
	if (mfs_attach(a->key, &o, &s) != MFS_E_PERMISSION || s != NULL)
		return 4; /* even with consent: the mode grants no write */
	return 0;
}

static int child_owner(void *p)
{
	struct uarg *a = p;
	mfs_segment *s = NULL;

	if (become_nobody() != 0)
		return 1;
	if (mfs_attach(a->key, &g_opts, &s) != 0)
		return 2;
	if (mfs_detach(s) != 0)
		return 3;
	return 0;
}

static void user_segment(const char *key, unsigned mode, mfs_segment **seg)
{
	mfs_options o = g_opts;
	struct stat st;

	o.mode = mode;
	ck_assert_int_eq(mfs_create(key, 4096, &o, seg), 0);
	ck_assert_int_eq(stat(mfs_native_key(*seg), &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, mode);
	ck_assert_uint_eq(st.st_uid, 0);
}

static void run_child(int (*fn)(void *), struct uarg *a)
{
	pid_t pid = mt_spawn(fn, a);
	int rc;

	ck_assert_int_gt(pid, 0);
	rc = mt_wait(pid, 10000);
	ck_assert_msg(rc == 0, "the nobody child failed at step %d", rc);
}

START_TEST(users_mode_0600_denied)
{
	struct uarg a = { mt_key("users"), { -1, -1 }, { -1, -1 } };
	mfs_segment *seg = NULL;
	mfs_stat st;

	ck_assert_uint_eq(geteuid(), 0);
	user_segment(a.key, 0600, &seg);
	path_of(a.key);
	run_child(child_denied, &a);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(st.attach_count, 1);
	ck_assert_uint_eq(st.slot_high, 1);
	ck_assert_int_eq(access(g_path, F_OK), 0);
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(g_path, F_OK), -1);
}
END_TEST

START_TEST(users_mode_0666_allowed)
{
	struct uarg a = { mt_key("users"), { -1, -1 }, { -1, -1 } };
	mfs_segment *seg = NULL;
	mfs_stat st;

	user_segment(a.key, 0666, &seg);
	path_of(a.key);
	run_child(child_allowed, &a);
	ck_assert_uint_eq(((unsigned char *)mfs_data(seg))[0], 0x5a);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_int_eq(access(g_path, F_OK), 0);
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(g_path, F_OK), -1);
}
END_TEST

START_TEST(users_mode_0644_read_only)
{
	struct uarg a = { mt_key("users"), { -1, -1 }, { -1, -1 } };
	mfs_segment *seg = NULL;

	user_segment(a.key, 0644, &seg);
	path_of(a.key);
	run_child(child_read_only, &a);
	ck_assert_int_eq(mfs_detach(seg), 0);
}
END_TEST

/* A segment file owned by nobody, mode 0600: root is refused too (the
 * mode is the policy), while its owner is let in. */
START_TEST(users_owned_by_nobody)
{
	struct uarg a = { mt_key("users"), { -1, -1 }, { -1, -1 } };
	mfs_segment *seg = NULL, *s2 = (mfs_segment *)&s2;
	mfs_stat st;
	int created = 7;

	user_segment(a.key, 0600, &seg);
	path_of(a.key);
	ck_assert_int_eq(fchown(mfs_fd(seg), NOBODY, NOBODY), 0);

	ck_assert_int_eq(mfs_attach(a.key, &g_opts, &s2), MFS_E_PERMISSION);
	ck_assert_ptr_null(s2);
	ck_assert(strstr(mfs_last_error(), a.key) != NULL);
	s2 = (mfs_segment *)&s2;
	ck_assert_int_eq(mfs_open(a.key, 4096, &g_opts, &s2, &created), MFS_E_PERMISSION);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(created, 0);
	ck_assert_int_eq(mfs_inspect(a.key, &g_opts, &st), MFS_E_PERMISSION);
	ck_assert_int_eq(mfs_create(a.key, 4096, &g_opts, &s2), MFS_E_EXISTS);

	run_child(child_owner, &a);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(st.uid, NOBODY);
	ck_assert_int_eq(mfs_detach(seg), 0);
	ck_assert_int_eq(access(g_path, F_OK), -1);
}
END_TEST

static int child_creator(void *p)
{
	struct uarg *a = p;
	mfs_options o = g_opts;
	mfs_segment *s = NULL;
	char c = 'F';
	int rc;

	close(a->ready[0]);
	close(a->go[1]);
	o.mode = 0600;
	if (become_nobody() == 0 && mfs_create(a->key, 4096, &o, &s) == 0)
		c = 'R';
	if (write(a->ready[1], &c, 1) != 1 || c != 'R')
		return 1;
	/* EOF (the test died) detaches too: no stale file is left behind. */
	rc = read(a->go[0], &c, 1) == 1 ? 0 : 2;
	if (mfs_detach(s) != 0)
		return 3;
	return rc;
}

/* Created by another user (who stays attached): attach, open and inspect
 * are refused, create finds the name taken. */
START_TEST(users_created_by_nobody)
{
	struct uarg a;
	mfs_segment *s2 = (mfs_segment *)&s2;
	mfs_stat st;
	struct stat fst;
	char c = 0;
	pid_t pid;
	int created = 7;

	a.key = mt_key("users");
	path_of(a.key);
	ck_assert_int_eq(pipe(a.ready), 0);
	ck_assert_int_eq(pipe(a.go), 0);
	pid = mt_spawn(child_creator, &a);
	ck_assert_int_gt(pid, 0);
	close(a.ready[1]);
	close(a.go[0]);
	ck_assert_int_eq(read(a.ready[0], &c, 1), 1);
	ck_assert_int_eq(c, 'R');
	ck_assert_int_eq(lstat(g_path, &fst), 0);
	ck_assert_uint_eq(fst.st_uid, NOBODY);
	ck_assert_uint_eq(fst.st_mode & 07777, 0600);

	ck_assert_int_eq(mfs_attach(a.key, &g_opts, &s2), MFS_E_PERMISSION);
	ck_assert_ptr_null(s2);
	s2 = (mfs_segment *)&s2;
	ck_assert_int_eq(mfs_open(a.key, 4096, &g_opts, &s2, &created), MFS_E_PERMISSION);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(created, 0);
	ck_assert_int_eq(mfs_inspect(a.key, &g_opts, &st), MFS_E_PERMISSION);
	s2 = (mfs_segment *)&s2;
	ck_assert_int_eq(mfs_create(a.key, 4096, &g_opts, &s2), MFS_E_EXISTS);
	ck_assert_ptr_null(s2);
	ck_assert_int_eq(mfs_inspect_path(g_path, 1, &st, NULL, 0, NULL), MFS_E_PERMISSION);
	/* Still the child's, untouched. */
	ck_assert_int_eq(lstat(g_path, &fst), 0);
	ck_assert_uint_eq(fst.st_uid, NOBODY);
	ck_assert_uint_eq(fst.st_mode & 07777, 0600);
	ck_assert(mt_alive(pid));

	ck_assert_int_eq(write(a.go[1], "g", 1), 1);
	ck_assert_int_eq(mt_wait(pid, 10000), 0);
	close(a.ready[0]);
	close(a.go[1]);
	ck_assert_int_eq(access(g_path, F_OK), -1); /* its last detach removed it */
}
END_TEST

static void add_hostile(Suite *s, const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, setup, sweep);
	tcase_add_checked_fixture(tc, test_setup, test_teardown);
	tcase_set_timeout(tc, 15);
	tcase_add_loop_test(tc, hostile_object, 0, NCASES);
	tcase_add_test(tc, valid_copy_is_stale_not_corrupt);
	suite_add_tcase(s, tc);
}

static void add_users(Suite *s, const char *name, void (*setup)(void))
{
	TCase *tc = tcase_create(name);

	tcase_add_unchecked_fixture(tc, setup, sweep);
	tcase_add_checked_fixture(tc, test_setup, test_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, users_mode_0600_denied);
	tcase_add_test(tc, users_mode_0666_allowed);
	tcase_add_test(tc, users_mode_0644_read_only);
	tcase_add_test(tc, users_owned_by_nobody);
	tcase_add_test(tc, users_created_by_nobody);
	suite_add_tcase(s, tc);
}

int main(void)
{
	Suite *s = suite_create("hostile");

	jan = mmap(NULL, sizeof *jan, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	           -1, 0);
	if (jan == MAP_FAILED)
		return 99;
	add_hostile(s, "shm", shm_setup);
	add_hostile(s, "file", file_setup);
	add_users(s, "users_shm", shm_setup);
	add_users(s, "users_file", file_setup);
	return mt_run(s);
}
