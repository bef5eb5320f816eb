/* SPDX-License-Identifier: MIT */
/*
 * Library internals: the handle, the backend method table, the OS layer
 * (files, tokens, process identity) and error helpers.  Nothing here is
 * installed; non-static internal names start with mfs__.
 */
#ifndef MFS_INTERNAL_H
#define MFS_INTERNAL_H

#include <config.h>

#include "mfshare.h"
#include "header.h"

#include <stdint.h>
#include <stddef.h>

#define MFS_ATTACH_WAIT_MS   10000 /* attach waits this long for a creator */
#define MFS_GATE_WAIT_MS     1000  /* lifecycle calls wait this long for the gate */
#define MFS_PROBE_MS         50    /* lock sleepers probe the holder this often */
#define MFS_PROBE_FIRST_MS   5     /* ... and first after this long */
#define MFS_UPGRADE_MS       50    /* attach: exact stale recount, if the gate allows */
#define MFS_KNOWN_FLAGS      (MFS_READ_ONLY | MFS_REQUIRE_SEALED | MFS_ALLOW_FOREIGN | \
                              MFS_POPULATE)

/* Where a named segment lives. */
struct mfs__loc {
	char dir[4096];   /* the directory holding the file */
	char name[256];   /* the file's name in it */
	char path[4352];  /* dir/name: the native key */
};

/*
 * A backend: where segments live and how they are made, opened and
 * unlinked.  Every method returns 0 or an MFS_E_* code, with
 * mfs_last_error() detail set.  A backend this build lacks is a NULL slot
 * in the table, and the API answers MFS_E_NOT_SUPPORTED.
 */
struct mfs__backend {
	const char *name;
	/* Resolve @key to a location.  @create: may make the directory. */
	int (*locate)(const char *key, const mfs_options *o, int create,
	              struct mfs__loc *loc);
	/* Make a new, unnamed file of mode @mode in loc->dir; *@named is set
	 * to 1 when the file could only be made under its final name (it then
	 * already holds the gate exclusively). */
	int (*make)(const struct mfs__loc *loc, unsigned mode, int *fd, int *named);
	/* Give the unnamed file @fd its name; MFS_E_EXISTS if taken. */
	int (*publish)(const struct mfs__loc *loc, int fd);
	/* Open the named file: @rw read-write, else read-only.  Symbolic
	 * links are refused (MFS_E_CORRUPT), FIFOs never block. */
	int (*open)(const struct mfs__loc *loc, int rw, int *fd);
	/* Unlink the name if it still names the file behind @fd; 0 when done
	 * or when the name is gone or names another file. */
	int (*unlink_same)(const struct mfs__loc *loc, int fd);
	/* Anonymous backends: no publish/open/unlink_same (NULL); seal, if
	 * not NULL, is applied once the header is ready. */
	int (*seal)(int fd);
};

/* loc->path = dir/name, checking lengths. */
int mfs__loc_set(struct mfs__loc *loc, const char *dir, const char *name);

extern const struct mfs__backend mfs__backend_shm;
extern const struct mfs__backend mfs__backend_runtime;
extern const struct mfs__backend mfs__backend_file;
extern const struct mfs__backend mfs__backend_memfd;
#ifdef _WIN32
/* Windows: %TEMP%\mfshare\ (lib/backend-tempfile.c); the FILE backend
 * there is the same code.  The others are names only (never used). */
extern const struct mfs__backend mfs__backend_tempfile;
/* 1 if @fd is an open CRT descriptor (lib/file-win32.c). */
int mfs__win_fd_open(int fd);
/* The attach_fd name lookup (lib/backend-tempfile.c). */
void mfs__win_name_of_fd(struct mfs_segment *seg, int fd);
/* No users ids on Windows: segments record uid 0. */
#define geteuid() 0u
#endif

struct mfs_segment {
	struct mfs_header *hdr;     /* the whole mapping starts here */
	unsigned char *data;        /* hdr + data_offset */
	uint64_t map_size;          /* validated total size, mapped */
	uint64_t data_size;         /* validated usable size */
	int fd;                     /* our own open file description: holds our token */
	unsigned slot;              /* our attacher slot */
	unsigned lockval;           /* MFS_LOCK_MINE(slot) */
	unsigned flags;
	unsigned spin_shift;        /* lock.c: spin budget SPINS >> this (atomic) */
	unsigned spin_skips;        /* lock.c: contended calls with no budget (atomic) */
	int copied;                 /* 1 in a child that got this handle by fork() */
	int named;                  /* has a name to unlink at the end */
	long pid;                   /* process that attached */
	char *key;                  /* NULL for anonymous */
	char *native;               /* path or description */
	const struct mfs__backend *be;
	struct mfs__loc *loc;       /* NULL for anonymous */
	struct mfs_segment *next;   /* process-wide list, for fork() */
};

/* ------------------------------------------------------------ errors */
/* Record detail for mfs_last_error() and return @code. */
#ifdef _WIN32
#define MFS__PRINTF gnu_printf /* mingw: our vsnprintf is C99's (_GNU_SOURCE) */
#else
#define MFS__PRINTF printf
#endif
int mfs__fail(int code, const char *fmt, ...)
	__attribute__((format(MFS__PRINTF, 2, 3)));
/* Map @err (an errno value) to a code, record "detail: strerror", return it. */
int mfs__fail_errno(int err, const char *fmt, ...)
	__attribute__((format(MFS__PRINTF, 2, 3)));
int mfs__code_of_errno(int err);

/* ------------------------------------------------------------ process */
struct mfs__self {
	uint32_t pid;
	uint32_t tid;
	uint64_t start;
};
/* The calling thread's identity, cached per thread (no system call after
 * the first), and reset in a fork()ed child. */
const struct mfs__self *mfs__self(void);
void mfs__self_reset(void);
#if defined(__linux__) && defined(__GNUC__)
/* The cache itself (proc-linux.c), for the lock's inline fast path. */
extern __thread struct mfs__self mfs__self_tls __attribute__((tls_model("initial-exec")));
static inline const struct mfs__self *mfs__self_fast(void)
{
	return mfs__self_tls.tid != 0 ? &mfs__self_tls : mfs__self();
}
#else
#define mfs__self_fast() mfs__self()
#endif
/* Start time of @pid in clock ticks since boot, 0 if unknown. */
uint64_t mfs__proc_start(long pid);
/* 1 if @pid runs and (when @start != 0) started at @start; 0 if dead or a
 * zombie; -1 if unknown. */
int mfs__proc_alive(long pid, uint64_t start);
uint64_t mfs__now_ms(void);
void mfs__sleep_ms(unsigned ms);

/* ------------------------------------------------------------ tokens */
/*
 * Open-file-description byte locks: released by the kernel when the last
 * descriptor of the description closes, so when a process dies.
 * try_*: 0 on success, MFS_E_BUSY when someone else holds a conflicting
 * lock, another code on error.
 */
int mfs__tok_try(int fd, uint64_t byte, int exclusive);
int mfs__tok_release(int fd, uint64_t byte);
/* 1 if a description other than @fd's holds a lock on @byte, else 0. */
int mfs__tok_held(int fd, uint64_t byte, int exclusive_only);
/* Take the gate, retrying up to @ms; MFS_E_BUSY when it stayed busy. */
int mfs__gate_take(int fd, int exclusive, unsigned ms);
/* Called first by mfs__gate_take: where a shared lock cannot be upgraded
 * in place (Windows), drop our own shared hold before asking for the
 * exclusive one. */
#ifdef _WIN32
void mfs__gate_before(int fd, int exclusive);
#else
#define mfs__gate_before(fd, exclusive) ((void)(fd), (void)(exclusive))
#endif

/* File facts the core needs, from fstat. */
struct mfs__finfo {
	uint64_t size;
	uint64_t dev, ino;
	uint32_t uid, gid, mode, nlink;
	int regular;
};
int mfs__finfo(int fd, struct mfs__finfo *fi);
/* 0 if the caller may use a file owned by fi->uid with fi->mode for
 * reading (and writing if @rw), else MFS_E_PERMISSION.  Another user's
 * file is refused for read-write use unless @foreign (MFS_ALLOW_FOREIGN);
 * then, as for reading, its group/other bits decide. */
int mfs__may_access(const struct mfs__finfo *fi, int rw, int foreign, const char *what);
/* pread the whole header; MFS_E_CORRUPT if short. */
int mfs__read_header(int fd, struct mfs_header *h, const char *what);
/* Open @path (O_RDWR if @rw, else O_RDONLY; @nofollow: a symbolic link at
 * @path is refused) only if it is a regular file: anything else gives
 * MFS_E_CORRUPT without ever being opened (see file-posix.c). */
int mfs__open_regular(const char *path, int rw, int nofollow, int *fd);
/* A new description of the object behind @fd (O_RDWR or O_RDONLY). */
int mfs__reopen(int fd, int rw, int *out);
int mfs__map(int fd, uint64_t size, int ro_from, void **addr);
/* Map @fd again over the mapping at @addr (same size and protections). */
int mfs__remap(int fd, void *addr, uint64_t size, int ro_from);
void mfs__unmap(void *addr, uint64_t size);
/* Enter the pages of [@addr, @addr+@size) into the page tables now
 * (MFS_POPULATE); @write: for writing.  Best effort, no error. */
void mfs__populate(void *addr, uint64_t size, int write);
int mfs__reserve(int fd, uint64_t size);
void mfs__close(int fd);
uint64_t mfs__page_size(void);
/* 1 if the file's size is sealed (F_SEAL_SHRINK and F_SEAL_GROW), else 0. */
int mfs__sealed(int fd);

/* ------------------------------------------------------------ wait */
#include "wait.h"

/* ------------------------------------------------------------ core */
/* Liveness of slot @slot as seen through @seg (own slot: alive). */
int mfs__slot_alive(const mfs_segment *seg, unsigned slot);
/* Count live tokens among slots < slot_high, seen through @fd (which
 * cannot see its own locks: the caller adds its own). */
unsigned mfs__count_live(int fd, const struct mfs_header *h, unsigned slot_high,
                         unsigned *dead);
/* Fill @st from a private header copy and live probing through @fd. */
void mfs__fill_stat(mfs_stat *st, const struct mfs_header *h, int fd, int own_slot,
                    const struct mfs__finfo *fi);
/* Release the lock if the calling thread holds it (used by detach). */
void mfs__unlock_if_mine(mfs_segment *seg);
const struct mfs__backend *mfs__backend_of(int id);
int mfs__check_key(const char *key);
int mfs__check_opts(const mfs_options *o, unsigned allowed_flags);

#define AOI(p) ((volatile unsigned *)(p))

/* A pause in a spin loop: lets the sibling hyperthread (and a hypervisor
 * watching for spinning guests) know we only wait. */
static inline void mfs__cpu_relax(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
	__builtin_ia32_pause();
#elif defined(__GNUC__) && defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

#endif /* MFS_INTERNAL_H */
