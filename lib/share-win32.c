/* SPDX-License-Identifier: MIT */
/*
 * Handing a segment to another process, on Windows.  mfs_export_fd gives
 * a new descriptor of the segment's file (its own file object); locators
 * are "file:PATH" and "fd:N".  Descriptor passing (mfs_spawn,
 * mfs_attach_inherited, mfs_send, mfs_recv) is Linux-only and answers
 * MFS_E_NOT_SUPPORTED: on Windows another process attaches by key (or by
 * the locator's path).
 */
#include "win32.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

MFS_EXTERN int mfs_export_fd(const mfs_segment *seg, int inheritable, int *fd)
{
	if (fd)
		*fd = -1;
	if (!seg || !fd)
		return mfs__fail(MFS_E_INVALID, "mfs_export_fd: NULL argument");
	if (inheritable)
		return mfs__fail(MFS_E_NOT_SUPPORTED, "mfs_export_fd: inheritable "
		                 "descriptors are not supported on Windows");
	return mfs__reopen(seg->fd, 1, fd);
}

MFS_EXTERN int mfs_spawn(const mfs_segment *seg, const char *file, char *const argv[],
                         char *const envp[], int child_fd, long *pid)
{
	(void)seg; (void)file; (void)argv; (void)envp; (void)child_fd;
	if (pid)
		*pid = 0;
	return mfs__fail(MFS_E_NOT_SUPPORTED, "mfs_spawn: Linux only; on Windows "
	                 "pass the key (or mfs_locator) to the child");
}

MFS_EXTERN int mfs_attach_inherited(const mfs_options *opts, mfs_segment **out)
{
	(void)opts;
	if (out)
		*out = NULL;
	return mfs__fail(MFS_E_NOT_SUPPORTED, "mfs_attach_inherited: Linux only");
}

MFS_EXTERN int mfs_send(int sock, const mfs_segment *seg)
{
	(void)sock; (void)seg;
	return mfs__fail(MFS_E_NOT_SUPPORTED, "mfs_send: Linux only (SCM_RIGHTS)");
}

MFS_EXTERN int mfs_recv(int sock, const mfs_options *opts, int timeout_ms,
                        mfs_segment **out)
{
	(void)sock; (void)opts; (void)timeout_ms;
	if (out)
		*out = NULL;
	return mfs__fail(MFS_E_NOT_SUPPORTED, "mfs_recv: Linux only (SCM_RIGHTS)");
}

MFS_EXTERN int mfs_locator(const mfs_segment *seg, char *buf, size_t len)
{
	int n;

	if (!seg || !buf)
		return mfs__fail(MFS_E_INVALID, "mfs_locator: NULL argument");
	if (!seg->named || !seg->loc)
		return mfs__fail(MFS_E_NOT_SUPPORTED, "mfs_locator: this segment has "
		                 "no name (it was removed)");
	n = snprintf(buf, len, "file:%s", seg->loc->path);
	if (n < 0 || (size_t)n >= len)
		return mfs__fail(MFS_E_INVALID, "mfs_locator: buffer of %zu bytes too small", len);
	return 0;
}

MFS_EXTERN int mfs_attach_locator(const char *locator, const mfs_options *opts,
                                  mfs_segment **out)
{
	char path[4200], key[MFS_KEY_MAX + 1], *slash, *end;
	mfs_options o;
	long v;

	if (out)
		*out = NULL;
	if (!locator || !out)
		return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: NULL argument");
	memset(&o, 0, sizeof o);
	o.flags = opts ? opts->flags : 0;
	if (strncmp(locator, "file:", 5) == 0) {
		if (strlen(locator + 5) >= sizeof path)
			return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: path too long");
		strcpy(path, locator + 5);
		slash = strrchr(path, '\\');
		if (!slash || (strrchr(path, '/') > slash))
			slash = strrchr(path, '/');
		if (!slash || slash == path)
			return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: \"%.60s\": "
			                 "file: needs a full path", locator);
		*slash = '\0';
		if (mfs__win_decode_key(slash + 1, key, sizeof key) != 0)
			return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: \"%.60s\": "
			                 "not the file of a key", locator);
		o.backend = MFS_BACKEND_FILE;
		o.dir = path;
		return mfs_attach(key, &o, out);
	}
	if (strncmp(locator, "fd:", 3) == 0) {
		errno = 0;
		v = strtol(locator + 3, &end, 10);
		if (locator[3] < '0' || locator[3] > '9' || errno || *end || v > INT_MAX)
			return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: \"%.60s\": bad "
			                 "descriptor number", locator);
		return mfs_attach_fd((int)v, &o, out);
	}
	if (strncmp(locator, "shm:", 4) == 0 || strncmp(locator, "memfd:", 6) == 0)
		return mfs__fail(MFS_E_NOT_SUPPORTED, "mfs_attach_locator: \"%.60s\": "
		                 "Linux only", locator);
	return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: \"%.60s\": unknown form "
	                 "(file:, fd:)", locator);
}
