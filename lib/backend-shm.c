/* SPDX-License-Identifier: MIT */
/*
 * MFS_BACKEND_SHM (the default on Linux): POSIX shared memory, i.e. files
 * in /dev/shm (glibc's shm_open directory), named "mfshare.KEY" so they
 * never meet other programs' objects.  Who can see them: everyone can list
 * /dev/shm; the mode (0600 by default) decides who can open.  What can go
 * wrong: /dev/shm is a tmpfs of limited size (half of RAM by default): a
 * size it cannot hold fails at create (MFS_E_NO_RESOURCES); the sticky bit
 * lets only the owner unlink.
 */
#include "file-posix.h"

#include <string.h>

#define SHM_DIR "/dev/shm"

static int shm_locate(const char *key, const mfs_options *o, int create,
                      struct mfs__loc *loc)
{
	char name[256];

	(void)o; (void)create;
	strcpy(name, "mfshare.");
	strcat(name, key); /* key <= 200 bytes, checked */
	return mfs__loc_set(loc, SHM_DIR, name);
}

const struct mfs__backend mfs__backend_shm = {
	.name = "shm",
	.locate = shm_locate,
	.make = mfs__dir_make,
	.publish = mfs__dir_publish,
	.open = mfs__dir_open,
	.unlink_same = mfs__dir_unlink_same,
};
