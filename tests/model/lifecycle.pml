/* SPDX-License-Identifier: MIT */
/*
 * lifecycle.pml: mfs_open, mfs_attach, mfs_create and mfs_detach of
 * lib/segment.c on one name (docs/FORMAT.md, "Protocols": Create with
 * O_TMPFILE, Attach, Detach, Stale reaping), as a Promela model for spin.
 * tests/model/README.md explains the abstraction; tests/model/run.sh runs
 * the checks.
 *
 * The shared state is what the file system and the kernel hold:
 *
 *   name        0: absent; i: the name links inode i (one name, so an
 *               inode is linked iff name == i, and st_nlink > 0 iff so)
 *   st[i]       inode i's header state word: INIT, READY, DEAD
 *   toks[i]     inode i's slot tokens (OFD write locks): bit p set while
 *               process p holds a token on i (at most one per inode)
 *   grd[i]      inode i's gate (byte 0), shared holders: bit p
 *   gwr[i]      inode i's gate, exclusive holder: p+1, or 0
 *   fc/fn/fa[p] the inodes p has open descriptions of (cand, fresh, mine)
 *
 * A new segment is an O_TMPFILE inode, unreachable until it is linked; an
 * inode number is reused once nothing refers to it (as the kernel does),
 * so creations are unbounded.  Gate requests are non-blocking
 * (F_OFD_SETLK): the attacher retries (close, sleep, reopen); the
 * detacher and the reaper wait a bounded time: "take it once it is free,
 * or give up at any moment while it is busy".
 *
 * Each of N processes makes ROUNDS calls, each mfs_open, mfs_attach or
 * mfs_create (OPS 3) or only mfs_open (OPS 1), and once attached either
 * stays attached for good or calls mfs_detach.  The Killer kills up to
 * DEATHS processes, at any step; the kernel then drops every token and
 * gate hold of the process.  mfs_remove and the O_EXCL fallback (no
 * O_TMPFILE) are not modelled.
 *
 * Each atomic step is one system call or shared-memory access of the C
 * code with the local decisions that follow it; a gate acquisition is
 * merged with the reads it protects and a gate release with the write
 * before it (Lipton's reduction; README.md, "Reductions").
 *
 * Knobs (spin -DNAME=value): N (3), DEATHS (1), ROUNDS (1), OPS (3),
 * MAXI (inode numbers, 2N+1), MUTANT (0).
 */

#ifndef N
#define N 3
#endif
#ifndef MAXI
#define MAXI (2 * N + 1)   /* inode numbers: never all in use at once */
#endif
#ifndef DEATHS
#define DEATHS 1
#endif
#ifndef ROUNDS
#define ROUNDS 1
#endif
#ifndef OPS
#define OPS 3           /* 1: every call is mfs_open; 3: open, attach, create */
#endif
#ifndef MUTANT
#define MUTANT 0        /* 1: attach takes no gate; 2: the reaper unlinks
                           the name without comparing inodes (both must fail) */
#endif

#define INIT    0
#define READY   1
#define DEAD    2

#define BIT(p)  (1 << (p))

#define OPEN    0
#define ATTACH  1
#define CREATE  2

byte name;                  /* 0: absent, else the inode linked there */
byte st[MAXI + 1];          /* the state word of each inode */
byte toks[MAXI + 1];        /* live tokens: bit p */
byte grd[MAXI + 1];         /* gate held shared: bit p */
byte gwr[MAXI + 1];         /* gate held exclusively: p+1 */
/* Each process's open descriptions of segment files (as inode numbers):
 * cand, the name it opened (attach, reap); fresh, the file it is making;
 * mine, its attachment.  An inode number nobody references, and that the
 * name does not link, is free for the next O_TMPFILE (as in the kernel). */
byte fc[N], fn[N], fa[N];
#define REF_(p, i)  (fc[p] == i || fn[p] == i || fa[p] == i)
#if N == 2
#define FREE(i)  (name != i && !REF_(0, i) && !REF_(1, i))
#elif N == 3
#define FREE(i)  (name != i && !REF_(0, i) && !REF_(1, i) && !REF_(2, i))
#elif N == 4
#define FREE(i)  (name != i && !REF_(0, i) && !REF_(1, i) && !REF_(2, i) && !REF_(3, i))
#endif
#define cand   fc[me]
#define fresh  fn[me]
#define mine   fa[me]
byte att[N];                /* live attachment of p: its inode, from the
                               call's success until p starts to detach */
bool alive[N];
bool kill[N];
byte deaths;

/*
 * The invariant (checked in every state: ltl "inv"): a live attachment's
 * segment is READY (never DEAD) and is the one the name links (never
 * unlinked, so never reaped or replaced).  Two live attachments made by
 * mfs_open, mfs_create or mfs_attach are therefore always to the same
 * inode: two creators never both succeed while either is attached.
 */
#define OK_(p)  (!alive[p] || att[p] == 0 || (st[att[p]] == READY && name == att[p]))
#if N == 2
#define INV     (OK_(0) && OK_(1))
#elif N == 3
#define INV     (OK_(0) && OK_(1) && OK_(2))
#elif N == 4
#define INV     (OK_(0) && OK_(1) && OK_(2) && OK_(3))
#endif

/* No live attachment of another process to inode i. */
#define NOATT_(p, i)  (p == me || !alive[p] || att[p] != i)
#if N == 2
#define NOATT(i)  (NOATT_(0, i) && NOATT_(1, i))
#elif N == 3
#define NOATT(i)  (NOATT_(0, i) && NOATT_(1, i) && NOATT_(2, i))
#elif N == 4
#define NOATT(i)  (NOATT_(0, i) && NOATT_(1, i) && NOATT_(2, i) && NOATT_(3, i))
#endif

/* No live attachment of another process at all. */
#define NOLIVE_(p)  (p == me || !alive[p] || att[p] == 0)
#if N == 2
#define NOLIVE  (NOLIVE_(0) && NOLIVE_(1))
#elif N == 3
#define NOLIVE  (NOLIVE_(0) && NOLIVE_(1) && NOLIVE_(2))
#elif N == 4
#define NOLIVE  (NOLIVE_(0) && NOLIVE_(1) && NOLIVE_(2) && NOLIVE_(3))
#endif

proctype P(byte me)
{
	byte op;      /* this round's call */
	byte rounds;
	bool nl;      /* unlink_same: the name still links our inode */
	byte q;       /* scratch */

	{
	alive[me] = 1;
round:
	if
	:: rounds == ROUNDS -> goto end_done
	:: else -> rounds++
	fi;
	if
	:: op = OPEN
#if OPS == 3
	:: op = ATTACH
	:: op = CREATE
#endif
	fi;
	if
	:: op == CREATE -> goto create
	:: else -> skip
	fi;

	/* ================================================ attach_desc */
attach:
	atomic {                                   /* open(path); fstat */
		if
		:: name == 0 -> goto not_found
		:: else -> cand = name
		fi
	}
	/* gate shared (F_OFD_SETLK); pread the header, validate, count_live.
	 * One step: see "Reductions" in README.md. */
	atomic {
#if MUTANT != 1
		if
		:: gwr[cand] != 0 ->               /* busy: RETRY (close, reopen) */
			cand = 0; goto attach
		:: else -> skip
		fi;
#endif
		if
		:: st[cand] != READY ||            /* INIT or DEAD */
		   (toks[cand] & ~BIT(me)) == 0 -> /* stale: all attachers died */
			cand = 0; goto not_found   /* (close drops the gate) */
#if MUTANT != 1
		:: else -> grd[cand] = grd[cand] | BIT(me)
#else
		:: else -> skip
#endif
		fi
	}
	atomic { toks[cand] = toks[cand] | BIT(me) } /* claim_slot: our token */
	atomic {                                   /* fill_slot; release the gate */
		grd[cand] = grd[cand] & ~BIT(me);
		/* an attach never succeeds on a DEAD, stale or reaped inode */
		assert(st[cand] == READY && name == cand);
		mine = cand; att[me] = cand; cand = 0;
		goto attached
	}
not_found:
	if
	:: op == OPEN -> goto create               /* mfs_open: NOT_FOUND -> create */
	:: else -> goto round                      /* mfs_attach fails */
	fi;

	/* ================================================ create_once */
create:
	/* open(dir, O_TMPFILE), header, slot 0's token, state READY: all on
	 * a file nobody else can reach yet, so one step */
	atomic {
		q = 1;
		do
		:: q <= MAXI && !FREE(q) -> q++
		:: else -> break
		od;
		assert(q <= MAXI);                 /* enough inode numbers */
		fresh = q; q = 0;
		toks[fresh] = BIT(me); st[fresh] = READY
	}
	atomic {                                   /* linkat into place */
		if
		:: name == 0 ->
			assert(NOLIVE);            /* never two creators */
			name = fresh; mine = fresh; att[me] = fresh; fresh = 0;
			goto attached
		:: else ->                         /* EEXIST */
			/* The C code closes the unnamed file after
			 * reap_if_stale; nobody else can reach it, so
			 * closing it now changes nothing. */
			toks[fresh] = 0; fresh = 0
		fi
	}

	/* ================================================ reap_if_stale */
	atomic {                                   /* open the name; validate */
		if
		:: name == 0 -> goto create        /* gone meanwhile: RETRY */
		:: else -> cand = name
		fi
	}
	/* gate exclusive (up to 1 s), re-read the header, stale? */
	if
	:: atomic { gwr[cand] == 0 && grd[cand] == 0 ->
		if
		:: st[cand] != READY || toks[cand] == 0 -> gwr[cand] = me + 1
		:: else -> cand = 0; goto exists   /* in use: close */
		fi }
	:: atomic { gwr[cand] != 0 || grd[cand] != 0 -> /* busy: EXISTS */
		cand = 0; goto exists }
	fi;
#if MUTANT != 2
	atomic { nl = (name == cand) }             /* unlink_same: lstat, compare */
#else
	atomic { nl = (name != 0) }                /* MUTANT: plain unlink(path) */
#endif
	atomic {                                   /* unlink; close: RETRY */
		if
		:: nl ->
			assert(name == cand);      /* never another inode's name */
			assert(toks[cand] == 0);   /* reaped only without a live token */
			assert(NOATT(cand));
			name = 0
		:: else -> skip
		fi;
		nl = 0; gwr[cand] = 0; cand = 0;
		goto create
	}
exists:
	if
	:: op == OPEN -> goto attach               /* mfs_open: EXISTS -> attach */
	:: else -> goto round                      /* mfs_create fails */
	fi;

	/* ================================================ attached */
attached:
	if
	:: goto end_done                           /* stay attached for good */
	:: skip                                    /* mfs_detach */
	fi;

	/* ================================================ mfs_detach */
	/* gate exclusive (up to 1 s); clear our slot's pid; count the other
	 * live tokens; none: state DEAD */
	if
	:: atomic { gwr[mine] == 0 && grd[mine] == 0 ->
		att[me] = 0;
		if
		:: (toks[mine] & ~BIT(me)) == 0 ->
			assert(NOATT(mine));       /* never DEAD under a live one */
			st[mine] = DEAD; gwr[mine] = me + 1
		:: else ->                         /* not the last: close */
			toks[mine] = toks[mine] & ~BIT(me); mine = 0; goto round
		fi }
	:: atomic { gwr[mine] != 0 || grd[mine] != 0 -> /* busy: clear, close */
		att[me] = 0; toks[mine] = toks[mine] & ~BIT(me); mine = 0; goto round }
	fi;
	atomic { nl = (name == mine) }             /* unlink_same: lstat, compare */
	atomic {                                   /* unlink; close */
		if
		:: nl ->
			assert(name == mine);
			assert((toks[mine] & ~BIT(me)) == 0);
			assert(NOATT(mine));
			name = 0
		:: else -> skip
		fi;
		nl = 0; gwr[mine] = 0; toks[mine] = toks[mine] & ~BIT(me); mine = 0;
		goto round
	}
end_done:
	skip
	} unless { kill[me] };

	/* ---- death: the kernel drops every token and gate hold ---- */
	atomic {
		alive[me] = 0; kill[me] = 0; att[me] = 0;
		q = 0;
		do
		:: q <= MAXI ->
			toks[q] = toks[q] & ~BIT(me);
			grd[q] = grd[q] & ~BIT(me);
			if
			:: gwr[q] == me + 1 -> gwr[q] = 0
			:: else -> skip
			fi;
			q++
		:: else -> break
		od;
		op = 0; rounds = 0; cand = 0; nl = 0; q = 0; fresh = 0; mine = 0
	}
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

ltl inv { [] INV }
