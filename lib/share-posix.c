/* SPDX-License-Identifier: MIT */
/*
 * Handing a segment to another process: a fresh descriptor (its own open
 * file description, so it never carries this attachment's crash tokens),
 * spawning a child that inherits it, SCM_RIGHTS over Unix sockets, and
 * printable locators.  The receiving side always validates through
 * mfs_attach_fd before trusting anything.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

/* What mfs_send puts beside the descriptor: a magic and the data size. */
#define MSG_MAGIC "mfshare1"
struct share_msg {
	char     magic[8];
	uint64_t size;
};

MFS_EXTERN int mfs_export_fd(const mfs_segment *seg, int inheritable, int *fd)
{
	int nfd, r;

	if (fd)
		*fd = -1;
	if (!seg || !fd)
		return mfs__fail(MFS_E_INVALID, "mfs_export_fd: NULL argument");
	if (seg->copied || seg->fd < 0)
		return mfs__fail(MFS_E_INVALID, "mfs_export_fd: this handle was copied "
		                 "by fork(); attach anew");
	if ((r = mfs__reopen(seg->fd, 1, &nfd)) != 0)
		return r;
	if (inheritable && fcntl(nfd, F_SETFD, 0) < 0) {
		r = mfs__fail_errno(errno, "mfs_export_fd: clearing close-on-exec");
		close(nfd);
		return r;
	}
	*fd = nfd;
	return 0;
}

/* @envp with NAME=VALUE of MFS_FD_ENV replaced by ours; malloc'd. */
static char **child_env(char *const envp[], const char *ours)
{
	size_t n = 0, i, j = 0, len = strlen(MFS_FD_ENV);
	char **env;

	while (envp && envp[n])
		n++;
	env = malloc((n + 2) * sizeof *env);
	if (!env)
		return NULL;
	for (i = 0; i < n; i++)
		if (!(strncmp(envp[i], MFS_FD_ENV, len) == 0 && envp[i][len] == '='))
			env[j++] = envp[i];
	env[j++] = (char *)ours;
	env[j] = NULL;
	return env;
}

MFS_EXTERN int mfs_spawn(const mfs_segment *seg, const char *file, char *const argv[],
                         char *const envp[], int child_fd, long *pid)
{
	posix_spawn_file_actions_t fa;
	char var[sizeof MFS_FD_ENV + 16];
	char **env = NULL;
	pid_t child;
	int efd = -1, tmp, r, rc;

	if (pid)
		*pid = 0;
	if (!seg || !file || !argv || !argv[0])
		return mfs__fail(MFS_E_INVALID, "mfs_spawn: NULL argument");
	if (child_fd < 0)
		child_fd = MFS_CHILD_FD;
	if (child_fd > 65535)
		return mfs__fail(MFS_E_INVALID, "mfs_spawn: descriptor %d out of range", child_fd);
	if ((r = mfs_export_fd(seg, 0, &efd)) != 0)
		return r;
	if (efd == child_fd) {
		/* dup2 onto itself would keep close-on-exec: move it first. */
		tmp = fcntl(efd, F_DUPFD_CLOEXEC, child_fd + 1);
		close(efd);
		if ((efd = tmp) < 0)
			return mfs__fail_errno(errno, "mfs_spawn: F_DUPFD");
	}
	snprintf(var, sizeof var, "%s=%d", MFS_FD_ENV, child_fd);
	if (!(env = child_env(envp ? envp : environ, var))) {
		close(efd);
		return mfs__fail(MFS_E_NO_RESOURCES, "mfs_spawn: out of memory");
	}
	if ((rc = posix_spawn_file_actions_init(&fa)) != 0) {
		r = mfs__fail_errno(rc, "mfs_spawn: posix_spawn_file_actions_init");
		goto out;
	}
	if ((rc = posix_spawn_file_actions_adddup2(&fa, efd, child_fd)) != 0)
		r = mfs__fail_errno(rc, "mfs_spawn: adddup2 onto %d", child_fd);
	else if ((rc = posix_spawnp(&child, file, &fa, NULL, argv, env)) != 0)
		r = mfs__fail_errno(rc, "mfs_spawn: starting %s", file);
	else if (pid)
		*pid = (long)child;
	posix_spawn_file_actions_destroy(&fa);
out:
	free(env);
	close(efd);
	return r;
}

static int parse_fd(const char *s, int *fd)
{
	char *end;
	long v;

	if (!s || !*s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > INT_MAX)
		return -1;
	*fd = (int)v;
	return 0;
}

MFS_EXTERN int mfs_attach_inherited(const mfs_options *opts, mfs_segment **out)
{
	const char *v = secure_getenv(MFS_FD_ENV); /* not in setuid programs */
	int fd;

	if (out)
		*out = NULL;
	if (!out)
		return mfs__fail(MFS_E_INVALID, "mfs_attach_inherited: out is NULL");
	if (!v)
		return mfs__fail(MFS_E_NOT_FOUND, "mfs_attach_inherited: $%s is not set",
		                 MFS_FD_ENV);
	if (parse_fd(v, &fd) < 0)
		return mfs__fail(MFS_E_INVALID, "mfs_attach_inherited: $%s=\"%.20s\" is "
		                 "not a descriptor number", MFS_FD_ENV, v);
	return mfs_attach_fd(fd, opts, out);
}

MFS_EXTERN int mfs_send(int sock, const mfs_segment *seg)
{
	struct share_msg m;
	struct msghdr msg;
	struct iovec iov;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct cmsghdr *c;
	ssize_t n;
	int efd, r;

	if (!seg || sock < 0)
		return mfs__fail(MFS_E_INVALID, "mfs_send: bad argument");
	if ((r = mfs_export_fd(seg, 0, &efd)) != 0)
		return r;
	memset(&m, 0, sizeof m);
	memcpy(m.magic, MSG_MAGIC, sizeof m.magic);
	m.size = seg->data_size;
	iov.iov_base = &m;
	iov.iov_len = sizeof m;
	memset(&msg, 0, sizeof msg);
	memset(&ctl, 0, sizeof ctl);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof ctl.buf;
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &efd, sizeof efd);
	do
		n = sendmsg(sock, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		int e = errno;
		close(efd);
		if (e == EPIPE || e == ECONNRESET || e == ENOTCONN)
			return mfs__fail(MFS_E_NOT_FOUND, "mfs_send: the peer has closed the socket");
		if (e == ENOTSOCK || e == EBADF)
			return mfs__fail(MFS_E_INVALID, "mfs_send: %d is not a socket", sock);
		return mfs__fail_errno(e, "mfs_send: sendmsg");
	}
	close(efd); /* the kernel holds the in-flight reference */
	if ((size_t)n != sizeof m)
		return mfs__fail(MFS_E_UNKNOWN, "mfs_send: short send (%zd bytes)", n);
	return 0;
}

static void close_all(const int *fds, int n)
{
	int i;

	for (i = 0; i < n; i++)
		close(fds[i]);
}

MFS_EXTERN int mfs_recv(int sock, const mfs_options *opts, int timeout_ms,
                        mfs_segment **out)
{
	struct share_msg m;
	struct msghdr msg;
	struct iovec iov;
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * 8)];
	} ctl;
	struct cmsghdr *c;
	struct pollfd pfd;
	struct stat sb;
	int fds[8], nfds = 0, r, k, cnt;
	ssize_t n;

	if (out)
		*out = NULL;
	if (!out || sock < 0)
		return mfs__fail(MFS_E_INVALID, "mfs_recv: bad argument");
	/* Before waiting: a pipe or file would only time out in poll. */
	if (fstat(sock, &sb) < 0 || !S_ISSOCK(sb.st_mode))
		return mfs__fail(MFS_E_INVALID, "mfs_recv: %d is not a socket", sock);
	if (timeout_ms >= 0) {
		pfd.fd = sock;
		pfd.events = POLLIN;
		do
			r = poll(&pfd, 1, timeout_ms);
		while (r < 0 && errno == EINTR);
		if (r < 0)
			return mfs__fail_errno(errno, "mfs_recv: poll");
		if (r == 0)
			return mfs__fail(MFS_E_TIMEOUT, "mfs_recv: nothing in %d ms", timeout_ms);
		if (pfd.revents & POLLNVAL)
			return mfs__fail(MFS_E_INVALID, "mfs_recv: %d is not open", sock);
	}
	memset(&m, 0, sizeof m);
	iov.iov_base = &m;
	iov.iov_len = sizeof m;
	memset(&msg, 0, sizeof msg);
	msg.msg_iov = &iov;
	msg.msg_iovlen = 1;
	msg.msg_control = ctl.buf;
	msg.msg_controllen = sizeof ctl.buf;
	/* No MSG_WAITALL: a peer that sent part of a message and went quiet
	 * would hold us past the timeout.  mfs_send's message comes in one
	 * piece; a short read is not one of ours (MFS_E_CORRUPT below). */
	do
		n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == ENOTSOCK || errno == EBADF)
			return mfs__fail(MFS_E_INVALID, "mfs_recv: %d is not a socket", sock);
		return mfs__fail_errno(errno, "mfs_recv: recvmsg");
	}
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		cnt = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
		for (k = 0; k < cnt && nfds < 8; k++)
			memcpy(&fds[nfds++], CMSG_DATA(c) + k * sizeof(int), sizeof(int));
	}
	if (n == 0 && nfds == 0)
		return mfs__fail(MFS_E_NOT_FOUND, "mfs_recv: the peer closed the socket");
	if (msg.msg_flags & MSG_CTRUNC) {
		close_all(fds, nfds);
		return mfs__fail(MFS_E_CORRUPT, "mfs_recv: too many descriptors in one message");
	}
	if ((size_t)n != sizeof m || memcmp(m.magic, MSG_MAGIC, sizeof m.magic) != 0) {
		close_all(fds, nfds);
		return mfs__fail(MFS_E_CORRUPT, "mfs_recv: not a libmfshare message "
		                 "(%zd bytes)", n);
	}
	if (nfds != 1) {
		close_all(fds, nfds);
		return mfs__fail(MFS_E_CORRUPT, "mfs_recv: the message carried %d "
		                 "descriptors, not one", nfds);
	}
	r = mfs_attach_fd(fds[0], opts, out);
	close(fds[0]);
	return r;
}

MFS_EXTERN int mfs_locator(const mfs_segment *seg, char *buf, size_t len)
{
	int n;

	if (!seg || !buf)
		return mfs__fail(MFS_E_INVALID, "mfs_locator: NULL argument");
	if (seg->be == &mfs__backend_shm && seg->key)
		n = snprintf(buf, len, "shm:%s", seg->key);
	else if (seg->named && seg->loc)
		n = snprintf(buf, len, "file:%s", seg->loc->path);
	else
		n = snprintf(buf, len, "memfd:%ld/%d", (long)getpid(), seg->fd);
	if (n < 0 || (size_t)n >= len)
		return mfs__fail(MFS_E_INVALID, "mfs_locator: buffer of %zu bytes too small", len);
	return 0;
}

MFS_EXTERN int mfs_attach_locator(const char *locator, const mfs_options *opts,
                                  mfs_segment **out)
{
	mfs_options o;
	char path[4200], *slash;
	long pid;
	int fd, r;

	if (out)
		*out = NULL;
	if (!locator || !out)
		return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: NULL argument");
	memset(&o, 0, sizeof o);
	o.flags = opts ? opts->flags : 0;
	if (strncmp(locator, "shm:", 4) == 0) {
		o.backend = MFS_BACKEND_SHM;
		return mfs_attach(locator + 4, &o, out);
	}
	if (strncmp(locator, "file:", 5) == 0) {
		if (locator[5] != '/' || strlen(locator + 5) >= sizeof path)
			return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: \"%.60s\": "
			                 "file: needs an absolute path", locator);
		strcpy(path, locator + 5);
		slash = strrchr(path, '/');
		*slash = '\0';
		o.backend = MFS_BACKEND_FILE;
		o.dir = path[0] ? path : "/";
		return mfs_attach(slash + 1, &o, out);
	}
	if (strncmp(locator, "fd:", 3) == 0) {
		if (parse_fd(locator + 3, &fd) < 0)
			return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: \"%.60s\": bad "
			                 "descriptor number", locator);
		return mfs_attach_fd(fd, &o, out);
	}
	if (strncmp(locator, "memfd:", 6) == 0) {
		char *end;
		errno = 0;
		pid = strtol(locator + 6, &end, 10);
		if (errno || pid <= 0 || *end != '/' || parse_fd(end + 1, &fd) < 0)
			return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: \"%.60s\": "
			                 "expected memfd:PID/FD", locator);
		snprintf(path, sizeof path, "/proc/%ld/fd/%d", pid, fd);
		if ((r = mfs__open_regular(path, 1, 0, &fd)) != 0)
			return r; /* not even opened unless a regular file */
		r = mfs_attach_fd(fd, &o, out);
		close(fd);
		return r;
	}
	return mfs__fail(MFS_E_INVALID, "mfs_attach_locator: \"%.60s\": unknown form "
	                 "(shm:, file:, memfd:, fd:)", locator);
}
