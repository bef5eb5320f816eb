/* SPDX-License-Identifier: MIT */
/*
 * Process identity on Linux: pid, kernel thread id and start time (field
 * 22 of /proc/PID/stat), cached per thread so the lock's fast path makes
 * no system call, and reset in a fork()ed child.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* initial-exec: one %fs-relative load on the lock's fast path instead of
 * a __tls_get_addr call (16 bytes of static TLS). */
__thread struct mfs__self mfs__self_tls __attribute__((tls_model("initial-exec")));
#define self mfs__self_tls

static int read_stat(long pid, char *buf, size_t len)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	do
		n = read(fd, buf, len - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return 0;
}

/* After the last ')' (the command name may hold anything) come field 3
 * (state), 4, ...: skip fields 3-21, then read field 22 (start time). */
static int parse_stat(const char *buf, char *state, uint64_t *start)
{
	const char *p = strrchr(buf, ')');
	int field;

	if (!p)
		return -1;
	p++;
	for (field = 3; field < 22 && *p; field++) {
		while (*p == ' ')
			p++;
		if (field == 3)
			*state = *p;
		while (*p && *p != ' ')
			p++;
	}
	while (*p == ' ')
		p++;
	if (!*p)
		return -1;
	*start = strtoull(p, NULL, 10);
	return 0;
}

uint64_t mfs__proc_start(long pid)
{
	char buf[1024], state;
	uint64_t start;

	if (read_stat(pid, buf, sizeof buf) < 0 || parse_stat(buf, &state, &start) < 0)
		return 0;
	return start;
}

int mfs__proc_alive(long pid, uint64_t start)
{
	char buf[1024], state = 0;
	uint64_t st = 0;

	if (pid <= 0)
		return 0;
	if (read_stat(pid, buf, sizeof buf) < 0)
		return errno == ENOENT || errno == ESRCH ? 0 : -1;
	if (parse_stat(buf, &state, &st) < 0)
		return -1;
	if (state == 'Z' || state == 'X' || state == 'x')
		return 0;
	if (start && st != start)
		return 0;
	return 1;
}

const struct mfs__self *mfs__self(void)
{
	if (self.tid == 0) {
		self.pid = (uint32_t)getpid();
		self.tid = (uint32_t)syscall(SYS_gettid);
		self.start = mfs__proc_start(self.pid);
	}
	return &self;
}

void mfs__self_reset(void)
{
	self.tid = 0;
}

uint64_t mfs__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mfs__sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}
