/* SPDX-License-Identifier: MIT */
/*
 * The segment lock across threads and real processes: mutual exclusion,
 * trylock and timedlock bounds, misuse answered with MFS_E_LOCK, takeover
 * from a holder killed with SIGKILL (MFS_E_OWNER_DEAD), and what
 * mfs_stat_segment says about the lock meanwhile.
 */
#include "testutil.h"
#include "header.h" /* MFS_LOCK_SLOT: which attacher slot a lock word names */

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define ITERS      20000 /* lock/increment/unlock rounds per worker */
#define MAXW       8
#define HOLD_TOLD  (-1)  /* holder: unlock when the parent says so */
#define HOLD_EVER  (-2)  /* holder: never unlock (until killed) */
#define KILLED     (128 + SIGKILL)

/* Parent and children talk through this, in shared anonymous memory. */
struct board {
	char key[MFS_KEY_MAX + 1];
	mt_barrier *bar;
	int iters, threads, own_handles; /* counter workers */
	/* the holder child */
	int hold_ms;      /* > 0: unlock after this long; HOLD_TOLD, HOLD_EVER */
	int by_detach;    /* release by mfs_detach instead of mfs_unlock */
	int stage;        /* 1 locked, 2 released */
	int release, quit;
	int lock_rc, unlock_rc, extra_rc;
	uint64_t t_lock, t_unlock;
	/* waiter children */
	int wmode;        /* 0 mfs_lock, 1 mfs_timedlock(5000), 2 timedlock(600) */
	int nidx, nready, ndone;
	int rc[MAXW], unlock_rcs[MAXW];
	uint64_t t_ret[MAXW];
	long cpu_us[MAXW];
	/* stress */
	int stop, progress, dead_seen, errors;
};

/* Keys carry the test runner's pid ("t-lk<pid>-"; main() sets this, the
 * forked tests inherit it), so sweep() can find leftovers. */
static char tag[32];

/* ------------------------------------------------------------ helpers */

static long gettid_(void) { return (long)syscall(SYS_gettid); }

/* A fresh segment of one page under a fresh key (into b->key). */
static mfs_segment *mkseg(struct board *b)
{
	return mt_create_keyed(b->key, sizeof b->key, tag, 4096);
}

/* Detach the last handle; the segment must then be gone. */
static void finish(mfs_segment *s, struct board *b)
{
	mt_finish(s, b->key);
	munmap(b, sizeof *b);
}

/* The lock is held by @pid, whose token is @alive (1/0). */
static void assert_held_by(mfs_segment *s, long pid, int alive)
{
	mfs_stat st = mt_stat(s);

	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, pid);
	ck_assert_int_eq(st.lock_owner_alive, alive);
}

static void assert_free(mfs_segment *s)
{
	mfs_stat st = mt_stat(s);

	ck_assert_int_eq(st.locked, 0);
	ck_assert_int_eq(st.lock_owner, 0);
	ck_assert_int_eq(st.lock_owner_alive, -1);
}

/* Poll (up to 2 s) until the lock word says sleepers may exist and @n
 * threads count themselves asleep, so a waiter is really inside mfs_lock.
 * Advisory: the test goes on either way, a little later. */
static void settle_waiters(mfs_segment *s, unsigned n)
{
	uint64_t end = mt_now_ms() + 2000;
	mfs_stat st;

	do {
		st = mt_stat(s);
		if (MFS_LOCK_STATE(st.lock_word) == MFS_LOCK_WAITERS &&
		    st.lock_waiters >= n)
			break;
		mt_sleep_ms(2);
	} while (mt_now_ms() < end);
	mt_sleep_ms(20);
}

/* Remove segments a failed test left behind (they carry our pid). */
static void sweep(void)
{
	mt_sweep_keys(tag, "sweep");
}

/* ------------------------------------------------------------ children */

/* Attach, lock, report, hold as told, release (unlock or detach). */
static int holder(void *arg)
{
	struct board *b = arg;
	mfs_segment *s;

	if (mfs_attach(b->key, NULL, &s) != 0)
		return 10;
	b->lock_rc = mfs_lock(s);
	b->t_lock = mt_now_ms();
	mt_put(&b->stage, 1);
	if (b->hold_ms == HOLD_EVER)
		for (;;)
			pause();
	if (b->hold_ms == HOLD_TOLD)
		mt_await(&b->release, 1, 20000);
	else
		mt_sleep_ms((unsigned)b->hold_ms);
	b->t_unlock = mt_now_ms();
	if (b->by_detach) {
		b->unlock_rc = mfs_detach(s);
		s = NULL;
	} else {
		b->unlock_rc = mfs_unlock(s);
	}
	mt_put(&b->stage, 2);
	mt_await(&b->quit, 1, 20000);
	mfs_detach(s);
	return 0;
}

static pid_t start_holder(struct board *b, int hold_ms)
{
	pid_t p;

	b->hold_ms = hold_ms;
	p = mt_spawn_tied(holder, b);
	ck_assert_msg(mt_await(&b->stage, 1, 5000), "holder did not lock");
	ck_assert_int_eq(b->lock_rc, 0);
	return p;
}

/* Attach, block in the lock call b->wmode names, record the answer and
 * when it came, then (if acquired) bump the counter slowly and unlock. */
static int waiter(void *arg)
{
	struct board *b = arg;
	int i = mt_add(&b->nidx, 1) - 1, r, v;
	struct timespec c0, c1;
	volatile int *c;
	mfs_segment *s;

	if (mfs_attach(b->key, NULL, &s) != 0)
		return 10;
	c = mfs_data(s);
	mt_add(&b->nready, 1);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	if (b->wmode == 0)
		r = mfs_lock(s);
	else
		r = mfs_timedlock(s, b->wmode == 1 ? 5000 : 600);
	b->t_ret[i] = mt_now_ms();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	b->cpu_us[i] = (c1.tv_sec - c0.tv_sec) * 1000000L +
	               (c1.tv_nsec - c0.tv_nsec) / 1000;
	b->rc[i] = r;
	if (r == 0 || r == MFS_E_OWNER_DEAD) {
		v = *c;
		mt_sleep_ms(5); /* a wide window for a second holder to show */
		*c = v + 1;
		b->unlock_rcs[i] = mfs_unlock(s);
	}
	mt_add(&b->ndone, 1);
	mt_await(&b->quit, 1, 20000);
	mfs_detach(s);
	return 0;
}

/* Attach and trylock once: b->extra_rc; unlock if acquired. */
static int prober(void *arg)
{
	struct board *b = arg;
	mfs_segment *s;
	int r;

	if (mfs_attach(b->key, NULL, &s) != 0)
		return 10;
	r = mfs_trylock(s);
	b->extra_rc = r;
	if (r == 0 || r == MFS_E_OWNER_DEAD)
		if (mfs_unlock(s) != 0)
			return 11;
	mfs_detach(s);
	return 0;
}

/* Another process's trylock answer, given the lock's current state. */
static int probe_other(struct board *b)
{
	b->extra_rc = 1;
	ck_assert_int_eq(mt_wait(mt_spawn_tied(prober, b), 5000), 0);
	return b->extra_rc;
}

/* ------------------------------------------------------------ exclusion */

struct worker {
	struct board *b;
	mfs_segment *s;   /* shared handle, or NULL to attach one's own */
};

/* The critical section: a plain read, then a plain write of one more. */
static void *count_loop(void *arg)
{
	struct worker *w = arg;
	mfs_segment *s = w->s;
	volatile int *c;
	int i, v;

	if (!s && mfs_attach(w->b->key, NULL, &s) != 0)
		return (void *)10;
	c = mfs_data(s);
	mt_barrier_wait(w->b->bar);
	for (i = 0; i < w->b->iters; i++) {
		if (mfs_lock(s) != 0)
			return (void *)11;
		v = *c;
		*c = v + 1;
		if (mfs_unlock(s) != 0)
			return (void *)12;
	}
	if (!w->s)
		mfs_detach(s);
	return NULL;
}

static int counter_proc(void *arg)
{
	struct board *b = arg;
	struct worker w[4];
	pthread_t t[4];
	mfs_segment *s;
	void *res;
	int i, rc = 0;

	if (mfs_attach(b->key, NULL, &s) != 0)
		return 20;
	for (i = 0; i < b->threads; i++) {
		w[i].b = b;
		w[i].s = b->own_handles ? NULL : s;
		if (b->threads == 1) {
			rc = (int)(long)count_loop(&w[i]);
			break;
		}
		if (pthread_create(&t[i], NULL, count_loop, &w[i]) != 0)
			return 21;
	}
	for (i = 0; b->threads > 1 && i < b->threads; i++) {
		pthread_join(t[i], &res);
		if (res)
			rc = (int)(long)res;
	}
	mfs_detach(s);
	return rc;
}

static void run_counter(int procs, int threads, int own)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	pid_t p[4];
	int i;

	b->iters = ITERS;
	b->threads = threads;
	b->own_handles = own;
	b->bar = mt_barrier_new((unsigned)(procs * threads));
	ck_assert_ptr_nonnull(b->bar);
	for (i = 0; i < procs; i++)
		p[i] = mt_spawn_tied(counter_proc, b);
	for (i = 0; i < procs; i++)
		ck_assert_int_eq(mt_wait(p[i], 25000), 0);
	ck_assert_int_eq(*(volatile int *)mfs_data(s), procs * threads * ITERS);
	assert_free(s);
	finish(s, b);
}

START_TEST(exclusion_processes)
{
	run_counter(4, 1, 0);
}
END_TEST

/* _i = 0: the threads share their process's handle; 1: each its own. */
START_TEST(exclusion_threads)
{
	run_counter(2, 2, _i);
}
END_TEST

/* ------------------------------------------------------------ try / timed */

START_TEST(trylock_busy_then_free)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint64_t t0, el;
	pid_t h;
	int i, r;

	ck_assert_int_eq(mfs_trylock(s), 0);
	ck_assert_int_eq(mfs_unlock(s), 0);
	h = start_holder(b, HOLD_TOLD);
	for (i = 0; i < 5; i++) {
		t0 = mt_now_ms();
		r = mfs_trylock(s);
		el = mt_now_ms() - t0;
		ck_assert_msg(r == MFS_E_BUSY, "trylock: %s", mfs_err_name(r));
		ck_assert_msg(el < 100, "trylock took %llu ms", (unsigned long long)el);
	}
	assert_held_by(s, (long)h, 1);
	mt_put(&b->release, 1);
	ck_assert(mt_await(&b->stage, 2, 5000));
	ck_assert_int_eq(b->unlock_rc, 0);
	ck_assert_int_eq(mfs_trylock(s), 0);
	assert_held_by(s, (long)getpid(), 1);
	ck_assert_int_eq(mfs_unlock(s), 0);
	mt_put(&b->quit, 1);
	ck_assert_int_eq(mt_wait(h, 5000), 0);
	finish(s, b);
}
END_TEST

START_TEST(timedlock_times_out)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint64_t t0, el;
	pid_t h;
	int r;

	h = start_holder(b, HOLD_TOLD);
	t0 = mt_now_ms();
	r = mfs_timedlock(s, 100);
	el = mt_now_ms() - t0;
	ck_assert_msg(r == MFS_E_TIMEOUT, "timedlock(100): %s", mfs_err_name(r));
	ck_assert_msg(el >= 95 && el < 600, "timedlock(100) took %llu ms",
	              (unsigned long long)el);

	t0 = mt_now_ms();
	r = mfs_timedlock(s, 0);
	el = mt_now_ms() - t0;
	ck_assert_msg(r == MFS_E_TIMEOUT, "timedlock(0): %s", mfs_err_name(r));
	ck_assert_msg(el < 100, "timedlock(0) took %llu ms", (unsigned long long)el);

	assert_held_by(s, (long)h, 1);
	mt_put(&b->release, 1);
	ck_assert(mt_await(&b->stage, 2, 5000));
	ck_assert_int_eq(mfs_timedlock(s, 0), 0);
	ck_assert_int_eq(mfs_unlock(s), 0);
	mt_put(&b->quit, 1);
	ck_assert_int_eq(mt_wait(h, 5000), 0);
	finish(s, b);
}
END_TEST

/* _i = 0: timedlock(-1), 1: timedlock(5000), 2: lock; the holder lets go
 * by itself after 300 ms. */
START_TEST(timedlock_waits_for_release)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint64_t t1;
	pid_t h;
	int r;

	h = start_holder(b, 300);
	if (_i == 2)
		r = mfs_lock(s);
	else
		r = mfs_timedlock(s, _i == 0 ? -1 : 5000);
	t1 = mt_now_ms();
	ck_assert_msg(r == 0, "got %s", mfs_err_name(r));
	ck_assert(mt_await(&b->stage, 2, 5000));
	ck_assert_int_eq(b->unlock_rc, 0);
	ck_assert_msg(t1 >= b->t_unlock, "acquired before the holder let go");
	ck_assert_uint_ge(b->t_unlock - b->t_lock, 300);
	assert_held_by(s, (long)getpid(), 1);
	ck_assert_int_eq(mfs_unlock(s), 0);
	mt_put(&b->quit, 1);
	ck_assert_int_eq(mt_wait(h, 5000), 0);
	finish(s, b);
}
END_TEST

/* ------------------------------------------------------------ misuse */

struct tharg {
	mfs_segment *s;
	int unlock_rc, try_rc;
	long tid;
};

static void *unlock_from_thread(void *arg)
{
	struct tharg *a = arg;

	a->tid = gettid_();
	a->unlock_rc = mfs_unlock(a->s);
	a->try_rc = mfs_trylock(a->s);
	return NULL;
}

START_TEST(unlock_by_other_thread)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	struct tharg a = { s, 1, 1, 0 };
	mfs_stat before, after;
	pthread_t t;

	ck_assert_int_eq(mfs_lock(s), 0);
	before = mt_stat(s);
	ck_assert_int_eq(before.lock_owner_tid, gettid_());
	ck_assert_int_eq(pthread_create(&t, NULL, unlock_from_thread, &a), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_ne(a.tid, gettid_());
	ck_assert_msg(a.unlock_rc == MFS_E_LOCK, "unlock: %s", mfs_err_name(a.unlock_rc));
	ck_assert_msg(a.try_rc == MFS_E_BUSY, "trylock: %s", mfs_err_name(a.try_rc));
	after = mt_stat(s);
	ck_assert_uint_eq(after.lock_word, before.lock_word);
	ck_assert_int_eq(after.locked, 1);
	ck_assert_int_eq(after.lock_owner, getpid());
	ck_assert_int_eq(after.lock_owner_tid, gettid_());
	ck_assert_int_eq(mfs_unlock(s), 0);
	assert_free(s);
	finish(s, b);
}
END_TEST

START_TEST(unlock_by_other_process)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	mfs_stat before, after;
	pid_t h;
	int r;

	h = start_holder(b, HOLD_TOLD);
	before = mt_stat(s);
	r = mfs_unlock(s);
	ck_assert_msg(r == MFS_E_LOCK, "unlock: %s", mfs_err_name(r));
	after = mt_stat(s);
	ck_assert_uint_eq(after.lock_word, before.lock_word);
	ck_assert_int_eq(after.lock_owner_tid, before.lock_owner_tid);
	assert_held_by(s, (long)h, 1);
	ck_assert_int_eq(mfs_trylock(s), MFS_E_BUSY);
	mt_put(&b->release, 1);
	ck_assert(mt_await(&b->stage, 2, 5000));
	ck_assert_int_eq(b->unlock_rc, 0); /* its own unlock still works */
	assert_free(s);
	mt_put(&b->quit, 1);
	ck_assert_int_eq(mt_wait(h, 5000), 0);
	finish(s, b);
}
END_TEST

START_TEST(unlock_when_free)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	mfs_stat st;

	ck_assert_int_eq(mfs_unlock(s), MFS_E_LOCK);
	st = mt_stat(s);
	ck_assert_uint_eq(st.lock_word, 0);
	assert_free(s);
	ck_assert_int_eq(mfs_lock(s), 0);
	ck_assert_int_eq(mfs_unlock(s), 0);
	ck_assert_int_eq(mfs_unlock(s), MFS_E_LOCK);
	assert_free(s);
	ck_assert_int_eq(probe_other(b), 0);
	finish(s, b);
}
END_TEST

/* Every lock call by the holder answers MFS_E_LOCK at once. */
static void assert_relock_refused(mfs_segment *s)
{
	uint64_t t0 = mt_now_ms(), el;

	ck_assert_int_eq(mfs_lock(s), MFS_E_LOCK);
	ck_assert_int_eq(mfs_trylock(s), MFS_E_LOCK);
	ck_assert_int_eq(mfs_timedlock(s, 0), MFS_E_LOCK);
	ck_assert_int_eq(mfs_timedlock(s, 1000), MFS_E_LOCK);
	ck_assert_int_eq(mfs_timedlock(s, -1), MFS_E_LOCK);
	el = mt_now_ms() - t0;
	ck_assert_msg(el < 100, "relock refusals took %llu ms", (unsigned long long)el);
}

START_TEST(relock_by_holder)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b), *s2 = NULL;
	mfs_stat before, after;

	ck_assert_int_eq(mfs_attach(b->key, NULL, &s2), 0);
	ck_assert_int_eq(mfs_lock(s), 0);
	before = mt_stat(s);
	assert_relock_refused(s);
	assert_relock_refused(s2);
	after = mt_stat(s);
	ck_assert_uint_eq(after.lock_word, before.lock_word);
	assert_held_by(s, (long)getpid(), 1);
	ck_assert_int_eq(probe_other(b), MFS_E_BUSY);
	ck_assert_int_eq(mfs_unlock(s), 0);
	assert_free(s);

	/* Taken through the second handle, released through the first. */
	ck_assert_int_eq(mfs_lock(s2), 0);
	assert_relock_refused(s);
	ck_assert_int_eq(mfs_unlock(s), 0);
	ck_assert_int_eq(mfs_unlock(s2), MFS_E_LOCK);
	assert_free(s);
	ck_assert_int_eq(probe_other(b), 0);
	ck_assert_int_eq(mfs_detach(s2), 0);
	finish(s, b);
}
END_TEST

START_TEST(unlock_through_other_handle)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b), *s2 = NULL;

	ck_assert_int_eq(mfs_attach(b->key, NULL, &s2), 0);
	ck_assert_int_eq(mfs_lock(s), 0);
	ck_assert_int_eq(mfs_unlock(s2), 0);
	assert_free(s);
	/* Freed cleanly: another process gets 0, not MFS_E_OWNER_DEAD. */
	ck_assert_int_eq(probe_other(b), 0);
	ck_assert_int_eq(mfs_detach(s2), 0);
	finish(s, b);
}
END_TEST

/* ------------------------------------------------------------ dead owner */

/* A waiter blocked in the lock is handed it within 200 ms of the holder's
 * SIGKILL (the dead holder stays unreaped meanwhile).  _i = 0: mfs_lock,
 * 1: mfs_timedlock(5000). */
START_TEST(owner_dead_wakes_waiter)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint64_t t_kill, el;
	pid_t h, w;

	h = start_holder(b, HOLD_EVER);
	b->wmode = _i;
	w = mt_spawn_tied(waiter, b);
	ck_assert(mt_await(&b->nready, 1, 5000));
	settle_waiters(s, 1);
	ck_assert_int_eq(mt_ld(&b->ndone), 0);
	t_kill = mt_now_ms();
	ck_assert_int_eq(kill(h, SIGKILL), 0);
	ck_assert_msg(mt_await(&b->ndone, 1, 3000), "the waiter never returned");
	el = b->t_ret[0] - t_kill;
	ck_assert_msg(b->rc[0] == MFS_E_OWNER_DEAD, "waiter got %s", mfs_err_name(b->rc[0]));
	ck_assert_msg(b->t_ret[0] >= t_kill && el <= 200,
	              "OWNER_DEAD came %lld ms after the kill", (long long)el);
	ck_assert_int_eq(b->unlock_rcs[0], 0);
	ck_assert_int_eq(mt_wait(h, 5000), KILLED);
	assert_free(s);
	ck_assert_int_eq(mfs_trylock(s), 0);
	ck_assert_int_eq(mfs_unlock(s), 0);
	mt_put(&b->quit, 1);
	ck_assert_int_eq(mt_wait(w, 5000), 0);
	finish(s, b);
}
END_TEST

/* No waiter: the next call takes the lock with MFS_E_OWNER_DEAD.
 * _i = 0: trylock, 1: timedlock(1000), 2: lock, 3: timedlock(-1). */
START_TEST(owner_dead_next_caller)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint64_t t_kill, el;
	pid_t h;
	int r;

	h = start_holder(b, HOLD_EVER);
	t_kill = mt_now_ms();
	ck_assert_int_eq(kill(h, SIGKILL), 0);
	switch (_i) {
	case 0:
		/* BUSY only until the kernel has dropped the dead token. */
		while ((r = mfs_trylock(s)) == MFS_E_BUSY && mt_now_ms() - t_kill <= 200)
			mt_sleep_ms(1);
		break;
	case 1:
		r = mfs_timedlock(s, 1000);
		break;
	case 2:
		r = mfs_lock(s);
		break;
	default:
		r = mfs_timedlock(s, -1);
		break;
	}
	el = mt_now_ms() - t_kill;
	ck_assert_msg(r == MFS_E_OWNER_DEAD, "got %s", mfs_err_name(r));
	ck_assert_msg(el <= 200, "OWNER_DEAD came %llu ms after the kill",
	              (unsigned long long)el);
	/* The caller holds it now. */
	assert_held_by(s, (long)getpid(), 1);
	ck_assert_int_eq(probe_other(b), MFS_E_BUSY);
	ck_assert_int_eq(mfs_lock(s), MFS_E_LOCK);
	ck_assert_int_eq(mfs_unlock(s), 0);
	assert_free(s);
	/* Reported once: the next taker gets a plain 0. */
	ck_assert_int_eq(probe_other(b), 0);
	ck_assert_int_eq(mt_wait(h, 5000), KILLED);
	finish(s, b);
}
END_TEST

/* Three processes wait; one gets MFS_E_OWNER_DEAD, the others 0 in turn,
 * and the counter they guard loses no increment. */
START_TEST(owner_dead_one_of_many)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	int i, dead = 0, ok = 0, di = -1;
	uint64_t t_kill;
	pid_t h, w[3];

	*(volatile int *)mfs_data(s) = 100;
	h = start_holder(b, HOLD_EVER);
	for (i = 0; i < 3; i++) {
		b->wmode = i % 2; /* lock and timedlock(5000) waiters */
		w[i] = mt_spawn_tied(waiter, b);
		ck_assert(mt_await(&b->nready, i + 1, 5000));
	}
	settle_waiters(s, 3);
	t_kill = mt_now_ms();
	ck_assert_int_eq(kill(h, SIGKILL), 0);
	ck_assert_msg(mt_await(&b->ndone, 3, 5000), "only %d waiters returned", mt_ld(&b->ndone));
	for (i = 0; i < 3; i++) {
		if (b->rc[i] == MFS_E_OWNER_DEAD) {
			dead++;
			di = i;
		} else if (b->rc[i] == 0) {
			ok++;
		} else {
			ck_abort_msg("waiter %d got %s", i, mfs_err_name(b->rc[i]));
		}
		ck_assert_int_eq(b->unlock_rcs[i], 0);
	}
	ck_assert_int_eq(dead, 1);
	ck_assert_int_eq(ok, 2);
	ck_assert_msg(b->t_ret[di] - t_kill <= 200, "OWNER_DEAD %llu ms after the kill",
	              (unsigned long long)(b->t_ret[di] - t_kill));
	ck_assert_int_eq(*(volatile int *)mfs_data(s), 103);
	assert_free(s);
	mt_put(&b->quit, 1);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(mt_wait(w[i], 5000), 0);
	ck_assert_int_eq(mt_wait(h, 5000), KILLED);
	finish(s, b);
}
END_TEST

/* Detaching while holding releases the lock: the blocked waiter and the
 * next caller get 0, not MFS_E_OWNER_DEAD. */
START_TEST(detach_releases)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	pid_t h, w;

	b->by_detach = 1;
	h = start_holder(b, HOLD_TOLD);
	w = mt_spawn_tied(waiter, b);
	ck_assert(mt_await(&b->nready, 1, 5000));
	settle_waiters(s, 1);
	mt_put(&b->release, 1);
	ck_assert(mt_await(&b->stage, 2, 5000));
	ck_assert_int_eq(b->unlock_rc, 0);
	ck_assert_msg(mt_await(&b->ndone, 1, 3000), "the waiter never returned");
	ck_assert_msg(b->rc[0] == 0, "waiter got %s", mfs_err_name(b->rc[0]));
	ck_assert_int_eq(b->unlock_rcs[0], 0);
	assert_free(s);
	ck_assert_int_eq(mfs_trylock(s), 0);
	ck_assert_int_eq(mfs_unlock(s), 0);
	ck_assert_int_eq(mt_alive(h), 1); /* a detach, not a death */
	mt_put(&b->quit, 1);
	ck_assert_int_eq(mt_wait(h, 5000), 0);
	ck_assert_int_eq(mt_wait(w, 5000), 0);
	finish(s, b);
}
END_TEST

static void *lock_and_exit(void *arg)
{
	return (void *)(long)mfs_lock(arg);
}

/* A thread locks and ends; its process lives on and keeps the lock. */
static int thread_exiter(void *arg)
{
	struct board *b = arg;
	mfs_segment *s;
	pthread_t t;
	void *res;

	if (mfs_attach(b->key, NULL, &s) != 0)
		return 10;
	if (pthread_create(&t, NULL, lock_and_exit, s) != 0)
		return 11;
	pthread_join(t, &res);
	b->lock_rc = (int)(long)res;
	b->extra_rc = mfs_trylock(s);  /* the main thread is not the holder */
	b->unlock_rc = mfs_unlock(s);
	mt_put(&b->stage, 1);
	for (;;)
		pause();
}

START_TEST(thread_exit_keeps_lock)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint64_t t_kill;
	pid_t h;
	int r;

	h = mt_spawn_tied(thread_exiter, b);
	ck_assert(mt_await(&b->stage, 1, 5000));
	ck_assert_int_eq(b->lock_rc, 0);
	ck_assert_msg(b->extra_rc == MFS_E_BUSY, "own trylock: %s", mfs_err_name(b->extra_rc));
	ck_assert_int_eq(b->unlock_rc, MFS_E_LOCK);
	assert_held_by(s, (long)h, 1);
	ck_assert_int_eq(mfs_trylock(s), MFS_E_BUSY);
	ck_assert_int_eq(probe_other(b), MFS_E_BUSY);
	ck_assert_int_eq(mfs_timedlock(s, 100), MFS_E_TIMEOUT);
	assert_held_by(s, (long)h, 1);
	/* Its process dying is what frees it. */
	t_kill = mt_now_ms();
	ck_assert_int_eq(kill(h, SIGKILL), 0);
	r = mfs_lock(s);
	ck_assert_msg(r == MFS_E_OWNER_DEAD, "lock: %s", mfs_err_name(r));
	ck_assert_uint_le(mt_now_ms() - t_kill, 200);
	ck_assert_int_eq(mfs_unlock(s), 0);
	ck_assert_int_eq(mt_wait(h, 5000), KILLED);
	finish(s, b);
}
END_TEST

/* Attach, report, stay until told. */
static int attacher(void *arg)
{
	struct board *b = arg;
	mfs_segment *s;

	if (mfs_attach(b->key, NULL, &s) != 0)
		return 10;
	mt_put(&b->stage, 3);
	mt_await(&b->quit, 1, 20000);
	mfs_detach(s);
	return 0;
}

/* The attacher table row of @pid, or -1. */
static int slot_of(mfs_segment *s, long pid, int *alive)
{
	mfs_attacher rows[32];
	unsigned n = 0, i;
	mfs_stat st;
	int r;

	r = mfs_inspect_path(mfs_native_key(s), 0, &st, rows, 32, &n);
	ck_assert_msg(r == 0, "inspect_path: %s", mfs_err_name(r));
	for (i = 0; i < n && i < 32; i++)
		if (rows[i].pid == pid) {
			if (alive)
				*alive = rows[i].alive;
			return (int)rows[i].slot;
		}
	return -1;
}

/* A process attaching after the holder's death and before the takeover
 * must not get the dead holder's slot (the lock word names it): the
 * takeover still happens.  _i = 0: the next trylock takes over; 1: a
 * waiter, stopped (SIGSTOP) across the kill and the attach, takes over. */
START_TEST(dead_slot_not_reused)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	int hslot, xslot, alive = -1, st, r;
	uint64_t t_kill;
	mfs_stat ms;
	pid_t h, x, w = -1;

	h = start_holder(b, HOLD_EVER);
	hslot = slot_of(s, (long)h, NULL);
	ck_assert_int_ge(hslot, 0);
	if (_i == 1) {
		w = mt_spawn_tied(waiter, b);
		ck_assert(mt_await(&b->nready, 1, 5000));
		settle_waiters(s, 1);
		ck_assert_int_eq(kill(w, SIGSTOP), 0);
		ck_assert_int_eq(waitpid(w, &st, WUNTRACED), w);
		ck_assert(WIFSTOPPED(st));
	}
	t_kill = mt_now_ms();
	ck_assert_int_eq(kill(h, SIGKILL), 0);
	do {
		ms = mt_stat(s);
		if (ms.lock_owner_alive == 0)
			break;
		mt_sleep_ms(1);
	} while (mt_now_ms() - t_kill <= 200);
	ck_assert_int_eq(ms.lock_owner_alive, 0);
	ck_assert_int_eq(ms.locked, 1);
	ck_assert_int_eq(ms.lock_owner, h);
	ck_assert_int_eq((int)MFS_LOCK_SLOT(ms.lock_word), hslot);

	x = mt_spawn_tied(attacher, b);
	ck_assert(mt_await(&b->stage, 3, 5000));
	xslot = slot_of(s, (long)x, &alive);
	ck_assert_int_ge(xslot, 0);
	ck_assert_int_eq(alive, 1);
	ck_assert_int_ne(xslot, hslot);
	assert_held_by(s, (long)h, 0);

	if (_i == 0) {
		r = mfs_trylock(s);
		ck_assert_msg(r == MFS_E_OWNER_DEAD, "trylock: %s", mfs_err_name(r));
		ck_assert_int_eq(mfs_unlock(s), 0);
	} else {
		ck_assert_int_eq(kill(w, SIGCONT), 0);
		ck_assert_msg(mt_await(&b->ndone, 1, 3000), "the waiter never returned");
		ck_assert_msg(b->rc[0] == MFS_E_OWNER_DEAD, "waiter got %s",
		              mfs_err_name(b->rc[0]));
		ck_assert_int_eq(b->unlock_rcs[0], 0);
	}
	assert_free(s);
	ck_assert_int_eq(probe_other(b), 0);
	mt_put(&b->quit, 1);
	ck_assert_int_eq(mt_wait(x, 5000), 0);
	if (w > 0)
		ck_assert_int_eq(mt_wait(w, 5000), 0);
	ck_assert_int_eq(mt_wait(h, 5000), KILLED);
	finish(s, b);
}
END_TEST

/* ------------------------------------------------------------ stat */

START_TEST(stat_follows_lock)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint64_t t_kill;
	mfs_stat st;
	pid_t h;
	int r;

	assert_free(s);
	ck_assert_int_eq(mfs_lock(s), 0);
	st = mt_stat(s);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, getpid());
	ck_assert_int_eq(st.lock_owner_tid, gettid_());
	ck_assert_int_eq(st.lock_owner_alive, 1);
	ck_assert_int_eq(mfs_unlock(s), 0);
	assert_free(s);

	h = start_holder(b, HOLD_EVER);
	assert_held_by(s, (long)h, 1);
	ck_assert_int_ne(mt_stat(s).lock_owner_tid, 0);
	ck_assert_int_eq(mfs_inspect(b->key, NULL, &st), 0);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, h);
	ck_assert_int_eq(st.lock_owner_alive, 1);

	/* Dead, unreaped, not yet taken over: still locked, by h, not alive. */
	t_kill = mt_now_ms();
	ck_assert_int_eq(kill(h, SIGKILL), 0);
	do {
		st = mt_stat(s);
		if (st.lock_owner_alive == 0)
			break;
		mt_sleep_ms(1);
	} while (mt_now_ms() - t_kill <= 200);
	ck_assert_int_eq(st.lock_owner_alive, 0);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, h);
	ck_assert_int_eq(mfs_inspect(b->key, NULL, &st), 0);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, h);
	ck_assert_int_eq(st.lock_owner_alive, 0);
	assert_held_by(s, (long)h, 0); /* looking does not take over */

	r = mfs_trylock(s);
	ck_assert_msg(r == MFS_E_OWNER_DEAD, "trylock: %s", mfs_err_name(r));
	assert_held_by(s, (long)getpid(), 1);
	ck_assert_int_eq(mfs_unlock(s), 0);
	assert_free(s);
	ck_assert_int_eq(mt_wait(h, 5000), KILLED);
	finish(s, b);
}
END_TEST

/*
 * A peer (or a torn write) leaves a garbage word naming our own slot,
 * low bits 0 or 3, with our own owner record beside it.  Garbage is a
 * dead owner's: unlock must not take it for ours (MFS_E_LOCK), and the
 * next lock takes it over with MFS_E_OWNER_DEAD.
 */
START_TEST(garbage_word_own_slot)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	mfs_stat st = mt_stat(s);
	unsigned char *hdr = (unsigned char *)mfs_data(s) - st.data_offset;
	uint32_t mine, word, pid = (uint32_t)getpid(), tid = (uint32_t)gettid_();
	int r;

	ck_assert_int_eq(mfs_lock(s), 0);
	mine = mt_stat(s).lock_word & ~3u; /* (our slot + 1) << 2 */
	ck_assert_int_eq(mfs_unlock(s), 0);
	word = mine | (uint32_t)(_i ? 3 : 0);
	__atomic_store_n((uint32_t *)(hdr + 128), word, __ATOMIC_SEQ_CST);
	__atomic_store_n((uint32_t *)(hdr + 136), pid, __ATOMIC_SEQ_CST);
	__atomic_store_n((uint32_t *)(hdr + 140), tid, __ATOMIC_SEQ_CST);
	r = mfs_unlock(s);
	ck_assert_msg(r == MFS_E_LOCK, "unlock of garbage 0x%x: %s", word, mfs_err_name(r));
	ck_assert_uint_eq(mt_stat(s).lock_word, word);
	r = mfs_lock(s);
	ck_assert_msg(r == MFS_E_OWNER_DEAD, "lock over garbage 0x%x: %s", word, mfs_err_name(r));
	ck_assert_int_eq(mfs_unlock(s), 0);
	assert_free(s);
	finish(s, b);
}
END_TEST

/* ------------------------------------------------------------ bad handles */

/* In a child, use the handle fork() copied: every lock call is invalid. */
static int use_copy(void *arg)
{
	mfs_segment *s = arg;
	int bad = 0;

	bad |= (mfs_lock(s) != MFS_E_INVALID) << 0;
	bad |= (mfs_trylock(s) != MFS_E_INVALID) << 1;
	bad |= (mfs_timedlock(s, 0) != MFS_E_INVALID) << 2;
	bad |= (mfs_timedlock(s, 100) != MFS_E_INVALID) << 3;
	bad |= (mfs_unlock(s) != MFS_E_INVALID) << 4;
	bad |= (mfs_detach(s) != 0) << 5;
	return bad;
}

/* _i = 0: the parent holds the lock across the fork; 1: it is free. */
START_TEST(fork_copy_invalid)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	mfs_stat before, after;
	pid_t c;

	if (_i == 0)
		ck_assert_int_eq(mfs_lock(s), 0);
	before = mt_stat(s);
	c = mt_spawn_tied(use_copy, s);
	ck_assert_int_eq(mt_wait(c, 5000), 0);
	after = mt_stat(s);
	ck_assert_uint_eq(after.lock_word, before.lock_word);
	ck_assert_int_eq(after.lock_owner, before.lock_owner);
	ck_assert_uint_eq(after.refcount, 1);
	if (_i == 0) {
		assert_held_by(s, (long)getpid(), 1);
		ck_assert_int_eq(mfs_unlock(s), 0);
	}
	assert_free(s);
	finish(s, b);
}
END_TEST

START_TEST(null_handle)
{
	ck_assert_int_eq(mfs_lock(NULL), MFS_E_INVALID);
	ck_assert_int_eq(mfs_trylock(NULL), MFS_E_INVALID);
	ck_assert_int_eq(mfs_timedlock(NULL, 0), MFS_E_INVALID);
	ck_assert_int_eq(mfs_timedlock(NULL, 100), MFS_E_INVALID);
	ck_assert_int_eq(mfs_timedlock(NULL, -1), MFS_E_INVALID);
	ck_assert_int_eq(mfs_unlock(NULL), MFS_E_INVALID);
}
END_TEST

/* A waiter sleeps: 600 ms blocked in timedlock cost little CPU. */
START_TEST(waiter_sleeps)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	long cpu_us;
	pid_t w;

	ck_assert_int_eq(mfs_lock(s), 0);
	b->wmode = 2;
	w = mt_spawn_tied(waiter, b);
	ck_assert(mt_await(&b->ndone, 1, 5000));
	mt_put(&b->quit, 1);
	cpu_us = mt_reap_cpu_us(w, 5000);
	ck_assert_msg(b->rc[0] == MFS_E_TIMEOUT, "waiter got %s", mfs_err_name(b->rc[0]));
	ck_assert_msg(b->cpu_us[0] < 50000, "600 ms of waiting used %ld us of CPU",
	              b->cpu_us[0]);
	ck_assert_msg(cpu_us < 50000, "the waiter process used %ld us of CPU", cpu_us);
	ck_assert_int_eq(mfs_unlock(s), 0);
	finish(s, b);
}
END_TEST

/* ------------------------------------------------------------ stress */

static int stress_worker(void *arg)
{
	struct board *b = arg;
	volatile int *c;
	mfs_segment *s;
	int r, v, k;

	if (mfs_attach(b->key, NULL, &s) != 0)
		return 10;
	c = mfs_data(s);
	mt_add(&b->nready, 1);
	while (!mt_ld(&b->stop)) {
		r = mfs_lock(s);
		if (r == MFS_E_OWNER_DEAD) {
			mt_add(&b->dead_seen, 1);
		} else if (r != 0) {
			mt_add(&b->errors, 1);
			return 11;
		}
		v = *c;
		for (k = 0; k < 200; k++)
			__asm__ __volatile__("" ::: "memory");
		*c = v + 1;
		if (mfs_unlock(s) != 0) {
			mt_add(&b->errors, 1);
			return 12;
		}
		mt_add(&b->progress, 1);
	}
	mfs_detach(s);
	return 0;
}

static void stop_all(pid_t *w, int n)
{
	int i, st;

	for (i = 0; i < n; i++) {
		ck_assert_int_eq(kill(w[i], SIGSTOP), 0);
		ck_assert_int_eq(waitpid(w[i], &st, WUNTRACED), w[i]);
		ck_assert_msg(WIFSTOPPED(st), "worker %d ended (status 0x%x)", i, st);
	}
}

static void cont_all(pid_t *w, int n)
{
	int i;

	for (i = 0; i < n; i++)
		ck_assert_int_eq(kill(w[i], SIGCONT), 0);
}

/* The pid whose slot the lock word names, 0 when free. */
static pid_t holder_pid(mfs_segment *s)
{
	mfs_attacher rows[32];
	unsigned n = 0, i, slot;
	mfs_stat st;

	ck_assert_int_eq(mfs_inspect_path(mfs_native_key(s), 0, &st, rows, 32, &n), 0);
	if (st.lock_word == 0)
		return 0;
	slot = MFS_LOCK_SLOT(st.lock_word);
	for (i = 0; i < n && i < 32; i++)
		if (rows[i].slot == slot)
			return (pid_t)rows[i].pid;
	ck_abort_msg("lock word 0x%x names slot %u, which has no attacher",
	             st.lock_word, slot);
	return 0;
}

/* Three workers contend; five times one is SIGKILLed (on even rounds the
 * holder, on odd rounds a waiter).  The survivors always go on, exactly
 * one MFS_E_OWNER_DEAD is seen per kill of a holder, and the counter
 * loses no increment. */
START_TEST(stress_kill_contenders)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	int i, round, tries, victim, kills = 0, expected = 0, p0, ready = 3, c;
	pid_t w[3], hp;

	for (i = 0; i < 3; i++)
		w[i] = mt_spawn_tied(stress_worker, b);
	ck_assert(mt_await(&b->nready, ready, 5000));
	for (round = 0; round < 5; round++) {
		p0 = mt_ld(&b->progress);
		ck_assert_msg(mt_await(&b->progress, p0 + 200, 5000),
		              "round %d: no progress (%d)", round, mt_ld(&b->progress) - p0);
		for (tries = 0;; tries++) {
			stop_all(w, 3);
			hp = holder_pid(s);
			if (round % 2 || hp != 0 || tries >= 100)
				break;
			cont_all(w, 3);
			mt_sleep_ms(1);
		}
		victim = 0;
		for (i = 0; i < 3; i++)
			if ((round % 2 == 0) == (w[i] == hp))
				victim = i;
		if (w[victim] == hp)
			expected++;
		ck_assert_int_eq(kill(w[victim], SIGKILL), 0);
		ck_assert_int_eq(mt_wait(w[victim], 5000), KILLED);
		kills++;
		w[victim] = -1;
		for (i = 0; i < 3; i++)
			if (w[i] > 0)
				ck_assert_int_eq(kill(w[i], SIGCONT), 0);
		w[victim] = mt_spawn_tied(stress_worker, b);
		ck_assert(mt_await(&b->nready, ++ready, 5000));
	}
	p0 = mt_ld(&b->progress);
	ck_assert_msg(mt_await(&b->progress, p0 + 200, 5000), "no progress after the last kill");
	mt_put(&b->stop, 1);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(mt_wait(w[i], 10000), 0);
	ck_assert_int_eq(mt_ld(&b->errors), 0);
	ck_assert_int_ge(expected, 1);
	ck_assert_int_eq(mt_ld(&b->dead_seen), expected);
	c = *(volatile int *)mfs_data(s);
	ck_assert_msg(c >= mt_ld(&b->progress) && c <= mt_ld(&b->progress) + kills,
	              "counter %d, %d completed rounds, %d kills", c, mt_ld(&b->progress), kills);
	assert_free(s);
	finish(s, b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("lock");
	TCase *tc;

	snprintf(tag, sizeof tag, "lk%ld", (long)getpid());

	tc = mt_tcase(NULL, "exclusion", 30, sweep);
	tcase_add_test(tc, exclusion_processes);
	tcase_add_loop_test(tc, exclusion_threads, 0, 2);
	suite_add_tcase(s, tc);

	tc = mt_tcase(NULL, "try_timed", 10, sweep);
	tcase_add_test(tc, trylock_busy_then_free);
	tcase_add_test(tc, timedlock_times_out);
	tcase_add_loop_test(tc, timedlock_waits_for_release, 0, 3);
	suite_add_tcase(s, tc);

	tc = mt_tcase(NULL, "misuse", 10, sweep);
	tcase_add_test(tc, unlock_by_other_thread);
	tcase_add_test(tc, unlock_by_other_process);
	tcase_add_test(tc, unlock_when_free);
	tcase_add_test(tc, relock_by_holder);
	tcase_add_test(tc, unlock_through_other_handle);
	tcase_add_loop_test(tc, fork_copy_invalid, 0, 2);
	tcase_add_test(tc, null_handle);
	suite_add_tcase(s, tc);

	tc = mt_tcase(NULL, "owner_dead", 10, sweep);
	tcase_add_loop_test(tc, owner_dead_wakes_waiter, 0, 2);
	tcase_add_loop_test(tc, owner_dead_next_caller, 0, 4);
	tcase_add_test(tc, owner_dead_one_of_many);
	tcase_add_test(tc, detach_releases);
	tcase_add_test(tc, thread_exit_keeps_lock);
	tcase_add_loop_test(tc, dead_slot_not_reused, 0, 2);
	tcase_add_test(tc, stat_follows_lock);
	tcase_add_loop_test(tc, garbage_word_own_slot, 0, 2);
	tcase_add_test(tc, waiter_sleeps);
	suite_add_tcase(s, tc);

	tc = mt_tcase(NULL, "stress", 30, sweep);
	tcase_add_test(tc, stress_kill_contenders);
	suite_add_tcase(s, tc);

	return mt_run(s);
}
