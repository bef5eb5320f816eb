/* SPDX-License-Identifier: MIT */
/*
 * memfd-parent: share an anonymous (memfd) segment with child processes.
 * Creates a MEMFD segment holding a counter, starts two memfd-worker
 * children with mfs_spawn (each inherits a descriptor of the segment), and
 * checks that their locked increments add up exactly.  Run with -h for usage.
 */
#include <mfshare.h>

#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Our layout of the segment's data, shared with memfd-worker.c (keep the
 * two in step).  Both fields are written only under the segment's lock.
 */
struct counter_data {
	uint64_t counter; /* incremented once per step by every worker */
	uint32_t done;    /* workers that have finished their steps */
};

#define WORKERS   2
#define DEFAULT_N 100000
#define WAIT_MS   1000 /* how often the parent looks for crashed workers */

static const char *prog = "memfd-parent";

static int mfs_fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s: %s\n", prog, what, mfs_strerror(err),
	        mfs_last_error());
	return 1;
}

/* The worker program: next to this one, unless given on the command line. */
static char *default_worker(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');
	size_t dirlen = slash ? (size_t)(slash - argv0) : 1;
	char *path = malloc(dirlen + sizeof "/memfd-worker");

	if (path)
		sprintf(path, "%.*s/memfd-worker", (int)dirlen, slash ? argv0 : ".");
	return path;
}

/* Read the shared counters under the lock. */
static int read_counters(mfs_segment *seg, uint64_t *counter, uint32_t *done)
{
	const struct counter_data *cd = mfs_const_data(seg);
	int r = mfs_lock(seg);

	if (r == MFS_E_OWNER_DEAD)
		fprintf(stderr, "%s: a worker died holding the lock\n", prog);
	else if (r != 0)
		return mfs_fail("lock", r);
	*counter = cd->counter;
	*done = cd->done;
	if ((r = mfs_unlock(seg)) != 0)
		return mfs_fail("unlock", r);
	return 0;
}

/* Reap the worker @pid, waiting for it if @block; 1 once it has ended
 * (clearing *@ok unless it exited with status 0), 0 while it runs. */
static int reap(pid_t pid, int block, int *ok)
{
	int status;
	pid_t r;

	while ((r = waitpid(pid, &status, block ? 0 : WNOHANG)) < 0 && errno == EINTR)
		;
	if (r == 0)
		return 0;
	if (r < 0) {
		fprintf(stderr, "%s: waitpid %ld: %s\n", prog, (long)pid, strerror(errno));
		*ok = 0;
		return 1;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 1;
	if (WIFEXITED(status))
		fprintf(stderr, "%s: worker %ld exited with status %d\n", prog,
		        (long)pid, WEXITSTATUS(status));
	else
		fprintf(stderr, "%s: worker %ld killed by signal %d\n", prog,
		        (long)pid, WTERMSIG(status));
	*ok = 0;
	return 1;
}

static int usage(FILE *f)
{
	fprintf(f, "usage: %s [-n STEPS] [WORKER]\n"
	        "Start two WORKER processes (default: memfd-worker next to this\n"
	        "program) that each add 1 to a counter in a shared memfd segment\n"
	        "STEPS times (default %d) under its lock; exit 0 if the total is\n"
	        "exactly 2*STEPS.\n", prog, DEFAULT_N);
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	const mfs_options memfd = { .backend = MFS_BACKEND_MEMFD };
	pid_t pids[WORKERS];
	int ended[WORKERS] = { 0 };
	char *worker, steps[32], locator[128], *end;
	char *wargv[3];
	unsigned long n = DEFAULT_N;
	uint64_t counter, expected;
	uint32_t done = 0, seen = 0;
	mfs_segment *seg;
	int i, ch, r, left, ok = 1;

	while ((ch = getopt(argc, argv, "hn:")) != -1) {
		switch (ch) {
		case 'n':
			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || end == optarg || *end || optarg[0] == '-' ||
			    n == 0 || n > 1000000000ul) {
				fprintf(stderr, "%s: -n %s: not a step count "
				        "(1 to 1000000000)\n", prog, optarg);
				return 2;
			}
			break;
		case 'h':
			return usage(stdout);
		default:
			return usage(stderr);
		}
	}
	if (argc - optind > 1)
		return usage(stderr);
	worker = optind < argc ? strdup(argv[optind]) : default_worker(argv[0]);
	if (!worker) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	expected = (uint64_t)n * WORKERS;

	/*
	 * An anonymous segment: no name in /dev/shm, nothing to clean up if we
	 * crash.  The key is only a label ("mfshare:counter-demo" in
	 * /proc/PID/fd).  The library seals its size, so no process holding a
	 * descriptor can shrink it under the others.
	 */
	if ((r = mfs_create("counter-demo", sizeof(struct counter_data), &memfd, &seg)) != 0) {
		free(worker);
		return mfs_fail("create counter-demo", r);
	}
	/* A printable name for it: mfshare-dump and mfs_attach_locator take it. */
	if ((r = mfs_locator(seg, locator, sizeof locator)) != 0) {
		mfs_fail("locator", r);
		goto fail;
	}
	printf("%s: segment %s (%s), %zu bytes; starting %d x %s, %lu steps each\n",
	       prog, locator, mfs_native_key(seg), mfs_size(seg), WORKERS, worker, n);
	fflush(stdout); /* before the children write to the same stdout */

	/*
	 * Each child gets a new descriptor of the segment as fd MFS_CHILD_FD
	 * (3) and MFSHARE_FD=3 in its environment; the worker attaches with
	 * mfs_attach_inherited().  Our own attachment keeps the segment alive
	 * meanwhile.
	 */
	snprintf(steps, sizeof steps, "%lu", n);
	wargv[0] = worker;
	wargv[1] = steps;
	wargv[2] = NULL;
	for (i = 0; i < WORKERS; i++) {
		long pid;

		if ((r = mfs_spawn(seg, worker, wargv, NULL, -1, &pid)) != 0) {
			mfs_fail("spawn", r);
			/* Reap the ones already started before giving up. */
			while (i-- > 0)
				reap(pids[i], 1, &ok);
			goto fail;
		}
		pids[i] = (pid_t)pid;
	}

	/*
	 * Sleep in mfs_wait until a worker calls mfs_notify (each does once
	 * it is done), without polling.  Wake up now and then to notice a
	 * worker that died before notifying, so we never wait forever.
	 */
	left = WORKERS;
	while (done < WORKERS && left > 0) {
		r = mfs_wait(seg, &seen, WAIT_MS);
		if (r == MFS_E_TIMEOUT) {
			for (i = 0; i < WORKERS; i++)
				if (!ended[i] && (ended[i] = reap(pids[i], 0, &ok)))
					left--;
			continue;
		}
		if (r != 0) {
			mfs_fail("wait", r);
			ok = 0;
			break;
		}
		if (read_counters(seg, &counter, &done) != 0) {
			ok = 0;
			break;
		}
		printf("%s: %u of %d workers done\n", prog, (unsigned)done, WORKERS);
	}
	for (i = 0; i < WORKERS; i++)
		if (!ended[i])
			reap(pids[i], 1, &ok);

	if (read_counters(seg, &counter, &done) != 0)
		goto fail;
	printf("%s: counter = %llu (expected %llu): %s\n", prog,
	       (unsigned long long)counter, (unsigned long long)expected,
	       ok && counter == expected ? "OK" : "FAILED");
	ok = ok && counter == expected;

	free(worker);
	/* The last attachment and descriptor gone, the kernel frees the memfd. */
	if ((r = mfs_detach(seg)) != 0)
		return mfs_fail("detach", r);
	return ok ? 0 : 1;
fail:
	free(worker);
	mfs_detach(seg);
	return 1;
}
