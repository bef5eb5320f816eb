/* SPDX-License-Identifier: MIT */
/*
 * The segment lock: a 32-bit word in the header (offset 128), Drepper's
 * three-state futex mutex ("Futexes Are Tricky", mutex 2) made robust by
 * naming the holder's attacher slot in the word itself.
 *
 *   word                         meaning
 *   ---------------------------  -------------------------------------------
 *   0                            free
 *   (slot+1) << 2 | 1            held by an attachment in slot, no sleeper
 *   (slot+1) << 2 | 2            held, and someone may sleep on the futex
 *   anything else                garbage: treated as held by a dead owner
 *
 * lock:    CAS 0 -> mine|1 (acquire).  One atomic, no system call.
 * unlock:  CAS mine|1 -> 0 (release).  One atomic, no system call; if the
 *          word says sleepers, store 0 (release) and wake one.
 * contended: spin politely and adaptively (below), then set state 2 and
 *          sleep on the futex, a first slice of MFS_PROBE_FIRST_MS, then
 *          slices of MFS_PROBE_MS.  After each slice that runs out (and at
 *          once in trylock) the waiter tries a shared lock on the holder's slot
 *          byte, which is granted only when the holder's token (an
 *          exclusive OFD lock, dropped by the kernel when its process dies)
 *          is gone.  Holding it (so nobody can claim that slot), it
 *          replaces the word by CAS with mine|2, then lets it go.
 *          Exactly one wins and gets MFS_E_OWNER_DEAD.
 *
 * Because the holder's slot is in the word, a holder that dies between the
 * CAS and its owner record is still identified.  A slot named by the word
 * is never handed to a new attacher (segment.c, claim_slot), so a dead
 * holder's slot cannot come back to life before the takeover.
 *
 * Beside the word, owner_pid/owner_tid (plain stores by the holder after
 * acquiring, cleared before releasing) tell which thread holds it: they
 * make relock and unlock by a non-holder answer MFS_E_LOCK, and feed stat.
 */
#include "internal.h"
#include "crash.h"

#include <atomic_ops.h>

/*
 * Spinning adapts per handle: a budget of SPINS pauses (about 5 us on a
 * 2 GHz x86, where a pause is some 60 cycles) shifted right by
 * spin_shift.  A spin that catches a hand-off lowers the shift (spin
 * more); one that finds a holder taking the lock straight back raises it
 * by two, up to no spinning at all.  A spin that runs out leaves it alone:
 * the holder may just be slow, and penalising that made hand-offs fall
 * into a no-spin, sleep-and-wake equilibrium 20x slower.  With no
 * budget left, every SPIN_PROBE-th contended call still spins briefly, so
 * a workload that changes back to hand-offs is noticed.
 */
#define SPINS      256
#define SPIN_MAX   9          /* SPINS >> SPIN_MAX == 0: no spinning */
#define SPIN_PROBE 16         /* with no budget, spin a little every 16th time */
#define POLITE     2          /* pauses between seeing the lock free and taking it */

static void spin_adjust(mfs_segment *seg, int delta)
{
	int s = (int)AO_int_load(AOI(&seg->spin_shift)) + delta;

	AO_int_store(AOI(&seg->spin_shift), (unsigned)(s < 0 ? 0 : s > SPIN_MAX ? SPIN_MAX : s));
}

static inline void set_owner(struct mfs_header *h, const struct mfs__self *me)
{
	MFS_CRASH(lock_taken);
	AO_int_store(AOI(&h->owner_pid), me->pid);
	AO_int_store(AOI(&h->owner_tid), me->tid);
	MFS_CRASH(lock_owned);
}

static int holder_dead(const mfs_segment *seg, unsigned w)
{
	if (MFS_LOCK_STATE(w) == 0 || MFS_LOCK_STATE(w) == 3)
		return 1;
	return !mfs__slot_alive(seg, MFS_LOCK_SLOT(w));
}

/*
 * Whether the calling thread holds word @w (through any handle).  The
 * owner record alone is not enough: a holder that died leaves its pid and
 * tid behind, and a process that later gets the same pid (and, being
 * single-threaded, the same tid) would take the dead lock for its own.
 * The slot the word names must also be alive.  Unlocking through the
 * handle that locked costs no system call and no call at all: the word
 * names our own slot, which is alive as long as this handle is.
 */
static inline int is_holder(const mfs_segment *seg, unsigned w, const struct mfs__self *me)
{
	const struct mfs_header *h = seg->hdr;

	if (w == 0 || AO_int_load(AOI(&h->owner_tid)) != me->tid ||
	    AO_int_load(AOI(&h->owner_pid)) != me->pid)
		return 0;
	if ((w & ~3u) == seg->lockval &&
	    (MFS_LOCK_STATE(w) == MFS_LOCK_HELD || MFS_LOCK_STATE(w) == MFS_LOCK_WAITERS))
		return 1;
	return !holder_dead(seg, w);
}

/*
 * Take @w over if its holder is dead: 1 taken over, 0 the holder lives,
 * -1 the word changed meanwhile.  We take a *shared* lock on the holder's
 * slot byte and hold it across the CAS.  It is granted exactly when no
 * exclusive token is held there (the holder is dead; a reader's shared
 * lock cannot fake life), and while we hold it no attacher can claim that
 * slot (claiming needs an exclusive lock), so the word cannot come back to
 * the same value for a new, live holder between our check and our CAS: an
 * ABA that the spin model in tests/model/lock.pml found in a probe-then-CAS
 * takeover.  A garbage word names no slot and is replaced directly.
 */
static int takeover(mfs_segment *seg, unsigned w, const struct mfs__self *me)
{
	struct mfs_header *h = seg->hdr;
	unsigned slot = MFS_LOCK_SLOT(w);
	int garbage = MFS_LOCK_STATE(w) == 0 || MFS_LOCK_STATE(w) == 3 ||
	              slot >= MFS_SLOTS;
	int got;

	if (!garbage) {
		if (slot == seg->slot)
			return 0; /* our own slot: a live thread of this process */
		if (mfs__tok_try(seg->fd, MFS_SLOT_BYTE(slot), 0) != 0)
			return 0; /* an exclusive token there: alive (or cannot tell) */
	}
	got = AO_int_fetch_compare_and_swap_acquire(AOI(&h->lock), w,
	                                            seg->lockval | MFS_LOCK_WAITERS) == w;
	if (got) {
		MFS_CRASH(lock_takeover);
		set_owner(h, me);
	}
	if (!garbage)
		mfs__tok_release(seg->fd, MFS_SLOT_BYTE(slot));
	return got ? 1 : -1;
}

/*
 * The slow path.  @timeout_ms < 0: no limit; @try: never sleep.
 */
static int lock_slow(mfs_segment *seg, int timeout_ms, int try)
{
	struct mfs_header *h = seg->hdr;
	const struct mfs__self *me = mfs__self_fast();
	uint64_t end = 0;
	unsigned w, want = seg->lockval | MFS_LOCK_HELD;
	int spins, k, probe = try, slice = MFS_PROBE_FIRST_MS;

	w = AO_int_load_acquire(AOI(&h->lock));
	if (is_holder(seg, w, me))
		return mfs__fail(MFS_E_LOCK, "lock: this thread already holds the lock "
		                 "of %s", seg->native ? seg->native : "the segment");
	if (timeout_ms >= 0)
		end = mfs__now_ms() + (uint64_t)timeout_ms;
	/*
	 * Polite spinning, before the first sleep.  Watch the word (loads
	 * only).  When it goes free, wait a moment and look again: still free
	 * means a hand-off (the holder went elsewhere: take it now, and save a
	 * sleep and a wake-up); taken back means a holder looping around a
	 * short critical section, which runs fastest alone: stealing from it
	 * would move the lock's cache line at every turn, so go to sleep and
	 * let it run.
	 */
	spins = try ? 0 : SPINS >> AO_int_load(AOI(&seg->spin_shift));
	if (!try && spins == 0 &&
	    (AO_int_fetch_and_add1(AOI(&seg->spin_skips)) & (SPIN_PROBE - 1)) == 0)
		spins = SPINS >> (SPIN_MAX - 1); /* now and then: would it pay again? */
	for (k = spins; k > 0; k--) {
		int p;

		mfs__cpu_relax();
		if (AO_int_load(AOI(&h->lock)) != 0)
			continue;
		for (p = 0; p < POLITE; p++)
			mfs__cpu_relax();
		if (AO_int_load(AOI(&h->lock)) == 0 &&
		    AO_int_fetch_compare_and_swap_acquire(AOI(&h->lock), 0, want) == 0) {
			spin_adjust(seg, -1); /* a hand-off caught: worth it */
			set_owner(h, me);
			return 0;
		}
		break; /* taken (back) at once: a barging holder */
	}
	if (spins > 0)
		spin_adjust(seg, k > 0 ? 2 : 0);
	for (;;) {
		w = AO_int_load_acquire(AOI(&h->lock));
		if (w == 0) {
			if (AO_int_fetch_compare_and_swap_acquire(AOI(&h->lock), 0, want) == 0) {
				set_owner(h, me);
				return 0;
			}
			continue;
		}
		if (probe) {
			int t = takeover(seg, w, me);

			probe = 0;
			if (t > 0)
				return mfs__fail(MFS_E_OWNER_DEAD, "lock of %s taken over "
				                 "from a dead holder (word 0x%x)",
				                 seg->native ? seg->native : "the segment", w);
			if (t < 0) {
				probe = try; /* the word moved: look again */
				continue;
			}
		}
		if (try)
			return timeout_ms == 0
			       ? mfs__fail(MFS_E_TIMEOUT, "timedlock(0): the lock is held")
			       : mfs__fail(MFS_E_BUSY, "trylock: the lock is held");
		/* Announce a sleeper, then sleep while the word stays put. */
		if (MFS_LOCK_STATE(w) == MFS_LOCK_HELD) {
			unsigned w2 = (w & ~3u) | MFS_LOCK_WAITERS;
			if (AO_int_fetch_compare_and_swap_full(AOI(&h->lock), w, w2) != w)
				continue;
			w = w2;
		}
		/* From now on take it in state 2: others may still sleep. */
		want = seg->lockval | MFS_LOCK_WAITERS;
		if (timeout_ms >= 0) {
			uint64_t now = mfs__now_ms();
			if (now >= end)
				return mfs__fail(MFS_E_TIMEOUT, "timedlock: %d ms ran out", timeout_ms);
			if (end - now < (uint64_t)slice)
				slice = (int)(end - now);
		}
		AO_int_fetch_and_add1_full(AOI(&h->lock_waiters));
		if (mfs__wait_on(&h->lock, w, slice) == MFS_E_TIMEOUT)
			probe = 1; /* a slice passed: is the holder still alive? */
		AO_int_fetch_and_sub1_full(AOI(&h->lock_waiters));
		slice = MFS_PROBE_MS;
	}
}

static int usable(const mfs_segment *seg, const char *op)
{
	if (!seg)
		return mfs__fail(MFS_E_INVALID, "%s: NULL handle", op);
	if (seg->copied)
		return mfs__fail(MFS_E_INVALID, "%s: this handle was copied by fork(); "
		                 "attach anew in the child", op);
	return 0;
}

MFS_EXTERN int mfs_lock(mfs_segment *seg)
{
	int r;

	if ((r = usable(seg, "mfs_lock")) != 0)
		return r;
	if (AO_int_fetch_compare_and_swap_acquire(AOI(&seg->hdr->lock), 0,
	                                          seg->lockval | MFS_LOCK_HELD) == 0) {
		set_owner(seg->hdr, mfs__self_fast());
		return 0;
	}
	return lock_slow(seg, -1, 0);
}

MFS_EXTERN int mfs_trylock(mfs_segment *seg)
{
	int r;

	if ((r = usable(seg, "mfs_trylock")) != 0)
		return r;
	if (AO_int_fetch_compare_and_swap_acquire(AOI(&seg->hdr->lock), 0,
	                                          seg->lockval | MFS_LOCK_HELD) == 0) {
		set_owner(seg->hdr, mfs__self_fast());
		return 0;
	}
	return lock_slow(seg, -1, 1);
}

MFS_EXTERN int mfs_timedlock(mfs_segment *seg, int timeout_ms)
{
	int r;

	if ((r = usable(seg, "mfs_timedlock")) != 0)
		return r;
	if (AO_int_fetch_compare_and_swap_acquire(AOI(&seg->hdr->lock), 0,
	                                          seg->lockval | MFS_LOCK_HELD) == 0) {
		set_owner(seg->hdr, mfs__self_fast());
		return 0;
	}
	if (timeout_ms == 0)
		return lock_slow(seg, 0, 1);
	return lock_slow(seg, timeout_ms < 0 ? -1 : timeout_ms, 0);
}

MFS_EXTERN int mfs_unlock(mfs_segment *seg)
{
	struct mfs_header *h;
	const struct mfs__self *me;
	unsigned w;
	int r;

	if ((r = usable(seg, "mfs_unlock")) != 0)
		return r;
	h = seg->hdr;
	me = mfs__self_fast();
	w = AO_int_load(AOI(&h->lock));
	if (!is_holder(seg, w, me))
		return mfs__fail(MFS_E_LOCK, "unlock: this thread does not hold the lock "
		                 "of %s", seg->native ? seg->native : "the segment");
	AO_int_store(AOI(&h->owner_tid), 0);
	AO_int_store(AOI(&h->owner_pid), 0);
	MFS_CRASH(unlock_cleared);
	if (MFS_LOCK_STATE(w) == MFS_LOCK_HELD &&
	    AO_int_fetch_compare_and_swap_release(AOI(&h->lock), w, 0) == w)
		return 0;
	/* Sleepers announced themselves (the word is now w|2 and only we may
	 * change it): release, then wake one. */
	AO_int_store_release(AOI(&h->lock), 0);
	mfs__wake(&h->lock, 1);
	return 0;
}

void mfs__unlock_if_mine(mfs_segment *seg)
{
	unsigned w = AO_int_load(AOI(&seg->hdr->lock));

	if (is_holder(seg, w, mfs__self_fast()))
		mfs_unlock(seg);
}
