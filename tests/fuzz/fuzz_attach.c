/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: hostile segment files.  Each input is the whole
 * content of a would-be segment, handed to attach, attach_fd, inspect,
 * inspect_path, remove and open as a FILE-backend file and as a memfd.
 * The verdict of every call is checked against an independent reading of
 * docs/FORMAT.md ("Validation"), and the input's bytes must never change.
 * In LIVE mode (a bit of the reserved byte 72) the harness holds an
 * attacher's token itself, so a valid header is a live segment: it is
 * then really attached, locked, notified and detached, and only the
 * fields the protocol writes may change, to exactly what they must be.
 * Build and run with tests/fuzz/run.sh; see tests/fuzz/README.md.
 */
#include <mfshare.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef F_SEAL_SHRINK
#  define F_ADD_SEALS   1033
#  define F_SEAL_SHRINK 0x0002
#  define F_SEAL_GROW   0x0004
#  define F_GET_SEALS   1034
#endif

#define MAX_INPUT (64u * 1024u)
#define KEY       "fuzzseg"

/* docs/FORMAT.md, "Header fields" and "Attacher table entry": byte
 * offsets, read with memcpy, so this oracle shares nothing with
 * lib/header.h but the document. */
#define HDR_SIZE       4096u
#define NSLOTS         240u
#define OFF_MAGIC      0
#define OFF_VERSION    8
#define OFF_LAYOUT     12
#define OFF_DATA_OFF   16
#define OFF_DATA_SIZE  24
#define OFF_TOTAL      32
#define OFF_STATE      40
#define OFF_CUID       44
#define OFF_CPID       48
#define OFF_SLOT_COUNT 52
#define OFF_CSTART     56
#define OFF_ATTACH     64
#define OFF_SLOT_HIGH  68
#define OFF_LOCK       128
#define OFF_LWAITERS   132
#define OFF_OWNER_PID  136
#define OFF_OWNER_TID  140
#define OFF_SEQ        192
#define OFF_SWAITERS   196
#define OFF_SLOT(i)    (256u + 16u * (unsigned)(i))
#define MAGIC          UINT64_C(0x314552414853464d)
#define LAYOUT         0x00100004u

static char dir[4096];        /* private: see LLVMFuzzerInitialize */
static char path[4352];       /* dir/KEY */
static mfs_options fopts;     /* FILE backend in dir */
static unsigned char back[MAX_INPUT + 1]; /* the file's bytes, read back */
static mfs_attacher att[NSLOTS];
static const char *stage = "";
static uint32_t my_pid, my_tid;
static uint64_t page;

/* ------------------------------------------------------------ oracle */

static uint32_t rd32(const uint8_t *p, unsigned off)
{
	uint32_t v;

	memcpy(&v, p + off, sizeof v);
	return v;
}

static uint64_t rd64(const uint8_t *p, unsigned off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof v);
	return v;
}

/* FORMAT.md "Validation", steps 2-13, in order: 1 valid, 0 corrupt. */
static int ref_valid(const uint8_t *d, size_t n)
{
	uint64_t doff, dsize;
	uint32_t lock;

	if (n < HDR_SIZE)
		return 0;
	if (rd64(d, OFF_MAGIC) != MAGIC || rd32(d, OFF_VERSION) != 1 ||
	    rd32(d, OFF_LAYOUT) != LAYOUT)
		return 0;
	doff = rd64(d, OFF_DATA_OFF);
	dsize = rd64(d, OFF_DATA_SIZE);
	if (doff < HDR_SIZE || doff % HDR_SIZE || doff % page)
		return 0;
	if (dsize == 0 || dsize % HDR_SIZE)
		return 0;
	if (dsize > (uint64_t)INT64_MAX - doff || rd64(d, OFF_TOTAL) != doff + dsize)
		return 0;
	if (rd64(d, OFF_TOTAL) > n)
		return 0;
	if (rd32(d, OFF_STATE) > 2 || rd32(d, OFF_SLOT_COUNT) != NSLOTS ||
	    rd32(d, OFF_SLOT_HIGH) > NSLOTS)
		return 0;
	lock = rd32(d, OFF_LOCK);
	if (lock != 0 && ((lock & 3u) == 0 || (uint32_t)((lock >> 2) - 1u) >= NSLOTS))
		return 0;
	return 1;
}

/* ------------------------------------------------------------ the case */

/*
 * Byte 72 (reserved0[0], which readers must ignore) picks how the harness
 * treats the input; byte 73 picks the slot j < slot_high whose token it
 * holds in LIVE mode.
 */
#define MODE_LIVE   1u /* hold slot j's token: a valid READY header is live */
#define MODE_FORGE  2u /* owner_pid/owner_tid := this thread's (a dead
                          holder whose pid and tid were reused by us) */
#define MODE_RDONLY 4u /* the by-name attach asks for MFS_READ_ONLY */

struct tcase {
	const uint8_t *d; /* the file's content: the input or its forged copy */
	size_t n;
	int valid;        /* FORMAT.md's validation passes */
	int live;         /* valid, READY, and the harness holds slot j's token */
	int forged;
	unsigned j;
	unsigned flags;   /* for the by-name attach */
};

static uint8_t forged_buf[MAX_INPUT];
static uint8_t masked[MAX_INPUT]; /* read back, the writable fields masked */

static void put32(uint8_t *p, unsigned off, uint32_t v) { memcpy(p + off, &v, sizeof v); }
static void put64(uint8_t *p, unsigned off, uint64_t v) { memcpy(p + off, &v, sizeof v); }

static void prepare(struct tcase *c, const uint8_t *d, size_t n)
{
	unsigned mode = n > 73 ? d[72] : 0, high;

	memset(c, 0, sizeof *c);
	c->d = d;
	c->n = n;
	if ((mode & MODE_FORGE) && n >= HDR_SIZE) {
		memcpy(forged_buf, d, n);
		put32(forged_buf, OFF_OWNER_PID, my_pid);
		put32(forged_buf, OFF_OWNER_TID, my_tid);
		c->d = forged_buf;
		c->forged = 1;
	}
	c->valid = ref_valid(c->d, n);
	high = c->valid ? rd32(c->d, OFF_SLOT_HIGH) : 0;
	c->live = (mode & MODE_LIVE) && high > 0 && rd32(c->d, OFF_STATE) == MFS_STATE_READY;
	c->j = high ? d[73] % high : 0;
	c->flags = (mode & MODE_RDONLY) ? MFS_READ_ONLY : 0;
}

/* What attach, inspect (stale_ok 0) and attach_fd must answer. */
static int verdict(const struct tcase *c)
{
	return !c->valid ? MFS_E_CORRUPT : !c->live ? MFS_E_NOT_FOUND : 0;
}

/* Whether the lock word names a live holder: state 1 or 2 and slot j. */
static int holder_alive(const struct tcase *c, uint32_t w)
{
	return c->live && w != 0 && (w & 3u) != 0 && (w & 3u) != 3u &&
	       ((w >> 2) - 1u) == c->j;
}

/* ------------------------------------------------------------ checks */

static void die(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "\nfuzz_attach: FINDING at %s: ", stage);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nfuzz_attach: mfs_last_error: %s\n", mfs_last_error());
	__builtin_trap();
}

static void sys_fail(const char *what)
{
	/* Not a finding of the library: the harness itself broke. */
	fprintf(stderr, "fuzz_attach: %s: %s\n", what, strerror(errno));
	abort();
}

/* @r must be @want, or @alt when @alt is not 0. */
static void want_code(int r, int want, int alt, const char *call)
{
	if (r == want || (alt && r == alt))
		return;
	die("%s returned %d (%s), expected %s%s%s", call, r, mfs_err_name(r),
	    mfs_err_name(want), alt ? " or " : "", alt ? mfs_err_name(alt) : "");
}

static void want_null(const mfs_segment *seg, const char *call)
{
	if (seg)
		die("%s failed but left *out non-NULL", call);
}

/* Read the object behind @fd into back[]; its size must still be @n. */
static void read_back(int fd, size_t n, const char *what)
{
	struct stat st;
	size_t got = 0;
	ssize_t k;

	if (fstat(fd, &st) < 0)
		sys_fail("fstat");
	if ((uint64_t)st.st_size != n)
		die("%s: size changed from %zu to %lld bytes", what, n, (long long)st.st_size);
	while (got < n + 1) {
		k = pread(fd, back + got, n + 1 - got, (off_t)got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0)
			sys_fail("pread");
		if (k == 0)
			break;
		got += (size_t)k;
	}
	if (got != n)
		die("%s: read %zu bytes of %zu", what, got, n);
}

/* The object behind @fd still holds exactly the content. */
static void same_bytes(int fd, const struct tcase *c, const char *what)
{
	read_back(fd, c->n, what);
	if (c->n && memcmp(back, c->d, c->n) != 0)
		die("%s: the file's bytes were changed", what);
}

enum name_is { NAME_SAME, NAME_GONE, NAME_OTHER };

/* What dir/KEY names now, against the witness descriptor @fd. */
static void name_check(int fd, enum name_is want, const char *what)
{
	struct stat a, b;
	int r;

	if (fstat(fd, &a) < 0)
		sys_fail("fstat");
	r = lstat(path, &b);
	if (r < 0 && errno != ENOENT)
		sys_fail("lstat");
	if (want == NAME_GONE && r == 0)
		die("%s: the name still exists", what);
	if (want != NAME_GONE && r < 0)
		die("%s: the name was removed", what);
	if (want == NAME_SAME && (a.st_ino != b.st_ino || a.st_dev != b.st_dev))
		die("%s: the file was replaced", what);
	if (want == NAME_OTHER && a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		die("%s: the stale file was not replaced", what);
}

#define EQ(field, val) do { \
	if ((uint64_t)(st->field) != (uint64_t)(val)) \
		die("%s: stat." #field " is %llu, the header says %llu", what, \
		    (unsigned long long)(st->field), (unsigned long long)(val)); \
	} while (0)

/* inspect on a valid header: every field as FORMAT.md and mfshare.h
 * define it; only slot j's token (LIVE mode) is alive.  @natt ~0u: no
 * table was asked for. */
static void stat_check(const struct tcase *c, const mfs_stat *st, int fd,
                       unsigned max, unsigned natt, const char *what)
{
	const uint8_t *d = c->d;
	uint32_t w = rd32(d, OFF_LOCK), high = rd32(d, OFF_SLOT_HIGH);
	uint32_t owner = rd32(d, OFF_OWNER_PID);
	unsigned i, used = 0, dead = 0;
	struct stat fs;
	int seals;

	if (fstat(fd, &fs) < 0)
		sys_fail("fstat");
	seals = fcntl(fd, F_GET_SEALS);
	/* The holder is named by the owner record or, between its CAS and
	 * its record (or after taking a dead holder's lock over), only by
	 * the slot in the word: either pid is an honest answer. */
	if (w != 0 && st->lock_owner != (long)owner &&
	    st->lock_owner != (long)rd32(d, OFF_SLOT((w >> 2) - 1)))
		die("%s: lock_owner %ld is neither owner_pid %u nor the word's slot's pid",
		    what, st->lock_owner, owner);
	if (w != 0 && st->lock_owner_tid != 0 && st->lock_owner_tid != (long)rd32(d, OFF_OWNER_TID))
		die("%s: lock_owner_tid %ld is not owner_tid", what, st->lock_owner_tid);
	EQ(version, rd32(d, OFF_VERSION));
	EQ(size, rd64(d, OFF_DATA_SIZE));
	EQ(refcount, c->live);
	EQ(locked, w != 0);
	if (w == 0)
		EQ(lock_owner, 0);
	EQ(seq, rd32(d, OFF_SEQ));
	EQ(state, rd32(d, OFF_STATE));
	EQ(header_size, HDR_SIZE);
	EQ(data_offset, rd64(d, OFF_DATA_OFF));
	EQ(file_size, c->n);
	EQ(creator_uid, rd32(d, OFF_CUID));
	EQ(creator_pid, rd32(d, OFF_CPID));
	EQ(creator_start, rd64(d, OFF_CSTART));
	EQ(attach_count, rd32(d, OFF_ATTACH));
	EQ(slot_count, NSLOTS);
	EQ(slot_high, high);
	EQ(lock_word, w);
	if (w == 0)
		EQ(lock_owner_tid, 0);
	if (st->lock_owner_alive != (w == 0 ? -1 : holder_alive(c, w)))
		die("%s: lock_owner_alive %d for word 0x%x", what, st->lock_owner_alive, w);
	EQ(lock_waiters, rd32(d, OFF_LWAITERS));
	EQ(seq_waiters, rd32(d, OFF_SWAITERS));
	EQ(uid, fs.st_uid);
	EQ(mode, fs.st_mode & 07777);
	EQ(sealed, seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) ==
	           (F_SEAL_SHRINK | F_SEAL_GROW));
	for (i = 0; i < high; i++) {
		uint32_t pid = rd32(d, OFF_SLOT(i));
		int alive = c->live && i == c->j;

		if (pid == 0)
			continue;
		dead += !alive;
		if (used < max) {
			const mfs_attacher *a = &att[used];

			if (a->slot != i || (uint32_t)a->pid != pid || a->pid < 0 ||
			    (uint32_t)a->tid != rd32(d, OFF_SLOT(i) + 4) || a->tid < 0 ||
			    a->start_time != rd64(d, OFF_SLOT(i) + 8) || a->alive != alive)
				die("%s: attacher row %u (slot %u) disagrees with the table",
				    what, used, i);
		}
		used++;
	}
	EQ(dead_slots, dead);
	if (natt != ~0u && natt != used)
		die("%s: natt %u, the table has %u used slots", what, natt, used);
}

/* ------------------------------------------------------------ files */

static void write_all(int fd, const uint8_t *d, size_t n)
{
	size_t done = 0;
	ssize_t k;

	while (done < n) {
		k = pwrite(fd, d + done, n - done, (off_t)done);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			sys_fail("pwrite");
		done += (size_t)k;
	}
}

/* A fresh dir/KEY holding the content; returns the witness descriptor. */
static int put_file(const struct tcase *c)
{
	int fd;

	if (unlink(path) < 0 && errno != ENOENT)
		sys_fail("unlink");
	fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		sys_fail("open");
	write_all(fd, c->d, c->n);
	return fd;
}

/* LIVE mode: a description of our own holding slot j's token, as an
 * attacher in another process would (FORMAT.md, "Tokens"). */
static int take_token(const struct tcase *c, int fd)
{
	struct flock fl;
	char proc[64];
	int t;

	if (!c->live)
		return -1;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	t = open(proc, O_RDWR | O_CLOEXEC);
	if (t < 0)
		sys_fail("open /proc/self/fd");
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)OFF_SLOT(c->j);
	fl.l_len = 1;
	if (fcntl(t, F_OFD_SETLK, &fl) < 0)
		sys_fail("F_OFD_SETLK");
	return t;
}

static void drop(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* ------------------------------------------------------------ attached */

/* The slot an attacher must claim: the first, from the attach count on
 * (0 if that is out of the table) and wrapping around, whose token is
 * free and that the lock word does not name. */
static unsigned expect_slot(const struct tcase *c)
{
	uint32_t w = rd32(c->d, OFF_LOCK), first = rd32(c->d, OFF_ATTACH);
	unsigned i, k;

	if (first >= NSLOTS)
		first = 0;
	for (k = 0; k < NSLOTS; k++) {
		i = (first + k) % NSLOTS;
		if (i != c->j && !(w != 0 && ((w >> 2) - 1u) == i))
			return i;
	}
	return NSLOTS;
}

/*
 * A successful attachment to a valid, live, hostile header: use it (lock,
 * notify, wait, stat, read), detach, then check that only the fields the
 * protocol writes changed, to exactly what they must be.  Restores the
 * content afterwards.
 */
static void session(const struct tcase *c, mfs_segment *seg, int wfd, const char *call)
{
	const uint8_t *d = c->d;
	uint32_t w = rd32(d, OFF_LOCK), seq0 = rd32(d, OFF_SEQ), seen;
	uint32_t high = rd32(d, OFF_SLOT_HIGH);
	uint64_t doff = rd64(d, OFF_DATA_OFF), dsize = rd64(d, OFF_DATA_SIZE);
	unsigned i = expect_slot(c), off;
	int want, busy;
	mfs_stat st;
	static char what[96]; /* stays valid as the stage */

	snprintf(what, sizeof what, "%s (attached)", call);
	if (high < i + 1)
		high = i + 1;
	if (!seg)
		die("%s returned 0 and a NULL handle", call);
	if (mfs_size(seg) != dsize || mfs_fd(seg) < 0 || !mfs_data(seg) ||
	    (uintptr_t)mfs_data(seg) % page != 0)
		die("%s: size %zu, fd %d, data %p", what, mfs_size(seg), mfs_fd(seg),
		    mfs_data(seg));
	if (memcmp(mfs_const_data(seg), d + doff, dsize) != 0)
		die("%s: the data is not the file's bytes at data_offset", what);
	if (mfs_stat_segment(seg, &st) != 0)
		die("%s: mfs_stat_segment failed", what);
	if (st.refcount != 2 || st.state != MFS_STATE_READY || st.lock_word != w ||
	    st.slot_high != high || st.seq != seq0 || st.size != dsize)
		die("%s: stat refcount %u state %u lock 0x%x slot_high %u seq %u", what,
		    st.refcount, st.state, st.lock_word, st.slot_high, st.seq);

	/* The lock: free, held by the live slot j, or held by a dead holder. */
	if (w == 0)
		want = 0;
	else if (holder_alive(c, w))
		want = c->forged ? MFS_E_LOCK : MFS_E_BUSY; /* forged: "we" hold it */
	else
		want = MFS_E_OWNER_DEAD;
	stage = what;
	want_code(mfs_trylock(seg), want, 0, "mfs_trylock");
	busy = want == MFS_E_BUSY;
	if (busy) {
		want_code(mfs_timedlock(seg, 0), MFS_E_TIMEOUT, 0, "mfs_timedlock(0)");
		want_code(mfs_unlock(seg), MFS_E_LOCK, 0, "mfs_unlock (not held)");
	} else {
		if (want != MFS_E_LOCK) {
			if (mfs_stat_segment(seg, &st) != 0 || !st.locked ||
			    st.lock_owner != (long)my_pid || st.lock_owner_alive != 1 ||
			    (st.lock_word & ~3u) != ((i + 1u) << 2))
				die("%s: stat after taking the lock: word 0x%x owner %ld alive %d",
				    what, st.lock_word, st.lock_owner, st.lock_owner_alive);
		}
		want_code(mfs_trylock(seg), MFS_E_LOCK, 0, "mfs_trylock (relock)");
		want_code(mfs_unlock(seg), 0, 0, "mfs_unlock");
		want_code(mfs_unlock(seg), MFS_E_LOCK, 0, "mfs_unlock (twice)");
		want_code(mfs_trylock(seg), 0, 0, "mfs_trylock (free)");
		want_code(mfs_unlock(seg), 0, 0, "mfs_unlock");
	}
	want_code(mfs_notify(seg), 0, 0, "mfs_notify");
	seen = seq0;
	want_code(mfs_wait(seg, &seen, 0), 0, 0, "mfs_wait (changed)");
	if (seen != seq0 + 1u)
		die("%s: mfs_wait saw %u after one notify from %u", what, seen, seq0);
	want_code(mfs_wait(seg, &seen, 0), MFS_E_TIMEOUT, 0, "mfs_wait (unchanged)");
	want_code(mfs_detach(seg), 0, 0, "mfs_detach");

	/* What may differ now, and how (FORMAT.md, Attach and Detach). */
	read_back(wfd, c->n, what);
	memcpy(masked, back, c->n);
	memcpy(masked + OFF_ATTACH, d + OFF_ATTACH, 8);     /* attach_count, slot_high */
	memcpy(masked + OFF_LOCK, d + OFF_LOCK, 4);
	memcpy(masked + OFF_OWNER_PID, d + OFF_OWNER_PID, 8); /* owner_pid, owner_tid */
	memcpy(masked + OFF_SEQ, d + OFF_SEQ, 4);
	memcpy(masked + OFF_SLOT(i), d + OFF_SLOT(i), 16);   /* our slot */
	if (memcmp(masked, d, c->n) != 0) {
		for (off = 0; masked[off] == d[off]; off++)
			;
		die("%s: byte %u changed (0x%02x -> 0x%02x) after detach", what,
		    off, d[off], masked[off]);
	}
	if (rd32(back, OFF_ATTACH) != 1 || rd32(back, OFF_SLOT_HIGH) != high ||
	    rd32(back, OFF_SEQ) != seq0 + 1u || rd32(back, OFF_SLOT(i)) != 0 ||
	    rd32(back, OFF_SLOT(i) + 4) != my_tid ||
	    rd32(back, OFF_LOCK) != (busy ? w : 0) ||
	    rd32(back, OFF_OWNER_PID) != (busy ? rd32(d, OFF_OWNER_PID) : 0) ||
	    rd32(back, OFF_OWNER_TID) != (busy ? rd32(d, OFF_OWNER_TID) : 0))
		die("%s: after detach: attach_count %u slot_high %u seq %u slot %u pid %u "
		    "tid %u lock 0x%x owner %u/%u", what, rd32(back, OFF_ATTACH),
		    rd32(back, OFF_SLOT_HIGH), rd32(back, OFF_SEQ), i,
		    rd32(back, OFF_SLOT(i)), rd32(back, OFF_SLOT(i) + 4),
		    rd32(back, OFF_LOCK), rd32(back, OFF_OWNER_PID), rd32(back, OFF_OWNER_TID));
	write_all(wfd, d, c->n); /* the next call sees the input again */
}

/* ------------------------------------------------------------ the calls */

/* attach_fd and inspect_path through one descriptor; @tok: the harness
 * already holds slot j's token on this object. */
static void by_fd(const struct tcase *c, int fd, int tok, int sealed, const char *what)
{
	mfs_options o = { 0 };
	mfs_segment *seg = (mfs_segment *)&o; /* must come back NULL */
	mfs_stat st;
	char proc[64];
	unsigned natt = ~0u, max;
	int r, want = verdict(c), alt;

	stage = what;
	if (tok < 0)
		tok = take_token(c, fd);
	else
		tok = -1; /* not ours to close */
	o.backend = MFS_BACKEND_SHM; /* ignored by attach_fd */
	r = mfs_attach_fd(fd, &o, &seg);
	want_code(r, want, 0, "mfs_attach_fd");
	if (r == 0)
		session(c, seg, fd, "mfs_attach_fd");
	else
		want_null(seg, "mfs_attach_fd");
	same_bytes(fd, c, "after mfs_attach_fd");

	stage = what;
	o.flags = MFS_READ_ONLY | MFS_ALLOW_FOREIGN;
	seg = (mfs_segment *)&o;
	r = mfs_attach_fd(fd, &o, &seg);
	want_code(r, want, 0, "mfs_attach_fd(READ_ONLY)");
	if (r == 0)
		session(c, seg, fd, "mfs_attach_fd(READ_ONLY)");
	else
		want_null(seg, "mfs_attach_fd(READ_ONLY)");
	same_bytes(fd, c, "after mfs_attach_fd(READ_ONLY)");

	/* Unsealed and valid: refused for the seal (PERMISSION); a stale
	 * one may be refused as stale first. */
	stage = what;
	alt = 0;
	if (c->valid && !sealed) {
		alt = want == MFS_E_NOT_FOUND ? MFS_E_PERMISSION : 0;
		want = want == MFS_E_NOT_FOUND ? MFS_E_NOT_FOUND : MFS_E_PERMISSION;
	}
	o.flags = MFS_REQUIRE_SEALED;
	seg = (mfs_segment *)&o;
	r = mfs_attach_fd(fd, &o, &seg);
	want_code(r, want, alt, "mfs_attach_fd(REQUIRE_SEALED)");
	if (r == 0)
		session(c, seg, fd, "mfs_attach_fd(REQUIRE_SEALED)");
	else
		want_null(seg, "mfs_attach_fd(REQUIRE_SEALED)");
	same_bytes(fd, c, "after mfs_attach_fd(REQUIRE_SEALED)");

	stage = what;
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	r = mfs_inspect_path(proc, 0, &st, att, NSLOTS, &natt);
	want_code(r, verdict(c), 0, "mfs_inspect_path(fd, stale_ok 0)");
	if (r == 0)
		stat_check(c, &st, fd, NSLOTS, natt, "mfs_inspect_path(fd, stale_ok 0)");

	/* A short table: natt still counts every used slot. */
	max = c->n ? c->d[c->n - 1] % 8u : 0;
	r = mfs_inspect_path(proc, 1, &st, att, max, &natt);
	want_code(r, c->valid ? 0 : MFS_E_CORRUPT, 0, "mfs_inspect_path(fd, stale_ok 1)");
	if (r == 0)
		stat_check(c, &st, fd, max, natt, "mfs_inspect_path(fd, stale_ok 1)");
	same_bytes(fd, c, "after mfs_inspect_path(fd)");
	drop(tok);
}

/* attach, inspect, remove and open by key, on dir/KEY. */
static void by_name(const struct tcase *c)
{
	mfs_options o = fopts;
	mfs_segment *seg = (mfs_segment *)&o;
	mfs_stat st;
	unsigned natt = ~0u;
	int fd, tok, r, created = -1, want = verdict(c);

	stage = "file by name";
	fd = put_file(c);
	tok = take_token(c, fd);

	r = mfs_inspect(KEY, &fopts, &st);
	want_code(r, want, 0, "mfs_inspect");
	if (r == 0)
		stat_check(c, &st, fd, 0, ~0u, "mfs_inspect");
	r = mfs_inspect_path(path, 0, NULL, NULL, 0, &natt);
	want_code(r, want, 0, "mfs_inspect_path(stale_ok 0)");
	r = mfs_inspect_path(path, 1, &st, att, NSLOTS, &natt);
	want_code(r, c->valid ? 0 : MFS_E_CORRUPT, 0, "mfs_inspect_path(stale_ok 1)");
	if (r == 0)
		stat_check(c, &st, fd, NSLOTS, natt, "mfs_inspect_path(stale_ok 1)");
	same_bytes(fd, c, "after mfs_inspect");
	name_check(fd, NAME_SAME, "after mfs_inspect");

	o.flags = c->flags;
	r = mfs_attach(KEY, &o, &seg);
	want_code(r, want, 0, "mfs_attach");
	if (r == 0)
		session(c, seg, fd, "mfs_attach");
	else
		want_null(seg, "mfs_attach");
	stage = "file by name";
	same_bytes(fd, c, "after mfs_attach");
	name_check(fd, NAME_SAME, "after mfs_attach");

	by_fd(c, fd, tok, 0, "file by descriptor");
	stage = "file by name";
	name_check(fd, NAME_SAME, "after mfs_attach_fd");

	/* remove: a segment's name goes (a stale one's with NOT_FOUND); a
	 * non-segment is left alone (CORRUPT). */
	r = mfs_remove(KEY, &fopts);
	want_code(r, c->valid ? (c->live ? 0 : MFS_E_NOT_FOUND) : MFS_E_CORRUPT, 0,
	          "mfs_remove");
	same_bytes(fd, c, "after mfs_remove");
	name_check(fd, c->valid ? NAME_GONE : NAME_SAME, "after mfs_remove");
	if (c->valid) {
		drop(tok);
		close(fd);
		fd = put_file(c);
		tok = take_token(c, fd);
	}

	/* open: a live segment is attached, a stale one replaced (the old
	 * file only unlinked, never written), a non-segment never touched. */
	seg = (mfs_segment *)&o;
	r = mfs_open(KEY, 4096, &fopts, &seg, &created);
	if (c->live) {
		want_code(r, 0, 0, "mfs_open (live)");
		if (created != 0)
			die("mfs_open attached a live segment but says created %d", created);
		session(c, seg, fd, "mfs_open");
		stage = "file by name";
		same_bytes(fd, c, "after mfs_open");
		name_check(fd, NAME_SAME, "after mfs_open");
	} else if (c->valid) {
		want_code(r, 0, 0, "mfs_open (stale)");
		if (!seg || created != 1)
			die("mfs_open over a stale segment: created %d", created);
		same_bytes(fd, c, "after mfs_open");
		name_check(fd, NAME_OTHER, "after mfs_open");
		if (mfs_size(seg) != 4096 || mfs_stat_segment(seg, &st) != 0 ||
		    st.refcount != 1 || st.state != MFS_STATE_READY)
			die("mfs_open: the new segment looks wrong");
		want_code(mfs_detach(seg), 0, 0, "mfs_detach (new segment)");
		name_check(fd, NAME_GONE, "after mfs_detach");
	} else {
		want_code(r, MFS_E_CORRUPT, 0, "mfs_open");
		want_null(seg, "mfs_open");
		if (created != 0)
			die("mfs_open failed with *created %d", created);
		same_bytes(fd, c, "after mfs_open");
		name_check(fd, NAME_SAME, "after mfs_open");
	}
	drop(tok);
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT)
		sys_fail("unlink");
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	struct tcase c;
	int fd;

	if (n > MAX_INPUT)
		return 0;
	prepare(&c, d, n);
	by_name(&c);

	fd = memfd_create("fuzz_attach", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		sys_fail("memfd_create");
	write_all(fd, c.d, c.n);
	by_fd(&c, fd, -1, 0, "memfd");
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		sys_fail("F_ADD_SEALS");
	by_fd(&c, fd, -1, 1, "sealed memfd");
	close(fd);
	return 0;
}

/* ------------------------------------------------------------ seeds */

static void seed(const char *out, const char *name, const uint8_t *d, size_t n)
{
	char p[4352];
	int fd;

	snprintf(p, sizeof p, "%s/%s", out, name);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		sys_fail(p);
	write_all(fd, d, n);
	close(fd);
}

/* The bytes of a live segment's file. */
static size_t snap(const mfs_segment *seg, uint8_t *buf, size_t max)
{
	ssize_t k = pread(mfs_fd(seg), buf, max, 0);

	if (k < 0)
		sys_fail("pread");
	return (size_t)k;
}

/*
 * MFS_FUZZ_MAKE_SEEDS=DIR: write the seed corpus into DIR and exit.  Real
 * segments are copied from live ones made by the library; the variants
 * patch one field each, per FORMAT.md.  (The committed seeds carry the
 * pids and start times of the run that made them.)
 */
static void make_seeds(const char *out)
{
	static uint8_t b[MAX_INPUT], v[MAX_INPUT], two[2 * HDR_SIZE];
	mfs_options mo = { 0 };
	mfs_segment *s0, *s1;
	size_t n, i;

#define VAR(name, ...) do { memcpy(v, b, n); __VA_ARGS__; seed(out, name, v, n); } while (0)
#define SEED(name, len) seed(out, name, v, len)

	if (mfs_create("seed", 4096, &fopts, &s0) != 0)
		die("seed: mfs_create: %s", mfs_last_error());
	n = snap(s0, b, sizeof b);
	seed(out, "ready.seg", b, n);
	if (mfs_attach("seed", &fopts, &s1) != 0 || mfs_lock(s1) != 0 ||
	    mfs_notify(s1) != 0 || mfs_notify(s1) != 0)
		die("seed: attach/lock/notify: %s", mfs_last_error());
	n = snap(s0, two, sizeof two);
	seed(out, "two-attachers-locked.seg", two, n);
	mfs_unlock(s1);
	mfs_detach(s1);
	n = snap(s0, v, sizeof v);
	SEED("one-detached.seg", n);
	mfs_detach(s0);

	mo.backend = MFS_BACKEND_MEMFD;
	if (mfs_create("seed", 8192, &mo, &s0) != 0)
		die("seed: mfs_create(MEMFD): %s", mfs_last_error());
	n = snap(s0, v, sizeof v);
	SEED("memfd-8k.seg", n);
	mfs_detach(s0);

	/* Variants of ready.seg (n is its size again). */
	memcpy(v, b, sizeof v);
	n = HDR_SIZE * 2;
	VAR("state-init.seg", put32(v, OFF_STATE, 0));
	VAR("state-dead.seg", put32(v, OFF_STATE, 2));
	VAR("state-3.seg", put32(v, OFF_STATE, 3));
	VAR("lock-held.seg", put32(v, OFF_LOCK, (1u << 2) | 1u);
	    put32(v, OFF_OWNER_PID, 12345); put32(v, OFF_OWNER_TID, 12346));
	VAR("lock-waiters.seg", put32(v, OFF_LOCK, (1u << 2) | 2u);
	    put32(v, OFF_LWAITERS, 3); put32(v, OFF_OWNER_PID, 12345));
	VAR("lock-state3.seg", put32(v, OFF_LOCK, (1u << 2) | 3u));
	VAR("lock-no-owner.seg", put32(v, OFF_LOCK, (1u << 2) | 1u));
	VAR("lock-bits0.seg", put32(v, OFF_LOCK, 1u << 2));
	VAR("lock-slot239.seg", put32(v, OFF_LOCK, (240u << 2) | 1u));
	VAR("lock-slot240.seg", put32(v, OFF_LOCK, (241u << 2) | 1u));
	VAR("lock-word1.seg", put32(v, OFF_LOCK, 1u));
	VAR("slots-full.seg", put32(v, OFF_SLOT_HIGH, NSLOTS);
	    put32(v, OFF_ATTACH, NSLOTS);
	    for (i = 0; i < NSLOTS; i++) {
		put32(v, OFF_SLOT(i), 1000u + (uint32_t)i);
		put32(v, OFF_SLOT(i) + 4, 2000u + (uint32_t)i);
		put64(v, OFF_SLOT(i) + 8, 3000u + i);
	    });
	VAR("slots-sparse.seg", put32(v, OFF_SLOT_HIGH, 100);
	    put32(v, OFF_SLOT(0), 0); put32(v, OFF_SLOT(42), 4242);
	    put32(v, OFF_SLOT(99), 9999); put32(v, OFF_SLOT(150), 1500));
	VAR("slot-high-241.seg", put32(v, OFF_SLOT_HIGH, NSLOTS + 1));
	VAR("slot-high-0.seg", put32(v, OFF_SLOT_HIGH, 0));
	VAR("slot-count-239.seg", put32(v, OFF_SLOT_COUNT, NSLOTS - 1));
	VAR("magic-swapped.seg", put64(v, OFF_MAGIC, UINT64_C(0x4d46534841524531)));
	VAR("magic-zero.seg", put64(v, OFF_MAGIC, 0));
	VAR("version-2.seg", put32(v, OFF_VERSION, 2));
	VAR("version-0.seg", put32(v, OFF_VERSION, 0));
	VAR("layout-64k.seg", put32(v, OFF_LAYOUT, (65536u << 8) | 4u));
	VAR("layout-lock8.seg", put32(v, OFF_LAYOUT, (4096u << 8) | 8u));
	VAR("doff-0.seg", put64(v, OFF_DATA_OFF, 0); put64(v, OFF_TOTAL, 4096));
	VAR("doff-4097.seg", put64(v, OFF_DATA_OFF, 4097); put64(v, OFF_TOTAL, 8193));
	VAR("doff-8192.seg", put64(v, OFF_DATA_OFF, 8192); put64(v, OFF_TOTAL, 12288));
	VAR("dsize-0.seg", put64(v, OFF_DATA_SIZE, 0); put64(v, OFF_TOTAL, 4096));
	VAR("dsize-4095.seg", put64(v, OFF_DATA_SIZE, 4095); put64(v, OFF_TOTAL, 8191));
	VAR("dsize-wraps.seg", put64(v, OFF_DATA_SIZE, UINT64_C(0) - 4096);
	    put64(v, OFF_TOTAL, 0));
	VAR("dsize-int64max.seg", put64(v, OFF_DATA_SIZE,
	    (uint64_t)INT64_MAX - 4095 - 4096); put64(v, OFF_TOTAL, (uint64_t)INT64_MAX - 4095));
	VAR("total-mismatch.seg", put64(v, OFF_TOTAL, 4096));
	VAR("total-big.seg", put64(v, OFF_DATA_SIZE, 8192); put64(v, OFF_TOTAL, 12288));
	VAR("reserved-set.seg", memset(v + 72, 0xa5, 56); memset(v + 144, 0x5a, 48);
	    memset(v + 200, 0xff, 56));
	VAR("seq-wrap.seg", put32(v, OFF_SEQ, 0xffffffffu); put32(v, OFF_SWAITERS, 7));
	VAR("creator-foreign.seg", put32(v, OFF_CUID, 4242); put32(v, OFF_CPID, 1));

	/* LIVE mode (byte 72; byte 73 picks the slot the harness holds). */
	VAR("live-ready.seg", v[72] = MODE_LIVE);
	VAR("live-rdonly.seg", v[72] = MODE_LIVE | MODE_RDONLY);
	VAR("live-forged-free.seg", v[72] = MODE_LIVE | MODE_FORGE);
	VAR("live-state-init.seg", v[72] = MODE_LIVE; put32(v, OFF_STATE, 0));
	VAR("live-state-dead.seg", v[72] = MODE_LIVE; put32(v, OFF_STATE, 2));
	VAR("live-slot-high-0.seg", v[72] = MODE_LIVE; put32(v, OFF_SLOT_HIGH, 0));
	VAR("live-lock-mine.seg", v[72] = MODE_LIVE; put32(v, OFF_LOCK, (1u << 2) | 2u);
	    put32(v, OFF_OWNER_PID, 777); put32(v, OFF_OWNER_TID, 778));
	VAR("live-lock-state3.seg", v[72] = MODE_LIVE; put32(v, OFF_LOCK, (1u << 2) | 3u));
	VAR("live-lock-slot5.seg", v[72] = MODE_LIVE; put32(v, OFF_LOCK, (6u << 2) | 1u);
	    put32(v, OFF_OWNER_PID, 555));
	VAR("live-slots-full.seg", v[72] = MODE_LIVE; v[73] = 200;
	    put32(v, OFF_SLOT_HIGH, NSLOTS); put32(v, OFF_ATTACH, 0xffffffffu);
	    for (i = 0; i < NSLOTS; i++)
		put32(v, OFF_SLOT(i), 1000u + (uint32_t)i);
	    put32(v, OFF_LOCK, (201u << 2) | 1u));
	VAR("live-seq-wrap.seg", v[72] = MODE_LIVE; put32(v, OFF_SEQ, 0xffffffffu);
	    put32(v, OFF_SWAITERS, 2); put32(v, OFF_LWAITERS, 9));
	/* two-attachers-locked: the lock names slot 1. */
	memcpy(v, two, sizeof two);
	v[72] = MODE_LIVE; v[73] = 0;   /* holder (slot 1) dead: taken over */
	SEED("live-lock-dead-holder.seg", sizeof two);
	v[73] = 1;                       /* holder alive: busy */
	SEED("live-lock-busy.seg", sizeof two);
	v[72] = MODE_LIVE | MODE_FORGE;  /* held by "this thread" via slot 1 */
	SEED("live-forged-holder.seg", sizeof two);
	v[73] = 0;                       /* dead holder with our pid and tid */
	SEED("live-forged-dead-holder.seg", sizeof two);

	/* Sizes: truncated at every interesting point, and longer files. */
	memcpy(v, b, n);
	SEED("empty.seg", 0);
	SEED("trunc-1.seg", 1);
	SEED("trunc-8.seg", 8);
	SEED("trunc-72.seg", 72);
	SEED("trunc-4095.seg", 4095);
	SEED("trunc-4096.seg", 4096);
	SEED("trunc-8191.seg", 8191);
	memset(v + n, 0, HDR_SIZE);
	SEED("trailing-4k.seg", n + HDR_SIZE);
	SEED("trailing-1.seg", n + 1);
	put64(v, OFF_DATA_OFF, 8192);
	put64(v, OFF_TOTAL, 12288);
	SEED("doff-8192-fits.seg", 12288);
	memcpy(v, b, n);
	memset(v + n, 0, MAX_INPUT - n);
	put64(v, OFF_DATA_SIZE, MAX_INPUT - HDR_SIZE);
	put64(v, OFF_TOTAL, MAX_INPUT);
	SEED("big-64k.seg", MAX_INPUT);
	v[72] = MODE_LIVE;
	for (i = HDR_SIZE; i < MAX_INPUT; i++)
		v[i] = (uint8_t)(i * 7u);
	SEED("live-big-64k.seg", MAX_INPUT);
	v[72] = 0;
	SEED("big-64k-short.seg", MAX_INPUT - 4096);
	memset(v, 0, sizeof v);
	SEED("zeros-4k.seg", 4096);
	SEED("zeros-8k.seg", 8192);
	memset(v, 0xff, 8192);
	SEED("ones-8k.seg", 8192);
	memcpy(v, "MFSHARE1", 8);
	SEED("magic-only.seg", 8);
#undef VAR
#undef SEED
}

/* ------------------------------------------------------------ setup */

static void cleanup(void)
{
	unlink(path);
	rmdir(dir);
}

/*
 * The private directory goes under $MFS_FUZZ_DIR (run.sh makes one and
 * removes it, even after a crash), else /dev/shm (where segments usually
 * live; a tmpfs keeps each input fast), else $TMPDIR or /tmp.
 */
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *base = getenv("MFS_FUZZ_DIR"), *out = getenv("MFS_FUZZ_MAKE_SEEDS");

	(void)argc; (void)argv;
	my_pid = (uint32_t)getpid();
	my_tid = (uint32_t)syscall(SYS_gettid);
	page = (uint64_t)sysconf(_SC_PAGESIZE);
	if (!base || !*base)
		base = access("/dev/shm", W_OK | X_OK) == 0 ? "/dev/shm" : getenv("TMPDIR");
	if (!base || !*base)
		base = "/tmp";
	snprintf(dir, sizeof dir, "%s/mfs-fuzz.XXXXXX", base);
	if (!mkdtemp(dir))
		sys_fail("mkdtemp");
	snprintf(path, sizeof path, "%s/%s", dir, KEY);
	fopts.backend = MFS_BACKEND_FILE;
	fopts.dir = dir;
	atexit(cleanup);
	if (out && *out) {
		make_seeds(out);
		exit(0);
	}
	return 0;
}
