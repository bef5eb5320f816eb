/* SPDX-License-Identifier: MIT */
/*
 * MFS_BACKEND_FILE: the file opts.dir/KEY, in a directory the caller
 * picks.  Who can see them: whoever can search that directory; the mode
 * decides who can open.  What can go wrong: on a disk file system the data
 * is written back to disk (use a tmpfs for pure IPC); a file system
 * without O_TMPFILE makes the segment under its name (attachers wait for
 * its creator); network file systems may not honour the OFD locks the
 * crash-safety relies on: keep segments on local file systems.
 */
#include "file-posix.h"

static int file_locate(const char *key, const mfs_options *o, int create,
                       struct mfs__loc *loc)
{
	(void)create;
	if (!o || !o->dir || !*o->dir)
		return mfs__fail(MFS_E_INVALID, "FILE backend needs opts.dir");
	return mfs__loc_set(loc, o->dir, key);
}

const struct mfs__backend mfs__backend_file = {
	.name = "file",
	.locate = file_locate,
	.make = mfs__dir_make,
	.publish = mfs__dir_publish,
	.open = mfs__dir_open,
	.unlink_same = mfs__dir_unlink_same,
};
