/* SPDX-License-Identifier: MIT */
/*
 * Change notification: mfs_wait returns at once on a changed counter,
 * times out leaving *seen alone, sleeps without polling, and wakes in
 * every process on mfs_notify (also through a read-only handle).
 */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXW 8

/* Parent and children talk through this, in shared anonymous memory. */
struct board {
	char key[MFS_KEY_MAX + 1];
	unsigned flags;     /* waiters attach with these */
	int timeout;        /* waiters: mfs_wait's timeout_ms */
	int nidx, nready, ndone, quit;
	int rc[MAXW];
	uint32_t before[MAXW], after[MAXW];
	uint64_t t_ret[MAXW];
	long cpu_us[MAXW];
	int notifies;       /* notifier: how many */
	int notify_rc;
	uint64_t t_notify;
};

/* Keys carry the test runner's pid ("t-nt<pid>-"; main() sets this, the
 * forked tests inherit it), so sweep() can find leftovers. */
static char tag[32];

/* ------------------------------------------------------------ helpers */

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

static uint32_t seq_of(mfs_segment *s)
{
	return mt_stat(s).seq;
}

/* Poll (up to 2 s) until @n sleepers count themselves in the header, so
 * the waiters really sleep when the notify comes.  Advisory: the test
 * goes on either way. */
static void settle_waiters(mfs_segment *s, unsigned n)
{
	uint64_t end = mt_now_ms() + 2000;
	mfs_stat st;

	do {
		ck_assert_int_eq(mfs_stat_segment(s, &st), 0);
		if (st.seq_waiters >= n)
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

static long cpu_us_between(const struct timespec *a, const struct timespec *b)
{
	return (b->tv_sec - a->tv_sec) * 1000000L + (b->tv_nsec - a->tv_nsec) / 1000;
}

/* ------------------------------------------------------------ children */

/* Attach, take the current counter as seen, wait, record the outcome. */
static int waiter(void *arg)
{
	struct board *b = arg;
	int i = mt_add(&b->nidx, 1) - 1;
	mfs_options o = { 0, 0, 0, NULL };
	struct timespec c0, c1;
	mfs_segment *s;
	mfs_stat st;
	uint32_t seen;

	o.flags = b->flags;
	if (mfs_attach(b->key, &o, &s) != 0)
		return 10;
	if (mfs_stat_segment(s, &st) != 0)
		return 11;
	seen = st.seq;
	b->before[i] = seen;
	mt_add(&b->nready, 1);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c0);
	b->rc[i] = mfs_wait(s, &seen, b->timeout);
	b->t_ret[i] = mt_now_ms();
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &c1);
	b->cpu_us[i] = cpu_us_between(&c0, &c1);
	b->after[i] = seen;
	mt_add(&b->ndone, 1);
	mt_await(&b->quit, 1, 20000);
	mfs_detach(s);
	return 0;
}

/* Attach (b->flags), sleep 100 ms, notify b->notifies times. */
static int notifier(void *arg)
{
	struct board *b = arg;
	mfs_options o = { 0, 0, 0, NULL };
	mfs_segment *s;
	int i, r = 0;

	o.flags = b->flags;
	if (mfs_attach(b->key, &o, &s) != 0)
		return 10;
	mt_sleep_ms(100);
	b->t_notify = mt_now_ms();
	for (i = 0; i < b->notifies; i++)
		r |= mfs_notify(s);
	b->notify_rc = r;
	mfs_detach(s);
	return 0;
}

/* Start @n waiters and let them fall asleep. */
static void start_waiters(struct board *b, mfs_segment *s, pid_t *w, int n)
{
	int i;

	for (i = 0; i < n; i++)
		w[i] = mt_spawn_tied(waiter, b);
	ck_assert_msg(mt_await(&b->nready, n, 5000), "waiters did not start");
	settle_waiters(s, (unsigned)n);
	ck_assert_int_eq(mt_ld(&b->ndone), 0);
}

/* Reap @n waiters after telling them to go. */
static void end_waiters(struct board *b, pid_t *w, int n)
{
	int i;

	mt_put(&b->quit, 1);
	for (i = 0; i < n; i++)
		ck_assert_int_eq(mt_wait(w[i], 5000), 0);
}

/* ------------------------------------------------------------ one process */

START_TEST(wait_returns_at_once_on_change)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint32_t seq = seq_of(s), seen;
	uint64_t t0, el;

	/* A stale *seen: no waiting at all, even with no time limit. */
	seen = seq + 12345;
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_wait(s, &seen, -1), 0);
	el = mt_now_ms() - t0;
	ck_assert_uint_eq(seen, seq);
	ck_assert_msg(el < 100, "took %llu ms", (unsigned long long)el);

	/* A change made before the call is seen. */
	ck_assert_int_eq(mfs_notify(s), 0);
	t0 = mt_now_ms();
	ck_assert_int_eq(mfs_wait(s, &seen, 5000), 0);
	el = mt_now_ms() - t0;
	ck_assert_uint_eq(seen, seq + 1);
	ck_assert_msg(el < 100, "took %llu ms", (unsigned long long)el);

	/* Several changes: *seen jumps to the current value. */
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_wait(s, &seen, 0), 0);
	ck_assert_uint_eq(seen, seq + 4);
	ck_assert_uint_eq(seq_of(s), seq + 4);
	finish(s, b);
}
END_TEST

START_TEST(wait_times_out)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint32_t seen = seq_of(s), orig = seen;
	uint64_t t0, el;
	int r;

	t0 = mt_now_ms();
	r = mfs_wait(s, &seen, 100);
	el = mt_now_ms() - t0;
	ck_assert_msg(r == MFS_E_TIMEOUT, "wait(100): %s", mfs_err_name(r));
	ck_assert_uint_eq(seen, orig);
	ck_assert_msg(el >= 95 && el < 600, "wait(100) took %llu ms",
	              (unsigned long long)el);
	ck_assert_uint_eq(seq_of(s), orig);
	finish(s, b);
}
END_TEST

START_TEST(wait_zero_unchanged)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint32_t seen = seq_of(s), orig = seen;
	uint64_t t0, el;
	int r;

	t0 = mt_now_ms();
	r = mfs_wait(s, &seen, 0);
	el = mt_now_ms() - t0;
	ck_assert_msg(r == MFS_E_TIMEOUT, "wait(0): %s", mfs_err_name(r));
	ck_assert_uint_eq(seen, orig);
	ck_assert_msg(el < 100, "wait(0) took %llu ms", (unsigned long long)el);
	finish(s, b);
}
END_TEST

START_TEST(seq_counts_notifies)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint32_t seq = seq_of(s), i;
	mfs_stat st;
	pid_t n;

	ck_assert_uint_eq(seq, 0); /* a new segment starts at 0 */
	for (i = 1; i <= 5; i++) {
		ck_assert_int_eq(mfs_notify(s), 0);
		ck_assert_uint_eq(seq_of(s), seq + i);
	}
	ck_assert_int_eq(mfs_inspect(b->key, NULL, &st), 0);
	ck_assert_uint_eq(st.seq, seq + 5);

	/* Another process's notifies count in the same counter. */
	b->notifies = 3;
	n = mt_spawn_tied(notifier, b);
	ck_assert_int_eq(mt_wait(n, 5000), 0);
	ck_assert_int_eq(b->notify_rc, 0);
	ck_assert_uint_eq(seq_of(s), seq + 8);
	finish(s, b);
}
END_TEST

START_TEST(null_args)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint32_t seen = 0;

	ck_assert_int_eq(mfs_notify(NULL), MFS_E_INVALID);
	ck_assert_int_eq(mfs_wait(NULL, &seen, 0), MFS_E_INVALID);
	ck_assert_int_eq(mfs_wait(NULL, &seen, -1), MFS_E_INVALID);
	ck_assert_int_eq(mfs_wait(s, NULL, 0), MFS_E_INVALID);
	ck_assert_int_eq(mfs_wait(s, NULL, -1), MFS_E_INVALID);
	ck_assert_int_eq(mfs_wait(NULL, NULL, 100), MFS_E_INVALID);
	ck_assert_uint_eq(seen, 0);
	ck_assert_uint_eq(seq_of(s), 0);
	finish(s, b);
}
END_TEST

/* ------------------------------------------------------------ processes */

/* A waiter in another process wakes on our notify, with *seen updated.
 * _i = 0: it waits up to 5 s; 1: without limit. */
START_TEST(wake_other_process)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint64_t t_notify, el;
	uint32_t seq = seq_of(s);
	pid_t w;

	b->timeout = _i == 0 ? 5000 : -1;
	start_waiters(b, s, &w, 1);
	t_notify = mt_now_ms();
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_msg(mt_await(&b->ndone, 1, 6000), "the waiter never woke");
	el = b->t_ret[0] - t_notify;
	ck_assert_msg(b->rc[0] == 0, "wait: %s", mfs_err_name(b->rc[0]));
	ck_assert_uint_eq(b->before[0], seq);
	ck_assert_uint_eq(b->after[0], seq + 1);
	ck_assert_msg(b->t_ret[0] >= t_notify, "woke before the notify");
	ck_assert_msg(el < 2000, "woke %llu ms after the notify", (unsigned long long)el);
	end_waiters(b, &w, 1);
	finish(s, b);
}
END_TEST

/* One notify wakes three waiting processes. */
START_TEST(wake_all_processes)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint32_t seq = seq_of(s);
	uint64_t t_notify;
	pid_t w[3];
	int i;

	b->timeout = 5000;
	start_waiters(b, s, w, 3);
	t_notify = mt_now_ms();
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_msg(mt_await(&b->ndone, 3, 6000), "only %d of 3 woke", mt_ld(&b->ndone));
	for (i = 0; i < 3; i++) {
		ck_assert_msg(b->rc[i] == 0, "waiter %d: %s", i, mfs_err_name(b->rc[i]));
		ck_assert_uint_eq(b->before[i], seq);
		ck_assert_uint_eq(b->after[i], seq + 1);
		ck_assert(b->t_ret[i] >= t_notify);
		ck_assert_uint_lt(b->t_ret[i] - t_notify, 2000);
	}
	end_waiters(b, w, 3);
	finish(s, b);
}
END_TEST

/* The waiter is this process; the notify comes from another one. */
START_TEST(wake_from_other_process)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	uint32_t seen = seq_of(s), orig = seen;
	pid_t n;
	int r;

	b->notifies = 1;
	n = mt_spawn_tied(notifier, b);
	r = mfs_wait(s, &seen, 5000);
	ck_assert_msg(r == 0, "wait: %s", mfs_err_name(r));
	ck_assert_uint_eq(seen, orig + 1);
	ck_assert_uint_lt(mt_now_ms() - b->t_notify, 2000);
	ck_assert_int_eq(mt_wait(n, 5000), 0);
	ck_assert_int_eq(b->notify_rc, 0);
	finish(s, b);
}
END_TEST

/* A read-only handle notifies (and waits): the header stays writable.
 * _i = 0: we notify through a read-only handle; 1: the waiting process
 * attached read-only, a notifier process too. */
START_TEST(read_only_handle)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b), *ro = NULL;
	mfs_options o = { 0, MFS_READ_ONLY, 0, NULL };
	uint32_t seq = seq_of(s);
	pid_t w, n;

	if (_i == 1)
		b->flags = MFS_READ_ONLY;
	b->timeout = 5000;
	start_waiters(b, s, &w, 1);
	if (_i == 0) {
		ck_assert_int_eq(mfs_attach(b->key, &o, &ro), 0);
		ck_assert_int_eq(mfs_notify(ro), 0);
		ck_assert_uint_eq(seq_of(ro), seq + 1);
	} else {
		b->notifies = 1;
		n = mt_spawn_tied(notifier, b);
		ck_assert_int_eq(mt_wait(n, 5000), 0);
		ck_assert_int_eq(b->notify_rc, 0);
	}
	ck_assert_msg(mt_await(&b->ndone, 1, 6000), "the waiter never woke");
	ck_assert_msg(b->rc[0] == 0, "wait: %s", mfs_err_name(b->rc[0]));
	ck_assert_uint_eq(b->after[0], seq + 1);
	ck_assert_uint_eq(seq_of(s), seq + 1);
	end_waiters(b, &w, 1);
	ck_assert_int_eq(mfs_detach(ro), 0);
	finish(s, b);
}
END_TEST

/* A waiter sleeps: 500 ms in mfs_wait cost it little CPU, measured inside
 * (around the call) and outside (the reaped child's rusage).  _i = 0: it
 * times out; 1: it waits without limit and is notified after 500 ms. */
START_TEST(wait_does_not_poll)
{
	struct board *b = mt_shared_new(sizeof *b);
	mfs_segment *s = mkseg(b);
	long cpu_us;
	pid_t w;

	b->timeout = _i == 0 ? 500 : -1;
	w = mt_spawn_tied(waiter, b);
	ck_assert(mt_await(&b->nready, 1, 5000));
	if (_i == 1) {
		mt_sleep_ms(500);
		ck_assert_int_eq(mt_ld(&b->ndone), 0);
		ck_assert_int_eq(mfs_notify(s), 0);
	}
	ck_assert(mt_await(&b->ndone, 1, 5000));
	mt_put(&b->quit, 1);
	cpu_us = mt_reap_cpu_us(w, 5000);
	ck_assert_msg(b->rc[0] == (_i == 0 ? MFS_E_TIMEOUT : 0), "wait: %s",
	              mfs_err_name(b->rc[0]));
	ck_assert_msg(b->cpu_us[0] < 50000, "500 ms in mfs_wait used %ld us of CPU",
	              b->cpu_us[0]);
	ck_assert_msg(cpu_us < 50000, "the waiting process used %ld us of CPU", cpu_us);
	finish(s, b);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("notify");
	TCase *tc;

	snprintf(tag, sizeof tag, "nt%ld", (long)getpid());

	tc = mt_tcase(NULL, "local", 10, sweep);
	tcase_add_test(tc, wait_returns_at_once_on_change);
	tcase_add_test(tc, wait_times_out);
	tcase_add_test(tc, wait_zero_unchanged);
	tcase_add_test(tc, seq_counts_notifies);
	tcase_add_test(tc, null_args);
	suite_add_tcase(s, tc);

	tc = mt_tcase(NULL, "processes", 15, sweep);
	tcase_add_loop_test(tc, wake_other_process, 0, 2);
	tcase_add_test(tc, wake_all_processes);
	tcase_add_test(tc, wake_from_other_process);
	tcase_add_loop_test(tc, read_only_handle, 0, 2);
	tcase_add_loop_test(tc, wait_does_not_poll, 0, 2);
	suite_add_tcase(s, tc);

	return mt_run(s);
}
