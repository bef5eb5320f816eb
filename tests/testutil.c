/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check test programs (see testutil.h). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int mt_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_set_fork_status(sr, CK_FORK);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

const char *mt_key(const char *tag)
{
	static char bufs[8][128];
	static unsigned n;
	char *b = bufs[n % 8];

	snprintf(b, sizeof bufs[0], "t-%s-%ld-%u-%ld", tag, (long)getpid(), n++,
	         (long)(time(NULL) % 100000));
	return b;
}

const char *mt_tmpdir(void)
{
	static char bufs[4][256];
	static unsigned n;
	char *b = bufs[n++ % 4];
	const char *t = getenv("TMPDIR");

	snprintf(b, sizeof bufs[0], "%s/mfs-test-XXXXXX", t && *t ? t : "/tmp");
	if (!mkdtemp(b))
		return NULL;
	return b;
}

void mt_rmtree(const char *dir)
{
	char cmd[600];

	if (!dir || !*dir || strcmp(dir, "/") == 0)
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "mt_rmtree: could not remove %s\n", dir);
}

pid_t mt_spawn(int (*fn)(void *), void *arg)
{
	pid_t p = fork();

	if (p == 0)
		_exit(fn(arg) & 255);
	return p;
}

uint64_t mt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void mt_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int mt_wait(pid_t pid, int ms)
{
	uint64_t end = mt_now_ms() + (uint64_t)ms;
	int st;
	pid_t r;

	for (;;) {
		r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			break;
		if (r < 0)
			return -1;
		if (mt_now_ms() >= end) {
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return -1;
		}
		mt_sleep_ms(2);
	}
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

int mt_alive(pid_t pid)
{
	siginfo_t si;

	memset(&si, 0, sizeof si);
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) < 0)
		return 0;
	return si.si_pid == 0;
}

struct mt_barrier {
	volatile unsigned count;
	unsigned parties;
};

mt_barrier *mt_barrier_new(unsigned parties)
{
	mt_barrier *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
	                     MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (b == MAP_FAILED)
		return NULL;
	b->count = 0;
	b->parties = parties;
	return b;
}

void mt_barrier_wait(mt_barrier *b)
{
	__atomic_add_fetch(&b->count, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&b->count, __ATOMIC_SEQ_CST) < b->parties)
		mt_sleep_ms(1);
}

int mt_count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* the DIR's own descriptor */
}

unsigned char *mt_slurp(const char *path, size_t max, size_t *len)
{
	unsigned char *buf = malloc(max ? max : 1);
	size_t got = 0;
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);

	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return NULL;
	}
	while (got < max && (n = read(fd, buf + got, max - got)) > 0)
		got += (size_t)n;
	close(fd);
	*len = got;
	return buf;
}

void mt_sweep_shm(const char *tag, const char *who)
{
	char prefix[64], path[600];
	struct dirent *e;
	DIR *d;

	snprintf(prefix, sizeof prefix, "mfshare.t-%s-", tag);
	if (!(d = opendir("/dev/shm")))
		return;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, prefix, strlen(prefix)) == 0) {
			snprintf(path, sizeof path, "/dev/shm/%s", e->d_name);
			fprintf(stderr, "%s: removing leftover %s\n", who, path);
			if (unlink(path) < 0)
				rmdir(path);
		}
	closedir(d);
}
