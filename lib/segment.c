/* SPDX-License-Identifier: MIT */
/*
 * The public lifecycle: create, attach, open, attach_fd, detach, remove,
 * and the accessors.  The protocol (docs/FORMAT.md, "Protocols"):
 *
 *  - Every attachment owns a token: an OFD write lock on its slot's byte,
 *    taken through its own open file description.  The kernel drops it
 *    when the process dies, so live attachers can always be counted.
 *  - The gate (an OFD lock on byte 0) is held shared while attaching and
 *    exclusively while deciding to destroy or unlink, so a detach never
 *    destroys a segment someone is attaching, and a stale segment is
 *    reaped by exactly one process.
 *  - New segments are built unnamed and linked into place when complete.
 *
 * None of this takes the user lock.
 */
#include "internal.h"
#include "crash.h"

#include <atomic_ops.h>
#ifndef _WIN32
#include <dirent.h>
#include <pthread.h>
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define RETRY 1 /* internal: the segment is being created or the gate is busy */

/* ------------------------------------------------------------ fork */

#ifndef _WIN32
/* Every live handle, so a fork()ed child can give up its copies of our
 * open file descriptions (which hold our tokens) and mark them copied. */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static mfs_segment *reg_head;
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void fork_prepare(void) { pthread_mutex_lock(&reg_mu); }
static void fork_parent(void) { pthread_mutex_unlock(&reg_mu); }

static void fork_child(void)
{
	mfs_segment *s;
	int nfd;

	mfs__self_reset();
	for (s = reg_head; s; s = s->next) {
		if (s->copied)
			continue;
		s->copied = 1;
		/* Swap in a fresh description of the same file: the child must
		 * not keep the parent's tokens alive after the parent dies. */
		if (mfs__reopen(s->fd, 1, &nfd) == 0) {
			if (dup3(nfd, s->fd, O_CLOEXEC) < 0) {
				close(s->fd);
				s->fd = -1;
			}
			close(nfd);
		} else {
			close(s->fd);
			s->fd = -1;
		}
		/* The inherited mapping holds a reference to the parent's
		 * description too, and so its tokens: map the same pages
		 * through ours, in place. */
		if (s->fd >= 0)
			mfs__remap(s->fd, s->hdr, s->map_size,
			           (s->flags & MFS_READ_ONLY)
			           ? (int)(s->data - (unsigned char *)s->hdr) : 0);
	}
	pthread_mutex_unlock(&reg_mu);
}

static void fork_setup(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

static void reg_add(mfs_segment *s)
{
	pthread_once(&fork_once, fork_setup);
	pthread_mutex_lock(&reg_mu);
	s->next = reg_head;
	reg_head = s;
	pthread_mutex_unlock(&reg_mu);
}

static void reg_del(mfs_segment *s)
{
	mfs_segment **p;

	pthread_mutex_lock(&reg_mu);
	for (p = &reg_head; *p; p = &(*p)->next)
		if (*p == s) {
			*p = s->next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
}
#else
/* Windows has no fork(): no list of handles is needed (the wait layer
 * keeps its own list of mapped views, lib/wait-win32.c). */
static void reg_add(mfs_segment *s) { (void)s; }
static void reg_del(mfs_segment *s) { (void)s; }
#endif

/* ------------------------------------------------------------ checks */

int mfs__check_key(const char *key)
{
	size_t n;
	const char *p;

	if (!key)
		return mfs__fail(MFS_E_KEY, "key is NULL");
	n = strlen(key);
	if (n == 0)
		return mfs__fail(MFS_E_KEY, "key is empty");
	if (n > MFS_KEY_MAX)
		return mfs__fail(MFS_E_KEY, "key is %zu bytes, over %d", n, MFS_KEY_MAX);
	if (key[0] == '.')
		return mfs__fail(MFS_E_KEY, "key \"%.40s\" starts with '.'", key);
	for (p = key; *p; p++) {
		unsigned char c = (unsigned char)*p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
			return mfs__fail(MFS_E_KEY, "key has byte 0x%02x at offset %zu "
			                 "(allowed: A-Z a-z 0-9 . _ -)", c, (size_t)(p - key));
	}
	return 0;
}

int mfs__check_opts(const mfs_options *o, unsigned allowed_flags)
{
	if (!o)
		return 0;
	if (o->flags & ~allowed_flags)
		return mfs__fail(MFS_E_INVALID, "unknown flag bits 0x%x", o->flags & ~allowed_flags);
	if (o->backend < MFS_BACKEND_DEFAULT || o->backend > MFS_BACKEND_TEMPFILE)
		return mfs__fail(MFS_E_INVALID, "unknown backend %d", o->backend);
	if (o->mode & ~07777u)
		return mfs__fail(MFS_E_INVALID, "mode 0%o has bits beyond 07777", o->mode);
	return 0;
}

const struct mfs__backend *mfs__backend_of(int id)
{
#ifdef _WIN32
	switch (id) {
	case MFS_BACKEND_DEFAULT:
	case MFS_BACKEND_TEMPFILE: return &mfs__backend_tempfile;
	case MFS_BACKEND_FILE: return &mfs__backend_file;
	default: return NULL; /* SHM, RUNTIME_DIR, MEMFD: Linux only */
	}
#endif
	switch (id) {
	case MFS_BACKEND_DEFAULT:
	case MFS_BACKEND_SHM: return &mfs__backend_shm;
	case MFS_BACKEND_RUNTIME_DIR: return &mfs__backend_runtime;
	case MFS_BACKEND_FILE: return &mfs__backend_file;
	case MFS_BACKEND_MEMFD: return &mfs__backend_memfd;
	default: return NULL; /* TEMPFILE: Windows only */
	}
}

/* Options and backend for a call by key; @memfd_invalid: the contract's
 * MFS_E_INVALID for MEMFD in attach/open/inspect/remove. */
static int pick(const char *op, const mfs_options *o, int memfd_invalid,
                const struct mfs__backend **be)
{
	int id, r;

	if ((r = mfs__check_opts(o, MFS_KNOWN_FLAGS)) != 0)
		return r;
	id = o ? o->backend : 0;
	if (id == MFS_BACKEND_MEMFD && memfd_invalid)
		return mfs__fail(MFS_E_INVALID, "%s: MEMFD segments have no name; "
		                 "use mfs_attach_fd", op);
	*be = mfs__backend_of(id);
	if (!*be)
		return mfs__fail(MFS_E_NOT_SUPPORTED, "%s: backend %d is not available "
		                 "in this build", op, id);
	return 0;
}

/* ------------------------------------------------------------ liveness */

int mfs__slot_alive(const mfs_segment *seg, unsigned slot)
{
	if (slot >= MFS_SLOTS)
		return 0;
	if (slot == seg->slot)
		return 1; /* our own token: our own description cannot see it */
	return mfs__tok_held(seg->fd, MFS_SLOT_BYTE(slot), 1);
}

/*
 * A token is an exclusive lock, which needs a descriptor open for
 * writing: probing for exclusive holders only (the 1 above and below)
 * keeps a process that may only read the file from making a dead slot
 * look alive with a shared lock (which would wedge a dead holder's lock
 * and keep a stale segment from being reaped).
 */
unsigned mfs__count_live(int fd, const struct mfs_header *h, unsigned slot_high,
                         unsigned *dead)
{
	unsigned i, live = 0, d = 0;

	if (slot_high > MFS_SLOTS)
		slot_high = MFS_SLOTS;
	for (i = 0; i < slot_high; i++) {
		if (mfs__tok_held(fd, MFS_SLOT_BYTE(i), 1))
			live++;
		else if (h->slots[i].pid != 0)
			d++;
	}
	if (dead)
		*dead = d;
	return live;
}

/* Take the gate, retrying with short naps (1, 2, 4, 8 ms ...) up to @ms. */
int mfs__gate_take(int fd, int exclusive, unsigned ms)
{
	uint64_t end = mfs__now_ms() + ms;
	unsigned nap = 1;
	int r;

	mfs__gate_before(fd, exclusive);
	for (;;) {
		r = mfs__tok_try(fd, MFS_GATE_BYTE, exclusive);
		if (r != MFS_E_BUSY || mfs__now_ms() >= end)
			return r;
		mfs__sleep_ms(nap);
		if (nap < 8)
			nap *= 2;
	}
}

/* ------------------------------------------------------------ handles */

static void seg_free(mfs_segment *s)
{
	if (!s)
		return;
	mfs__unmap(s->hdr, s->map_size);
	mfs__close(s->fd);
	free(s->key);
	free(s->native);
	free(s->loc);
	free(s);
}

static char *dupstr(const char *s)
{
	char *d;

	if (!s)
		return NULL;
	d = malloc(strlen(s) + 1);
	if (d)
		strcpy(d, s);
	return d;
}

/* Record ourselves in slot @i (whose token we hold). */
static void fill_slot(struct mfs_header *h, unsigned i)
{
	const struct mfs__self *me = mfs__self();
	unsigned high;

	if (AO_int_load(AOI(&h->slots[i].pid)) == 0)
		AO_int_fetch_and_add1_full(AOI(&h->attach_count));
	/* else: a dead attacher's slot, already counted: the count stays. */
	h->slots[i].start = me->start;
	AO_int_store(AOI(&h->slots[i].tid), me->tid);
	AO_int_store_release(AOI(&h->slots[i].pid), me->pid);
	do {
		high = AO_int_load(AOI(&h->slot_high));
		if (high > i)
			break;
	} while (!AO_int_compare_and_swap_full(AOI(&h->slot_high), high, i + 1));
}

/*
 * Take a free slot: the first whose token nobody holds, skipping one that
 * the lock word names (its dead holder's lock awaits takeover, and the
 * waiters must keep seeing that holder dead).  The search starts at the
 * attach count, where the next free slot usually is when attachers come
 * and stay (creator in 0, then 1, 2, ...): one lock call instead of one
 * per attacher.  It is only a hint; every slot is tried.
 */
static int claim_slot(int fd, struct mfs_header *h, unsigned *slot)
{
	unsigned i, k, w, first = AO_int_load(AOI(&h->attach_count));
	int r;

	if (first >= MFS_SLOTS)
		first = 0;
	for (k = 0; k < MFS_SLOTS; k++) {
		i = (first + k) % MFS_SLOTS;
		r = mfs__tok_try(fd, MFS_SLOT_BYTE(i), 1);
		if (r == MFS_E_BUSY)
			continue;
		if (r != 0)
			return r;
		AO_nop_full();
		w = AO_int_load_acquire(AOI(&h->lock));
		if (w != 0 && MFS_LOCK_SLOT(w) == i) {
			mfs__tok_release(fd, MFS_SLOT_BYTE(i));
			continue;
		}
		*slot = i;
		return 0;
	}
	return mfs__fail(MFS_E_NO_RESOURCES, "all %u attacher slots are in use", MFS_SLOTS);
}

/*
 * Attach through @fd, our own open file description of a candidate
 * segment.  On success the mapping, slot and sizes are set in @seg (which
 * then owns @fd).  RETRY: being created (or the gate is briefly busy).
 */
static int attach_desc(mfs_segment *seg, int fd, const char *what, int by_name,
                       unsigned flags)
{
	struct mfs__finfo fi;
	struct mfs_header copy;
	char why[200];
	void *map;
	unsigned slot = 0, live, dead;
	int r;

	if ((r = mfs__finfo(fd, &fi)) != 0)
		return r;
	if (!fi.regular)
		return mfs__fail(MFS_E_CORRUPT, "%s: not a regular file", what);
	if ((r = mfs__may_access(&fi, 1, flags & MFS_ALLOW_FOREIGN, what)) != 0)
		return r;
	r = mfs__tok_try(fd, MFS_GATE_BYTE, 0);
	if (r == MFS_E_BUSY)
		return RETRY;
	if (r != 0)
		return r;
	MFS_CRASH(attach_gate);
	if ((r = mfs__read_header(fd, &copy, what)) != 0)
		return r;
	if (mfs__hdr_validate(&copy, fi.size, why, sizeof why) != 0)
		return mfs__fail(MFS_E_CORRUPT, "%s: %s", what, why);
	if (by_name && fi.nlink == 0)
		return mfs__fail(MFS_E_NOT_FOUND, "%s: removed", what);
	if ((flags & MFS_REQUIRE_SEALED) && !mfs__sealed(fd))
		return mfs__fail(MFS_E_PERMISSION, "%s: not sealed against resizing "
		                 "(refused: MFS_REQUIRE_SEALED)", what);
	if (copy.state == MFS_STATE_INIT)
		return mfs__fail(MFS_E_NOT_FOUND, "%s: stale: its creator (pid %u) died "
		                 "before finishing it", what, copy.creator_pid);
	if (copy.state == MFS_STATE_DEAD)
		return mfs__fail(MFS_E_NOT_FOUND, "%s: destroyed (its last attacher detached)", what);
	live = mfs__count_live(fd, &copy, copy.slot_high, &dead);
	if (live == 0) {
		/* The scan is not atomic: another attacher may have claimed a slot
		 * it had passed while the last one it would have seen died.  Only
		 * a count under the exclusive gate is exact: upgrade briefly and
		 * recount.  If the gate stays shared by others (other attachers,
		 * or a reader holding it on purpose), keep the scan's answer so
		 * a stale segment is still reported absent at once. */
		r = mfs__gate_take(fd, 1, MFS_UPGRADE_MS);
		if (r != 0 && r != MFS_E_BUSY)
			return r;
		if (r == 0)
			live = mfs__count_live(fd, &copy, copy.slot_high, &dead);
	}
	if (live == 0)
		return mfs__fail(MFS_E_NOT_FOUND, "%s: stale: all %u attachers died", what, dead);
	MFS_CRASH(attach_validated);
	if ((r = mfs__map(fd, copy.total_size,
	                  (flags & MFS_READ_ONLY) ? (int)copy.data_offset : 0, &map)) != 0)
		return r;
	if ((r = claim_slot(fd, map, &slot)) != 0) {
		mfs__unmap(map, copy.total_size);
		return r;
	}
	MFS_CRASH(attach_claimed);
	fill_slot(map, slot);
	MFS_CRASH(attach_filled);
	mfs__tok_release(fd, MFS_GATE_BYTE);
	MFS_CRASH(attach_done);
	/* Only once attached, and not under the gate (it takes time in
	 * proportion to the size). */
	if (flags & MFS_POPULATE)
		mfs__populate((unsigned char *)map + copy.data_offset, copy.data_size,
		              !(flags & MFS_READ_ONLY));
	seg->hdr = map;
	seg->map_size = copy.total_size;
	seg->data = (unsigned char *)map + copy.data_offset;
	seg->data_size = copy.data_size;
	seg->fd = fd;
	seg->slot = slot;
	seg->lockval = MFS_LOCK_MINE(slot);
	seg->flags = flags;
	seg->pid = (long)mfs__self()->pid;
	return 0;
}

static mfs_segment *seg_new(void)
{
	mfs_segment *s = calloc(1, sizeof *s);

	if (s)
		s->fd = -1;
	return s;
}

/* ------------------------------------------------------------ stale */

/*
 * The name is taken by the file behind @loc.  If that file is a stale
 * segment (all attachers dead, creator died mid-create, or destroyed but
 * not unlinked), unlink it and return RETRY; else MFS_E_EXISTS.
 */
static int reap_if_stale(const struct mfs__backend *be, const struct mfs__loc *loc)
{
	struct mfs__finfo fi;
	struct mfs_header h;
	char why[200];
	int fd, r, stale;

	r = be->open(loc, 1, &fd);
	if (r == MFS_E_NOT_FOUND)
		return RETRY; /* gone meanwhile */
	if (r != 0)
		return mfs__fail(MFS_E_EXISTS, "create %s: the name is taken", loc->path);
	r = MFS_E_EXISTS;
	if (mfs__finfo(fd, &fi) != 0 || !fi.regular ||
	    mfs__read_header(fd, &h, loc->path) != 0 ||
	    mfs__hdr_validate(&h, fi.size, why, sizeof why) != 0)
		goto out; /* not a segment: never touched */
	if (mfs__gate_take(fd, 1, MFS_GATE_WAIT_MS) != 0)
		goto out; /* being created or in use */
	MFS_CRASH(reap_gate);
	if (mfs__read_header(fd, &h, loc->path) != 0)
		goto out;
	stale = AO_int_load(AOI(&h.state)) != MFS_STATE_READY ||
	        mfs__count_live(fd, &h, h.slot_high, NULL) == 0;
	if (stale) {
		r = be->unlink_same(loc, fd);
		MFS_CRASH(reap_unlinked);
		if (r == 0)
			r = RETRY;
	}
out:
	mfs__close(fd);
	if (r == MFS_E_EXISTS)
		mfs__fail(MFS_E_EXISTS, "create %s: the name is taken", loc->path);
	return r;
}

/* ------------------------------------------------------------ create */

static int create_once(mfs_segment *seg, const struct mfs__backend *be,
                       const struct mfs__loc *loc, uint64_t data_off,
                       uint64_t data_size, unsigned mode, unsigned flags)
{
	const struct mfs__self *me = mfs__self();
	uint64_t total = data_off + data_size;
	struct mfs_header *h;
	void *map = NULL;
	int fd = -1, named = 0, r;

	if ((r = be->make(loc, mode, &fd, &named)) != 0)
		return r == MFS_E_EXISTS ? reap_if_stale(be, loc) : r;
	MFS_CRASH(create_made);
	if ((r = mfs__reserve(fd, total)) != 0)
		goto fail;
	MFS_CRASH(create_reserved);
	if ((r = mfs__map(fd, total, (flags & MFS_READ_ONLY) ? (int)data_off : 0,
	                  &map)) != 0)
		goto fail;
	if (flags & MFS_POPULATE)
		mfs__populate((unsigned char *)map + data_off, data_size,
		              !(flags & MFS_READ_ONLY));
	h = map;
	mfs__hdr_init(h, data_off, data_size, (uint32_t)geteuid(), me->pid, me->start);
	MFS_CRASH(create_header);
	if ((r = mfs__tok_try(fd, MFS_SLOT_BYTE(0), 1)) != 0) {
		r = mfs__fail(MFS_E_UNKNOWN, "%s: cannot take the creator's token", loc->path);
		goto fail;
	}
	fill_slot(h, 0);
	MFS_CRASH(create_token);
	AO_int_store_release(AOI(&h->state), MFS_STATE_READY);
	MFS_CRASH(create_ready);
	if (be->seal && (r = be->seal(fd)) != 0)
		goto fail;
	if (named) {
		mfs__tok_release(fd, MFS_GATE_BYTE);
	} else if (be->publish && (r = be->publish(loc, fd)) != 0) {
		if (r == MFS_E_EXISTS)
			r = reap_if_stale(be, loc);
		goto fail;
	}
	MFS_CRASH(create_published);
	seg->hdr = h;
	seg->map_size = total;
	seg->data = (unsigned char *)map + data_off;
	seg->data_size = data_size;
	seg->fd = fd;
	seg->slot = 0;
	seg->lockval = MFS_LOCK_MINE(0);
	seg->flags = flags;
	seg->pid = (long)mfs__self()->pid;
	seg->named = be->publish != NULL;
	return 0;
fail:
	if (named)
		be->unlink_same(loc, fd);
	mfs__unmap(map, total);
	mfs__close(fd);
	return r;
}

MFS_EXTERN int mfs_create(const char *key, size_t size, const mfs_options *opts,
                          mfs_segment **out)
{
	const struct mfs__backend *be;
	uint64_t page, data_off, data_size;
	unsigned mode;
	mfs_segment *seg;
	int r, tries;

	if (out)
		*out = NULL;
	if (!out)
		return mfs__fail(MFS_E_INVALID, "mfs_create: out is NULL");
	if ((r = pick("mfs_create", opts, 0, &be)) != 0)
		return r;
	if ((key || be != &mfs__backend_memfd) && (r = mfs__check_key(key)) != 0)
		return r; /* a memfd's key is only a label, and optional */
	page = mfs__page_size();
	data_off = page > MFS_HEADER_SIZE ? page : MFS_HEADER_SIZE;
	if (size == 0)
		return mfs__fail(MFS_E_INVALID_SIZE, "mfs_create %s: size 0", key ? key : "(memfd)");
	/* The data is rounded to data_off's granule (a page, at least 4096
	 * bytes): refuse exactly the sizes whose rounded total passes INT64_MAX. */
	if ((uint64_t)size > ((uint64_t)INT64_MAX - data_off) / data_off * data_off)
		return mfs__fail(MFS_E_INVALID_SIZE, "mfs_create %s: size %zu with the "
		                 "header exceeds INT64_MAX", key ? key : "(memfd)", size);
	data_size = ((uint64_t)size + page - 1) / page * page;
	if (data_size % MFS_HEADER_SIZE)
		data_size = (data_size + MFS_HEADER_SIZE - 1) / MFS_HEADER_SIZE * MFS_HEADER_SIZE;
	mode = opts && opts->mode ? opts->mode : 0600;

	seg = seg_new();
	if (!seg || !(seg->loc = malloc(sizeof *seg->loc))) {
		free(seg);
		return mfs__fail(MFS_E_NO_RESOURCES, "mfs_create: out of memory");
	}
	if ((r = be->locate(key, opts, 1, seg->loc)) != 0)
		goto fail;
	for (tries = 0; tries < 16; tries++) {
		r = create_once(seg, be, seg->loc, data_off, data_size, mode,
		                opts ? opts->flags : 0);
		if (r != RETRY)
			break;
	}
	if (r == RETRY)
		r = mfs__fail(MFS_E_EXISTS, "create %s: the name kept being taken", seg->loc->path);
	if (r != 0)
		goto fail;
	seg->be = be;
	seg->key = dupstr(key);
	seg->native = dupstr(seg->loc->path);
	if ((key && !seg->key) || !seg->native) {
		mfs_detach(seg);
		return mfs__fail(MFS_E_NO_RESOURCES, "mfs_create: out of memory");
	}
	reg_add(seg);
	*out = seg;
	return 0;
fail:
	seg_free(seg);
	return r;
}

/* ------------------------------------------------------------ attach */

MFS_EXTERN int mfs_attach(const char *key, const mfs_options *opts, mfs_segment **out)
{
	const struct mfs__backend *be;
	mfs_segment *seg;
	uint64_t end;
	int r, fd;

	if (out)
		*out = NULL;
	if (!out)
		return mfs__fail(MFS_E_INVALID, "mfs_attach: out is NULL");
	if ((r = pick("mfs_attach", opts, 1, &be)) != 0)
		return r;
	if ((r = mfs__check_key(key)) != 0)
		return r;
	seg = seg_new();
	if (!seg || !(seg->loc = malloc(sizeof *seg->loc))) {
		free(seg);
		return mfs__fail(MFS_E_NO_RESOURCES, "mfs_attach: out of memory");
	}
	if ((r = be->locate(key, opts, 0, seg->loc)) != 0)
		goto fail;
	end = mfs__now_ms() + MFS_ATTACH_WAIT_MS;
	for (;;) {
		if ((r = be->open(seg->loc, 1, &fd)) != 0)
			goto fail;
		r = attach_desc(seg, fd, seg->loc->path, 1, opts ? opts->flags : 0);
		if (r == 0)
			break;
		mfs__close(fd);
		if (r != RETRY)
			goto fail;
		if (mfs__now_ms() >= end) {
			r = mfs__fail(MFS_E_TIMEOUT, "mfs_attach %s: still being created "
			              "after %d ms", seg->loc->path, MFS_ATTACH_WAIT_MS);
			goto fail;
		}
		mfs__sleep_ms(2);
	}
	seg->be = be;
	seg->named = 1;
	seg->key = dupstr(key);
	seg->native = dupstr(seg->loc->path);
	if (!seg->key || !seg->native) {
		mfs_detach(seg);
		return mfs__fail(MFS_E_NO_RESOURCES, "mfs_attach: out of memory");
	}
	reg_add(seg);
	*out = seg;
	return 0;
fail:
	seg_free(seg);
	return r;
}

MFS_EXTERN int mfs_open(const char *key, size_t size, const mfs_options *opts,
                        mfs_segment **out, int *created)
{
	const struct mfs__backend *be;
	uint64_t end = mfs__now_ms() + MFS_ATTACH_WAIT_MS;
	int r, i;

	if (created)
		*created = 0;
	if (out)
		*out = NULL;
	if (!out)
		return mfs__fail(MFS_E_INVALID, "mfs_open: out is NULL");
	if ((r = pick("mfs_open", opts, 1, &be)) != 0)
		return r;
	if ((r = mfs__check_key(key)) != 0)
		return r;
	for (i = 0; i < 64; i++) {
		r = mfs_attach(key, opts, out);
		if (r != MFS_E_NOT_FOUND)
			return r;
		if (size == 0)
			return mfs__fail(MFS_E_INVALID_SIZE, "mfs_open %s: no segment, "
			                 "and size 0 cannot create one", key);
		r = mfs_create(key, size, opts, out);
		if (r == 0) {
			if (created)
				*created = 1;
			return 0;
		}
		if (r != MFS_E_EXISTS)
			return r;
		/* Stale to attach, taken to create: a stale segment whose gate
		 * somebody holds (each round waits 1 s for it).  Bounded like
		 * attach. */
		if (mfs__now_ms() >= end)
			return mfs__fail(MFS_E_TIMEOUT, "mfs_open %s: the name stayed taken "
			                 "by a stale segment that could not be reaped for %d ms",
			                 key, MFS_ATTACH_WAIT_MS);
	}
	return mfs__fail(MFS_E_UNKNOWN, "mfs_open %s: the name kept changing under us", key);
}

#ifdef _WIN32
#define name_of_fd mfs__win_name_of_fd
#else
/*
 * A segment built unnamed (O_TMPFILE) and then linked into place: every
 * descriptor reopened from its creator's still reads "DIR/#INO (deleted)"
 * in /proc.  If the file has a link, put its name in DIR into @path (the
 * same file: same device and inode); 0 when found.
 */
static int linked_name(int fd, char *path, size_t len)
{
	char dir[4096];
	struct stat st, est;
	struct dirent *e;
	char *slash, *d;
	DIR *dp;
	int found = -1;

	d = strstr(path, " (deleted)");
	slash = strrchr(path, '/');
	if (!d || d[10] != '\0' || !slash || slash[1] != '#' || fstat(fd, &st) < 0 ||
	    st.st_nlink == 0 || (size_t)(slash - path) >= sizeof dir)
		return -1;
	memcpy(dir, path, (size_t)(slash - path));
	dir[slash - path] = '\0';
	if (!(dp = opendir(dir[0] ? dir : "/")))
		return -1;
	while ((e = readdir(dp)))
		if (e->d_ino == st.st_ino &&
		    fstatat(dirfd(dp), e->d_name, &est, AT_SYMLINK_NOFOLLOW) == 0 &&
		    S_ISREG(est.st_mode) && est.st_dev == st.st_dev && est.st_ino == st.st_ino &&
		    (size_t)snprintf(path, len, "%s/%s", dir, e->d_name) < len) {
			found = 0;
			break;
		}
	closedir(dp);
	return found;
}

/* What a received descriptor names, if it still has a name: the path
 * (and a key when the path is one of our backends' layouts). */
static void name_of_fd(mfs_segment *seg, int fd)
{
	char proc[64], path[4096];
	const char *base;
	ssize_t n;

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	n = readlink(proc, path, sizeof path - 1);
	if (n <= 0)
		return;
	path[n] = '\0';
	if (strncmp(path, "/memfd:", 7) == 0) {
		/* "/memfd:mfshare:KEY (deleted)": native "memfd:mfshare:KEY" */
		char *d = strstr(path, " (deleted)");
		if (d)
			*d = '\0';
		seg->native = dupstr(path + 1);
		if (strncmp(path + 7, "mfshare:", 8) == 0 && mfs__check_key(path + 15) == 0)
			seg->key = dupstr(path + 15);
		seg->be = &mfs__backend_memfd;
		return;
	}
	if (path[0] == '/' && strstr(path, " (deleted)")) {
		char linked[4096];

		strcpy(linked, path);
		if (linked_name(fd, linked, sizeof linked) == 0)
			strcpy(path, linked);
	}
	seg->native = dupstr(path);
	if (path[0] != '/' || strstr(path, " (deleted)"))
		return;
	base = strrchr(path, '/') + 1;
	if (!(seg->loc = malloc(sizeof *seg->loc)))
		return;
	path[base - path - 1] = '\0';
	if (mfs__loc_set(seg->loc, path[0] ? path : "/", base) != 0) {
		free(seg->loc);
		seg->loc = NULL;
		return;
	}
	seg->be = &mfs__backend_file; /* all our named backends share file ops */
	seg->named = 1;
	if (strcmp(seg->loc->dir, "/dev/shm") == 0 && strncmp(base, "mfshare.", 8) == 0)
		base += 8;
	if (mfs__check_key(base) == 0)
		seg->key = dupstr(base);
}
#endif

MFS_EXTERN int mfs_attach_fd(int fd, const mfs_options *opts, mfs_segment **out)
{
	struct mfs__finfo fi;
	mfs_segment *seg;
	char what[64];
	uint64_t end;
	int r, own;

	if (out)
		*out = NULL;
	if (!out)
		return mfs__fail(MFS_E_INVALID, "mfs_attach_fd: out is NULL");
	if (opts && (opts->flags & ~MFS_KNOWN_FLAGS))
		return mfs__fail(MFS_E_INVALID, "unknown flag bits 0x%x",
		                 opts->flags & ~MFS_KNOWN_FLAGS);
#ifdef _WIN32
	if (fd < 0 || !mfs__win_fd_open(fd))
#else
	if (fd < 0 || fcntl(fd, F_GETFD) < 0)
#endif
		return mfs__fail(MFS_E_INVALID, "mfs_attach_fd: %d is not an open descriptor", fd);
	snprintf(what, sizeof what, "descriptor %d", fd);
	/* Never reopen what is not a regular file: opening a device or FIFO
	 * a hostile peer sent could have side effects or block. */
	if ((r = mfs__finfo(fd, &fi)) != 0)
		return r;
	if (!fi.regular)
		return mfs__fail(MFS_E_CORRUPT, "%s: not a regular file", what);
	if ((r = mfs__reopen(fd, 1, &own)) != 0)
		return r;
	if (!(seg = seg_new())) {
		mfs__close(own);
		return mfs__fail(MFS_E_NO_RESOURCES, "mfs_attach_fd: out of memory");
	}
	end = mfs__now_ms() + MFS_ATTACH_WAIT_MS;
	while ((r = attach_desc(seg, own, what, 0, opts ? opts->flags : 0)) == RETRY) {
		if (mfs__now_ms() >= end) {
			r = mfs__fail(MFS_E_TIMEOUT, "mfs_attach_fd: %s still being created", what);
			break;
		}
		mfs__sleep_ms(2);
	}
	if (r != 0) {
		mfs__close(own);
		seg_free(seg);
		return r;
	}
	name_of_fd(seg, own);
	reg_add(seg);
	*out = seg;
	return 0;
}

/* ------------------------------------------------------------ detach */

MFS_EXTERN int mfs_detach(mfs_segment *seg)
{
	struct mfs_header *h;
	unsigned live, high, i;
	int rc = 0;

	if (!seg)
		return 0;
	reg_del(seg);
	if (seg->copied || seg->pid != (long)getpid() || seg->fd < 0) {
		seg_free(seg); /* a fork() copy: not an attachment of ours */
		return 0;
	}
	mfs__unlock_if_mine(seg);
	h = seg->hdr;
	if (mfs__gate_take(seg->fd, 1, MFS_GATE_WAIT_MS) == 0) {
		MFS_CRASH(detach_gate);
		AO_int_store(AOI(&h->slots[seg->slot].pid), 0);
		MFS_CRASH(detach_cleared);
		high = AO_int_load(AOI(&h->slot_high));
		/* Our own slot is not probed: our description cannot see its own
		 * token, and we are leaving anyway. */
		live = 0;
		for (i = 0; i < high && i < MFS_SLOTS; i++)
			if (i != seg->slot && mfs__tok_held(seg->fd, MFS_SLOT_BYTE(i), 1))
				live++;
		AO_int_store(AOI(&h->attach_count), live);
		MFS_CRASH(detach_counted);
		if (live == 0) {
			AO_int_store_release(AOI(&h->state), MFS_STATE_DEAD);
			MFS_CRASH(detach_dead);
			if (seg->named && seg->loc)
				rc = seg->be->unlink_same(seg->loc, seg->fd);
			MFS_CRASH(detach_unlinked);
			if (rc != 0)
				rc = MFS_E_UNKNOWN;
		}
	} else {
		/* Someone holds the gate past all reason (a stopped or hostile
		 * process): leave quietly; our token goes with our descriptor and
		 * a later create reaps the segment if it is stale. */
		AO_int_store(AOI(&h->slots[seg->slot].pid), 0);
		AO_int_fetch_and_sub1(AOI(&h->attach_count));
	}
	seg_free(seg); /* closing our description drops the gate and our token */
	return rc;
}

/* ------------------------------------------------------------ remove */

/*
 * Remove the name at @loc: always (mfs_remove), or only when the segment
 * is stale (@only_stale: mfs_reap; a live one gives MFS_E_BUSY).  The
 * decision and the unlink happen under the exclusive gate, so a segment
 * cannot come to life between them.  @policy: apply attach's ownership
 * policy (mfs_remove); a reap only needs what the kernel allows.
 */
static int remove_at(const struct mfs__backend *be, const struct mfs__loc *loc,
                     int policy, int foreign, int only_stale)
{
	struct mfs__finfo fi;
	struct mfs_header h;
	char why[200];
	int r, fd = -1, stale;

	if ((r = be->open(loc, 1, &fd)) != 0)
		return r;
	if ((r = mfs__finfo(fd, &fi)) != 0)
		goto out;
	if (!fi.regular) {
		r = mfs__fail(MFS_E_CORRUPT, "%s: not a regular file", loc->path);
		goto out;
	}
	if (policy && (r = mfs__may_access(&fi, 1, foreign, loc->path)) != 0)
		goto out; /* the same policy as attach: the creator's mode decides */
	if ((r = mfs__read_header(fd, &h, loc->path)) != 0)
		goto out;
	if (mfs__hdr_validate(&h, fi.size, why, sizeof why) != 0) {
		r = mfs__fail(MFS_E_CORRUPT, "%s: %s", loc->path, why);
		goto out;
	}
	if (mfs__gate_take(fd, 1, MFS_GATE_WAIT_MS) != 0) {
		r = mfs__fail(only_stale ? MFS_E_BUSY : MFS_E_TIMEOUT, "%s: the segment "
		              "stayed busy (being created or attached)", loc->path);
		goto out;
	}
	MFS_CRASH(remove_gate);
	if ((r = mfs__read_header(fd, &h, loc->path)) != 0)
		goto out;
	stale = h.state != MFS_STATE_READY ||
	        mfs__count_live(fd, &h, h.slot_high, NULL) == 0;
	if (only_stale && !stale) {
		r = mfs__fail(MFS_E_BUSY, "%s: has a live attacher; not removed", loc->path);
		goto out;
	}
	r = be->unlink_same(loc, fd);
	MFS_CRASH(remove_unlinked);
	if (r == 0 && stale && !only_stale)
		r = mfs__fail(MFS_E_NOT_FOUND, "%s: stale (no live attacher); its name "
		              "was cleaned up", loc->path);
out:
	mfs__close(fd);
	return r;
}

MFS_EXTERN int mfs_remove(const char *key, const mfs_options *opts)
{
	const struct mfs__backend *be;
	struct mfs__loc loc;
	int r;

	if ((r = pick("mfs_remove", opts, 1, &be)) != 0)
		return r;
	if ((r = mfs__check_key(key)) != 0)
		return r;
	if ((r = be->locate(key, opts, 0, &loc)) != 0)
		return r;
	return remove_at(be, &loc, 1, opts && (opts->flags & MFS_ALLOW_FOREIGN), 0);
}

MFS_EXTERN int mfs_reap(const char *key, const mfs_options *opts)
{
	const struct mfs__backend *be;
	struct mfs__loc loc;
	int r;

	if ((r = pick("mfs_reap", opts, 1, &be)) != 0)
		return r;
	if ((r = mfs__check_key(key)) != 0)
		return r;
	if ((r = be->locate(key, opts, 0, &loc)) != 0)
		return r;
	return remove_at(be, &loc, 0, 0, 1);
}

MFS_EXTERN int mfs_reap_path(const char *path)
{
	struct mfs__loc loc;
	const char *base;
	char dir[4096];
	int r;

	base = path ? strrchr(path, '/') : NULL;
#ifdef _WIN32
	if (path && strrchr(path, '\\') && (!base || strrchr(path, '\\') > base))
		base = strrchr(path, '\\'); /* a Windows path: DIR\NAME */
#endif
	if (!path || !base || !base[1])
		return mfs__fail(MFS_E_INVALID, "mfs_reap_path: \"%s\" is not a path "
		                 "to a file", path ? path : "(null)");
	if ((size_t)(base - path) >= sizeof dir)
		return mfs__fail(MFS_E_INVALID, "mfs_reap_path: path too long");
	memcpy(dir, path, (size_t)(base - path));
	dir[base - path] = '\0';
	if ((r = mfs__loc_set(&loc, dir[0] ? dir : "/", base + 1)) != 0)
		return r;
	return remove_at(&mfs__backend_file, &loc, 0, 0, 1);
}

/* ------------------------------------------------------------ access */

MFS_EXTERN void *mfs_data(mfs_segment *seg)
{
	return seg ? seg->data : NULL;
}

MFS_EXTERN const void *mfs_const_data(const mfs_segment *seg)
{
	return seg ? seg->data : NULL;
}

MFS_EXTERN size_t mfs_size(const mfs_segment *seg)
{
	return seg ? (size_t)seg->data_size : 0;
}

MFS_EXTERN const char *mfs_key(const mfs_segment *seg)
{
	return seg ? seg->key : NULL;
}

MFS_EXTERN const char *mfs_native_key(const mfs_segment *seg)
{
	return seg ? seg->native : NULL;
}

MFS_EXTERN int mfs_fd(const mfs_segment *seg)
{
#ifdef _WIN32
	(void)seg;
	return -1; /* no descriptor to hand out on Windows */
#endif
	return seg ? seg->fd : -1;
}

MFS_EXTERN int mfs_native_path(const char *key, const mfs_options *opts,
                               char *buf, size_t len)
{
	const struct mfs__backend *be;
	struct mfs__loc loc;
	int r;

	if (!buf)
		return mfs__fail(MFS_E_INVALID, "mfs_native_path: buf is NULL");
	if ((r = pick("mfs_native_path", opts, 1, &be)) != 0)
		return r;
	if ((r = mfs__check_key(key)) != 0)
		return r;
	if ((r = be->locate(key, opts, 0, &loc)) != 0)
		return r;
	if (strlen(loc.path) >= len)
		return mfs__fail(MFS_E_INVALID, "mfs_native_path: buffer of %zu bytes "
		                 "too small", len);
	strcpy(buf, loc.path);
	return 0;
}
