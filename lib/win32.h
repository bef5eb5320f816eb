/* SPDX-License-Identifier: MIT */
/*
 * Windows internals shared by the Windows OS layer (file-win32.c,
 * proc-win32.c, wait-win32.c, backend-tempfile.c, share-win32.c).
 *
 * Descriptors: the core passes `int fd` around; on Windows it is a CRT
 * descriptor made with _open_osfhandle over a file HANDLE (each one a file
 * object of its own: CreateFileW or ReOpenFile, never DuplicateHandle), so
 * byte-range locks taken through it are its own, like Linux OFD locks.
 */
#ifndef MFS_WIN32_H
#define MFS_WIN32_H

#include "internal.h"

#ifndef WIN32_LEAN_AND_MEAN
#define WIN32_LEAN_AND_MEAN
#endif
#include <windows.h>

/*
 * Tokens are LockFileEx byte-range locks.  Windows enforces byte-range
 * locks against ReadFile/WriteFile (not against mapped views), so a lock
 * on header byte B is taken at MFS_WIN_LOCK_BASE + B, far beyond any data,
 * where it can never make a reader's ReadFile of the header fail.  Only
 * Windows processes take them; see docs/FORMAT.md, "Windows".
 */
#define MFS_WIN_LOCK_BASE UINT64_C(0x4000000000000000)

/* Every file object opened with these share modes (read, write, delete),
 * so any opener may later rename or delete the file. */
#define MFS_WIN_SHARE (FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE)

/* A CRT descriptor over @h (which it then owns); -1 with detail set. */
int mfs__win_fd(HANDLE h, int rw, int *fd);
/* The HANDLE behind @fd, or INVALID_HANDLE_VALUE. */
HANDLE mfs__win_handle(int fd);
/* Map a Win32 error to a code, record "detail: system text", return it. */
int mfs__fail_win(DWORD err, const char *fmt, ...)
	__attribute__((format(gnu_printf, 2, 3)));
int mfs__code_of_win(DWORD err);
/* UTF-8 -> UTF-16 into @w of @n wide chars; 0, or MFS_E_INVALID. */
int mfs__win_wide(const char *s, wchar_t *w, size_t n);
/* Close @fd at the end: if marked, the file is deleted (its last handle). */
void mfs__win_delete_at_close(int fd);
void mfs__win_keep_at_close(int fd);

/* The wait layer's view of a mapping: the named semaphores of the
 * segment mapped at @base (see wait-win32.c). */
int mfs__win_wait_attach(void *base, uint64_t size, HANDLE file);
void mfs__win_wait_detach(void *base);

/* backend-tempfile.c: the encoded file name of @key ("m-" KEY in lower
 * case, "^" and the case mask if any letter is upper case, ".mfs"). */
int mfs__win_encode_key(const char *key, char *name, size_t len);
/* The key of an encoded name, or -1 when @name is not one. */
int mfs__win_decode_key(const char *name, char *key, size_t len);
/* Fill @seg's names (native path, key, location) from its descriptor. */
void mfs__win_name_of_fd(mfs_segment *seg, int fd);

#endif
