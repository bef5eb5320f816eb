/* SPDX-License-Identifier: MIT */
/*
 * Deterministic crash windows: for every crash point of lib/crash.h (and
 * NAME:2 where a point is reached twice in one call), a child process sets
 * $MFS_CRASH_AT, runs the call that reaches the point and is SIGKILLed
 * there by the library; the test then checks from outside what
 * docs/FORMAT.md ("Protocols") promises for a death at that step.  Needs a
 * build configured with --enable-crash-points; otherwise the program exits
 * 77 (automake's SKIP).
 *
 * The create windows are run twice on the FILE backend: as built (the file
 * is made unnamed with O_TMPFILE and linked when complete), and through the
 * O_EXCL fallback used where a file system has no O_TMPFILE, which this
 * program forces by interposing open() (see below).
 */
#include <config.h>
#undef _FORTIFY_SOURCE /* open() is defined below */

#include <stdio.h>

#include "testutil.h"

#ifndef MFS_CRASH_POINTS_ENABLED

int main(void)
{
	printf("check_crash: SKIP: the library was built without crash points "
	       "(configure --enable-crash-points)\n");
	return 77;
}

#else /* MFS_CRASH_POINTS_ENABLED */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "crash.h" /* MFS_CRASH_POINTS: the list every test iterates */

/* Every key of this run starts "t-cr<main pid>-", so main() can sweep
 * /dev/shm after a failed test left something behind. */
static char tag[32];
static char tmproot[256];

#define KILLED (128 + SIGKILL)
#define SEGSZ  8192

#define EXPECT(call, want) do {                                              \
	int r_ = (call);                                                      \
	int w_ = (want);                                                      \
	ck_assert_msg(r_ == w_, "%s: %s: got %s (%d), want %s; last error: %s", \
	              cur, #call, mfs_err_name(r_), r_, mfs_err_name(w_),     \
	              mfs_last_error());                                      \
} while (0)

/* @call returns @want within @ms milliseconds. */
#define WITHIN(ms, call, want) do {                                          \
	uint64_t t0_ = mt_now_ms(), el_;                                      \
	int r_ = (call);                                                      \
	int w_ = (want);                                                      \
	el_ = mt_now_ms() - t0_;                                              \
	ck_assert_msg(r_ == w_, "%s: %s: got %s (%d), want %s; last error: %s", \
	              cur, #call, mfs_err_name(r_), r_, mfs_err_name(w_),     \
	              mfs_last_error());                                      \
	ck_assert_msg(el_ <= (uint64_t)(ms), "%s: %s took %llu ms (bound %d)", \
	              cur, #call, (unsigned long long)el_, (int)(ms));        \
} while (0)

/* ------------------------------------------------------------ O_TMPFILE */

/*
 * This program's open() is the one libmfshare calls (an executable's
 * definition interposes on the shared library's reference).  While
 * no_tmpfile is set it answers O_TMPFILE as a file system without it
 * does, so mfs_create takes its O_EXCL fallback; everything else goes to
 * the system call.  Set in the test process, inherited by its children.
 */
static int no_tmpfile;

int open(const char *path, int flags, ...)
{
	unsigned mode = 0;
	va_list ap;

	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_start(ap, flags);
		mode = va_arg(ap, unsigned);
		va_end(ap);
	}
	if (no_tmpfile && (flags & O_TMPFILE) == O_TMPFILE) {
		errno = EOPNOTSUPP;
		return -1;
	}
	return (int)syscall(SYS_openat, AT_FDCWD, path, flags, mode);
}

/* ------------------------------------------------------------ the points */

static const char *const points[] = {
#define X(name) #name,
	MFS_CRASH_POINTS(X)
#undef X
};
#define NPOINTS ((int)(sizeof points / sizeof points[0]))

/* ------------------------------------------------------------ scenarios */

/* What is under the key before the child runs. */
enum setup {
	S_NONE,       /* nothing */
	S_STALE,      /* a segment whose only attacher exited without detaching */
	S_LIVE,       /* a segment the test holds (handle p), data filled */
	S_DEADHOLDER  /* S_LIVE, and a killed process's lock awaits takeover */
};

/* What the child does; MFS_CRASH_AT is set right before the step. */
enum op {
	O_CREATE,       /* mfs_create */
	O_OPEN,         /* mfs_open (attach, else create, reaping a stale name) */
	O_ATTACH,       /* mfs_attach */
	O_ATTACH2,      /* mfs_attach twice (NAME:2 dies in the second) */
	O_DETACH,       /* attach (unarmed), then mfs_detach: not the last */
	O_DETACH_LAST,  /* create and fill (unarmed), then mfs_detach: the last */
	O_REMOVE,       /* mfs_remove */
	O_LOCK,         /* attach; n times lock (and unlock but the last time) */
	O_LOCK_SLOW,    /* attach; lock while the test holds it (slow path), a
	                   second process waiting too */
	O_UNLOCK,       /* attach; n times lock and unlock */
	O_UNLOCK_W      /* attach; lock; a second process waits; unlock */
};

/* What must hold after the child's death. */
enum verify {
	V_NOTHING,       /* nothing under the name; create makes it fresh */
	V_STALE,         /* a stale segment under the name; open replaces it */
	V_STALE_REMOVE,  /* a stale segment; remove cleans it (NOT_FOUND) */
	V_LIVE,          /* the test's segment intact, the dead not counted */
	V_REMOVED_LIVE,  /* the test's segment works, its name is gone */
	V_OWNER_DEAD,    /* the next lock gets MFS_E_OWNER_DEAD within 200 ms */
	V_OWNER_DEAD_W,  /* the waiter or the next lock gets it, exactly once */
	V_CORRUPT        /* fallback only: a file that never got a header
	                    holds the name (FORMAT.md: removed by hand) */
};

enum { SHM = MFS_BACKEND_SHM, FILEB = MFS_BACKEND_FILE,
       FALLBACK = 100 /* FILE, with open(O_TMPFILE) failing: the O_EXCL path */ };

struct scen {
	const char *point;
	unsigned n;          /* NAME:n (1: plain NAME) */
	enum setup setup;
	enum op op;
	enum verify verify;
	int backend;         /* SHM, FILE in a private temp directory, or
	                        FALLBACK: FILE through the O_EXCL fallback */
	int state;           /* V_STALE*: the header's state word, -1: any */
	int kill;            /* 1: the child must die there; 0: never reached */
};

#define P(pt, n, su, op, v, be, st) { #pt, n, su, op, v, be, st, 1 }
#define N(pt, n, su, op, v, be, st) { #pt, n, su, op, v, be, st, 0 }

/* Every step of every protocol, from FORMAT.md:
 *  - create before "published": the file has no name yet, so a death
 *    leaves nothing anyone can see; over a stale name, NAME:1 dies before
 *    the stale one is reaped (still there, still stale) and NAME:2 in the
 *    second round, after the reap (nothing left);
 *  - create_published: complete, but its only attacher is dead: stale;
 *  - attach: the parent's segment is untouched, the dead attacher is not
 *    counted, the gate is free again;
 *  - detach: not the last: intact; the last: stale (or DEAD, or gone);
 *  - reap/remove: gone or stale, never a half state;
 *  - the lock: the next contender takes it over with MFS_E_OWNER_DEAD. */
static const struct scen scens[] = {
#define CREATE_EARLY(pt)                                                     \
	P(pt, 1, S_NONE,  O_CREATE, V_NOTHING, SHM,   -1),                    \
	P(pt, 1, S_NONE,  O_OPEN,   V_NOTHING, FILEB, -1),                    \
	P(pt, 2, S_STALE, O_CREATE, V_NOTHING, SHM,   -1),                    \
	P(pt, 1, S_STALE, O_OPEN,   V_STALE,   FILEB, MFS_STATE_READY)
	CREATE_EARLY(create_made),
	CREATE_EARLY(create_reserved),
	CREATE_EARLY(create_header),
	CREATE_EARLY(create_token),
	CREATE_EARLY(create_ready),
#undef CREATE_EARLY
	P(create_published, 1, S_NONE,  O_CREATE, V_STALE,        SHM,   MFS_STATE_READY),
	P(create_published, 1, S_NONE,  O_OPEN,   V_STALE_REMOVE, FILEB, MFS_STATE_READY),
	P(create_published, 1, S_STALE, O_CREATE, V_STALE,        SHM,   MFS_STATE_READY),
	/* The O_EXCL fallback: made under its name, the gate held until
	 * READY.  Dead before the header: a file that is no segment (left
	 * alone); after it: INIT with a free gate, or READY with a dead
	 * token: stale, reaped by the next create. */
	P(create_made,      1, S_NONE,  O_CREATE, V_CORRUPT,      FALLBACK, -1),
	P(create_reserved,  1, S_NONE,  O_OPEN,   V_CORRUPT,      FALLBACK, -1),
	P(create_header,    1, S_NONE,  O_OPEN,   V_STALE,        FALLBACK, MFS_STATE_INIT),
	P(create_header,    1, S_STALE, O_CREATE, V_STALE_REMOVE, FALLBACK, MFS_STATE_INIT),
	P(create_token,     1, S_NONE,  O_CREATE, V_STALE,        FALLBACK, MFS_STATE_INIT),
	P(create_ready,     1, S_NONE,  O_OPEN,   V_STALE,        FALLBACK, MFS_STATE_READY),
	P(create_published, 1, S_NONE,  O_CREATE, V_STALE_REMOVE, FALLBACK, MFS_STATE_READY),
	P(detach_counted,   1, S_NONE,  O_DETACH_LAST, V_STALE,   FALLBACK, MFS_STATE_READY),
	P(reap_unlinked,    1, S_STALE, O_OPEN,   V_NOTHING,      FALLBACK, -1),
#define ATTACH(pt)                                                           \
	P(pt, 1, S_LIVE, O_ATTACH,  V_LIVE, SHM,   -1),                       \
	P(pt, 1, S_LIVE, O_OPEN,    V_LIVE, FILEB, -1),                       \
	P(pt, 2, S_LIVE, O_ATTACH2, V_LIVE, SHM,   -1)
	ATTACH(attach_gate),
	ATTACH(attach_validated),
	ATTACH(attach_claimed),
	ATTACH(attach_filled),
	ATTACH(attach_done),
#undef ATTACH
#define DETACH(pt, v, st)                                                    \
	P(pt, 1, S_LIVE, O_DETACH,      V_LIVE, SHM,   -1),                   \
	P(pt, 1, S_LIVE, O_DETACH,      V_LIVE, FILEB, -1),                   \
	P(pt, 1, S_NONE, O_DETACH_LAST, v,      SHM,   st),                   \
	P(pt, 1, S_NONE, O_DETACH_LAST, v == V_STALE ? V_STALE_REMOVE : v, FILEB, st)
	DETACH(detach_gate, V_STALE, MFS_STATE_READY),
	DETACH(detach_cleared, V_STALE, MFS_STATE_READY),
	DETACH(detach_counted, V_STALE, MFS_STATE_READY),
#undef DETACH
	P(detach_dead,     1, S_NONE, O_DETACH_LAST, V_STALE,        SHM,   MFS_STATE_DEAD),
	P(detach_dead,     1, S_NONE, O_DETACH_LAST, V_STALE_REMOVE, FILEB, MFS_STATE_DEAD),
	P(detach_unlinked, 1, S_NONE, O_DETACH_LAST, V_NOTHING,      SHM,   -1),
	P(detach_unlinked, 1, S_NONE, O_DETACH_LAST, V_NOTHING,      FILEB, -1),
	P(reap_gate,       1, S_STALE, O_CREATE, V_STALE,   SHM,   MFS_STATE_READY),
	P(reap_gate,       1, S_STALE, O_OPEN,   V_STALE,   FILEB, MFS_STATE_READY),
	P(reap_unlinked,   1, S_STALE, O_CREATE, V_NOTHING, SHM,   -1),
	P(reap_unlinked,   1, S_STALE, O_OPEN,   V_NOTHING, FILEB, -1),
	P(remove_gate,     1, S_LIVE,  O_REMOVE, V_LIVE,         SHM,   -1),
	P(remove_gate,     1, S_STALE, O_REMOVE, V_STALE,        FILEB, MFS_STATE_READY),
	P(remove_unlinked, 1, S_LIVE,  O_REMOVE, V_REMOVED_LIVE, SHM,   -1),
	P(remove_unlinked, 1, S_STALE, O_REMOVE, V_NOTHING,      FILEB, -1),
#define LOCK(pt)                                                             \
	P(pt, 1, S_LIVE,       O_LOCK,      V_OWNER_DEAD,   SHM,   -1),       \
	P(pt, 2, S_LIVE,       O_LOCK,      V_OWNER_DEAD,   FILEB, -1),       \
	P(pt, 1, S_LIVE,       O_LOCK_SLOW, V_OWNER_DEAD_W, SHM,   -1),       \
	P(pt, 1, S_DEADHOLDER, O_LOCK,      V_OWNER_DEAD,   FILEB, -1)
	LOCK(lock_taken),
	LOCK(lock_owned),
#undef LOCK
	P(lock_takeover,  1, S_DEADHOLDER, O_LOCK,     V_OWNER_DEAD,   SHM,   -1),
	P(lock_takeover,  1, S_DEADHOLDER, O_LOCK,     V_OWNER_DEAD,   FILEB, -1),
	P(unlock_cleared, 1, S_LIVE,       O_UNLOCK,   V_OWNER_DEAD,   SHM,   -1),
	P(unlock_cleared, 2, S_LIVE,       O_UNLOCK,   V_OWNER_DEAD,   FILEB, -1),
	P(unlock_cleared, 1, S_LIVE,       O_UNLOCK_W, V_OWNER_DEAD_W, SHM,   -1),
};
#define NSCENS ((int)(sizeof scens / sizeof scens[0]))

/* Controls: the point named is not on the child's path, so the child must
 * finish (exit 0): the kill above comes from the point, not from setenv. */
static const struct scen controls[] = {
	/* not the last: a detach that thinks it is would reach these */
	N(detach_dead,      1, S_LIVE,  O_DETACH, V_LIVE,  SHM,   -1),
	N(detach_unlinked,  1, S_LIVE,  O_DETACH, V_LIVE,  FILEB, -1),
	/* nobody to take over from */
	N(lock_takeover,    1, S_LIVE,  O_LOCK,   V_OWNER_DEAD, SHM, -1),
	/* a fresh name: nothing to reap; the child exits attached */
	N(reap_gate,        1, S_NONE,  O_CREATE, V_STALE, SHM,   MFS_STATE_READY),
	/* attach never creates; the child exits attached */
	N(create_made,      1, S_LIVE,  O_ATTACH, V_LIVE,  FILEB, -1),
	/* published once, even after reaping a stale name */
	N(create_published, 2, S_STALE, O_CREATE, V_STALE, SHM,   MFS_STATE_READY),
	/* the third lock of a child that locks twice */
	N(lock_owned,       3, S_LIVE,  O_LOCK,   V_OWNER_DEAD, FILEB, -1),
};
#define NCONTROLS ((int)(sizeof controls / sizeof controls[0]))

/* ------------------------------------------------------------ context */

/* State shared between the test and its children. */
struct board {
	int ready;     /* the child reached its waiting point */
	int go;        /* the test's release */
	int wready;    /* the waiter attached */
	int wrc;       /* the waiter's lock result */
	int wdone;
	uint64_t wt;   /* when the waiter's lock returned */
};

/* One scenario's run: copied into every child by fork(). */
struct ctx {
	const struct scen *sc;
	char key[128];
	char dir[256];       /* FILE: the private directory; "" for SHM */
	char path[600];      /* the key's file */
	char at[64];         /* the value of MFS_CRASH_AT */
	mfs_options opts;
	struct board *b;
	mfs_segment *p;      /* the test's own attachment (S_LIVE) */
	pid_t child;         /* the armed child */
	char **before;       /* /dev/shm before the run */
	size_t nbefore;
};

static char cur[200]; /* the scenario, for messages */

static mfs_stat stat_of(mfs_segment *s)
{
	mfs_stat st;

	EXPECT(mfs_stat_segment(s, &st), 0);
	return st;
}

/* The segment's live count reaches @want within 200 ms. */
static void refcount_is(mfs_segment *s, uint32_t want)
{
	uint64_t end = mt_now_ms() + 200;
	mfs_stat st;

	for (;;) {
		st = stat_of(s);
		if (st.refcount == want)
			return;
		if (mt_now_ms() >= end)
			break;
		mt_sleep_ms(2);
	}
	ck_abort_msg("%s: refcount %u, want %u (attach_count %u, dead slots %u)",
	             cur, st.refcount, want, st.attach_count, st.dead_slots);
}

/* Wait until @n threads sleep on @s's lock (advisory count, exact while
 * nobody dies). */
static void waiters_are(mfs_segment *s, uint32_t n)
{
	uint64_t end = mt_now_ms() + 5000;

	while (stat_of(s).lock_waiters < n) {
		ck_assert_msg(mt_now_ms() < end, "%s: %u sleepers never showed up", cur, n);
		mt_sleep_ms(2);
	}
}

/* ------------------------------------------------------------ strays */

/*
 * Nothing but the key's own file (if @key_file) in the places this
 * scenario could have written: the private directory must hold exactly
 * that; in /dev/shm nothing else of this test process may exist, and no
 * new entry may look like ours (a hidden temp file, or a name with our
 * tag).  Other programs may make segments meanwhile (a parallel make
 * check, a benchmark): their names are theirs.
 */
static void no_strays(const struct ctx *c, int key_file)
{
	char prefix[96], mine[300], **now;
	const char *base = strrchr(c->path, '/') + 1;
	size_t n, i;

	if (c->dir[0]) {
		ck_assert_int_eq(mt_dir_names(c->dir, &now, &n), 0);
		for (i = 0; i < n; i++)
			ck_assert_msg(key_file && strcmp(now[i], base) == 0,
			              "%s: stray file %s/%s", cur, c->dir, now[i]);
		ck_assert_msg(n == (size_t)key_file, "%s: %zu files in %s, want %d",
		              cur, n, c->dir, key_file);
		mt_free_names(now, n);
	}
	snprintf(prefix, sizeof prefix, "mfshare.t-%s-%ld-", tag, (long)getpid());
	snprintf(mine, sizeof mine, "%s", base);
	ck_assert_int_eq(mt_dir_names("/dev/shm", &now, &n), 0);
	for (i = 0; i < n; i++) {
		if (strncmp(now[i], prefix, strlen(prefix)) == 0)
			ck_assert_msg(!c->dir[0] && key_file && strcmp(now[i], mine) == 0,
			              "%s: stray /dev/shm/%s", cur, now[i]);
		else if (!mt_listed(c->before, c->nbefore, now[i]))
			ck_assert_msg(now[i][0] != '.' && !strstr(now[i], tag),
			              "%s: stray /dev/shm/%s appeared", cur, now[i]);
	}
	mt_free_names(now, n);
}

/* ------------------------------------------------------------ children */

/* Exit codes of a child that gave up before reaching its point. */
#define CHK(cond, code) do {                                                 \
	if (!(cond)) {                                                        \
		fprintf(stderr, "child %ld (%s): line %d: %s failed (last error: %s)\n", \
		        (long)getpid(), cur, __LINE__, #cond, mfs_last_error()); \
		return (code);                                                \
	}                                                                     \
} while (0)

static void arm(const struct ctx *c)
{
	setenv("MFS_CRASH_AT", c->at, 1);
}

/* Create, fill, and exit without detaching: a stale segment. */
static int ch_make_stale(void *arg)
{
	const struct ctx *c = arg;
	mfs_segment *s;

	CHK(mfs_create(c->key, SEGSZ, &c->opts, &s) == 0, 10);
	mt_fill(mfs_data(s), SEGSZ, 5);
	return 0;
}

/* Attach, take the lock, and hold it until killed. */
static int ch_holder(void *arg)
{
	const struct ctx *c = arg;
	mfs_segment *s;

	CHK(mfs_attach(c->key, &c->opts, &s) == 0, 10);
	CHK(mfs_lock(s) == 0, 11);
	mt_put(&c->b->ready, 1);
	for (;;)
		pause();
}

/* A second contender: lock (blocking), note the result and when, hold it
 * a moment, let go. */
static int ch_waiter(void *arg)
{
	const struct ctx *c = arg;
	mfs_segment *s;
	int r;

	CHK(mfs_attach(c->key, &c->opts, &s) == 0, 10);
	mt_put(&c->b->wready, 1);
	r = mfs_lock(s);
	c->b->wt = mt_now_ms();
	mt_put(&c->b->wrc, r);
	CHK(r == 0 || r == MFS_E_OWNER_DEAD, 11);
	mt_sleep_ms(20);
	CHK(mfs_unlock(s) == 0, 12);
	CHK(mfs_detach(s) == 0, 13);
	mt_put(&c->b->wdone, 1);
	return 0;
}

/* The armed child: reaches c->at and dies there (or, for a control,
 * finishes and exits 0, leaving its attachments to die with it). */
static int ch_armed(void *arg)
{
	const struct ctx *c = arg;
	const struct scen *sc = c->sc;
	mfs_segment *s = NULL, *s2 = NULL;
	int r, created;
	unsigned i;

	switch (sc->op) {
	case O_CREATE:
		arm(c);
		r = mfs_create(c->key, SEGSZ, &c->opts, &s);
		CHK(r == 0, 20);
		mt_fill(mfs_data(s), SEGSZ, 9);
		return 0;
	case O_OPEN:
		arm(c);
		r = mfs_open(c->key, SEGSZ, &c->opts, &s, &created);
		CHK(r == 0, 21);
		return 0;
	case O_ATTACH:
		arm(c);
		CHK(mfs_attach(c->key, &c->opts, &s) == 0, 22);
		return 0;
	case O_ATTACH2:
		arm(c);
		CHK(mfs_attach(c->key, &c->opts, &s) == 0, 23);
		CHK(mfs_attach(c->key, &c->opts, &s2) == 0, 24);
		return 0;
	case O_DETACH:
		CHK(mfs_attach(c->key, &c->opts, &s) == 0, 25);
		arm(c);
		CHK(mfs_detach(s) == 0, 26);
		return 0;
	case O_DETACH_LAST:
		CHK(mfs_create(c->key, SEGSZ, &c->opts, &s) == 0, 27);
		mt_fill(mfs_data(s), SEGSZ, 9);
		arm(c);
		CHK(mfs_detach(s) == 0, 28);
		return 0;
	case O_REMOVE:
		arm(c);
		r = mfs_remove(c->key, &c->opts);
		CHK(r == 0 || r == MFS_E_NOT_FOUND, 29);
		return 0;
	case O_LOCK:
		CHK(mfs_attach(c->key, &c->opts, &s) == 0, 30);
		arm(c);
		/* Lock n times (at most twice: a control asks for a third that
		 * never comes), unlocking in between; exit holding it. */
		for (i = 0; i < sc->n && i < 2; i++) {
			if (i > 0)
				CHK(mfs_unlock(s) == 0, 32);
			r = mfs_lock(s);
			CHK(r == 0 || (r == MFS_E_OWNER_DEAD && sc->setup == S_DEADHOLDER
			               && i == 0), 31);
		}
		return 0;
	case O_LOCK_SLOW:
		CHK(mfs_attach(c->key, &c->opts, &s) == 0, 33);
		mt_put(&c->b->ready, 1);
		arm(c);
		CHK(mfs_lock(s) == 0, 34);
		return 0;
	case O_UNLOCK:
		CHK(mfs_attach(c->key, &c->opts, &s) == 0, 35);
		arm(c);
		for (i = 0; i < sc->n; i++) {
			CHK(mfs_lock(s) == 0, 36);
			CHK(mfs_unlock(s) == 0, 37);
		}
		return 0;
	case O_UNLOCK_W:
		CHK(mfs_attach(c->key, &c->opts, &s) == 0, 38);
		CHK(mfs_lock(s) == 0, 39);
		mt_put(&c->b->ready, 1);
		CHK(mt_await(&c->b->go, 1, 10000), 40);
		arm(c);
		CHK(mfs_unlock(s) == 0, 41);
		return 0;
	}
	return 99;
}

/* ------------------------------------------------------------ checks */

/* Nothing is attached any more: the name is free or stale, and mfs_open
 * makes a fresh, zeroed segment that the last detach removes. */
static void replaced_fresh(const struct ctx *c)
{
	mfs_segment *s, *x;
	int created = -1;

	WITHIN(1000, mfs_open(c->key, SEGSZ, &c->opts, &s, &created), 0);
	ck_assert_msg(created == 1, "%s: open attached to what was left", cur);
	ck_assert_msg(mt_all_zero(mfs_data(s), SEGSZ), "%s: the new segment holds old data", cur);
	refcount_is(s, 1);
	ck_assert_int_eq(stat_of(s).state, MFS_STATE_READY);
	EXPECT(mfs_trylock(s), 0);
	EXPECT(mfs_unlock(s), 0);
	no_strays(c, 1);
	WITHIN(1000, mfs_detach(s), 0);
	ck_assert_msg(!mt_exists(c->path), "%s: %s outlived its last detach", cur, c->path);
	WITHIN(1000, mfs_attach(c->key, &c->opts, &x), MFS_E_NOT_FOUND);
}

static void absent(const struct ctx *c)
{
	mfs_segment *x;
	mfs_stat st;

	WITHIN(1000, mfs_attach(c->key, &c->opts, &x), MFS_E_NOT_FOUND);
	ck_assert_ptr_null(x);
	WITHIN(1000, mfs_inspect(c->key, &c->opts, &st), MFS_E_NOT_FOUND);
}

static void v_nothing(const struct ctx *c)
{
	ck_assert_msg(!mt_exists(c->path), "%s: %s exists", cur, c->path);
	no_strays(c, 0);
	absent(c);
	replaced_fresh(c);
}

static void v_stale(const struct ctx *c, int remove)
{
	mfs_stat st;

	ck_assert_msg(mt_exists(c->path), "%s: %s is gone, want a stale segment", cur, c->path);
	no_strays(c, 1);
	EXPECT(mfs_inspect_path(c->path, 1, &st, NULL, 0, NULL), 0);
	ck_assert_msg(st.refcount == 0, "%s: stale segment with refcount %u", cur, st.refcount);
	if (c->sc->state >= 0)
		ck_assert_msg(st.state == (uint32_t)c->sc->state, "%s: state %u, want %d",
		              cur, st.state, c->sc->state);
	absent(c);
	if (remove) {
		WITHIN(1000, mfs_remove(c->key, &c->opts), MFS_E_NOT_FOUND);
		ck_assert_msg(!mt_exists(c->path), "%s: remove left the stale name", cur);
		no_strays(c, 0);
		WITHIN(1000, mfs_remove(c->key, &c->opts), MFS_E_NOT_FOUND);
	}
	replaced_fresh(c);
}

static void v_live(struct ctx *c)
{
	mfs_attacher rows[16];
	unsigned nrows = 0, i;
	mfs_segment *x;
	mfs_stat st;

	refcount_is(c->p, 1);
	/* The table may still name the dead child; never as alive. */
	EXPECT(mfs_inspect_path(c->path, 0, &st, rows, 16, &nrows), 0);
	ck_assert_uint_eq(st.refcount, 1);
	for (i = 0; i < nrows && i < 16; i++)
		ck_assert_msg(rows[i].pid != (long)c->child || !rows[i].alive,
		              "%s: the dead child's slot %u counts as alive", cur, rows[i].slot);
	ck_assert_msg(mt_same(mfs_data(c->p), SEGSZ, 1), "%s: the data changed", cur);
	ck_assert_msg(mt_exists(c->path), "%s: the live segment lost its name", cur);
	no_strays(c, 1);
	ck_assert_int_eq(stat_of(c->p).state, MFS_STATE_READY);
	WITHIN(1000, mfs_attach(c->key, &c->opts, &x), 0);
	ck_assert_msg(mt_same(mfs_data(x), SEGSZ, 1), "%s: a new attacher sees other data", cur);
	refcount_is(c->p, 2);
	refcount_is(x, 2);
	WITHIN(1000, mfs_detach(x), 0);
	refcount_is(c->p, 1);
	EXPECT(mfs_trylock(c->p), 0); /* the dead never held it */
	EXPECT(mfs_unlock(c->p), 0);
	/* The dead attacher does not keep it alive. */
	WITHIN(1000, mfs_detach(c->p), 0);
	c->p = NULL;
	ck_assert_msg(!mt_exists(c->path), "%s: the last live detach left %s", cur, c->path);
	no_strays(c, 0);
	absent(c);
}

static void v_removed_live(struct ctx *c)
{
	mfs_segment *s;
	int created = -1;

	refcount_is(c->p, 1);
	ck_assert_msg(mt_same(mfs_data(c->p), SEGSZ, 1), "%s: the data changed", cur);
	ck_assert_msg(!mt_exists(c->path), "%s: the name survived the remove", cur);
	no_strays(c, 0);
	absent(c);
	WITHIN(1000, mfs_open(c->key, SEGSZ, &c->opts, &s, &created), 0);
	ck_assert_int_eq(created, 1);
	ck_assert(mt_all_zero(mfs_data(s), SEGSZ));
	mt_fill(mfs_data(c->p), SEGSZ, 2);
	ck_assert_msg(mt_all_zero(mfs_data(s), SEGSZ), "%s: old and new segment share pages", cur);
	EXPECT(mfs_lock(c->p), 0);
	EXPECT(mfs_unlock(c->p), 0);
	WITHIN(1000, mfs_detach(c->p), 0); /* its name is not the new one's */
	c->p = NULL;
	ck_assert_msg(mt_exists(c->path), "%s: the old segment's detach removed the new name", cur);
	refcount_is(s, 1);
	WITHIN(1000, mfs_detach(s), 0);
	ck_assert(!mt_exists(c->path));
	no_strays(c, 0);
}

/* A creator died in the O_EXCL fallback before writing the header: the
 * name holds a file that is not a segment.  Like any non-segment it is
 * refused and never touched; it must be removed by hand. */
static void v_corrupt(const struct ctx *c)
{
	struct stat a, b;
	mfs_segment *x;
	mfs_stat st;
	int created = -1;

	ck_assert_msg(lstat(c->path, &a) == 0, "%s: %s is gone", cur, c->path);
	no_strays(c, 1);
	WITHIN(1000, mfs_attach(c->key, &c->opts, &x), MFS_E_CORRUPT);
	WITHIN(1000, mfs_inspect(c->key, &c->opts, &st), MFS_E_CORRUPT);
	WITHIN(1000, mfs_open(c->key, SEGSZ, &c->opts, &x, &created), MFS_E_CORRUPT);
	ck_assert_int_eq(created, 0);
	WITHIN(1000, mfs_create(c->key, SEGSZ, &c->opts, &x), MFS_E_EXISTS);
	WITHIN(1000, mfs_remove(c->key, &c->opts), MFS_E_CORRUPT);
	ck_assert(lstat(c->path, &b) == 0);
	ck_assert_msg(a.st_ino == b.st_ino && a.st_size == b.st_size &&
	              a.st_mtim.tv_sec == b.st_mtim.tv_sec &&
	              a.st_mtim.tv_nsec == b.st_mtim.tv_nsec, "%s: the file was touched", cur);
	ck_assert_int_eq(unlink(c->path), 0);
	replaced_fresh(c);
}

/* The next lock is taken over from @dead within 200 ms; then the lock is
 * ordinary again. */
static void v_owner_dead(struct ctx *c, pid_t dead)
{
	uint64_t t0, el;
	mfs_stat st = stat_of(c->p);
	int r;

	ck_assert_msg(st.locked == 1, "%s: the dead holder's lock is free (word 0x%x)",
	              cur, st.lock_word);
	ck_assert_msg(st.lock_owner_alive == 0, "%s: holder alive=%d after its death",
	              cur, st.lock_owner_alive);
	ck_assert_msg(st.lock_owner == (long)dead, "%s: lock_owner %ld, the dead holder "
	              "was %ld", cur, st.lock_owner, (long)dead);
	/* single-threaded: its thread id is its pid (0: not recorded yet) */
	ck_assert_msg(st.lock_owner_tid == 0 || st.lock_owner_tid == (long)dead,
	              "%s: lock_owner_tid %ld, the dead holder was %ld", cur,
	              st.lock_owner_tid, (long)dead);
	t0 = mt_now_ms();
	r = c->sc->backend != SHM ? mfs_trylock(c->p) : mfs_lock(c->p);
	el = mt_now_ms() - t0;
	EXPECT(r, MFS_E_OWNER_DEAD);
	ck_assert_msg(el <= 200, "%s: OWNER_DEAD took %llu ms", cur, (unsigned long long)el);
	st = stat_of(c->p);
	ck_assert_int_eq(st.lock_owner, (long)getpid());
	ck_assert_int_eq(st.lock_owner_alive, 1);
	EXPECT(mfs_unlock(c->p), 0);
	EXPECT(mfs_trylock(c->p), 0);
	EXPECT(mfs_unlock(c->p), 0);
	refcount_is(c->p, 1);
	ck_assert_msg(mt_same(mfs_data(c->p), SEGSZ, 1), "%s: the data changed", cur);
	WITHIN(1000, mfs_detach(c->p), 0);
	c->p = NULL;
	ck_assert(!mt_exists(c->path));
	no_strays(c, 0);
}

/* ------------------------------------------------------------ the runner */

static int tmpfile_works(const char *dir)
{
	int f = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);

	if (f < 0)
		return 0;
	close(f);
	return 1;
}

static void run(const struct scen *sc)
{
	struct ctx c;
	pid_t h, w = -1;
	uint64_t t_dead;
	int st, wst;

	memset(&c, 0, sizeof c);
	c.sc = sc;
	snprintf(c.key, sizeof c.key, "%s", mt_key(tag));
	if (sc->n > 1)
		snprintf(c.at, sizeof c.at, "%s:%u", sc->point, sc->n);
	else
		snprintf(c.at, sizeof c.at, "%s", sc->point);
	c.opts.backend = SHM;
	if (sc->backend != SHM) {
		const char *d = mt_tmpdir();

		ck_assert_ptr_nonnull(d);
		if (tmpfile_works(d)) {
			snprintf(c.dir, sizeof c.dir, "%s", d);
			c.opts.backend = FILEB;
			c.opts.dir = c.dir;
			no_tmpfile = sc->backend == FALLBACK;
		} else {
			/* The O_EXCL fallback has other windows (FORMAT.md). */
			fprintf(stderr, "check_crash: %s has no O_TMPFILE; SHM instead\n", d);
			mt_rmtree(d);
		}
	}
	snprintf(cur, sizeof cur, "[%s %s setup=%d op=%d verify=%d %s]", c.at,
	         sc->kill ? "kill" : "control", sc->setup, sc->op, sc->verify,
	         no_tmpfile ? "file, O_EXCL fallback" : c.dir[0] ? "file" : "shm");
	EXPECT(mfs_native_path(c.key, &c.opts, c.path, sizeof c.path), 0);
	ck_assert_int_eq(mt_dir_names("/dev/shm", &c.before, &c.nbefore), 0);
	c.b = mt_shared_new(sizeof *c.b);

	switch (sc->setup) {
	case S_NONE:
		break;
	case S_STALE:
		h = mt_spawn(ch_make_stale, &c);
		ck_assert_int_eq(mt_wait(h, 5000), 0);
		ck_assert(mt_exists(c.path));
		absent(&c);
		break;
	case S_LIVE:
	case S_DEADHOLDER:
		EXPECT(mfs_create(c.key, SEGSZ, &c.opts, &c.p), 0);
		mt_fill(mfs_data(c.p), SEGSZ, 1);
		if (sc->setup == S_LIVE)
			break;
		h = mt_spawn(ch_holder, &c);
		ck_assert_msg(mt_await(&c.b->ready, 1, 5000), "%s: holder not ready", cur);
		ck_assert_int_eq(kill(h, SIGKILL), 0);
		ck_assert_int_eq(mt_wait(h, 5000), KILLED);
		mt_put(&c.b->ready, 0);
		ck_assert_int_eq(stat_of(c.p).lock_owner_alive, 0);
		break;
	}

	if (sc->op == O_LOCK_SLOW)
		EXPECT(mfs_lock(c.p), 0);
	c.child = mt_spawn(ch_armed, &c);
	ck_assert_int_gt(c.child, 0);
	if (sc->op == O_LOCK_SLOW) {
		/* Both contenders asleep on the word, then let go. */
		ck_assert(mt_await(&c.b->ready, 1, 5000));
		waiters_are(c.p, 1);
		w = mt_spawn(ch_waiter, &c);
		ck_assert(mt_await(&c.b->wready, 1, 5000));
		waiters_are(c.p, 2);
		EXPECT(mfs_unlock(c.p), 0);
	} else if (sc->op == O_UNLOCK_W) {
		ck_assert(mt_await(&c.b->ready, 1, 5000));
		w = mt_spawn(ch_waiter, &c);
		ck_assert(mt_await(&c.b->wready, 1, 5000));
		waiters_are(c.p, 1);
		mt_put(&c.b->go, 1);
	}
	st = mt_wait(c.child, 10000);
	t_dead = mt_now_ms();
	ck_assert_msg(st == (sc->kill ? KILLED : 0), "%s: the child ended with %d, want %d",
	              cur, st, sc->kill ? KILLED : 0);
	if (w > 0) {
		wst = mt_wait(w, 5000);
		ck_assert_msg(wst == 0, "%s: the waiter ended with %d", cur, wst);
	}

	switch (sc->verify) {
	case V_NOTHING:
		v_nothing(&c);
		break;
	case V_STALE:
	case V_STALE_REMOVE:
		v_stale(&c, sc->verify == V_STALE_REMOVE);
		break;
	case V_LIVE:
		v_live(&c);
		break;
	case V_REMOVED_LIVE:
		v_removed_live(&c);
		break;
	case V_OWNER_DEAD:
		v_owner_dead(&c, c.child);
		break;
	case V_CORRUPT:
		v_corrupt(&c);
		break;
	case V_OWNER_DEAD_W:
		if (mt_ld(&c.b->wrc) == MFS_E_OWNER_DEAD) {
			/* The waiter slept through the death: taken over within
			 * 200 ms of it (t_dead is after it), then let go. */
			ck_assert_msg(c.b->wt <= t_dead + 200, "%s: the waiter's OWNER_DEAD "
			              "came %lld ms after the death was seen", cur,
			              (long long)(c.b->wt - t_dead));
			EXPECT(mfs_trylock(c.p), 0);
			EXPECT(mfs_unlock(c.p), 0);
			WITHIN(1000, mfs_detach(c.p), 0);
			c.p = NULL;
			ck_assert(!mt_exists(c.path));
			no_strays(&c, 0);
		} else {
			/* The waiter went first: the child took it after and died. */
			ck_assert_msg(sc->op == O_LOCK_SLOW, "%s: the waiter got %s while the "
			              "holder lived", cur, mfs_err_name(mt_ld(&c.b->wrc)));
			EXPECT(mt_ld(&c.b->wrc), 0);
			v_owner_dead(&c, c.child);
		}
		break;
	}
	ck_assert_ptr_null(c.p);
	no_tmpfile = 0;
	munmap(c.b, sizeof *c.b);
	mt_free_names(c.before, c.nbefore);
	if (c.dir[0])
		mt_rmtree(c.dir);
}

/* ------------------------------------------------------------ tests */

/* Every point of the list has scenarios, and each of them kills its child
 * at that point; then the state is what FORMAT.md promises. */
START_TEST(every_point)
{
	const char *pt = points[_i];
	int k, ran = 0;

	for (k = 0; k < NSCENS; k++) {
		if (strcmp(scens[k].point, pt) != 0)
			continue;
		run(&scens[k]);
		ran++;
	}
	ck_assert_msg(ran > 0, "crash point %s has no scenario here: it is never reached", pt);
	printf("crash point %s: %d scenarios, each child killed there\n", pt, ran);
	fflush(stdout);
}
END_TEST

/* The table names only real points (a renamed point would go untested). */
START_TEST(table_names_real_points)
{
	int k, i, found;

	for (k = 0; k < NSCENS + NCONTROLS; k++) {
		const char *pt = k < NSCENS ? scens[k].point : controls[k - NSCENS].point;

		for (found = 0, i = 0; i < NPOINTS; i++)
			found |= strcmp(points[i], pt) == 0;
		ck_assert_msg(found, "scenario %d names %s, not a crash point", k, pt);
	}
	ck_assert_int_ge(NPOINTS, 24);
}
END_TEST

START_TEST(control)
{
	run(&controls[_i]);
	printf("control %s:%u: not on the path, the child finished\n", controls[_i].point,
	       controls[_i].n);
	fflush(stdout);
}
END_TEST

/* ------------------------------------------------------------ main */

int main(void)
{
	Suite *s = suite_create("crash");
	TCase *tc;

	unsetenv("MFS_CRASH_AT");
	if (mt_begin("cr", tag, sizeof tag, tmproot, sizeof tmproot) != 0)
		return 99;

	tc = tcase_create("points");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, table_names_real_points);
	tcase_add_loop_test(tc, every_point, 0, NPOINTS);
	suite_add_tcase(s, tc);

	tc = tcase_create("controls");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, control, 0, NCONTROLS);
	suite_add_tcase(s, tc);

	return mt_run_clean(s, tag, "check_crash", tmproot);
}

#endif /* MFS_CRASH_POINTS_ENABLED */
