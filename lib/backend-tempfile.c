/* SPDX-License-Identifier: MIT */
/*
 * Windows backends: MFS_BACKEND_TEMPFILE (the default: files in
 * %TEMP%\mfshare\, or opts.dir\mfshare\) and MFS_BACKEND_FILE (files in
 * opts.dir).  SHM, RUNTIME_DIR and MEMFD do not exist on Windows
 * (MFS_E_NOT_SUPPORTED): their tables here only give the names the core
 * refers to.
 *
 * File names.  Keys are case-sensitive; NTFS names are not, and Win32
 * strips trailing dots and knows device names (CON, NUL.txt...).  A key
 * is stored as
 *
 *     "m-" + the key in lower case [+ "^" + case mask] + ".mfs"
 *
 * where the case mask says which bytes were upper-case letters: bit i for
 * byte i, five bits per digit of "0123456789abcdefghijklmnopqrstuv", least
 * significant first, up to the last non-zero digit; no "^" part when the
 * key has no upper-case letter.  "Key" is m-key^1.mfs, "key" m-key.mfs,
 * "KEY" m-key^7.mfs.  The encoding is one-to-one even ignoring case ('^'
 * is not a key byte and the mask is lower case), never ends in a dot, is
 * never a device name, and stays under 255 characters (2 + 200 + 41 + 4).
 *
 * Lifecycle.  A segment is made as ".tmp.PID.N" (CreateFileW CREATE_NEW,
 * FILE_ATTRIBUTE_TEMPORARY, sharing read, write and delete), sized,
 * reserved, filled, and renamed into place through its handle without
 * replacing anything (publish): nobody ever sees one half-made.  The name
 * is removed by the last detacher (or mfs_remove) through its handle:
 * first a POSIX-semantics delete (Windows 10: the name goes at once, even
 * while others map the file); where that is refused, the file is renamed
 * to ".dead.PID.N" at once (the key is free again) and deleted when its
 * last handle closes.  Names starting with '.' are never keys: leftovers
 * (".dead.*", ".tmp.*" of dead creators) are swept by the next create in
 * the directory.
 */
#include "win32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char digits[] = "0123456789abcdefghijklmnopqrstuv";

int mfs__win_encode_key(const char *key, char *name, size_t len)
{
	size_t n = strlen(key), i, o = 0, nd;
	unsigned char mask[(MFS_KEY_MAX + 4) / 5 + 1];

	if (n > MFS_KEY_MAX || len < n + 2 + 1 + sizeof mask + 5)
		return -1;
	memset(mask, 0, sizeof mask);
	name[o++] = 'm';
	name[o++] = '-';
	for (i = 0; i < n; i++) {
		char c = key[i];
		if (c >= 'A' && c <= 'Z') {
			mask[i / 5] |= (unsigned char)(1u << (i % 5));
			c = (char)(c - 'A' + 'a');
		}
		name[o++] = c;
	}
	for (nd = (n + 4) / 5; nd > 0 && mask[nd - 1] == 0; nd--)
		;
	if (nd > 0) {
		name[o++] = '^';
		for (i = 0; i < nd; i++)
			name[o++] = digits[mask[i]];
	}
	strcpy(name + o, ".mfs");
	return 0;
}

int mfs__win_decode_key(const char *name, char *key, size_t len)
{
	size_t n = strlen(name), kl, i;
	const char *caret, *end;
	char check[300];

	if (n < 7 || strncmp(name, "m-", 2) != 0 || strcmp(name + n - 4, ".mfs") != 0)
		return -1;
	end = name + n - 4;
	caret = memchr(name, '^', (size_t)(end - name));
	kl = (size_t)((caret ? caret : end) - (name + 2));
	if (kl == 0 || kl > MFS_KEY_MAX || kl >= len)
		return -1;
	memcpy(key, name + 2, kl);
	key[kl] = '\0';
	if (caret) {
		for (i = 0; caret + 1 + i < end; i++) {
			const char *d = strchr(digits, caret[1 + i]);
			unsigned b;
			if (!d || !*d)
				return -1;
			for (b = 0; b < 5; b++)
				if (((unsigned)(d - digits) >> b) & 1u) {
					size_t at = i * 5 + b;
					if (at >= kl || key[at] < 'a' || key[at] > 'z')
						return -1;
					key[at] = (char)(key[at] - 'a' + 'A');
				}
		}
	}
	/* Only the canonical spelling of a valid key is a key's file. */
	if (mfs__check_key(key) != 0 || mfs__win_encode_key(key, check, sizeof check) != 0 ||
	    strcmp(check, name) != 0)
		return -1;
	return 0;
}

/* ------------------------------------------------------------ helpers */

static int utf8_of(const wchar_t *w, char *s, size_t n)
{
	return WideCharToMultiByte(CP_UTF8, 0, w, -1, s, (int)n, NULL, NULL) > 0 ? 0 : -1;
}

/* The path of the file behind @h, "\\?\" stripped. */
static int path_of(HANDLE h, wchar_t *w, size_t n)
{
	DWORD len = GetFinalPathNameByHandleW(h, w, (DWORD)n, FILE_NAME_NORMALIZED | VOLUME_NAME_DOS);

	if (len == 0 || len >= n)
		return -1;
	if (wcsncmp(w, L"\\\\?\\UNC\\", 8) == 0) {
		memmove(w + 2, w + 8, (wcslen(w + 8) + 1) * sizeof *w);
	} else if (wcsncmp(w, L"\\\\?\\", 4) == 0) {
		memmove(w, w + 4, (wcslen(w + 4) + 1) * sizeof *w);
	}
	return 0;
}

/* Rename the file behind @h to the full path @to (no replacing unless
 * @replace): the file we hold, whatever its name meanwhile. */
static BOOL rename_handle(HANDLE h, const wchar_t *to, int replace)
{
	size_t n = wcslen(to);
	size_t sz = sizeof(FILE_RENAME_INFO) + (n + 8) * sizeof(wchar_t);
	FILE_RENAME_INFO *ri = calloc(1, sz);
	BOOL ok;

	if (!ri) {
		SetLastError(ERROR_NOT_ENOUGH_MEMORY);
		return FALSE;
	}
	ri->ReplaceIfExists = replace ? TRUE : FALSE;
	ri->RootDirectory = NULL;
	ri->FileNameLength = (DWORD)(n * sizeof(wchar_t));
	memcpy(ri->FileName, to, (n + 1) * sizeof(wchar_t));
	ok = SetFileInformationByHandle(h, FileRenameInfo, ri, (DWORD)sz);
	if (!ok && GetLastError() != ERROR_ALREADY_EXISTS && GetLastError() != ERROR_FILE_EXISTS &&
	    GetLastError() != ERROR_ACCESS_DENIED) {
		/* Older systems want an NT path here. */
		DWORD e = GetLastError();
		memcpy(ri->FileName, L"\\??\\", 4 * sizeof(wchar_t));
		memcpy(ri->FileName + 4, to, (n + 1) * sizeof(wchar_t));
		ri->FileNameLength = (DWORD)((n + 4) * sizeof(wchar_t));
		ok = SetFileInformationByHandle(h, FileRenameInfo, ri, (DWORD)sz);
		if (!ok)
			SetLastError(e);
	}
	free(ri);
	return ok;
}

static volatile LONG counter;

/* Delete what earlier segments left behind in @dir: ".dead.*" files (a
 * deletion that had to wait for other processes' views) and ".tmp.PID.*"
 * files whose creator died.  A file still in use refuses deletion. */
static void sweep(const char *dir)
{
	wchar_t w[4400], path[4700];
	WIN32_FIND_DATAW fd;
	HANDLE f;
	unsigned budget = 64;

	if (mfs__win_wide(dir, w, 4300) != 0)
		return;
	_snwprintf(path, sizeof path / sizeof path[0], L"%ls\\.*", w);
	path[sizeof path / sizeof path[0] - 1] = 0;
	f = FindFirstFileW(path, &fd);
	if (f == INVALID_HANDLE_VALUE)
		return;
	do {
		int del = 0;
		if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
			continue;
		if (wcsncmp(fd.cFileName, L".dead.", 6) == 0)
			del = 1;
		else if (wcsncmp(fd.cFileName, L".tmp.", 5) == 0)
			del = mfs__proc_alive((long)wcstoul(fd.cFileName + 5, NULL, 10), 0) == 0;
		if (del) {
			_snwprintf(path, sizeof path / sizeof path[0], L"%ls\\%ls", w, fd.cFileName);
			path[sizeof path / sizeof path[0] - 1] = 0;
			DeleteFileW(path);
		}
	} while (--budget > 0 && FindNextFileW(f, &fd));
	FindClose(f);
}

/* ------------------------------------------------------------ methods */

static int set_loc(const char *dir, const char *key, struct mfs__loc *loc)
{
	char name[300];

	if (mfs__win_encode_key(key, name, sizeof name) != 0)
		return mfs__fail(MFS_E_KEY, "key \"%.40s\" cannot be encoded", key);
	return mfs__loc_set(loc, dir, name);
}

static int tempfile_locate(const char *key, const mfs_options *o, int create,
                           struct mfs__loc *loc)
{
	wchar_t wt[MAX_PATH + 2], wd[4400];
	char base[4096], dir[4096];
	size_t n;
	DWORD attr;

	if (o && o->dir && *o->dir) {
		if (strlen(o->dir) >= sizeof base)
			return mfs__fail(MFS_E_INVALID, "directory path too long");
		strcpy(base, o->dir);
	} else {
		DWORD len = GetTempPathW(MAX_PATH + 1, wt);
		if (len == 0 || len > MAX_PATH || utf8_of(wt, base, sizeof base) != 0)
			return mfs__fail_win(GetLastError(), "GetTempPath");
	}
	n = strlen(base);
	while (n > 0 && (base[n - 1] == '\\' || base[n - 1] == '/'))
		base[--n] = '\0';
	if (snprintf(dir, sizeof dir, "%s\\mfshare", base) >= (int)sizeof dir)
		return mfs__fail(MFS_E_INVALID, "directory path too long");
	if (mfs__win_wide(dir, wd, sizeof wd / sizeof wd[0]) != 0)
		return MFS_E_INVALID;
	if (create && !CreateDirectoryW(wd, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
		return mfs__fail_win(GetLastError(), "CreateDirectory %s", dir);
	attr = GetFileAttributesW(wd);
	if (attr != INVALID_FILE_ATTRIBUTES && !(attr & FILE_ATTRIBUTE_DIRECTORY))
		return mfs__fail(MFS_E_INVALID, "%s is not a directory", dir);
	return set_loc(dir, key, loc);
}

static int file_locate(const char *key, const mfs_options *o, int create,
                       struct mfs__loc *loc)
{
	char dir[4096];
	size_t n;

	(void)create;
	if (!o || !o->dir || !*o->dir)
		return mfs__fail(MFS_E_INVALID, "FILE backend needs opts.dir");
	if (strlen(o->dir) >= sizeof dir)
		return mfs__fail(MFS_E_INVALID, "directory path too long");
	strcpy(dir, o->dir);
	n = strlen(dir);
	while (n > 1 && (dir[n - 1] == '\\' || dir[n - 1] == '/') && dir[n - 2] != ':')
		dir[--n] = '\0';
	return set_loc(dir, key, loc);
}

static int win_make(const struct mfs__loc *loc, unsigned mode, int *fd, int *named)
{
	char tmp[4400];
	wchar_t w[4400];
	HANDLE h;
	DWORD e;
	int r, tries = 0;

	(void)mode; /* Windows: the directory's ACL decides who may open */
	*named = 0;
	sweep(loc->dir);
	do {
		/* Unique while we live; a dead process's leftover of the same
		 * name (pids are reused) is only skipped, never reported as
		 * the key's name being taken. */
		snprintf(tmp, sizeof tmp, "%s\\.tmp.%lu.%llx.%ld", loc->dir,
		         (unsigned long)GetCurrentProcessId(),
		         (unsigned long long)GetTickCount64(), (long)InterlockedIncrement(&counter));
		if ((r = mfs__win_wide(tmp, w, sizeof w / sizeof w[0])) != 0)
			return r;
		h = CreateFileW(w, GENERIC_READ | GENERIC_WRITE | DELETE, MFS_WIN_SHARE, NULL,
		                CREATE_NEW, FILE_ATTRIBUTE_TEMPORARY, NULL);
		e = h == INVALID_HANDLE_VALUE ? GetLastError() : 0;
	} while ((e == ERROR_FILE_EXISTS || e == ERROR_ALREADY_EXISTS) && ++tries < 16);
	if (h == INVALID_HANDLE_VALUE)
		return mfs__fail_win(e == ERROR_FILE_EXISTS ? ERROR_TOO_MANY_NAMES : e,
		                     "create in %s", loc->dir);
	if ((r = mfs__win_fd(h, 1, fd)) != 0)
		return r;
	/* Until it is published, the file goes with its descriptor. */
	mfs__win_delete_at_close(*fd);
	return 0;
}

static int win_publish(const struct mfs__loc *loc, int fd)
{
	wchar_t w[4400];
	DWORD e;
	int r;

	if ((r = mfs__win_wide(loc->path, w, sizeof w / sizeof w[0])) != 0)
		return r;
	if (!rename_handle(mfs__win_handle(fd), w, 0)) {
		e = GetLastError();
		if (e == ERROR_ALREADY_EXISTS || e == ERROR_FILE_EXISTS)
			return mfs__fail(MFS_E_EXISTS, "create %s: the name is taken", loc->path);
		return mfs__fail_win(e, "rename into place as %s", loc->path);
	}
	mfs__win_keep_at_close(fd);
	return 0;
}

static int win_open(const struct mfs__loc *loc, int rw, int *fd)
{
	return mfs__open_regular(loc->path, rw, 1, fd);
}

struct disp_ex { DWORD flags; };
#define DISP_DELETE 0x1u
#define DISP_POSIX  0x2u

static int win_unlink_same(const struct mfs__loc *loc, int fd)
{
	BY_HANDLE_FILE_INFORMATION a, b;
	HANDLE h = mfs__win_handle(fd), n;
	wchar_t w[4400], dead[4500];
	struct disp_ex d = { DISP_DELETE | DISP_POSIX };
	int same;

	if (h == INVALID_HANDLE_VALUE || !GetFileInformationByHandle(h, &a))
		return mfs__fail_win(GetLastError(), "unlink %s", loc->path);
	if (mfs__win_wide(loc->path, w, sizeof w / sizeof w[0]) != 0)
		return MFS_E_INVALID;
	n = CreateFileW(w, FILE_READ_ATTRIBUTES, MFS_WIN_SHARE, NULL, OPEN_EXISTING,
	                FILE_FLAG_OPEN_REPARSE_POINT | FILE_FLAG_BACKUP_SEMANTICS, NULL);
	same = n != INVALID_HANDLE_VALUE && GetFileInformationByHandle(n, &b) &&
	       a.dwVolumeSerialNumber == b.dwVolumeSerialNumber &&
	       a.nFileIndexHigh == b.nFileIndexHigh && a.nFileIndexLow == b.nFileIndexLow;
	if (n != INVALID_HANDLE_VALUE)
		CloseHandle(n);
	/* Ours goes when our descriptor closes (after our view is unmapped),
	 * unless another process still maps it: then the last one's close, or
	 * a later sweep, deletes it. */
	mfs__win_delete_at_close(fd);
	if (!same)
		return 0; /* the name is gone or names another file */
	/* POSIX semantics (Windows 10): the name goes now. */
	if (SetFileInformationByHandle(h, (FILE_INFO_BY_HANDLE_CLASS)21 /* FileDispositionInfoEx */,
	                               &d, sizeof d))
		return 0;
	/* Else free the name at once by renaming our file (by its handle, so
	 * never another file that took the name meanwhile) out of the way. */
	_snwprintf(dead, sizeof dead / sizeof dead[0], L"%hs\\.dead.%lu.%ld", loc->dir,
	           (unsigned long)GetCurrentProcessId(), (long)InterlockedIncrement(&counter));
	dead[sizeof dead / sizeof dead[0] - 1] = 0;
	if (!rename_handle(h, dead, 1))
		return mfs__fail_win(GetLastError(), "unlink %s (rename away)", loc->path);
	return 0;
}

const struct mfs__backend mfs__backend_tempfile = {
	.name = "tempfile",
	.locate = tempfile_locate,
	.make = win_make,
	.publish = win_publish,
	.open = win_open,
	.unlink_same = win_unlink_same,
};

const struct mfs__backend mfs__backend_file = {
	.name = "file",
	.locate = file_locate,
	.make = win_make,
	.publish = win_publish,
	.open = win_open,
	.unlink_same = win_unlink_same,
};

/* Linux only: never handed out on Windows (mfs__backend_of gives NULL). */
const struct mfs__backend mfs__backend_shm = { .name = "shm" };
const struct mfs__backend mfs__backend_runtime = { .name = "runtime" };
const struct mfs__backend mfs__backend_memfd = { .name = "memfd" };

/* ------------------------------------------------------------ attach_fd */

static char *dupstr(const char *s)
{
	char *d = malloc(strlen(s) + 1);

	if (d)
		strcpy(d, s);
	return d;
}

void mfs__win_name_of_fd(mfs_segment *seg, int fd)
{
	wchar_t w[4400];
	char path[4400], key[MFS_KEY_MAX + 1], *slash;

	if (path_of(mfs__win_handle(fd), w, sizeof w / sizeof w[0]) != 0 ||
	    utf8_of(w, path, sizeof path) != 0)
		return;
	seg->native = dupstr(path);
	slash = strrchr(path, '\\');
	if (!slash || mfs__win_decode_key(slash + 1, key, sizeof key) != 0)
		return; /* not under a key's name (e.g. removed): no key */
	*slash = '\0';
	if (!(seg->loc = malloc(sizeof *seg->loc)))
		return;
	if (mfs__loc_set(seg->loc, path, slash + 1) != 0) {
		free(seg->loc);
		seg->loc = NULL;
		return;
	}
	seg->be = &mfs__backend_file; /* the same file methods as TEMPFILE */
	seg->named = 1;
	seg->key = dupstr(key);
}
