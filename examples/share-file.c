/* SPDX-License-Identifier: MIT */
/*
 * share-file: the README's example.  `put` publishes a file's bytes in a
 * new segment and stays attached; `get` attaches from another process,
 * waits for the data and checks it against its own copy of the file.
 * Shows create/attach, the lock, notify/wait and detach in a short program.
 */
#include <mfshare.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*
 * Our layout of the segment's data: this header, then the file's bytes.
 * The writer fills both under the lock, then calls mfs_notify(); the
 * change counter going from 0 to 1 is what tells readers the data is there.
 */
struct share_header {
	uint64_t length;   /* bytes of file data that follow */
	uint64_t checksum; /* FNV-1a-64 of those bytes */
};

#define WAIT_MS 10000 /* how long `get` waits for `put` to publish */

static const char *prog = "share-file";
static volatile sig_atomic_t stop;

static int mfs_fail(const char *what, const char *key, int err)
{
	fprintf(stderr, "%s: %s %s: %s: %s\n", prog, what, key,
	        mfs_strerror(err), mfs_last_error());
	return 1;
}

static int sys_fail(const char *what, const char *name)
{
	fprintf(stderr, "%s: %s %s: %s\n", prog, what, name, strerror(errno));
	return 1;
}

static uint64_t fnv1a64(const unsigned char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325u;

	while (n--) {
		h ^= *p++;
		h *= 0x100000001b3u;
	}
	return h;
}

/* Read exactly @n bytes of @fd into @buf; 0, or -1 with errno (EIO when
 * the file ended early). */
static int read_all(int fd, unsigned char *buf, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, buf, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0) {
			errno = EIO;
			return -1;
		}
		buf += r;
		n -= (size_t)r;
	}
	return 0;
}

static void on_signal(int sig)
{
	stop = 1;
}

/* Stay attached until stdin reaches EOF, or SIGINT/SIGTERM arrives. */
static void hold(const char *who, const char *key)
{
	struct sigaction sa;
	char buf[256];

	printf("%s: %s: attached; end stdin or send SIGTERM to detach\n", who, key);
	fflush(stdout);
	while (!stop) {
		ssize_t r = read(STDIN_FILENO, buf, sizeof buf);

		if (r == 0 || (r < 0 && errno != EINTR))
			break;
	}
	/* Once detaching, a second signal takes its default action. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* Catch SIGINT/SIGTERM without SA_RESTART, so that read() returns. */
static void catch_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

static int put(const char *key, const char *file)
{
	struct share_header *sh;
	unsigned char *data;
	mfs_segment *seg;
	struct stat st;
	size_t len;
	int fd, r;

	if ((fd = open(file, O_RDONLY)) < 0)
		return sys_fail("open", file);
	if (fstat(fd, &st) < 0) {
		sys_fail("stat", file);
		close(fd);
		return 1;
	}
	if (!S_ISREG(st.st_mode)) {
		fprintf(stderr, "%s: %s: not a regular file\n", prog, file);
		close(fd);
		return 1;
	}
	len = (size_t)st.st_size;
	catch_signals();

	/* A new segment, all zero: the readers' "not yet" state. */
	if ((r = mfs_create(key, sizeof *sh + len, NULL, &seg)) != 0) {
		close(fd);
		return mfs_fail("create", key, r);
	}
	sh = mfs_data(seg);
	data = (unsigned char *)(sh + 1);

	/* Fill it under the lock, so no reader sees half a file. */
	if ((r = mfs_lock(seg)) != 0) {
		mfs_fail("lock", key, r);
		goto fail;
	}
	if (read_all(fd, data, len) < 0) {
		sys_fail("read", file);
		mfs_unlock(seg);
		goto fail;
	}
	sh->length = len;
	sh->checksum = fnv1a64(data, len);
	if ((r = mfs_unlock(seg)) != 0) {
		mfs_fail("unlock", key, r);
		goto fail;
	}
	close(fd);
	fd = -1;
	/* Wake readers waiting in mfs_wait(). */
	if ((r = mfs_notify(seg)) != 0) {
		mfs_fail("notify", key, r);
		goto fail;
	}
	printf("put: %s: %zu bytes, checksum %016llx\n", key, len,
	       (unsigned long long)sh->checksum);

	hold("put", key);
	/* The last detach removes the segment. */
	if ((r = mfs_detach(seg)) != 0)
		return mfs_fail("detach", key, r);
	printf("put: %s: detached\n", key);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	mfs_detach(seg);
	return 1;
}

static int get(const char *key, const char *file, int keep)
{
	const mfs_options ro = { .flags = MFS_READ_ONLY };
	const struct share_header *sh;
	const unsigned char *data;
	unsigned char *mine = NULL;
	uint64_t len, sum;
	mfs_segment *seg;
	uint32_t seen = 0;
	struct stat st;
	size_t i, n;
	int fd = -1, r, bad = 1;

	catch_signals();
	/* Read-only: the data cannot be written through this handle, yet it
	 * can still lock and wait. */
	if ((r = mfs_attach(key, &ro, &seg)) != 0)
		return mfs_fail("attach", key, r);
	sh = mfs_const_data(seg);
	data = (const unsigned char *)(sh + 1);

	/* Returns at once if `put` already notified, else sleeps until it does. */
	r = mfs_wait(seg, &seen, 0);
	if (r == MFS_E_TIMEOUT) {
		printf("get: %s: waiting for the data\n", key);
		fflush(stdout);
		r = mfs_wait(seg, &seen, WAIT_MS);
	}
	if (r != 0) {
		mfs_fail("wait for the data in", key, r);
		goto out;
	}

	r = mfs_lock(seg);
	if (r == MFS_E_OWNER_DEAD)
		fprintf(stderr, "%s: %s: the writer died holding the lock; "
		        "checking what it left\n", prog, key);
	else if (r != 0) {
		mfs_fail("lock", key, r);
		goto out;
	}
	len = sh->length;
	if (mfs_size(seg) < sizeof *sh || len > mfs_size(seg) - sizeof *sh) {
		mfs_unlock(seg);
		printf("get: %s: mismatch: the header says %llu bytes, the segment "
		       "has %zu in all\n", key, (unsigned long long)len,
		       mfs_size(seg));
		goto out;
	}
	n = (size_t)len;
	sum = fnv1a64(data, n);

	/* Our own copy of the file, to compare with. */
	if ((fd = open(file, O_RDONLY)) < 0 || fstat(fd, &st) < 0) {
		mfs_unlock(seg);
		sys_fail("open", file);
		goto out;
	}
	if ((uint64_t)st.st_size != len) {
		mfs_unlock(seg);
		printf("get: %s: mismatch: %llu bytes shared, %s has %lld\n", key,
		       (unsigned long long)len, file, (long long)st.st_size);
		goto out;
	}
	if (!(mine = malloc(n ? n : 1)) || read_all(fd, mine, n) < 0) {
		mfs_unlock(seg);
		sys_fail("read", file);
		goto out;
	}
	for (i = 0; i < n && data[i] == mine[i]; i++)
		;
	if ((r = mfs_unlock(seg)) != 0) {
		mfs_fail("unlock", key, r);
		goto out;
	}

	if (i < n)
		printf("get: %s: mismatch at byte %zu of %zu\n", key, i, n);
	else if (sum != sh->checksum)
		printf("get: %s: mismatch: checksum %016llx, the header says "
		       "%016llx\n", key, (unsigned long long)sum,
		       (unsigned long long)sh->checksum);
	else {
		printf("get: %s: %zu bytes verified\n", key, n);
		bad = 0;
	}
	if (keep && !bad)
		hold("get", key);
out:
	free(mine);
	if (fd >= 0)
		close(fd);
	if ((r = mfs_detach(seg)) != 0)
		return mfs_fail("detach", key, r);
	if (keep && !bad)
		printf("get: %s: detached\n", key);
	return bad;
}

static int usage(FILE *f)
{
	fprintf(f, "usage: %s put KEY FILE\n"
	        "       %s get [--hold] KEY FILE\n"
	        "put: share FILE in a new segment KEY and stay attached until stdin\n"
	        "     ends or SIGINT/SIGTERM.\n"
	        "get: attach to KEY, wait for the data, check it against FILE (exit 0\n"
	        "     if equal, 1 if not); --hold: then stay attached as put does.\n",
	        prog, prog);
	return f == stdout ? 0 : 2;
}

int main(int argc, char **argv)
{
	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return usage(stdout);
	if (argc == 4 && !strcmp(argv[1], "put"))
		return put(argv[2], argv[3]);
	if (argc == 4 && !strcmp(argv[1], "get") && strcmp(argv[2], "--hold"))
		return get(argv[2], argv[3], 0);
	if (argc == 5 && !strcmp(argv[1], "get") && !strcmp(argv[2], "--hold"))
		return get(argv[3], argv[4], 1);
	return usage(stderr);
}
