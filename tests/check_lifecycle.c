/* SPDX-License-Identifier: MIT */
/*
 * The lifecycle across processes: create/attach/open/detach/remove, the
 * attachment count, attachers killed with SIGKILL, stale and half-made
 * segments, racing creators, fork()ed handles, read-only mappings, and
 * lifecycle calls that must not wait for the user lock.
 */
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

/* Every key of this run starts "t-lc<main pid>-", so main() can sweep
 * /dev/shm after a failed test left something behind. */
static char tag[32];
static char tmproot[256];

#define KEY() mt_key(tag)

#define EXPECT(call, want) MT_EXPECT(call, want)

/* In a child: give up with a distinct exit code, saying why. */
#define CHK(cond, code) do {                                                 \
	if (!(cond)) {                                                        \
		fprintf(stderr, "child %ld: line %d: %s failed (last error: %s)\n", \
		        (long)getpid(), __LINE__, #cond, mfs_last_error());   \
		return (code);                                                \
	}                                                                     \
} while (0)

#define JUNK ((mfs_segment *)(uintptr_t)0x5a5a5a5a)
#define NPROC 16

/* State shared between a test and its children (anonymous shared memory). */
struct shared {
	int ready;            /* children that reached their waiting point */
	int go;               /* the test's release signal */
	int done;
	long pid[NPROC];      /* children's pids (and grandchildren's) */
	int rc[NPROC];
	int created[NPROC];
	long creator[NPROC];
	uint64_t ino[NPROC];
	uint32_t count[NPROC];
	uint64_t t[NPROC];
	int bad[NPROC];
	int badcode[NPROC];
};

/* What a child needs to know; set before forking, copied by fork(). */
static struct shared *sh;
static const char *g_key;
static mt_barrier *g_b1, *g_b2;

static uint32_t refcount(mfs_segment *s)
{
	mfs_stat st;

	EXPECT(mfs_stat_segment(s, &st), 0);
	return st.refcount;
}

static void write_file(const char *path, const void *buf, size_t n)
{
	int fd = open(path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);

	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(write(fd, buf, n), (ssize_t)n);
	close(fd);
}

/* Assert the file at @path still holds exactly @n bytes of @buf. */
static void assert_file_is(const char *path, const void *buf, size_t n)
{
	size_t len = 0;
	unsigned char *got = mt_slurp(path, n + 4096, &len);

	ck_assert_msg(got != NULL, "%s is gone", path);
	ck_assert_msg(len == n, "%s: %zu bytes, was %zu", path, len, n);
	ck_assert_msg(memcmp(got, buf, n) == 0, "%s was modified", path);
	free(got);
}

/*
 * A segment whose creator died half-way: a real segment's bytes (built in
 * a FILE temp dir) copied to @key's /dev/shm name with the state word
 * (offset 40) put back to 0, INIT.  Nobody holds its gate or tokens.
 */
static void make_halfmade(const char *key)
{
	const char *d = mt_tmpdir();
	mfs_options o = { MFS_BACKEND_FILE, 0, 0, NULL };
	mfs_segment *s;
	unsigned char *buf;
	uint32_t state = 0;
	size_t len = 0;

	ck_assert_ptr_nonnull(d);
	o.dir = d;
	EXPECT(mfs_create(key, 4096, &o, &s), 0);
	mt_fill(mfs_data(s), 4096, 3);
	buf = mt_slurp(mfs_native_key(s), 1 << 20, &len);
	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_ge(len, 8192);
	memcpy(&state, buf + 40, 4);
	ck_assert_uint_eq(state, 1); /* READY: we patch the right word */
	state = 0;
	memcpy(buf + 40, &state, 4);
	EXPECT(mfs_detach(s), 0);
	mt_rmtree(d);
	write_file(mt_shm_path(key), buf, len);
	free(buf);
}

/* ============================================================ create/attach */

START_TEST(create_exists_untouched)
{
	const char *key = KEY();
	mfs_segment *s, *t;
	struct stat a, b;

	EXPECT(mfs_create(key, 8192, NULL, &s), 0);
	mt_fill(mfs_data(s), mfs_size(s), 11);
	ck_assert_int_eq(stat(mt_shm_path(key), &a), 0);
	t = JUNK;
	EXPECT(mfs_create(key, 8192, NULL, &t), MFS_E_EXISTS);
	ck_assert_ptr_null(t);
	EXPECT(mfs_create(key, 1, NULL, &t), MFS_E_EXISTS);
	EXPECT(mfs_create(key, (size_t)1 << 24, NULL, &t), MFS_E_EXISTS);
	ck_assert(mt_same(mfs_data(s), mfs_size(s), 11));
	ck_assert_int_eq(stat(mt_shm_path(key), &b), 0);
	ck_assert(a.st_ino == b.st_ino && a.st_size == b.st_size);
	ck_assert_uint_eq(refcount(s), 1);
	EXPECT(mfs_attach(key, NULL, &t), 0);
	ck_assert(mt_same(mfs_data(t), mfs_size(t), 11));
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/* Names holding something that is not a segment: never replaced, never
 * written, and attach/open/remove/inspect say CORRUPT. */
static void nonsegment(const void *buf, size_t n)
{
	const char *key = KEY(), *path = mt_shm_path(key);
	mfs_segment *s = JUNK;
	mfs_stat st;
	int created = 7;

	write_file(path, buf, n);
	EXPECT(mfs_create(key, 4096, NULL, &s), MFS_E_EXISTS);
	ck_assert_ptr_null(s);
	assert_file_is(path, buf, n);
	s = JUNK;
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_CORRUPT);
	ck_assert_ptr_null(s);
	s = JUNK;
	EXPECT(mfs_open(key, 4096, NULL, &s, &created), MFS_E_CORRUPT);
	ck_assert_ptr_null(s);
	ck_assert_int_eq(created, 0);
	EXPECT(mfs_inspect(key, NULL, &st), MFS_E_CORRUPT);
	EXPECT(mfs_remove(key, NULL), MFS_E_CORRUPT);
	assert_file_is(path, buf, n);
	ck_assert_int_eq(unlink(path), 0);
}

START_TEST(create_exists_nonsegment)
{
	static const char text[] = "not a segment, just some text\n";
	unsigned char *big = calloc(1, 3 * 4096);

	ck_assert_ptr_nonnull(big);
	nonsegment(text, sizeof text);
	nonsegment("", 0);                /* empty */
	nonsegment(big, 3 * 4096);        /* zeros: no magic */
	memcpy(big, "MFSHARE1", 8);       /* the magic, nothing else right */
	nonsegment(big, 3 * 4096);
	free(big);
}
END_TEST

START_TEST(create_exists_directory)
{
	const char *key = KEY(), *path = mt_shm_path(key);
	mfs_segment *s = JUNK;
	mfs_stat st;
	struct stat sb;
	int created = 7;

	ck_assert_int_eq(mkdir(path, 0700), 0);
	EXPECT(mfs_create(key, 4096, NULL, &s), MFS_E_EXISTS);
	ck_assert_ptr_null(s);
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_CORRUPT);
	EXPECT(mfs_open(key, 4096, NULL, &s, &created), MFS_E_CORRUPT);
	ck_assert_int_eq(created, 0);
	EXPECT(mfs_inspect(key, NULL, &st), MFS_E_CORRUPT);
	EXPECT(mfs_remove(key, NULL), MFS_E_CORRUPT);
	ck_assert_int_eq(lstat(path, &sb), 0);
	ck_assert(S_ISDIR(sb.st_mode));
	ck_assert_int_eq(rmdir(path), 0);
}
END_TEST

static int child_check_and_write(void *arg)
{
	mfs_segment *s;

	(void)arg;
	CHK(mfs_attach(g_key, NULL, &s) == 0, 10);
	CHK(mfs_size(s) >= 8192, 11);
	CHK(mt_same(mfs_data(s), 4096, 21), 12);
	mt_fill((char *)mfs_data(s) + 4096, 4096, 22);
	CHK(mfs_detach(s) == 0, 13);
	return 0;
}

START_TEST(attach_sees_writes)
{
	const char *key = KEY();
	mfs_segment *s, *t;
	pid_t p;

	EXPECT(mfs_create(key, 8192, NULL, &s), 0);
	EXPECT(mfs_attach(key, NULL, &t), 0);
	ck_assert_ptr_ne(mfs_data(s), mfs_data(t));
	ck_assert_uint_eq(mfs_size(s), mfs_size(t));
	mt_fill(mfs_data(s), 4096, 21);
	ck_assert(mt_same(mfs_data(t), 4096, 21));
	mt_fill((char *)mfs_data(t) + 4096, 100, 5);
	ck_assert(mt_same((char *)mfs_data(s) + 4096, 100, 5));
	EXPECT(mfs_detach(t), 0);

	/* Another process reads ours and writes its own. */
	g_key = key;
	p = mt_spawn(child_check_and_write, NULL);
	ck_assert_int_gt(p, 0);
	ck_assert_int_eq(mt_wait(p, 5000), 0);
	ck_assert(mt_same((char *)mfs_data(s) + 4096, 4096, 22));
	ck_assert_uint_eq(refcount(s), 1);
	EXPECT(mfs_detach(s), 0);
}
END_TEST

START_TEST(attach_absent)
{
	const char *key = KEY();
	mfs_segment *s = JUNK;
	mfs_stat st;

	EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(s);
	EXPECT(mfs_inspect(key, NULL, &st), MFS_E_NOT_FOUND);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

START_TEST(open_semantics)
{
	const char *key = KEY();
	mfs_segment *a, *b, *c, *d = JUNK;
	int created = 7;
	size_t size;

	/* size 0 cannot create, and makes nothing */
	EXPECT(mfs_open(key, 0, NULL, &d, &created), MFS_E_INVALID_SIZE);
	ck_assert_ptr_null(d);
	ck_assert_int_eq(created, 0);
	ck_assert(!mt_exists(mt_shm_path(key)));

	EXPECT(mfs_open(key, 5000, NULL, &a, &created), 0);
	ck_assert_int_eq(created, 1);
	size = mfs_size(a);
	ck_assert_uint_ge(size, 5000);
	ck_assert(mt_all_zero(mfs_data(a), size));
	mt_fill(mfs_data(a), size, 9);

	created = 7;
	EXPECT(mfs_open(key, 0, NULL, &b, &created), 0);
	ck_assert_int_eq(created, 0);
	ck_assert_uint_eq(mfs_size(b), size);
	created = 7;
	EXPECT(mfs_open(key, (size_t)1 << 20, NULL, &c, &created), 0);
	ck_assert_int_eq(created, 0);
	ck_assert_uint_eq(mfs_size(c), size); /* the existing size wins */
	ck_assert(mt_same(mfs_data(c), size, 9));
	EXPECT(mfs_open(key, 1, NULL, &d, NULL), 0); /* created may be NULL */
	ck_assert_uint_eq(refcount(a), 4);
	EXPECT(mfs_detach(d), 0);
	EXPECT(mfs_detach(c), 0);
	EXPECT(mfs_detach(b), 0);
	EXPECT(mfs_detach(a), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));

	/* Gone: the next open creates again, fresh. */
	EXPECT(mfs_open(key, 4096, NULL, &a, &created), 0);
	ck_assert_int_eq(created, 1);
	ck_assert(mt_all_zero(mfs_data(a), mfs_size(a)));
	EXPECT(mfs_detach(a), 0);
}
END_TEST

/* ============================================================ detach/remove */

START_TEST(detach_last_destroys)
{
	const char *key = KEY();
	mfs_segment *s, *t, *u;
	mfs_stat st;

	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	EXPECT(mfs_attach(key, NULL, &t), 0);
	ck_assert_uint_eq(refcount(s), 2);
	mt_fill(mfs_data(t), 4096, 1);
	EXPECT(mfs_detach(s), 0); /* not the last: stays */
	ck_assert(mt_exists(mt_shm_path(key)));
	ck_assert_uint_eq(refcount(t), 1);
	ck_assert(mt_same(mfs_data(t), 4096, 1));
	EXPECT(mfs_inspect(key, NULL, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	EXPECT(mfs_attach(key, NULL, &u), 0);
	ck_assert(mt_same(mfs_data(u), 4096, 1));
	EXPECT(mfs_detach(u), 0);
	ck_assert(mt_exists(mt_shm_path(key)));
	EXPECT(mfs_detach(t), 0); /* the last: destroyed */
	ck_assert(!mt_exists(mt_shm_path(key)));
	EXPECT(mfs_attach(key, NULL, &u), MFS_E_NOT_FOUND);
	EXPECT(mfs_inspect(key, NULL, &st), MFS_E_NOT_FOUND);
	EXPECT(mfs_remove(key, NULL), MFS_E_NOT_FOUND);
}
END_TEST

START_TEST(remove_semantics)
{
	const char *key = KEY();
	mfs_segment *s, *t, *n;
	mfs_stat st;

	EXPECT(mfs_remove(key, NULL), MFS_E_NOT_FOUND);
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	EXPECT(mfs_attach(key, NULL, &t), 0);
	mt_fill(mfs_data(s), 4096, 4);
	EXPECT(mfs_remove(key, NULL), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
	EXPECT(mfs_attach(key, NULL, &n), MFS_E_NOT_FOUND);
	EXPECT(mfs_inspect(key, NULL, &st), MFS_E_NOT_FOUND);
	EXPECT(mfs_remove(key, NULL), MFS_E_NOT_FOUND);

	/* The old handles keep working, with each other. */
	ck_assert(mt_same(mfs_data(t), 4096, 4));
	mt_fill(mfs_data(t), 4096, 5);
	ck_assert(mt_same(mfs_data(s), 4096, 5));
	EXPECT(mfs_lock(t), 0);
	EXPECT(mfs_trylock(s), MFS_E_LOCK); /* same thread, other handle */
	EXPECT(mfs_unlock(s), 0);
	ck_assert_uint_eq(refcount(s), 2);

	/* A new segment under the name is a different one, and the old
	 * handles' last detach must not take its name away. */
	EXPECT(mfs_create(key, 4096, NULL, &n), 0);
	ck_assert(mt_all_zero(mfs_data(n), 4096));
	mt_fill(mfs_data(n), 4096, 6);
	ck_assert(mt_same(mfs_data(s), 4096, 5));
	EXPECT(mfs_detach(s), 0);
	EXPECT(mfs_detach(t), 0);
	ck_assert(mt_exists(mt_shm_path(key)));
	EXPECT(mfs_attach(key, NULL, &t), 0);
	ck_assert(mt_same(mfs_data(t), 4096, 6));
	EXPECT(mfs_detach(t), 0);
	EXPECT(mfs_detach(n), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/* ============================================================ processes */

static int child_attach_hold(void *arg)
{
	int i = (int)(intptr_t)arg;
	mfs_segment *s;

	CHK(mfs_attach(g_key, NULL, &s) == 0, 10);
	sh->pid[i] = (long)getpid();
	mt_add(&sh->ready, 1);
	CHK(mt_await(&sh->go, i + 1, 10000), 11);
	CHK(mfs_detach(s) == 0, 12);
	mt_add(&sh->done, 1);
	return 0;
}

START_TEST(refcount_processes)
{
	const char *key = KEY();
	mfs_segment *s;
	mfs_stat st;
	pid_t p[3];
	int i;

	sh = mt_shared_new(sizeof *sh);
	g_key = key;
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_gt(p[i] = mt_spawn(child_attach_hold, (void *)(intptr_t)i), 0);
	ck_assert(mt_await(&sh->ready, 3, 5000));
	ck_assert_uint_eq(refcount(s), 4);
	EXPECT(mfs_inspect(key, NULL, &st), 0);
	ck_assert_uint_eq(st.refcount, 4);
	EXPECT(mfs_inspect(key, NULL, &st), 0); /* inspecting counts nothing */
	ck_assert_uint_eq(st.refcount, 4);
	for (i = 0; i < 3; i++) {
		mt_add(&sh->go, 1);
		ck_assert(mt_await(&sh->done, i + 1, 5000));
		ck_assert_uint_eq(refcount(s), 3 - (unsigned)i);
	}
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(mt_wait(p[i], 5000), 0);
	ck_assert(mt_exists(mt_shm_path(key)));
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/* Find @pid's row in the attacher table of @path; its alive flag, or -1. */
static int row_alive(const char *path, long pid, int stale_ok)
{
	mfs_attacher att[16];
	mfs_stat st;
	unsigned n = 0, i;

	EXPECT(mfs_inspect_path(path, stale_ok, &st, att, 16, &n), 0);
	for (i = 0; i < n && i < 16; i++)
		if (att[i].pid == pid)
			return att[i].alive;
	return -1;
}

/* Poll until the live count seen through @s is @want; the ms it took, or
 * -1 after @limit ms. */
static int until_refcount(mfs_segment *s, uint32_t want, unsigned limit)
{
	uint64_t t0 = mt_now_ms();

	while (refcount(s) != want) {
		if (mt_now_ms() - t0 > limit)
			return -1;
		mt_sleep_ms(1);
	}
	return (int)(mt_now_ms() - t0);
}

START_TEST(killed_attacher)
{
	const char *key = KEY();
	char path[300];
	mfs_segment *s;
	mfs_stat st;
	uint64_t t0;
	pid_t p;
	int ms;

	sh = mt_shared_new(sizeof *sh);
	g_key = key;
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	snprintf(path, sizeof path, "%s", mfs_native_key(s));
	ck_assert_int_gt(p = mt_spawn(child_attach_hold, (void *)(intptr_t)0), 0);
	ck_assert(mt_await(&sh->ready, 1, 5000));
	ck_assert_uint_eq(refcount(s), 2);
	ck_assert_int_eq(row_alive(path, (long)p, 0), 1);
	ck_assert_int_eq(row_alive(path, (long)getpid(), 0), 1);

	/* Killed, and not reaped: a zombie still has its pid. */
	t0 = mt_now_ms();
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	ms = until_refcount(s, 1, 2000);
	ck_assert_msg(ms >= 0, "the killed attacher still counts after 2 s");
	ck_assert_msg(mt_now_ms() - t0 <= 200, "seen dead after %d ms (limit 200)",
	              (int)(mt_now_ms() - t0));
	ck_assert_int_eq(row_alive(path, (long)p, 0), 0);
	ck_assert_int_eq(row_alive(path, (long)getpid(), 0), 1);
	EXPECT(mfs_stat_segment(s, &st), 0);
	ck_assert_uint_eq(st.dead_slots, 1);
	EXPECT(mfs_inspect(key, NULL, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);

	/* The dead one never detached: the last live detach still ends it. */
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(path));
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);
	ck_assert_int_eq(mt_wait(p, 5000), 128 + SIGKILL);
}
END_TEST

static int child_create_hold(void *arg)
{
	int i = (int)(intptr_t)arg;
	mfs_segment *s;

	CHK(mfs_create(g_key, 8192, NULL, &s) == 0, 10);
	mt_fill(mfs_data(s), mfs_size(s), 77);
	sh->pid[i] = (long)getpid();
	mt_add(&sh->ready, 1);
	CHK(mt_await(&sh->go, 1, 10000), 11);
	return 0;
}

/* A creator and an attacher, both killed: the segment is stale.  Returns
 * the kill time. */
static uint64_t make_stale(const char *key, pid_t *p)
{
	sh = mt_shared_new(sizeof *sh);
	g_key = key;
	ck_assert_int_gt(p[0] = mt_spawn(child_create_hold, (void *)(intptr_t)0), 0);
	ck_assert(mt_await(&sh->ready, 1, 5000));
	ck_assert_int_gt(p[1] = mt_spawn(child_attach_hold, (void *)(intptr_t)1), 0);
	ck_assert(mt_await(&sh->ready, 2, 5000));
	kill(p[0], SIGKILL);
	kill(p[1], SIGKILL);
	return mt_now_ms();
}

/* Poll mfs_inspect until it says NOT_FOUND; ms since @t0. */
static int until_absent(const char *key, uint64_t t0, unsigned limit)
{
	mfs_stat st;
	int r;

	while ((r = mfs_inspect(key, NULL, &st)) == 0) {
		if (mt_now_ms() - t0 > limit)
			return -1;
		mt_sleep_ms(1);
	}
	EXPECT(r, MFS_E_NOT_FOUND);
	return (int)(mt_now_ms() - t0);
}

START_TEST(stale_all_killed)
{
	const char *key = KEY();
	mfs_segment *s = JUNK;
	uint64_t t0;
	pid_t p[2];
	int ms;

	t0 = make_stale(key, p);
	ms = until_absent(key, t0, 2000);
	ck_assert_msg(ms >= 0 && ms <= 200, "stale seen after %d ms (limit 200)", ms);
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(s);
	/* create replaces it: fresh, zeroed */
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert(mt_all_zero(mfs_data(s), mfs_size(s)));
	ck_assert_uint_eq(mfs_size(s), 4096);
	ck_assert_uint_eq(refcount(s), 1);
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
	ck_assert_int_eq(mt_wait(p[0], 5000), 128 + SIGKILL);
	ck_assert_int_eq(mt_wait(p[1], 5000), 128 + SIGKILL);
}
END_TEST

START_TEST(stale_remove_open)
{
	const char *key = KEY();
	mfs_segment *s;
	pid_t p[2];
	int created = 7;

	/* remove: NOT_FOUND, and the stale name is cleaned up */
	make_stale(key, p);
	ck_assert_int_eq(mt_wait(p[0], 5000), 128 + SIGKILL);
	ck_assert_int_eq(mt_wait(p[1], 5000), 128 + SIGKILL);
	EXPECT(mfs_remove(key, NULL), MFS_E_NOT_FOUND);
	ck_assert(!mt_exists(mt_shm_path(key)));
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);

	/* open: replaces it, as its creator */
	make_stale(key, p);
	ck_assert_int_eq(mt_wait(p[0], 5000), 128 + SIGKILL);
	ck_assert_int_eq(mt_wait(p[1], 5000), 128 + SIGKILL);
	EXPECT(mfs_open(key, 4096, NULL, &s, &created), 0);
	ck_assert_int_eq(created, 1);
	ck_assert(mt_all_zero(mfs_data(s), mfs_size(s)));
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

START_TEST(halfmade_dead_creator)
{
	const char *key = KEY();
	mfs_segment *s = JUNK;
	mfs_stat st;
	int created = 7;

	make_halfmade(key);
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(s);
	EXPECT(mfs_inspect(key, NULL, &st), MFS_E_NOT_FOUND);
	EXPECT(mfs_remove(key, NULL), MFS_E_NOT_FOUND);
	ck_assert(!mt_exists(mt_shm_path(key)));

	make_halfmade(key);
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert(mt_all_zero(mfs_data(s), mfs_size(s)));
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));

	make_halfmade(key);
	EXPECT(mfs_open(key, 4096, NULL, &s, &created), 0);
	ck_assert_int_eq(created, 1);
	ck_assert(mt_all_zero(mfs_data(s), mfs_size(s)));
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/* Pretend to be a creator still at work: hold the gate exclusively. */
static int child_hold_gate(void *arg)
{
	struct flock fl;
	int fd = open(mt_shm_path(g_key), O_RDWR | O_CLOEXEC);

	(void)arg;
	CHK(fd >= 0, 10);
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = 0;
	fl.l_len = 1;
	CHK(fcntl(fd, F_OFD_SETLK, &fl) == 0, 11);
	mt_add(&sh->ready, 1);
	mt_sleep_ms(15000);
	return 0;
}

static int child_attach_timed(void *arg)
{
	int i = (int)(intptr_t)arg;
	mfs_segment *s = NULL;
	mfs_stat st;

	mt_add(&sh->ready, 1);
	if (i == 0)
		sh->rc[i] = mfs_attach(g_key, NULL, &s);
	else
		sh->rc[i] = mfs_inspect(g_key, NULL, &st);
	sh->t[i] = mt_now_ms();
	mt_add(&sh->done, 1);
	mfs_detach(s);
	return 0;
}

START_TEST(halfmade_live_creator)
{
	const char *key = KEY();
	uint64_t tkill;
	pid_t holder, w[2];
	int i;

	sh = mt_shared_new(sizeof *sh);
	g_key = key;
	make_halfmade(key);
	ck_assert_int_gt(holder = mt_spawn(child_hold_gate, NULL), 0);
	ck_assert(mt_await(&sh->ready, 1, 5000));
	for (i = 0; i < 2; i++)
		ck_assert_int_gt(w[i] = mt_spawn(child_attach_timed, (void *)(intptr_t)i), 0);
	ck_assert(mt_await(&sh->ready, 3, 5000));
	mt_sleep_ms(300);
	ck_assert_msg(mt_ld(&sh->done) == 0, "attach/inspect did not wait for a "
	              "live creator (rc %s)", mfs_err_name(sh->rc[0]));
	tkill = mt_now_ms();
	kill(holder, SIGKILL);
	ck_assert(mt_await(&sh->done, 2, 3000));
	for (i = 0; i < 2; i++) {
		ck_assert_int_eq(mt_wait(w[i], 2000), 0);
		ck_assert_msg(sh->rc[i] == MFS_E_NOT_FOUND, "%s gave %s",
		              i ? "inspect" : "attach", mfs_err_name(sh->rc[i]));
		ck_assert_msg(sh->t[i] - tkill <= 200, "%s answered %d ms after the "
		              "creator died (limit 200)", i ? "inspect" : "attach",
		              (int)(sh->t[i] - tkill));
	}
	ck_assert_int_eq(mt_wait(holder, 2000), 128 + SIGKILL);
	EXPECT(mfs_remove(key, NULL), MFS_E_NOT_FOUND);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/* ============================================================ races */

static int child_open_race(void *arg)
{
	int i = (int)(intptr_t)arg;
	mfs_segment *s;
	mfs_stat st;
	struct stat sb;
	uint32_t *counter;
	int r;

	mt_barrier_wait(g_b1);
	sh->rc[i] = r = mfs_open(g_key, 4096, NULL, &s, &sh->created[i]);
	if (r != 0) {
		mt_barrier_wait(g_b2);
		return 10;
	}
	counter = mfs_data(s);
	r = mfs_lock(s);
	CHK(r == 0, 11);
	(*counter)++;
	CHK(mfs_unlock(s) == 0, 12);
	CHK(mfs_stat_segment(s, &st) == 0, 13);
	sh->creator[i] = st.creator_pid;
	CHK(fstat(mfs_fd(s), &sb) == 0, 14);
	sh->ino[i] = (uint64_t)sb.st_ino;
	sh->pid[i] = (long)getpid();
	mt_barrier_wait(g_b2); /* every one is attached and has counted */
	CHK(mfs_lock(s) == 0, 15);
	sh->count[i] = *counter;
	CHK(mfs_unlock(s) == 0, 16);
	CHK(mfs_detach(s) == 0, 17);
	return 0;
}

START_TEST(open_race)
{
	enum { N = 8, ROUNDS = 3 };
	pid_t p[N];
	int i, round, creators, who;

	for (round = 0; round < ROUNDS; round++) {
		const char *key = KEY();
		mfs_segment *s;

		sh = mt_shared_new(sizeof *sh);
		g_key = key;
		g_b1 = mt_barrier_new(N);
		g_b2 = mt_barrier_new(N);
		for (i = 0; i < N; i++)
			ck_assert_int_gt(p[i] = mt_spawn(child_open_race, (void *)(intptr_t)i), 0);
		for (i = 0; i < N; i++)
			ck_assert_msg(mt_wait(p[i], 10000) == 0, "child %d failed: open "
			              "gave %s", i, mfs_err_name(sh->rc[i]));
		creators = 0;
		who = -1;
		for (i = 0; i < N; i++) {
			ck_assert_int_eq(sh->rc[i], 0);
			if (sh->created[i]) {
				creators++;
				who = i;
			}
		}
		ck_assert_msg(creators == 1, "%d creators, want exactly 1", creators);
		for (i = 0; i < N; i++) {
			ck_assert_uint_eq(sh->ino[i], sh->ino[0]);
			ck_assert_int_eq(sh->creator[i], sh->pid[who]);
			ck_assert_uint_eq(sh->count[i], N);
		}
		EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);
		ck_assert(!mt_exists(mt_shm_path(key)));
	}
}
END_TEST

static int child_churn(void *arg)
{
	int i = (int)(intptr_t)arg, it, r;
	mfs_segment *s;
	unsigned char *d;

	mt_barrier_wait(g_b1);
	for (it = 0; it < 500; it++) {
		int by_attach = (it % 3) == 2;

		if (by_attach) {
			r = mfs_attach(g_key, NULL, &s);
			if (r == MFS_E_NOT_FOUND)
				continue; /* nobody had it open just then */
		} else {
			r = mfs_open(g_key, 4096, NULL, &s, NULL);
		}
		if (r != 0) {
			sh->bad[i]++;
			sh->badcode[i] = r;
			continue;
		}
		d = (unsigned char *)mfs_data(s) + i * 64;
		if (mfs_size(s) < 4096) {
			sh->bad[i]++;
			sh->badcode[i] = 1;
		}
		memset(d, (unsigned char)it, 64);
		if (d[63] != (unsigned char)it) {
			sh->bad[i]++;
			sh->badcode[i] = 2;
		}
		r = mfs_detach(s);
		if (r != 0) {
			sh->bad[i]++;
			sh->badcode[i] = r;
		}
	}
	return 0;
}

START_TEST(attach_detach_stress)
{
	enum { N = 4 };
	const char *key = KEY();
	mfs_segment *s;
	pid_t p[N];
	int i;

	sh = mt_shared_new(sizeof *sh);
	g_key = key;
	g_b1 = mt_barrier_new(N);
	for (i = 0; i < N; i++)
		ck_assert_int_gt(p[i] = mt_spawn(child_churn, (void *)(intptr_t)i), 0);
	for (i = 0; i < N; i++)
		ck_assert_msg(mt_wait(p[i], 25000) == 0, "child %d did not finish cleanly", i);
	for (i = 0; i < N; i++)
		ck_assert_msg(sh->bad[i] == 0, "child %d: %d failures, the last %s (%d)",
		              i, sh->bad[i], mfs_err_name(sh->badcode[i]), sh->badcode[i]);
	EXPECT(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/* ============================================================ fork */

static mfs_segment *g_seg;

static int child_fork_copy(void *arg)
{
	mfs_segment *s;
	mfs_stat st;

	(void)arg;
	/* The copy is not ours: it cannot lock, and it does not count. */
	CHK(mfs_lock(g_seg) == MFS_E_INVALID, 10);
	CHK(mt_same(mfs_data(g_seg), 4096, 31), 11);
	mt_add(&sh->ready, 1);
	CHK(mt_await(&sh->go, 1, 10000), 12);
	CHK(mfs_detach(g_seg) == 0, 13);
	/* A new attachment by key is ours. */
	CHK(mfs_attach(g_key, NULL, &s) == 0, 14);
	CHK(mt_same(mfs_data(s), 4096, 31), 15);
	CHK(mfs_stat_segment(s, &st) == 0, 16);
	CHK(st.refcount == 2, 17);
	mt_fill(mfs_data(s), 4096, 32);
	CHK(mfs_lock(s) == 0, 18);
	CHK(mfs_unlock(s) == 0, 19);
	CHK(mfs_detach(s) == 0, 20);
	return 0;
}

START_TEST(fork_copy)
{
	const char *key = KEY();
	mfs_segment *s;
	pid_t p;

	sh = mt_shared_new(sizeof *sh);
	g_key = key;
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	mt_fill(mfs_data(s), 4096, 31);
	g_seg = s;
	ck_assert_int_gt(p = mt_spawn(child_fork_copy, NULL), 0);
	ck_assert(mt_await(&sh->ready, 1, 5000));
	ck_assert_uint_eq(refcount(s), 1); /* the child's copy is no attachment */
	mt_add(&sh->go, 1);
	ck_assert_int_eq(mt_wait(p, 5000), 0);
	ck_assert_uint_eq(refcount(s), 1);
	ck_assert(mt_exists(mt_shm_path(key)));
	ck_assert(mt_same(mfs_data(s), 4096, 32));
	EXPECT(mfs_lock(s), 0);
	EXPECT(mfs_unlock(s), 0);
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/* A process that attaches, then fork()s a child (no exec) that keeps the
 * copied handle; the test kills the parent. */
static int child_attach_fork(void *arg)
{
	mfs_segment *s;
	pid_t c;

	(void)arg;
	CHK(mfs_attach(g_key, NULL, &s) == 0, 10);
	sh->pid[0] = (long)getpid();
	c = fork();
	CHK(c >= 0, 11);
	if (c == 0) {
		/* Holds the copy until told, then leaves without detaching. */
		sh->pid[1] = (long)getpid();
		mt_add(&sh->ready, 1);
		mt_await(&sh->go, 1, 10000);
		_exit(0);
	}
	CHK(mt_await(&sh->ready, 1, 5000), 12);
	mt_add(&sh->ready, 1);
	mt_sleep_ms(15000);
	return 0;
}

START_TEST(fork_parent_killed)
{
	const char *key = KEY();
	char path[300];
	mfs_segment *s;
	uint64_t t0;
	pid_t p, c;
	int ms, reaper;

	sh = mt_shared_new(sizeof *sh);
	g_key = key;
	/* The orphaned grandchild comes back to us to be reaped. */
	reaper = prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0;
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	snprintf(path, sizeof path, "%s", mfs_native_key(s));
	ck_assert_int_gt(p = mt_spawn(child_attach_fork, NULL), 0);
	ck_assert(mt_await(&sh->ready, 2, 5000));
	c = (pid_t)sh->pid[1];
	ck_assert_uint_eq(refcount(s), 2);

	t0 = mt_now_ms();
	ck_assert_int_eq(kill(p, SIGKILL), 0);
	ms = until_refcount(s, 1, 2000);
	ck_assert_msg(ms >= 0, "the killed parent still counts after 2 s, while "
	              "its fork()ed child lives: the child kept its token");
	ck_assert_msg(mt_now_ms() - t0 <= 200, "seen dead after %d ms (limit 200)",
	              (int)(mt_now_ms() - t0));
	ck_assert_int_eq(kill(c, 0), 0); /* the child is still there */
	ck_assert_int_eq(row_alive(path, (long)p, 0), 0);
	mt_add(&sh->go, 1);
	ck_assert_int_eq(mt_wait(p, 5000), 128 + SIGKILL);
	if (reaper)
		ck_assert_int_eq(mt_wait(c, 5000), 0);
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(path));
}
END_TEST

/* ============================================================ read-only */

static int child_write_byte(void *arg)
{
	volatile unsigned char *p = arg;

	/* The default action, so the fault kills us with SIGSEGV even when a
	 * sanitizer runtime has installed its own handler. */
	signal(SIGSEGV, SIG_DFL);
	p[100] = 0x42;
	return 0;
}

/* A read-only handle reads, locks, notifies, waits; its writes fault. */
static void check_read_only(mfs_segment *ro, mfs_segment *rw)
{
	mfs_segment *other = rw ? rw : ro;
	mfs_stat st;
	uint32_t seen, seq0;
	pid_t p;

	EXPECT(mfs_stat_segment(ro, &st), 0);
	seq0 = st.seq;
	EXPECT(mfs_lock(ro), 0);
	EXPECT(mfs_stat_segment(other, &st), 0);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, (long)getpid());
	EXPECT(mfs_unlock(ro), 0);
	EXPECT(mfs_trylock(ro), 0);
	EXPECT(mfs_unlock(other), 0); /* the lock is the thread's */
	EXPECT(mfs_notify(ro), 0);
	EXPECT(mfs_stat_segment(other, &st), 0);
	ck_assert_uint_eq(st.seq, seq0 + 1);
	seen = seq0;
	EXPECT(mfs_wait(ro, &seen, 0), 0);
	ck_assert_uint_eq(seen, seq0 + 1);
	EXPECT(mfs_wait(ro, &seen, 10), MFS_E_TIMEOUT);

	/* Writes: through the read-only pointer they fault ... */
	ck_assert_int_gt(p = mt_spawn(child_write_byte, mfs_data(ro)), 0);
	ck_assert_int_eq(mt_wait(p, 5000), 128 + SIGSEGV);
	if (rw) {
		/* ... through the read-write one they do not, and show. */
		ck_assert_int_gt(p = mt_spawn(child_write_byte, mfs_data(rw)), 0);
		ck_assert_int_eq(mt_wait(p, 5000), 0);
		ck_assert_int_eq(((unsigned char *)mfs_const_data(ro))[100], 0x42);
	}
}

START_TEST(read_only_attach)
{
	const char *key = KEY();
	mfs_options o = { 0, MFS_READ_ONLY, 0, NULL };
	mfs_segment *s, *r;

	EXPECT(mfs_create(key, 8192, NULL, &s), 0);
	mt_fill(mfs_data(s), 4096, 40);
	EXPECT(mfs_attach(key, &o, &r), 0);
	ck_assert(mt_same(mfs_const_data(r), 4096, 40));
	ck_assert_uint_eq(mfs_size(r), mfs_size(s));
	ck_assert_uint_eq(refcount(s), 2);
	check_read_only(r, s);
	EXPECT(mfs_detach(r), 0);
	ck_assert_uint_eq(refcount(s), 1);
	EXPECT(mfs_open(key, 4096, &o, &r, NULL), 0);
	check_read_only(r, s);
	EXPECT(mfs_detach(r), 0);
	EXPECT(mfs_detach(s), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

START_TEST(read_only_create)
{
	const char *key = KEY();
	mfs_options o = { 0, MFS_READ_ONLY, 0, NULL };
	mfs_segment *r, *s;

	EXPECT(mfs_create(key, 4096, &o, &r), 0);
	ck_assert(mt_all_zero(mfs_const_data(r), mfs_size(r)));
	EXPECT(mfs_attach(key, NULL, &s), 0);
	check_read_only(r, s);
	EXPECT(mfs_detach(s), 0);
	check_read_only(r, NULL);
	EXPECT(mfs_detach(r), 0);
	ck_assert(!mt_exists(mt_shm_path(key)));
}
END_TEST

/* ============================================================ the user lock */

static int child_lock_hold(void *arg)
{
	mfs_segment *s;

	(void)arg;
	CHK(mfs_attach(g_key, NULL, &s) == 0, 10);
	CHK(mfs_lock(s) == 0, 11);
	mt_add(&sh->ready, 1);
	mt_sleep_ms(15000);
	return 0;
}

#define WITHIN_1S(call, want) do {                                           \
	uint64_t t_ = mt_now_ms();                                            \
	EXPECT(call, want);                                                   \
	ck_assert_msg(mt_now_ms() - t_ <= 1000, "%s took %d ms while another " \
	              "process held the lock", #call, (int)(mt_now_ms() - t_)); \
} while (0)

/* Every lifecycle call on a segment whose lock is held by a live process,
 * or by one that died holding it, returns within 1 s. */
static void lifecycle_while_locked(int holder_dies)
{
	const char *key = KEY();
	mfs_segment *s, *a, *o, *x;
	mfs_stat st;
	int created;
	pid_t p;

	sh = mt_shared_new(sizeof *sh);
	g_key = key;
	EXPECT(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert_int_gt(p = mt_spawn(child_lock_hold, NULL), 0);
	ck_assert(mt_await(&sh->ready, 1, 5000));
	if (holder_dies) {
		kill(p, SIGKILL);
		ck_assert_int_eq(mt_wait(p, 5000), 128 + SIGKILL);
	}
	WITHIN_1S(mfs_create(key, 4096, NULL, &x), MFS_E_EXISTS);
	WITHIN_1S(mfs_attach(key, NULL, &a), 0);
	WITHIN_1S(mfs_open(key, 4096, NULL, &o, &created), 0);
	ck_assert_int_eq(created, 0);
	WITHIN_1S(mfs_inspect(key, NULL, &st), 0);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, (long)p);
	ck_assert_uint_eq(st.refcount, holder_dies ? 3 : 4);
	WITHIN_1S(mfs_detach(a), 0);
	WITHIN_1S(mfs_detach(o), 0);
	if (holder_dies) {
		/* The last live detach, the dead holder's lock still set. */
		WITHIN_1S(mfs_detach(s), 0);
		ck_assert(!mt_exists(mt_shm_path(key)));
		WITHIN_1S(mfs_attach(key, NULL, &a), MFS_E_NOT_FOUND);
	} else {
		WITHIN_1S(mfs_remove(key, NULL), 0);
		ck_assert(!mt_exists(mt_shm_path(key)));
		WITHIN_1S(mfs_detach(s), 0);
		kill(p, SIGKILL);
		ck_assert_int_eq(mt_wait(p, 5000), 128 + SIGKILL);
	}
}

START_TEST(lock_held_live)
{
	lifecycle_while_locked(0);
}
END_TEST

START_TEST(lock_held_dead)
{
	lifecycle_while_locked(1);
}
END_TEST

/* ============================================================ descriptors */

START_TEST(no_fd_leak)
{
	int before = mt_count_fds(), round;

	ck_assert_int_gt(before, 0);
	for (round = 0; round < 3; round++) {
		const char *key = KEY();
		mfs_segment *s, *a, *o, *x;
		mfs_stat st;

		EXPECT(mfs_create(key, 4096, NULL, &s), 0);
		EXPECT(mfs_attach(key, NULL, &a), 0);
		EXPECT(mfs_open(key, 4096, NULL, &o, NULL), 0);
		EXPECT(mfs_create(key, 4096, NULL, &x), MFS_E_EXISTS);
		EXPECT(mfs_attach(KEY(), NULL, &x), MFS_E_NOT_FOUND);
		EXPECT(mfs_inspect(key, NULL, &st), 0);
		EXPECT(mfs_stat_segment(a, &st), 0);
		EXPECT(mfs_attach_fd(mfs_fd(s), NULL, &x), 0);
		EXPECT(mfs_detach(x), 0);
		EXPECT(mfs_detach(o), 0);
		EXPECT(mfs_detach(a), 0);
		EXPECT(mfs_remove(key, NULL), 0);
		EXPECT(mfs_detach(s), 0);
		ck_assert_int_eq(mt_count_fds(), before);
	}
}
END_TEST

/* ============================================================ main */

int main(void)
{
	Suite *s = suite_create("lifecycle");
	TCase *tc;

	if (mt_begin("lc", tag, sizeof tag, tmproot, sizeof tmproot) != 0)
		return 99;

	tc = tcase_create("create_attach");
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, create_exists_untouched);
	tcase_add_test(tc, create_exists_nonsegment);
	tcase_add_test(tc, create_exists_directory);
	tcase_add_test(tc, attach_sees_writes);
	tcase_add_test(tc, attach_absent);
	tcase_add_test(tc, open_semantics);
	suite_add_tcase(s, tc);

	tc = tcase_create("detach_remove");
	tcase_add_test(tc, detach_last_destroys);
	tcase_add_test(tc, remove_semantics);
	suite_add_tcase(s, tc);

	tc = tcase_create("processes");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, refcount_processes);
	tcase_add_test(tc, killed_attacher);
	tcase_add_test(tc, stale_all_killed);
	tcase_add_test(tc, stale_remove_open);
	tcase_add_test(tc, halfmade_dead_creator);
	tcase_add_test(tc, halfmade_live_creator);
	suite_add_tcase(s, tc);

	tc = tcase_create("races");
	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, open_race);
	tcase_add_test(tc, attach_detach_stress);
	suite_add_tcase(s, tc);

	tc = tcase_create("fork");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, fork_copy);
	tcase_add_test(tc, fork_parent_killed);
	suite_add_tcase(s, tc);

	tc = tcase_create("read_only");
	tcase_set_timeout(tc, 15);
	tcase_add_test(tc, read_only_attach);
	tcase_add_test(tc, read_only_create);
	suite_add_tcase(s, tc);

	tc = tcase_create("user_lock");
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, lock_held_live);
	tcase_add_test(tc, lock_held_dead);
	suite_add_tcase(s, tc);

	tc = tcase_create("descriptors");
	tcase_add_test(tc, no_fd_leak);
	suite_add_tcase(s, tc);

	return mt_run_clean(s, tag, "check_lifecycle", tmproot);
}
