/* SPDX-License-Identifier: MIT */
/*
 * Windows files for segments: the OS layer of internal.h over Win32.
 *
 *  - A descriptor is a CRT descriptor over a file HANDLE of its own file
 *    object (win32.h); every file object is opened sharing read, write and
 *    delete, so any opener can later rename or delete the file.
 *  - Tokens are LockFileEx locks (one byte at MFS_WIN_LOCK_BASE + byte,
 *    beyond any data: Windows enforces byte locks against ReadFile).  The
 *    system releases them when their handle closes, so when the process
 *    dies (possibly a little later: waiters retry).  Windows has no
 *    F_OFD_GETLK: a probe tries a lock and releases it at once.  A
 *    handle's own locks would answer such a probe (or conflict with it),
 *    so each descriptor's own locks are tracked here and a probe of a byte
 *    the descriptor itself locks reports "no other holder", as OFD locks
 *    do.
 *  - LockFileEx cannot upgrade a shared lock: mfs__gate_take(exclusive)
 *    on a descriptor holding the gate shared releases it first and then
 *    competes for the exclusive lock like anyone else (segment.c's
 *    attach path copes with losing the gate there: it then reports the
 *    answer of its unlocked scan, as when the upgrade stays busy).
 *  - Mapping: CreateFileMappingW + MapViewOfFile, read-write; with
 *    MFS_READ_ONLY the data pages are made PAGE_READONLY with
 *    VirtualProtect (a second FILE_MAP_READ view would have to start at a
 *    multiple of the 64 KiB allocation granularity, and the data starts at
 *    4096).
 */
#include "win32.h"

#include <errno.h>
#include <fcntl.h>
#include <io.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ errors */

int mfs__code_of_win(DWORD err)
{
	switch (err) {
	case ERROR_SUCCESS: return MFS_OK;
	case ERROR_ACCESS_DENIED: case ERROR_SHARING_VIOLATION:
	case ERROR_WRITE_PROTECT: case ERROR_PRIVILEGE_NOT_HELD:
		return MFS_E_PERMISSION;
	case ERROR_FILE_NOT_FOUND: case ERROR_PATH_NOT_FOUND: case ERROR_INVALID_DRIVE:
	case ERROR_BAD_NETPATH: case ERROR_DELETE_PENDING:
		return MFS_E_NOT_FOUND;
	case ERROR_FILE_EXISTS: case ERROR_ALREADY_EXISTS:
		return MFS_E_EXISTS;
	case ERROR_NOT_ENOUGH_MEMORY: case ERROR_OUTOFMEMORY: case ERROR_DISK_FULL:
	case ERROR_HANDLE_DISK_FULL: case ERROR_TOO_MANY_OPEN_FILES:
	case ERROR_COMMITMENT_LIMIT: case ERROR_NO_SYSTEM_RESOURCES:
	case ERROR_FILE_TOO_LARGE:
		return MFS_E_NO_RESOURCES;
	case ERROR_INVALID_PARAMETER: case ERROR_INVALID_HANDLE: case ERROR_INVALID_NAME:
	case ERROR_FILENAME_EXCED_RANGE:
		return MFS_E_INVALID;
	case ERROR_DIRECTORY: case ERROR_CANT_RESOLVE_FILENAME:
		return MFS_E_CORRUPT;
	case ERROR_NOT_SUPPORTED: case ERROR_CALL_NOT_IMPLEMENTED:
		return MFS_E_NOT_SUPPORTED;
	case ERROR_LOCK_VIOLATION:
		return MFS_E_BUSY;
	case WAIT_TIMEOUT: case ERROR_TIMEOUT:
		return MFS_E_TIMEOUT;
	default:
		return MFS_E_UNKNOWN;
	}
}

int mfs__fail_win(DWORD err, const char *fmt, ...)
{
	char what[600], sys[256];
	DWORD n;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof what, fmt, ap);
	va_end(ap);
	n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS,
	                   NULL, err, 0, sys, sizeof sys, NULL);
	while (n > 0 && (sys[n - 1] == '\n' || sys[n - 1] == '\r' || sys[n - 1] == ' ' ||
	                 sys[n - 1] == '.'))
		sys[--n] = '\0';
	if (n == 0)
		snprintf(sys, sizeof sys, "Windows error %lu", (unsigned long)err);
	return mfs__fail(mfs__code_of_win(err), "%s: %s (error %lu)", what, sys,
	                 (unsigned long)err);
}

int mfs__win_wide(const char *s, wchar_t *w, size_t n)
{
	if (MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, s, -1, w, (int)n) <= 0)
		return mfs__fail(MFS_E_INVALID, "%.200s: not a valid UTF-8 path of at "
		                 "most %zu characters", s, n - 1);
	return 0;
}

/* ------------------------------------------------------------ descriptors */

/* What we know about each descriptor we made: the locks it holds (a probe
 * must not see them), and whether its file goes when it closes. */
#define MAXLOCKS 8
struct fdinfo {
	int fd;
	int del;
	unsigned n;
	struct { uint64_t byte; int excl; } lk[MAXLOCKS];
	struct fdinfo *next;
};
static SRWLOCK fd_mu = SRWLOCK_INIT;
static struct fdinfo *fd_head;

static struct fdinfo *fd_find(int fd)
{
	struct fdinfo *f;

	for (f = fd_head; f; f = f->next)
		if (f->fd == fd)
			return f;
	return NULL;
}

static struct fdinfo *fd_get(int fd)
{
	struct fdinfo *f = fd_find(fd);

	if (!f && (f = calloc(1, sizeof *f))) {
		f->fd = fd;
		f->next = fd_head;
		fd_head = f;
	}
	return f;
}

/* Our lock on @byte through @fd: 0 none, 1 shared, 2 exclusive. */
static int own_lock(int fd, uint64_t byte)
{
	struct fdinfo *f;
	unsigned i;
	int r = 0;

	AcquireSRWLockShared(&fd_mu);
	if ((f = fd_find(fd)))
		for (i = 0; i < f->n; i++)
			if (f->lk[i].byte == byte) {
				r = f->lk[i].excl ? 2 : 1;
				break;
			}
	ReleaseSRWLockShared(&fd_mu);
	return r;
}

static void own_add(int fd, uint64_t byte, int excl)
{
	struct fdinfo *f;

	AcquireSRWLockExclusive(&fd_mu);
	if ((f = fd_get(fd)) && f->n < MAXLOCKS) {
		f->lk[f->n].byte = byte;
		f->lk[f->n].excl = excl;
		f->n++;
	}
	ReleaseSRWLockExclusive(&fd_mu);
}

static void own_del(int fd, uint64_t byte)
{
	struct fdinfo *f;
	unsigned i;

	AcquireSRWLockExclusive(&fd_mu);
	if ((f = fd_find(fd)))
		for (i = 0; i < f->n; i++)
			if (f->lk[i].byte == byte) {
				f->lk[i] = f->lk[--f->n];
				break;
			}
	ReleaseSRWLockExclusive(&fd_mu);
}

void mfs__win_delete_at_close(int fd)
{
	struct fdinfo *f;

	AcquireSRWLockExclusive(&fd_mu);
	if ((f = fd_get(fd)))
		f->del = 1;
	ReleaseSRWLockExclusive(&fd_mu);
}

void mfs__win_keep_at_close(int fd)
{
	struct fdinfo *f;

	AcquireSRWLockExclusive(&fd_mu);
	if ((f = fd_find(fd)))
		f->del = 0;
	ReleaseSRWLockExclusive(&fd_mu);
}

int mfs__win_fd(HANDLE h, int rw, int *fd)
{
	int f = _open_osfhandle((intptr_t)h, (rw ? _O_RDWR : _O_RDONLY) | _O_BINARY | _O_NOINHERIT);

	if (f < 0) {
		CloseHandle(h);
		return mfs__fail(MFS_E_NO_RESOURCES, "_open_osfhandle: no descriptor left");
	}
	/* A descriptor number may be reused: forget what an old one held. */
	AcquireSRWLockExclusive(&fd_mu);
	{
		struct fdinfo *i = fd_find(f);
		if (i) {
			i->n = 0;
			i->del = 0;
		}
	}
	ReleaseSRWLockExclusive(&fd_mu);
	*fd = f;
	return 0;
}

HANDLE mfs__win_handle(int fd)
{
	intptr_t h;

	if (fd < 0)
		return INVALID_HANDLE_VALUE;
	h = _get_osfhandle(fd);
	return h == -1 ? INVALID_HANDLE_VALUE : (HANDLE)h;
}

int mfs__win_fd_open(int fd)
{
	return mfs__win_handle(fd) != INVALID_HANDLE_VALUE;
}

void mfs__close(int fd)
{
	struct fdinfo *f, **p;
	int del = 0;

	if (fd < 0)
		return;
	AcquireSRWLockExclusive(&fd_mu);
	for (p = &fd_head; (f = *p); p = &f->next)
		if (f->fd == fd) {
			del = f->del;
			*p = f->next;
			free(f);
			break;
		}
	ReleaseSRWLockExclusive(&fd_mu);
	if (del) {
		/* The file's name is already gone (renamed away, see
		 * backend-tempfile.c); now that our view is unmapped the file
		 * can be deleted: it goes when its last handle closes.  Fails
		 * harmlessly while another process still maps it. */
		FILE_DISPOSITION_INFO d = { TRUE };
		SetFileInformationByHandle(mfs__win_handle(fd), FileDispositionInfo, &d, sizeof d);
	}
	_close(fd);
}

/* ------------------------------------------------------------ tokens */

static int lock_byte(HANDLE h, uint64_t byte, int excl)
{
	OVERLAPPED ov;
	uint64_t at = MFS_WIN_LOCK_BASE + byte;

	memset(&ov, 0, sizeof ov);
	ov.Offset = (DWORD)at;
	ov.OffsetHigh = (DWORD)(at >> 32);
	if (LockFileEx(h, LOCKFILE_FAIL_IMMEDIATELY | (excl ? LOCKFILE_EXCLUSIVE_LOCK : 0),
	               0, 1, 0, &ov))
		return 0;
	return GetLastError() == ERROR_LOCK_VIOLATION || GetLastError() == ERROR_IO_PENDING
	       ? MFS_E_BUSY : -1;
}

static int unlock_byte(HANDLE h, uint64_t byte)
{
	OVERLAPPED ov;
	uint64_t at = MFS_WIN_LOCK_BASE + byte;

	memset(&ov, 0, sizeof ov);
	ov.Offset = (DWORD)at;
	ov.OffsetHigh = (DWORD)(at >> 32);
	return UnlockFileEx(h, 0, 1, 0, &ov) ? 0 : -1;
}

int mfs__tok_try(int fd, uint64_t byte, int exclusive)
{
	HANDLE h = mfs__win_handle(fd);
	int r;

	if (h == INVALID_HANDLE_VALUE)
		return mfs__fail(MFS_E_INVALID, "LockFileEx: descriptor %d is not open", fd);
	r = lock_byte(h, byte, exclusive);
	if (r == MFS_E_BUSY)
		return r;
	if (r != 0)
		return mfs__fail_win(GetLastError(), "LockFileEx on byte %llu",
		                     (unsigned long long)byte);
	own_add(fd, byte, exclusive);
	return 0;
}

int mfs__tok_release(int fd, uint64_t byte)
{
	HANDLE h = mfs__win_handle(fd);

	if (h == INVALID_HANDLE_VALUE)
		return mfs__fail(MFS_E_INVALID, "UnlockFileEx: descriptor %d is not open", fd);
	if (unlock_byte(h, byte) != 0)
		return mfs__fail_win(GetLastError(), "UnlockFileEx on byte %llu",
		                     (unsigned long long)byte);
	own_del(fd, byte);
	return 0;
}

int mfs__tok_held(int fd, uint64_t byte, int exclusive_only)
{
	HANDLE h = mfs__win_handle(fd);
	int r;

	if (h == INVALID_HANDLE_VALUE)
		return 1; /* cannot tell: count it alive, never reap wrongly */
	if (own_lock(fd, byte))
		return 0; /* ours: as with OFD locks, our own do not count */
	/* A shared trial lock conflicts with (so reports) exclusive holders
	 * only; an exclusive one with any holder. */
	r = lock_byte(h, byte, !exclusive_only);
	if (r == 0) {
		unlock_byte(h, byte);
		return 0;
	}
	return 1; /* busy, or cannot tell */
}

void mfs__gate_before(int fd, int exclusive)
{
	/* No atomic upgrade on Windows: let our shared lock go first (our
	 * own shared lock would conflict with our exclusive request). */
	if (exclusive && own_lock(fd, MFS_GATE_BYTE) == 1)
		mfs__tok_release(fd, MFS_GATE_BYTE);
}

/* ------------------------------------------------------------ files */

int mfs__finfo(int fd, struct mfs__finfo *fi)
{
	BY_HANDLE_FILE_INFORMATION bi;
	HANDLE h = mfs__win_handle(fd);

	if (h == INVALID_HANDLE_VALUE)
		return mfs__fail(MFS_E_INVALID, "descriptor %d is not open", fd);
	memset(fi, 0, sizeof *fi);
	if (GetFileType(h) != FILE_TYPE_DISK) {
		fi->regular = 0;
		return 0;
	}
	if (!GetFileInformationByHandle(h, &bi))
		return mfs__fail_win(GetLastError(), "GetFileInformationByHandle");
	fi->size = ((uint64_t)bi.nFileSizeHigh << 32) | bi.nFileSizeLow;
	fi->dev = bi.dwVolumeSerialNumber;
	fi->ino = ((uint64_t)bi.nFileIndexHigh << 32) | bi.nFileIndexLow;
	fi->uid = 0;
	fi->gid = 0;
	fi->mode = 0600;
	fi->nlink = bi.nNumberOfLinks;
	fi->regular = !(bi.dwFileAttributes & (FILE_ATTRIBUTE_DIRECTORY |
	                                       FILE_ATTRIBUTE_REPARSE_POINT));
	return 0;
}

/* Windows: the file's ACL decided when it was opened (files in the
 * user's %TEMP% are the user's alone); there are no uids to compare. */
int mfs__may_access(const struct mfs__finfo *fi, int rw, int foreign, const char *what)
{
	(void)fi; (void)rw; (void)foreign; (void)what;
	return 0;
}

int mfs__read_header(int fd, struct mfs_header *h, const char *what)
{
	HANDLE fh = mfs__win_handle(fd);
	size_t got = 0;
	OVERLAPPED ov;
	DWORD n;

	if (fh == INVALID_HANDLE_VALUE)
		return mfs__fail(MFS_E_INVALID, "%s: descriptor %d is not open", what, fd);
	while (got < sizeof *h) {
		memset(&ov, 0, sizeof ov);
		ov.Offset = (DWORD)got;
		if (!ReadFile(fh, (char *)h + got, (DWORD)(sizeof *h - got), &n, &ov)) {
			DWORD e = GetLastError();
			if (e == ERROR_HANDLE_EOF)
				n = 0;
			else
				return mfs__fail_win(e, "%s: reading the header", what);
		}
		if (n == 0)
			return mfs__fail(MFS_E_CORRUPT, "%s: truncated: the file ends at "
			                 "byte %zu, inside the %u-byte header", what, got,
			                 MFS_HEADER_SIZE);
		got += n;
	}
	return 0;
}

static DWORD access_of(int rw)
{
	return rw ? GENERIC_READ | GENERIC_WRITE | DELETE : GENERIC_READ;
}

/*
 * Open @path only if it is a regular file on a disk: directories,
 * reparse points (symbolic links, junctions: when @nofollow), devices and
 * pipes are refused, the device namespaces without being opened.
 */
int mfs__open_regular(const char *path, int rw, int nofollow, int *fd)
{
	wchar_t w[4400];
	DWORD attr;
	HANDLE h;
	int r;

	if (strncmp(path, "\\\\.\\", 4) == 0 || strncmp(path, "//./", 4) == 0 ||
	    strncmp(path, "\\??\\", 4) == 0)
		return mfs__fail(MFS_E_CORRUPT, "%s: a device, not a regular file", path);
	if ((r = mfs__win_wide(path, w, sizeof w / sizeof w[0])) != 0)
		return r;
	attr = GetFileAttributesW(w);
	if (attr == INVALID_FILE_ATTRIBUTES)
		return mfs__fail_win(GetLastError(), "open %s", path);
	if (attr & FILE_ATTRIBUTE_DIRECTORY)
		return mfs__fail(MFS_E_CORRUPT, "%s: a directory, not a regular file", path);
	if ((attr & FILE_ATTRIBUTE_REPARSE_POINT) && nofollow)
		return mfs__fail(MFS_E_CORRUPT, "%s: a symbolic link (reparse point), "
		                 "not a segment", path);
	if (attr & FILE_ATTRIBUTE_DEVICE)
		return mfs__fail(MFS_E_CORRUPT, "%s: a device, not a regular file", path);
	h = CreateFileW(w, access_of(rw), MFS_WIN_SHARE, NULL, OPEN_EXISTING,
	                FILE_ATTRIBUTE_NORMAL | (nofollow ? FILE_FLAG_OPEN_REPARSE_POINT : 0),
	                NULL);
	if (h == INVALID_HANDLE_VALUE)
		return mfs__fail_win(GetLastError(), "open %s", path);
	if (GetFileType(h) != FILE_TYPE_DISK) {
		CloseHandle(h);
		return mfs__fail(MFS_E_CORRUPT, "%s: not a regular file", path);
	}
	return mfs__win_fd(h, rw, fd);
}

int mfs__reopen(int fd, int rw, int *out)
{
	HANDLE h = mfs__win_handle(fd), n;
	wchar_t path[4400];
	DWORD len;

	if (h == INVALID_HANDLE_VALUE)
		return mfs__fail(MFS_E_INVALID, "descriptor %d is not open", fd);
	/* A new file object (its own locks), never a duplicate handle. */
	n = ReOpenFile(h, access_of(rw), MFS_WIN_SHARE, 0);
	if (n == INVALID_HANDLE_VALUE) {
		len = GetFinalPathNameByHandleW(h, path, sizeof path / sizeof path[0],
		                                FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);
		if (len == 0 || len >= sizeof path / sizeof path[0])
			return mfs__fail_win(GetLastError(), "reopening descriptor %d", fd);
		n = CreateFileW(path, access_of(rw), MFS_WIN_SHARE, NULL, OPEN_EXISTING,
		                FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
		if (n == INVALID_HANDLE_VALUE)
			return mfs__fail_win(GetLastError(), "reopening descriptor %d", fd);
	}
	return mfs__win_fd(n, rw, out);
}

uint64_t mfs__page_size(void)
{
	SYSTEM_INFO si;

	GetSystemInfo(&si);
	return si.dwPageSize ? si.dwPageSize : 4096u;
}

int mfs__map(int fd, uint64_t size, int ro_from, void **addr)
{
	HANDLE h = mfs__win_handle(fd), m;
	DWORD old;
	void *p;
	int r;

	if (h == INVALID_HANDLE_VALUE)
		return mfs__fail(MFS_E_INVALID, "map: descriptor %d is not open", fd);
	if (size > (uint64_t)SIZE_MAX)
		return mfs__fail(MFS_E_NO_RESOURCES, "map: %llu bytes do not fit the "
		                 "address space", (unsigned long long)size);
	m = CreateFileMappingW(h, NULL, PAGE_READWRITE, (DWORD)(size >> 32), (DWORD)size, NULL);
	if (!m)
		return mfs__fail_win(GetLastError(), "CreateFileMapping of %llu bytes",
		                     (unsigned long long)size);
	p = MapViewOfFile(m, FILE_MAP_READ | FILE_MAP_WRITE, 0, 0, (SIZE_T)size);
	if (!p) {
		r = mfs__fail_win(GetLastError(), "MapViewOfFile of %llu bytes",
		                  (unsigned long long)size);
		CloseHandle(m);
		return r;
	}
	CloseHandle(m); /* the view keeps the section */
	if (ro_from > 0 && !VirtualProtect((char *)p + ro_from, (SIZE_T)(size - (uint64_t)ro_from),
	                                   PAGE_READONLY, &old)) {
		r = mfs__fail_win(GetLastError(), "VirtualProtect (read-only data)");
		UnmapViewOfFile(p);
		return r;
	}
	if ((r = mfs__win_wait_attach(p, size, h)) != 0) {
		UnmapViewOfFile(p);
		return r;
	}
	*addr = p;
	return 0;
}

int mfs__remap(int fd, void *addr, uint64_t size, int ro_from)
{
	(void)fd; (void)addr; (void)size; (void)ro_from;
	return mfs__fail(MFS_E_NOT_SUPPORTED, "remap: no fork() on Windows");
}

void mfs__unmap(void *addr, uint64_t size)
{
	(void)size;
	if (!addr)
		return;
	mfs__win_wait_detach(addr);
	UnmapViewOfFile(addr);
}

int mfs__reserve(int fd, uint64_t size)
{
	HANDLE h = mfs__win_handle(fd);
	FILE_ALLOCATION_INFO ai;
	FILE_END_OF_FILE_INFO ei;

	if (size > (uint64_t)INT64_MAX)
		return mfs__fail(MFS_E_INVALID_SIZE, "size too large");
	if (h == INVALID_HANDLE_VALUE)
		return mfs__fail(MFS_E_INVALID, "reserve: descriptor %d is not open", fd);
	/* Reserve the clusters now: a size the disk cannot hold fails here,
	 * not later as an in-page error on first touch. */
	ai.AllocationSize.QuadPart = (LONGLONG)size;
	if (!SetFileInformationByHandle(h, FileAllocationInfo, &ai, sizeof ai) &&
	    GetLastError() != ERROR_CALL_NOT_IMPLEMENTED && GetLastError() != ERROR_NOT_SUPPORTED &&
	    GetLastError() != ERROR_INVALID_FUNCTION)
		return mfs__fail_win(GetLastError(), "reserving %llu bytes",
		                     (unsigned long long)size);
	/* (Wine 8 does not implement FileAllocationInfo: there the size is
	 * set without reserving, like posix_fallocate's EOPNOTSUPP.) */
	ei.EndOfFile.QuadPart = (LONGLONG)size;
	if (!SetFileInformationByHandle(h, FileEndOfFileInfo, &ei, sizeof ei))
		return mfs__fail_win(GetLastError(), "setting the size to %llu bytes",
		                     (unsigned long long)size);
	return 0;
}

int mfs__sealed(int fd)
{
	(void)fd;
	return 0; /* no seals on Windows */
}

int mfs__loc_set(struct mfs__loc *loc, const char *dir, const char *name)
{
	size_t n = strlen(dir);

	if (n >= sizeof loc->dir || strlen(name) >= sizeof loc->name ||
	    n + strlen(name) + 2 > sizeof loc->path)
		return mfs__fail(MFS_E_INVALID, "directory path too long: %s", dir);
	strcpy(loc->dir, dir);
	strcpy(loc->name, name);
	if (n > 0 && (dir[n - 1] == '\\' || dir[n - 1] == '/'))
		snprintf(loc->path, sizeof loc->path, "%s%s", dir, name);
	else
		snprintf(loc->path, sizeof loc->path, "%s\\%s", dir, name);
	return 0;
}

/* MFS_POPULATE: ask for the pages now (PrefetchVirtualMemory, Windows 8
 * and later; looked up at run time).  Best effort, no error. */
void mfs__populate(void *addr, uint64_t size, int write)
{
	typedef BOOL (WINAPI *prefetch_fn)(HANDLE, ULONG_PTR, PWIN32_MEMORY_RANGE_ENTRY, ULONG);
	static prefetch_fn fn;
	static volatile LONG looked;
	WIN32_MEMORY_RANGE_ENTRY e;

	(void)write;
	if (size == 0)
		return;
	if (!InterlockedCompareExchange(&looked, 1, 0)) {
		HMODULE k = GetModuleHandleW(L"kernel32.dll");
		if (k)
			fn = (prefetch_fn)(void (*)(void))GetProcAddress(k, "PrefetchVirtualMemory");
		InterlockedExchange(&looked, 2);
	}
	if (looked != 2 || !fn)
		return;
	e.VirtualAddress = addr;
	e.NumberOfBytes = (SIZE_T)size;
	fn(GetCurrentProcess(), 1, &e, 0);
}
