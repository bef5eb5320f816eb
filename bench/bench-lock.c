/* SPDX-License-Identifier: MIT */
/*
 * bench-lock: the segment lock (mfs_lock/mfs_unlock) against its baseline,
 * a glibc pthread_mutex_t made PTHREAD_PROCESS_SHARED + PTHREAD_MUTEX_ROBUST
 * in the same shared mapping, measured in the same run: uncontended
 * lock+unlock pairs, then P forked processes incrementing one counter.
 * Prints ns per operation and the ratio mfs/pthread (below 1: mfs faster).
 */
#include <mfshare.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 64

enum which { MFS, PTHREAD };
static const char *const names[] = { "mfs", "pthread-robust" };

/*
 * The segment's data.  Written by the parent before any fork (the mutex),
 * then by everyone: the counter only under the lock being measured, the
 * barrier words and end times with atomics.  Each group on its own cache
 * line so that the measured lock is the only thing the processes fight over.
 */
struct area {
	pthread_mutex_t mtx;
	char pad0[64];
	volatile uint64_t counter __attribute__((aligned(64)));
	unsigned ready __attribute__((aligned(64))); /* children at the barrier */
	unsigned go;                                 /* set by the parent */
	uint64_t end_ns[MAX_PROCS] __attribute__((aligned(64)));
};

static char key[64];
static char path[256];    /* the segment's file, for cleanup on a signal */
static pid_t parent;
static mfs_segment *seg;
static pid_t kids[MAX_PROCS]; /* the running children, for the same cleanup */
static volatile sig_atomic_t nkids;

/* On an error exit or a signal, the parent removes the name it made. */
static void cleanup(void)
{
	if (getpid() == parent && seg)
		mfs_remove(key, NULL);
}

static void on_signal(int sig)
{
	int i;

	if (getpid() == parent) {
		unlink(path);
		for (i = 0; i < nkids; i++)
			kill(kids[i], SIGKILL);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static void die_mfs(const char *what, int err)
{
	fprintf(stderr, "bench-lock: %s: %s: %s\n", what, mfs_strerror(err),
	        mfs_last_error());
	exit(1);
}

static void die_errno(const char *what, int err)
{
	fprintf(stderr, "bench-lock: %s: %s\n", what, strerror(err));
	exit(1);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void plock(pthread_mutex_t *m)
{
	int r = pthread_mutex_lock(m);

	if (r == EOWNERDEAD)
		r = pthread_mutex_consistent(m);
	if (r != 0)
		die_errno("pthread_mutex_lock", r);
}

static void punlock(pthread_mutex_t *m)
{
	int r = pthread_mutex_unlock(m);

	if (r != 0)
		die_errno("pthread_mutex_unlock", r);
}

/* @n lock+unlock pairs in this process; returns the elapsed ns. */
static uint64_t uncontended(enum which w, struct area *a, long n)
{
	uint64_t t0, t1;
	long i;
	int r;

	t0 = now_ns();
	if (w == MFS) {
		for (i = 0; i < n; i++) {
			if ((r = mfs_lock(seg)) != 0)
				die_mfs("mfs_lock", r);
			if ((r = mfs_unlock(seg)) != 0)
				die_mfs("mfs_unlock", r);
		}
	} else {
		for (i = 0; i < n; i++) {
			plock(&a->mtx);
			punlock(&a->mtx);
		}
	}
	t1 = now_ns();
	return t1 - t0;
}

/* A forked child: attach anew, wait at the barrier, increment @n times. */
static void child(enum which w, int idx, long n)
{
	mfs_segment *s;
	struct area *a;
	long i;
	int r;

	if ((r = mfs_attach(key, NULL, &s)) != 0)
		die_mfs("child: mfs_attach", r);
	a = mfs_data(s);
	__atomic_fetch_add(&a->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&a->go, __ATOMIC_ACQUIRE))
		sched_yield();
	if (w == MFS) {
		for (i = 0; i < n; i++) {
			if ((r = mfs_lock(s)) != 0)
				die_mfs("child: mfs_lock", r);
			a->counter++;
			if ((r = mfs_unlock(s)) != 0)
				die_mfs("child: mfs_unlock", r);
		}
	} else {
		for (i = 0; i < n; i++) {
			plock(&a->mtx);
			a->counter++;
			punlock(&a->mtx);
		}
	}
	__atomic_store_n(&a->end_ns[idx], now_ns(), __ATOMIC_RELEASE);
	mfs_detach(s);
	_exit(0);
}

/*
 * @p processes released together, each doing @n increments.  Returns the
 * wall time from the release to the last child's end, in ns; exits if the
 * counter is not exactly p*n.
 */
static uint64_t contended(enum which w, struct area *a, int p, long n)
{
	pid_t *pids = kids;
	uint64_t t0, last = 0;
	int i, st, failed = 0;

	a->counter = 0;
	a->ready = 0;
	a->go = 0;
	memset(a->end_ns, 0, sizeof a->end_ns);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	fflush(NULL);
	for (i = 0; i < p; i++) {
		pids[i] = fork();
		if (pids[i] < 0)
			die_errno("fork", errno);
		if (pids[i] == 0)
			child(w, i, n);
		nkids = i + 1;
	}
	while (__atomic_load_n(&a->ready, __ATOMIC_ACQUIRE) < (unsigned)p) {
		struct timespec ts = { 0, 100000 };
		pid_t gone = waitpid(-1, &st, WNOHANG);

		if (gone > 0) {
			fprintf(stderr, "bench-lock: a child ended before the start\n");
			for (i = 0; i < p; i++)
				if (pids[i] != gone)
					kill(pids[i], SIGKILL);
			while (wait(NULL) > 0 || errno == EINTR)
				;
			exit(1);
		}
		nanosleep(&ts, NULL);
	}
	t0 = now_ns();
	__atomic_store_n(&a->go, 1, __ATOMIC_RELEASE);
	for (i = 0; i < p; i++) {
		while (waitpid(pids[i], &st, 0) < 0)
			if (errno != EINTR)
				die_errno("waitpid", errno);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			failed = 1;
		if (a->end_ns[i] > last)
			last = a->end_ns[i];
	}
	nkids = 0;
	if (failed) {
		fprintf(stderr, "bench-lock: %s, %d processes: a child failed\n",
		        names[w], p);
		exit(1);
	}
	if (a->counter != (uint64_t)p * (uint64_t)n) {
		fprintf(stderr, "bench-lock: %s, %d processes: counter %llu, "
		        "expected %llu: the lock does not exclude\n", names[w], p,
		        (unsigned long long)a->counter,
		        (unsigned long long)p * (unsigned long long)n);
		exit(1);
	}
	return last - t0;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;

	return a < b ? -1 : a > b;
}

static uint64_t median(uint64_t *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_u64);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: bench-lock [-n ITERATIONS] [-r REPETITIONS] [-p PROCESSES]\n"
	        "  -n N  lock+unlock pairs per run, uncontended, and increments per\n"
	        "        process, contended (default 2000000)\n"
	        "  -r R  runs of each measurement; the median is reported (default 5)\n"
	        "  -p P  contended runs with 2, 4, ... up to P processes (default 4;\n"
	        "        1: uncontended only)\n");
}

static long number(const char *s, char opt, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "bench-lock: -%c: expected a number from %ld to %ld, "
		        "got '%s'\n", opt, lo, hi, s);
		usage(stderr);
		exit(2);
	}
	return v;
}

/* A table row: the two values and @ratio, always mfs time / pthread time. */
static void row(const char *label, const char *unit, double m, double p,
                double ratio)
{
	printf("%-22s %12.1f %16.1f %8.2f   %s\n", label, m, p, ratio, unit);
}

/* The one-line summaries printed after the table, for scripts and notes. */
static char summary[MAX_PROCS][160];
static int nsummary;

static void summarize(const char *label, double m, double p)
{
	if (nsummary < MAX_PROCS)
		snprintf(summary[nsummary++], sizeof summary[0], "%s: mfs %.1f ns, "
		         "pthread-robust %.1f ns, ratio %.2f", label, m, p, m / p);
}

int main(int argc, char **argv)
{
	long n = 2000000;
	int reps = 5, maxp = 4, c, r, i, p;
	pthread_mutexattr_t ma;
	struct area *a;
	uint64_t *t[2];
	double um, up;
	char label[32];

	while ((c = getopt(argc, argv, "n:r:p:h")) != -1) {
		switch (c) {
		case 'n': n = number(optarg, 'n', 1, 1000000000L); break;
		case 'r': reps = (int)number(optarg, 'r', 1, 1000); break;
		case 'p': maxp = (int)number(optarg, 'p', 1, MAX_PROCS); break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	t[0] = calloc((size_t)reps, sizeof(uint64_t));
	t[1] = calloc((size_t)reps, sizeof(uint64_t));
	if (!t[0] || !t[1])
		die_errno("calloc", ENOMEM);

	parent = getpid();
	snprintf(key, sizeof key, "mfshare-bench-%ld", (long)parent);
	if ((r = mfs_native_path(key, NULL, path, sizeof path)) != 0)
		die_mfs(key, r);
	if ((r = mfs_create(key, sizeof(struct area), NULL, &seg)) != 0)
		die_mfs(key, r);
	atexit(cleanup);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	a = mfs_data(seg);
	if ((r = pthread_mutexattr_init(&ma)) != 0 ||
	    (r = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED)) != 0 ||
	    (r = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST)) != 0 ||
	    (r = pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_NORMAL)) != 0 ||
	    (r = pthread_mutex_init(&a->mtx, &ma)) != 0)
		die_errno("pthread mutex setup", r);
	pthread_mutexattr_destroy(&ma);

	printf("bench-lock: %ld iterations, %d repetitions (median), up to %d "
	       "processes, %ld CPUs online\n", n, reps, maxp,
	       sysconf(_SC_NPROCESSORS_ONLN));
	printf("baseline: pthread_mutex_t, PROCESS_SHARED + ROBUST, in the same "
	       "segment\n\n");
	printf("%-22s %12s %16s %8s\n", "scenario", "mfs", "pthread-robust",
	       "ratio");

	/* Uncontended: one warm-up pass each, then alternate to share drift. */
	uncontended(MFS, a, n / 10 + 1);
	uncontended(PTHREAD, a, n / 10 + 1);
	for (i = 0; i < reps; i++) {
		t[MFS][i] = uncontended(MFS, a, n);
		t[PTHREAD][i] = uncontended(PTHREAD, a, n);
	}
	um = (double)median(t[MFS], reps) / (double)n;
	up = (double)median(t[PTHREAD], reps) / (double)n;
	row("uncontended", "ns per lock+unlock pair", um, up, um / up);
	row("  throughput", "million pairs per second", 1e3 / um, 1e3 / up,
	    um / up);
	summarize("uncontended", um, up);

	for (p = 2; p <= maxp; p *= 2) {
		uint64_t wall[2];

		for (i = 0; i < reps; i++) {
			t[MFS][i] = contended(MFS, a, p, n);
			t[PTHREAD][i] = contended(PTHREAD, a, p, n);
		}
		wall[MFS] = median(t[MFS], reps);
		wall[PTHREAD] = median(t[PTHREAD], reps);
		um = (double)wall[MFS] / ((double)p * (double)n);
		up = (double)wall[PTHREAD] / ((double)p * (double)n);
		snprintf(label, sizeof label, "contended, %d procs", p);
		row(label, "ns per increment", um, up, um / up);
		summarize(label, um, up);
		snprintf(label, sizeof label, "  wall time, %d procs", p);
		row(label, "ms total (counter exact for both)",
		    (double)wall[MFS] / 1e6, (double)wall[PTHREAD] / 1e6, um / up);
	}
	printf("\nratio = mfs time / pthread-robust time, on every row: below "
	       "1.00 mfs is faster,\nabove 1.00 slower.\n\n");
	for (i = 0; i < nsummary; i++)
		printf("%s\n", summary[i]);

	pthread_mutex_destroy(&a->mtx);
	r = mfs_detach(seg);
	seg = NULL;
	if (r != 0)
		die_mfs("mfs_detach", r);
	free(t[0]);
	free(t[1]);
	return 0;
}
