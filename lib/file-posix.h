/* SPDX-License-Identifier: MIT */
/* The methods shared by the backends whose segments are files in a
 * directory (SHM, RUNTIME_DIR, FILE): see file-posix.c. */
#ifndef MFS_FILE_POSIX_H
#define MFS_FILE_POSIX_H

#include "internal.h"

int mfs__dir_make(const struct mfs__loc *loc, unsigned mode, int *fd, int *named);
int mfs__dir_publish(const struct mfs__loc *loc, int fd);
int mfs__dir_open(const struct mfs__loc *loc, int rw, int *fd);
int mfs__dir_unlink_same(const struct mfs__loc *loc, int fd);

#endif
