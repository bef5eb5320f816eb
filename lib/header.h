/* SPDX-License-Identifier: MIT */
/*
 * The segment header page: the on-disk format every process shares.
 * docs/FORMAT.md documents each field; the asserts below tie this struct to
 * it, and tests/check_format.c checks the document against the struct.
 */
#ifndef MFS_HEADER_H
#define MFS_HEADER_H

#include <stddef.h>
#include <stdint.h>

/* "MFSHARE1" when read as bytes on a little-endian machine; a reader of
 * the other byte order sees MFS_MAGIC_SWAPPED and refuses. */
#define MFS_MAGIC          UINT64_C(0x314552414853464d)
#define MFS_MAGIC_SWAPPED  UINT64_C(0x4d46534841524531)
#define MFS_VERSION        1u
#define MFS_HEADER_SIZE    4096u
#define MFS_SLOT_BASE      256u
#define MFS_SLOT_SIZE      16u
#define MFS_SLOTS          ((MFS_HEADER_SIZE - MFS_SLOT_BASE) / MFS_SLOT_SIZE) /* 240 */
/* Layout word: header size in bits 8-31, lock word size in bits 0-7.
 * Builds that disagree on either refuse each other's segments. */
#define MFS_LAYOUT         ((MFS_HEADER_SIZE << 8) | 4u)

/* Byte offsets locked with open-file-description locks (see FORMAT.md,
 * "Tokens").  The gate is taken shared by attachers and exclusively by
 * whoever may destroy or unlink the segment, and by a creator that has to
 * build a segment under its name (no O_TMPFILE). */
#define MFS_GATE_BYTE      0u
#define MFS_SLOT_BYTE(i)   (MFS_SLOT_BASE + (uint64_t)(i) * MFS_SLOT_SIZE)

/* The lock word: 0 free; otherwise (owner slot + 1) << 2 | state, with
 * state 1 = held, no sleeper, 2 = held, sleepers may exist.  See lock.c. */
#define MFS_LOCK_HELD      1u
#define MFS_LOCK_WAITERS   2u
#define MFS_LOCK_STATE(w)  ((w) & 3u)
#define MFS_LOCK_SLOT(w)   (((w) >> 2) - 1u)  /* huge when no slot: treat as dead */
#define MFS_LOCK_MINE(s)   (((unsigned)(s) + 1u) << 2)

/* One attacher slot.  Written only by the process holding the slot's token
 * (its slot byte's OFD write lock).  The token is the truth about
 * liveness; these fields only say who it was. */
struct mfs_slot {
	uint32_t pid;        /* 0: never used or cleanly detached */
	uint32_t tid;        /* thread that attached */
	uint64_t start;      /* process start time, clock ticks since boot */
};

/*
 * All fields are native-endian.  "W:" says who writes a field and when;
 * everything is read by anyone.  Fields marked (atomic) are only touched
 * through libatomic_ops AO_int_* operations.
 */
struct mfs_header {
	uint64_t magic;        /*   0 W: creator, before publishing */
	uint32_t version;      /*   8 W: creator */
	uint32_t layout;       /*  12 W: creator; MFS_LAYOUT */
	uint64_t data_offset;  /*  16 W: creator; page multiple >= 4096 */
	uint64_t data_size;    /*  24 W: creator; usable bytes, page multiple > 0 */
	uint64_t total_size;   /*  32 W: creator; data_offset + data_size <= file size */
	uint32_t state;        /*  40 (atomic) W: creator INIT->READY (release); last
	                                detacher READY->DEAD, under the gate */
	uint32_t creator_uid;  /*  44 W: creator */
	uint32_t creator_pid;  /*  48 W: creator */
	uint32_t slot_count;   /*  52 W: creator; MFS_SLOTS */
	uint64_t creator_start;/*  56 W: creator */
	uint32_t attach_count; /*  64 (atomic) W: attachers (+1, under the shared gate),
	                                detachers (recount, under the exclusive gate) */
	uint32_t slot_high;    /*  68 (atomic) W: attachers; slots 0..slot_high-1 used */
	uint8_t  reserved0[56];/*  72 zero */
	uint32_t lock;         /* 128 (atomic) the lock word, futex */
	uint32_t lock_waiters; /* 132 (atomic) sleepers in mfs_lock (advisory) */
	uint32_t owner_pid;    /* 136 (atomic) W: the holder after acquiring; 0 at unlock */
	uint32_t owner_tid;    /* 140 (atomic) W: likewise */
	uint8_t  reserved1[48];/* 144 zero */
	uint32_t seq;          /* 192 (atomic) change counter, futex */
	uint32_t seq_waiters;  /* 196 (atomic) sleepers in mfs_wait (advisory) */
	uint8_t  reserved2[56];/* 200 zero */
	struct mfs_slot slots[MFS_SLOTS]; /* 256 */
};

#define MFS__ASSERT(name, cond) typedef char mfs__assert_##name[(cond) ? 1 : -1]
MFS__ASSERT(size, sizeof(struct mfs_header) == MFS_HEADER_SIZE);
MFS__ASSERT(slot, sizeof(struct mfs_slot) == MFS_SLOT_SIZE);
MFS__ASSERT(magic, offsetof(struct mfs_header, magic) == 0);
MFS__ASSERT(version, offsetof(struct mfs_header, version) == 8);
MFS__ASSERT(layout, offsetof(struct mfs_header, layout) == 12);
MFS__ASSERT(data_offset, offsetof(struct mfs_header, data_offset) == 16);
MFS__ASSERT(data_size, offsetof(struct mfs_header, data_size) == 24);
MFS__ASSERT(total_size, offsetof(struct mfs_header, total_size) == 32);
MFS__ASSERT(state, offsetof(struct mfs_header, state) == 40);
MFS__ASSERT(creator_uid, offsetof(struct mfs_header, creator_uid) == 44);
MFS__ASSERT(creator_pid, offsetof(struct mfs_header, creator_pid) == 48);
MFS__ASSERT(slot_count, offsetof(struct mfs_header, slot_count) == 52);
MFS__ASSERT(creator_start, offsetof(struct mfs_header, creator_start) == 56);
MFS__ASSERT(attach_count, offsetof(struct mfs_header, attach_count) == 64);
MFS__ASSERT(slot_high, offsetof(struct mfs_header, slot_high) == 68);
MFS__ASSERT(lock, offsetof(struct mfs_header, lock) == 128);
MFS__ASSERT(lock_waiters, offsetof(struct mfs_header, lock_waiters) == 132);
MFS__ASSERT(owner_pid, offsetof(struct mfs_header, owner_pid) == 136);
MFS__ASSERT(owner_tid, offsetof(struct mfs_header, owner_tid) == 140);
MFS__ASSERT(seq, offsetof(struct mfs_header, seq) == 192);
MFS__ASSERT(seq_waiters, offsetof(struct mfs_header, seq_waiters) == 196);
MFS__ASSERT(slots, offsetof(struct mfs_header, slots) == MFS_SLOT_BASE);

/* Fill a zeroed header for a new segment (state INIT). */
void mfs__hdr_init(struct mfs_header *h, uint64_t data_offset, uint64_t data_size,
                   uint32_t uid, uint32_t pid, uint64_t start);

/* Check a private copy of a header against the file's real size.  Returns
 * 0, or MFS_E_CORRUPT with the wrong field named in @why. */
int mfs__hdr_validate(const struct mfs_header *h, uint64_t file_size,
                      char *why, size_t whylen);

#endif /* MFS_HEADER_H */
