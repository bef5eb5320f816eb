/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check test programs (see testutil.h). */
#include "testutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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

int mt_begin(const char *abbrev, char *tag, size_t tagsz, char *root,
             size_t rootsz)
{
	const char *t = getenv("TMPDIR");

	snprintf(tag, tagsz, "%s%ld", abbrev, (long)getpid());
	snprintf(root, rootsz, "%s/mfs-%s-XXXXXX", t && *t ? t : "/tmp", abbrev);
	if (!mkdtemp(root))
		return -1;
	setenv("TMPDIR", root, 1);
	return 0;
}

int mt_run_clean(Suite *s, const char *tag, const char *who, const char *root)
{
	int rc = mt_run(s);

	mt_sweep_shm(tag, who);
	mt_rmtree(root);
	return rc;
}

TCase *mt_tcase(Suite *s, const char *name, int timeout,
                void (*teardown)(void))
{
	TCase *tc = tcase_create(name);

	tcase_set_timeout(tc, timeout);
	if (teardown)
		tcase_add_unchecked_fixture(tc, NULL, teardown);
	if (s)
		suite_add_tcase(s, tc);
	return tc;
}

int mt_ld(int *p)
{
	return __atomic_load_n(p, __ATOMIC_SEQ_CST);
}

void mt_put(int *p, int v)
{
	__atomic_store_n(p, v, __ATOMIC_SEQ_CST);
}

int mt_add(int *p, int v)
{
	return __atomic_add_fetch(p, v, __ATOMIC_SEQ_CST);
}

int mt_await(int *p, int want, int ms)
{
	uint64_t end = mt_now_ms() + (uint64_t)ms;

	while (mt_ld(p) < want) {
		if (mt_now_ms() >= end)
			return 0;
		mt_sleep_ms(1);
	}
	return 1;
}

void *mt_shared_new(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	ck_assert_msg(p != MAP_FAILED, "mmap: %s", strerror(errno));
	memset(p, 0, size);
	return p;
}

pid_t mt_spawn_tied(int (*fn)(void *), void *arg)
{
	pid_t parent = getpid(), p;

	p = fork();
	if (p == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(99);
		_exit(fn(arg) & 255);
	}
	ck_assert_msg(p > 0, "fork: %s", strerror(errno));
	return p;
}

mfs_segment *mt_create_keyed(char *key, size_t keysz, const char *tag,
                             size_t size)
{
	mfs_segment *s = NULL;
	int r;

	snprintf(key, keysz, "%s", mt_key(tag));
	r = mfs_create(key, size, NULL, &s);
	ck_assert_msg(r == 0, "create %s: %s (%s)", key, mfs_err_name(r),
	              mfs_last_error());
	return s;
}

void mt_finish(mfs_segment *s, const char *key)
{
	ck_assert_int_eq(mfs_detach(s), 0);
	ck_assert_int_eq(mfs_remove(key, NULL), MFS_E_NOT_FOUND);
}

void mt_sweep_keys(const char *tag, const char *who)
{
	char probe[64], path[4400], *slash;
	size_t plen, klen;
	struct dirent *e;
	DIR *d;

	snprintf(probe, sizeof probe, "t-%s-", tag);
	if (mfs_native_path(probe, NULL, path, sizeof path) != 0)
		return;
	slash = strrchr(path, '/');
	if (!slash)
		return;
	*slash++ = '\0';
	plen = strlen(slash);          /* "mfshare.t-TAG-" */
	klen = plen - strlen(probe);   /* length of "mfshare." */
	d = opendir(path);
	if (!d)
		return;
	while ((e = readdir(d)))
		if (strncmp(e->d_name, slash, plen) == 0) {
			fprintf(stderr, "%s: removing leftover %s\n", who, e->d_name);
			(void)mfs_remove(e->d_name + klen, NULL);
		}
	closedir(d);
}

int mt_exists(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0;
}

void mt_fill(void *p, size_t n, unsigned seed)
{
	unsigned char *d = p;
	size_t i;

	for (i = 0; i < n; i++)
		d[i] = (unsigned char)(seed + i * 7);
}

int mt_same(const void *p, size_t n, unsigned seed)
{
	const unsigned char *d = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (d[i] != (unsigned char)(seed + i * 7))
			return 0;
	return 1;
}

int mt_all_zero(const void *p, size_t n)
{
	const unsigned char *d = p;
	size_t i;

	for (i = 0; i < n; i++)
		if (d[i])
			return 0;
	return 1;
}

int mt_dir_names(const char *dir, char ***names, size_t *n)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	size_t cap = 0;

	*names = NULL;
	*n = 0;
	if (!d)
		return -1;
	while ((e = readdir(d))) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (*n == cap) {
			cap = cap ? cap * 2 : 64;
			*names = realloc(*names, cap * sizeof **names);
			if (!*names)
				abort();
		}
		(*names)[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
	return 0;
}

void mt_free_names(char **names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

int mt_listed(char **names, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return 1;
	return 0;
}

mfs_stat mt_stat(mfs_segment *s)
{
	mfs_stat st;
	int r = mfs_stat_segment(s, &st);

	ck_assert_msg(r == 0, "stat: %s", mfs_err_name(r));
	return st;
}

long mt_reap_cpu_us(pid_t pid, int ms)
{
	uint64_t end = mt_now_ms() + (uint64_t)ms;
	struct rusage ru;
	pid_t r = 0;
	int st = 0;

	while ((r = wait4(pid, &st, WNOHANG, &ru)) == 0 && mt_now_ms() < end)
		mt_sleep_ms(2);
	ck_assert_int_eq(r, pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec +
	       ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec;
}

int mt_wait_refcount(mfs_segment *s, uint32_t want, unsigned ms)
{
	uint64_t t0 = mt_now_ms();
	mfs_stat st;

	for (;;) {
		MT_EXPECT(mfs_stat_segment(s, &st), 0);
		if (st.refcount == want)
			return (int)(mt_now_ms() - t0);
		if (mt_now_ms() - t0 > ms)
			return -1;
		mt_sleep_ms(1);
	}
}

pid_t mt_exec_peer(const char *path, const char *const *args, int keep,
                   int *to, int *from)
{
	const char *argv[32];
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, n = 0;
	pid_t p;

	argv[n++] = path;
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	if (to)
		ck_assert_int_eq(pipe2(in, O_CLOEXEC), 0);
	if (from)
		ck_assert_int_eq(pipe2(out, O_CLOEXEC), 0);
	p = fork();
	ck_assert_int_ge(p, 0);
	if (p == 0) {
		if (to && dup2(in[0], 0) < 0)
			_exit(126);
		if (from && dup2(out[1], 1) < 0)
			_exit(126);
		if (keep >= 0 && fcntl(keep, F_SETFD, 0) < 0)
			_exit(126);
		execv(path, (char *const *)argv);
		_exit(127);
	}
	if (to) {
		close(in[0]);
		*to = in[1];
	}
	if (from) {
		close(out[1]);
		*from = out[0];
	}
	return p;
}

/* printf into slot @i of a static array of @size-byte buffers at @bufs
 * (the rotating static results below); returns the slot. */
static const char *slot_printf(char *bufs, size_t size, unsigned i,
                               const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static const char *slot_printf(char *bufs, size_t size, unsigned i,
                               const char *fmt, ...)
{
	char *b = bufs + (size_t)i * size;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(b, size, fmt, ap);
	va_end(ap);
	return b;
}

const char *mt_shm_path(const char *key)
{
	static char bufs[4][300];
	static unsigned n;

	return slot_printf((char *)bufs, sizeof bufs[0], n++ % 4,
	                   "/dev/shm/mfshare.%s", key);
}

const char *mt_read_line(int fd, unsigned ms)
{
	static char buf[256];
	uint64_t end = mt_now_ms() + ms;
	struct pollfd p;
	size_t n = 0;
	ssize_t r;

	for (;;) {
		int left = (int)(end - mt_now_ms());

		if (left <= 0 || (unsigned)left > ms)
			return NULL;
		p.fd = fd;
		p.events = POLLIN;
		if (poll(&p, 1, left) <= 0)
			continue;
		r = read(fd, buf + n, 1);
		if (r <= 0)
			return NULL;
		if (buf[n] == '\n' || n + 2 >= sizeof buf) {
			buf[n] = '\0';
			return buf;
		}
		n++;
	}
}

const char *mt_itoa(long v)
{
	static char bufs[8][24];
	static unsigned n;

	return slot_printf((char *)bufs, sizeof bufs[0], n++ % 8, "%ld", v);
}

const char *mt_proc_fd(long pid, int fd)
{
	static char bufs[4][64];
	static unsigned n;

	return slot_printf((char *)bufs, sizeof bufs[0], n++ % 4,
	                   "/proc/%ld/fd/%d", pid, fd);
}

char *mt_read_all(int fd, int newline_first)
{
	size_t cap = 65536, n = newline_first ? 1 : 0;
	char *buf = malloc(cap + 1 + n);
	ssize_t r;

	ck_assert_ptr_nonnull(buf);
	if (newline_first)
		buf[0] = '\n';
	while (n < cap && (r = read(fd, buf + n, cap - n)) != 0) {
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			break;
		n += (size_t)r;
	}
	buf[n] = '\0';
	return buf;
}

int mt_find_attacher(const mfs_attacher *att, unsigned n, long pid)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (att[i].pid == pid)
			return (int)i;
	return -1;
}

void mt_remove_object(const char *path)
{
	struct stat st;

	if (!path[0] || lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode))
		rmdir(path);
	else
		unlink(path);
}

void mt_note_path(unsigned *n, char *paths, size_t size, unsigned max,
                  const char *path)
{
	size_t len = strlen(path);
	unsigned i;

	if (len >= size)
		return;
	i = __atomic_fetch_add(n, 1, __ATOMIC_SEQ_CST);
	if (i < max)
		memcpy(paths + (size_t)i * size, path, len + 1);
}

void mt_remove_noted(unsigned *n, char *paths, size_t size, unsigned max)
{
	unsigned i, k = *n < max ? *n : max;

	for (i = 0; i < k; i++)
		mt_remove_object(paths + (size_t)i * size);
	*n = 0;
}
