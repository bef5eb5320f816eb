/* SPDX-License-Identifier: MIT */
/*
 * mfs-bench: libmfshare side by side with its alternatives, in one run.
 *
 * Metric groups (see bench/README.md for what each one measures):
 *   lock      uncontended lock+unlock, ping-pong round trip, contended counter
 *   create    create+attach+detach(+remove) of a 4 KiB and a 64 MiB segment
 *   bulk      create+first fill of a fresh 256 MiB segment, first read by a
 *             second process
 *   notify    notify -> wake round trip across processes
 *
 * Every measurement runs in a forked worker process (its own process group)
 * that sets up the contender, measures, tears down and sends its numbers
 * back through a pipe.  A worker that fails or exceeds the time limit gives
 * FAIL / TIMEOUT in the table, its processes are killed and its names
 * removed, and the suite goes on.  Repetitions alternate the contenders so
 * that drifts in load or frequency hit them all.  Output: markdown tables
 * (median, min, max of the repetitions, ratio of medians to the floor).
 */
#include <mfshare.h>
#include "adapt.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sem.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 64
#define MAX_REPS 101
#define KiB 1024ul
#define MiB (1024ul * 1024ul)

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */

static char errbuf[512];

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(errbuf, sizeof errbuf, fmt, ap);
	va_end(ap);
	return -1;
}

static int fail_mfs(const char *what, int r)
{
	return fail("%s: %s: %s", what, mfs_strerror(r), mfs_last_error());
}

static int fail_errno(const char *what)
{
	return fail("%s: %s", what, strerror(errno));
}

static void cpu_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__atomic_signal_fence(__ATOMIC_SEQ_CST);
#endif
}

/* Names made by worker @pid: one prefix, so the parent can remove them all
 * after a killed worker. */
static void name_of(char *buf, size_t len, long pid, const char *what)
{
	snprintf(buf, len, "mfsbench-%ld-%s", pid, what);
}

/* ------------------------------------------------------------------ */
/* The shared control area of a measurement (anonymous, MAP_SHARED,     */
/* inherited by the forked processes): barrier, counter, turn.          */

struct control {
	unsigned ready __attribute__((aligned(64))); /* processes at the barrier */
	unsigned go;                                 /* released by the worker */
	unsigned phase;                              /* ping-pong set-up step */
	volatile uint64_t counter __attribute__((aligned(64)));
	uint64_t end_ns[MAX_PROCS] __attribute__((aligned(64)));
	char msg[256]; /* a child's failure */
};

static struct control *ctl;
static void *lockpage; /* anonymous shared page for the C locks */
static long wpid;      /* this worker's pid, for names */

static void *shared_anon(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static void barrier_wait(void)
{
	__atomic_fetch_add(&ctl->ready, 1, __ATOMIC_SEQ_CST);
	while (!__atomic_load_n(&ctl->go, __ATOMIC_ACQUIRE))
		sched_yield();
}

/* Wait until @n processes are at the barrier (or one of @pids ended). */
static int barrier_collect(unsigned n)
{
	while (__atomic_load_n(&ctl->ready, __ATOMIC_ACQUIRE) < n) {
		struct timespec ts = { 0, 50000 };
		int st;

		if (waitpid(-1, &st, WNOHANG) > 0)
			return fail("a child ended before the start%s%s",
			            ctl->msg[0] ? ": " : "", ctl->msg);
		nanosleep(&ts, NULL);
	}
	return 0;
}

static void child_fail(void)
{
	snprintf(ctl->msg, sizeof ctl->msg, "%.250s", errbuf);
	_exit(1);
}

static pid_t fork_child(void)
{
	pid_t p;

	fflush(NULL);
	p = fork();
	if (p == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return p;
}

static int reap_all(pid_t *pids, int n)
{
	int i, st, bad = 0;

	for (i = 0; i < n; i++) {
		while (waitpid(pids[i], &st, 0) < 0)
			if (errno != EINTR)
				return fail_errno("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad = 1;
	}
	if (bad)
		return fail("a child failed%s%s", ctl->msg[0] ? ": " : "", ctl->msg);
	return 0;
}

/* ------------------------------------------------------------------ */
/* The lock contenders                                                  */

/* Drepper's mutex2 ("Futexes Are Tricky"): 0 free, 1 held, 2 held with
 * possible sleepers.  Shared futexes (no FUTEX_PRIVATE_FLAG): the word is
 * in a shared mapping. */
static long futex(int *w, int op, int val)
{
	return syscall(SYS_futex, w, op, val, NULL, NULL, 0);
}

static inline void fx_lock(int *w, int spins)
{
	int c = 0, i;

	if (__atomic_compare_exchange_n(w, &c, 1, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
		return;
	for (i = 0; i < spins; i++) {
		cpu_pause();
		c = __atomic_load_n(w, __ATOMIC_RELAXED);
		if (c == 0 && __atomic_compare_exchange_n(w, &c, 1, 0, __ATOMIC_ACQUIRE,
		                                          __ATOMIC_RELAXED))
			return;
	}
	if (c != 2)
		c = __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
	while (c != 0) {
		futex(w, FUTEX_WAIT, 2);
		c = __atomic_exchange_n(w, 2, __ATOMIC_ACQUIRE);
	}
}

static inline void fx_unlock(int *w)
{
	if (__atomic_fetch_sub(w, 1, __ATOMIC_RELEASE) != 1) {
		__atomic_store_n(w, 0, __ATOMIC_RELEASE);
		futex(w, FUTEX_WAKE, 1);
	}
}

#define SPIN_ITERS 100

/*
 * Each contender: open lock instance @idx (0..2; creator: the worker,
 * before forking; else a child), close it, and three loops returning 0 or
 * -1 (errbuf).  The loops are generated per contender from LOCK/UNLOCK
 * statements on a local `h`, so the lock calls are inlined or direct,
 * never through a pointer.  A LOCK or UNLOCK statement may `return -1`.
 *
 * The ping-pong uses three locks, so that every step is a hand-off and
 * nobody can barge (see bench/README.md): the process holding two
 * consecutive locks {x, x+1} (mod 3) unlocks x, which the other is waiting
 * for, then waits for x+2, which the other holds and unlocks next.  A
 * process only ever unlocks what it locked itself.  Role 0 (the timer)
 * starts with {0,1}, role 1 with {2}; pp_init takes those.
 */
#define LOOPS(P, T, LOCK, UNLOCK)                                              \
	static int P##_unc(void *h_, long n)                                   \
	{                                                                      \
		T h = h_;                                                      \
		long i;                                                        \
		for (i = 0; i < n; i++) {                                      \
			LOCK;                                                  \
			UNLOCK;                                                \
		}                                                              \
		return 0;                                                      \
	}                                                                      \
	static int P##_count(void *h_, long n, volatile uint64_t *ctr)         \
	{                                                                      \
		T h = h_;                                                      \
		long i;                                                        \
		for (i = 0; i < n; i++) {                                      \
			LOCK;                                                  \
			*ctr = *ctr + 1;                                       \
			UNLOCK;                                                \
		}                                                              \
		return 0;                                                      \
	}                                                                      \
	static int P##_pp_init(void **hs, int role)                            \
	{                                                                      \
		T h;                                                           \
		if (role == 0) {                                               \
			h = hs[0];                                             \
			LOCK;                                                  \
			h = hs[1];                                             \
			LOCK;                                                  \
		} else {                                                       \
			h = hs[2];                                             \
			LOCK;                                                  \
		}                                                              \
		return 0;                                                      \
	}                                                                      \
	static int P##_pingpong(void **hs, long n, int role)                   \
	{                                                                      \
		T h;                                                           \
		long i;                                                        \
		int x = 0;                                                     \
		if (role == 1) {                                               \
			h = hs[0];                                             \
			LOCK;                                                  \
			x = 2;                                                 \
		}                                                              \
		for (i = 0; i < n; i++) {                                      \
			h = hs[x];                                             \
			UNLOCK;                                                \
			if (role == 1 && i == n - 1)                           \
				break;                                         \
			h = hs[(x + 2) % 3];                                   \
			LOCK;                                                  \
			x = (x + 1) % 3;                                       \
		}                                                              \
		if (role == 0) {                                               \
			h = hs[x];                                             \
			UNLOCK;                                                \
		}                                                              \
		h = hs[(x + 1) % 3];                                           \
		UNLOCK;                                                        \
		return 0;                                                      \
	}

/* The C locks live in the worker's anonymous shared page, inherited by the
 * children, each instance on its own cache lines. */
#define SLOT(idx) ((char *)lockpage + 256 * (idx))

/* libmfshare: a real segment per instance; children attach by key. */
static char mfs_lock_key[3][80];

static void *mfs_open_c(int creator, int idx)
{
	mfs_segment *s;
	int r = creator ? mfs_create(mfs_lock_key[idx], 4096, NULL, &s)
	                : mfs_attach(mfs_lock_key[idx], NULL, &s);

	if (r != 0) {
		fail_mfs(creator ? "mfs_create" : "mfs_attach", r);
		return NULL;
	}
	return s;
}

static void mfs_close_c(void *h, int creator)
{
	(void)creator;
	mfs_detach(h);
}

#define MFS_LOCK                                                               \
	do {                                                                   \
		int r_ = mfs_lock(h);                                          \
		if (r_ != 0 && r_ != MFS_E_OWNER_DEAD)                         \
			return fail_mfs("mfs_lock", r_);                       \
	} while (0)
#define MFS_UNLOCK                                                             \
	do {                                                                   \
		int r_ = mfs_unlock(h);                                        \
		if (r_ != 0)                                                   \
			return fail_mfs("mfs_unlock", r_);                     \
	} while (0)
LOOPS(mfs, mfs_segment *, MFS_LOCK, MFS_UNLOCK)

static void *page_open(int creator, int idx)
{
	if (creator)
		memset(SLOT(idx), 0, 256);
	return SLOT(idx);
}

static void page_close(void *h, int creator)
{
	(void)h;
	(void)creator;
}

LOOPS(fx, int *, fx_lock(h, 0), fx_unlock(h))
LOOPS(fxs, int *, fx_lock(h, SPIN_ITERS), fx_unlock(h))

static void *pm_init(int creator, int idx, int robust)
{
	pthread_mutexattr_t ma;
	int r;

	if (!creator)
		return SLOT(idx);
	if ((r = pthread_mutexattr_init(&ma)) != 0 ||
	    (r = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED)) != 0 ||
	    (robust && (r = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST)) != 0) ||
	    (r = pthread_mutex_init((pthread_mutex_t *)SLOT(idx), &ma)) != 0) {
		errno = r;
		fail_errno("pthread mutex setup");
		return NULL;
	}
	pthread_mutexattr_destroy(&ma);
	return SLOT(idx);
}

static void *pm_open(int creator, int idx) { return pm_init(creator, idx, 0); }
static void *pmr_open(int creator, int idx) { return pm_init(creator, idx, 1); }

static void pm_close(void *h, int creator)
{
	if (creator)
		pthread_mutex_destroy(h);
}

#define PM_LOCK                                                                \
	do {                                                                   \
		int r_ = pthread_mutex_lock(h);                                \
		if (r_ == EOWNERDEAD)                                          \
			r_ = pthread_mutex_consistent(h);                      \
		if (r_ != 0)                                                   \
			return errno = r_, fail_errno("pthread_mutex_lock");   \
	} while (0)
#define PM_UNLOCK                                                              \
	do {                                                                   \
		int r_ = pthread_mutex_unlock(h);                              \
		if (r_ != 0)                                                   \
			return errno = r_, fail_errno("pthread_mutex_unlock"); \
	} while (0)
LOOPS(pm, pthread_mutex_t *, PM_LOCK, PM_UNLOCK)

static void *sem_open_c(int creator, int idx)
{
	if (creator && sem_init((sem_t *)SLOT(idx), 1, 1) != 0) {
		fail_errno("sem_init");
		return NULL;
	}
	return SLOT(idx);
}

static void sem_close_c(void *h, int creator)
{
	if (creator)
		sem_destroy(h);
}

#define SEM_LOCK                                                               \
	do {                                                                   \
		while (sem_wait(h) != 0)                                       \
			if (errno != EINTR)                                    \
				return fail_errno("sem_wait");                 \
	} while (0)
#define SEM_UNLOCK                                                             \
	do {                                                                   \
		if (sem_post(h) != 0)                                          \
			return fail_errno("sem_post");                         \
	} while (0)
LOOPS(sem, sem_t *, SEM_LOCK, SEM_UNLOCK)

/* System V: one set of one semaphore of value 1 per instance, its id kept
 * in the shared page. */
static void *sysv_open(int creator, int idx)
{
	int *id = (int *)SLOT(idx);

	if (creator) {
		*id = semget(IPC_PRIVATE, 1, 0600);
		if (*id < 0) {
			fail_errno("semget");
			return NULL;
		}
		if (semctl(*id, 0, SETVAL, 1) != 0) {
			fail_errno("semctl SETVAL");
			semctl(*id, 0, IPC_RMID);
			return NULL;
		}
	}
	return id;
}

static void sysv_close(void *h, int creator)
{
	if (creator)
		semctl(*(int *)h, 0, IPC_RMID);
}

#define SYSV_OP(d, what)                                                       \
	do {                                                                   \
		struct sembuf b_ = { 0, d, SEM_UNDO };                         \
		while (semop(*h, &b_, 1) != 0)                                 \
			if (errno != EINTR)                                    \
				return fail_errno(what);                       \
	} while (0)
LOOPS(sysv, int *, SYSV_OP(-1, "semop -1"), SYSV_OP(1, "semop +1"))

/* The C++ adapters. */
static char cxx_key[3][80];

static void *qt_open_c(int creator, int idx)
{
	void *h = qt_open(cxx_key[idx], creator);

	if (!h)
		fail("%s", adapt_error);
	return h;
}

static void qt_close_c(void *h, int creator)
{
	(void)creator;
	qt_close(h);
}

static void *bx_open_c(int creator, int idx)
{
	void *h = bx_open(cxx_key[idx], creator);

	if (!h)
		fail("%s", adapt_error);
	return h;
}

#define ADAPTED(P)                                                             \
	static int P##_unc_c(void *h, long n)                                  \
	{                                                                      \
		return P##_unc(h, n) ? fail("%s", adapt_error) : 0;            \
	}                                                                      \
	static int P##_count_c(void *h, long n, volatile uint64_t *c)          \
	{                                                                      \
		return P##_count(h, n, c) ? fail("%s", adapt_error) : 0;       \
	}                                                                      \
	static int P##_pp_init_c(void **hs, int role)                          \
	{                                                                      \
		return P##_pp_init(hs, role) ? fail("%s", adapt_error) : 0;    \
	}                                                                      \
	static int P##_pingpong_c(void **hs, long n, int role)                 \
	{                                                                      \
		return P##_pingpong(hs, n, role) ? fail("%s", adapt_error) : 0; \
	}
ADAPTED(qt)
ADAPTED(bx)

struct lockc {
	const char *name;
	void *(*open)(int creator, int idx);
	void (*close)(void *h, int creator);
	int (*unc)(void *h, long n);
	int (*count)(void *h, long n, volatile uint64_t *ctr);
	int (*pp_init)(void **hs, int role);
	int (*pingpong)(void **hs, long n, int role);
};

enum { L_MFS, L_FUTEX, L_FUTEX_SPIN, L_PTHREAD, L_PTHREAD_ROBUST, L_SEM, L_SYSV,
       L_QT, L_BOOST, L_COUNT };

#define LC(name, open, close, P) { name, open, close, P##_unc, P##_count, P##_pp_init, P##_pingpong }
#define LCX(name, open, close, P) \
	{ name, open, close, P##_unc_c, P##_count_c, P##_pp_init_c, P##_pingpong_c }
static const struct lockc locks[L_COUNT] = {
	LC("libmfshare", mfs_open_c, mfs_close_c, mfs),
	LC("futex 3-state, bare", page_open, page_close, fx),
	LC("futex spin-then-sleep", page_open, page_close, fxs),
	LC("pthread mutex pshared", pm_open, pm_close, pm),
	LC("pthread mutex pshared robust", pmr_open, pm_close, pm),
	LC("sem_t pshared", sem_open_c, sem_close_c, sem),
	LC("SysV semop SEM_UNDO", sysv_open, sysv_close, sysv),
	LCX("QSharedMemory lock/unlock", qt_open_c, qt_close_c, qt),
	LCX("Boost interprocess_mutex", bx_open_c, bx_close, bx),
};

static void lock_names(void)
{
	int i;
	char what[16];

	for (i = 0; i < 3; i++) {
		snprintf(what, sizeof what, "lock%d", i);
		name_of(mfs_lock_key[i], sizeof mfs_lock_key[i], wpid, what);
		snprintf(what, sizeof what, "cxx%d", i);
		name_of(cxx_key[i], sizeof cxx_key[i], wpid, what);
	}
}

static int open3(const struct lockc *c, int creator, void **hs)
{
	int i;

	for (i = 0; i < 3; i++) {
		if (!(hs[i] = c->open(creator, i))) {
			while (i-- > 0)
				c->close(hs[i], creator);
			return -1;
		}
	}
	return 0;
}

static void close3(const struct lockc *c, int creator, void **hs)
{
	int i;

	for (i = 2; i >= 0; i--)
		c->close(hs[i], creator);
}

/* Uncontended: n lock+unlock pairs in one process; ns per pair. */
static int m_uncontended(const struct lockc *c, long n, double *out)
{
	void *h = c->open(1, 0);
	uint64_t t0, t1;
	int r;

	if (!h)
		return -1;
	t0 = now_ns();
	r = c->unc(h, n);
	t1 = now_ns();
	c->close(h, 1);
	*out = (double)(t1 - t0) / (double)n;
	return r;
}

/* Contended: p processes, n increments each; ns per increment. */
static int m_contended(const struct lockc *c, int p, long n, double *out)
{
	pid_t pids[MAX_PROCS];
	void *h = c->open(1, 0);
	uint64_t t0, last = 0;
	int i, np = 0, r = 0;

	if (!h)
		return -1;
	for (i = 0; i < p; i++) {
		pids[i] = fork_child();
		if (pids[i] < 0) {
			r = fail_errno("fork");
			break;
		}
		if (pids[i] == 0) {
			void *ch = c->open(0, 0);

			if (!ch)
				child_fail();
			barrier_wait();
			if (c->count(ch, n, &ctl->counter) != 0)
				child_fail();
			__atomic_store_n(&ctl->end_ns[i], now_ns(), __ATOMIC_RELEASE);
			c->close(ch, 0);
			_exit(0);
		}
		np++;
	}
	if (r == 0 && (r = barrier_collect((unsigned)p)) == 0) {
		t0 = now_ns();
		__atomic_store_n(&ctl->go, 1, __ATOMIC_RELEASE);
		r = reap_all(pids, np);
		for (i = 0; i < p; i++)
			if (ctl->end_ns[i] > last)
				last = ctl->end_ns[i];
		*out = (double)(last - t0) / ((double)p * (double)n);
		if (r == 0 && ctl->counter != (uint64_t)p * (uint64_t)n)
			r = fail("counter %llu, expected %llu: the lock does not exclude",
			         (unsigned long long)ctl->counter,
			         (unsigned long long)p * (unsigned long long)n);
	} else {
		for (i = 0; i < np; i++)
			kill(pids[i], SIGKILL);
		while (wait(NULL) > 0)
			;
	}
	c->close(h, 1);
	return r;
}

/* Ping-pong: the worker (role 0) and one child (role 1) hand three locks
 * round (see LOOPS); the worker times n round trips, each two hand-offs;
 * µs per round trip. */
static int m_pingpong(const struct lockc *c, long n, double *out)
{
	void *hs[3];
	uint64_t t0, t1;
	pid_t pid;
	int r;

	if (open3(c, 1, hs) != 0)
		return -1;
	pid = fork_child();
	if (pid < 0) {
		close3(c, 1, hs);
		return fail_errno("fork");
	}
	if (pid == 0) {
		void *chs[3];

		/* Attach first, with no lock held: QSharedMemory::attach takes
		 * the segment's lock. */
		if (open3(c, 0, chs) != 0)
			child_fail();
		__atomic_fetch_add(&ctl->ready, 1, __ATOMIC_SEQ_CST);
		while (!__atomic_load_n(&ctl->phase, __ATOMIC_ACQUIRE))
			sched_yield();
		if (c->pp_init(chs, 1) != 0)
			child_fail();
		barrier_wait();
		if (c->pingpong(chs, n, 1) != 0)
			child_fail();
		close3(c, 0, chs);
		_exit(0);
	}
	if ((r = barrier_collect(1)) != 0 || (r = c->pp_init(hs, 0)) != 0 ||
	    (__atomic_store_n(&ctl->phase, 1, __ATOMIC_RELEASE), r = barrier_collect(2)) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close3(c, 1, hs);
		return r;
	}
	__atomic_store_n(&ctl->go, 1, __ATOMIC_RELEASE);
	t0 = now_ns();
	r = c->pingpong(hs, n, 0);
	t1 = now_ns();
	if (r != 0)
		kill(pid, SIGKILL);
	if (reap_all(&pid, 1) != 0 && r == 0)
		r = -1;
	close3(c, 1, hs);
	*out = (double)(t1 - t0) / (double)n / 1e3;
	return r;
}

/* ------------------------------------------------------------------ */
/* Create + attach + detach (+ remove)                                  */

enum { C_MFS, C_QT, C_RAW, C_RAW_FALLOC, C_COUNT };
static const char *const create_names[C_COUNT] = {
	"libmfshare", "QSharedMemory", "raw shm_open+ftruncate+mmap",
	"raw shm_open+posix_fallocate+mmap",
};

/* One cycle of the raw path: create (O_EXCL) and size, map; a second open
 * and map (the attach); one byte written through the first, read through
 * the second; unmap, close, unlink. */
static int raw_cycle(const char *name, size_t size, int falloc)
{
	int fd, fd2, r;
	struct stat st;
	volatile char *a, *b;

	fd = shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail_errno("shm_open create");
	if (falloc) {
		if ((r = posix_fallocate(fd, 0, (off_t)size)) != 0) {
			errno = r;
			r = fail_errno("posix_fallocate");
			goto out_unlink;
		}
	} else if (ftruncate(fd, (off_t)size) != 0) {
		r = fail_errno("ftruncate");
		goto out_unlink;
	}
	a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (a == MAP_FAILED) {
		r = fail_errno("mmap");
		goto out_unlink;
	}
	fd2 = shm_open(name, O_RDWR | O_CLOEXEC, 0);
	if (fd2 < 0 || fstat(fd2, &st) != 0) {
		r = fail_errno("shm_open attach");
		goto out_unmap;
	}
	b = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd2, 0);
	if (b == MAP_FAILED) {
		r = fail_errno("mmap attach");
		close(fd2);
		goto out_unmap;
	}
	a[0] = 1;
	r = b[0] == 1 ? 0 : fail("raw: the attachment does not see the write");
	munmap((void *)b, (size_t)st.st_size);
	close(fd2);
out_unmap:
	munmap((void *)a, size);
out_unlink:
	close(fd);
	shm_unlink(name);
	return r;
}

static int mfs_cycle(const char *key, size_t size)
{
	mfs_segment *a, *b;
	int r;

	if ((r = mfs_create(key, size, NULL, &a)) != 0)
		return fail_mfs("mfs_create", r);
	if ((r = mfs_attach(key, NULL, &b)) != 0) {
		mfs_detach(a);
		return fail_mfs("mfs_attach", r);
	}
	((volatile char *)mfs_data(a))[0] = 1;
	r = ((volatile char *)mfs_data(b))[0] == 1 ? 0
	    : fail("libmfshare: the attachment does not see the write");
	mfs_detach(b);
	if (mfs_detach(a) != 0 && r == 0)
		r = fail("mfs_detach failed: %s", mfs_last_error());
	return r;
}

/* n cycles; µs per cycle. */
static int m_create(int which, size_t size, long n, double *out)
{
	char name[96], shmname[100];
	uint64_t t0, t1;
	long i;
	int r = 0;

	name_of(name, sizeof name, wpid, "create");
	snprintf(shmname, sizeof shmname, "/%s", name);
	t0 = now_ns();
	for (i = 0; i < n && r == 0; i++) {
		switch (which) {
		case C_MFS: r = mfs_cycle(name, size); break;
		case C_QT:
			if ((r = qt_create_cycle(name, size)) != 0)
				fail("%s", adapt_error);
			break;
		case C_RAW: r = raw_cycle(shmname, size, 0); break;
		default: r = raw_cycle(shmname, size, 1); break;
		}
	}
	t1 = now_ns();
	*out = (double)(t1 - t0) / (double)n / 1e3;
	return r;
}

/* ------------------------------------------------------------------ */
/* Bulk: create + first fill, then attach + first read in another process */

enum { B_MFS, B_MFS_POP, B_RAW, B_RAW_POP, B_MEMCPY, B_COUNT };
static const char *const bulk_names[B_COUNT] = {
	"libmfshare", "libmfshare, MFS_POPULATE", "raw shm_open+ftruncate+mmap (lazy)",
	"raw posix_fallocate+MAP_POPULATE (reference)",
	"memcpy / sum, private touched buffers",
};

/* The options of a bulk libmfshare row (the populate flag where the
 * library has it; see suite.mk). */
static int bulk_opts(int which, mfs_options *o)
{
	memset(o, 0, sizeof *o);
	if (which != B_MFS_POP)
		return 0;
#ifdef HAVE_MFS_POPULATE
	o->flags = MFS_POPULATE;
	return 0;
#else
	return fail("n/a: this libmfshare has no MFS_POPULATE");
#endif
}

#define FILL_BYTE 0x5a

static uint64_t sum_words(const void *p, size_t len)
{
	const uint64_t *w = p;
	uint64_t s = 0;
	size_t i;

	for (i = 0; i < len / 8; i++)
		s += w[i];
	return s;
}

static uint64_t expected_sum(size_t len)
{
	return (uint64_t)(len / 8) * (0x0101010101010101ull * FILL_BYTE);
}

/* The reader: waits for the go byte, attaches, sums, reports its time. */
static void bulk_reader(int which, const char *name, size_t size, int in, int out)
{
	char c;
	uint64_t t0, t1, s = 0;
	mfs_segment *seg = NULL;
	const void *p;
	size_t len = size;
	int fd = -1, r;
	double v;

	if (read(in, &c, 1) != 1)
		_exit(1);
	t0 = now_ns();
	if (which == B_MFS || which == B_MFS_POP) {
		mfs_options o;

		if (bulk_opts(which, &o) != 0)
			child_fail();
		o.flags |= MFS_READ_ONLY; /* it only reads, like the raw PROT_READ */
		if ((r = mfs_attach(name, &o, &seg)) != 0) {
			fail_mfs("reader: mfs_attach", r);
			child_fail();
		}
		p = mfs_const_data(seg);
		len = mfs_size(seg) < size ? mfs_size(seg) : size;
	} else {
		struct stat st;

		fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
		if (fd < 0 || fstat(fd, &st) != 0) {
			fail_errno("reader: shm_open");
			child_fail();
		}
		len = (size_t)st.st_size;
		p = mmap(NULL, len, PROT_READ, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED) {
			fail_errno("reader: mmap");
			child_fail();
		}
	}
	s = sum_words(p, size);
	t1 = now_ns();
	if (s != expected_sum(size)) {
		fail("reader: sum %llx, expected %llx: the data is not there",
		     (unsigned long long)s, (unsigned long long)expected_sum(size));
		child_fail();
	}
	v = (double)(t1 - t0);
	if (write(out, &v, sizeof v) != (ssize_t)sizeof v)
		_exit(1);
	if (seg)
		mfs_detach(seg);
	else
		munmap((void *)p, len), close(fd);
	_exit(0);
}

/* One repetition; GB/s of the fill and of the read. */
static int m_bulk(int which, size_t size, double *fill, double *readr)
{
	char name[96], shmname[100];
	int go[2], back[2], fd = -1, r = 0, flags;
	pid_t pid;
	uint64_t t0, t1;
	double rd = 0;
	mfs_segment *seg = NULL;
	void *p = NULL;

	if (which == B_MEMCPY) {
		char *src = malloc(size), *dst = malloc(size);

		if (!src || !dst)
			return free(src), free(dst), fail("malloc: out of memory");
		/* Both touched (a non-zero fill: malloc+memset 0 may become a
		 * lazy calloc). */
		memset(src, FILL_BYTE, size);
		memset(dst, 1, size);
		__asm__ __volatile__("" : : "r"(dst) : "memory");
		t0 = now_ns();
		memcpy(dst, src, size);
		t1 = now_ns();
		*fill = (double)size / (double)(t1 - t0);
		t0 = now_ns();
		if (sum_words(dst, size) != expected_sum(size))
			r = fail("memcpy: wrong sum");
		t1 = now_ns();
		*readr = (double)size / (double)(t1 - t0);
		free(src);
		free(dst);
		return r;
	}
	name_of(name, sizeof name, wpid, "bulk");
	snprintf(shmname, sizeof shmname, "/%s", name);
	if (pipe(go) != 0 || pipe(back) != 0)
		return fail_errno("pipe");
	pid = fork_child();
	if (pid < 0)
		return fail_errno("fork");
	if (pid == 0) {
		close(go[1]);
		close(back[0]);
		bulk_reader(which, which == B_MFS || which == B_MFS_POP ? name : shmname,
		            size, go[0], back[1]);
	}
	close(go[0]);
	close(back[1]);

	t0 = now_ns();
	if (which == B_MFS || which == B_MFS_POP) {
		mfs_options o;

		if (bulk_opts(which, &o) != 0) {
			r = -1;
			goto out;
		}
		if ((r = mfs_create(name, size, &o, &seg)) != 0) {
			r = fail_mfs("mfs_create", r);
			goto out;
		}
		p = mfs_data(seg);
	} else {
		fd = shm_open(shmname, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0) {
			r = fail_errno("shm_open");
			goto out;
		}
		if (which == B_RAW_POP) {
			if ((r = posix_fallocate(fd, 0, (off_t)size)) != 0) {
				errno = r;
				r = fail_errno("posix_fallocate");
				goto out;
			}
		} else if (ftruncate(fd, (off_t)size) != 0) {
			r = fail_errno("ftruncate");
			goto out;
		}
		flags = MAP_SHARED | (which == B_RAW_POP ? MAP_POPULATE : 0);
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, flags, fd, 0);
		if (p == MAP_FAILED) {
			p = NULL;
			r = fail_errno("mmap");
			goto out;
		}
	}
	memset(p, FILL_BYTE, size);
	t1 = now_ns();
	*fill = (double)size / (double)(t1 - t0);
	if (write(go[1], "g", 1) != 1 ||
	    read(back[0], &rd, sizeof rd) != (ssize_t)sizeof rd)
		r = -1;
	else
		*readr = (double)size / rd;
out:
	close(go[1]);
	if (reap_all(&pid, 1) != 0 && r == 0)
		r = -1;
	else if (r != 0 && !errbuf[0])
		fail("the reader failed%s%s", ctl->msg[0] ? ": " : "", ctl->msg);
	close(back[0]);
	if (seg)
		mfs_detach(seg);
	if (fd >= 0) {
		if (p)
			munmap(p, size);
		close(fd);
		shm_unlink(shmname);
	}
	return r;
}

/* ------------------------------------------------------------------ */
/* Notify -> wake round trip                                            */

enum { N_MFS, N_FUTEX, N_FUTEX_SPIN, N_PIPE, N_COUNT };
static const char *const notify_names[N_COUNT] = {
	"libmfshare mfs_notify/mfs_wait", "futex wake/wait on a counter (reference)",
	"futex, waiter spins first (reference)", "pipe write/read",
};

/* A notification word @w: the poster stores the new value and wakes; with
 * @spin the waiter first spins SPIN_ITERS pauses, and sleepers announce
 * themselves in @waiters so that the poster skips the wake when nobody
 * sleeps (a Dekker pair of seq_cst store and load on both sides). */
static void fn_post(uint32_t *w, uint32_t *waiters, uint32_t v, int spin)
{
	__atomic_store_n(w, v, __ATOMIC_SEQ_CST);
	if (!spin || __atomic_load_n(waiters, __ATOMIC_SEQ_CST) != 0)
		futex((int *)w, FUTEX_WAKE, INT_MAX);
}

static void fn_wait(uint32_t *w, uint32_t *waiters, uint32_t old, int spin)
{
	int k;

	for (k = 0; spin && k < SPIN_ITERS; k++) {
		if (__atomic_load_n(w, __ATOMIC_ACQUIRE) != old)
			return;
		cpu_pause();
	}
	while (__atomic_load_n(w, __ATOMIC_ACQUIRE) == old) {
		__atomic_fetch_add(waiters, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(w, __ATOMIC_SEQ_CST) == old)
			futex((int *)w, FUTEX_WAIT, (int)old);
		__atomic_fetch_sub(waiters, 1, __ATOMIC_SEQ_CST);
	}
}

static int m_notify(int which, long n, double *out)
{
	char k1[96], k2[96];
	mfs_segment *s1 = NULL, *s2 = NULL;
	uint32_t seen1 = 0, seen2 = 0;
	int p1[2] = { -1, -1 }, p2[2] = { -1, -1 }, r = 0;
	uint32_t *f = lockpage; /* ping, pong counters; their sleepers */
	int spin = which == N_FUTEX_SPIN;
	uint64_t t0, t1;
	pid_t pid;
	long i;
	char c = 'x';

	if (which == N_MFS) {
		mfs_stat st;

		name_of(k1, sizeof k1, wpid, "ping");
		name_of(k2, sizeof k2, wpid, "pong");
		if ((r = mfs_create(k1, 4096, NULL, &s1)) != 0 ||
		    (r = mfs_create(k2, 4096, NULL, &s2)) != 0) {
			r = fail_mfs("mfs_create", r);
			goto out;
		}
		mfs_stat_segment(s1, &st);
		seen1 = st.seq;
		mfs_stat_segment(s2, &st);
		seen2 = st.seq;
	} else if (which == N_PIPE) {
		if (pipe(p1) != 0 || pipe(p2) != 0)
			return fail_errno("pipe");
	} else {
		f[0] = f[16] = f[32] = f[48] = 0;
	}
	pid = fork_child();
	if (pid < 0) {
		r = fail_errno("fork");
		goto out;
	}
	if (pid == 0) {
		mfs_segment *c1 = NULL, *c2 = NULL;

		if (which == N_MFS && ((r = mfs_attach(k1, NULL, &c1)) != 0 ||
		                       (r = mfs_attach(k2, NULL, &c2)) != 0)) {
			fail_mfs("child: mfs_attach", r);
			child_fail();
		}
		barrier_wait();
		for (i = 0; i < n; i++) {
			if (which == N_MFS) {
				if ((r = mfs_wait(c1, &seen1, 10000)) != 0 ||
				    (r = mfs_notify(c2)) != 0) {
					fail_mfs("child: mfs_wait/notify", r);
					child_fail();
				}
			} else if (which == N_PIPE) {
				if (read(p1[0], &c, 1) != 1 || write(p2[1], &c, 1) != 1)
					_exit(1);
			} else {
				fn_wait(&f[0], &f[32], (uint32_t)i, spin);
				fn_post(&f[16], &f[48], (uint32_t)i + 1, spin);
			}
		}
		mfs_detach(c1);
		mfs_detach(c2);
		_exit(0);
	}
	if ((r = barrier_collect(1)) != 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	__atomic_store_n(&ctl->go, 1, __ATOMIC_RELEASE);
	t0 = now_ns();
	for (i = 0; i < n && r == 0; i++) {
		if (which == N_MFS) {
			if ((r = mfs_notify(s1)) != 0 || (r = mfs_wait(s2, &seen2, 10000)) != 0)
				r = fail_mfs("mfs_notify/mfs_wait", r);
		} else if (which == N_PIPE) {
			if (write(p1[1], &c, 1) != 1 || read(p2[0], &c, 1) != 1)
				r = fail_errno("pipe write/read");
		} else {
			fn_post(&f[0], &f[32], (uint32_t)i + 1, spin);
			fn_wait(&f[16], &f[48], (uint32_t)i, spin);
		}
	}
	t1 = now_ns();
	if (r != 0)
		kill(pid, SIGKILL);
	if (reap_all(&pid, 1) != 0 && r == 0)
		r = -1;
	*out = (double)(t1 - t0) / (double)n / 1e3;
out:
	mfs_detach(s1);
	mfs_detach(s2);
	if (p1[0] >= 0)
		close(p1[0]), close(p1[1]), close(p2[0]), close(p2[1]);
	return r;
}

/* ------------------------------------------------------------------ */
/* Workers: one measurement in a forked process                        */

enum group { G_UNC, G_PING, G_CONT, G_CREATE, G_BULK, G_NOTIFY };

struct job {
	enum group g;
	int which; /* contender index in its group */
	int param; /* processes (contended), size in KiB (create), MiB (bulk) */
	long n;
};

struct result {
	int ok;
	double v[2];
	char msg[512];
};

static int run_job(const struct job *j, double v[2])
{
	switch (j->g) {
	case G_UNC: return m_uncontended(&locks[j->which], j->n, &v[0]);
	case G_PING: return m_pingpong(&locks[j->which], j->n, &v[0]);
	case G_CONT: return m_contended(&locks[j->which], j->param, j->n, &v[0]);
	case G_CREATE: return m_create(j->which, (size_t)j->param * KiB, j->n, &v[0]);
	case G_BULK: return m_bulk(j->which, (size_t)j->param * MiB, &v[0], &v[1]);
	case G_NOTIFY: return m_notify(j->which, j->n, &v[0]);
	}
	return fail("unknown job");
}

/* Remove whatever a killed worker @pid may have left. */
static void cleanup_names(long pid)
{
	static const char *const what[] = { "lock0", "lock1", "lock2", "cxx0", "cxx1", "cxx2",
	                                    "create", "bulk", "ping", "pong" };
	char name[96], shm[100];
	size_t i;

	for (i = 0; i < sizeof what / sizeof *what; i++) {
		name_of(name, sizeof name, pid, what[i]);
		snprintf(shm, sizeof shm, "/%s", name);
		shm_unlink(shm);
		mfs_remove(name, NULL);
		if (strncmp(what[i], "cxx", 3) == 0)
			qt_cleanup(name);
	}
}

/* The running worker, for a signal that ends the suite. */
static volatile pid_t cur_worker;

static void on_signal(int sig)
{
	pid_t w = cur_worker;

	if (w > 0) {
		kill(-w, SIGKILL);
		waitpid(w, NULL, 0);
		cleanup_names(w);
	}
	signal(sig, SIG_DFL);
	raise(sig);
}

static int timeout_s = 120;

/* Run @j in a worker; 0 with v filled, or -1 with errbuf set. */
static int worker(const struct job *j, double v[2])
{
	int fds[2], st;
	pid_t pid;
	struct result res;
	struct pollfd pfd;
	ssize_t got = 0;
	uint64_t end = now_ns() + (uint64_t)timeout_s * 1000000000u;

	if (pipe(fds) != 0)
		return fail_errno("pipe");
	fflush(NULL);
	pid = fork();
	if (pid < 0)
		return fail_errno("fork");
	if (pid == 0) {
		close(fds[0]);
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		wpid = getpid();
		lock_names();
		memset(&res, 0, sizeof res);
		ctl = shared_anon(sizeof *ctl);
		lockpage = shared_anon(4096);
		if (!ctl || !lockpage) {
			fail_errno("mmap");
		} else {
			memset(ctl, 0, sizeof *ctl);
			errbuf[0] = 0;
			res.ok = run_job(j, res.v) == 0;
		}
		snprintf(res.msg, sizeof res.msg, "%s", errbuf);
		if (write(fds[1], &res, sizeof res) != (ssize_t)sizeof res)
			_exit(1);
		_exit(0);
	}
	setpgid(pid, pid);
	cur_worker = pid;
	close(fds[1]);
	memset(&res, 0, sizeof res);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	for (;;) {
		uint64_t now = now_ns();
		int ms = now >= end ? 0 : (int)((end - now) / 1000000u) + 1;
		int pr = poll(&pfd, 1, ms);

		if (pr < 0 && errno == EINTR)
			continue;
		if (pr <= 0) {
			kill(-pid, SIGKILL);
			waitpid(pid, &st, 0);
			close(fds[0]);
			cleanup_names(pid);
			cur_worker = 0;
			return fail("TIMEOUT after %d s", timeout_s);
		}
		got = read(fds[0], &res, sizeof res);
		break;
	}
	close(fds[0]);
	kill(-pid, SIGKILL); /* stragglers of a failed run */
	waitpid(pid, &st, 0);
	cur_worker = 0;
	if (got != (ssize_t)sizeof res || !res.ok) {
		cleanup_names(pid);
		return fail("%s", got == (ssize_t)sizeof res && res.msg[0] ? res.msg
		                  : "the worker died");
	}
	v[0] = res.v[0];
	v[1] = res.v[1];
	return 0;
}

/* ------------------------------------------------------------------ */
/* The orchestration and the tables                                    */

struct row {
	const char *name;
	int which;
	long n;
	int nv;
	double v[2][MAX_REPS];
	int failed;
	char msg[200];
};

static int reps = 7;
static const char *only; /* -c: measure only rows whose name contains it */
static double target_ms = 150;
static int verbose;

static int cmp_d(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static double median_of(const double *v, int n)
{
	double t[MAX_REPS];

	memcpy(t, v, (size_t)n * sizeof *t);
	qsort(t, (size_t)n, sizeof *t, cmp_d);
	return n % 2 ? t[n / 2] : (t[n / 2 - 1] + t[n / 2]) / 2;
}

static double min_of(const double *v, int n)
{
	double m = v[0];
	int i;

	for (i = 1; i < n; i++)
		m = v[i] < m ? v[i] : m;
	return m;
}

static double max_of(const double *v, int n)
{
	double m = v[0];
	int i;

	for (i = 1; i < n; i++)
		m = v[i] > m ? v[i] : m;
	return m;
}

static void fmtv(char *buf, size_t len, double v)
{
	double a = fabs(v);

	if (a >= 1000)
		snprintf(buf, len, "%.0f", v);
	else if (a >= 100)
		snprintf(buf, len, "%.1f", v);
	else if (a >= 10)
		snprintf(buf, len, "%.2f", v);
	else
		snprintf(buf, len, "%.3f", v);
}

static void progress(const char *fmt, ...)
{
	va_list ap;

	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
}

/* Calibrate @r's n so that one repetition takes about target_ms, from a
 * first guess @n0; per-op cost estimated from the values the job returns
 * in @unit_ns (ns per value unit times ops). */
static void calibrate(struct job *j, struct row *r, long n0, double unit_ns, long opsmul)
{
	double v[2], tot;
	int k;

	j->n = n0;
	for (k = 0; k < 4; k++) {
		long nn;

		if (worker(j, v) != 0) {
			r->failed = 1;
			snprintf(r->msg, sizeof r->msg, "%.190s", errbuf);
			return;
		}
		tot = v[0] * unit_ns * (double)j->n * (double)opsmul / 1e6; /* ms */
		nn = (long)((double)j->n * target_ms / (tot > 1e-3 ? tot : 1e-3));
		if (nn < 1)
			nn = 1;
		if (nn > 2000000000L)
			nn = 2000000000L;
		if (tot >= target_ms / 3) {
			j->n = nn;
			break;
		}
		j->n = nn > j->n * 64 ? j->n * 64 : nn;
	}
	r->n = j->n;
}

/* Run a group: calibrate every row (if @n0 > 0), then repetitions with the
 * rows alternating. */
static void run_group(enum group g, int param, struct row *rows, int nrows, long n0,
                      double unit_ns, long opsmul)
{
	struct job j;
	int i, k;
	double v[2];

	for (i = 0; i < nrows; i++) {
		rows[i].nv = 0;
		rows[i].failed = 0;
		rows[i].msg[0] = 0;
		if (only && !strstr(rows[i].name, only)) {
			rows[i].failed = 1;
			snprintf(rows[i].msg, sizeof rows[i].msg, "skipped (-c)");
			continue;
		}
		if (n0 > 0) {
			j.g = g;
			j.which = rows[i].which;
			j.param = param;
			progress("  calibrating %s\n", rows[i].name);
			calibrate(&j, &rows[i], n0, unit_ns, opsmul);
		}
	}
	for (k = 0; k < reps; k++) {
		progress("  repetition %d/%d\n", k + 1, reps);
		for (i = 0; i < nrows; i++) {
			if (rows[i].failed)
				continue;
			j.g = g;
			j.which = rows[i].which;
			j.param = param;
			j.n = rows[i].n;
			if (worker(&j, v) != 0) {
				rows[i].failed = 1;
				snprintf(rows[i].msg, sizeof rows[i].msg, "%.190s", errbuf);
				continue;
			}
			rows[i].v[0][rows[i].nv] = v[0];
			rows[i].v[1][rows[i].nv] = v[1];
			rows[i].nv++;
		}
	}
}

/* Ratio of @a's median to @b's, as a ratio of times (below 1: faster),
 * for values that are times (@rate 0) or rates (@rate 1).  NAN if missing. */
static double ratio(const struct row *a, const struct row *b, int k, int rate)
{
	double ma, mb;

	if (!a || !b || a->failed || b->failed || a->nv == 0 || b->nv == 0)
		return NAN;
	ma = median_of(a->v[k], a->nv);
	mb = median_of(b->v[k], b->nv);
	return rate ? mb / ma : ma / mb;
}

static void table(const char *title, const char *unit, struct row *rows, int nrows,
                  int floor, int k, int rate)
{
	int i;
	char m[32], lo[32], hi[32];

	printf("\n### %s\n\n", title);
	printf("%s; ratio = time / time of **%s** (below 1.00: faster than it)\n\n",
	       unit, rows[floor].name);
	printf("| contender | median | min | max | ratio vs floor |\n");
	printf("|---|---:|---:|---:|---:|\n");
	for (i = 0; i < nrows; i++) {
		const struct row *r = &rows[i];
		double q;

		if (r->failed && r->nv == 0) {
			int na = !strncmp(r->msg, "n/a", 3) || !strncmp(r->msg, "skipped", 7);

			printf("| %s | %s%s | | | |\n", r->name, na ? "" : "FAIL: ", r->msg);
			continue;
		}
		fmtv(m, sizeof m, median_of(r->v[k], r->nv));
		fmtv(lo, sizeof lo, rate ? min_of(r->v[k], r->nv) : min_of(r->v[k], r->nv));
		fmtv(hi, sizeof hi, max_of(r->v[k], r->nv));
		q = ratio(r, &rows[floor], k, rate);
		printf("| %s%s | %s | %s | %s | %.2f%s |\n", r->name,
		       i == floor ? " (floor)" : "", m, lo, hi, q,
		       r->failed ? " (FAILED later: see below)" : "");
		if (r->failed)
			printf("| | FAIL: %s | | | |\n", r->msg);
	}
}

/* Targets of issue 6. */
struct target {
	char what[160];
	double got, limit;
	int below; /* 1: met when got <= limit; 2: met when got < limit */
};

static struct target targets[16];
static int ntargets;

static void add_target(const char *what, double got, double limit, int below)
{
	struct target *t;

	if (ntargets >= (int)(sizeof targets / sizeof *targets))
		return;
	t = &targets[ntargets++];
	snprintf(t->what, sizeof t->what, "%s", what);
	t->got = got;
	t->limit = limit;
	t->below = below;
}

static void print_targets(void)
{
	int i;

	if (!ntargets)
		return;
	printf("\n### Issue 6 targets (ratios of medians, this run)\n\n");
	printf("| target | ratio | limit | verdict |\n|---|---:|---:|---|\n");
	for (i = 0; i < ntargets; i++) {
		const struct target *t = &targets[i];
		const char *verdict = isnan(t->got) ? "not measured"
		    : (t->below == 2 ? t->got < t->limit : t->got <= t->limit) ? "met" : "**MISSED**";

		printf("| %s | %.3f | %s %.2f | %s |\n", t->what, t->got,
		       t->below == 2 ? "<" : "<=", t->limit, verdict);
	}
}

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: mfs-bench [-q] [-r REPS] [-t MS] [-g GROUPS] [-P PROCS] [-b MIB]\n"
	        "                 [-T SECONDS] [-c NAME] [-v]\n"
	        "  -q         quick: 3 repetitions of about 25 ms (about a minute in all)\n"
	        "             (also MFS_BENCH_QUICK=1 in the environment)\n"
	        "  -r REPS    repetitions of each measurement (default 7; median, min, max)\n"
	        "  -t MS      target duration of one repetition (default 150)\n"
	        "  -g GROUPS  comma list of lock,create,bulk,notify (default all)\n"
	        "  -P PROCS   contended process counts, comma list (default 2,4,8)\n"
	        "  -b MIB     bulk segment size in MiB (default 256)\n"
	        "  -T SECONDS time limit of one measurement (default 120)\n"
	        "  -c NAME    measure only the rows whose name contains NAME (profiling)\n"
	        "  -v         progress on stderr\n");
}

static int has_group(const char *list, const char *g)
{
	const char *p = list;
	size_t n = strlen(g);

	while ((p = strstr(p, g)) != NULL) {
		if ((p == list || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return 1;
		p += n;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *groups = "lock,create,bulk,notify", *procs = "2,4,8", *env;
	int c, i, quick = 0, bulk_mib = 256, reps_set = 0, t_set = 0;
	struct utsname un;
	time_t now = time(NULL);
	char date[64];
	static struct row rows[L_COUNT];

	env = getenv("MFS_BENCH_QUICK");
	if (env && *env && strcmp(env, "0") != 0)
		quick = 1;
	while ((c = getopt(argc, argv, "qr:t:g:P:b:T:c:vh")) != -1) {
		switch (c) {
		case 'q': quick = 1; break;
		case 'r': reps = atoi(optarg); reps_set = 1; break;
		case 't': target_ms = atof(optarg); t_set = 1; break;
		case 'g': groups = optarg; break;
		case 'P': procs = optarg; break;
		case 'b': bulk_mib = atoi(optarg); break;
		case 'T': timeout_s = atoi(optarg); break;
		case 'v': verbose = 1; break;
		case 'c': only = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || bulk_mib < 1 || timeout_s < 1) {
		usage(stderr);
		return 2;
	}
	if (quick) {
		if (!reps_set)
			reps = 3;
		if (!t_set)
			target_ms = 25;
	}
	if (reps < 1 || reps > MAX_REPS || !(target_ms > 0)) {
		fprintf(stderr, "mfs-bench: -r must be 1 to %d, -t positive\n", MAX_REPS);
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);

	uname(&un);
	strftime(date, sizeof date, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
	printf("## mfs-bench run\n\n");
	printf("- date: %s\n- kernel (`uname -r`): %s\n- CPUs (`nproc`): %ld\n",
	       date, un.release, sysconf(_SC_NPROCESSORS_ONLN));
	env = getenv("MFS_BENCH_CMDLINE");
	printf("- command: `");
	if (env && *env) {
		printf("%s", env);
	} else {
		for (i = 0; i < argc; i++)
			printf("%s%s", i ? " " : "", argv[i]);
	}
	printf("`\n");
	env = getenv("MFS_BENCH_LIBINFO");
	if (env && *env)
		printf("- library: %s\n", env);
	printf("- mode: %s, %d repetitions of about %.0f ms each; median, min and max "
	       "of the repetitions\n", quick ? "quick" : "default", reps, target_ms);
	fflush(stdout);

	if (has_group(groups, "lock")) {
		const char *p = procs;
		struct row *mfs = &rows[L_MFS], *fx = &rows[L_FUTEX], *fxs = &rows[L_FUTEX_SPIN];
		char what[160];

		for (i = 0; i < L_COUNT; i++) {
			rows[i].name = locks[i].name;
			rows[i].which = i;
		}
		progress("uncontended\n");
		run_group(G_UNC, 0, rows, L_COUNT, 1000, 1, 1);
		table("Uncontended lock+unlock", "ns per lock+unlock pair, one process",
		      rows, L_COUNT, L_FUTEX, 0, 0);
		add_target("uncontended: libmfshare / futex 3-state", ratio(mfs, fx, 0, 0),
		           1.15, 1);
		fflush(stdout);

		progress("ping-pong\n");
		run_group(G_PING, 0, rows, L_COUNT, 100, 1000, 1);
		table("Ping-pong round trip, 2 processes",
		      "µs per round trip (A hands a lock to B, B hands one back; three locks "
		      "rotated so that every step is a hand-off, see README)",
		      rows, L_COUNT, L_FUTEX, 0, 0);
		add_target("ping-pong: libmfshare / futex spin-then-sleep",
		           ratio(mfs, fxs, 0, 0), 1.0, 1);
		fflush(stdout);

		while (*p) {
			int np = atoi(p);
			char title[96];

			if (np >= 1 && np <= MAX_PROCS) {
				progress("contended, %d processes\n", np);
				run_group(G_CONT, np, rows, L_COUNT, 200, 1, np);
				snprintf(title, sizeof title, "Contended counter, %d processes", np);
				table(title, "ns per increment (wall time / total increments; "
				      "final count checked exact)", rows, L_COUNT, L_FUTEX, 0, 0);
				if (np == 2 || np == 4) {
					snprintf(what, sizeof what, "contended %d procs: libmfshare "
					         "/ futex 3-state (time per op)", np);
					add_target(what, ratio(mfs, fx, 0, 0), 1.0, 1);
				}
				fflush(stdout);
			}
			p += strcspn(p, ",");
			if (*p)
				p++;
		}
	}
	if (has_group(groups, "create")) {
		static const int sizes_kib[2] = { 4, 64 * 1024 };
		int s;

		for (i = 0; i < C_COUNT; i++) {
			rows[i].name = create_names[i];
			rows[i].which = i;
		}
		for (s = 0; s < 2; s++) {
			char title[96];
			int floor = s == 0 ? C_RAW : C_RAW_FALLOC;

			progress("create %d KiB\n", sizes_kib[s]);
			run_group(G_CREATE, sizes_kib[s], rows, C_COUNT, 4, 1000, 1);
			snprintf(title, sizeof title, "Create + attach + detach (+ remove), %s",
			         s == 0 ? "4 KiB" : "64 MiB");
			table(title, "µs per cycle (create, a second attachment, one byte "
			      "written and read back, detach both, name removed)",
			      rows, C_COUNT, floor, 0, 0);
			if (s == 0)
				add_target("create 4 KiB: libmfshare / raw shm_open+ftruncate",
				           ratio(&rows[C_MFS], &rows[C_RAW], 0, 0), 1.5, 1);
			else {
				add_target("create 64 MiB: libmfshare / raw shm_open+posix_fallocate",
				           ratio(&rows[C_MFS], &rows[C_RAW_FALLOC], 0, 0), 1.1, 1);
			}
			fflush(stdout);
		}
	}
	if (has_group(groups, "bulk")) {
		char title[128];

		for (i = 0; i < B_COUNT; i++) {
			rows[i].name = bulk_names[i];
			rows[i].which = i;
		}
		progress("bulk\n");
		run_group(G_BULK, bulk_mib, rows, B_COUNT, 0, 0, 0);
		for (i = 0; i < B_COUNT; i++)
			rows[i].n = 1;
		snprintf(title, sizeof title, "Create + first fill of a fresh %d MiB segment",
		         bulk_mib);
		table(title, "GB/s (create + memset, one process; memcpy row: memcpy between "
		      "touched private buffers)", rows, B_COUNT, B_RAW, 0, 1);
		snprintf(title, sizeof title, "Attach + first read (sum) of that %d MiB by a "
		         "second process", bulk_mib);
		table(title, "GB/s (attach read-only + sum of 64-bit words, checked; last row: "
		      "sum of a touched private buffer)", rows, B_COUNT, B_RAW, 1, 1);
		add_target("create + first fill: libmfshare time / raw lazy time",
		           ratio(&rows[B_MFS], &rows[B_RAW], 0, 1), 0.10, 1);
		add_target("first read by a second process: libmfshare time / raw lazy time",
		           ratio(&rows[B_MFS], &rows[B_RAW], 1, 1), 0.20, 1);
#ifdef HAVE_MFS_POPULATE
		add_target("create + first fill, MFS_POPULATE: libmfshare time / raw lazy time",
		           ratio(&rows[B_MFS_POP], &rows[B_RAW], 0, 1), 0.10, 1);
		add_target("first read, MFS_POPULATE: libmfshare time / raw lazy time",
		           ratio(&rows[B_MFS_POP], &rows[B_RAW], 1, 1), 0.20, 1);
#endif
		fflush(stdout);
	}
	if (has_group(groups, "notify")) {
		for (i = 0; i < N_COUNT; i++) {
			rows[i].name = notify_names[i];
			rows[i].which = i;
		}
		progress("notify\n");
		run_group(G_NOTIFY, 0, rows, N_COUNT, 100, 1000, 1);
		table("Notify -> wake round trip, 2 processes",
		      "µs per round trip (A wakes B, B wakes A; both timestamps in A)",
		      rows, N_COUNT, N_PIPE, 0, 0);
		add_target("notify->wake round trip: libmfshare / pipe",
		           ratio(&rows[N_MFS], &rows[N_PIPE], 0, 0), 1.0, 2);
	}
	print_targets();
	printf("\nAll ratios are ratios of times (for GB/s rows too: floor GB/s / row GB/s):"
	       " below 1.00 faster than the floor, above 1.00 slower.\n");
	return 0;
}
