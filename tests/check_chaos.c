/* SPDX-License-Identifier: MIT */
/*
 * Crash chaos: W worker processes loop over open / attach / create / lock /
 * a multi-word update / unlock / notify / wait / stat / detach / remove on
 * K shared keys while the test (the driver) SIGKILLs random ones at random
 * instants (a third of the kills aimed at a worker in the middle of an
 * update) and starts replacements.  Workers report every unexpected return
 * code and every call that overran its bound into shared memory; afterwards
 * the test checks that nothing went wrong, that a torn update was only
 * ever found right after MFS_E_OWNER_DEAD (and repaired), that no segment
 * and no stray file is left behind, and that no process leaked a
 * descriptor or a mapping.  A second run keeps one process attached
 * throughout and puts one key on the FILE backend.
 *
 * make check runs the short form (100 + 60 kills, a few seconds).  The long
 * form sets the number of kills of each run:
 *
 *     MFS_CHAOS_KILLS=2000 make check TESTS=tests/check_chaos
 *
 * and each run prints one summary line to stdout (tests/check_chaos.log).
 *
 * In a build configured with --enable-crash-points, every fourth
 * replacement worker also sets $MFS_CRASH_AT to a random point of
 * lib/crash.h (its Nth passage, N random), so the protocols' windows are
 * hit under contention too, not only one at a time as in check_crash.
 *
 * The pid_reuse tests make a new process get a dead lock holder's pid
 * (through /proc/sys/kernel/ns_last_pid, as root) and check that it is not
 * mistaken for the holder.
 */
#include <config.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"
#include "crash.h" /* MFS_CRASH_POINTS */

/* Every key of this run starts "t-ch<main pid>-", so main() can sweep
 * /dev/shm after a failed test left something behind. */
static char tag[32];
static char tmproot[256];

#define KILLED   (128 + SIGKILL)
#define W        6      /* workers */
#define K        3      /* keys */
#define NWORDS   64     /* words of the record an update rewrites */
#define SEGSZ    8192

/* Bounds (API.md): lifecycle calls return within 1 s, an attach (or an
 * open, which attaches) within 10 s.  Locks: holders keep it for well
 * under a millisecond and a dead holder is taken over within 200 ms, so a
 * lock that takes LOCK_MS is stuck. */
#define LIFE_MS    1000
#define ATTACH_MS  10000
#define LOCK_MS    5000
#define STUCK_MS   15000  /* the driver's watchdog on every worker */

#define EXPECT(call, want) MT_EXPECT(call, want)

/* ------------------------------------------------------------ the record */

/*
 * The data the lock protects.  An update stores seq first, then each word,
 * then check: every word and check encode seq, so an update cut short
 * anywhere between its first and last store is visible.  All zero (a
 * fresh segment) is consistent too.
 */
struct rec {
	uint32_t seq;
	uint32_t word[NWORDS];
	uint32_t check;
};

static uint32_t mix(uint32_t seq, uint32_t i)
{
	/* injective in seq for a fixed i: an old and a new word never match */
	return seq * 2654435761u ^ (i * 0x9e3779b9u + 0x7f4a7c15u);
}

static int consistent(const volatile struct rec *r)
{
	uint32_t seq = r->seq, i;

	if (seq == 0) {
		for (i = 0; i < NWORDS; i++)
			if (r->word[i])
				return 0;
		return r->check == 0;
	}
	for (i = 0; i < NWORDS; i++)
		if (r->word[i] != mix(seq, i))
			return 0;
	return r->check == mix(seq, NWORDS);
}

/* ------------------------------------------------------------ the board */

enum phase { PH_IDLE, PH_LOCKED, PH_WRITING };

struct wstate {
	int pid;
	int phase;         /* enum phase: the driver aims at PH_WRITING */
	uint64_t beat;     /* start of the current iteration (ms) */
	int op;            /* what it is doing (for the watchdog's message) */
	char at[64];       /* MFS_CRASH_AT for this worker, "" for none */
};

/* Everything the processes share: counters, the first error, and the
 * keys.  Anonymous shared memory, mapped before any fork. */
struct board {
	int stop;
	int errors;
	int err_claimed;
	char errtext[1024];
	long long ops, updates, lock_calls, owner_dead, torn, repaired;
	long long creates, opens, created, attaches, detaches, removes;
	long long notifies, waits, stats, busy;
	long long max_lock_ms, max_life_ms, max_attach_ms;
	struct wstate w[W + 2];   /* workers, then the survivor */
	int surv_ready;
	char key[K][128];
	char path[K][600];
	mfs_options opts[K];
	char dir[256];            /* the FILE key's directory, "" if none */
	char needle[96];          /* what our mappings' paths contain */
};

static struct board *B;

static long long ld(long long *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

static void add(long long *p, long long v)
{
	__atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

static void raise_max(long long *p, long long v)
{
	long long old = ld(p);

	while (v > old && !__atomic_compare_exchange_n(p, &old, v, 0, __ATOMIC_SEQ_CST,
	                                               __ATOMIC_SEQ_CST))
		;
}

/* Count an error; keep the text of the first. */
static void report(const char *fmt, ...)
{
	int zero = 0;
	va_list ap;

	__atomic_add_fetch(&B->errors, 1, __ATOMIC_SEQ_CST);
	if (!__atomic_compare_exchange_n(&B->err_claimed, &zero, 1, 0,
	                                 __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return;
	va_start(ap, fmt);
	vsnprintf(B->errtext, sizeof B->errtext, fmt, ap);
	va_end(ap);
}

/* A call's result must be one of @ok (terminated by 1); its time within
 * @bound ms.  Returns the result. */
static int judge(const char *who, const char *what, int k, int r, uint64_t t0,
                 uint64_t bound, long long *maxp, const int *ok)
{
	uint64_t el = mt_now_ms() - t0;
	int i;

	raise_max(maxp, (long long)el);
	if (el > bound)
		report("%s %ld: %s(key %d) took %llu ms, bound %llu (-> %s)", who,
		       (long)getpid(), what, k, (unsigned long long)el,
		       (unsigned long long)bound, mfs_err_name(r));
	for (i = 0; ok[i] != 1; i++)
		if (r == ok[i])
			return r;
	report("%s %ld: %s(key %d) returned %s (%d): %s", who, (long)getpid(), what, k,
	       mfs_err_name(r), r, mfs_last_error());
	return r;
}

static const int OK_0[] = { 0, 1 };
static const int OK_ATTACH[] = { 0, MFS_E_NOT_FOUND, 1 };
static const int OK_CREATE[] = { 0, MFS_E_EXISTS, 1 };
static const int OK_REMOVE[] = { 0, MFS_E_NOT_FOUND, 1 };
static const int OK_LOCK[] = { 0, MFS_E_OWNER_DEAD, 1 };
static const int OK_TRY[] = { 0, MFS_E_OWNER_DEAD, MFS_E_BUSY, 1 };
static const int OK_WAIT[] = { 0, MFS_E_TIMEOUT, 1 };

/* ------------------------------------------------------------ helpers */

static uint32_t rnd_state;

static uint32_t rnd(void)
{
	uint32_t x = rnd_state;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return rnd_state = x;
}

static void seed(void)
{
	rnd_state = (uint32_t)getpid() * 2654435761u ^ (uint32_t)mt_now_ms() ^ 0x5bd1e995u;
	if (!rnd_state)
		rnd_state = 1;
}

/* Lines of /proc/self/maps naming one of our segments' files. */
static int count_maps(void)
{
	FILE *f = fopen("/proc/self/maps", "re");
	char line[1024];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (strstr(line, B->needle) || (B->dir[0] && strstr(line, B->dir)))
			n++;
	fclose(f);
	return n;
}

/*
 * Under the lock (@rc: what the lock call returned): check the record,
 * count and repair a torn one (acceptable only after MFS_E_OWNER_DEAD),
 * then write the next update, one word at a time.  @last: the highest seq
 * this handle has seen; it never goes back.
 */
static void update(const char *who, mfs_segment *s, int rc, int k, uint32_t *last,
                   int *phase)
{
	volatile struct rec *r = mfs_data(s);
	uint32_t seq = r->seq, next, i;
	volatile unsigned spin;
	int ok = consistent(r);

	if (!ok) {
		if (rc == MFS_E_OWNER_DEAD)
			add(&B->torn, 1);
		else
			report("%s %ld: key %d: torn record (seq %u) after a lock that "
			       "returned %s", who, (long)getpid(), k, seq, mfs_err_name(rc));
	}
	if (seq < *last)
		report("%s %ld: key %d: seq went back from %u to %u", who, (long)getpid(),
		       k, *last, seq);
	next = seq + 1;
	if (phase)
		__atomic_store_n(phase, PH_WRITING, __ATOMIC_SEQ_CST);
	r->seq = next;
	for (i = 0; i < NWORDS; i++) {
		r->word[i] = mix(next, i);
		for (spin = 0; spin < 1000; spin++)
			;
	}
	r->check = mix(next, NWORDS);
	if (phase)
		__atomic_store_n(phase, PH_LOCKED, __ATOMIC_SEQ_CST);
	*last = next;
	add(&B->updates, 1);
	if (!ok)
		add(&B->repaired, 1);
}

/* One locked update through @s, by any of the lock calls. */
static void locked_update(const char *who, mfs_segment *s, int k, uint32_t *last,
                          int *phase)
{
	uint64_t t0 = mt_now_ms();
	int r;

	add(&B->lock_calls, 1);
	switch (rnd() % 4) {
	case 0:
	case 1:
		r = judge(who, "mfs_lock", k, mfs_lock(s), t0, LOCK_MS, &B->max_lock_ms, OK_LOCK);
		break;
	case 2:
		r = judge(who, "mfs_timedlock", k, mfs_timedlock(s, LOCK_MS), t0, LOCK_MS + 1000,
		          &B->max_lock_ms, OK_LOCK);
		break;
	default:
		while ((r = mfs_trylock(s)) == MFS_E_BUSY && mt_now_ms() - t0 < LOCK_MS) {
			add(&B->busy, 1);
			if (rnd() % 2)
				mt_sleep_ms(1);
		}
		r = judge(who, "mfs_trylock", k, r, t0, LOCK_MS + 1000, &B->max_lock_ms, OK_TRY);
		if (r == MFS_E_BUSY)
			report("%s %ld: key %d: trylock busy for %d ms", who, (long)getpid(),
			       k, LOCK_MS);
		break;
	}
	if (r != 0 && r != MFS_E_OWNER_DEAD)
		return;
	if (phase)
		__atomic_store_n(phase, PH_LOCKED, __ATOMIC_SEQ_CST);
	if (r == MFS_E_OWNER_DEAD)
		add(&B->owner_dead, 1);
	update(who, s, r, k, last, phase);
	r = mfs_unlock(s);
	if (phase)
		__atomic_store_n(phase, PH_IDLE, __ATOMIC_SEQ_CST);
	if (r != 0)
		report("%s %ld: key %d: unlock returned %s: %s", who, (long)getpid(), k,
		       mfs_err_name(r), mfs_last_error());
}

/* A live handle's view: its own segment is READY and counts between 1
 * (itself) and every process that may be attached. */
static void check_stat(const char *who, mfs_segment *s, int k)
{
	mfs_stat st;
	uint64_t t0;
	int r;

	add(&B->stats, 1);
	r = mfs_stat_segment(s, &st);
	if (r != 0) {
		report("%s: stat(key %d) returned %s", who, k, mfs_err_name(r));
		return;
	}
	if (st.state != MFS_STATE_READY || st.refcount < 1 || st.refcount > W + 3)
		report("%s %ld: key %d: attached, yet state %u refcount %u", who,
		       (long)getpid(), k, st.state, st.refcount);
	t0 = mt_now_ms();
	r = mfs_inspect(B->key[k], &B->opts[k], &st);
	judge(who, "mfs_inspect", k, r, t0, ATTACH_MS, &B->max_attach_ms, OK_ATTACH);
	if (r == 0 && (st.refcount < 1 || st.refcount > W + 3))
		report("%s %ld: key %d: inspect says refcount %u", who, (long)getpid(), k,
		       st.refcount);
}

static int timed_detach(const char *who, mfs_segment *s, int k)
{
	uint64_t t0 = mt_now_ms();

	add(&B->detaches, 1);
	return judge(who, "mfs_detach", k, mfs_detach(s), t0, LIFE_MS, &B->max_life_ms, OK_0);
}

/* ------------------------------------------------------------ a worker */

enum { OP_ACQUIRE = 1, OP_UPDATE, OP_NOTIFY, OP_STAT, OP_DETACH, OP_REMOVE };

static int worker(void *arg)
{
	int me = (int)(intptr_t)arg, k, r, fds0, maps0, created;
	struct wstate *ws = &B->w[me];
	mfs_segment *h[K] = { NULL };
	uint32_t last[K] = { 0 }, seen;
	uint64_t t0;
	unsigned x;

	seed();
	if (ws->at[0])
		setenv("MFS_CRASH_AT", ws->at, 1);
	fds0 = mt_count_fds();
	maps0 = count_maps();
	while (!__atomic_load_n(&B->stop, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&ws->beat, mt_now_ms(), __ATOMIC_SEQ_CST);
		add(&B->ops, 1);
		k = (int)(rnd() % K);
		if (!h[k]) {
			ws->op = OP_ACQUIRE;
			last[k] = 0;
			t0 = mt_now_ms();
			x = rnd() % 10;
			if (x < 6) {
				add(&B->opens, 1);
				created = 0;
				r = judge("worker", "mfs_open", k,
				          mfs_open(B->key[k], SEGSZ, &B->opts[k], &h[k], &created),
				          t0, ATTACH_MS, &B->max_attach_ms, OK_0);
				if (created)
					add(&B->created, 1);
			} else if (x < 8) {
				add(&B->attaches, 1);
				r = judge("worker", "mfs_attach", k,
				          mfs_attach(B->key[k], &B->opts[k], &h[k]),
				          t0, ATTACH_MS, &B->max_attach_ms, OK_ATTACH);
			} else {
				add(&B->creates, 1);
				r = judge("worker", "mfs_create", k,
				          mfs_create(B->key[k], SEGSZ, &B->opts[k], &h[k]),
				          t0, LIFE_MS, &B->max_life_ms, OK_CREATE);
				if (r == 0)
					add(&B->created, 1);
			}
			if (r != 0 && h[k]) {
				report("worker: a failed call left a handle");
				h[k] = NULL;
			}
			continue;
		}
		x = rnd() % 100;
		if (x < 60) {
			ws->op = OP_UPDATE;
			locked_update("worker", h[k], k, &last[k], &ws->phase);
			if (rnd() % 2 && mfs_notify(h[k]) != 0)
				report("worker: notify failed");
			if (rnd() % 4 == 0)
				mt_sleep_ms(rnd() % 2);
		} else if (x < 68) {
			ws->op = OP_NOTIFY;
			add(&B->notifies, 1);
			judge("worker", "mfs_notify", k, mfs_notify(h[k]), mt_now_ms(), LIFE_MS,
			      &B->max_life_ms, OK_0);
			{
				mfs_stat st;

				seen = mfs_stat_segment(h[k], &st) == 0 ? st.seq : 0;
			}
			add(&B->waits, 1);
			t0 = mt_now_ms();
			judge("worker", "mfs_wait", k, mfs_wait(h[k], &seen, (int)(rnd() % 5)), t0,
			      LIFE_MS, &B->max_life_ms, OK_WAIT);
		} else if (x < 73) {
			ws->op = OP_STAT;
			check_stat("worker", h[k], k);
		} else if (x < 97) {
			ws->op = OP_DETACH;
			timed_detach("worker", h[k], k);
			h[k] = NULL;
		} else {
			ws->op = OP_REMOVE;
			add(&B->removes, 1);
			t0 = mt_now_ms();
			judge("worker", "mfs_remove", k, mfs_remove(B->key[k], &B->opts[k]), t0,
			      LIFE_MS, &B->max_life_ms, OK_REMOVE);
			timed_detach("worker", h[k], k);
			h[k] = NULL;
		}
	}
	for (k = 0; k < K; k++)
		if (h[k])
			timed_detach("worker", h[k], k);
	if (mt_count_fds() != fds0 || count_maps() != maps0)
		report("worker %ld: %d descriptors and %d mappings at the end, %d and %d "
		       "at the start", (long)getpid(), mt_count_fds(), count_maps(), fds0, maps0);
	return 0;
}

/* ------------------------------------------------------------ the survivor */

/* Attached to every key from start to end, never killed: updates through
 * its handles, and attaches and detaches a second one now and then.  Its
 * descriptors and mappings must come back to what they were. */
static int survivor(void *arg)
{
	int me = W, k, fds0, maps0, fds1, maps1, r, created;
	struct wstate *ws = &B->w[me];
	mfs_segment *h[K], *x;
	uint32_t last[K] = { 0 }, last2;

	(void)arg;
	seed();
	fds0 = mt_count_fds();
	maps0 = count_maps();
	for (k = 0; k < K; k++)
		if (mfs_open(B->key[k], SEGSZ, &B->opts[k], &h[k], &created) != 0) {
			report("survivor: open key %d: %s", k, mfs_last_error());
			return 10;
		}
	fds1 = mt_count_fds();
	maps1 = count_maps();
	__atomic_store_n(&B->surv_ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&B->stop, __ATOMIC_SEQ_CST)) {
		__atomic_store_n(&ws->beat, mt_now_ms(), __ATOMIC_SEQ_CST);
		add(&B->ops, 1);
		k = (int)(rnd() % K);
		ws->op = OP_UPDATE;
		locked_update("survivor", h[k], k, &last[k], NULL);
		if (rnd() % 8 == 0) {
			uint64_t t0 = mt_now_ms();

			ws->op = OP_ACQUIRE;
			add(&B->attaches, 1);
			r = judge("survivor", "mfs_attach", k, mfs_attach(B->key[k], &B->opts[k], &x),
			          t0, ATTACH_MS, &B->max_attach_ms, OK_ATTACH);
			if (r == 0) {
				last2 = 0;
				check_stat("survivor", x, k);
				locked_update("survivor", x, k, &last2, NULL);
				timed_detach("survivor", x, k);
			}
		}
		mt_sleep_ms(rnd() % 2);
	}
	if (mt_count_fds() != fds1 || count_maps() != maps1)
		report("survivor: %d descriptors and %d mappings at the end, %d and %d "
		       "after attaching", mt_count_fds(), count_maps(), fds1, maps1);
	for (k = 0; k < K; k++)
		timed_detach("survivor", h[k], k);
	if (mt_count_fds() != fds0 || count_maps() != maps0)
		report("survivor: %d descriptors and %d mappings after detaching, %d and %d "
		       "before attaching", mt_count_fds(), count_maps(), fds0, maps0);
	return 0;
}

/* ------------------------------------------------------------ the driver */

struct cfg {
	int kills;
	int survivor;   /* one process attached throughout */
	int file_key;   /* the last key on the FILE backend */
	const char *name;
};

static int env_kills(int dflt)
{
	const char *e = getenv("MFS_CHAOS_KILLS");
	long v;

	if (!e || !*e)
		return dflt;
	v = strtol(e, NULL, 10);
	return v > 0 && v < 10000000 ? (int)v : dflt;
}

/* The driver's own turn: open a key, one locked update, maybe keep the
 * handle across the next forks (the children must not inherit its
 * tokens), detach. */
static void driver_op(mfs_segment **held, int *held_k, uint32_t *held_last)
{
	mfs_segment *s;
	uint32_t last = 0;
	uint64_t t0 = mt_now_ms();
	int k = (int)(rnd() % K), created;

	if (*held) {
		locked_update("driver", *held, *held_k, held_last, NULL);
		check_stat("driver", *held, *held_k);
		timed_detach("driver", *held, *held_k);
		*held = NULL;
		return;
	}
	add(&B->opens, 1);
	if (judge("driver", "mfs_open", k, mfs_open(B->key[k], SEGSZ, &B->opts[k], &s, &created),
	          t0, ATTACH_MS, &B->max_attach_ms, OK_0) != 0)
		return;
	locked_update("driver", s, k, &last, NULL);
	if (rnd() % 2) {
		*held = s;
		*held_k = k;
		*held_last = last;
		return;
	}
	timed_detach("driver", s, k);
}

#ifdef MFS_CRASH_POINTS_ENABLED
static const char *const points[] = {
#define X(name) #name,
	MFS_CRASH_POINTS(X)
#undef X
};
#define NPOINTS (sizeof points / sizeof points[0])
#endif

/* Start worker @i; in a crash-point build, every fourth one dies at a
 * random point on its own. */
static pid_t spawn_worker(int i, int nth)
{
	pid_t p;

	B->w[i].phase = PH_IDLE;
	B->w[i].beat = mt_now_ms();
	B->w[i].at[0] = '\0';
#ifdef MFS_CRASH_POINTS_ENABLED
	if (nth % 4 == 3)
		snprintf(B->w[i].at, sizeof B->w[i].at, "%s:%u",
		         points[rnd() % NPOINTS], 1 + rnd() % 8);
#else
	(void)nth;
#endif
	p = mt_spawn(worker, (void *)(intptr_t)i);
	ck_assert_int_gt(p, 0);
	B->w[i].pid = p;
	return p;
}

/* A worker in the middle of an update, looking for up to 10 ms; else @v. */
static int find_writer(int v)
{
	uint64_t end = mt_now_ms() + 10;
	struct timespec nap = { 0, 100000 };
	int i, j;

	do {
		for (i = 0; i < W; i++) {
			j = (v + i) % W;
			if (__atomic_load_n(&B->w[j].phase, __ATOMIC_SEQ_CST) == PH_WRITING)
				return j;
		}
		nanosleep(&nap, NULL);
	} while (mt_now_ms() < end);
	return v;
}

static void chaos(const struct cfg *cf)
{
	pid_t pid[W + 1];
	char **before, **after, prefix[96];
	size_t nbefore, nafter, i;
	int kills, kill_writers = 0, n, v, st, k, fds0, maps0, held_k = 0;
	int spawned = 0, point_deaths = 0;
	mfs_segment *held = NULL, *s;
	uint32_t held_last = 0;
	uint64_t t_start = mt_now_ms(), now;
	const char *d = NULL;

	kills = env_kills(cf->kills);
	B = mt_shared_new(sizeof *B);
	snprintf(B->needle, sizeof B->needle, "/dev/shm/mfshare.t-%s-", tag);
	for (k = 0; k < K; k++) {
		snprintf(B->key[k], sizeof B->key[k], "%s", mt_key(tag));
		B->opts[k].backend = MFS_BACKEND_SHM;
	}
	if (cf->file_key) {
		d = mt_tmpdir();
		ck_assert_ptr_nonnull(d);
		snprintf(B->dir, sizeof B->dir, "%s", d);
		B->opts[K - 1].backend = MFS_BACKEND_FILE;
		B->opts[K - 1].dir = B->dir;
	}
	for (k = 0; k < K; k++)
		EXPECT(mfs_native_path(B->key[k], &B->opts[k], B->path[k], sizeof B->path[k]), 0);
	seed();
	ck_assert_int_eq(mt_dir_names("/dev/shm", &before, &nbefore), 0);
	fds0 = mt_count_fds();
	maps0 = count_maps();
	ck_assert_int_ge(fds0, 3);
	ck_assert_int_eq(maps0, 0);

	if (cf->survivor) {
		pid[W] = mt_spawn(survivor, NULL);
		ck_assert_int_gt(pid[W], 0);
		B->w[W].pid = pid[W];
		B->w[W].beat = mt_now_ms();
		for (n = 0; !__atomic_load_n(&B->surv_ready, __ATOMIC_SEQ_CST); n++) {
			ck_assert_msg(n < 10000 && mt_alive(pid[W]), "the survivor never got going: %s",
			              B->errtext);
			mt_sleep_ms(1);
		}
	}
	for (i = 0; i < W; i++)
		pid[i] = spawn_worker((int)i, spawned++);

	for (n = 0; n < kills; n++) {
		mt_sleep_ms(rnd() % 21);
		if (n % 7 == 3)
			driver_op(&held, &held_k, &held_last);
		/* The watchdog: nobody blocked past every bound. */
		now = mt_now_ms();
		for (i = 0; i < W + (cf->survivor ? 1 : 0); i++) {
			uint64_t beat = __atomic_load_n(&B->w[i].beat, __ATOMIC_SEQ_CST);

			ck_assert_msg(now < beat || now - beat < STUCK_MS,
			              "process %d (pid %d) stuck for %llu ms in op %d phase %d "
			              "(first error: %s)", (int)i, B->w[i].pid,
			              (unsigned long long)(now - beat), B->w[i].op,
			              B->w[i].phase, B->errtext);
		}
		/* Workers that died at their crash point: replace them. */
		for (i = 0; i < W; i++) {
			if (mt_alive(pid[i]))
				continue;
			st = mt_wait(pid[i], 1000);
			ck_assert_msg(st == KILLED && B->w[i].at[0], "worker %d ended with %d "
			              "(crash point \"%s\"; first error: %s)", (int)i, st,
			              B->w[i].at, B->errtext);
			point_deaths++;
			pid[i] = spawn_worker((int)i, spawned++);
		}
		/* A third of the kills aim at a worker in the middle of an
		 * update; the rest hit whoever, wherever. */
		v = (int)(rnd() % W);
		if (n % 3 == 0)
			v = find_writer(v);
		if (__atomic_load_n(&B->w[v].phase, __ATOMIC_SEQ_CST) == PH_WRITING)
			kill_writers++;
		ck_assert_int_eq(kill(pid[v], SIGKILL), 0);
		st = mt_wait(pid[v], 10000);
		ck_assert_msg(st == KILLED, "worker %d ended with %d before the kill "
		              "(first error: %s)", v, st, B->errtext);
		pid[v] = spawn_worker(v, spawned++);
	}

	__atomic_store_n(&B->stop, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < W + (cf->survivor ? 1 : 0); i++) {
		st = mt_wait(pid[i], STUCK_MS);
		if (st == KILLED && i < W && B->w[i].at[0]) {
			point_deaths++; /* at its crash point, on its way out */
			continue;
		}
		ck_assert_msg(st == 0, "process %d ended with %d at the stop (first error: %s)",
		              (int)i, st, B->errtext);
	}
	if (held)
		timed_detach("driver", held, held_k);

	printf("chaos %s: %d kills (%d mid-update), %d deaths at crash points, %lld ops, %lld locked updates, "
	       "%lld owner-dead takeovers, %lld torn records found, %lld repaired; "
	       "%lld opens (%lld created), %lld attaches, %lld creates, %lld detaches, "
	       "%lld removes, %lld waits, %lld stats; max ms: lock %lld, lifecycle %lld, "
	       "attach/open %lld; %.1f s\n",
	       cf->name, kills, kill_writers, point_deaths, B->ops, B->updates, B->owner_dead, B->torn,
	       B->repaired, B->opens, B->created, B->attaches, B->creates, B->detaches,
	       B->removes, B->waits, B->stats, B->max_lock_ms, B->max_life_ms,
	       B->max_attach_ms, (double)(mt_now_ms() - t_start) / 1000.0);
	fflush(stdout);

	ck_assert_msg(B->errors == 0, "%d errors; the first: %s", B->errors, B->errtext);
	/* Every takeover needs its own dead holder, and only a dead writer
	 * leaves a torn record. */
	ck_assert_msg(B->owner_dead <= kills + point_deaths, "%lld takeovers from %d deaths",
	              B->owner_dead, kills + point_deaths);
	ck_assert_msg(B->torn <= B->owner_dead, "%lld torn records, %lld takeovers",
	              B->torn, B->owner_dead);
	ck_assert_int_gt(B->updates, 0);
	ck_assert_int_gt(B->created, 0);
	if (kill_writers >= 10) {
		/* The workload does catch what it is built to catch. */
		ck_assert_msg(B->owner_dead > 0, "%d writers killed, no takeover", kill_writers);
		ck_assert_msg(B->torn > 0, "%d writers killed, no torn record found", kill_writers);
	}

	/* Everybody is gone: each key is absent or stale... */
	for (k = 0; k < K; k++) {
		mfs_stat sst;

		EXPECT(mfs_attach(B->key[k], &B->opts[k], &s), MFS_E_NOT_FOUND);
		EXPECT(mfs_inspect(B->key[k], &B->opts[k], &sst), MFS_E_NOT_FOUND);
		if (mt_exists(B->path[k])) {
			EXPECT(mfs_inspect_path(B->path[k], 1, &sst, NULL, 0, NULL), 0);
			ck_assert_int_eq(sst.refcount, 0);
		}
	}
	/* ... and a create replaces a stale one; its detach leaves nothing. */
	for (k = 0; k < K; k++) {
		EXPECT(mfs_create(B->key[k], SEGSZ, &B->opts[k], &s), 0);
		ck_assert(consistent(mfs_data(s)) && ((struct rec *)mfs_data(s))->seq == 0);
		EXPECT(mfs_detach(s), 0);
		ck_assert_msg(!mt_exists(B->path[k]), "%s outlived its last detach", B->path[k]);
	}
	/* No stray file: nothing of ours in /dev/shm, nothing new that looks
	 * like a temp file (the library makes none: O_TMPFILE, or the final
	 * name) or carries our tag, and the FILE key's directory is empty.
	 * Other programs may create segments meanwhile (a parallel make
	 * check, a benchmark): their names are theirs. */
	snprintf(prefix, sizeof prefix, "mfshare.t-%s-", tag);
	ck_assert_int_eq(mt_dir_names("/dev/shm", &after, &nafter), 0);
	for (i = 0; i < nafter; i++) {
		ck_assert_msg(strncmp(after[i], prefix, strlen(prefix)) != 0,
		              "left behind: /dev/shm/%s", after[i]);
		if (!mt_listed(before, nbefore, after[i]))
			ck_assert_msg(after[i][0] != '.' && !strstr(after[i], tag),
			              "stray /dev/shm/%s appeared", after[i]);
	}
	mt_free_names(after, nafter);
	mt_free_names(before, nbefore);
	if (B->dir[0]) {
		ck_assert_int_eq(mt_dir_names(B->dir, &after, &nafter), 0);
		ck_assert_msg(nafter == 0, "%zu files left in %s, e.g. %s", nafter, B->dir,
		              nafter ? after[0] : "");
		mt_free_names(after, nafter);
		mt_rmtree(B->dir);
	}
	/* The driver itself leaked nothing. */
	ck_assert_int_eq(mt_count_fds(), fds0);
	ck_assert_int_eq(count_maps(), maps0);
	munmap(B, sizeof *B);
	B = NULL;
}

START_TEST(kill_workers)
{
	static const struct cfg cf = { 100, 0, 0, "workers" };

	chaos(&cf);
}
END_TEST

START_TEST(kill_workers_survivor)
{
	static const struct cfg cf = { 60, 1, 1, "survivor+file" };

	chaos(&cf);
}
END_TEST

/* ------------------------------------------------------------ pid reuse */

/*
 * A lock holder H dies; later an unrelated process X gets H's pid (pids
 * wrap: pid_max is often 32768).  X is not the holder: its lock must take
 * the dead holder's lock over (MFS_E_OWNER_DEAD), its unlock must be
 * refused, and its detach must leave the lock alone, so that whoever
 * locks next learns that the data may be half-written.
 */
struct reuse {
	int rc_lock, rc_unlock, done;
};

static struct reuse *R;
static const char *reuse_key;
static int reuse_variant;

static int reuse_holder(void *arg)
{
	mfs_segment *s;
	volatile struct rec *r;

	(void)arg;
	if (mfs_attach(reuse_key, NULL, &s) != 0)
		return 10;
	if (mfs_lock(s) != 0)
		return 11;
	r = mfs_data(s);
	r->seq = 7; /* half an update */
	__atomic_store_n(&R->done, 1, __ATOMIC_SEQ_CST);
	for (;;)
		pause();
}

static int reuse_child(void *arg)
{
	pid_t want = (pid_t)(intptr_t)arg;
	mfs_segment *s;

	if (getpid() != want)
		return 3; /* not the pid we are after: try again */
	if (mfs_attach(reuse_key, NULL, &s) != 0)
		return 10;
	switch (reuse_variant) {
	case 0:
		R->rc_lock = mfs_lock(s);
		if (R->rc_lock == 0 || R->rc_lock == MFS_E_OWNER_DEAD)
			mfs_unlock(s);
		break;
	case 1:
		R->rc_unlock = mfs_unlock(s);
		break;
	case 2:
		R->rc_lock = mfs_trylock(s);
		if (R->rc_lock == 0 || R->rc_lock == MFS_E_OWNER_DEAD)
			mfs_unlock(s);
		break;
	}
	mfs_detach(s); /* variant 3: only this */
	return 0;
}

/* Make the next fork get @pid if possible; 0 if pids cannot be chosen. */
static int next_pid(pid_t pid)
{
	FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "we");
	int ok;

	if (!f)
		return 0;
	ok = fprintf(f, "%ld", (long)pid - 1) > 0;
	return fclose(f) == 0 && ok;
}

START_TEST(pid_reuse)
{
	mfs_segment *p;
	pid_t h, x;
	mfs_stat st;
	int tries, round, rc = -1, r;

	reuse_variant = _i;
	reuse_key = mt_key(tag);
	R = mt_shared_new(sizeof *R);
	R->rc_lock = R->rc_unlock = 1;
	EXPECT(mfs_create(reuse_key, SEGSZ, NULL, &p), 0);
	/* Other programs of a parallel `make check` fork too: one may take
	 * the dead holder's pid before we do, and keep it.  Then start over
	 * with a new holder (after taking the dead one's lock over). */
	for (round = 0; ; round++) {
		ck_assert_msg(round < 10, "never got a dead holder's pid back (%d rounds)", round);
		__atomic_store_n(&R->done, 0, __ATOMIC_SEQ_CST);
		h = mt_spawn(reuse_holder, NULL);
		for (tries = 0; !__atomic_load_n(&R->done, __ATOMIC_SEQ_CST); tries++) {
			ck_assert_msg(tries < 5000, "the holder never locked");
			mt_sleep_ms(1);
		}
		ck_assert_int_eq(kill(h, SIGKILL), 0);
		ck_assert_int_eq(mt_wait(h, 5000), KILLED);
		for (tries = 0, x = 0; tries < 50 && x != h; tries++) {
			if (!next_pid(h)) {
				fprintf(stderr, "pid_reuse: cannot choose pids here (%s); "
				        "not tested\n", strerror(errno));
				EXPECT(mfs_lock(p), MFS_E_OWNER_DEAD);
				EXPECT(mfs_unlock(p), 0);
				goto out;
			}
			x = mt_spawn(reuse_child, (void *)(intptr_t)h);
			rc = mt_wait(x, 5000);
		}
		if (x == h)
			break;
		fprintf(stderr, "pid_reuse: pid %ld taken by another process; again\n",
		        (long)h);
		EXPECT(mfs_lock(p), MFS_E_OWNER_DEAD);
		EXPECT(mfs_unlock(p), 0);
	}
	ck_assert_int_eq(rc, 0);
	switch (_i) {
	case 0:
		ck_assert_msg(R->rc_lock == MFS_E_OWNER_DEAD, "lock by a process that reuses the "
		              "dead holder's pid: %s", mfs_err_name(R->rc_lock));
		break;
	case 1:
		ck_assert_msg(R->rc_unlock == MFS_E_LOCK, "unlock by a process that reuses the "
		              "dead holder's pid: %s", mfs_err_name(R->rc_unlock));
		break;
	case 2:
		ck_assert_msg(R->rc_lock == MFS_E_OWNER_DEAD, "trylock by a process that reuses "
		              "the dead holder's pid: %s", mfs_err_name(R->rc_lock));
		break;
	}
	if (_i != 0 && _i != 2) {
		/* The dead holder's lock is still there for the next one. */
		EXPECT(mfs_stat_segment(p, &st), 0);
		ck_assert_msg(st.locked == 1 && st.lock_owner_alive == 0,
		              "the dead holder's lock was released (locked %d, alive %d)",
		              st.locked, st.lock_owner_alive);
		r = mfs_lock(p);
		EXPECT(r, MFS_E_OWNER_DEAD);
		ck_assert(!consistent(mfs_data(p)));
	} else {
		EXPECT(mfs_lock(p), 0);
	}
	EXPECT(mfs_unlock(p), 0);
out:
	EXPECT(mfs_detach(p), 0);
	munmap(R, sizeof *R);
}
END_TEST

/* ------------------------------------------------------------ inspect */

/*
 * Found by the chaos run: mfs_inspect decides "not stale" from one probe
 * of the tokens and fills the count from another, so when the last
 * attacher goes in between it answered 0 (found) with refcount 0.  A
 * stale segment must be MFS_E_NOT_FOUND; a found one has a live
 * attacher.  The window is widened by a long attacher table (slot_high
 * EXTRA + 1: each probe walks every slot).
 */
#define EXTRA 20
struct race {
	int ready, go;
};

static struct race *RC;
static const char *race_key;

static int race_attacher(void *arg)
{
	mfs_segment *s, *extra[EXTRA];
	volatile unsigned spin;
	unsigned i, n = (unsigned)(intptr_t)arg;

	if (mfs_create(race_key, 4096, NULL, &s) != 0)
		return 10;
	for (i = 0; i < EXTRA; i++)
		if (mfs_attach(race_key, NULL, &extra[i]) != 0)
			return 11;
	for (i = 0; i < EXTRA; i++)
		mfs_detach(extra[i]);
	__atomic_store_n(&RC->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&RC->go, __ATOMIC_SEQ_CST))
		;
	for (spin = 0; spin < n; spin++)
		;
	if (n % 2)
		_exit(0); /* die attached */
	return mfs_detach(s) == 0 ? 0 : 12;
}

START_TEST(inspect_vs_last_detach)
{
	mfs_stat st;
	pid_t p;
	int round, r;

	RC = mt_shared_new(sizeof *RC);
	seed();
	for (round = 0; round < 60; round++) {
		race_key = mt_key(tag);
		memset(RC, 0, sizeof *RC);
		p = mt_spawn(race_attacher, (void *)(intptr_t)(rnd() % 100000));
		/* (ck_assert in a hot loop would write to Check's pipe each time) */
		while (!__atomic_load_n(&RC->ready, __ATOMIC_SEQ_CST))
			if (!mt_alive(p))
				ck_abort_msg("round %d: the attacher failed", round);
		__atomic_store_n(&RC->go, 1, __ATOMIC_SEQ_CST);
		while ((r = mfs_inspect(race_key, NULL, &st)) == 0)
			if (st.refcount < 1)
				ck_abort_msg("round %d: mfs_inspect found the segment with "
				             "refcount %u (state %u)", round, st.refcount, st.state);
		EXPECT(r, MFS_E_NOT_FOUND);
		ck_assert_int_eq(mt_wait(p, 5000), 0);
		r = mfs_remove(race_key, NULL); /* a stale one, when it died attached */
		ck_assert(r == MFS_E_NOT_FOUND);
	}
	munmap(RC, sizeof *RC);
}
END_TEST

/* ------------------------------------------------------------ main */

int main(void)
{
	Suite *s = suite_create("chaos");
	TCase *tc;
	int kills = env_kills(100);

	if (mt_begin("ch", tag, sizeof tag, tmproot, sizeof tmproot) != 0)
		return 99;

	tc = tcase_create("chaos");
	/* about 25 ms a kill; generous, so a hang fails rather than waits */
	tcase_set_timeout(tc, 60 + kills / 10);
	tcase_add_test(tc, kill_workers);
	tcase_add_test(tc, kill_workers_survivor);
	suite_add_tcase(s, tc);

	tc = tcase_create("races");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, inspect_vs_last_detach);
	suite_add_tcase(s, tc);

	tc = tcase_create("pid_reuse");
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, pid_reuse, 0, 4);
	suite_add_tcase(s, tc);

	return mt_run_clean(s, tag, "check_chaos", tmproot);
}
