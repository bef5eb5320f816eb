/* SPDX-License-Identifier: MIT */
/*
 * An exec'd peer for the multi-process tests (check_memfd, check_share): it
 * attaches by the method named on its command line (inherited descriptor,
 * a Unix socket, a locator, a descriptor number), then runs the actions
 * that follow, and exits 0 or with a code that says what went wrong.
 */
#include <mfshare.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

/* Fixed places in the data the tests share with us. */
#define INC_OFF 1024 /* int: the counter "inc" bumps under the lock */
#define GO_OFF  2048 /* int: "gate" waits until it is non-zero */

/* Exit codes (the attach failure code is 100 + -MFS_E_*: 101..114). */
enum {
	X_USAGE = 2,   /* bad command line */
	X_CHECK = 3,   /* "check": the data differs */
	X_LOCK = 4,    /* lock or unlock failed */
	X_SOCKET = 5,  /* could not reach the socket */
	X_ENV = 6,     /* "env": the variable differs */
	X_SOLE = 7,    /* "sole": another descriptor names the segment */
	X_RESIZE = 8,  /* "try-resize": a resize was not refused with EPERM */
	X_GATE = 9,    /* "gate": never opened */
	X_STAT = 10,   /* mfs_stat_segment failed */
	X_ATTACH = 100
};

static const char *prog = "helper-peer";

static void usage(void)
{
	fprintf(stderr,
	        "usage: %s [-s] [-r] METHOD [ACTION...]\n"
	        "  -s  attach with MFS_REQUIRE_SEALED;  -r  with MFS_READ_ONLY\n"
	        "METHOD: inherit | recv SOCKPATH | locator LOC | fd N\n"
	        "ACTION: check STR | write STR | inc N | gate | lock-hold | hold |\n"
	        "        stat | env NAME VALUE|- | sole | try-resize | sleep MS |\n"
	        "        nodetach\n", prog);
	exit(X_USAGE);
}

static void fail_mfs(const char *what, int r)
{
	fprintf(stderr, "%s: %s: %s (%s)\n", prog, what, mfs_strerror(r), mfs_last_error());
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa;
	int s;

	if (strlen(path) >= sizeof sa.sun_path)
		return -1;
	s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s < 0)
		return -1;
	memset(&sa, 0, sizeof sa);
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, path);
	if (connect(s, (struct sockaddr *)&sa, sizeof sa) < 0) {
		close(s);
		return -1;
	}
	return s;
}

/* Block until stdin ends when it is a pipe or socket (the test closes its
 * end to let us go); otherwise until a signal kills us. */
static void wait_stdin(void)
{
	struct stat st;
	char c;
	ssize_t n;

	if (fstat(0, &st) == 0 && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) {
		do
			n = read(0, &c, 1);
		while (n > 0 || (n < 0 && errno == EINTR));
		return;
	}
	for (;;)
		pause();
}

/* No descriptor other than @fd and @also (the one we attached through)
 * names the same object as @fd. */
static int sole(int fd, int also)
{
	struct stat a, b;
	struct dirent *e;
	DIR *d;
	int n, bad = 0;

	if (fstat(fd, &a) < 0 || !(d = opendir("/proc/self/fd")))
		return -1;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		n = atoi(e->d_name);
		if (n == fd || n == also || n == dirfd(d) || fstat(n, &b) < 0)
			continue;
		if (a.st_dev == b.st_dev && a.st_ino == b.st_ino) {
			fprintf(stderr, "%s: descriptor %d also names the segment\n", prog, n);
			bad = 1;
		}
	}
	closedir(d);
	return bad;
}

/* ftruncate smaller and larger, and a write past the end, all refused
 * with EPERM (a sealed segment). */
static int try_resize(int fd)
{
	struct stat st;
	char c = 1;

	if (fstat(fd, &st) < 0)
		return -1;
	if (ftruncate(fd, st.st_size / 2) == 0 || errno != EPERM) {
		fprintf(stderr, "%s: ftruncate smaller was not refused\n", prog);
		return -1;
	}
	if (ftruncate(fd, st.st_size * 2) == 0 || errno != EPERM) {
		fprintf(stderr, "%s: ftruncate larger was not refused\n", prog);
		return -1;
	}
	if (pwrite(fd, &c, 1, st.st_size) >= 0 || errno != EPERM) {
		fprintf(stderr, "%s: a write past the end was not refused\n", prog);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	mfs_options o;
	mfs_segment *seg = NULL;
	mfs_stat st;
	char *data;
	int i = 1, r, fd, sock, detach = 1, via = -1;
	long n, k;

#ifdef __linux__
	/* Never outlive the test that started us. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() == 1)
		return X_USAGE;
#endif
	memset(&o, 0, sizeof o);
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-s") == 0)
			o.flags |= MFS_REQUIRE_SEALED;
		else if (strcmp(argv[i], "-r") == 0)
			o.flags |= MFS_READ_ONLY;
		else
			usage();
	}
	if (i >= argc)
		usage();
	if (strcmp(argv[i], "inherit") == 0) {
		r = mfs_attach_inherited(&o, &seg);
		if (getenv(MFS_FD_ENV))
			via = atoi(getenv(MFS_FD_ENV));
		i++;
	} else if (strcmp(argv[i], "recv") == 0 && i + 1 < argc) {
		if ((sock = connect_to(argv[i + 1])) < 0) {
			fprintf(stderr, "%s: connect %s: %s\n", prog, argv[i + 1], strerror(errno));
			return X_SOCKET;
		}
		r = mfs_recv(sock, &o, 10000, &seg);
		close(sock);
		i += 2;
	} else if (strcmp(argv[i], "locator") == 0 && i + 1 < argc) {
		r = mfs_attach_locator(argv[i + 1], &o, &seg);
		i += 2;
	} else if (strcmp(argv[i], "fd") == 0 && i + 1 < argc) {
		via = atoi(argv[i + 1]);
		r = mfs_attach_fd(via, &o, &seg);
		i += 2;
	} else {
		usage();
		return X_USAGE;
	}
	if (r != 0) {
		fail_mfs("attach", r);
		return X_ATTACH + (r < 0 && r >= -99 ? -r : 99);
	}
	data = mfs_data(seg);

	for (; i < argc; i++) {
		const char *a = argv[i];
		const char *arg = i + 1 < argc ? argv[i + 1] : NULL;

		if (strcmp(a, "check") == 0 && arg) {
			if (strncmp(data, arg, strlen(arg)) != 0) {
				fprintf(stderr, "%s: data is \"%.40s\", not \"%s\"\n", prog, data, arg);
				return X_CHECK;
			}
			i++;
		} else if (strcmp(a, "write") == 0 && arg) {
			if (strlen(arg) >= INC_OFF)
				usage();
			memcpy(data, arg, strlen(arg) + 1);
			i++;
		} else if (strcmp(a, "inc") == 0 && arg) {
			volatile int *c = (volatile int *)(void *)(data + INC_OFF);

			n = atol(arg);
			for (k = 0; k < n; k++) {
				if ((r = mfs_lock(seg)) != 0) {
					fail_mfs("mfs_lock", r);
					return X_LOCK;
				}
				*c = *c + 1;
				if ((r = mfs_unlock(seg)) != 0) {
					fail_mfs("mfs_unlock", r);
					return X_LOCK;
				}
			}
			i++;
		} else if (strcmp(a, "gate") == 0) {
			volatile int *g = (volatile int *)(void *)(data + GO_OFF);

			for (k = 0; *g == 0; k++) {
				if (k >= 20000)
					return X_GATE;
				sleep_ms(1);
			}
		} else if (strcmp(a, "lock-hold") == 0) {
			if ((r = mfs_lock(seg)) != 0) {
				fail_mfs("mfs_lock", r);
				return X_LOCK;
			}
			printf("locked\n");
			fflush(stdout);
			for (;;)
				pause();
		} else if (strcmp(a, "hold") == 0) {
			printf("attached\n");
			fflush(stdout);
			wait_stdin();
		} else if (strcmp(a, "stat") == 0) {
			if ((r = mfs_stat_segment(seg, &st)) != 0) {
				fail_mfs("mfs_stat_segment", r);
				return X_STAT;
			}
			printf("refcount: %u\nattach_count: %u\nsealed: %d\n",
			       (unsigned)st.refcount, (unsigned)st.attach_count, st.sealed);
			fflush(stdout);
		} else if (strcmp(a, "env") == 0 && arg && i + 2 < argc) {
			const char *v = getenv(arg), *want = argv[i + 2];

			if (strcmp(want, "-") == 0 ? v != NULL : (!v || strcmp(v, want) != 0)) {
				fprintf(stderr, "%s: $%s is %s%s%s, want %s\n", prog, arg,
				        v ? "\"" : "", v ? v : "unset", v ? "\"" : "", want);
				return X_ENV;
			}
			i += 2;
		} else if (strcmp(a, "sole") == 0) {
			if (sole(mfs_fd(seg), via) != 0)
				return X_SOLE;
		} else if (strcmp(a, "try-resize") == 0) {
			fd = mfs_fd(seg);
			if (try_resize(fd) != 0)
				return X_RESIZE;
		} else if (strcmp(a, "sleep") == 0 && arg) {
			sleep_ms(atol(arg));
			i++;
		} else if (strcmp(a, "nodetach") == 0) {
			detach = 0;
		} else {
			usage();
		}
	}
	if (detach && (r = mfs_detach(seg)) != 0) {
		fail_mfs("mfs_detach", r);
		return X_ATTACH + 99;
	}
	return 0;
}
