/* SPDX-License-Identifier: MIT */
/*
 * MFS_BACKEND_MEMFD: an anonymous memfd_create(2) file, described as
 * "mfshare:KEY" (the key is only a label and may be NULL).  Who can see it:
 * nobody without a descriptor (inherited, passed over a Unix socket, or
 * opened through /proc/PID/fd/N by the same user).  Once its header is
 * written it is sealed against shrinking and growing (and further seals),
 * so no peer can make the others fault by truncating it.  What can go
 * wrong: memfds count against the shmem limits like /dev/shm files; the
 * kernel frees it when its last descriptor and mapping go.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static int memfd_locate(const char *key, const mfs_options *o, int create,
                        struct mfs__loc *loc)
{
	(void)o; (void)create;
	loc->dir[0] = '\0';
	snprintf(loc->name, sizeof loc->name, key ? "mfshare:%s" : "mfshare", key);
	snprintf(loc->path, sizeof loc->path, "memfd:%s", loc->name);
	return 0;
}

static int memfd_make(const struct mfs__loc *loc, unsigned mode, int *fd, int *named)
{
	int f, r;

	*named = 0;
	f = memfd_create(loc->name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (f < 0)
		return mfs__fail_errno(errno, "memfd_create %s", loc->name);
	if (fchmod(f, (mode_t)mode) < 0) {
		r = mfs__fail_errno(errno, "fchmod %s", loc->path);
		close(f);
		return r;
	}
	*fd = f;
	return 0;
}

static int memfd_seal(int fd)
{
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		return mfs__fail_errno(errno, "sealing the memfd (F_ADD_SEALS)");
	return 0;
}

const struct mfs__backend mfs__backend_memfd = {
	.name = "memfd",
	.locate = memfd_locate,
	.make = memfd_make,
	.seal = memfd_seal,
};
