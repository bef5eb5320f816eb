/* SPDX-License-Identifier: MIT */
/*
 * sock-send: hand a segment to an unrelated process over a Unix-domain
 * socket.  Creates a memfd segment, writes a message into it, listens on
 * the socket PATH, sends the segment to the first client (SCM_RIGHTS, via
 * mfs_send) and waits for its reply in the same memory.  Pair: sock-recv.
 */
#include <mfshare.h>

#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Our layout of the segment's data, shared with sock-recv.c (keep the two
 * in step).  Both strings are NUL-terminated and written under the lock. */
struct mailbox {
	char message[256]; /* written by sock-send before sending */
	char reply[256];   /* written by sock-recv, then mfs_notify() */
};

#define WAIT_MS 10000 /* how long we wait for the client, then its reply */

static const char *prog = "sock-send";

static int mfs_fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s: %s\n", prog, what, mfs_strerror(err),
	        mfs_last_error());
	return 1;
}

static int sys_fail(const char *what, const char *name)
{
	fprintf(stderr, "%s: %s %s: %s\n", prog, what, name, strerror(errno));
	return 1;
}

/* A listening socket at @path; a stale socket left there by an earlier run
 * is replaced, anything else is refused.  -1 on failure (reported). */
static int listen_at(const char *path)
{
	struct sockaddr_un sa;
	struct stat st;
	int fd;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "%s: %s: path too long for a socket\n", prog, path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "%s: %s: exists and is not a socket\n", prog, path);
			return -1;
		}
		if (unlink(path) < 0 && errno != ENOENT) {
			sys_fail("remove stale", path);
			return -1;
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
		sys_fail("socket for", path);
		return -1;
	}
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		sys_fail("bind", path);
		close(fd);
		return -1;
	}
	if (listen(fd, 1) < 0) {
		sys_fail("listen on", path);
		close(fd);
		unlink(path);
		return -1;
	}
	return fd;
}

/* The first client of @lfd, waiting at most WAIT_MS; -1 on failure. */
static int accept_one(int lfd, const char *path)
{
	struct pollfd p = { lfd, POLLIN, 0 };
	int r, fd;

	while ((r = poll(&p, 1, WAIT_MS)) < 0 && errno == EINTR)
		;
	if (r == 0) {
		fprintf(stderr, "%s: %s: no client in %d ms\n", prog, path, WAIT_MS);
		return -1;
	}
	if (r < 0) {
		sys_fail("poll", path);
		return -1;
	}
	while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (fd < 0)
		sys_fail("accept on", path);
	return fd;
}

int main(int argc, char **argv)
{
	const mfs_options memfd = { .backend = MFS_BACKEND_MEMFD };
	struct mailbox *mb;
	char reply[sizeof mb->reply];
	const char *path;
	mfs_segment *seg;
	mfs_stat st;
	uint32_t seen;
	int lfd = -1, cfd = -1, r, status = 1;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: %s SOCKET-PATH\n"
		        "Share a memfd segment with the first sock-recv that connects\n"
		        "to SOCKET-PATH, and print the reply it writes there.\n", prog);
		return 2;
	}
	path = argv[1];

	/* An anonymous segment: only processes we give a descriptor can
	 * reach it, and its size is sealed. */
	if ((r = mfs_create("sock-demo", sizeof *mb, &memfd, &seg)) != 0)
		return mfs_fail("create sock-demo", r);
	mb = mfs_data(seg);
	if ((r = mfs_lock(seg)) != 0) {
		mfs_fail("lock", r);
		goto out;
	}
	snprintf(mb->message, sizeof mb->message, "hello from sock-send (pid %ld)",
	         (long)getpid());
	if ((r = mfs_unlock(seg)) != 0) {
		mfs_fail("unlock", r);
		goto out;
	}
	/* The change counter now; the reply's mfs_notify moves it on. */
	if ((r = mfs_stat_segment(seg, &st)) != 0) {
		mfs_fail("stat", r);
		goto out;
	}
	seen = st.seq;

	if ((lfd = listen_at(path)) < 0)
		goto out;
	printf("%s: listening on %s\n", prog, path);
	fflush(stdout);
	cfd = accept_one(lfd, path);
	/* One client is all we serve: the name can go now. */
	close(lfd);
	unlink(path);
	if (cfd < 0)
		goto out;

	/* A new descriptor of the segment travels with a small message; the
	 * receiver validates it before mapping anything. */
	if ((r = mfs_send(cfd, seg)) != 0) {
		mfs_fail("send", r);
		goto out;
	}
	printf("%s: sent the segment (%zu bytes); waiting for the reply\n", prog,
	       mfs_size(seg));
	fflush(stdout);

	/* Sleep until the receiver's mfs_notify (no polling). */
	if ((r = mfs_wait(seg, &seen, WAIT_MS)) != 0) {
		mfs_fail("wait for the reply", r);
		goto out;
	}
	r = mfs_lock(seg);
	if (r != 0 && r != MFS_E_OWNER_DEAD) {
		mfs_fail("lock", r);
		goto out;
	}
	if (r == MFS_E_OWNER_DEAD)
		fprintf(stderr, "%s: the receiver died holding the lock\n", prog);
	/* The peer wrote this: never trust it to be NUL-terminated. */
	snprintf(reply, sizeof reply, "%.*s", (int)sizeof reply - 1, mb->reply);
	if ((r = mfs_unlock(seg)) != 0) {
		mfs_fail("unlock", r);
		goto out;
	}
	if (reply[0]) {
		printf("%s: reply: %s\n", prog, reply);
		status = 0;
	} else {
		fprintf(stderr, "%s: notified, but the reply is empty\n", prog);
	}
out:
	if (cfd >= 0)
		close(cfd);
	if ((r = mfs_detach(seg)) != 0)
		return mfs_fail("detach", r);
	return status;
}
