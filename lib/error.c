/* SPDX-License-Identifier: MIT */
/*
 * Error codes, their strings (from MFS_ERRNO_MAP), errno translation and
 * the per-thread detail message behind mfs_last_error().
 */
#include "internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static __thread char last[1024];

MFS_EXTERN const char *mfs_strerror(int err)
{
	switch (err) {
#define STR(name, val, str) case MFS_##name: return str;
	MFS_ERRNO_MAP(STR)
#undef STR
	}
	return "unknown libmfshare error code";
}

MFS_EXTERN const char *mfs_err_name(int err)
{
	switch (err) {
#define NAME(name, val, str) case MFS_##name: return #name;
	MFS_ERRNO_MAP(NAME)
#undef NAME
	}
	return "E_UNKNOWN_CODE";
}

MFS_EXTERN const char *mfs_last_error(void)
{
	return last;
}

int mfs__code_of_errno(int err)
{
	switch (err) {
	case 0: return MFS_OK;
	case EACCES: case EPERM: case EROFS: return MFS_E_PERMISSION;
	case ENOENT: return MFS_E_NOT_FOUND;
	case EEXIST: return MFS_E_EXISTS;
	case ENOMEM: case ENOSPC: case EMFILE: case ENFILE: case EFBIG:
#ifdef EDQUOT
	case EDQUOT:
#endif
	case EAGAIN: return MFS_E_NO_RESOURCES;
	case ELOOP: case ENXIO: case ENODEV: case ENOTDIR: case EISDIR:
		return MFS_E_CORRUPT;
	case EINVAL: case EBADF: return MFS_E_INVALID;
	case ETIMEDOUT: return MFS_E_TIMEOUT;
	case ENOSYS: case EOPNOTSUPP: return MFS_E_NOT_SUPPORTED;
	default: return MFS_E_UNKNOWN;
	}
}

static void vrecord(const char *fmt, va_list ap, const char *tail)
{
	int n = vsnprintf(last, sizeof last, fmt, ap);

	if (tail && n >= 0 && (size_t)n < sizeof last)
		snprintf(last + n, sizeof last - (size_t)n, ": %s", tail);
}

int mfs__fail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vrecord(fmt, ap, NULL);
	va_end(ap);
	return code;
}

int mfs__fail_errno(int err, const char *fmt, ...)
{
	char buf[256];
	va_list ap;

	/* strerror_r (GNU or XSI) into our own buffer: thread-safe. */
#if defined(__GLIBC__) && defined(_GNU_SOURCE)
	const char *msg = strerror_r(err, buf, sizeof buf);
#elif defined(_WIN32)
	const char *msg = strerror(err); /* msvcrt: a per-thread buffer */

	(void)buf;
#else
	const char *msg = strerror_r(err, buf, sizeof buf) == 0 ? buf : "error";
#endif
	va_start(ap, fmt);
	vrecord(fmt, ap, msg);
	va_end(ap);
	return mfs__code_of_errno(err);
}
