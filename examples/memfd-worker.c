/* SPDX-License-Identifier: MIT */
/*
 * memfd-worker: the child side of memfd-parent.  Attaches to the segment
 * whose descriptor it inherited (mfs_attach_inherited reads MFSHARE_FD),
 * adds 1 to the shared counter STEPS times under the segment's lock, then
 * records that it is done and wakes the parent with mfs_notify.
 */
#include <mfshare.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The segment's data, as memfd-parent.c lays it out (keep the two in step). */
struct counter_data {
	uint64_t counter; /* incremented once per step by every worker */
	uint32_t done;    /* workers that have finished their steps */
};

static const char *prog = "memfd-worker";

static int mfs_fail(const char *what, int err)
{
	fprintf(stderr, "%s[%ld]: %s: %s: %s\n", prog, (long)getpid(), what,
	        mfs_strerror(err), mfs_last_error());
	return 1;
}

/*
 * Take the lock.  MFS_E_OWNER_DEAD means we DO hold it, but the previous
 * holder's process died inside its critical section: a real program would
 * check or repair the data here.  An increment is all-or-nothing, so we
 * only say so and carry on.
 */
static int lock(mfs_segment *seg)
{
	int r = mfs_lock(seg);

	if (r == MFS_E_OWNER_DEAD) {
		fprintf(stderr, "%s[%ld]: the previous lock holder died; "
		        "taking over\n", prog, (long)getpid());
		return 0;
	}
	return r;
}

/* A whole decimal number into *@n; 0, or -1 if @s is not one. */
static int parse_count(const char *s, unsigned long *n)
{
	char *end;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	*n = strtoul(s, &end, 10);
	return errno || *end ? -1 : 0;
}

int main(int argc, char **argv)
{
	struct counter_data *cd;
	mfs_segment *seg;
	unsigned long n, i;
	int r;

	if (argc != 2 || parse_count(argv[1], &n) != 0) {
		fprintf(stderr, "usage: %s STEPS  (started by memfd-parent, which "
		        "passes the segment in $%s)\n", prog, MFS_FD_ENV);
		return 2;
	}

	/* The descriptor number is in $MFSHARE_FD; the library checks that it
	 * really is a libmfshare segment before mapping it. */
	if ((r = mfs_attach_inherited(NULL, &seg)) != 0)
		return mfs_fail("attach the inherited segment", r);
	if (mfs_size(seg) < sizeof *cd) {
		fprintf(stderr, "%s: the segment is too small (%zu bytes)\n", prog,
		        mfs_size(seg));
		mfs_detach(seg);
		return 1;
	}
	cd = mfs_data(seg);

	/* A plain, non-atomic counter: the lock alone keeps the increments
	 * from being lost. */
	for (i = 0; i < n; i++) {
		if ((r = lock(seg)) != 0) {
			mfs_fail("lock", r);
			goto fail;
		}
		cd->counter++;
		if ((r = mfs_unlock(seg)) != 0) {
			mfs_fail("unlock", r);
			goto fail;
		}
	}

	if ((r = lock(seg)) != 0) {
		mfs_fail("lock", r);
		goto fail;
	}
	cd->done++;
	if ((r = mfs_unlock(seg)) != 0) {
		mfs_fail("unlock", r);
		goto fail;
	}
	/* Wake the parent, asleep in mfs_wait. */
	if ((r = mfs_notify(seg)) != 0) {
		mfs_fail("notify", r);
		goto fail;
	}
	printf("%s[%ld]: added %lu\n", prog, (long)getpid(), n);

	if ((r = mfs_detach(seg)) != 0)
		return mfs_fail("detach", r);
	return 0;
fail:
	mfs_detach(seg);
	return 1;
}
