/* SPDX-License-Identifier: MIT */
/*
 * libmfshare: shared memory between processes through memory-mapped files,
 * with a crash-proof in-segment lock, change notification and an on-disk
 * header any process can inspect.  The one public header; the contract it
 * implements is API.md.  Every function that can fail returns 0 or a
 * negative MFS_E_* code and leaves a detailed message for mfs_last_error().
 */
#ifndef MFSHARE_H
#define MFSHARE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32) || defined(__CYGWIN__)
#  if defined(MFS_BUILDING)
#    define MFS_EXTERN __declspec(dllexport)
#  elif defined(MFS_STATIC)
#    define MFS_EXTERN
#  else
#    define MFS_EXTERN __declspec(dllimport)
#  endif
#elif defined(__GNUC__) && __GNUC__ >= 4
#  define MFS_EXTERN __attribute__((visibility("default")))
#else
#  define MFS_EXTERN
#endif

/* ------------------------------------------------------------------ */
/* Errors                                                              */

/*
 * One list generates the codes, mfs_strerror() and mfs_err_name().
 * The first eight are minus QSharedMemory::SharedMemoryError.
 */
#define MFS_ERRNO_MAP(X)                                                     \
	X(OK,            0, "no error")                                      \
	X(E_PERMISSION, -1, "permission denied")                             \
	X(E_INVALID_SIZE, -2, "invalid segment size")                        \
	X(E_KEY,        -3, "invalid key")                                   \
	X(E_EXISTS,     -4, "the name is already taken")                     \
	X(E_NOT_FOUND,  -5, "no such segment")                               \
	X(E_LOCK,       -6, "lock misuse")                                   \
	X(E_NO_RESOURCES, -7, "out of memory, space or a system resource")   \
	X(E_UNKNOWN,    -8, "unknown error")                                 \
	X(E_CORRUPT,    -9, "not a valid libmfshare segment")                \
	X(E_BUSY,      -10, "the lock is held elsewhere")                    \
	X(E_TIMEOUT,   -11, "timed out")                                     \
	X(E_OWNER_DEAD, -12, "lock acquired; its previous holder died holding it") \
	X(E_INVALID,   -13, "invalid argument")                              \
	X(E_NOT_SUPPORTED, -14, "not supported on this platform or configuration")

enum mfs_error {
#define MFS__ERRENUM(name, val, str) MFS_##name = (val),
	MFS_ERRNO_MAP(MFS__ERRENUM)
#undef MFS__ERRENUM
	MFS__ERROR_MIN = -14
};

/*
 * mfs_strerror - a static, human-readable string for any code.
 * @err: an MFS_* code (0 or negative).
 * Returns a string; unknown codes give a generic string, never NULL.
 */
MFS_EXTERN const char *mfs_strerror(int err);

/*
 * mfs_err_name - the code's name without prefix ("E_CORRUPT"), or
 * "E_UNKNOWN_CODE" for a value outside the list.  Never NULL.
 */
MFS_EXTERN const char *mfs_err_name(int err);

/*
 * mfs_last_error - this thread's most recent failure in detail: the
 * operation, the native name or path, and the system error text, like
 * dlerror().  The text stays until this thread's next failure.  Never
 * NULL ("" before any failure).
 */
MFS_EXTERN const char *mfs_last_error(void);

/* ------------------------------------------------------------------ */
/* Handles and options                                                 */

/* An attachment to a segment.  Opaque; one handle is one attachment. */
typedef struct mfs_segment mfs_segment;

enum mfs_backend {
	MFS_BACKEND_DEFAULT = 0, /* SHM on Unix, TEMPFILE on Windows */
	MFS_BACKEND_SHM,         /* POSIX shared memory: /dev/shm on Linux */
	MFS_BACKEND_RUNTIME_DIR, /* a file in D/mfshare/, D = opts.dir or $XDG_RUNTIME_DIR */
	MFS_BACKEND_MEMFD,       /* an anonymous memfd: no name, shared by its fd */
	MFS_BACKEND_FILE,        /* a file in the directory opts.dir */
	MFS_BACKEND_TEMPFILE     /* Windows: FILE_ATTRIBUTE_TEMPORARY file in %TEMP%\mfshare */
};

enum mfs_flags {
	MFS_READ_ONLY = 1u << 0, /* map the data read-only (QSharedMemory::ReadOnly) */
	/* mfs_attach_fd and friends: refuse (MFS_E_PERMISSION) a segment whose
	 * size is not sealed (F_SEAL_SHRINK|F_SEAL_GROW), i.e. one a peer could
	 * truncate under us.  Only MEMFD segments are sealed. */
	MFS_REQUIRE_SEALED = 1u << 1,
	/* attach/open/attach_fd/remove: accept a segment owned by another user
	 * when its mode grants us read and write.  Without it such a segment
	 * gives MFS_E_PERMISSION whatever its mode: a name planted by someone
	 * else is never used by accident.  Inspection only needs read access. */
	MFS_ALLOW_FOREIGN = 1u << 2,
	/* create/attach/open/attach_fd: enter every page of the data area into
	 * this process's page tables before returning (Linux:
	 * MADV_POPULATE_WRITE), instead of taking a page fault at the first
	 * touch of each page.  For a segment this process will go through
	 * whole; it costs time proportional to the size at attach and detach.
	 * Best effort: ignored where the system cannot do it. */
	MFS_POPULATE = 1u << 3
	/* bits 4-15 are the library's to assign; bits 16-31 are never assigned */
};

typedef struct mfs_options {
	int         backend;  /* enum mfs_backend; 0 = default */
	unsigned    flags;    /* enum mfs_flags; 0 = read-write */
	unsigned    mode;     /* permission bits of a new segment; 0 = 0600 */
	const char *dir;      /* FILE: the directory (required); RUNTIME_DIR: replaces
	                         $XDG_RUNTIME_DIR; TEMPFILE: replaces %TEMP% */
} mfs_options;

/* Longest key accepted, in bytes. */
#define MFS_KEY_MAX 200

/* ------------------------------------------------------------------ */
/* Lifecycle                                                           */

/*
 * mfs_create - make a new segment of at least @size usable bytes, all
 * zero, and attach to it.
 * @key:  the name, [A-Za-z0-9._-]{1,200} with no leading '.'; may be
 *        NULL for MFS_BACKEND_MEMFD only.
 * @size: usable bytes wanted (rounded up to whole pages).
 * @opts: NULL for defaults; see mfs_options.
 * @out:  receives the handle; NULL on failure.
 * The segment appears under its name fully formed (built unnamed, then
 * linked into place).  Its memory is reserved now, so a size the system
 * cannot hold fails here, never later with SIGBUS.  A stale segment (all
 * attachers dead) under the name is replaced.
 * MFS_BACKEND_MEMFD: an anonymous memfd_create(2) file described as
 * "mfshare:KEY" (or "mfshare"), sealed against shrinking and growing once
 * built, so no peer can truncate it; share it with mfs_spawn, mfs_send,
 * mfs_export_fd or mfs_locator.  It is freed when its last descriptor and
 * mapping go.
 * Errors: MFS_E_INVALID (NULL @out, bad options), MFS_E_KEY,
 * MFS_E_INVALID_SIZE (0 or too large to represent), MFS_E_EXISTS (the name
 * is taken by a live segment or anything else; nothing is touched),
 * MFS_E_PERMISSION, MFS_E_NO_RESOURCES, MFS_E_NOT_SUPPORTED (backend not
 * available here), MFS_E_UNKNOWN.
 */
MFS_EXTERN int mfs_create(const char *key, size_t size, const mfs_options *opts,
                          mfs_segment **out);

/*
 * mfs_attach - attach to an existing segment by key.
 * Never takes the user lock.  A segment still being created (only on file
 * systems without O_TMPFILE) is waited for while its creator lives, at most
 * 10 s.  Nothing is written to an invalid object.
 * Errors: MFS_E_INVALID, MFS_E_KEY, MFS_E_NOT_FOUND (absent, removed, dead
 * or stale), MFS_E_CORRUPT (not a valid segment: magic, version, layout,
 * sizes against the file's real size, not a regular file),
 * MFS_E_PERMISSION (another user's segment, or no read-write access),
 * MFS_E_TIMEOUT (still being created after 10 s), MFS_E_NO_RESOURCES (no
 * free attacher slot, no memory or descriptors), MFS_E_NOT_SUPPORTED,
 * MFS_E_UNKNOWN.
 */
MFS_EXTERN int mfs_attach(const char *key, const mfs_options *opts, mfs_segment **out);

/*
 * mfs_open - attach to the segment named @key, creating it (with @size
 * bytes) if there is none.  Race-free: processes calling it at once all
 * end on one segment, exactly one of them its creator.
 * @created: if not NULL, set to 1 in the creator, else 0 (0 on failure).
 * The existing segment's size wins.  Errors: those of mfs_create and
 * mfs_attach; MFS_E_INVALID_SIZE only when a segment must be created with
 * @size 0; MFS_E_CORRUPT when the name holds a non-segment (never replaced);
 * MFS_E_TIMEOUT when the name stayed in transition for 10 s (e.g. a stale
 * segment whose gate another process keeps held).
 */
MFS_EXTERN int mfs_open(const char *key, size_t size, const mfs_options *opts,
                        mfs_segment **out, int *created);

/*
 * mfs_attach_fd - attach to the segment behind @fd (inherited, received
 * over a socket, or opened by hand).  opts->backend is ignored; only
 * opts->flags is used.  The caller keeps @fd: the handle takes its own
 * open file description of the same object.
 * Errors: MFS_E_INVALID (bad fd or options), MFS_E_CORRUPT,
 * MFS_E_NOT_FOUND (the segment is dead or stale), MFS_E_PERMISSION,
 * MFS_E_NO_RESOURCES, MFS_E_UNKNOWN.
 */
MFS_EXTERN int mfs_attach_fd(int fd, const mfs_options *opts, mfs_segment **out);

/*
 * mfs_detach - end this attachment: release the lock if this thread holds
 * it, unmap, close and free the handle (always, even on error).  The last
 * live attachment marks the segment dead and removes its name.  A detach
 * never destroys a segment another process is attaching at the same
 * moment.  A handle copied into a child by fork() is only unmapped.
 * Returns 0 (also for NULL), or MFS_E_UNKNOWN if the name could not be
 * removed (the segment is then stale and replaced by the next create).
 */
MFS_EXTERN int mfs_detach(mfs_segment *seg);

/*
 * mfs_remove - remove the name now, like shm_unlink: attachments keep
 * working, later attaches give MFS_E_NOT_FOUND.
 * Errors: MFS_E_INVALID (MEMFD, bad options), MFS_E_KEY, MFS_E_NOT_FOUND
 * (absent or stale; a stale segment's name is cleaned up), MFS_E_CORRUPT
 * (a non-segment: left alone), MFS_E_PERMISSION, MFS_E_UNKNOWN.
 */
MFS_EXTERN int mfs_remove(const char *key, const mfs_options *opts);

/*
 * mfs_reap - remove the name only if the segment is stale (every attacher
 * dead, or half-made by a dead creator, or destroyed but not unlinked);
 * the check and the unlink are atomic with respect to attachers.  Never
 * attaches, never takes the lock.  Needs only what the file system
 * allows (no ownership policy: a stale segment has no one to protect).
 * Returns 0 when it removed a stale segment.
 * Errors: MFS_E_BUSY (the segment has a live attacher: left alone),
 * MFS_E_NOT_FOUND (no such name), MFS_E_CORRUPT (not a segment: left
 * alone), MFS_E_PERMISSION, MFS_E_KEY, MFS_E_INVALID (MEMFD, bad options).
 */
MFS_EXTERN int mfs_reap(const char *key, const mfs_options *opts);

/* mfs_reap_path - as mfs_reap, for the file at @path (a symbolic link at
 * @path is refused, MFS_E_CORRUPT). */
MFS_EXTERN int mfs_reap_path(const char *path);

/* ------------------------------------------------------------------ */
/* Access                                                              */

/* The data, page-aligned and stable until detach; NULL for NULL. */
MFS_EXTERN void *mfs_data(mfs_segment *seg);
/* The same pointer, const. */
MFS_EXTERN const void *mfs_const_data(const mfs_segment *seg);
/* Usable bytes (>= the size asked at create); 0 for NULL. */
MFS_EXTERN size_t mfs_size(const mfs_segment *seg);
/* The key; NULL for an anonymous segment or a NULL handle. */
MFS_EXTERN const char *mfs_key(const mfs_segment *seg);
/* The path of the backing file (e.g. /dev/shm/mfshare.KEY), or the memfd
 * description; NULL for NULL. */
MFS_EXTERN const char *mfs_native_key(const mfs_segment *seg);
/* The handle's descriptor of the segment (valid until detach), or -1. */
MFS_EXTERN int mfs_fd(const mfs_segment *seg);

/* ------------------------------------------------------------------ */
/* Locking                                                             */

/*
 * mfs_lock - take the segment's lock, waiting as long as it takes.
 * The lock lives in the segment's header and is shared by every thread of
 * every attached process.  Not recursive.  Uncontended: one atomic
 * compare-and-swap, no system call.
 * Returns 0, MFS_E_OWNER_DEAD (acquired; the previous holder's process
 * died holding it, the data may be half-written), MFS_E_LOCK (this thread
 * already holds it), MFS_E_INVALID (NULL, or a handle copied by fork()).
 */
MFS_EXTERN int mfs_lock(mfs_segment *seg);

/*
 * mfs_trylock - take the lock only if that needs no waiting.
 * Returns 0, MFS_E_OWNER_DEAD, MFS_E_BUSY (held by a live holder),
 * MFS_E_LOCK, MFS_E_INVALID.
 */
MFS_EXTERN int mfs_trylock(mfs_segment *seg);

/*
 * mfs_timedlock - take the lock, waiting at most @timeout_ms (< 0: no
 * limit; 0: a trylock that answers MFS_E_TIMEOUT).
 * Returns 0, MFS_E_OWNER_DEAD, MFS_E_TIMEOUT, MFS_E_LOCK, MFS_E_INVALID.
 */
MFS_EXTERN int mfs_timedlock(mfs_segment *seg, int timeout_ms);

/*
 * mfs_unlock - release the lock held by this thread (through any handle).
 * Uncontended: one atomic, no system call; a sleeping waiter is woken.
 * Returns 0, MFS_E_LOCK (this thread does not hold it; nothing changes),
 * MFS_E_INVALID.
 */
MFS_EXTERN int mfs_unlock(mfs_segment *seg);

/* ------------------------------------------------------------------ */
/* Change notification                                                 */

/*
 * mfs_notify - increment the segment's change counter and wake every
 * waiter in every process.  Returns 0 or MFS_E_INVALID.
 */
MFS_EXTERN int mfs_notify(mfs_segment *seg);

/*
 * mfs_wait - sleep until the change counter differs from *@seen (at once
 * if it already does), then store it in *@seen and return 0.  Never polls.
 * @timeout_ms: < 0 waits forever.
 * Returns 0, MFS_E_TIMEOUT (*@seen unchanged), MFS_E_INVALID.
 */
MFS_EXTERN int mfs_wait(mfs_segment *seg, uint32_t *seen, int timeout_ms);

/* ------------------------------------------------------------------ */
/* Inspection                                                          */

/* Values of mfs_stat.state (the header's state word). */
enum mfs_state {
	MFS_STATE_INIT = 0,  /* being created */
	MFS_STATE_READY = 1, /* in use */
	MFS_STATE_DEAD = 2   /* its last attachment ended; the name is going */
};

typedef struct mfs_stat {
	uint32_t version;    /* format version found in the header */
	uint64_t size;       /* usable data bytes */
	uint32_t refcount;   /* live attachments */
	int      locked;     /* 1 if the lock word says held (also while its dead holder awaits takeover) */
	long     lock_owner; /* pid of the holder (dead or alive), 0 when free */
	uint32_t seq;        /* change counter */
	/* Beyond the contract: the rest of the header, see docs/FORMAT.md. */
	uint32_t state;          /* enum mfs_state */
	uint32_t header_size;    /* bytes of the header page */
	uint64_t data_offset;    /* where the data starts in the file */
	uint64_t file_size;      /* the file's real size */
	uint32_t creator_uid;
	long     creator_pid;
	uint64_t creator_start;  /* creator's start time, clock ticks since boot */
	uint32_t attach_count;   /* the header's counter (refcount is the truth) */
	uint32_t slot_count;     /* attacher slots in the table */
	uint32_t slot_high;      /* slots ever used: 0 .. slot_high-1 */
	uint32_t dead_slots;     /* slots whose attacher died without detaching */
	uint32_t lock_word;      /* raw lock word */
	long     lock_owner_tid; /* thread id of the holder, 0 when free or unknown */
	int      lock_owner_alive; /* 1 alive, 0 dead (awaiting takeover), -1 free */
	uint32_t lock_waiters;   /* sleepers counted in the header (advisory) */
	uint32_t seq_waiters;    /* mfs_wait sleepers counted (advisory) */
	uint32_t uid;            /* owner of the file */
	uint32_t mode;           /* permission bits of the file */
	int      sealed;         /* 1: size sealed against shrinking and growing (memfd) */
} mfs_stat;

/* One row of the attacher table, from mfs_inspect_path(). */
typedef struct mfs_attacher {
	uint32_t slot;       /* index in the table */
	long     pid;        /* the attacher's process, as recorded */
	long     tid;        /* the thread that attached */
	uint64_t start_time; /* its process start time, clock ticks since boot */
	int      alive;      /* 1 when its token is held (kernel-released at death) */
} mfs_attacher;

/*
 * mfs_stat_segment - read the header of an attached segment.
 * Errors: MFS_E_INVALID (NULL argument).
 */
MFS_EXTERN int mfs_stat_segment(const mfs_segment *seg, mfs_stat *st);

/*
 * mfs_inspect - read a segment's header by key without attaching: nothing
 * is written, the count is unchanged, the lock is never taken.
 * Errors: as mfs_attach (MFS_E_NOT_FOUND for absent or stale,
 * MFS_E_CORRUPT, MFS_E_PERMISSION, MFS_E_TIMEOUT, MFS_E_KEY, MFS_E_INVALID).
 */
MFS_EXTERN int mfs_inspect(const char *key, const mfs_options *opts, mfs_stat *st);

/*
 * mfs_inspect_path - as mfs_inspect, for the file at @path (e.g.
 * /dev/shm/mfshare.KEY or /proc/PID/fd/N), and optionally the attacher
 * table: up to @max rows of used slots (live and dead) into @att, their
 * total into *@natt (either may be NULL/0).  With @stale_ok a stale
 * segment is reported (st->refcount 0) instead of MFS_E_NOT_FOUND.
 */
MFS_EXTERN int mfs_inspect_path(const char *path, int stale_ok, mfs_stat *st,
                                mfs_attacher *att, unsigned max, unsigned *natt);

/*
 * mfs_native_path - the path a key names under @opts (what mfs_create
 * would make), into @buf of @len bytes.
 * Errors: MFS_E_KEY, MFS_E_INVALID (MEMFD, bad options, small buffer),
 * MFS_E_NOT_SUPPORTED.
 */
MFS_EXTERN int mfs_native_path(const char *key, const mfs_options *opts,
                               char *buf, size_t len);

/* ------------------------------------------------------------------ */
/* Handing a segment to another process (beyond QSharedMemory)         */

/* The environment variable mfs_spawn sets and mfs_attach_inherited reads:
 * the number of the inherited descriptor. */
#define MFS_FD_ENV   "MFSHARE_FD"
/* The descriptor number mfs_spawn gives the child by default. */
#define MFS_CHILD_FD 3

/*
 * mfs_export_fd - a new descriptor of @seg's object, for another process:
 * its own open file description (so it carries none of this attachment's
 * crash tokens), close-on-exec unless @inheritable.  The caller owns it.
 * Hand-written fork+exec needs two lines in the parent before exec:
 *     mfs_export_fd(seg, 1, &fd);
 *     snprintf(buf, sizeof buf, "%d", fd); setenv(MFS_FD_ENV, buf, 1);
 * and the exec'd program calls mfs_attach_inherited().
 * Errors: MFS_E_INVALID (NULL, a handle copied by fork), MFS_E_NO_RESOURCES.
 */
MFS_EXTERN int mfs_export_fd(const mfs_segment *seg, int inheritable, int *fd);

/*
 * mfs_spawn - start a program (posix_spawnp: @file is searched in $PATH
 * unless it contains '/') with @argv and @envp (NULL: this environment),
 * inheriting a new descriptor of @seg as number @child_fd (< 0:
 * MFS_CHILD_FD) and MFS_FD_ENV=<child_fd> added to its environment.  The
 * child attaches with mfs_attach_inherited() (or mfs_attach_fd).  Nothing
 * of this process's other handles is inherited.
 * @pid: if not NULL, receives the child's process id.
 * Errors: MFS_E_INVALID (NULL argument, bad handle), MFS_E_NOT_FOUND (no
 * such program), MFS_E_PERMISSION, MFS_E_NO_RESOURCES, MFS_E_UNKNOWN.
 */
MFS_EXTERN int mfs_spawn(const mfs_segment *seg, const char *file, char *const argv[],
                         char *const envp[], int child_fd, long *pid);

/*
 * mfs_attach_inherited - attach through the descriptor named by the
 * environment variable MFS_FD_ENV (as set by mfs_spawn or by hand).  The
 * inherited descriptor stays open (close it once attached if you wish).
 * Errors: MFS_E_NOT_FOUND (the variable is not set), MFS_E_INVALID (not a
 * descriptor number, or not open), and those of mfs_attach_fd.
 */
MFS_EXTERN int mfs_attach_inherited(const mfs_options *opts, mfs_segment **out);

/*
 * mfs_send - send @seg over the connected Unix-domain socket @sock
 * (SCM_RIGHTS): a new descriptor of its object (see mfs_export_fd) with a
 * small libmfshare message.  The receiver validates it before attaching.
 * Errors: MFS_E_INVALID (NULL, bad socket), MFS_E_NOT_FOUND (the peer has
 * closed: EPIPE, no SIGPIPE raised), MFS_E_NO_RESOURCES, MFS_E_UNKNOWN.
 */
MFS_EXTERN int mfs_send(int sock, const mfs_segment *seg);

/*
 * mfs_recv - receive one segment sent by mfs_send on @sock (blocking, or
 * MFS_E_TIMEOUT after @timeout_ms; < 0 waits forever) and attach to it
 * with mfs_attach_fd and @opts (MFS_REQUIRE_SEALED is honoured).  No
 * descriptor is ever leaked: the received one is closed in every case.
 * Errors: MFS_E_NOT_FOUND (the peer closed the socket), MFS_E_CORRUPT (a
 * message that is not libmfshare's, without a descriptor or with several,
 * or a descriptor that is not a valid segment), MFS_E_TIMEOUT,
 * MFS_E_INVALID, and those of mfs_attach_fd.
 */
MFS_EXTERN int mfs_recv(int sock, const mfs_options *opts, int timeout_ms,
                        mfs_segment **out);

/*
 * mfs_locator - a printable name for @seg that mfs_attach_locator accepts,
 * e.g. for a child's command line:
 *     shm:KEY          an MFS_BACKEND_SHM segment
 *     file:PATH        a RUNTIME_DIR or FILE segment (absolute path)
 *     memfd:PID/FD     descriptor FD of process PID (/proc/PID/fd/FD): a
 *                      memfd, usable by processes of the same user while
 *                      PID lives and holds it
 * (mfs_native_key keeps its own meaning: the path or description.)
 * Errors: MFS_E_INVALID (NULL, @len too small).
 */
MFS_EXTERN int mfs_locator(const mfs_segment *seg, char *buf, size_t len);

/*
 * mfs_attach_locator - attach to the segment a locator names: the forms
 * of mfs_locator, plus "fd:N" (descriptor N of this process, e.g.
 * inherited).  opts->flags apply; opts->backend and opts->dir are ignored.
 * Errors: MFS_E_INVALID (NULL, unknown form, bad number), MFS_E_KEY, and
 * those of mfs_attach / mfs_attach_fd.
 */
MFS_EXTERN int mfs_attach_locator(const char *locator, const mfs_options *opts,
                                  mfs_segment **out);

#ifdef __cplusplus
}
#endif

#endif /* MFSHARE_H */
