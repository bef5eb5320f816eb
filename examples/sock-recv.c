/* SPDX-License-Identifier: MIT */
/*
 * sock-recv: the receiving side of sock-send.  Connects to the Unix-domain
 * socket PATH, receives a segment (mfs_recv, refusing one whose size is
 * not sealed), prints the message in it, writes a reply under the lock
 * and wakes the sender with mfs_notify.
 */
#include <mfshare.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* The segment's data, as sock-send.c lays it out (keep the two in step). */
struct mailbox {
	char message[256]; /* written by sock-send before sending */
	char reply[256];   /* written by us, then mfs_notify() */
};

#define CONNECT_MS 5000  /* how long we retry while the sender starts up */
#define RECV_MS    10000 /* how long we wait for the segment */

static const char *prog = "sock-recv";

static int mfs_fail(const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s: %s\n", prog, what, mfs_strerror(err),
	        mfs_last_error());
	return 1;
}

/* A socket connected to @path, retrying for CONNECT_MS while it does not
 * exist yet or nobody listens; -1 on failure (reported). */
static int connect_to(const char *path)
{
	const struct timespec nap = { 0, 50 * 1000 * 1000 };
	struct sockaddr_un sa;
	int fd, tries, err;

	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sa.sun_path) {
		fprintf(stderr, "%s: %s: path too long for a socket\n", prog, path);
		return -1;
	}
	strcpy(sa.sun_path, path);
	for (tries = CONNECT_MS / 50; ; tries--) {
		if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0) {
			err = errno;
			break;
		}
		if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
			return fd;
		err = errno;
		close(fd);
		if ((err != ENOENT && err != ECONNREFUSED && err != EINTR) || tries <= 0)
			break;
		nanosleep(&nap, NULL);
	}
	fprintf(stderr, "%s: connect %s: %s\n", prog, path, strerror(err));
	return -1;
}

int main(int argc, char **argv)
{
	/* Refuse a segment the sender could still shrink under us (a memfd
	 * is sealed against that; a file-backed segment is not). */
	const mfs_options sealed = { .flags = MFS_REQUIRE_SEALED };
	struct mailbox *mb;
	char message[sizeof mb->message];
	mfs_segment *seg;
	int fd, r;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: %s SOCKET-PATH\n"
		        "Receive a segment from sock-send on SOCKET-PATH, print its\n"
		        "message and write a reply into it.\n", prog);
		return 2;
	}
	if ((fd = connect_to(argv[1])) < 0)
		return 1;

	/* Receive the descriptor and attach: the library checks that it is a
	 * valid libmfshare segment, and closes the received descriptor
	 * whatever happens. */
	r = mfs_recv(fd, &sealed, RECV_MS, &seg);
	close(fd);
	if (r != 0)
		return mfs_fail("receive", r);
	if (mfs_size(seg) < sizeof *mb) {
		fprintf(stderr, "%s: the segment is too small (%zu bytes)\n", prog,
		        mfs_size(seg));
		mfs_detach(seg);
		return 1;
	}
	mb = mfs_data(seg);

	r = mfs_lock(seg);
	if (r != 0 && r != MFS_E_OWNER_DEAD) {
		mfs_fail("lock", r);
		goto fail;
	}
	if (r == MFS_E_OWNER_DEAD)
		fprintf(stderr, "%s: the sender died holding the lock\n", prog);
	/* The peer wrote this: never trust it to be NUL-terminated. */
	snprintf(message, sizeof message, "%.*s", (int)sizeof message - 1,
	         mb->message);
	snprintf(mb->reply, sizeof mb->reply, "thanks from sock-recv (pid %ld)",
	         (long)getpid());
	if ((r = mfs_unlock(seg)) != 0) {
		mfs_fail("unlock", r);
		goto fail;
	}
	printf("%s: message: %s\n", prog, message);
	/* Wake the sender, asleep in mfs_wait. */
	if ((r = mfs_notify(seg)) != 0) {
		mfs_fail("notify", r);
		goto fail;
	}
	printf("%s: replied\n", prog);

	if ((r = mfs_detach(seg)) != 0)
		return mfs_fail("detach", r);
	return 0;
fail:
	mfs_detach(seg);
	return 1;
}
