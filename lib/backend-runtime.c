/* SPDX-License-Identifier: MIT */
/*
 * MFS_BACKEND_RUNTIME_DIR: files in D/mfshare/KEY, D = opts.dir or
 * $XDG_RUNTIME_DIR (a per-user tmpfs, 0700, on systemd machines).  Who can
 * see them: only the user (the runtime dir is private; D/mfshare is made
 * 0700).  What can go wrong: no $XDG_RUNTIME_DIR outside a login session
 * (MFS_E_NOT_SUPPORTED), a small tmpfs (MFS_E_NO_RESOURCES at create), and
 * the directory removed at logout.
 */
#include "file-posix.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int runtime_locate(const char *key, const mfs_options *o, int create,
                          struct mfs__loc *loc)
{
	const char *base = o && o->dir ? o->dir : secure_getenv("XDG_RUNTIME_DIR");
	char dir[4096];
	struct stat st;

	if (!base || !*base)
		return mfs__fail(MFS_E_NOT_SUPPORTED, "RUNTIME_DIR backend: neither "
		                 "opts.dir nor $XDG_RUNTIME_DIR is set");
	if (snprintf(dir, sizeof dir, "%s/mfshare", base) >= (int)sizeof dir)
		return mfs__fail(MFS_E_INVALID, "runtime directory path too long");
	if (create) {
		if (mkdir(dir, 0700) == 0)
			chmod(dir, 0700); /* exactly 0700: the umask must not narrow it */
		else if (errno != EEXIST)
			return mfs__fail_errno(errno, "mkdir %s", dir);
	}
	if (lstat(dir, &st) == 0 && !S_ISDIR(st.st_mode))
		return mfs__fail(MFS_E_INVALID, "%s is not a directory", dir);
	return mfs__loc_set(loc, dir, key);
}

const struct mfs__backend mfs__backend_runtime = {
	.name = "runtime",
	.locate = runtime_locate,
	.make = mfs__dir_make,
	.publish = mfs__dir_publish,
	.open = mfs__dir_open,
	.unlink_same = mfs__dir_unlink_same,
};
