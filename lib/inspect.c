/* SPDX-License-Identifier: MIT */
/*
 * Inspection without attaching: read a private copy of the header with
 * pread, probe tokens with F_OFD_GETLK, and never write, lock or count.
 */
#include "internal.h"

#include <atomic_ops.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#define RETRY 1

void mfs__fill_stat(mfs_stat *st, const struct mfs_header *h, int fd, int own_slot,
                    const struct mfs__finfo *fi)
{
	unsigned w = h->lock, dead = 0, os;

	memset(st, 0, sizeof *st);
	st->version = h->version;
	st->size = h->data_size;
	st->refcount = mfs__count_live(fd, h, h->slot_high, &dead) + (own_slot >= 0);
	/* Our own token is invisible through our own description: our slot
	 * was counted dead above, not live. */
	if (own_slot >= 0 && (unsigned)own_slot < h->slot_high &&
	    (unsigned)own_slot < MFS_SLOTS && h->slots[own_slot].pid != 0 && dead > 0)
		dead--;
	st->locked = w != 0;
	os = MFS_LOCK_SLOT(w);
	st->lock_owner = (long)h->owner_pid;
	/* Between its CAS and its owner record the holder is named only by
	 * its slot; the record is then 0, or stale: a dead holder's, when the
	 * holder took the lock over from it (and maybe died there too). */
	if (w != 0 && os < MFS_SLOTS && h->slots[os].pid != 0 &&
	    h->slots[os].pid != h->owner_pid)
		st->lock_owner = (long)h->slots[os].pid;
	if (w == 0)
		st->lock_owner = 0;
	st->seq = h->seq;
	st->state = h->state;
	st->header_size = MFS_HEADER_SIZE;
	st->data_offset = h->data_offset;
	st->file_size = fi ? fi->size : h->total_size;
	st->creator_uid = h->creator_uid;
	st->creator_pid = (long)h->creator_pid;
	st->creator_start = h->creator_start;
	st->attach_count = h->attach_count;
	st->slot_count = h->slot_count;
	st->slot_high = h->slot_high;
	st->dead_slots = dead;
	st->lock_word = w;
	st->lock_owner_tid = w && st->lock_owner == (long)h->owner_pid ? (long)h->owner_tid : 0;
	if (w == 0)
		st->lock_owner_alive = -1;
	else if (MFS_LOCK_STATE(w) == 0 || MFS_LOCK_STATE(w) == 3 || os >= MFS_SLOTS)
		st->lock_owner_alive = 0;
	else if ((int)os == own_slot)
		st->lock_owner_alive = 1;
	else
		st->lock_owner_alive = mfs__tok_held(fd, MFS_SLOT_BYTE(os), 1);
	st->lock_waiters = h->lock_waiters;
	st->seq_waiters = h->seq_waiters;
	st->uid = fi ? fi->uid : h->creator_uid;
	st->mode = fi ? fi->mode : 0;
	st->sealed = fd >= 0 && mfs__sealed(fd);
}

MFS_EXTERN int mfs_stat_segment(const mfs_segment *seg, mfs_stat *st)
{
	struct mfs_header copy;
	struct mfs__finfo fi;

	if (!seg || !st)
		return mfs__fail(MFS_E_INVALID, "mfs_stat_segment: NULL argument");
	memcpy(&copy, seg->hdr, sizeof copy);
	if (seg->fd < 0 || mfs__finfo(seg->fd, &fi) != 0) {
		mfs__fill_stat(st, &copy, seg->fd, seg->copied ? -1 : (int)seg->slot, NULL);
		return 0;
	}
	/* A fork() copy holds no token: its own slot is nobody's. */
	mfs__fill_stat(st, &copy, seg->fd, seg->copied ? -1 : (int)seg->slot, &fi);
	return 0;
}

static int inspect_fd(int fd, const char *what, int stale_ok, mfs_stat *st,
                      mfs_attacher *att, unsigned max, unsigned *natt)
{
	struct mfs__finfo fi;
	struct mfs_header h;
	char why[200];
	unsigned i, n = 0, live;
	int r;

	if ((r = mfs__finfo(fd, &fi)) != 0)
		return r;
	if (!fi.regular)
		return mfs__fail(MFS_E_CORRUPT, "%s: not a regular file", what);
	if ((r = mfs__may_access(&fi, 0, 1, what)) != 0)
		return r;
	if ((r = mfs__read_header(fd, &h, what)) != 0)
		return r;
	if (mfs__hdr_validate(&h, fi.size, why, sizeof why) != 0)
		return mfs__fail(MFS_E_CORRUPT, "%s: %s", what, why);
	live = mfs__count_live(fd, &h, h.slot_high, NULL);
	if (!stale_ok) {
		if (h.state == MFS_STATE_INIT && mfs__tok_held(fd, MFS_GATE_BYTE, 1))
			return RETRY; /* its creator is still building it */
		if (h.state == MFS_STATE_INIT)
			return mfs__fail(MFS_E_NOT_FOUND, "%s: stale: its creator (pid %u) "
			                 "died before finishing it", what, h.creator_pid);
		if (h.state == MFS_STATE_DEAD)
			return mfs__fail(MFS_E_NOT_FOUND, "%s: destroyed", what);
		if (live == 0)
			return mfs__fail(MFS_E_NOT_FOUND, "%s: stale: no live attacher", what);
	}
	if (st) {
		mfs__fill_stat(st, &h, fd, -1, &fi);
		/* fill_stat probed the tokens again: the last attacher may have
		 * gone since the count above.  Found means a live attacher. */
		if (!stale_ok && st->refcount == 0)
			return mfs__fail(MFS_E_NOT_FOUND, "%s: stale: no live attacher", what);
	}
	for (i = 0; i < h.slot_high && i < MFS_SLOTS; i++) {
		if (h.slots[i].pid == 0)
			continue;
		if (att && n < max) {
			att[n].slot = i;
			att[n].pid = (long)h.slots[i].pid;
			att[n].tid = (long)h.slots[i].tid;
			att[n].start_time = h.slots[i].start;
			att[n].alive = mfs__tok_held(fd, MFS_SLOT_BYTE(i), 1);
		}
		n++;
	}
	if (natt)
		*natt = n;
	return 0;
}

static int inspect_wait(int fd, const char *what, int stale_ok, mfs_stat *st,
                        mfs_attacher *att, unsigned max, unsigned *natt)
{
	uint64_t end = mfs__now_ms() + MFS_ATTACH_WAIT_MS;
	int r;

	while ((r = inspect_fd(fd, what, stale_ok, st, att, max, natt)) == RETRY) {
		if (mfs__now_ms() >= end)
			return mfs__fail(MFS_E_TIMEOUT, "%s: still being created after %d ms",
			                 what, MFS_ATTACH_WAIT_MS);
		mfs__sleep_ms(2);
	}
	return r;
}

MFS_EXTERN int mfs_inspect(const char *key, const mfs_options *opts, mfs_stat *st)
{
	const struct mfs__backend *be;
	struct mfs__loc loc;
	int r, fd;

	if (!st)
		return mfs__fail(MFS_E_INVALID, "mfs_inspect: st is NULL");
	if ((r = mfs__check_opts(opts, MFS_KNOWN_FLAGS)) != 0)
		return r;
	if (opts && opts->backend == MFS_BACKEND_MEMFD)
		return mfs__fail(MFS_E_INVALID, "mfs_inspect: MEMFD segments have no name");
	if (!(be = mfs__backend_of(opts ? opts->backend : 0)))
		return mfs__fail(MFS_E_NOT_SUPPORTED, "mfs_inspect: backend %d is not "
		                 "available in this build", opts->backend);
	if ((r = mfs__check_key(key)) != 0)
		return r;
	if ((r = be->locate(key, opts, 0, &loc)) != 0)
		return r;
	if ((r = be->open(&loc, 0, &fd)) != 0)
		return r;
	r = inspect_wait(fd, loc.path, 0, st, NULL, 0, NULL);
	mfs__close(fd);
	return r;
}

MFS_EXTERN int mfs_inspect_path(const char *path, int stale_ok, mfs_stat *st,
                                mfs_attacher *att, unsigned max, unsigned *natt)
{
	int r, fd;

	if (!path || (!st && !natt))
		return mfs__fail(MFS_E_INVALID, "mfs_inspect_path: NULL argument");
	/* Follows symbolic links (for /proc/PID/fd/N), but opens nothing
	 * that is not a regular file: a link to a device or FIFO is refused
	 * unopened. */
	if ((r = mfs__open_regular(path, 0, 0, &fd)) != 0)
		return r;
	r = inspect_wait(fd, path, stale_ok, st, att, max, natt);
	mfs__close(fd);
	return r;
}
