/* SPDX-License-Identifier: MIT */
/* CI: a program outside the tree, written from the README and built
 * against the installed library with `pkg-config --cflags --libs mfshare`:
 * a named segment, then a memfd shared with a spawned child and, over a
 * Unix socket, with an unrelated process (this program exec'd again). */
#include <mfshare.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int fail(const char *what, int r)
{
	fprintf(stderr, "outside: %s: %s: %s\n", what, mfs_strerror(r), mfs_last_error());
	return 1;
}

/* The spawned child: attach through the inherited descriptor, add one. */
static int child(void)
{
	mfs_segment *seg;
	int r = mfs_attach_inherited(NULL, &seg);

	if (r != 0)
		return fail("child: mfs_attach_inherited", r);
	if ((r = mfs_lock(seg)) != 0)
		return fail("child: mfs_lock", r);
	++*(long *)mfs_data(seg);
	mfs_unlock(seg);
	mfs_detach(seg);
	return 0;
}

/* The unrelated process: connect to the socket, receive, add ten. */
static int receiver(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	mfs_options o = { .flags = MFS_REQUIRE_SEALED };
	mfs_segment *seg;
	int sock = socket(AF_UNIX, SOCK_STREAM, 0), r, i;

	strncpy(sa.sun_path, path, sizeof sa.sun_path - 1);
	for (i = 0; connect(sock, (struct sockaddr *)&sa, sizeof sa) != 0; i++) {
		if (i > 500)
			return fail("receiver: connect", MFS_E_UNKNOWN);
		usleep(10000);
	}
	if ((r = mfs_recv(sock, &o, 5000, &seg)) != 0)
		return fail("receiver: mfs_recv", r);
	mfs_lock(seg);
	*(long *)mfs_data(seg) += 10;
	mfs_unlock(seg);
	mfs_notify(seg);
	mfs_detach(seg);
	close(sock);
	return 0;
}

static int named(void)
{
	char key[64];
	mfs_segment *s, *a;
	mfs_stat st;
	int r;

	snprintf(key, sizeof key, "ci-outside-%ld", (long)getpid());
	if ((r = mfs_create(key, 1000, NULL, &s)) != 0)
		return fail("mfs_create", r);
	strcpy(mfs_data(s), "installed");
	if ((r = mfs_attach(key, NULL, &a)) != 0)
		return fail("mfs_attach", r);
	if (mfs_lock(a) != 0 || strcmp(mfs_const_data(a), "installed") != 0 ||
	    mfs_unlock(a) != 0 || mfs_stat_segment(a, &st) != 0 || st.refcount != 2)
		return fail("lock/stat", MFS_E_UNKNOWN);
	mfs_detach(a);
	mfs_detach(s);
	if (mfs_inspect(key, NULL, &st) != MFS_E_NOT_FOUND)
		return fail("segment survived its last detach", MFS_E_UNKNOWN);
	return 0;
}

static int memfd(const char *self)
{
	mfs_options o = { .backend = MFS_BACKEND_MEMFD };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *cargv[] = { (char *)self, "child", NULL };
	char path[64], *rargv[] = { (char *)self, "receiver", path, NULL };
	mfs_segment *seg;
	long pid, rpid;
	uint32_t seen = 0;
	int r, st, lsock, sock;

	if ((r = mfs_create("outside", 4096, &o, &seg)) != 0)
		return fail("mfs_create MEMFD", r);
	if ((r = mfs_spawn(seg, self, cargv, NULL, -1, &pid)) != 0)
		return fail("mfs_spawn", r);
	if (waitpid((pid_t)pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return fail("spawned child failed", MFS_E_UNKNOWN);

	snprintf(path, sizeof path, "/tmp/mfs-outside-%ld.sock", (long)getpid());
	strcpy(sa.sun_path, path);
	unlink(path);
	lsock = socket(AF_UNIX, SOCK_STREAM, 0);
	if (bind(lsock, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lsock, 1) != 0)
		return fail("bind/listen", MFS_E_UNKNOWN);
	if ((rpid = fork()) == 0) { /* an unrelated program: exec'd afresh */
		execv(self, rargv);
		_exit(127);
	}
	if ((sock = accept(lsock, NULL, NULL)) < 0)
		return fail("accept", MFS_E_UNKNOWN);
	if ((r = mfs_send(sock, seg)) != 0)
		return fail("mfs_send", r);
	while (*(volatile long *)mfs_data(seg) != 11)
		if ((r = mfs_wait(seg, &seen, 5000)) != 0)
			return fail("mfs_wait", r);
	waitpid((pid_t)rpid, &st, 0);
	close(sock);
	close(lsock);
	unlink(path);
	mfs_detach(seg);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return fail("receiver failed", MFS_E_UNKNOWN);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "child") == 0)
		return child();
	if (argc > 2 && strcmp(argv[1], "receiver") == 0)
		return receiver(argv[2]);
	if (named() != 0 || memfd(argv[0]) != 0)
		return 1;
	printf("outside program: OK (named segment; memfd shared with a spawned "
	       "child and over a Unix socket)\n");
	return 0;
}
