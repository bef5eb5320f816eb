/* SPDX-License-Identifier: MIT */
/*
 * lock.pml: the segment lock of lib/lock.c (mfs_lock, mfs_timedlock,
 * lock_slow, takeover, mfs_unlock) and the slot rule of lib/segment.c
 * (claim_slot), as a Promela model for spin.  tests/model/README.md
 * explains the abstraction; tests/model/run.sh runs every check.
 *
 * One process per attacher slot, each looping
 *     lock -> critical section -> unlock
 * and free to stop after any unlock (QUIT).  The shared state is what the
 * kernel and the header hold:
 *
 *   word        the lock word: 0, or (slot+1)<<2 | state, state 1 or 2
 *   alive[s]    slot s's token (the OFD lock of its attachment): held
 *               while the attachment in slot s lives; the kernel drops it
 *               when the process dies
 *   ptok[s]     slot s's token held by a prober (TAKEOVER 1 only): who+1
 *   fq          the futex's wait queue (FIFO, like the kernel's plist
 *               among equal priorities); asleep[p]: p is queued
 *   wv[p]       lock_slow's `want`, the value p will CAS in (global only
 *               so that the properties can read it)
 *
 * Each atomic step of a process is one shared-memory operation of the C
 * code (a load, a CAS, a store) or one system call (F_OFD_GETLK,
 * FUTEX_WAIT, FUTEX_WAKE), together with the purely local decisions that
 * follow it.  A CAS is indivisible.  FUTEX_WAIT checks the word and
 * enqueues in one step (EAGAIN if it differs); FUTEX_WAKE(1) dequeues the
 * head.  With TIMEOUTS, a sleep may end by the 50 ms slice at any time.
 * The bounded spin is one reload (the adaptive, polite spin of lib/lock.c
 * is only loads and a CAS from 0, as the loop does); the owner record
 * (owner_pid/tid) and lock_waiters are not modelled: nothing in the
 * algorithm decides on them.
 *
 * Deaths: the Killer may kill any live process at any step (up to DEATHS
 * in all): in the slow path, holding the lock (also between the CAS and
 * the owner record), inside unlock between its load and its CAS, between
 * unlock's store of 0 and its wake, while asleep, just after being woken,
 * while holding a dead holder's token (TAKEOVER 1).  A death drops every
 * token of the process.  To the lock, a detach of a process that does not
 * hold the lock is the same as a death.  After a death a new attachment
 * may claim the dead slot (up to REATTACH times), as claim_slot does: only
 * if nobody holds its token and the lock word does not name it.
 *
 * Compile-time knobs (spin -DNAME=value):
 *   N         processes = slots (default 3)
 *   DEATHS    deaths in all (default 1)
 *   REATTACH  new attachments into a dead slot (default 1)
 *   TIMEOUTS  1: futex sleeps may time out (the probe slices); 0: never
 *   TAKEOVER  0: lock.c as written: probe the holder's token, then CAS
 *             1: the fix proposed in README.md: take the dead holder's
 *                token (F_OFD_SETLK) and hold it across the CAS
 *   UNLOCK    0: lock.c: if the word is mine|1, CAS it to 0; else (state
 *                2, or the CAS failed because a waiter set 2) store 0 and
 *                wake one: a wake only when the word says sleepers
 *             1: always store 0 and wake one (reference)
 *             2: exchange 0, wake one if the old word said 2 (musl)
 *             3: MUTANT: load, and if the word said 1 store 0 without a
 *                CAS and without a wake (a lost wake-up; must fail)
 *   RETAKE1   MUTANT when 1: after sleeping, take the lock as mine|1
 *             instead of mine|2 (Drepper's classic bug; must fail)
 *   CLAIMANY  MUTANT when 1: a new attachment may claim a dead slot that
 *             the lock word names (claim_slot without its check; the dead
 *             holder then looks alive for ever: must fail "recover")
 *   GIVEUP    1: a contender may give up (mfs_timedlock's deadline) where
 *                lock.c checks it: after announcing, before sleeping
 *             2: MUTANT: a woken contender may give up at once, before
 *                it has re-read the word (the woken one's duty to wake
 *                the next sleeper is dropped: must fail)
 *   QUIT      1: after an unlock a process may stop locking for good
 *             (so that "progress" sees a sleeper nobody will wake)
 */

#ifndef N
#define N 3
#endif
#ifndef DEATHS
#define DEATHS 1
#endif
#ifndef REATTACH
#define REATTACH 1
#endif
#ifndef TIMEOUTS
#define TIMEOUTS 1
#endif
#ifndef QUIT
#define QUIT 1
#endif
#ifndef TAKEOVER
#define TAKEOVER 0
#endif
#ifndef UNLOCK
#define UNLOCK 0
#endif
#ifndef RETAKE1
#define RETAKE1 0
#endif
#ifndef CLAIMANY
#define CLAIMANY 0
#endif
#ifndef GIVEUP
#define GIVEUP 1
#endif

#define MINE(s)   (((s) + 1) << 2)
#define SLOT(w)   (((w) >> 2) - 1)
#define STATE(w)  ((w) & 3)
#define HELD      1
#define WAITERS   2

byte word;                 /* the lock word */
bool alive[N];             /* slot s's attachment token */
byte ptok[N];              /* slot s's token held by prober p: p+1 */
bool asleep[N];            /* queued on the futex */
chan fq = [N] of { byte }; /* the futex queue */
byte wv[N];                /* lock_slow's `want`: mine|1, mine|2 once it
                              has announced a sleeper */
bool want[N];              /* inside mfs_lock (live) */
bool waking[N];            /* unlock between its store of 0 and its wake */
bool incs[N];              /* in the critical section (live) */
byte ncs;                  /* live processes in the critical section */
bool kill[N];              /* the Killer's order: die at the next step */
byte deaths;
byte reattached;
bool hdead;                /* the process that set the word has died */

#if N == 2
#define ANY(a)  (a(0) || a(1))
#elif N == 3
#define ANY(a)  (a(0) || a(1) || a(2))
#elif N == 4
#define ANY(a)  (a(0) || a(1) || a(2) || a(3))
#endif
#define WANT_(p)   want[p]
#define CARRY_(p)  (!asleep[p] && want[p] && STATE(wv[p]) == WAITERS)
#define WAKING_(p) waking[p]
#define ASLEEP_(p) asleep[p]
#define WANTANY    ANY(WANT_)
/* The lock is held by a process that has died (even if a new attachment
 * has claimed its slot since: that one is not the holder). */
#define DEADHELD   hdead
/* Nobody is left to wake the sleepers: the queue is not empty, and the
 * word does not say "sleepers" (so no unlock will wake), no unlock is
 * between its store and its wake, and no awake contender will take the
 * lock as mine|2 or announce.  Never true without deaths. */
#define LOST       (ANY(ASLEEP_) && STATE(word) != WAITERS && \
                    !ANY(CARRY_) && !ANY(WAKING_))

/* FUTEX_WAKE, 1 waiter: the head of the queue (a step of its own). */
inline futex_wake1()
{
	atomic {
		if
		:: fq?j -> asleep[j] = 0
		:: empty(fq) -> skip
		fi;
		j = 0; waking[me] = 0
	}
}

/* FUTEX_WAIT(word, w), the kernel's part: check and enqueue, atomically;
 * EAGAIN when the word differs.  Inside the caller's atomic step. */
inline futex_wait_check()
{
	if
	:: word == w -> asleep[me] = 1; fq!me
	:: else -> w = 0; goto top                 /* EAGAIN: continue */
	fi
}

/* The lock is ours (CAS 0 -> want, or a takeover): enter the critical
 * section.  Mutual exclusion: no other live process is in it. */
inline acquire()
{
	want[me] = 0; assert(ncs == 0); ncs++; incs[me] = 1; hdead = 0;
	w = 0; wv[me] = 0; spun = 0; probe = 0
}

/* mfs_timedlock gives up (MFS_E_TIMEOUT) without the lock. */
inline give_up()
{
	want[me] = 0; wv[me] = 0; w = 0; spun = 0; probe = 0
}

/* The top of mfs_lock. */
inline next_round()
{
	want[me] = 1; wv[me] = MINE(me) | HELD; spun = 0; probe = 0; w = 0
}

#if RETAKE1
#define SLEEPVAL (MINE(me) | HELD)    /* MUTANT */
#else
#define SLEEPVAL (MINE(me) | WAITERS)
#endif

/*
 * One process per slot.  Each atomic step below is one shared-memory
 * operation of the C code (or one system call) together with the purely
 * local decisions that follow it; local computation commutes with every
 * other process's steps, so merging it changes no observable behaviour.
 */
proctype P(byte me)
{
	byte w;      /* the word as last loaded */
	bool spun;   /* the bounded spin is over */
	bool probe;  /* probe the holder at the next round */
	byte j;      /* scratch */

again:
	{
	atomic { alive[me] = 1; next_round() }  /* attached (claim_slot) */
top:	/* ---- lock_slow's loop (the fast path is its first round) ---- */
	atomic {
		w = word;                                   /* load (acquire) */
		if
		:: w == 0 -> goto cas
		:: else -> skip
		fi;
		if
		:: probe -> probe = 0; goto probe_holder
		:: else -> skip
		fi;
		if
		:: !spun -> spun = 1; probe = 1; goto top   /* spin: reload */
		:: else -> goto announce
		fi
	}
cas:	atomic {                                            /* CAS 0 -> want */
		if
		:: word == 0 -> word = wv[me]; acquire(); goto cs
		:: else -> w = 0; goto top
		fi
	}
probe_holder:
#if TAKEOVER == 0
	/* holder_dead: F_OFD_GETLK on the holder's token */
	atomic {
		if
		:: SLOT(w) != me && !alive[SLOT(w)] && ptok[SLOT(w)] == 0 -> skip
		:: else -> goto announce                    /* alive */
		fi
	}
	/* takeover: CAS w -> mine|2 */
	atomic {
		if
		:: word == w ->
			assert(!alive[SLOT(w)]);            /* OWNER_DEAD: holder dead */
			word = MINE(me) | WAITERS; acquire(); goto cs
		:: else -> w = 0; goto top
		fi
	}
#else
	/* the fix: take the holder's token (F_OFD_SETLK, exclusive); it
	 * succeeds only when nobody holds it, and no attacher can claim the
	 * slot while we hold it */
	atomic {
		if
		:: SLOT(w) != me && !alive[SLOT(w)] && ptok[SLOT(w)] == 0 ->
			ptok[SLOT(w)] = me + 1
		:: else -> goto announce                    /* alive */
		fi
	}
	atomic {                                            /* CAS w -> mine|2 */
		if
		:: word == w ->
			assert(!alive[SLOT(w)]);
			word = MINE(me) | WAITERS; probe = 1
		:: else -> probe = 0
		fi
	}
	atomic {                                            /* release the token */
		ptok[SLOT(w)] = 0;
		if
		:: probe -> acquire(); goto cs              /* OWNER_DEAD */
		:: else -> w = 0; goto top
		fi
	}
#endif
announce:	/* announce a sleeper (CAS w -> w|2) unless the word says so
		 * already; from now on take the lock as mine|2 */
	atomic {
		if
		:: STATE(w) == HELD ->
			if
			:: word == w -> word = (w & 252) | WAITERS; w = word
			:: else -> w = 0; goto top
			fi
		:: else -> skip
		fi;
		wv[me] = SLEEPVAL
	}
	/* mfs_timedlock checks its deadline here, after the announce */
#if GIVEUP == 1
	if
	:: atomic { futex_wait_check() }            /* FUTEX_WAIT */
	:: atomic { give_up(); goto done }          /* MFS_E_TIMEOUT */
	fi;
#else
	atomic { futex_wait_check() }               /* FUTEX_WAIT */
#endif
	/* asleep: woken by FUTEX_WAKE, or the slice runs out */
	if
	:: atomic { !asleep[me] -> w = 0; goto top }
#if GIVEUP == 2
	:: atomic { !asleep[me] -> give_up(); goto done } /* MUTANT */
#endif
#if TIMEOUTS
	:: atomic { asleep[me] -> fq??eval(me); asleep[me] = 0;
	            probe = 1; w = 0; goto top }
#endif
	fi;

cs:	/* ---- the critical section: from acquire() to unlock's load ---- */

	/* ---- mfs_unlock (the owner record is cleared first) ---- */
#if UNLOCK == 0
	atomic {
		ncs--; incs[me] = 0;
		w = word;
		if
		:: STATE(w) == HELD -> skip
		:: else -> goto ustore
		fi
	}
	atomic {                                            /* CAS mine|1 -> 0 */
		if
		:: word == w -> word = 0; w = 0; goto done
		:: else -> skip
		fi
	}
ustore:	atomic { word = 0; w = 0; waking[me] = 1 }          /* store 0 (release) */
	futex_wake1();
#elif UNLOCK == 1
	atomic { ncs--; incs[me] = 0; word = 0; waking[me] = 1 }
	futex_wake1();
#elif UNLOCK == 2
	atomic {                                            /* exchange */
		ncs--; incs[me] = 0; w = word; word = 0;
		if
		:: STATE(w) == WAITERS -> w = 0; waking[me] = 1
		:: else -> w = 0; goto done
		fi
	}
	futex_wake1();
#elif UNLOCK == 3
	atomic {
		ncs--; incs[me] = 0;
		w = word;
		if
		:: STATE(w) == HELD -> skip
		:: else -> goto ustore
		fi
	}
	atomic { word = 0; w = 0; goto done }               /* plain store, no wake */
ustore:	atomic { word = 0; w = 0; waking[me] = 1 }
	futex_wake1();
#endif
done:	/* lock again, or (QUIT) never again */
	if
	:: atomic { next_round(); goto top }
#if QUIT
	:: atomic { want[me] = 0; goto end_idle }
#endif
	fi;
end_idle:
	false
	} unless { kill[me] };

	/* ---- death: the kernel drops every token of the process ---- */
	atomic {
		alive[me] = 0; kill[me] = 0; want[me] = 0; waking[me] = 0; wv[me] = 0;
		if
		:: word != 0 && SLOT(word) == me -> hdead = 1
		:: else -> skip
		fi;
		if
		:: incs[me] -> incs[me] = 0; ncs--
		:: else -> skip
		fi;
		if
		:: asleep[me] -> fq??eval(me); asleep[me] = 0
		:: else -> skip
		fi;
		j = 0;
		do
		:: j < N -> if :: ptok[j] == me + 1 -> ptok[j] = 0 :: else -> skip fi; j++
		:: else -> break
		od;
		j = 0; w = 0; spun = 0; probe = 0
	}
	/* ---- a new attachment may claim the dead slot (claim_slot) ---- */
	if
	:: atomic {
		reattached < REATTACH && ptok[me] == 0 &&
#if CLAIMANY
		1 ->                           /* MUTANT: ignores the word */
#else
		(word == 0 || SLOT(word) != me) ->
#endif
			reattached++; alive[me] = 1
	   };
		goto again
	:: skip
	fi
}

active proctype Killer()
{
end:
	do
	:: atomic { deaths < DEATHS && alive[0] && !kill[0] -> kill[0] = 1; deaths++ }
	:: atomic { deaths < DEATHS && alive[1] && !kill[1] -> kill[1] = 1; deaths++ }
#if N > 2
	:: atomic { deaths < DEATHS && alive[2] && !kill[2] -> kill[2] = 1; deaths++ }
#endif
#if N > 3
	:: atomic { deaths < DEATHS && alive[3] && !kill[3] -> kill[3] = 1; deaths++ }
#endif
	:: break
	od
}

init
{
	byte i;

	atomic {
		i = 0;
		do
		:: i < N -> run P(i); i++
		:: else -> break
		od
	}
}

/*
 * Temporal properties (pan -a [-f] -N name).
 *
 * nolost:   the wake-up obligation is never dropped: whenever some process
 *           sleeps on the futex, the word says "sleepers" (the unlock
 *           will wake), or an unlock is between its store and its wake,
 *           or an awake contender will take the lock as mine|2 or
 *           announce.  A safety property; holds only without deaths (a
 *           death can drop the obligation: the probe slice recovers).
 * progress: while a live process wants the lock, some live process gets
 *           it (or nobody live wants it any more: the waiters died).
 *           Processes may stop locking (QUIT), so a sleeper whose wake was
 *           lost would wait forever: with TIMEOUTS 0 this is the liveness
 *           face of "no lost wake-up".  Weak fairness (-f).
 * recover:  a lock whose holder died is taken over, unless nobody live
 *           wants it any more.  Weak fairness (-f).
 */
ltl nolost   { [] !LOST }
ltl progress { [] (WANTANY -> <> (ncs > 0 || !WANTANY)) }
ltl recover  { [] ((DEADHELD && WANTANY) -> <> (!DEADHELD || !WANTANY)) }
