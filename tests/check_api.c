/* SPDX-License-Identifier: MIT */
/*
 * The API surface: error codes and messages, key and size validation,
 * options and backends, NULL arguments, permission modes and the accessors.
 * Everything here runs in one process; lifecycle across processes is in
 * check_lifecycle.c.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* Every key of this run starts "t-api<main pid>-", so main() can sweep
 * /dev/shm after a failed test left something behind. */
static char tag[32];
static char tmproot[256];

#define KEY() mt_key(tag)

/* Assert that @call returns @want (testutil.h). */
#define EXPECT(call, want) MT_EXPECT(call, want)

#define JUNK ((mfs_segment *)(uintptr_t)0x5a5a5a5a)

static unsigned file_mode(const char *path)
{
	struct stat st;

	ck_assert_msg(stat(path, &st) == 0, "stat %s: %s", path, strerror(errno));
	return (unsigned)(st.st_mode & 07777);
}

static size_t page_size(void)
{
	return (size_t)sysconf(_SC_PAGESIZE);
}

/* Every key-taking call on @key with @opts gives @want, and leaves *out
 * NULL (it is set to junk first). */
static void expect_all(const char *key, const mfs_options *o, int want,
                       int create_too)
{
	mfs_segment *s;
	mfs_stat st;
	char buf[512];
	int created;

	if (create_too) {
		s = JUNK;
		EXPECT(mfs_create(key, 4096, o, &s), want);
		ck_assert_ptr_null(s);
	}
	s = JUNK;
	EXPECT(mfs_attach(key, o, &s), want);
	ck_assert_ptr_null(s);
	s = JUNK;
	created = 7;
	EXPECT(mfs_open(key, 4096, o, &s, &created), want);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(created, 0);
	EXPECT(mfs_inspect(key, o, &st), want);
	EXPECT(mfs_remove(key, o), want);
	EXPECT(mfs_native_path(key, o, buf, sizeof buf), want);
}

/* ------------------------------------------------------------ errors */

static const struct { int code; const char *name; } codes[] = {
	{ MFS_OK, "OK" },
	{ MFS_E_PERMISSION, "E_PERMISSION" },
	{ MFS_E_INVALID_SIZE, "E_INVALID_SIZE" },
	{ MFS_E_KEY, "E_KEY" },
	{ MFS_E_EXISTS, "E_EXISTS" },
	{ MFS_E_NOT_FOUND, "E_NOT_FOUND" },
	{ MFS_E_LOCK, "E_LOCK" },
	{ MFS_E_NO_RESOURCES, "E_NO_RESOURCES" },
	{ MFS_E_UNKNOWN, "E_UNKNOWN" },
	{ MFS_E_CORRUPT, "E_CORRUPT" },
	{ MFS_E_BUSY, "E_BUSY" },
	{ MFS_E_TIMEOUT, "E_TIMEOUT" },
	{ MFS_E_OWNER_DEAD, "E_OWNER_DEAD" },
	{ MFS_E_INVALID, "E_INVALID" },
	{ MFS_E_NOT_SUPPORTED, "E_NOT_SUPPORTED" },
};
#define NCODES (sizeof codes / sizeof codes[0])

START_TEST(error_values)
{
	unsigned i;

	/* The contract's numbers: minus Qt's enum, then ours. */
	for (i = 0; i < NCODES; i++)
		ck_assert_int_eq(codes[i].code, -(int)i);
}
END_TEST

START_TEST(strerror_distinct)
{
	static const int unknown[] = { 1, 2, -15, -16, -100, 1000, INT_MIN, INT_MAX };
	unsigned i, j;

	for (i = 0; i < NCODES; i++) {
		const char *a = mfs_strerror(codes[i].code);

		ck_assert_msg(a != NULL, "mfs_strerror(%d) is NULL", codes[i].code);
		ck_assert_msg(*a != '\0', "mfs_strerror(%d) is empty", codes[i].code);
		for (j = 0; j < i; j++)
			ck_assert_msg(strcmp(a, mfs_strerror(codes[j].code)) != 0,
			              "codes %d and %d share the string \"%s\"",
			              codes[i].code, codes[j].code, a);
	}
	for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
		const char *a = mfs_strerror(unknown[i]);

		ck_assert_msg(a != NULL, "mfs_strerror(%d) is NULL", unknown[i]);
		ck_assert_msg(*a != '\0', "mfs_strerror(%d) is empty", unknown[i]);
		ck_assert_str_ne(a, mfs_strerror(MFS_OK));
	}
}
END_TEST

START_TEST(err_name)
{
	unsigned i;

	for (i = 0; i < NCODES; i++) {
		const char *n = mfs_err_name(codes[i].code);

		ck_assert_ptr_nonnull(n);
		ck_assert_str_eq(n, codes[i].name);
	}
	ck_assert_str_eq(mfs_err_name(-15), "E_UNKNOWN_CODE");
	ck_assert_str_eq(mfs_err_name(1), "E_UNKNOWN_CODE");
	ck_assert_str_eq(mfs_err_name(INT_MIN), "E_UNKNOWN_CODE");
}
END_TEST

static void *fresh_thread(void *arg)
{
	const char *m = mfs_last_error();

	*(int *)arg = m != NULL && *m == '\0';
	return NULL;
}

static void *failing_thread(void *arg)
{
	mfs_segment *s;

	(void)arg;
	mfs_attach("", NULL, &s);
	return NULL;
}

START_TEST(last_error)
{
	const char *key = KEY();
	const char *dir = mt_tmpdir();
	mfs_options o = { MFS_BACKEND_FILE, 0, 0, NULL };
	char missing[300], mine[1100];
	mfs_segment *s;
	pthread_t t;
	int fresh = 0;

	ck_assert_ptr_nonnull(dir);
	/* A thread that never failed: "" (never NULL). */
	ck_assert_int_eq(pthread_create(&t, NULL, fresh_thread, &fresh), 0);
	pthread_join(t, NULL);
	ck_assert_msg(fresh, "a new thread's mfs_last_error() is NULL or not empty");

	/* The detail names what failed. */
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);
	ck_assert_ptr_nonnull(mfs_last_error());
	ck_assert_msg(strstr(mfs_last_error(), key) != NULL,
	              "\"%s\" does not mention the key %s", mfs_last_error(), key);
	snprintf(missing, sizeof missing, "%s/no-such-dir", dir);
	o.dir = missing;
	ck_assert_int_lt(mfs_create(key, 4096, &o, &s), 0);
	ck_assert_msg(strstr(mfs_last_error(), missing) != NULL,
	              "\"%s\" does not mention %s", mfs_last_error(), missing);
	EXPECT(mfs_remove(key, NULL), MFS_E_NOT_FOUND);
	ck_assert_msg(strstr(mfs_last_error(), key) != NULL,
	              "\"%s\" does not mention the key %s", mfs_last_error(), key);

	/* Thread-local: another thread's failure leaves ours alone. */
	snprintf(mine, sizeof mine, "%s", mfs_last_error());
	ck_assert_int_eq(pthread_create(&t, NULL, failing_thread, NULL), 0);
	pthread_join(t, NULL);
	ck_assert_str_eq(mfs_last_error(), mine);
	mt_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------ keys */

START_TEST(key_invalid)
{
	char long_key[MFS_KEY_MAX + 2];
	const char *bad[] = {
		"", long_key, "a/b", "/abs", "a b", "a\x80" "b", "\xff", "a*b",
		".a", ".", "..", ".hidden-key", "a\nb", "a:b", "a\\b", "key?",
		"\xc3\xa9t\xc3\xa9", "a\tb",
	};
	unsigned i;

	memset(long_key, 'k', MFS_KEY_MAX + 1);
	long_key[MFS_KEY_MAX + 1] = '\0';
	expect_all(NULL, NULL, MFS_E_KEY, 1);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_all(bad[i], NULL, MFS_E_KEY, 1);
	/* Every backend checks the key the same way. */
	{
		mfs_options o = { MFS_BACKEND_FILE, 0, 0, "/tmp" };

		expect_all("a/b", &o, MFS_E_KEY, 1);
		expect_all("..", &o, MFS_E_KEY, 1);
		expect_all(long_key, &o, MFS_E_KEY, 1);
	}
	ck_assert(!mt_exists("/dev/shm/mfshare."));
	ck_assert(!mt_exists("/dev/shm/mfshare.a*b"));
}
END_TEST

START_TEST(key_lengths)
{
	char key[MFS_KEY_MAX + 2];
	mfs_segment *s, *t;
	size_t n;

	n = (size_t)snprintf(key, sizeof key, "%s-", KEY());
	memset(key + n, 'x', MFS_KEY_MAX - n);
	key[MFS_KEY_MAX] = '\0';
	ck_assert_uint_eq(strlen(key), 200);
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert_str_eq(mfs_key(s), key);
	ck_assert(mt_exists(mt_shm_path(key)));
	EXPECT(mfs_attach(key, NULL, &t), 0);
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));

	/* 201 bytes: one too many. */
	key[MFS_KEY_MAX] = 'x';
	key[MFS_KEY_MAX + 1] = '\0';
	s = JUNK;
	EXPECT(mfs_create(key, 4096, NULL, &s), MFS_E_KEY);
	ck_assert_ptr_null(s);

	/* Every allowed byte, dots inside, is fine. */
	snprintf(key, sizeof key, "%s.AZaz09._-..x", KEY());
	EXPECT(mfs_create(key, 1, NULL, &s), 0);
	ck_assert(mt_exists(mt_shm_path(key)));
	EXPECT(mfs_detach(s), 0);
}
END_TEST

START_TEST(key_case)
{
	char up[256], low[256];
	mfs_segment *a, *b, *c;
	const char *k = KEY();

	snprintf(up, sizeof up, "%s-AbC", k);
	snprintf(low, sizeof low, "%s-abc", k);
	EXPECT(mfs_create(up, 4096, NULL, &a), 0);
	EXPECT(mfs_create(low, 4096, NULL, &b), 0);
	ck_assert_str_ne(mfs_native_key(a), mfs_native_key(b));
	memset(mfs_data(a), 'A', 64);
	memset(mfs_data(b), 'b', 64);
	EXPECT(mfs_attach(up, NULL, &c), 0);
	ck_assert_int_eq(((char *)mfs_data(c))[0], 'A');
	EXPECT(mfs_detach(c), 0);
	EXPECT(mfs_attach(low, NULL, &c), 0);
	ck_assert_int_eq(((char *)mfs_data(c))[0], 'b');
	EXPECT(mfs_detach(c), 0);
	/* Removing one leaves the other. */
	EXPECT(mfs_detach(b), 0);
	EXPECT(mfs_attach(low, NULL, &c), MFS_E_NOT_FOUND);
	EXPECT(mfs_attach(up, NULL, &c), 0);
	EXPECT(mfs_detach(c), 0);
	EXPECT(mfs_detach(a), 0);
	ck_assert(!mt_exists(mt_shm_path(up)));
}
END_TEST

/* ------------------------------------------------------------ sizes */

START_TEST(size_invalid)
{
	const char *key = KEY();
	mfs_segment *s = JUNK;
	int created = 7;

	EXPECT(mfs_create(key, 0, NULL, &s), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(s);
	s = JUNK;
	EXPECT(mfs_create(key, SIZE_MAX, NULL, &s), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(s);
	s = JUNK;
	EXPECT(mfs_create(key, SIZE_MAX - 4096, NULL, &s), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(s);
	s = JUNK;
	EXPECT(mfs_open(key, 0, NULL, &s, &created), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(created, 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/*
 * INVALID_SIZE is exactly "the page-rounded total with the header exceeds
 * INT64_MAX": the largest size below that line is merely too big for the
 * machine (NO_RESOURCES), one byte more is invalid.
 */
START_TEST(size_int64_boundary)
{
	const char *key = KEY();
	uint64_t g = page_size() > 4096 ? page_size() : 4096;
	uint64_t largest = ((uint64_t)INT64_MAX - g) / g * g;
	mfs_segment *s;

	if ((uint64_t)SIZE_MAX < largest)
		return; /* 32-bit size_t cannot express it */
	s = JUNK;
	EXPECT(mfs_create(key, (size_t)largest + 1, NULL, &s), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(s);
	s = JUNK;
	EXPECT(mfs_create(key, (size_t)largest, NULL, &s), MFS_E_NO_RESOURCES);
	ck_assert_ptr_null(s);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

START_TEST(size_huge)
{
	const char *key = KEY();
	mfs_segment *s = JUNK;
	mfs_options o = { 0, 0, 0, NULL };
	const char *dir = mt_tmpdir();
	char path[600];

	EXPECT(mfs_create(key, (size_t)1 << 46, NULL, &s), MFS_E_NO_RESOURCES);
	ck_assert_ptr_null(s);
	ck_assert(!mt_exists(mt_shm_path(key)));
	ck_assert(*mfs_last_error() != '\0');
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);

	/* The same through RUNTIME_DIR in a temp dir: no file system here
	 * holds 64 TiB. */
	ck_assert_ptr_nonnull(dir);
	o.backend = MFS_BACKEND_RUNTIME_DIR;
	o.dir = dir;
	s = JUNK;
	EXPECT(mfs_create(key, (size_t)1 << 46, &o, &s), MFS_E_NO_RESOURCES);
	ck_assert_ptr_null(s);
	snprintf(path, sizeof path, "%s/mfshare/%s", dir, key);
	ck_assert(!mt_exists(path));
	mt_rmtree(dir);
}
END_TEST

START_TEST(size_rounding)
{
	static const size_t sizes[] = { 1, 100, 4095, 4096, 4097, 65536, 100001 };
	size_t pg = page_size(), i, j;

	for (i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		const char *key = KEY();
		mfs_segment *s;
		mfs_stat st;
		unsigned char *d;

		EXPECT(mfs_create(key, sizes[i], NULL, &s), 0);
		d = mfs_data(s);
		ck_assert_ptr_nonnull(d);
		ck_assert_ptr_eq(mfs_const_data(s), d);
		ck_assert_msg(mfs_size(s) >= sizes[i], "size %zu < asked %zu",
		              mfs_size(s), sizes[i]);
		ck_assert_uint_eq(mfs_size(s) % pg, 0);
		ck_assert_uint_eq((uintptr_t)d % pg, 0);
		for (j = 0; j < mfs_size(s); j++)
			if (d[j] != 0)
				ck_abort_msg("byte %zu of a new %zu-byte segment is %u",
				             j, sizes[i], d[j]);
		/* Every usable byte is backed: no SIGBUS at the end. */
		d[mfs_size(s) - 1] = 0xee;
		EXPECT(mfs_stat_segment(s, &st), 0);
		ck_assert_uint_eq(st.size, mfs_size(s));
		ck_assert_uint_eq(st.refcount, 1);
		EXPECT(mfs_detach(s), 0);
	}
}
END_TEST

/* ------------------------------------------------------------ options */

START_TEST(opt_unknown_flags)
{
	static const unsigned bad[] = { 1u << 4, 1u << 15, 1u << 16, 1u << 31,
	                                MFS_READ_ONLY | 1u << 5 };
	const char *key = KEY();
	mfs_segment *s, *t;
	unsigned i;

	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		mfs_options o = { 0, bad[i], 0, NULL };

		/* The segment exists, so only the flags can be wrong. */
		expect_all(key, &o, MFS_E_INVALID, 1);
		t = JUNK;
		EXPECT(mfs_attach_fd(mfs_fd(s), &o, &t), MFS_E_INVALID);
		ck_assert_ptr_null(t);
	}
	EXPECT(mfs_detach(s), 0);
}
END_TEST

START_TEST(opt_unknown_backend)
{
	static const int bad[] = { 99, -1, MFS_BACKEND_TEMPFILE + 1, INT_MIN, INT_MAX };
	const char *key = KEY();
	unsigned i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		mfs_options o = { bad[i], 0, 0, "/tmp" };

		expect_all(key, &o, MFS_E_INVALID, 1);
	}
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

START_TEST(opt_file_needs_dir)
{
	mfs_options o = { MFS_BACKEND_FILE, 0, 0, NULL };

	expect_all(KEY(), &o, MFS_E_INVALID, 1);
	o.dir = "";
	expect_all(KEY(), &o, MFS_E_INVALID, 1);
}
END_TEST

START_TEST(opt_runtime_unset)
{
	mfs_options o = { MFS_BACKEND_RUNTIME_DIR, 0, 0, NULL };

	unsetenv("XDG_RUNTIME_DIR");
	expect_all(KEY(), &o, MFS_E_NOT_SUPPORTED, 1);
}
END_TEST

START_TEST(opt_runtime_xdg)
{
	const char *d1 = mt_tmpdir(), *d2 = mt_tmpdir(), *key = KEY();
	mfs_options o = { MFS_BACKEND_RUNTIME_DIR, 0, 0, NULL };
	char path[600], dir[600], buf[600];
	mfs_segment *s, *t;
	struct stat st;

	ck_assert_ptr_nonnull(d1);
	ck_assert_ptr_nonnull(d2);
	setenv("XDG_RUNTIME_DIR", d1, 1);
	snprintf(path, sizeof path, "%s/mfshare/%s", d1, key);
	snprintf(dir, sizeof dir, "%s/mfshare", d1);
	EXPECT(mfs_native_path(key, &o, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, path);
	EXPECT(mfs_create(key, 4096, &o, &s), 0);
	ck_assert_msg(mt_exists(path), "%s was not made", path);
	ck_assert_str_eq(mfs_native_key(s), path);
	ck_assert_str_eq(mfs_key(s), key);
	ck_assert(!mt_exists(mt_shm_path(key)));
	/* D/mfshare is private to the user. */
	ck_assert_int_eq(lstat(dir, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 0777, 0700);
	/* Another backend is another name space. */
	EXPECT(mfs_attach(key, NULL, &t), MFS_E_NOT_FOUND);
	memcpy(mfs_data(s), "runtime", 8);
	EXPECT(mfs_attach(key, &o, &t), 0);
	ck_assert_str_eq(mfs_data(t), "runtime");
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(path));

	/* opts.dir replaces $XDG_RUNTIME_DIR. */
	o.dir = d2;
	snprintf(path, sizeof path, "%s/mfshare/%s", d2, key);
	EXPECT(mfs_create(key, 4096, &o, &s), 0);
	ck_assert(mt_exists(path));
	ck_assert_str_eq(mfs_native_key(s), path);
	snprintf(buf, sizeof buf, "%s/mfshare/%s", d1, key);
	ck_assert(!mt_exists(buf));
	EXPECT(mfs_remove(key, &o), 0);
	ck_assert(!mt_exists(path));
	EXPECT(mfs_detach(s), 0);
	mt_rmtree(d1);
	mt_rmtree(d2);
}
END_TEST

START_TEST(opt_file_backend)
{
	const char *d = mt_tmpdir(), *key = KEY();
	mfs_options o = { MFS_BACKEND_FILE, 0, 0, NULL };
	char path[600];
	mfs_segment *s, *t, *u;
	mfs_stat st;

	ck_assert_ptr_nonnull(d);
	o.dir = d;
	snprintf(path, sizeof path, "%s/%s", d, key);
	EXPECT(mfs_create(key, 5000, &o, &s), 0);
	ck_assert(mt_exists(path));
	ck_assert(!mt_exists(mt_shm_path(key)));
	ck_assert_str_eq(mfs_native_key(s), path);
	memcpy(mfs_data(s), "file", 5);
	EXPECT(mfs_inspect(key, &o, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(st.size, mfs_size(s));
	EXPECT(mfs_attach(key, &o, &t), 0);
	ck_assert_str_eq(mfs_data(t), "file");
	EXPECT(mfs_create(key, 4096, &o, &u), MFS_E_EXISTS);
	ck_assert_ptr_null(u);
	EXPECT(mfs_detach(t), 0);
	ck_assert(mt_exists(path));
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(path));
	EXPECT(mfs_attach(key, &o, &t), MFS_E_NOT_FOUND);
	mt_rmtree(d);
}
END_TEST

START_TEST(opt_memfd)
{
	mfs_options o = { MFS_BACKEND_MEMFD, 0, 0, NULL };
	const char *key = KEY();
	mfs_segment *s = JUNK;
	int r;

	/* Create: not in this build yet; once it is, an anonymous segment. */
	r = mfs_create(NULL, 4096, &o, &s);
	if (r == 0) {
		ck_assert_ptr_null(mfs_key(s));
		ck_assert_int_ge(mfs_fd(s), 0);
		ck_assert_ptr_nonnull(mfs_native_key(s));
		EXPECT(mfs_detach(s), 0);
	} else {
		EXPECT(r, MFS_E_NOT_SUPPORTED);
		ck_assert_ptr_null(s);
	}
	/* No name to find it by: attach, open, inspect, remove are invalid. */
	expect_all(key, &o, MFS_E_INVALID, 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

START_TEST(opt_tempfile)
{
	mfs_options o = { MFS_BACKEND_TEMPFILE, 0, 0, "/tmp" };
	const char *key = KEY();
	mfs_segment *s = JUNK;
	mfs_stat st;
	int created = 7;

	EXPECT(mfs_create(key, 4096, &o, &s), MFS_E_NOT_SUPPORTED);
	ck_assert_ptr_null(s);
	s = JUNK;
	EXPECT(mfs_attach(key, &o, &s), MFS_E_NOT_SUPPORTED);
	ck_assert_ptr_null(s);
	s = JUNK;
	EXPECT(mfs_open(key, 4096, &o, &s, &created), MFS_E_NOT_SUPPORTED);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(created, 0);
	EXPECT(mfs_inspect(key, &o, &st), MFS_E_NOT_SUPPORTED);
	EXPECT(mfs_remove(key, &o), MFS_E_NOT_SUPPORTED);
}
END_TEST

START_TEST(opt_defaults)
{
	mfs_options zero;
	const char *key = KEY();
	mfs_segment *s, *t;

	memset(&zero, 0, sizeof zero);
	EXPECT(mfs_create(key, 4096, &zero, &s), 0);
	ck_assert_str_eq(mfs_native_key(s), mt_shm_path(key));
	EXPECT(mfs_attach(key, NULL, &t), 0);
	EXPECT(mfs_detach(t), 0);
	zero.backend = MFS_BACKEND_SHM;
	EXPECT(mfs_attach(key, &zero, &t), 0);
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_detach(s), 0);
}
END_TEST

/* ------------------------------------------------------------ arguments */

START_TEST(null_out)
{
	const char *key = KEY();
	mfs_segment *s;
	mfs_stat st;

	EXPECT(mfs_create(key, 4096, NULL, NULL), MFS_E_INVALID);
	ck_assert(!mt_exists(mt_shm_path(key)));
	EXPECT(mfs_open(key, 4096, NULL, NULL, NULL), MFS_E_INVALID);
	ck_assert(!mt_exists(mt_shm_path(key)));
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	EXPECT(mfs_attach(key, NULL, NULL), MFS_E_INVALID);
	EXPECT(mfs_open(key, 4096, NULL, NULL, NULL), MFS_E_INVALID);
	EXPECT(mfs_attach_fd(mfs_fd(s), NULL, NULL), MFS_E_INVALID);
	EXPECT(mfs_inspect(key, NULL, NULL), MFS_E_INVALID);
	EXPECT(mfs_stat_segment(NULL, &st), MFS_E_INVALID);
	EXPECT(mfs_stat_segment(s, NULL), MFS_E_INVALID);
	EXPECT(mfs_native_path(key, NULL, NULL, 100), MFS_E_INVALID);
	/* None of that attached. */
	EXPECT(mfs_stat_segment(s, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

START_TEST(out_nulled_on_failure)
{
	const char *key = KEY(), *absent = KEY();
	mfs_options bad = { 0, 1u << 20, 0, NULL };
	mfs_segment *s, *t;
	int created;

	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	t = JUNK;
	EXPECT(mfs_create(key, 4096, NULL, &t), MFS_E_EXISTS);
	ck_assert_ptr_null(t);
	t = JUNK;
	EXPECT(mfs_create(absent, 0, NULL, &t), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(t);
	t = JUNK;
	EXPECT(mfs_create(absent, 4096, &bad, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	t = JUNK;
	EXPECT(mfs_attach(absent, NULL, &t), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(t);
	t = JUNK;
	EXPECT(mfs_attach(".x", NULL, &t), MFS_E_KEY);
	ck_assert_ptr_null(t);
	t = JUNK;
	created = 7;
	EXPECT(mfs_open(absent, 0, NULL, &t, &created), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(created, 0);
	t = JUNK;
	created = 7;
	EXPECT(mfs_open(absent, 4096, &bad, &t, &created), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	ck_assert_int_eq(created, 0);
	t = JUNK;
	EXPECT(mfs_attach_fd(-1, NULL, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	t = JUNK;
	EXPECT(mfs_attach_fd(1000, NULL, &t), MFS_E_INVALID);
	ck_assert_ptr_null(t);
	/* Success on an existing one: created is 0, not left alone. */
	created = 7;
	EXPECT(mfs_open(key, 4096, NULL, &t, &created), 0);
	ck_assert_int_eq(created, 0);
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_detach(s), 0);
}
END_TEST

START_TEST(null_handle)
{
	uint32_t seen = 0;

	ck_assert_ptr_null(mfs_data(NULL));
	ck_assert_ptr_null(mfs_const_data(NULL));
	ck_assert_uint_eq(mfs_size(NULL), 0);
	ck_assert_ptr_null(mfs_key(NULL));
	ck_assert_ptr_null(mfs_native_key(NULL));
	ck_assert_int_eq(mfs_fd(NULL), -1);
	EXPECT(mfs_detach(NULL), 0);
	EXPECT(mfs_lock(NULL), MFS_E_INVALID);
	EXPECT(mfs_trylock(NULL), MFS_E_INVALID);
	EXPECT(mfs_timedlock(NULL, 10), MFS_E_INVALID);
	EXPECT(mfs_unlock(NULL), MFS_E_INVALID);
	EXPECT(mfs_notify(NULL), MFS_E_INVALID);
	EXPECT(mfs_wait(NULL, &seen, 10), MFS_E_INVALID);
}
END_TEST

/* ------------------------------------------------------------ modes */

START_TEST(mode_exact)
{
	static const struct { mode_t umask; unsigned mode, want; } cases[] = {
		{ 077, 0644, 0644 },
		{ 0, 0, 0600 },
		{ 0777, 0, 0600 },
		{ 022, 0666, 0666 },
		{ 0, 0640, 0640 },
		{ 077, 0660, 0660 },
	};
	const char *d = mt_tmpdir();
	unsigned i, b;

	ck_assert_ptr_nonnull(d);
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		for (b = 0; b < 3; b++) {
			static const int backends[] = { MFS_BACKEND_SHM,
				MFS_BACKEND_FILE, MFS_BACKEND_RUNTIME_DIR };
			mfs_options o = { backends[b], 0, cases[i].mode, d };
			const char *key = KEY();
			mfs_segment *s;
			mfs_stat st;

			umask(cases[i].umask);
			EXPECT(mfs_create(key, 4096, &o, &s), 0);
			ck_assert_msg(file_mode(mfs_native_key(s)) == cases[i].want,
			              "backend %d, umask %03o, mode %04o: file is %04o",
			              backends[b], (unsigned)cases[i].umask, cases[i].mode,
			              file_mode(mfs_native_key(s)));
			EXPECT(mfs_stat_segment(s, &st), 0);
			ck_assert_uint_eq(st.mode, cases[i].want);
			EXPECT(mfs_detach(s), 0);
		}
	}
	umask(022);
	mt_rmtree(d);
}
END_TEST

/* The umask must not leave RUNTIME_DIR's own directory unusable. */
START_TEST(mode_runtime_dir)
{
	const char *d = mt_tmpdir(), *key = KEY();
	mfs_options o = { MFS_BACKEND_RUNTIME_DIR, 0, 0, NULL };
	char dir[600];
	mfs_segment *s;
	struct stat st;

	ck_assert_ptr_nonnull(d);
	o.dir = d;
	snprintf(dir, sizeof dir, "%s/mfshare", d);
	umask(0277);
	EXPECT(mfs_create(key, 4096, &o, &s), 0);
	ck_assert_int_eq(lstat(dir, &st), 0);
	ck_assert_msg((st.st_mode & 0777) == 0700, "%s is %04o under umask 0277",
	              dir, (unsigned)(st.st_mode & 0777));
	ck_assert_uint_eq(file_mode(mfs_native_key(s)), 0600);
	EXPECT(mfs_detach(s), 0);
	umask(022);
	mt_rmtree(d);
}
END_TEST

/* ------------------------------------------------------------ accessors */

START_TEST(accessors)
{
	char key[256];
	mfs_segment *s, *t;
	struct stat a, b;

	snprintf(key, sizeof key, "%s", KEY());
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert_str_eq(mfs_key(s), key);
	ck_assert_ptr_ne(mfs_key(s), key); /* a copy, not the caller's buffer */
	ck_assert_str_eq(mfs_native_key(s), mt_shm_path(key));
	ck_assert_int_ge(mfs_fd(s), 0);
	ck_assert_int_eq(fstat(mfs_fd(s), &a), 0);
	ck_assert_int_eq(stat(mt_shm_path(key), &b), 0);
	ck_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev);
	ck_assert(S_ISREG(a.st_mode));
	ck_assert_uint_eq((uint64_t)a.st_size,
	                  (page_size() > 4096 ? page_size() : 4096) + mfs_size(s));

	EXPECT(mfs_attach(key, NULL, &t), 0);
	ck_assert_str_eq(mfs_key(t), key);
	ck_assert_str_eq(mfs_native_key(t), mt_shm_path(key));
	ck_assert_int_ge(mfs_fd(t), 0);
	ck_assert_int_ne(mfs_fd(t), mfs_fd(s));
	ck_assert_ptr_ne(mfs_data(t), mfs_data(s));
	ck_assert_uint_eq(mfs_size(t), mfs_size(s));
	ck_assert_int_eq(fstat(mfs_fd(t), &a), 0);
	ck_assert(a.st_ino == b.st_ino);

	/* The handle keeps its own key when the caller's buffer changes. */
	memset(key, 'z', 10);
	ck_assert_str_ne(mfs_key(s), key);
	ck_assert_str_eq(mfs_key(s), mfs_key(t));
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_detach(s), 0);
}
END_TEST

START_TEST(native_path)
{
	const char *key = KEY(), *d = mt_tmpdir();
	mfs_options o = { MFS_BACKEND_FILE, 0, 0, NULL };
	char buf[600], want[600];
	mfs_segment *s;
	size_t n;

	ck_assert_ptr_nonnull(d);
	EXPECT(mfs_native_path(key, NULL, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, mt_shm_path(key));
	ck_assert(!mt_exists(buf)); /* naming makes nothing */
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert_str_eq(mfs_native_key(s), buf);
	EXPECT(mfs_detach(s), 0);

	/* The buffer must hold the path and its NUL. */
	n = strlen(buf);
	EXPECT(mfs_native_path(key, NULL, buf, n + 1), 0);
	EXPECT(mfs_native_path(key, NULL, buf, n), MFS_E_INVALID);
	EXPECT(mfs_native_path(key, NULL, buf, 0), MFS_E_INVALID);

	o.dir = d;
	snprintf(want, sizeof want, "%s/%s", d, key);
	EXPECT(mfs_native_path(key, &o, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, want);
	o.backend = MFS_BACKEND_RUNTIME_DIR;
	snprintf(want, sizeof want, "%s/mfshare/%s", d, key);
	EXPECT(mfs_native_path(key, &o, buf, sizeof buf), 0);
	ck_assert_str_eq(buf, want);
	o.backend = MFS_BACKEND_MEMFD;
	EXPECT(mfs_native_path(key, &o, buf, sizeof buf), MFS_E_INVALID);
	EXPECT(mfs_native_path("a/b", NULL, buf, sizeof buf), MFS_E_KEY);
	mt_rmtree(d);
}
END_TEST

/* Resident set (kB) of the mapping that contains @p, from /proc/self/smaps:
 * the pages entered into this process's page tables. */
static long rss_kb_of(const void *p)
{
	FILE *f = fopen("/proc/self/smaps", "r");
	char line[512];
	long rss = -1;
	int in = 0;

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof line, f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
			in = (uintptr_t)p >= lo && (uintptr_t)p < hi;
		else if (in && sscanf(line, "Rss: %ld kB", &rss) == 1)
			break;
	}
	fclose(f);
	return rss;
}

/* MFS_POPULATE maps every data page up front; without it, create and
 * attach touch the header page only.  Checked on create, on attach (of
 * a segment the creator made without the flag) and read-only.  Without
 * it a first read maps a few neighbouring pages (fault-around), far from
 * all. */
START_TEST(populate)
{
	const char *key = KEY();
	const size_t size = 1u << 20;
	mfs_options pop = { 0, MFS_POPULATE, 0, NULL };
	mfs_options pop_ro = { 0, MFS_POPULATE | MFS_READ_ONLY, 0, NULL };
	mfs_segment *s, *a, *r;

	EXPECT(mfs_create(key, size, NULL, &s), 0);
	ck_assert_int_lt(rss_kb_of(mfs_data(s)), (long)(size / 1024) / 2);
	EXPECT(mfs_attach(key, &pop, &a), 0);
	ck_assert_int_ge(rss_kb_of(mfs_data(a)), (long)(size / 1024));
	EXPECT(mfs_attach(key, &pop_ro, &r), 0);
	ck_assert_int_ge(rss_kb_of(mfs_const_data(r)), (long)(size / 1024));
	EXPECT(mfs_detach(r), 0);
	EXPECT(mfs_detach(a), 0);
	EXPECT(mfs_detach(s), 0);

	EXPECT(mfs_create(key, size, &pop, &s), 0);
	ck_assert_int_ge(rss_kb_of(mfs_data(s)), (long)(size / 1024));
	memset(mfs_data(s), 0x5a, size); /* writable: no fault to see here */
	EXPECT(mfs_attach(key, NULL, &a), 0);
	ck_assert_int_lt(rss_kb_of(mfs_data(a)), (long)(size / 1024) / 2); /* fault-around maps a few */
	ck_assert_int_eq(((unsigned char *)mfs_data(a))[size - 1], 0x5a);
	EXPECT(mfs_detach(a), 0);
	EXPECT(mfs_detach(s), 0);
}
END_TEST

/* ------------------------------------------------------------ main */

int main(void)
{
	Suite *s = suite_create("api");
	TCase *tc;

	if (mt_begin("api", tag, sizeof tag, tmproot, sizeof tmproot) != 0)
		return 99;

	tc = tcase_create("errors");
	tcase_add_test(tc, error_values);
	tcase_add_test(tc, strerror_distinct);
	tcase_add_test(tc, err_name);
	tcase_add_test(tc, last_error);
	suite_add_tcase(s, tc);

	tc = tcase_create("keys");
	tcase_add_test(tc, key_invalid);
	tcase_add_test(tc, key_lengths);
	tcase_add_test(tc, key_case);
	suite_add_tcase(s, tc);

	tc = tcase_create("sizes");
	tcase_add_test(tc, size_invalid);
	tcase_add_test(tc, size_int64_boundary);
	tcase_add_test(tc, size_huge);
	tcase_add_test(tc, size_rounding);
	suite_add_tcase(s, tc);

	tc = tcase_create("options");
	tcase_add_test(tc, opt_unknown_flags);
	tcase_add_test(tc, opt_unknown_backend);
	tcase_add_test(tc, opt_file_needs_dir);
	tcase_add_test(tc, opt_runtime_unset);
	tcase_add_test(tc, opt_runtime_xdg);
	tcase_add_test(tc, opt_file_backend);
	tcase_add_test(tc, opt_memfd);
	tcase_add_test(tc, opt_tempfile);
	tcase_add_test(tc, opt_defaults);
	tcase_add_test(tc, populate);
	suite_add_tcase(s, tc);

	tc = tcase_create("arguments");
	tcase_add_test(tc, null_out);
	tcase_add_test(tc, out_nulled_on_failure);
	tcase_add_test(tc, null_handle);
	suite_add_tcase(s, tc);

	tc = tcase_create("modes");
	tcase_add_test(tc, mode_exact);
	tcase_add_test(tc, mode_runtime_dir);
	suite_add_tcase(s, tc);

	tc = tcase_create("accessors");
	tcase_add_test(tc, accessors);
	tcase_add_test(tc, native_path);
	suite_add_tcase(s, tc);

	return mt_run_clean(s, tag, "check_api", tmproot);
}
