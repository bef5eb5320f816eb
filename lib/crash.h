/* SPDX-License-Identifier: MIT */
/*
 * Crash points for tests: named places in the create/attach/detach/remove
 * paths and the lock where a test build (configure --enable-crash-points)
 * kills the process with SIGKILL when $MFS_CRASH_AT names the point
 * ("NAME" or "NAME:N" for the Nth time it is reached).  In normal builds
 * MFS_CRASH() is nothing at all.
 */
#ifndef MFS_CRASH_H
#define MFS_CRASH_H

/* Every point, in protocol order: tests iterate this list. */
#define MFS_CRASH_POINTS(X)                                         \
	X(create_made)        /* unnamed file made */                  \
	X(create_reserved)    /* size reserved */                      \
	X(create_header)      /* header written, state INIT */         \
	X(create_token)       /* creator's token taken, slot filled */ \
	X(create_ready)       /* state READY stored */                 \
	X(create_published)   /* linked under its name / sealed */     \
	X(attach_gate)        /* gate taken shared */                  \
	X(attach_validated)   /* header checked */                     \
	X(attach_claimed)     /* slot token taken */                   \
	X(attach_filled)      /* slot filled, count raised */          \
	X(attach_done)        /* gate released */                      \
	X(detach_gate)        /* gate taken exclusively */             \
	X(detach_cleared)     /* own slot cleared */                   \
	X(detach_counted)     /* attach_count rewritten */             \
	X(detach_dead)        /* state DEAD stored (last one) */       \
	X(detach_unlinked)    /* name removed (last one) */            \
	X(reap_gate)          /* stale segment's gate taken */         \
	X(reap_unlinked)      /* stale name removed */                 \
	X(remove_gate)        /* gate taken by mfs_remove */           \
	X(remove_unlinked)    /* name removed by mfs_remove */         \
	X(lock_taken)         /* lock word CAS done, owner not recorded */ \
	X(lock_owned)         /* owner recorded */                     \
	X(lock_takeover)      /* dead holder's lock taken over */      \
	X(unlock_cleared)     /* owner cleared, word still held */

#ifdef MFS_CRASH_POINTS_ENABLED
void mfs__crash_point(const char *name);
#define MFS_CRASH(name) mfs__crash_point(#name)
#else
#define MFS_CRASH(name) ((void)0)
#endif

#endif
