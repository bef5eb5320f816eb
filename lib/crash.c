/* SPDX-License-Identifier: MIT */
/*
 * Test builds only (configure --enable-crash-points): kill this process
 * with SIGKILL at the crash point $MFS_CRASH_AT names, so tests cover every
 * window of the protocols deterministically (see crash.h).
 */
#include "internal.h"
#include "crash.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef MFS_CRASH_POINTS_ENABLED
static __thread unsigned hits;

void mfs__crash_point(const char *name)
{
	const char *at = getenv("MFS_CRASH_AT");
	size_t n = strlen(name);
	unsigned want = 1;

	if (!at || strncmp(at, name, n) != 0 || (at[n] != '\0' && at[n] != ':'))
		return;
	if (at[n] == ':')
		want = (unsigned)strtoul(at + n + 1, NULL, 10);
	if (++hits >= want)
		kill(getpid(), SIGKILL);
}
#endif
