/* SPDX-License-Identifier: MIT */
/*
 * Change notification: a 32-bit change counter in the header (offset 192)
 * that is also a futex word.  mfs_notify bumps it and wakes sleepers only
 * when the header counts some; mfs_wait watches it for a few microseconds
 * (WAIT_SPINS pauses: a change that comes that soon costs neither side a
 * system call), then sleeps on it.  It never polls beyond that.
 */
#include "internal.h"

#include <atomic_ops.h>

#define WAIT_SPINS 128

MFS_EXTERN int mfs_notify(mfs_segment *seg)
{
	struct mfs_header *h;

	if (!seg)
		return mfs__fail(MFS_E_INVALID, "mfs_notify: NULL handle");
	h = seg->hdr;
	AO_int_fetch_and_add1_full(AOI(&h->seq));
	/* A sleeper counts itself before it re-reads seq and sleeps, and the
	 * add above is a full barrier: either we see its count, or it sees
	 * the new seq and does not sleep.  A dead sleeper's count only costs
	 * a needless wake. */
	if (AO_int_load_acquire(AOI(&h->seq_waiters)) != 0)
		mfs__wake(&h->seq, -1);
	return 0;
}

MFS_EXTERN int mfs_wait(mfs_segment *seg, uint32_t *seen, int timeout_ms)
{
	struct mfs_header *h;
	uint64_t end = 0, now;
	unsigned cur;
	int left = -1;

	if (!seg || !seen)
		return mfs__fail(MFS_E_INVALID, "mfs_wait: NULL argument");
	h = seg->hdr;
	if (timeout_ms != 0) {
		int i;

		for (i = 0; i < WAIT_SPINS; i++) {
			cur = AO_int_load_acquire(AOI(&h->seq));
			if (cur != *seen) {
				*seen = cur;
				return 0;
			}
			mfs__cpu_relax();
		}
	}
	if (timeout_ms >= 0)
		end = mfs__now_ms() + (uint64_t)timeout_ms;
	for (;;) {
		cur = AO_int_load_acquire(AOI(&h->seq));
		if (cur != *seen) {
			*seen = cur;
			return 0;
		}
		if (timeout_ms >= 0) {
			now = mfs__now_ms();
			if (now >= end)
				return mfs__fail(MFS_E_TIMEOUT, "mfs_wait: no change in %d ms",
				                 timeout_ms);
			left = (int)(end - now);
		}
		AO_int_fetch_and_add1_full(AOI(&h->seq_waiters));
		cur = AO_int_load_acquire(AOI(&h->seq));
		if (cur == *seen)
			mfs__wait_on(&h->seq, cur, left);
		AO_int_fetch_and_sub1_full(AOI(&h->seq_waiters));
	}
}
