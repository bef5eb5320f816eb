/* SPDX-License-Identifier: MIT */
/*
 * POSIX files for segments: open-file-description tokens, fstat facts,
 * mapping, reservation, and the make/publish/open/unlink methods of every
 * backend that keeps its segments as files in a directory.
 *
 * New segments are built unnamed (O_TMPFILE) and linked into place when
 * complete, so nobody ever sees one half-made; where the file system
 * cannot do that, the file is made under its name with O_EXCL while its
 * creator holds the gate exclusively (attachers wait for it).
 */
#include "file-posix.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

int mfs__tok_try(int fd, uint64_t byte, int exclusive)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = exclusive ? F_WRLCK : F_RDLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)byte;
	fl.l_len = 1;
	while (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EACCES)
			return MFS_E_BUSY;
		return mfs__fail_errno(errno, "fcntl(F_OFD_SETLK) on byte %llu",
		                       (unsigned long long)byte);
	}
	return 0;
}

int mfs__tok_release(int fd, uint64_t byte)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_UNLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)byte;
	fl.l_len = 1;
	while (fcntl(fd, F_OFD_SETLK, &fl) < 0)
		if (errno != EINTR)
			return mfs__fail_errno(errno, "fcntl(F_OFD_SETLK, F_UNLCK)");
	return 0;
}

int mfs__tok_held(int fd, uint64_t byte, int exclusive_only)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	/* Asking for a write lock reports any holder; a read lock only
	 * conflicts with (so reports) an exclusive holder. */
	fl.l_type = exclusive_only ? F_RDLCK : F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)byte;
	fl.l_len = 1;
	while (fcntl(fd, F_OFD_GETLK, &fl) < 0)
		if (errno != EINTR)
			return 1; /* cannot tell: count it alive, never reap wrongly */
	return fl.l_type != F_UNLCK;
}

int mfs__finfo(int fd, struct mfs__finfo *fi)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return mfs__fail_errno(errno, "fstat");
	fi->size = st.st_size > 0 ? (uint64_t)st.st_size : 0;
	fi->dev = (uint64_t)st.st_dev;
	fi->ino = (uint64_t)st.st_ino;
	fi->uid = (uint32_t)st.st_uid;
	fi->gid = (uint32_t)st.st_gid;
	fi->mode = (uint32_t)(st.st_mode & 07777);
	fi->nlink = (uint32_t)st.st_nlink;
	fi->regular = S_ISREG(st.st_mode);
	return 0;
}

static int in_groups(gid_t g)
{
	gid_t list[256];
	int n, i;

	if (getegid() == g)
		return 1;
	n = getgroups(256, list);
	for (i = 0; i < n; i++)
		if (list[i] == g)
			return 1;
	return 0;
}

/* Another user's segment: read-write use needs the caller's consent
 * (MFS_ALLOW_FOREIGN), and then, like reading, its mode must grant it: the
 * creator's mode is the policy, for root too. */
int mfs__may_access(const struct mfs__finfo *fi, int rw, int foreign, const char *what)
{
	unsigned need = rw ? 6u : 4u;

	if (fi->uid == (uint32_t)geteuid())
		return 0;
	if (rw && !foreign)
		return mfs__fail(MFS_E_PERMISSION,
		                 "%s: owned by uid %u, not by this user (uid %u); "
		                 "MFS_ALLOW_FOREIGN accepts it if its mode allows",
		                 what, fi->uid, (unsigned)geteuid());
	if (in_groups((gid_t)fi->gid) && ((fi->mode >> 3) & need) == need)
		return 0;
	if ((fi->mode & need) == need)
		return 0;
	return mfs__fail(MFS_E_PERMISSION,
	                 "%s: owned by uid %u (mode %04o), not by this user (uid %u)",
	                 what, fi->uid, fi->mode, (unsigned)geteuid());
}

int mfs__read_header(int fd, struct mfs_header *h, const char *what)
{
	size_t got = 0;
	ssize_t n;

	while (got < sizeof *h) {
		n = pread(fd, (char *)h + got, sizeof *h - got, (off_t)got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return mfs__fail_errno(errno, "%s: reading the header", what);
		if (n == 0)
			return mfs__fail(MFS_E_CORRUPT, "%s: truncated: the file ends at "
			                 "byte %zu, inside the %u-byte header", what, got,
			                 MFS_HEADER_SIZE);
		got += (size_t)n;
	}
	return 0;
}

int mfs__reopen(int fd, int rw, int *out)
{
	char path[64];
	int nfd;

	snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
	nfd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NONBLOCK);
	if (nfd < 0)
		return mfs__fail_errno(errno, "reopening descriptor %d (%s)", fd, path);
	*out = nfd;
	return 0;
}

uint64_t mfs__page_size(void)
{
	long p = sysconf(_SC_PAGESIZE);

	return p > 0 ? (uint64_t)p : 4096u;
}

int mfs__map(int fd, uint64_t size, int ro_from, void **addr)
{
	void *p;

	if (size > (uint64_t)SIZE_MAX)
		return mfs__fail(MFS_E_NO_RESOURCES, "mmap: %llu bytes do not fit the "
		                 "address space", (unsigned long long)size);
	p = mmap(NULL, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		return mfs__fail_errno(errno, "mmap of %llu bytes", (unsigned long long)size);
	if (ro_from > 0 && mprotect((char *)p + ro_from, (size_t)size - (size_t)ro_from,
	                            PROT_READ) < 0) {
		int e = errno;
		munmap(p, (size_t)size);
		return mfs__fail_errno(e, "mprotect (read-only data)");
	}
	*addr = p;
	return 0;
}

int mfs__remap(int fd, void *addr, uint64_t size, int ro_from)
{
	void *p = mmap(addr, (size_t)size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
	               fd, 0);

	if (p == MAP_FAILED)
		return mfs__fail_errno(errno, "mmap (in place) of %llu bytes",
		                       (unsigned long long)size);
	if (ro_from > 0 && mprotect((char *)p + ro_from, (size_t)size - (size_t)ro_from,
	                            PROT_READ) < 0)
		return mfs__fail_errno(errno, "mprotect (read-only data)");
	return 0;
}

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  /* Linux 5.14 */
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

void mfs__populate(void *addr, uint64_t size, int write)
{
	/* The pages exist (reserved at create): enter them all into the page
	 * tables in one pass, for writing when the range is writable, instead
	 * of one fault per page at first touch.  Best effort: an older kernel
	 * (EINVAL) falls back to read population, and a file a peer truncated
	 * gives EFAULT here, never SIGBUS. */
	if (size == 0)
		return;
	if (write && madvise(addr, (size_t)size, MADV_POPULATE_WRITE) == 0)
		return;
	madvise(addr, (size_t)size, MADV_POPULATE_READ);
}

void mfs__unmap(void *addr, uint64_t size)
{
	if (addr)
		munmap(addr, (size_t)size);
}

int mfs__reserve(int fd, uint64_t size)
{
	int r;

	if (size > (uint64_t)INT64_MAX)
		return mfs__fail(MFS_E_INVALID_SIZE, "size too large");
	/* Reserve the blocks now: a size the system cannot hold fails here,
	 * not later as SIGBUS on first touch.  Allocating extends the file to
	 * @size, so only a file system without fallocate needs ftruncate. */
	r = posix_fallocate(fd, 0, (off_t)size);
	if (r == EINTR)
		r = posix_fallocate(fd, 0, (off_t)size);
	if (r == 0)
		return 0;
	if (r != EOPNOTSUPP && r != ENOSYS)
		return mfs__fail_errno(r == EINVAL ? ENOSPC : r,
		                       "reserving %llu bytes (posix_fallocate)",
		                       (unsigned long long)size);
	if (ftruncate(fd, (off_t)size) < 0)
		return mfs__fail_errno(errno, "ftruncate to %llu bytes",
		                       (unsigned long long)size);
	return 0;
}

int mfs__sealed(int fd)
{
	int seals = fcntl(fd, F_GET_SEALS);

	return seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_GROW)) ==
	       (F_SEAL_SHRINK | F_SEAL_GROW);
}

void mfs__close(int fd)
{
	if (fd >= 0)
		close(fd); /* never retried on EINTR: the fd is gone on Linux */
}

/* ------------------------------------------------------------ dir backends */

int mfs__loc_set(struct mfs__loc *loc, const char *dir, const char *name)
{
	if (strlen(dir) >= sizeof loc->dir || strlen(name) >= sizeof loc->name)
		return mfs__fail(MFS_E_INVALID, "directory path too long: %s", dir);
	strcpy(loc->dir, dir);
	strcpy(loc->name, name);
	snprintf(loc->path, sizeof loc->path, "%s/%s", dir, name);
	return 0;
}

int mfs__dir_make(const struct mfs__loc *loc, unsigned mode, int *fd, int *named)
{
	int f, r;

	*named = 0;
	f = open(loc->dir, O_TMPFILE | O_RDWR | O_CLOEXEC, (mode_t)mode);
	if (f < 0 && (errno == EOPNOTSUPP || errno == EISDIR || errno == EINVAL)) {
		/* No O_TMPFILE here: make it under its name, gate held. */
		f = open(loc->path, O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW | O_CLOEXEC,
		         (mode_t)mode);
		if (f < 0)
			return errno == EEXIST ? MFS_E_EXISTS
			     : mfs__fail_errno(errno, "create %s", loc->path);
		if ((r = mfs__tok_try(f, MFS_GATE_BYTE, 1)) != 0) {
			unlink(loc->path);
			close(f);
			return r == MFS_E_BUSY ? mfs__fail(MFS_E_UNKNOWN, "%s: gate busy", loc->path) : r;
		}
		*named = 1;
	} else if (f < 0) {
		return mfs__fail_errno(errno, "create in %s", loc->dir);
	}
	/* The mode asked, exactly: the umask does not apply. */
	if (fchmod(f, (mode_t)mode) < 0) {
		r = mfs__fail_errno(errno, "fchmod %s", loc->path);
		if (*named)
			unlink(loc->path);
		close(f);
		return r;
	}
	*fd = f;
	return 0;
}

int mfs__dir_publish(const struct mfs__loc *loc, int fd)
{
	char proc[64];

	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, loc->path, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	if (errno == EEXIST)
		return mfs__fail(MFS_E_EXISTS, "create %s: the name is taken", loc->path);
	return mfs__fail_errno(errno, "link %s into place", loc->path);
}

/*
 * Open @path only if it is a regular file, and never open anything else:
 * the name is resolved with O_PATH (which opens no FIFO, socket or device,
 * so a planted one sees no opener, and a device open has no side effect),
 * checked with fstat, and only then opened for real through /proc/self/fd
 * (the same inode, whatever happens to the name meanwhile).
 */
int mfs__open_regular(const char *path, int rw, int nofollow, int *fd)
{
	struct stat st;
	char proc[64];
	int p, f, e;

	p = open(path, O_PATH | O_CLOEXEC | (nofollow ? O_NOFOLLOW : 0));
	if (p < 0)
		return mfs__fail_errno(errno, "open %s", path);
	if (fstat(p, &st) < 0) {
		e = errno;
		close(p);
		return mfs__fail_errno(e, "fstat %s", path);
	}
	if (!S_ISREG(st.st_mode)) {
		close(p);
		if (S_ISLNK(st.st_mode))
			return mfs__fail(MFS_E_CORRUPT, "%s: a symbolic link, not a segment", path);
		return mfs__fail(MFS_E_CORRUPT, "%s: not a regular file", path);
	}
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", p);
	f = open(proc, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOCTTY);
	e = errno;
	close(p);
	if (f < 0)
		return mfs__fail_errno(e, "open %s", path);
	*fd = f;
	return 0;
}

int mfs__dir_open(const struct mfs__loc *loc, int rw, int *fd)
{
	return mfs__open_regular(loc->path, rw, 1, fd);
}

int mfs__dir_unlink_same(const struct mfs__loc *loc, int fd)
{
	struct stat a, b;

	if (fstat(fd, &a) < 0)
		return mfs__fail_errno(errno, "fstat");
	if (lstat(loc->path, &b) < 0)
		return 0;
	if (a.st_dev != b.st_dev || a.st_ino != b.st_ino)
		return 0;
	if (unlink(loc->path) < 0 && errno != ENOENT)
		return mfs__fail_errno(errno, "unlink %s", loc->path);
	return 0;
}
