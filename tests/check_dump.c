/* SPDX-License-Identifier: MIT */
/*
 * mfshare-dump, run as a program (fork + exec of the built tool, MFS_DUMP):
 * its fields against live, locked, dead and stale segments, by key and by
 * path (memfds through /proc/PID/fd/N too), its JSON, the -m listing of
 * memfd segments, its exit codes and messages, and that it never changes
 * the segment it reads.
 */
#include <config.h>

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"
#include "header.h"

#ifndef MFS_DUMP
#error "MFS_DUMP must name the built tools/mfshare-dump"
#endif

#define TOOL_MS 10000 /* the longest a run of the tool may take */

/* The limit in force: a scan of the whole machine may meet another test's
 * segment still being created, which the tool waits for (up to 10 s, as
 * the library does), so those runs get more. */
static int tool_ms = TOOL_MS;

/* ------------------------------------------------------------ running */

struct run {
	int      status; /* exit status, 128+signal, or -1 (timed out) */
	char    *out;    /* stdout, NUL-terminated */
	char    *err;    /* stderr, NUL-terminated */
	uint64_t ms;     /* how long it ran */
};

static void drain(int fd, char **buf, size_t *len, size_t *cap, int *open_)
{
	char tmp[4096];
	ssize_t n = read(fd, tmp, sizeof tmp);

	if (n < 0 && errno == EINTR)
		return;
	if (n <= 0) {
		*open_ = 0;
		return;
	}
	if (*len + (size_t)n + 1 > *cap) {
		*cap = (*len + (size_t)n + 1) * 2;
		*buf = realloc(*buf, *cap);
		ck_assert_ptr_nonnull(*buf);
	}
	memcpy(*buf + *len, tmp, (size_t)n);
	*len += (size_t)n;
	(*buf)[*len] = 0;
}

/* Drop this (child) process's power to read what its mode forbids: for
 * root, CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH leave the bounding and
 * inheritable sets, so the program it execs runs without them. */
static int drop_read_override(void)
{
	struct { uint32_t version; int pid; } hdr = { 0x20080522, 0 }; /* _V3 */
	struct { uint32_t eff, perm, inh; } data[2];
	const int dac_override = 1, dac_read_search = 2;

	if (geteuid() != 0)
		return 0; /* a mode 0000 file is already closed to us */
	if (prctl(PR_CAPBSET_DROP, dac_override, 0, 0, 0) != 0 ||
	    prctl(PR_CAPBSET_DROP, dac_read_search, 0, 0, 0) != 0)
		return -1;
	if (syscall(SYS_capget, &hdr, data) != 0)
		return -1;
	data[0].inh &= ~((1u << dac_override) | (1u << dac_read_search));
	data[0].eff &= ~((1u << dac_override) | (1u << dac_read_search));
	data[0].perm &= ~((1u << dac_override) | (1u << dac_read_search));
	return syscall(SYS_capset, &hdr, data) == 0 ? 0 : -1;
}

/* Run @prog (the tool unless NULL; searched in $PATH if it has no '/')
 * with the arguments in @args (NULL-terminated), capturing both streams,
 * with standard input from @in (NULL: none) and, if @unprivileged, without
 * the privilege to read what a file's mode forbids.  A run that outlives
 * tool_ms is killed (status -1). */
static void run_exec(struct run *r, const char *prog, const char *const *args,
                     const char *in, int unprivileged)
{
	const char *argv[40];
	int po[2], pe[2], oo = 1, eo = 1, n = 0, fd;
	size_t ol = 0, oc = 1, el = 0, ec = 1;
	uint64_t t0 = mt_now_ms(), end = t0 + (uint64_t)tool_ms, now;
	pid_t pid;

	if (!prog)
		prog = MFS_DUMP;
	argv[n++] = prog;
	while (*args && n < 39)
		argv[n++] = *args++;
	argv[n] = NULL;
	ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fd = open(in ? in : "/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || dup2(fd, 0) < 0 || dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(126);
		if (unprivileged && drop_read_override() != 0)
			_exit(125);
		execvp(prog, (char *const *)argv);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	r->out = calloc(1, 1);
	r->err = calloc(1, 1);
	ck_assert(r->out && r->err);
	while (oo || eo) {
		struct pollfd p[2] = { { oo ? po[0] : -1, POLLIN, 0 },
		                       { eo ? pe[0] : -1, POLLIN, 0 } };
		now = mt_now_ms();
		if (now >= end)
			break;
		if (poll(p, 2, (int)(end - now)) < 0 && errno != EINTR)
			break;
		if (oo && (p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			drain(po[0], &r->out, &ol, &oc, &oo);
		if (eo && (p[1].revents & (POLLIN | POLLHUP | POLLERR)))
			drain(pe[0], &r->err, &el, &ec, &eo);
	}
	close(po[0]);
	close(pe[0]);
	now = mt_now_ms();
	r->status = mt_wait(pid, now < end ? (int)(end - now) : 1);
	r->ms = mt_now_ms() - t0;
	ck_assert_msg(r->status != -1, "%s ran past %d ms", prog, tool_ms);
	ck_assert_msg(r->status != 127 && r->status != 126, "cannot exec %s", prog);
	ck_assert_msg(r->status != 125, "cannot drop CAP_DAC_OVERRIDE before %s", prog);
}

/* Run the tool with the arguments in @args (NULL-terminated). */
static void run_argv(struct run *r, const char *const *args)
{
	run_exec(r, NULL, args, NULL, 0);
}

static void run_tool(struct run *r, ...)
{
	const char *args[32];
	const char *a;
	va_list ap;
	int n = 0;

	va_start(ap, r);
	while ((a = va_arg(ap, const char *)) != NULL && n < 31)
		args[n++] = a;
	va_end(ap);
	args[n] = NULL;
	run_argv(r, args);
}

static void run_free(struct run *r)
{
	free(r->out);
	free(r->err);
	r->out = r->err = NULL;
}

/* ------------------------------------------------------------ parsing */

/* The value of the first `name: value` line in @txt, in @buf. */
static const char *field(const char *txt, const char *name, char *buf, size_t len)
{
	size_t nl = strlen(name);
	const char *p = txt, *e;

	while (p && *p) {
		if (strncmp(p, name, nl) == 0 && p[nl] == ':' && p[nl + 1] == ' ') {
			p += nl + 2;
			e = strchr(p, '\n');
			if (!e)
				e = p + strlen(p);
			ck_assert_uint_lt((size_t)(e - p), len);
			memcpy(buf, p, (size_t)(e - p));
			buf[e - p] = 0;
			return buf;
		}
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	ck_assert_msg(0, "no `%s:` line in:\n%s", name, txt);
	return NULL;
}

static long long fnum(const char *txt, const char *name)
{
	char buf[256], *end;
	long long v;

	field(txt, name, buf, sizeof buf);
	errno = 0;
	v = strtoll(buf, &end, 10);
	ck_assert_msg(errno == 0 && end != buf && *end == 0,
	              "`%s: %s` is not a decimal number", name, buf);
	return v;
}

static void fstr_eq(const char *txt, const char *name, const char *want)
{
	char buf[4096];

	ck_assert_str_eq(field(txt, name, buf, sizeof buf), want);
}

static unsigned count(const char *hay, const char *needle)
{
	unsigned n = 0;
	const char *p = hay;

	while ((p = strstr(p, needle)) != NULL) {
		n++;
		p += strlen(needle);
	}
	return n;
}

/* Is there an attacher line with this pid and liveness? */
static int has_attacher(const char *txt, long pid, int alive)
{
	char pat[64], al[16];
	const char *p = txt, *e;

	snprintf(pat, sizeof pat, " pid=%ld ", pid);
	snprintf(al, sizeof al, " alive=%d\n", alive);
	while ((p = strstr(p, "attacher: slot=")) != NULL) {
		e = strchr(p, '\n');
		ck_assert_ptr_nonnull(e);
		if (memmem(p, (size_t)(e - p), pat, strlen(pat)) &&
		    memmem(p, (size_t)(e + 1 - p), al, strlen(al)))
			return 1;
		p = e;
	}
	return 0;
}

/* @txt without its `path:` line, in a new buffer. */
static char *without_path(const char *txt)
{
	char *c = strdup(txt), *p, *e;

	ck_assert_ptr_nonnull(c);
	p = strstr(c, "\npath: ");
	ck_assert_ptr_nonnull(p);
	e = strchr(p + 1, '\n');
	ck_assert_ptr_nonnull(e);
	memmove(p, e, strlen(e) + 1);
	return c;
}

/* A small strict JSON checker (RFC 8259): returns the end of one value. */
static const char *js_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static const char *js_value(const char *p, int depth);

static const char *js_string(const char *p)
{
	int i;

	if (*p++ != '"')
		return NULL;
	for (;;) {
		unsigned char c = (unsigned char)*p++;

		if (c == '"')
			return p;
		if (c < 0x20)
			return NULL;
		if (c != '\\')
			continue;
		c = (unsigned char)*p++;
		if (c == 'u') {
			for (i = 0; i < 4; i++, p++)
				if (!strchr("0123456789abcdefABCDEF", *p) || !*p)
					return NULL;
		} else if (!c || !strchr("\"\\/bfnrt", c)) {
			return NULL;
		}
	}
}

static const char *js_number(const char *p)
{
	const char *s;

	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if (*p >= '1' && *p <= '9')
		while (*p >= '0' && *p <= '9')
			p++;
	else
		return NULL;
	if (*p == '.') {
		s = ++p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return NULL;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		s = p;
		while (*p >= '0' && *p <= '9')
			p++;
		if (p == s)
			return NULL;
	}
	return p;
}

static const char *js_value(const char *p, int depth)
{
	if (depth > 32)
		return NULL;
	p = js_ws(p);
	if (*p == '{' || *p == '[') {
		char close = *p == '{' ? '}' : ']';
		int obj = *p == '{';

		p = js_ws(p + 1);
		if (*p == close)
			return p + 1;
		for (;;) {
			if (obj) {
				if (!(p = js_string(js_ws(p))))
					return NULL;
				p = js_ws(p);
				if (*p++ != ':')
					return NULL;
			}
			if (!(p = js_value(p, depth + 1)))
				return NULL;
			p = js_ws(p);
			if (*p == close)
				return p + 1;
			if (*p++ != ',')
				return NULL;
		}
	}
	if (*p == '"')
		return js_string(p);
	if (strncmp(p, "true", 4) == 0 || strncmp(p, "null", 4) == 0)
		return p + 4;
	if (strncmp(p, "false", 5) == 0)
		return p + 5;
	return js_number(p);
}

/* One JSON object and nothing else on the line [@p, @end). */
static int json_object_line(const char *p, const char *end)
{
	char *c = strndup(p, (size_t)(end - p));
	const char *q;
	int ok;

	ck_assert_ptr_nonnull(c);
	q = js_ws(c);
	ok = *q == '{' && (q = js_value(q, 0)) != NULL && *js_ws(q) == 0;
	free(c);
	return ok;
}

/* ------------------------------------------------------------ children */

/* A child that attaches (or creates), optionally locks, says so through
 * @ready, and waits for @go (or for SIGKILL). */
struct kid {
	const char        *key;
	const mfs_options *opts;
	int                create;
	int                lock;
	int                ready[2];
	int                go[2];
	pid_t              pid;
};

static int kid_main(void *arg)
{
	struct kid *k = arg;
	mfs_segment *s = NULL;
	char c = 'x';
	int r;

	close(k->ready[0]);
	close(k->go[1]);
	r = k->create ? mfs_create(k->key, 4096, k->opts, &s)
	              : mfs_attach(k->key, k->opts, &s);
	if (r != 0)
		c = 'A';
	else if (k->lock && mfs_lock(s) != 0)
		c = 'L';
	if (write(k->ready[1], &c, 1) != 1 || c != 'x')
		return 1;
	while (read(k->go[0], &c, 1) < 0 && errno == EINTR)
		;
	if (k->lock && mfs_unlock(s) != 0)
		return 2;
	return mfs_detach(s) == 0 ? 0 : 3;
}

static void kid_start(struct kid *k)
{
	char c = 0;

	ck_assert_int_eq(pipe2(k->ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(k->go, O_CLOEXEC), 0);
	k->pid = mt_spawn(kid_main, k);
	ck_assert_int_gt(k->pid, 0);
	close(k->ready[1]);
	close(k->go[0]);
	ck_assert_int_eq(read(k->ready[0], &c, 1), 1);
	ck_assert_msg(c == 'x', "child could not attach/lock (%c)", c);
	close(k->ready[0]);
}

static void kid_finish(struct kid *k)
{
	ck_assert_int_eq(write(k->go[1], "g", 1), 1);
	close(k->go[1]);
	ck_assert_int_eq(mt_wait(k->pid, 5000), 0);
}

static void kid_kill(struct kid *k)
{
	ck_assert_int_eq(kill(k->pid, SIGKILL), 0);
	ck_assert_int_eq(mt_wait(k->pid, 5000), 128 + SIGKILL);
	close(k->go[1]);
}

/* Remove a stale segment's name, and make sure it is gone. */
static void remove_stale(const char *key, const mfs_options *o, const char *path)
{
	int r = mfs_remove(key, o);

	ck_assert_msg(r == 0 || r == MFS_E_NOT_FOUND, "mfs_remove: %s", mfs_last_error());
	if (access(path, F_OK) == 0)
		unlink(path);
}

static char *shm_path(const char *key)
{
	static char buf[512];

	ck_assert_int_eq(mfs_native_path(key, NULL, buf, sizeof buf), 0);
	return buf;
}

static void expect_ok(const struct run *r)
{
	ck_assert_msg(r->status == 0, "exit %d, stderr: %s", r->status, r->err);
	ck_assert_str_eq(r->err, "");
}

/* ------------------------------------------------------------ live */

START_TEST(live_fields)
{
	static const char *const order[] = {
		"version", "size", "refcount", "locked", "lock_owner", "seq", "path",
		"state", "header_size", "data_offset", "file_size", "creator_uid",
		"creator_pid", "creator_start", "attach_count", "slot_count",
		"slot_high", "dead_slots", "lock_word", "lock_owner_tid",
		"lock_owner_alive", "lock_waiters", "seq_waiters", "uid", "mode",
		"sealed", "magic", "layout", "total_size", "filesystem", "lock",
		"verdict", "attacher"
	};
	const char *key = mt_key("dump");
	mfs_segment *s;
	mfs_stat st;
	struct run r;
	const char *p;
	char mode[16];
	unsigned i;

	ck_assert_int_eq(mfs_create(key, 10000, NULL, &s), 0);
	ck_assert_int_eq(mfs_stat_segment(s, &st), 0);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "version"), 1);
	ck_assert_int_eq(fnum(r.out, "size"), (long long)mfs_size(s));
	ck_assert_int_eq(fnum(r.out, "refcount"), 1);
	ck_assert_int_eq(fnum(r.out, "locked"), 0);
	ck_assert_int_eq(fnum(r.out, "lock_owner"), 0);
	ck_assert_int_eq(fnum(r.out, "seq"), 0);
	fstr_eq(r.out, "path", shm_path(key));
	fstr_eq(r.out, "path", mfs_native_key(s));
	fstr_eq(r.out, "state", "ready");
	ck_assert_int_eq(fnum(r.out, "header_size"), (long long)st.header_size);
	ck_assert_int_eq(fnum(r.out, "data_offset"), (long long)st.data_offset);
	ck_assert_int_eq(fnum(r.out, "file_size"), (long long)st.file_size);
	ck_assert_int_eq(fnum(r.out, "creator_uid"), (long long)geteuid());
	ck_assert_int_eq(fnum(r.out, "creator_pid"), (long long)getpid());
	ck_assert_int_eq(fnum(r.out, "creator_start"), (long long)st.creator_start);
	ck_assert_int_eq(fnum(r.out, "attach_count"), 1);
	ck_assert_int_eq(fnum(r.out, "slot_count"), (long long)st.slot_count);
	ck_assert_int_eq(fnum(r.out, "slot_high"), 1);
	ck_assert_int_eq(fnum(r.out, "dead_slots"), 0);
	fstr_eq(r.out, "lock_word", "0x00000000");
	ck_assert_int_eq(fnum(r.out, "lock_owner_tid"), 0);
	ck_assert_int_eq(fnum(r.out, "lock_owner_alive"), -1);
	ck_assert_int_eq(fnum(r.out, "lock_waiters"), 0);
	ck_assert_int_eq(fnum(r.out, "seq_waiters"), 0);
	ck_assert_int_eq(fnum(r.out, "uid"), (long long)geteuid());
	fstr_eq(r.out, "mode", "0600");
	snprintf(mode, sizeof mode, "%04o", st.mode);
	fstr_eq(r.out, "mode", mode);
	/* A /dev/shm file can be truncated by anyone who may write it. */
	ck_assert_int_eq(fnum(r.out, "sealed"), 0);
	ck_assert_uint_eq(count(r.out, "attacher: "), 1);
	ck_assert(has_attacher(r.out, (long)getpid(), 1));
	/* Documented order, one field per line, nothing else, no blank line. */
	p = r.out;
	for (i = 0; i < sizeof order / sizeof order[0]; i++) {
		ck_assert_msg(strncmp(p, order[i], strlen(order[i])) == 0 &&
		              p[strlen(order[i])] == ':', "expected `%s:` at: %.40s",
		              order[i], p);
		p = strchr(p, '\n');
		ck_assert_ptr_nonnull(p);
		p++;
	}
	ck_assert_str_eq(p, "");
	run_free(&r);

	/* --stale changes nothing for a live segment. */
	{
		struct run r2, r3;

		run_tool(&r2, key, NULL);
		run_tool(&r3, "--stale", key, NULL);
		expect_ok(&r3);
		ck_assert_str_eq(r2.out, r3.out);
		run_free(&r2);
		run_free(&r3);
	}
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(second_attacher)
{
	const char *key = mt_key("dump");
	struct kid k = { key, NULL, 0, 0, { -1, -1 }, { -1, -1 }, 0 };
	mfs_segment *s;
	struct run r;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	kid_start(&k);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "refcount"), 2);
	ck_assert_int_eq(fnum(r.out, "attach_count"), 2);
	ck_assert_int_eq(fnum(r.out, "slot_high"), 2);
	ck_assert_uint_eq(count(r.out, "attacher: "), 2);
	ck_assert(has_attacher(r.out, (long)getpid(), 1));
	ck_assert(has_attacher(r.out, (long)k.pid, 1));
	run_free(&r);

	/* A clean detach empties its slot. */
	kid_finish(&k);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "refcount"), 1);
	ck_assert_uint_eq(count(r.out, "attacher: "), 1);
	ck_assert(!has_attacher(r.out, (long)k.pid, 1));
	ck_assert(!has_attacher(r.out, (long)k.pid, 0));
	run_free(&r);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(locked_self)
{
	const char *key = mt_key("dump");
	mfs_segment *s;
	struct run r;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert_int_eq(mfs_lock(s), 0);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "locked"), 1);
	ck_assert_int_eq(fnum(r.out, "lock_owner"), (long long)getpid());
	ck_assert_int_eq(fnum(r.out, "lock_owner_tid"), (long long)syscall(SYS_gettid));
	ck_assert_int_eq(fnum(r.out, "lock_owner_alive"), 1);
	{
		char buf[64];

		field(r.out, "lock_word", buf, sizeof buf);
		ck_assert_str_ne(buf, "0x00000000");
		ck_assert_int_eq(strncmp(buf, "0x", 2), 0);
	}
	run_free(&r);
	ck_assert_int_eq(mfs_unlock(s), 0);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "locked"), 0);
	ck_assert_int_eq(fnum(r.out, "lock_owner"), 0);
	run_free(&r);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(locked_by_child)
{
	const char *key = mt_key("dump");
	struct kid k = { key, NULL, 0, 1, { -1, -1 }, { -1, -1 }, 0 };
	mfs_segment *s;
	struct run r;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	kid_start(&k);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "locked"), 1);
	ck_assert_int_eq(fnum(r.out, "lock_owner"), (long long)k.pid);
	ck_assert_int_eq(fnum(r.out, "lock_owner_alive"), 1);
	ck_assert_int_eq(fnum(r.out, "refcount"), 2);
	run_free(&r);
	kid_finish(&k);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(seq_after_notify)
{
	const char *key = mt_key("dump");
	mfs_segment *s;
	struct run r;
	int i;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	for (i = 0; i < 3; i++)
		ck_assert_int_eq(mfs_notify(s), 0);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "seq"), 3);
	run_free(&r);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(key_and_paths_agree)
{
	const char *key = mt_key("dump");
	char procpath[64];
	mfs_segment *s;
	struct run rk, rp, rf;
	char *a, *b, *c;

	ck_assert_int_eq(mfs_create(key, 8192, NULL, &s), 0);
	ck_assert_int_eq(mfs_lock(s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_ge(mfs_fd(s), 0);
	snprintf(procpath, sizeof procpath, "/proc/%ld/fd/%d", (long)getpid(), mfs_fd(s));
	run_tool(&rk, key, NULL);
	run_tool(&rp, shm_path(key), NULL);
	run_tool(&rf, procpath, NULL);
	expect_ok(&rk);
	expect_ok(&rp);
	expect_ok(&rf);
	fstr_eq(rk.out, "path", shm_path(key));
	fstr_eq(rp.out, "path", shm_path(key));
	fstr_eq(rf.out, "path", procpath);
	a = without_path(rk.out);
	b = without_path(rp.out);
	c = without_path(rf.out);
	ck_assert_str_eq(a, b);
	ck_assert_str_eq(a, c);
	ck_assert_int_eq(fnum(c, "seq"), 1);
	ck_assert_int_eq(fnum(c, "locked"), 1);
	ck_assert_int_eq(fnum(c, "refcount"), 1);
	free(a);
	free(b);
	free(c);
	run_free(&rk);
	run_free(&rp);
	run_free(&rf);
	ck_assert_int_eq(mfs_unlock(s), 0);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(several_operands)
{
	const char *k1 = mt_key("dump"), *k2 = mt_key("dump"), *k3 = mt_key("dump");
	char p1[512], p2[512];
	mfs_segment *s1, *s2;
	struct run r;
	char *sep;

	ck_assert_int_eq(mfs_create(k1, 4096, NULL, &s1), 0);
	ck_assert_int_eq(mfs_create(k2, 4096, NULL, &s2), 0);
	snprintf(p1, sizeof p1, "%s", shm_path(k1));
	snprintf(p2, sizeof p2, "%s", shm_path(k2));
	run_tool(&r, k1, p2, NULL);
	expect_ok(&r);
	sep = strstr(r.out, "\n\n");
	ck_assert_ptr_nonnull(sep);
	ck_assert_uint_eq(count(r.out, "\n\n"), 1);
	ck_assert_uint_eq(count(r.out, "version: "), 2);
	*sep = 0;
	fstr_eq(r.out, "path", p1);
	fstr_eq(sep + 2, "path", p2);
	run_free(&r);

	/* A missing one in the middle: the others are still printed. */
	run_tool(&r, k1, k3, k2, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(count(r.out, "version: "), 2);
	ck_assert_uint_eq(count(r.out, "\n\n"), 1);
	{
		char want[300];

		snprintf(want, sizeof want, "mfshare-dump: %s: ", k3);
		ck_assert_int_eq(strncmp(r.err, want, strlen(want)), 0);
		ck_assert_uint_eq(count(r.err, "\n"), 1);
	}
	run_free(&r);
	ck_assert_int_eq(mfs_detach(s1), 0);
	ck_assert_int_eq(mfs_detach(s2), 0);
}
END_TEST

/* ------------------------------------------------------------ json */

START_TEST(json_output)
{
	const char *key = mt_key("dump"), *k2 = mt_key("dump");
	mfs_segment *s, *s2;
	struct run r;
	char want[600], *nl;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	run_tool(&r, "--json", key, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(count(r.out, "\n"), 1);
	nl = strchr(r.out, '\n');
	ck_assert_str_eq(nl, "\n");
	ck_assert_msg(json_object_line(r.out, nl), "not one JSON object: %s", r.out);
	ck_assert_int_eq(strncmp(r.out, "{\"version\":1,", 13), 0);
	snprintf(want, sizeof want, "\"size\":%zu,", mfs_size(s));
	ck_assert_ptr_nonnull(strstr(r.out, want));
	ck_assert_ptr_nonnull(strstr(r.out, "\"refcount\":1,"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"locked\":0,"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"lock_owner\":0,"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"seq\":1,"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"state\":\"ready\""));
	ck_assert_ptr_nonnull(strstr(r.out, "\"mode\":\"0600\",\"sealed\":0,\"magic\":"
	                             "\"0x314552414853464d\",\"layout\":1048580,"));
	ck_assert_ptr_nonnull(strstr(r.out, ",\"filesystem\":\"tmpfs\",\"lock\":\"free\","
	                             "\"verdict\":\"healthy\",\"attachers\":["));
	ck_assert_ptr_nonnull(strstr(r.out, "\"lock_owner_alive\":-1,"));
	snprintf(want, sizeof want, "\"path\":\"%s\",", shm_path(key));
	ck_assert_ptr_nonnull(strstr(r.out, want));
	snprintf(want, sizeof want, "\"attachers\":[{\"slot\":0,\"pid\":%ld,", (long)getpid());
	ck_assert_ptr_nonnull(strstr(r.out, want));
	ck_assert_ptr_nonnull(strstr(r.out, "\"alive\":1}]}\n"));
	run_free(&r);

	/* -j is --json; two segments are two lines, no blank line. */
	ck_assert_int_eq(mfs_create(k2, 4096, NULL, &s2), 0);
	run_tool(&r, "-j", key, k2, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(count(r.out, "\n"), 2);
	nl = strchr(r.out, '\n');
	ck_assert(json_object_line(r.out, nl));
	ck_assert(json_object_line(nl + 1, nl + strlen(nl) - 1));
	snprintf(want, sizeof want, "\"path\":\"%s\",", shm_path(k2));
	ck_assert_ptr_nonnull(strstr(nl + 1, want));
	run_free(&r);
	ck_assert_int_eq(mfs_detach(s2), 0);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

/* Paths with quotes, backslashes, control and non-UTF-8 bytes stay one
 * valid JSON line and one text line. */
START_TEST(json_escaping)
{
	const char *tmp = mt_tmpdir();
	const char *key = mt_key("dump");
	char dir[512], seg[600], want[700];
	mfs_options o = { MFS_BACKEND_FILE, 0, 0, NULL };
	mfs_segment *s;
	struct run r;
	char *nl;

	ck_assert_ptr_nonnull(tmp);
	snprintf(dir, sizeof dir, "%s/q\"b\\s\nn\001x\377y\303\251", tmp);
	ck_assert_int_eq(mkdir(dir, 0700), 0);
	o.dir = dir;
	ck_assert_int_eq(mfs_create(key, 4096, &o, &s), 0);
	snprintf(seg, sizeof seg, "%s/%s", dir, key);
	ck_assert_str_eq(mfs_native_key(s), seg);

	run_tool(&r, "--json", "-b", "file", "-d", dir, key, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(count(r.out, "\n"), 1);
	nl = strchr(r.out, '\n');
	ck_assert_msg(json_object_line(r.out, nl), "not one JSON object: %s", r.out);
	snprintf(want, sizeof want, "\"path\":\"%s/q\\\"b\\\\s\\nn\\u0001x\\ufffdy\303\251/%s\"",
	         tmp, key);
	ck_assert_msg(strstr(r.out, want) != NULL, "want %s in %s", want, r.out);
	run_free(&r);

	run_tool(&r, "-b", "file", "-d", dir, key, NULL);
	expect_ok(&r);
	snprintf(want, sizeof want, "%s/q\"b\\\\s\\x0an\\x01x\377y\303\251/%s", tmp, key);
	fstr_eq(r.out, "path", want);
	ck_assert_int_eq(fnum(r.out, "refcount"), 1);
	run_free(&r);

	ck_assert_int_eq(mfs_detach(s), 0);
	mt_rmtree(tmp);
}
END_TEST

/* ------------------------------------------------------------ backends */

START_TEST(file_backend)
{
	const char *tmp = mt_tmpdir();
	const char *key = mt_key("dump");
	mfs_options o = { MFS_BACKEND_FILE, 0, 0640, NULL };
	char want[600];
	mfs_segment *s;
	struct run r;

	ck_assert_ptr_nonnull(tmp);
	o.dir = tmp;
	ck_assert_int_eq(mfs_create(key, 4096, &o, &s), 0);
	run_tool(&r, "-b", "file", "-d", tmp, key, NULL);
	expect_ok(&r);
	snprintf(want, sizeof want, "%s/%s", tmp, key);
	fstr_eq(r.out, "path", want);
	fstr_eq(r.out, "mode", "0640");
	ck_assert_int_eq(fnum(r.out, "refcount"), 1);
	ck_assert_int_eq(fnum(r.out, "size"), (long long)mfs_size(s));
	run_free(&r);

	/* The same segment by its path, options in the long form. */
	run_tool(&r, "--backend=file", "--dir", tmp, want, NULL);
	expect_ok(&r);
	fstr_eq(r.out, "path", want);
	run_free(&r);

	/* Not under the default backend. */
	run_tool(&r, key, NULL);
	ck_assert_int_eq(r.status, 1);
	run_free(&r);

	ck_assert_int_eq(mfs_detach(s), 0);
	ck_assert_int_ne(access(want, F_OK), 0);
	mt_rmtree(tmp);
}
END_TEST

START_TEST(runtime_backend)
{
	const char *tmp = mt_tmpdir();
	const char *key = mt_key("dump");
	mfs_options o = { MFS_BACKEND_RUNTIME_DIR, 0, 0, NULL };
	char want[600];
	mfs_segment *s;
	struct run r;

	ck_assert_ptr_nonnull(tmp);
	o.dir = tmp;
	ck_assert_int_eq(mfs_create(key, 4096, &o, &s), 0);
	snprintf(want, sizeof want, "%s/mfshare/%s", tmp, key);
	run_tool(&r, "-b", "runtime", "-d", tmp, key, NULL);
	expect_ok(&r);
	fstr_eq(r.out, "path", want);
	ck_assert_int_eq(fnum(r.out, "refcount"), 1);
	run_free(&r);

	/* $XDG_RUNTIME_DIR stands in for -d. */
	ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", tmp, 1), 0);
	run_tool(&r, "-b", "runtime", key, NULL);
	expect_ok(&r);
	fstr_eq(r.out, "path", want);
	run_free(&r);

	/* Neither: a per-operand failure, not a usage error. */
	ck_assert_int_eq(unsetenv("XDG_RUNTIME_DIR"), 0);
	run_tool(&r, "-b", "runtime", key, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	run_free(&r);

	ck_assert_int_eq(mfs_detach(s), 0);
	mt_rmtree(tmp);
}
END_TEST

/* ------------------------------------------------------------ usage */

static void expect_usage(const char *const *args)
{
	struct run r;

	run_argv(&r, args);
	ck_assert_msg(r.status == 2, "%s...: exit %d, want 2", args[0] ? args[0] : "", r.status);
	ck_assert_str_eq(r.out, "");
	ck_assert_int_eq(strncmp(r.err, "mfshare-dump: ", 14), 0);
	ck_assert_ptr_nonnull(strstr(r.err, "usage: mfshare-dump"));
	run_free(&r);
}

START_TEST(usage_errors)
{
	static const char *const none[] = { NULL };
	static const char *const file_nodir[] = { "-b", "file", "k", NULL };
	static const char *const file_nodir_path[] = { "-b", "file", "/dev/shm/x", NULL };
	static const char *const unknown[] = { "-Z", "k", NULL }; /* -x is --hexdump now */
	static const char *const unknown_long[] = { "--nope", "k", NULL };
	static const char *const bad_backend[] = { "-b", "disk", "k", NULL };
	static const char *const memfd[] = { "-b", "memfd", "k", NULL };
	static const char *const dir_shm[] = { "-d", "/tmp", "k", NULL };
	static const char *const no_arg[] = { "k", "-b", NULL };
	static const char *const only_opts[] = { "--json", "--stale", NULL };
	static const char *const empty_dir[] = { "-b", "file", "-d", "", "k", NULL };
	static const char *const m_key[] = { "-m", "k", NULL };
	static const char *const m_path[] = { "--memfd", "/proc/1/fd/0", NULL };
	static const char *const m_json_key[] = { "-m", "--json", "k", NULL };
	static const char *const m_backend[] = { "-m", "-b", "shm", NULL };
	static const char *const m_dir[] = { "-m", "-b", "runtime", "-d", "/tmp", NULL };

	expect_usage(none);
	expect_usage(file_nodir);
	expect_usage(file_nodir_path);
	expect_usage(unknown);
	expect_usage(unknown_long);
	expect_usage(bad_backend);
	expect_usage(memfd);
	expect_usage(dir_shm);
	expect_usage(no_arg);
	expect_usage(only_opts);
	expect_usage(empty_dir);
	expect_usage(m_key);
	expect_usage(m_path);
	expect_usage(m_json_key);
	expect_usage(m_backend);
	expect_usage(m_dir);
}
END_TEST

START_TEST(version_and_help)
{
	struct run r;

	run_tool(&r, "-V", NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "mfshare-dump (libmfshare) " PACKAGE_VERSION "\n");
	run_free(&r);
	run_tool(&r, "--version", NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "mfshare-dump (libmfshare) " PACKAGE_VERSION "\n");
	run_free(&r);
	run_tool(&r, "-h", NULL);
	expect_ok(&r);
	ck_assert_int_eq(strncmp(r.out, "usage: mfshare-dump", 19), 0);
	ck_assert_ptr_nonnull(strstr(r.out, "--json"));
	ck_assert_ptr_nonnull(strstr(r.out, "--memfd"));
	run_free(&r);
	run_tool(&r, "--help", NULL);
	expect_ok(&r);
	ck_assert_int_eq(strncmp(r.out, "usage: mfshare-dump", 19), 0);
	run_free(&r);
}
END_TEST

/* ------------------------------------------------------------ failures */

START_TEST(not_found)
{
	const char *key = mt_key("dump-none");
	char want[600];
	struct run r;

	run_tool(&r, key, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	snprintf(want, sizeof want, "mfshare-dump: %s: %s", key, mfs_strerror(MFS_E_NOT_FOUND));
	ck_assert_msg(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
	ck_assert_uint_eq(count(r.err, "\n"), 1);
	run_free(&r);

	/* By path: the path is the name in the message. */
	run_tool(&r, shm_path(key), NULL);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof want, "mfshare-dump: %s: ", shm_path(key));
	ck_assert_int_eq(strncmp(r.err, want, strlen(want)), 0);
	run_free(&r);

	/* A bad key is a per-operand failure. */
	run_tool(&r, "bad key", NULL);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof want, "mfshare-dump: bad key: %s", mfs_strerror(MFS_E_KEY));
	ck_assert_int_eq(strncmp(r.err, want, strlen(want)), 0);
	run_free(&r);

	/* A directory is not a segment. */
	run_tool(&r, "/", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_int_eq(strncmp(r.err, "mfshare-dump: /: ", 17), 0);
	run_free(&r);
}
END_TEST

static void write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
	ck_assert_int_eq(close(fd), 0);
}

/* Run the tool on @operand (with @pre args), expect exit 1 naming the
 * operand and @what, and the file at @path byte-for-byte the same. */
static void expect_corrupt(const char *path, const char *dir, const char *operand,
                           const char *what)
{
	unsigned char *before, *after;
	size_t lb, la;
	struct stat s1, s2;
	struct run r;
	char want[700];

	before = mt_slurp(path, 1 << 20, &lb);
	ck_assert_ptr_nonnull(before);
	ck_assert_int_eq(stat(path, &s1), 0);
	if (dir)
		run_tool(&r, "-b", "file", "-d", dir, operand, NULL);
	else
		run_tool(&r, operand, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	snprintf(want, sizeof want, "mfshare-dump: %s: %s", operand,
	         mfs_strerror(MFS_E_CORRUPT));
	ck_assert_msg(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
	ck_assert_msg(strstr(r.err, what) != NULL, "no \"%s\" in: %s", what, r.err);
	run_free(&r);
	after = mt_slurp(path, 1 << 20, &la);
	ck_assert_ptr_nonnull(after);
	ck_assert_int_eq(stat(path, &s2), 0);
	ck_assert_uint_eq(lb, la);
	ck_assert_mem_eq(before, after, lb);
	ck_assert_int_eq(s1.st_mtim.tv_sec, s2.st_mtim.tv_sec);
	ck_assert_int_eq(s1.st_mtim.tv_nsec, s2.st_mtim.tv_nsec);
	ck_assert_int_eq(s1.st_size, s2.st_size);
	free(before);
	free(after);
}

START_TEST(corrupt)
{
	const char *tmp = mt_tmpdir();
	const char *key = mt_key("dump");
	mfs_options o = { MFS_BACKEND_FILE, 0, 0, NULL };
	char junk[600], shorty[600], badver[600], copy[600], keyed[64];
	unsigned char garbage[8192], *img;
	uint32_t v = 99;
	size_t len;
	mfs_segment *s;
	struct run r;

	ck_assert_ptr_nonnull(tmp);
	o.dir = tmp;

	/* Garbage: the magic is wrong. */
	memset(garbage, 'G', sizeof garbage);
	snprintf(junk, sizeof junk, "%s/junk", tmp);
	write_file(junk, garbage, sizeof garbage);
	expect_corrupt(junk, NULL, junk, "magic");
	expect_corrupt(junk, tmp, "junk", "magic");

	/* Shorter than the header. */
	snprintf(shorty, sizeof shorty, "%s/short", tmp);
	write_file(shorty, garbage, 100);
	expect_corrupt(shorty, NULL, shorty, "truncated");

	/* A real segment's image with its format version changed (offset 8,
	 * docs/FORMAT.md): the tool names the field. */
	ck_assert_int_eq(mfs_create(key, 4096, &o, &s), 0);
	img = mt_slurp(mfs_native_key(s), 1 << 20, &len);
	ck_assert_ptr_nonnull(img);
	ck_assert_uint_ge(len, 8192);
	ck_assert_int_eq(mfs_detach(s), 0);
	snprintf(copy, sizeof copy, "%s/copy", tmp);
	write_file(copy, img, len);
	memcpy(img + 8, &v, sizeof v);
	snprintf(badver, sizeof badver, "%s/badver", tmp);
	write_file(badver, img, len);
	expect_corrupt(badver, NULL, badver, "version");
	snprintf(keyed, sizeof keyed, "badver");
	expect_corrupt(badver, tmp, keyed, "version");

	/* Control: the unchanged image is a valid segment with no live
	 * attacher, i.e. stale, not corrupt. */
	run_tool(&r, copy, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_ptr_null(strstr(r.err, mfs_strerror(MFS_E_CORRUPT)));
	run_free(&r);
	run_tool(&r, "--stale", copy, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "refcount"), 0);
	run_free(&r);

	free(img);
	mt_rmtree(tmp);
}
END_TEST

/* ------------------------------------------------------------ read-only */

START_TEST(leaves_segment_alone)
{
	const char *key = mt_key("dump");
	char procpath[64];
	unsigned char *before, *after;
	size_t lb, la;
	mfs_segment *s;
	mfs_stat st1, st2;
	struct stat f1, f2;
	struct run r;
	int i;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_lock(s), 0);
	snprintf(procpath, sizeof procpath, "/proc/%ld/fd/%d", (long)getpid(), mfs_fd(s));
	ck_assert_int_eq(mfs_stat_segment(s, &st1), 0);
	ck_assert_int_eq(stat(shm_path(key), &f1), 0);
	before = mt_slurp(shm_path(key), 4096, &lb);
	ck_assert_ptr_nonnull(before);
	ck_assert_uint_eq(lb, 4096);

	for (i = 0; i < 3; i++) {
		run_tool(&r, key, NULL);
		expect_ok(&r);
		run_free(&r);
		run_tool(&r, "--json", "--stale", shm_path(key), NULL);
		expect_ok(&r);
		run_free(&r);
		run_tool(&r, procpath, NULL);
		expect_ok(&r);
		run_free(&r);
	}

	after = mt_slurp(shm_path(key), 4096, &la);
	ck_assert_ptr_nonnull(after);
	ck_assert_uint_eq(la, 4096);
	ck_assert_mem_eq(before, after, 4096);
	ck_assert_int_eq(mfs_stat_segment(s, &st2), 0);
	ck_assert_uint_eq(st1.refcount, st2.refcount);
	ck_assert_uint_eq(st1.attach_count, st2.attach_count);
	ck_assert_uint_eq(st1.seq, st2.seq);
	ck_assert_uint_eq(st1.lock_word, st2.lock_word);
	ck_assert_uint_eq(st2.seq, 2);
	ck_assert_int_eq(st2.locked, 1);
	ck_assert_int_eq(stat(shm_path(key), &f2), 0);
	ck_assert_int_eq(f1.st_mtim.tv_sec, f2.st_mtim.tv_sec);
	ck_assert_int_eq(f1.st_mtim.tv_nsec, f2.st_mtim.tv_nsec);
	/* We still hold the lock: the tool did not take it over. */
	ck_assert_int_eq(mfs_unlock(s), 0);
	free(before);
	free(after);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

/* ------------------------------------------------------------ death */

START_TEST(dead_attacher)
{
	const char *key = mt_key("dump");
	struct kid k = { key, NULL, 0, 0, { -1, -1 }, { -1, -1 }, 0 };
	mfs_segment *s;
	struct run r;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	kid_start(&k);
	kid_kill(&k);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "refcount"), 1);
	ck_assert_int_eq(fnum(r.out, "dead_slots"), 1);
	ck_assert_uint_eq(count(r.out, "attacher: "), 2);
	ck_assert(has_attacher(r.out, (long)k.pid, 0));
	ck_assert(has_attacher(r.out, (long)getpid(), 1));
	run_free(&r);
	run_tool(&r, "--json", key, NULL);
	expect_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "\"alive\":0}"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"dead_slots\":1,"));
	run_free(&r);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(stale_segment)
{
	const char *key = mt_key("dump");
	struct kid k = { key, NULL, 1, 0, { -1, -1 }, { -1, -1 }, 0 };
	char want[600], path[512];
	struct run r;

	snprintf(path, sizeof path, "%s", shm_path(key));
	kid_start(&k);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "refcount"), 1);
	ck_assert_int_eq(fnum(r.out, "creator_pid"), (long long)k.pid);
	run_free(&r);
	kid_kill(&k);

	run_tool(&r, key, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	snprintf(want, sizeof want, "mfshare-dump: %s: ", key);
	ck_assert_int_eq(strncmp(r.err, want, strlen(want)), 0);
	ck_assert_msg(strstr(r.err, "stale") != NULL, "stderr: %s", r.err);
	run_free(&r);

	run_tool(&r, "--stale", key, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "refcount"), 0);
	ck_assert_int_eq(fnum(r.out, "dead_slots"), 1);
	fstr_eq(r.out, "state", "ready");
	fstr_eq(r.out, "verdict", "stale");
	ck_assert(has_attacher(r.out, (long)k.pid, 0));
	run_free(&r);

	run_tool(&r, "-s", path, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "refcount"), 0);
	run_free(&r);

	remove_stale(key, NULL, path);
	ck_assert_int_ne(access(path, F_OK), 0);
}
END_TEST

START_TEST(dead_lock_holder)
{
	const char *key = mt_key("dump");
	struct kid k = { key, NULL, 0, 1, { -1, -1 }, { -1, -1 }, 0 };
	mfs_segment *s;
	struct run r;
	int i;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	kid_start(&k);
	kid_kill(&k);
	for (i = 0; i < 2; i++) {
		run_tool(&r, key, NULL);
		expect_ok(&r);
		ck_assert_msg(r.ms < 3000, "took %" PRIu64 " ms", r.ms);
		ck_assert_int_eq(fnum(r.out, "locked"), 1);
		ck_assert_int_eq(fnum(r.out, "lock_owner"), (long long)k.pid);
		ck_assert_int_eq(fnum(r.out, "lock_owner_alive"), 0);
		ck_assert_int_eq(fnum(r.out, "refcount"), 1);
		/* Read, so status 0, but the verdict says what is wrong. */
		fstr_eq(r.out, "verdict", "wedged");
		{
			char want[100];

			snprintf(want, sizeof want, "dead pid=%ld tid=%ld waiters=0",
			         (long)k.pid, (long)k.pid);
			fstr_eq(r.out, "lock", want);
		}
		run_free(&r);
	}
	/* The tool did not take the lock over: we are the first to see the
	 * holder's death. */
	ck_assert_int_eq(mfs_lock(s), MFS_E_OWNER_DEAD);
	ck_assert_int_eq(mfs_unlock(s), 0);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(stale_and_locked)
{
	const char *key = mt_key("dump");
	struct kid k = { key, NULL, 1, 1, { -1, -1 }, { -1, -1 }, 0 };
	char path[512];
	struct run r;

	snprintf(path, sizeof path, "%s", shm_path(key));
	kid_start(&k);
	kid_kill(&k);
	run_tool(&r, "--stale", "--json", key, NULL);
	expect_ok(&r);
	ck_assert_msg(r.ms < 3000, "took %" PRIu64 " ms", r.ms);
	ck_assert_ptr_nonnull(strstr(r.out, "\"refcount\":0,"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"locked\":1,"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"lock_owner_alive\":0,"));
	run_free(&r);
	remove_stale(key, NULL, path);
}
END_TEST

/* ------------------------------------------------------------ memfd */

static const mfs_options memfd_opts = { MFS_BACKEND_MEMFD, 0, 0, NULL };

/* Is @line (a whole line, with its '\n') one of the lines of @txt? */
static int has_line(const char *txt, const char *line)
{
	const char *p = txt;

	while ((p = strstr(p, line)) != NULL) {
		if (p == txt || p[-1] == '\n')
			return 1;
		p++;
	}
	return 0;
}

/* Lines of @txt that contain @needle. */
static unsigned count_lines(const char *txt, const char *needle)
{
	const char *p = txt, *e;
	unsigned n = 0;

	while (*p) {
		e = strchr(p, '\n');
		ck_assert_ptr_nonnull(e);
		if (memmem(p, (size_t)(e - p), needle, strlen(needle)))
			n++;
		p = e + 1;
	}
	return n;
}

/*
 * What every `-m` run must look like, whatever other processes hold (the
 * other test programs run at the same time and keep memfd segments, some
 * deliberately corrupt): one `memfd: pid=` line (or one JSON object) per
 * line, and exit 1 exactly when a line reports an error, each error also
 * explained on stderr.
 */
static void expect_m_output(const struct run *r, int json)
{
	const char *p = r->out, *e;
	unsigned errors = 0;

	ck_assert_msg(r->status == 0 || r->status == 1, "exit %d, stderr: %s",
	              r->status, r->err);
	while (*p) {
		e = strchr(p, '\n');
		ck_assert_ptr_nonnull(e);
		if (json) {
			ck_assert_msg(strncmp(p, "{\"pid\":", 7) == 0 && json_object_line(p, e),
			              "not a -m JSON line: %.*s", (int)(e - p), p);
			errors += memmem(p, (size_t)(e - p), ",\"error\":\"", 10) != NULL;
		} else {
			ck_assert_msg(strncmp(p, "memfd: pid=", 11) == 0,
			              "not a -m line: %.*s", (int)(e - p), p);
			errors += memmem(p, (size_t)(e - p), " error=", 7) != NULL;
		}
		p = e + 1;
	}
	ck_assert_msg((r->status == 1) == (errors > 0), "exit %d with %u error "
	              "lines:\n%s", r->status, errors, r->out);
	ck_assert_uint_eq(count(r->err, "\n"), errors);
	ck_assert_uint_eq(count(r->err, "mfshare-dump: /proc/"), errors);
}

/* A child holding a memfd segment: its own (created with @key), or the one
 * @locator names (attached with mfs_attach_locator).  It reports its
 * handle's descriptor and the size through @ready and waits for @go. */
struct mkid {
	const char *key;
	const char *locator;
	int         ready[2];
	int         go[2];
	pid_t       pid;
	int         fd;
	uint64_t    size;
};

static int mkid_main(void *arg)
{
	struct mkid *k = arg;
	mfs_segment *s = NULL;
	char c;
	int r;

	close(k->ready[0]);
	close(k->go[1]);
	r = k->locator ? mfs_attach_locator(k->locator, NULL, &s)
	               : mfs_create(k->key, 4096, &memfd_opts, &s);
	k->fd = r == 0 ? mfs_fd(s) : -1;
	k->size = mfs_size(s);
	if (write(k->ready[1], &k->fd, sizeof k->fd) != sizeof k->fd ||
	    write(k->ready[1], &k->size, sizeof k->size) != sizeof k->size || r != 0)
		return 1;
	while (read(k->go[0], &c, 1) < 0 && errno == EINTR)
		;
	return mfs_detach(s) == 0 ? 0 : 3;
}

static void mkid_start(struct mkid *k)
{
	ck_assert_int_eq(pipe2(k->ready, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(k->go, O_CLOEXEC), 0);
	k->pid = mt_spawn(mkid_main, k);
	ck_assert_int_gt(k->pid, 0);
	close(k->ready[1]);
	close(k->go[0]);
	ck_assert_int_eq(read(k->ready[0], &k->fd, sizeof k->fd), (ssize_t)sizeof k->fd);
	ck_assert_msg(k->fd >= 0, "child could not create/attach its memfd segment");
	ck_assert_int_eq(read(k->ready[0], &k->size, sizeof k->size),
	                 (ssize_t)sizeof k->size);
	close(k->ready[0]);
}

static void mkid_finish(struct mkid *k)
{
	ck_assert_int_eq(write(k->go[1], "g", 1), 1);
	close(k->go[1]);
	ck_assert_int_eq(mt_wait(k->pid, 5000), 0);
}

/* The -m line for descriptor @fd of @pid. */
static const char *m_line(long pid, int fd, uint64_t size, unsigned refcount,
                          const char *key)
{
	static char buf[600];

	snprintf(buf, sizeof buf, "memfd: pid=%ld fd=%d size=%" PRIu64
	         " refcount=%u sealed=1 description=mfshare:%s\n", pid, fd, size,
	         refcount, key);
	return buf;
}

/* A memfd segment through /proc/PID/fd/N: every field, sealed: 1. */
START_TEST(memfd_proc_path)
{
	const char *key = mt_key("dump-memfd");
	char procpath[64], want[300];
	mfs_segment *s;
	mfs_stat st;
	struct run r;
	char *nl;

	ck_assert_int_eq(mfs_create(key, 5000, &memfd_opts, &s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_stat_segment(s, &st), 0);
	ck_assert_int_eq(st.sealed, 1);
	ck_assert_int_ge(mfs_fd(s), 0);
	snprintf(procpath, sizeof procpath, "/proc/%ld/fd/%d", (long)getpid(), mfs_fd(s));

	run_tool(&r, procpath, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "sealed"), 1);
	ck_assert_int_eq(fnum(r.out, "refcount"), 1);
	ck_assert_int_eq(fnum(r.out, "size"), (long long)mfs_size(s));
	ck_assert_int_eq(fnum(r.out, "seq"), 1);
	fstr_eq(r.out, "path", procpath);
	fstr_eq(r.out, "state", "ready");
	ck_assert_int_eq(fnum(r.out, "creator_pid"), (long long)getpid());
	ck_assert_int_eq(fnum(r.out, "file_size"), (long long)st.file_size);
	ck_assert(has_attacher(r.out, (long)getpid(), 1));
	/* New fields come after the older ones, right before the attacher
	 * lines (a memfd lives on the kernel's tmpfs). */
	snprintf(want, sizeof want, "\nmode: 0600\nsealed: 1\nmagic: 0x314552414853464d\n"
	         "layout: 0x00100004\ntotal_size: %" PRIu64 "\nfilesystem: tmpfs\n"
	         "lock: free\nverdict: healthy\nattacher: slot=0 ", st.file_size);
	ck_assert_msg(strstr(r.out, want) != NULL, "no `%s` in:\n%s", want, r.out);
	run_free(&r);

	run_tool(&r, "--json", procpath, NULL);
	expect_ok(&r);
	nl = strchr(r.out, '\n');
	ck_assert_ptr_nonnull(nl);
	ck_assert_str_eq(nl, "\n");
	ck_assert_msg(json_object_line(r.out, nl), "not one JSON object: %s", r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "\"refcount\":1,"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"mode\":\"0600\",\"sealed\":1,\"magic\":"
	                             "\"0x314552414853464d\",\"layout\":1048580,"));
	ck_assert_ptr_nonnull(strstr(r.out, ",\"filesystem\":\"tmpfs\",\"lock\":\"free\","
	                             "\"verdict\":\"healthy\",\"attachers\":[{"));
	snprintf(want, sizeof want, "\"path\":\"%s\",", procpath);
	ck_assert_ptr_nonnull(strstr(r.out, want));
	run_free(&r);

	/* Once detached the descriptor is gone: nothing to read there. */
	ck_assert_int_eq(mfs_detach(s), 0);
	run_tool(&r, procpath, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	run_free(&r);
}
END_TEST

/* -m: ours and a child's memfd segments are listed, an SHM one is not,
 * and a descriptor kept after the last detach shows refcount 0. */
START_TEST(memfd_list)
{
	const char *km = mt_key("dump-memfd"), *kc = mt_key("dump-memfd-kid");
	const char *ks = mt_key("dump-shm");
	struct mkid k = { kc, NULL, { -1, -1 }, { -1, -1 }, 0, -1, 0 };
	char want[700], mine[64];
	mfs_segment *m, *sh;
	struct run r;
	long me = (long)getpid();
	int efd;

	/* The child first, so it inherits none of our descriptors. */
	mkid_start(&k);
	ck_assert_int_eq(mfs_create(km, 4096, &memfd_opts, &m), 0);
	ck_assert_int_eq(mfs_create(ks, 4096, NULL, &sh), 0);
	snprintf(mine, sizeof mine, "memfd: pid=%ld ", me);

	run_tool(&r, "-m", NULL);
	expect_m_output(&r, 0);
	ck_assert_msg(has_line(r.out, m_line(me, mfs_fd(m), mfs_size(m), 1, km)),
	              "no `%s` in:\n%s", m_line(me, mfs_fd(m), mfs_size(m), 1, km), r.out);
	ck_assert_msg(has_line(r.out, m_line((long)k.pid, k.fd, k.size, 1, kc)),
	              "no `%s` in:\n%s", m_line((long)k.pid, k.fd, k.size, 1, kc), r.out);
	/* Our SHM segment's descriptor is not a memfd: one line for us. */
	ck_assert_uint_eq(count_lines(r.out, mine), 1);
	ck_assert_ptr_null(strstr(r.out, ks));
	run_free(&r);

	/* --json: the same, one object per line. */
	run_tool(&r, "-m", "--json", NULL);
	expect_m_output(&r, 1);
	snprintf(want, sizeof want, "{\"pid\":%ld,\"fd\":%d,\"size\":%zu,\"refcount\":1,"
	         "\"sealed\":1,\"description\":\"mfshare:%s\"}\n", me, mfs_fd(m),
	         mfs_size(m), km);
	ck_assert_msg(has_line(r.out, want), "no `%s` in:\n%s", want, r.out);
	snprintf(want, sizeof want, "{\"pid\":%ld,\"fd\":%d,\"size\":%" PRIu64
	         ",\"refcount\":1,\"sealed\":1,\"description\":\"mfshare:%s\"}\n",
	         (long)k.pid, k.fd, k.size, kc);
	ck_assert_msg(has_line(r.out, want), "no `%s` in:\n%s", want, r.out);
	ck_assert_ptr_null(strstr(r.out, ks));
	run_free(&r);

	/* A descriptor that outlives every attachment: listed, refcount 0. */
	ck_assert_int_eq(mfs_export_fd(m, 0, &efd), 0);
	ck_assert_int_eq(mfs_detach(m), 0);
	run_tool(&r, "-m", NULL);
	expect_m_output(&r, 0);
	ck_assert_msg(has_line(r.out, m_line(me, efd, 4096, 0, km)), "no `%s` in:\n%s",
	              m_line(me, efd, 4096, 0, km), r.out);
	ck_assert_uint_eq(count_lines(r.out, mine), 1);
	run_free(&r);

	/* Gone when the last descriptor goes. */
	ck_assert_int_eq(close(efd), 0);
	mkid_finish(&k);
	run_tool(&r, "-m", NULL);
	expect_m_output(&r, 0);
	ck_assert_ptr_null(strstr(r.out, km));
	ck_assert_ptr_null(strstr(r.out, kc));
	ck_assert_uint_eq(count_lines(r.out, mine), 0);
	run_free(&r);
	ck_assert_int_eq(mfs_detach(sh), 0);
}
END_TEST

/* One memfd in two processes: listed once per (pid, fd), with the same
 * description and refcount on every line. */
START_TEST(memfd_list_shared)
{
	const char *key = mt_key("dump-memfd");
	struct mkid k = { NULL, NULL, { -1, -1 }, { -1, -1 }, 0, -1, 0 };
	char loc[128], tail[300];
	mfs_segment *m;
	struct run r;
	long me = (long)getpid();

	ck_assert_int_eq(mfs_create(key, 4096, &memfd_opts, &m), 0);
	ck_assert_int_eq(mfs_locator(m, loc, sizeof loc), 0);
	k.locator = loc;
	mkid_start(&k);
	ck_assert_int_ne(k.fd, -1);

	run_tool(&r, "-m", NULL);
	expect_m_output(&r, 0);
	ck_assert(has_line(r.out, m_line(me, mfs_fd(m), mfs_size(m), 2, key)));
	ck_assert(has_line(r.out, m_line((long)k.pid, k.fd, mfs_size(m), 2, key)));
	/* The child also holds fork()'s copy of our descriptor: three lines,
	 * one memfd. */
	snprintf(tail, sizeof tail, " description=mfshare:%s", key);
	ck_assert_uint_eq(count_lines(r.out, tail), 3);
	run_free(&r);

	mkid_finish(&k);
	run_tool(&r, "-m", NULL);
	expect_m_output(&r, 0);
	ck_assert(has_line(r.out, m_line(me, mfs_fd(m), mfs_size(m), 1, key)));
	ck_assert_uint_eq(count_lines(r.out, tail), 1);
	run_free(&r);
	ck_assert_int_eq(mfs_detach(m), 0);
}
END_TEST

/* A valid segment image in a memfd nobody sealed (nor attached): -m lists
 * it sealed=0, refcount=0, and so does a dump of its /proc path. */
START_TEST(memfd_list_unsealed)
{
	const char *key = mt_key("dump-memfd");
	char name[300], procpath[64], want[700];
	long me = (long)getpid();
	unsigned char *img;
	mfs_segment *m;
	struct stat sb;
	struct run r;
	uint64_t size;
	int u;

	ck_assert_int_eq(mfs_create(key, 4096, &memfd_opts, &m), 0);
	size = mfs_size(m);
	ck_assert_int_eq(fstat(mfs_fd(m), &sb), 0);
	img = malloc((size_t)sb.st_size);
	ck_assert_ptr_nonnull(img);
	ck_assert_int_eq(pread(mfs_fd(m), img, (size_t)sb.st_size, 0), sb.st_size);
	ck_assert_int_eq(mfs_detach(m), 0);
	snprintf(name, sizeof name, "mfshare:%s", key);
	u = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	ck_assert_int_ge(u, 0);
	ck_assert_int_eq(pwrite(u, img, (size_t)sb.st_size, 0), sb.st_size);
	ck_assert_int_eq(fcntl(u, F_GET_SEALS), 0);
	free(img);

	run_tool(&r, "-m", NULL);
	expect_m_output(&r, 0);
	snprintf(want, sizeof want, "memfd: pid=%ld fd=%d size=%" PRIu64 " refcount=0 "
	         "sealed=0 description=%s\n", me, u, size, name);
	ck_assert_msg(has_line(r.out, want), "no `%s` in:\n%s", want, r.out);
	run_free(&r);

	run_tool(&r, "-m", "-j", NULL);
	expect_m_output(&r, 1);
	snprintf(want, sizeof want, "{\"pid\":%ld,\"fd\":%d,\"size\":%" PRIu64
	         ",\"refcount\":0,\"sealed\":0,\"description\":\"%s\"}\n", me, u, size, name);
	ck_assert_msg(has_line(r.out, want), "no `%s` in:\n%s", want, r.out);
	run_free(&r);

	snprintf(procpath, sizeof procpath, "/proc/%ld/fd/%d", me, u);
	run_tool(&r, "--stale", procpath, NULL);
	expect_ok(&r);
	ck_assert_int_eq(fnum(r.out, "sealed"), 0);
	ck_assert_int_eq(fnum(r.out, "refcount"), 0);
	run_free(&r);
	close(u);
}
END_TEST

/* -m: a memfd described as ours but holding garbage is listed with its
 * error (exit 1); another program's memfd ("mfsharex...") is not ours. */
START_TEST(memfd_list_corrupt)
{
	char name[64], other[64], want[300];
	unsigned char junk[8192];
	long me = (long)getpid();
	struct run r;
	int j, o;

	snprintf(name, sizeof name, "mfshare:dump-junk-%ld", me);
	snprintf(other, sizeof other, "mfsharex-dump-%ld", me);
	memset(junk, 'J', sizeof junk);
	j = memfd_create(name, MFD_CLOEXEC);
	ck_assert_int_ge(j, 0);
	ck_assert_int_eq(pwrite(j, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	o = memfd_create(other, MFD_CLOEXEC);
	ck_assert_int_ge(o, 0);
	ck_assert_int_eq(pwrite(o, junk, sizeof junk, 0), (ssize_t)sizeof junk);

	run_tool(&r, "-m", NULL);
	expect_m_output(&r, 0);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof want, "memfd: pid=%ld fd=%d error=E_CORRUPT description=%s\n",
	         me, j, name);
	ck_assert_msg(has_line(r.out, want), "no `%s` in:\n%s", want, r.out);
	snprintf(want, sizeof want, "mfshare-dump: /proc/%ld/fd/%d: %s: ", me, j,
	         mfs_strerror(MFS_E_CORRUPT));
	ck_assert_msg(strstr(r.err, want) != NULL, "no `%s` in: %s", want, r.err);
	ck_assert_ptr_null(strstr(r.out, other));
	run_free(&r);

	run_tool(&r, "--memfd", "--json", NULL);
	expect_m_output(&r, 1);
	ck_assert_int_eq(r.status, 1);
	snprintf(want, sizeof want, "{\"pid\":%ld,\"fd\":%d,\"error\":\"E_CORRUPT\","
	         "\"description\":\"%s\"}\n", me, j, name);
	ck_assert_msg(has_line(r.out, want), "no `%s` in:\n%s", want, r.out);
	ck_assert_ptr_null(strstr(r.out, other));
	run_free(&r);

	/* The tool read it and wrote nothing. */
	memset(junk, 0, sizeof junk);
	ck_assert_int_eq(pread(j, junk, sizeof junk, 0), (ssize_t)sizeof junk);
	ck_assert_int_eq(junk[0], 'J');
	ck_assert_int_eq(junk[sizeof junk - 1], 'J');
	close(j);
	close(o);
}
END_TEST

/* ------------------------------------------------------------ several */

/* The text block (of several, separated by empty lines) whose `path:` line
 * is @path, in a new buffer; NULL if there is none. */
static char *block_of(const char *out, const char *path)
{
	char want[4200];
	const char *p = out, *start, *end;

	snprintf(want, sizeof want, "path: %s\n", path);
	while ((p = strstr(p, want)) != NULL && p != out && p[-1] != '\n')
		p++;
	if (!p)
		return NULL;
	for (start = p; start > out && !(start[-1] == '\n' && start - 1 > out &&
	                                 start[-2] == '\n'); start--)
		;
	end = strstr(p, "\n\n");
	end = end ? end + 1 : p + strlen(p);
	return strndup(start, (size_t)(end - start));
}

/* Lines of @txt that start with @prefix. */
static unsigned count_starts(const char *txt, const char *prefix)
{
	const char *p = txt;
	unsigned n = 0;

	while (*p) {
		if (strncmp(p, prefix, strlen(prefix)) == 0)
			n++;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return n;
}

/* The JSON line of @out whose "path" is @path, in a new buffer, or NULL. */
static char *json_line_of(const char *out, const char *path)
{
	char want[4200];
	const char *p, *s, *e;

	snprintf(want, sizeof want, "\"path\":\"%s\",", path);
	if (!(p = strstr(out, want)))
		return NULL;
	for (s = p; s > out && s[-1] != '\n'; s--)
		;
	e = strchr(p, '\n');
	ck_assert_ptr_nonnull(e);
	return strndup(s, (size_t)(e + 1 - s));
}

/* Every line of @out is one JSON object (RFC 8259); returns the count. */
static unsigned json_lines(const char *out)
{
	const char *p = out, *e;
	unsigned n = 0;

	while (*p) {
		e = strchr(p, '\n');
		ck_assert_ptr_nonnull(e);
		ck_assert_msg(json_object_line(p, e), "not a JSON object: %.*s", (int)(e - p), p);
		n++;
		p = e + 1;
	}
	return n;
}

/* Is python3 in $PATH? */
static int have_python(void)
{
	const char *path = getenv("PATH");
	char buf[4096];
	const char *p, *e;

	for (p = path ? path : "/usr/bin:/bin"; *p; p = *e ? e + 1 : e) {
		e = strchr(p, ':');
		if (!e)
			e = p + strlen(p);
		snprintf(buf, sizeof buf, "%.*s/python3", (int)(e - p), p);
		if (access(buf, X_OK) == 0)
			return 1;
	}
	return 0;
}

/* @json (JSON lines) through `python3 -m json.tool --json-lines`: its
 * pretty form (one member per line, objects one after the other), in a new
 * buffer; NULL when there is no python3 (the caller then relies on the
 * built-in checker alone). */
static char *pretty_json(const char *json)
{
	static const char *const args[] = { "-m", "json.tool", "--json-lines", NULL };
	const char *tmp = mt_tmpdir();
	char in[600];
	struct run r;

	if (!have_python()) {
		fprintf(stderr, "check_dump: no python3: JSON checked by the built-in "
		        "parser only\n");
		return NULL;
	}
	ck_assert_ptr_nonnull(tmp);
	snprintf(in, sizeof in, "%s/out.json", tmp);
	write_file(in, json, strlen(json));
	run_exec(&r, "python3", args, in, 0);
	mt_rmtree(tmp);
	ck_assert_msg(r.status == 0, "python3 -m json.tool refused:\n%s\n%s", json, r.err);
	free(r.err);
	return r.out;
}

/* The pretty-printed object (from pretty_json) whose "path" is @path, in a
 * new buffer. */
static char *pretty_object(const char *pretty, const char *path)
{
	char want[4200];
	const char *p, *s, *e;

	snprintf(want, sizeof want, "\n    \"path\": \"%s\"", path);
	p = strstr(pretty, want);
	ck_assert_msg(p != NULL, "no object with path %s in:\n%s", path, pretty);
	for (s = p; s > pretty && !(s[0] == '{' && (s == pretty || s[-1] == '\n')); s--)
		;
	e = strstr(p, "\n}");
	ck_assert_ptr_nonnull(e);
	return strndup(s, (size_t)(e + 3 - s));
}

/* The value of member @key of the pretty object @obj (a top-level member:
 * four spaces of indent), without its trailing comma. */
static const char *pj(const char *obj, const char *key, char *buf, size_t len)
{
	char want[200];
	const char *p, *e;

	snprintf(want, sizeof want, "\n    \"%s\": ", key);
	p = strstr(obj, want);
	ck_assert_msg(p != NULL, "no member \"%s\" in:\n%s", key, obj);
	p += strlen(want);
	e = strchr(p, '\n');
	ck_assert_ptr_nonnull(e);
	if (e > p && e[-1] == ',')
		e--;
	ck_assert_uint_lt((size_t)(e - p), len);
	memcpy(buf, p, (size_t)(e - p));
	buf[e - p] = 0;
	return buf;
}

static void pj_eq(const char *obj, const char *key, const char *want)
{
	char buf[4200];

	ck_assert_msg(strcmp(pj(obj, key, buf, sizeof buf), want) == 0,
	              "\"%s\": %s, want %s", key, buf, want);
}

static void pj_num(const char *obj, const char *key, long long want)
{
	char w[32];

	snprintf(w, sizeof w, "%lld", want);
	pj_eq(obj, key, w);
}

/* ------------------------------------------------------------ golden */

/*
 * A known segment, printed in full with -x: the whole output, after the
 * values that change from run to run (path, pids, start times, uids) are
 * replaced by PATH and N, must be this text exactly.  The four sizes
 * depend on the page size (4096 on most machines).
 */
static const char golden_fmt[] =
	"version: 1\n"
	"size: %" PRIu64 "\n"
	"refcount: 1\n"
	"locked: 1\n"
	"lock_owner: N\n"
	"seq: 3\n"
	"path: PATH\n"
	"state: ready\n"
	"header_size: 4096\n"
	"data_offset: %" PRIu64 "\n"
	"file_size: %" PRIu64 "\n"
	"creator_uid: N\n"
	"creator_pid: N\n"
	"creator_start: N\n"
	"attach_count: 1\n"
	"slot_count: 240\n"
	"slot_high: 1\n"
	"dead_slots: 0\n"
	"lock_word: 0x00000005\n"
	"lock_owner_tid: N\n"
	"lock_owner_alive: 1\n"
	"lock_waiters: 0\n"
	"seq_waiters: 0\n"
	"uid: N\n"
	"mode: 0640\n"
	"sealed: 0\n"
	"magic: 0x314552414853464d\n"
	"layout: 0x00100004\n"
	"total_size: %" PRIu64 "\n"
	"filesystem: tmpfs\n"
	"lock: held pid=N tid=N waiters=0\n"
	"verdict: healthy\n"
	"attacher: slot=0 pid=N tid=N start=N alive=1\n"
	"hexdump: 00000000  67 6f 6c 64 65 6e 0a 00  00 00 00 00 00 00 00 00  |golden..........|\n"
	"hexdump: 00000010  00 00 00 00 ff 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
	"hexdump: 00000020  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|\n"
	"hexdump: *\n"
	"hexdump: 00000040  00 00 00 00 74 61 69 6c  00 00                    |....tail..|\n"
	"hexdump: 0000004a\n";

/* @txt with the values that vary replaced, in a new buffer. */
static char *normalize(const char *txt)
{
	static const char *const vary[] = {
		"lock_owner", "creator_uid", "creator_pid", "creator_start",
		"lock_owner_tid", "uid", NULL
	};
	char *out = malloc(strlen(txt) + 1), *o = out;
	const char *p = txt, *e, *v;
	unsigned i;

	ck_assert_ptr_nonnull(out);
	while (*p) {
		e = strchr(p, '\n');
		ck_assert_ptr_nonnull(e);
		for (i = 0; vary[i]; i++)
			if (strncmp(p, vary[i], strlen(vary[i])) == 0 &&
			    strncmp(p + strlen(vary[i]), ": ", 2) == 0)
				break;
		if (vary[i]) {
			o += sprintf(o, "%s: N\n", vary[i]);
		} else if (strncmp(p, "path: ", 6) == 0) {
			o += sprintf(o, "path: PATH\n");
		} else {
			/* pid=123 tid=123 start=123 in the lock and attacher lines */
			for (v = p; v <= e; v++) {
				*o++ = *v;
				if ((v[0] == '=' && v > p + 2 && (strncmp(v - 3, "pid", 3) == 0 ||
				     strncmp(v - 3, "tid", 3) == 0)) ||
				    (v[0] == '=' && v > p + 4 && strncmp(v - 5, "start", 5) == 0)) {
					if (v[1] >= '0' && v[1] <= '9') {
						*o++ = 'N';
						while (v[1] >= '0' && v[1] <= '9')
							v++;
					}
				}
			}
		}
		p = e + 1;
	}
	*o = 0;
	return out;
}

START_TEST(golden_text)
{
	const char *key = mt_key("dump-golden");
	mfs_options o = { MFS_BACKEND_SHM, 0, 0640, NULL };
	uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE), doff = page > 4096 ? page : 4096;
	char golden[4096], *norm;
	unsigned char *d;
	mfs_segment *s;
	struct run r;

	ck_assert_int_eq(mfs_create(key, 4096, &o, &s), 0);
	d = mfs_data(s);
	memcpy(d, "golden\n", 7);
	d[0x14] = 0xff;
	memcpy(d + 0x44, "tail", 4);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_lock(s), 0);

	run_tool(&r, "-x0:0x4a", key, NULL);
	expect_ok(&r);
	fstr_eq(r.out, "path", shm_path(key));
	ck_assert_int_eq(fnum(r.out, "lock_owner"), (long long)getpid());
	ck_assert_int_eq(fnum(r.out, "creator_pid"), (long long)getpid());
	norm = normalize(r.out);
	snprintf(golden, sizeof golden, golden_fmt, doff, doff, 2 * doff, 2 * doff);
	ck_assert_msg(strcmp(norm, golden) == 0, "got:\n%s\nwant:\n%s", norm, golden);
	free(norm);
	run_free(&r);

	/* The same after the unlock, but for the lock's fields. */
	ck_assert_int_eq(mfs_unlock(s), 0);
	run_tool(&r, key, NULL);
	expect_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "\nlock: free\nverdict: healthy\nattacher: "));
	fstr_eq(r.out, "lock_word", "0x00000000");
	ck_assert_ptr_null(strstr(r.out, "hexdump:"));
	run_free(&r);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

/* --json through python3 -m json.tool, every member checked, in order. */
START_TEST(json_fields)
{
	static const char *const order[] = {
		"version", "size", "refcount", "locked", "lock_owner", "seq", "path",
		"state", "header_size", "data_offset", "file_size", "creator_uid",
		"creator_pid", "creator_start", "attach_count", "slot_count",
		"slot_high", "dead_slots", "lock_word", "lock_owner_tid",
		"lock_owner_alive", "lock_waiters", "seq_waiters", "uid", "mode",
		"sealed", "magic", "layout", "total_size", "filesystem", "lock",
		"verdict", "attachers", "hexdump"
	};
	const char *key = mt_key("dump-json");
	struct kid k = { key, NULL, 0, 1, { -1, -1 }, { -1, -1 }, 0 };
	char *pretty, *obj, buf[4200];
	const char *p;
	mfs_segment *s;
	mfs_stat st;
	struct run r;
	unsigned i;

	ck_assert_int_eq(mfs_create(key, 4096, NULL, &s), 0);
	memcpy(mfs_data(s), "json", 4);
	ck_assert_int_eq(mfs_notify(s), 0);
	ck_assert_int_eq(mfs_notify(s), 0);
	kid_start(&k); /* attached, holding the lock */
	ck_assert_int_eq(mfs_stat_segment(s, &st), 0);

	run_tool(&r, "--json", "-x0:8", key, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(json_lines(r.out), 1);
	pretty = pretty_json(r.out);
	if (pretty) {
		obj = pretty_object(pretty, shm_path(key));
		pj_num(obj, "version", 1);
		pj_num(obj, "size", (long long)mfs_size(s));
		pj_num(obj, "refcount", 2);
		pj_num(obj, "locked", 1);
		pj_num(obj, "lock_owner", (long long)k.pid);
		pj_num(obj, "seq", 2);
		snprintf(buf, sizeof buf, "\"%s\"", shm_path(key));
		pj_eq(obj, "path", buf);
		pj_eq(obj, "state", "\"ready\"");
		pj_num(obj, "header_size", 4096);
		pj_num(obj, "data_offset", (long long)st.data_offset);
		pj_num(obj, "file_size", (long long)st.file_size);
		pj_num(obj, "creator_uid", (long long)geteuid());
		pj_num(obj, "creator_pid", (long long)getpid());
		pj_num(obj, "creator_start", (long long)st.creator_start);
		pj_num(obj, "attach_count", 2);
		pj_num(obj, "slot_count", 240);
		pj_num(obj, "slot_high", 2);
		pj_num(obj, "dead_slots", 0);
		pj_num(obj, "lock_word", (long long)st.lock_word);
		pj_num(obj, "lock_owner_tid", (long long)k.pid);
		pj_num(obj, "lock_owner_alive", 1);
		pj_num(obj, "lock_waiters", 0);
		pj_num(obj, "seq_waiters", 0);
		pj_num(obj, "uid", (long long)geteuid());
		pj_eq(obj, "mode", "\"0600\"");
		pj_num(obj, "sealed", 0);
		pj_eq(obj, "magic", "\"0x314552414853464d\"");
		pj_num(obj, "layout", 0x00100004);
		pj_num(obj, "total_size", (long long)st.file_size);
		pj_eq(obj, "filesystem", "\"tmpfs\"");
		pj_eq(obj, "lock", "\"held\"");
		pj_eq(obj, "verdict", "\"healthy\"");
		ck_assert_ptr_null(strstr(obj, "\"warning\""));
		pj_eq(obj, "attachers", "[");
		snprintf(buf, sizeof buf, "\"pid\": %ld,", (long)getpid());
		ck_assert_ptr_nonnull(strstr(obj, buf));
		snprintf(buf, sizeof buf, "\"pid\": %ld,", (long)k.pid);
		ck_assert_ptr_nonnull(strstr(obj, buf));
		ck_assert_uint_eq(count(obj, "\"alive\": 1"), 2);
		pj_eq(obj, "hexdump", "{");
		ck_assert_ptr_nonnull(strstr(obj, "\"offset\": 0,"));
		ck_assert_ptr_nonnull(strstr(obj, "\"hex\": \"6a736f6e00000000\","));
		ck_assert_ptr_nonnull(strstr(obj, "\"length\": 8\n"));
		/* The members, in the documented order, and no others. */
		p = obj;
		for (i = 0; i < sizeof order / sizeof order[0]; i++) {
			snprintf(buf, sizeof buf, "\n    \"%s\": ", order[i]);
			p = strstr(p, buf);
			ck_assert_msg(p != NULL, "member %s missing or out of order", order[i]);
		}
		ck_assert_uint_eq(count_starts(obj, "    \""), sizeof order / sizeof order[0]);
		free(obj);
		free(pretty);
	}
	run_free(&r);
	kid_finish(&k);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

/* ------------------------------------------------------------ --all, --clean */

/* A private runtime directory: XDG_RUNTIME_DIR for the tool runs. */
static const char *private_runtime(void)
{
	const char *rt = mt_tmpdir();

	ck_assert_ptr_nonnull(rt);
	ck_assert_int_eq(setenv("XDG_RUNTIME_DIR", rt, 1), 0);
	return rt;
}

static void verdict_of(const char *out, const char *path, const char *verdict)
{
	char *b = block_of(out, path), want[64];

	ck_assert_msg(b != NULL, "no block for %s in:\n%s", path, out);
	snprintf(want, sizeof want, "\nverdict: %s\n", verdict);
	ck_assert_msg(strstr(b, want) != NULL, "%s: not %s:\n%s", path, verdict, b);
	free(b);
}

/*
 * --all finds a segment made stale by SIGKILL, a live one, one with a dead
 * attacher and a wedged one (in a private runtime directory and a -d
 * directory); --clean --dry-run and --clean remove only the stale one.
 */
START_TEST(all_and_clean)
{
	const char *rt = private_runtime(), *dd = mt_tmpdir();
	const char *ka = mt_key("dump-a"), *kb = mt_key("dump-b");
	const char *kc = mt_key("dump-c"), *kw = mt_key("dump-w");
	mfs_options ro = { MFS_BACKEND_RUNTIME_DIR, 0, 0, NULL };
	mfs_options fo = { MFS_BACKEND_FILE, 0, 0, NULL };
	struct kid a = { ka, &ro, 1, 0, { -1, -1 }, { -1, -1 }, 0 };
	struct kid b = { kb, &fo, 1, 0, { -1, -1 }, { -1, -1 }, 0 };
	struct kid c = { kc, &fo, 0, 0, { -1, -1 }, { -1, -1 }, 0 };
	struct kid w = { kw, &fo, 0, 1, { -1, -1 }, { -1, -1 }, 0 };
	char pa[600], pb[600], pc[600], pw[600], notes[600], want[300], *blk, *pretty, *obj;
	static const char *args[8];
	mfs_segment *sc, *sw;
	mfs_stat st;
	struct run r;

	ck_assert_ptr_nonnull(dd);
	fo.dir = dd;
	snprintf(pa, sizeof pa, "%s/mfshare/%s", rt, ka);
	snprintf(pb, sizeof pb, "%s/%s", dd, kb);
	snprintf(pc, sizeof pc, "%s/%s", dd, kc);
	snprintf(pw, sizeof pw, "%s/%s", dd, kw);
	snprintf(notes, sizeof notes, "%s/notes.txt", dd);
	write_file(notes, "not a segment\n", 14);

	kid_start(&a);
	kid_kill(&a);                 /* stale */
	kid_start(&b);                /* live, the child's */
	ck_assert_int_eq(mfs_create(kc, 4096, &fo, &sc), 0);
	kid_start(&c);
	kid_kill(&c);                 /* ours, with a dead attacher */
	ck_assert_int_eq(mfs_create(kw, 4096, &fo, &sw), 0);
	kid_start(&w);
	kid_kill(&w);                 /* ours, its lock held by the dead */

	args[0] = "--all";
	args[1] = "--only=runtime,dir";
	args[2] = "-d";
	args[3] = dd;
	args[4] = NULL;
	run_argv(&r, args);
	ck_assert_msg(r.status == 1, "exit %d, stderr: %s", r.status, r.err);
	ck_assert_str_eq(r.err, "");
	ck_assert_uint_eq(count_starts(r.out, "path: "), 4);
	ck_assert_uint_eq(count(r.out, "\n\n"), 3);
	verdict_of(r.out, pa, "stale");
	verdict_of(r.out, pb, "healthy");
	verdict_of(r.out, pc, "healthy");
	verdict_of(r.out, pw, "wedged");
	ck_assert_ptr_null(strstr(r.out, "notes.txt"));
	/* The runtime directory first, then -d, each in name order. */
	ck_assert_int_eq(strncmp(r.out, "version: 1\n", 11), 0);
	ck_assert_ptr_nonnull(strstr(r.out, pa));
	ck_assert(strstr(r.out, pa) < strstr(r.out, pb));
	blk = block_of(r.out, pa);
	ck_assert_int_eq(fnum(blk, "refcount"), 0);
	ck_assert(has_attacher(blk, (long)a.pid, 0));
	free(blk);
	blk = block_of(r.out, pc);
	ck_assert_int_eq(fnum(blk, "refcount"), 1);
	ck_assert_int_eq(fnum(blk, "dead_slots"), 1);
	ck_assert(has_attacher(blk, (long)c.pid, 0));
	free(blk);
	blk = block_of(r.out, pw);
	snprintf(want, sizeof want, "lock: dead pid=%ld tid=%ld waiters=0", (long)w.pid,
	         (long)w.pid);
	fstr_eq(blk, "lock", want + 6);
	ck_assert_int_eq(fnum(blk, "lock_owner_alive"), 0);
	free(blk);
	run_free(&r);

	/* The same as JSON lines, one object per segment. */
	args[4] = "--json";
	args[5] = NULL;
	run_argv(&r, args);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(json_lines(r.out), 4);
	pretty = pretty_json(r.out);
	if (pretty) {
		obj = pretty_object(pretty, pa);
		pj_eq(obj, "verdict", "\"stale\"");
		pj_num(obj, "refcount", 0);
		free(obj);
		obj = pretty_object(pretty, pw);
		pj_eq(obj, "verdict", "\"wedged\"");
		pj_eq(obj, "lock", "\"dead\"");
		free(obj);
		obj = pretty_object(pretty, pb);
		pj_eq(obj, "verdict", "\"healthy\"");
		free(obj);
		free(pretty);
	}
	run_free(&r);

	/* --dry-run: says it would remove the stale one, removes nothing. */
	args[4] = "--clean";
	args[5] = "--dry-run";
	args[6] = NULL;
	run_argv(&r, args);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.err, "");
	ck_assert_uint_eq(count_starts(r.out, "path: "), 2);
	blk = block_of(r.out, pa);
	ck_assert_ptr_nonnull(blk);
	fstr_eq(blk, "verdict", "stale");
	fstr_eq(blk, "action", "would remove");
	free(blk);
	blk = block_of(r.out, pw);
	ck_assert_ptr_nonnull(blk);
	ck_assert_int_eq(strncmp(field(blk, "action", want, sizeof want), "kept: ", 6), 0);
	free(blk);
	ck_assert_int_eq(access(pa, F_OK), 0);
	run_free(&r);

	/* --clean: the stale one goes, the rest stay; the wedged one remains,
	 * so the status is 1. */
	args[5] = NULL;
	run_argv(&r, args);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.err, "");
	ck_assert_uint_eq(count_starts(r.out, "path: "), 2);
	blk = block_of(r.out, pa);
	ck_assert_ptr_nonnull(blk);
	fstr_eq(blk, "action", "removed");
	free(blk);
	verdict_of(r.out, pw, "wedged");
	ck_assert_int_ne(access(pa, F_OK), 0);
	ck_assert_int_eq(access(pb, F_OK), 0);
	ck_assert_int_eq(access(pc, F_OK), 0);
	ck_assert_int_eq(access(pw, F_OK), 0);
	ck_assert_int_eq(access(notes, F_OK), 0);
	ck_assert_int_eq(mfs_stat_segment(sc, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	run_free(&r);

	/* The lock taken over: all healthy, nothing to clean, status 0. */
	ck_assert_int_eq(mfs_lock(sw), MFS_E_OWNER_DEAD);
	ck_assert_int_eq(mfs_unlock(sw), 0);
	run_argv(&r, args);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "");
	run_free(&r);
	args[4] = NULL;
	run_argv(&r, args);
	expect_ok(&r);
	ck_assert_uint_eq(count_starts(r.out, "path: "), 3);
	ck_assert_uint_eq(count_starts(r.out, "verdict: healthy"), 3);
	run_free(&r);

	kid_finish(&b);
	ck_assert_int_eq(mfs_detach(sc), 0);
	ck_assert_int_eq(mfs_detach(sw), 0);
	mt_rmtree(dd);
	mt_rmtree(rt);
}
END_TEST

/* --clean on KEY and PATH operands. */
START_TEST(clean_operands)
{
	const char *ks = mt_key("dump-st"), *kl = mt_key("dump-live");
	const char *km = mt_key("dump-memfd");
	struct kid k = { ks, NULL, 1, 0, { -1, -1 }, { -1, -1 }, 0 };
	char ps[512], procpath[64], want[600], *blk;
	mfs_segment *l, *m;
	mfs_stat st;
	struct run r;
	int efd;

	snprintf(ps, sizeof ps, "%s", shm_path(ks));
	kid_start(&k);
	kid_kill(&k);

	run_tool(&r, "--clean", "-n", ks, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.err, "");
	fstr_eq(r.out, "path", ps);
	fstr_eq(r.out, "verdict", "stale");
	fstr_eq(r.out, "action", "would remove");
	ck_assert_int_eq(access(ps, F_OK), 0);
	run_free(&r);

	run_tool(&r, "--clean", "--json", ks, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(json_lines(r.out), 1);
	ck_assert_ptr_nonnull(strstr(r.out, ",\"verdict\":\"stale\",\"action\":\"removed\","));
	ck_assert_int_ne(access(ps, F_OK), 0);
	run_free(&r);

	/* Gone: not found, like any absent KEY. */
	run_tool(&r, "--clean", ks, NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	snprintf(want, sizeof want, "mfshare-dump: %s: %s", ks, mfs_strerror(MFS_E_NOT_FOUND));
	ck_assert_int_eq(strncmp(r.err, want, strlen(want)), 0);
	run_free(&r);

	/* A live segment is left alone, and --clean says nothing of it. */
	ck_assert_int_eq(mfs_create(kl, 4096, NULL, &l), 0);
	run_tool(&r, "--clean", kl, shm_path(kl), NULL);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "");
	ck_assert_int_eq(access(shm_path(kl), F_OK), 0);
	ck_assert_int_eq(mfs_stat_segment(l, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	run_free(&r);
	ck_assert_int_eq(mfs_detach(l), 0);

	/* A stale memfd (a descriptor kept after the last detach) has no name
	 * to remove: kept, and it remains, so the status is 1. */
	ck_assert_int_eq(mfs_create(km, 4096, &memfd_opts, &m), 0);
	ck_assert_int_eq(mfs_export_fd(m, 0, &efd), 0);
	ck_assert_int_eq(mfs_detach(m), 0);
	snprintf(procpath, sizeof procpath, "/proc/%ld/fd/%d", (long)getpid(), efd);
	run_tool(&r, "--clean", procpath, NULL);
	ck_assert_int_eq(r.status, 1);
	blk = block_of(r.out, procpath);
	ck_assert_ptr_nonnull(blk);
	fstr_eq(blk, "verdict", "stale");
	ck_assert_int_eq(strncmp(field(blk, "action", want, sizeof want), "kept: ", 6), 0);
	free(blk);
	run_free(&r);
	close(efd);
}
END_TEST

/* Plain --all (every source, read-only): our SHM and memfd segments are
 * there, a memfd on two descriptors once; --only narrows the sources.
 * Other tests' segments are there too: assertions look at ours only. */
START_TEST(all_sources)
{
	const char *ks = mt_key("dump-all"), *km = mt_key("dump-allm");
	char mine[64], want[600], *blk;
	mfs_segment *s, *m;
	struct run r;
	int efd, low;

	ck_assert_int_eq(mfs_create(ks, 4096, NULL, &s), 0);
	ck_assert_int_eq(mfs_create(km, 4096, &memfd_opts, &m), 0);
	ck_assert_int_eq(mfs_export_fd(m, 0, &efd), 0);
	low = efd < mfs_fd(m) ? efd : mfs_fd(m);
	snprintf(mine, sizeof mine, "path: /proc/%ld/fd/", (long)getpid());
	tool_ms = 25000;

	run_tool(&r, "--all", NULL);
	ck_assert_msg(r.status == 0 || r.status == 1, "exit %d: %s", r.status, r.err);
	verdict_of(r.out, shm_path(ks), "healthy");
	snprintf(want, sizeof want, "/proc/%ld/fd/%d", (long)getpid(), low);
	verdict_of(r.out, want, "healthy");
	blk = block_of(r.out, want);
	ck_assert_int_eq(fnum(blk, "sealed"), 1);
	fstr_eq(blk, "filesystem", "tmpfs");
	free(blk);
	ck_assert_uint_eq(count_starts(r.out, mine), 1);
	run_free(&r);

	run_tool(&r, "--all", "--only=memfd", "--json", NULL);
	ck_assert(r.status == 0 || r.status == 1);
	json_lines(r.out);
	blk = json_line_of(r.out, want);
	ck_assert_ptr_nonnull(blk);
	ck_assert_ptr_nonnull(strstr(blk, ",\"sealed\":1,"));
	ck_assert_ptr_nonnull(strstr(blk, ",\"verdict\":\"healthy\","));
	free(blk);
	ck_assert_ptr_null(strstr(r.out, "\"path\":\"/dev/shm/"));
	run_free(&r);

	run_tool(&r, "--all", "--only=shm", NULL);
	ck_assert(r.status == 0 || r.status == 1);
	verdict_of(r.out, shm_path(ks), "healthy");
	ck_assert_ptr_null(strstr(r.out, "path: /proc/"));
	run_free(&r);

	/* After the detach the memfd lives on in efd alone: stale. */
	ck_assert_int_eq(mfs_detach(m), 0);
	run_tool(&r, "--all", "--only=memfd", NULL);
	snprintf(want, sizeof want, "/proc/%ld/fd/%d", (long)getpid(), efd);
	verdict_of(r.out, want, "stale");
	ck_assert_int_eq(r.status, 1);
	run_free(&r);
	close(efd);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

/* ------------------------------------------------------------ hostile */

/* The hostile objects of check_hostile.c, and what the tool must name. */
enum hkind { H_BYTES, H_DIR, H_FIFO, H_SYMLINK, H_DANGLING };
typedef void (*hmut)(unsigned char *b, size_t *len);

#define HSET(b, field, v) do { \
	__typeof__(((struct mfs_header *)0)->field) v_ = (v); \
	memcpy((b) + offsetof(struct mfs_header, field), &v_, sizeof v_); \
} while (0)
#define HGET64(b, field, out) memcpy(&(out), (b) + offsetof(struct mfs_header, field), 8)

static void h_empty(unsigned char *b, size_t *len) { (void)b; *len = 0; }
static void h_garbage(unsigned char *b, size_t *len)
{
	size_t i;

	for (i = 0; i < 100; i++)
		b[i] = (unsigned char)(i * 37u + 11u);
	*len = 100;
}
static void h_zero4096(unsigned char *b, size_t *len) { memset(b, 0, 4096); *len = 4096; }
static void h_zero8192(unsigned char *b, size_t *len) { memset(b, 0, 8192); *len = 8192; }
static void h_magic(unsigned char *b, size_t *len) { (void)len; HSET(b, magic, UINT64_C(0x0123456789abcdef)); }
static void h_swapped(unsigned char *b, size_t *len) { (void)len; HSET(b, magic, MFS_MAGIC_SWAPPED); }
static void h_version(unsigned char *b, size_t *len) { (void)len; HSET(b, version, 2u); }
static void h_layout(unsigned char *b, size_t *len) { (void)len; HSET(b, layout, (8192u << 8) | 4u); }
static void h_truncated(unsigned char *b, size_t *len) { (void)b; *len = 4096; }
static void h_offset(unsigned char *b, size_t *len) { (void)len; HSET(b, data_offset, (uint64_t)4097); }
static void h_size0(unsigned char *b, size_t *len) { (void)len; HSET(b, data_size, (uint64_t)0); }
static void h_total(unsigned char *b, size_t *len)
{
	uint64_t off, size;

	(void)len;
	HGET64(b, data_offset, off);
	HGET64(b, data_size, size);
	HSET(b, total_size, off + size - 4096);
}
static void h_huge(unsigned char *b, size_t *len) { (void)len; HSET(b, data_size, UINT64_MAX); }
static void h_overflow(unsigned char *b, size_t *len)
{
	uint64_t off, size = UINT64_MAX - 4095;

	(void)len;
	HGET64(b, data_offset, off);
	HSET(b, data_size, size);
	HSET(b, total_size, off + size);
}
static void h_state(unsigned char *b, size_t *len) { (void)len; HSET(b, state, 7u); }
static void h_slot_high(unsigned char *b, size_t *len) { (void)len; HSET(b, slot_high, 1000u); }
static void h_slot_count(unsigned char *b, size_t *len) { (void)len; HSET(b, slot_count, 0u); }
static void h_lock(unsigned char *b, size_t *len) { (void)len; HSET(b, lock, ((999u + 1u) << 2) | 1u); }

static const struct hcase {
	const char *name;
	int kind;
	hmut mut;
	const char *why;   /* in the error the tool prints */
	int magic;         /* still starts with the magic: -d lists it */
} hcases[] = {
	{ "empty file", H_BYTES, h_empty, "truncated", 0 },
	{ "100 bytes of garbage", H_BYTES, h_garbage, "truncated", 0 },
	{ "4096 zero bytes", H_BYTES, h_zero4096, "magic", 0 },
	{ "8192 zero bytes", H_BYTES, h_zero8192, "magic", 0 },
	{ "bad magic", H_BYTES, h_magic, "magic", 0 },
	{ "byte-swapped magic", H_BYTES, h_swapped, "byte order", 1 },
	{ "version 2", H_BYTES, h_version, "version", 1 },
	{ "wrong layout word", H_BYTES, h_layout, "layout", 1 },
	{ "file shorter than total_size", H_BYTES, h_truncated, "total_size", 1 },
	{ "data_offset not a page multiple", H_BYTES, h_offset, "data_offset", 1 },
	{ "data_size 0", H_BYTES, h_size0, "data_size", 1 },
	{ "total_size != data_offset + data_size", H_BYTES, h_total, "total_size", 1 },
	{ "data_size UINT64_MAX", H_BYTES, h_huge, "data_size", 1 },
	{ "data_offset + data_size overflows", H_BYTES, h_overflow, "total_size", 1 },
	{ "state 7", H_BYTES, h_state, "state", 1 },
	{ "slot_high 1000", H_BYTES, h_slot_high, "slot_high", 1 },
	{ "slot_count 0", H_BYTES, h_slot_count, "slot_count", 1 },
	{ "lock word naming slot 999", H_BYTES, h_lock, "lock", 1 },
	{ "a directory", H_DIR, NULL, "not a regular file", 0 },
	{ "a FIFO", H_FIFO, NULL, "not a regular file", 0 },
	{ "a symlink to a live segment", H_SYMLINK, NULL, "symbolic link", 0 },
	{ "a dangling symlink", H_DANGLING, NULL, "symbolic link", 0 },
};
#define NHCASES ((int)(sizeof hcases / sizeof hcases[0]))

static void make_hostile(const struct hcase *h, const unsigned char *valid, size_t vlen,
                         const char *path, const char *target)
{
	unsigned char b[8192];
	size_t len = vlen;

	switch (h->kind) {
	case H_BYTES:
		memcpy(b, valid, vlen);
		h->mut(b, &len);
		write_file(path, b, len);
		break;
	case H_DIR:
		ck_assert_int_eq(mkdir(path, 0700), 0);
		break;
	case H_FIFO:
		ck_assert_int_eq(mkfifo(path, 0600), 0);
		break;
	case H_SYMLINK:
		ck_assert_int_eq(symlink(target, path), 0);
		break;
	case H_DANGLING:
		ck_assert_int_eq(symlink("no-such-segment-file", path), 0);
		break;
	}
}

/*
 * Every hostile object of the core's tests, under a runtime KEY, found by
 * --all in the runtime directory, and in a -d directory: reported corrupt
 * with the field (or the reason) named, and never changed, not even by
 * --clean.  In a -d directory only files that start with the magic count.
 */
START_TEST(hostile_objects)
{
	const char *rt = private_runtime(), *dd = mt_tmpdir(), *vd = mt_tmpdir();
	mfs_options fo = { MFS_BACKEND_FILE, 0, 0, NULL };
	char rtdir[300], paths[NHCASES][320], dpaths[NHCASES][320], keys[NHCASES][8];
	const char *args[NHCASES + 3];
	char want[2000];
	unsigned char *valid, *before[NHCASES], *after;
	size_t vlen, blen[NHCASES], alen;
	mfs_segment *tgt, *v;
	struct stat sb;
	char *blk;
	struct run r;
	int i;

	ck_assert_ptr_nonnull(dd);
	ck_assert_ptr_nonnull(vd);
	fo.dir = vd;
	ck_assert_int_eq(mfs_create(mt_key("dump-valid"), 4096, &fo, &v), 0);
	valid = mt_slurp(mfs_native_key(v), 8193, &vlen);
	ck_assert_ptr_nonnull(valid);
	ck_assert_uint_eq(vlen, 8192);
	ck_assert_int_eq(mfs_detach(v), 0);
	ck_assert_int_eq(mfs_create(mt_key("dump-target"), 4096, &fo, &tgt), 0);

	snprintf(rtdir, sizeof rtdir, "%s/mfshare", rt);
	ck_assert_int_eq(mkdir(rtdir, 0700), 0);
	for (i = 0; i < NHCASES; i++) {
		snprintf(paths[i], sizeof paths[i], "%s/h%02d", rtdir, i);
		snprintf(dpaths[i], sizeof dpaths[i], "%s/h%02d", dd, i);
		make_hostile(&hcases[i], valid, vlen, paths[i], mfs_native_key(tgt));
		make_hostile(&hcases[i], valid, vlen, dpaths[i], mfs_native_key(tgt));
		before[i] = hcases[i].kind == H_BYTES ? mt_slurp(paths[i], 1 << 16, &blen[i]) : NULL;
	}

	/* By KEY (all of them in one run): exit 1, nothing on stdout, for each
	 * one line on stderr with the reason. */
	args[0] = "-b";
	args[1] = "runtime";
	for (i = 0; i < NHCASES; i++) {
		snprintf(keys[i], sizeof keys[i], "h%02d", i);
		args[2 + i] = keys[i];
	}
	args[2 + NHCASES] = NULL;
	run_argv(&r, args);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	ck_assert_uint_eq(count(r.err, "\n"), NHCASES);
	for (i = 0; i < NHCASES; i++) {
		const char *line, *nl;

		snprintf(want, sizeof want, "mfshare-dump: %s: %s: ", keys[i],
		         mfs_strerror(MFS_E_CORRUPT));
		line = strstr(r.err, want);
		ck_assert_msg(line != NULL && (line == r.err || line[-1] == '\n'),
		              "%s: no `%s` in %s", hcases[i].name, want, r.err);
		nl = strchr(line, '\n');
		ck_assert_ptr_nonnull(nl);
		ck_assert_msg(memmem(line, (size_t)(nl - line), hcases[i].why,
		                     strlen(hcases[i].why)) != NULL, "%s: no \"%s\" in %.*s",
		              hcases[i].name, hcases[i].why, (int)(nl - line), line);
	}
	run_free(&r);

	/* --all: a path/verdict/error block each, and the usual message. */
	run_tool(&r, "--all", "--only=runtime", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(count_starts(r.out, "path: "), NHCASES);
	ck_assert_uint_eq(count_starts(r.out, "verdict: corrupt"), NHCASES);
	ck_assert_uint_eq(count(r.err, "\n"), NHCASES);
	for (i = 0; i < NHCASES; i++) {
		blk = block_of(r.out, paths[i]);
		ck_assert_msg(blk != NULL, "%s not listed", hcases[i].name);
		snprintf(want, sizeof want, "path: %.320s\nverdict: corrupt\nerror: %s: ",
		         paths[i], mfs_strerror(MFS_E_CORRUPT));
		ck_assert_msg(strncmp(blk, want, strlen(want)) == 0, "%s:\n%s",
		              hcases[i].name, blk);
		ck_assert_msg(strstr(blk, hcases[i].why) != NULL, "%s: no \"%s\" in\n%s",
		              hcases[i].name, hcases[i].why, blk);
		ck_assert_uint_eq(count(blk, "\n"), 3);
		free(blk);
		snprintf(want, sizeof want, "mfshare-dump: %.320s: %s: ", paths[i],
		         mfs_strerror(MFS_E_CORRUPT));
		ck_assert_msg(strstr(r.err, want) != NULL, "no `%s` in %s", want, r.err);
	}
	/* One block exactly (golden): the zero-filled file. */
	blk = block_of(r.out, paths[3]);
	snprintf(want, sizeof want, "path: %s\nverdict: corrupt\nerror: not a valid libmfshare "
	         "segment: magic: 0x0000000000000000 is not a libmfshare segment\n", paths[3]);
	ck_assert_str_eq(blk, want);
	free(blk);
	run_free(&r);

	run_tool(&r, "--all", "--only=runtime", "--json", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(json_lines(r.out), NHCASES);
	for (i = 0; i < NHCASES; i++) {
		blk = json_line_of(r.out, paths[i]);
		ck_assert_ptr_nonnull(blk);
		ck_assert_int_eq(strncmp(blk, "{\"path\":", 8), 0);
		ck_assert_ptr_nonnull(strstr(blk, ",\"verdict\":\"corrupt\",\"error\":\""));
		ck_assert_ptr_nonnull(strstr(blk, hcases[i].why));
		free(blk);
	}
	run_free(&r);

	/* --clean keeps every one, and says so. */
	run_tool(&r, "--all", "--only=runtime", "--clean", NULL);
	ck_assert_int_eq(r.status, 1);
	ck_assert_uint_eq(count_starts(r.out, "action: kept: not a valid segment"), NHCASES);
	run_free(&r);

	/* -d: only the files that start with the magic are looked at. */
	run_tool(&r, "--all", "--only=dir", "-d", dd, NULL);
	ck_assert_int_eq(r.status, 1);
	for (i = 0; i < NHCASES; i++) {
		blk = block_of(r.out, dpaths[i]);
		ck_assert_msg((blk != NULL) == hcases[i].magic, "%s: %s in -d", hcases[i].name,
		              blk ? "listed" : "not listed");
		if (blk) {
			ck_assert_ptr_nonnull(strstr(blk, "\nverdict: corrupt\n"));
			ck_assert_ptr_nonnull(strstr(blk, hcases[i].why));
		}
		free(blk);
	}
	run_free(&r);

	/* Nothing changed. */
	for (i = 0; i < NHCASES; i++) {
		ck_assert_int_eq(lstat(paths[i], &sb), 0);
		ck_assert_int_eq(lstat(dpaths[i], &sb), 0);
		if (!before[i])
			continue;
		after = mt_slurp(paths[i], 1 << 16, &alen);
		ck_assert_ptr_nonnull(after);
		ck_assert_uint_eq(alen, blen[i]);
		ck_assert_mem_eq(after, before[i], alen);
		free(after);
		free(before[i]);
	}
	free(valid);
	ck_assert_int_eq(mfs_detach(tgt), 0);
	mt_rmtree(rt);
	mt_rmtree(dd);
	mt_rmtree(vd);
}
END_TEST

/* ------------------------------------------------------------ permission */

/* A segment the user may not read: "permission denied", status 1, never
 * a crash; --all lists it unreadable, -d skips it, --clean keeps it. */
START_TEST(permission_denied)
{
	const char *rt = private_runtime();
	const char *key = mt_key("dump-perm");
	mfs_options o = { MFS_BACKEND_RUNTIME_DIR, 0, 0, NULL };
	static const char *args[8];
	char path[1024], rtdir[300], want[2000], *blk;
	mfs_segment *s;
	mfs_stat st;
	struct run r;

	o.dir = rt;
	ck_assert_int_eq(mfs_create(key, 4096, &o, &s), 0);
	snprintf(rtdir, sizeof rtdir, "%s/mfshare", rt);
	snprintf(path, sizeof path, "%s/%s", rtdir, key);
	ck_assert_str_eq(mfs_native_key(s), path);
	ck_assert_int_eq(chmod(path, 0), 0);

	args[0] = "-b";
	args[1] = "runtime";
	args[2] = key;
	args[3] = NULL;
	run_exec(&r, NULL, args, NULL, 1);
	ck_assert_msg(r.status == 1, "exit %d, stderr %s", r.status, r.err);
	ck_assert_str_eq(r.out, "");
	snprintf(want, sizeof want, "mfshare-dump: %s: %s: ", key,
	         mfs_strerror(MFS_E_PERMISSION));
	ck_assert_msg(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
	run_free(&r);

	args[0] = path;
	args[1] = NULL;
	run_exec(&r, NULL, args, NULL, 1);
	ck_assert_int_eq(r.status, 1);
	ck_assert_str_eq(r.out, "");
	snprintf(want, sizeof want, "mfshare-dump: %s: %s: ", path,
	         mfs_strerror(MFS_E_PERMISSION));
	ck_assert_msg(strncmp(r.err, want, strlen(want)) == 0, "stderr: %s", r.err);
	run_free(&r);

	args[0] = "--all";
	args[1] = "--only=runtime";
	args[2] = NULL;
	run_exec(&r, NULL, args, NULL, 1);
	ck_assert_int_eq(r.status, 1);
	blk = block_of(r.out, path);
	ck_assert_ptr_nonnull(blk);
	snprintf(want, sizeof want, "path: %s\nverdict: unreadable\nerror: %s: ", path,
	         mfs_strerror(MFS_E_PERMISSION));
	ck_assert_msg(strncmp(blk, want, strlen(want)) == 0, "%s", blk);
	free(blk);
	snprintf(want, sizeof want, "mfshare-dump: %s: %s", path, mfs_strerror(MFS_E_PERMISSION));
	ck_assert_msg(strstr(r.err, want) != NULL, "stderr: %s", r.err);
	run_free(&r);

	args[2] = "--clean";
	args[3] = NULL;
	run_exec(&r, NULL, args, NULL, 1);
	ck_assert_int_eq(r.status, 1);
	blk = block_of(r.out, path);
	ck_assert_ptr_nonnull(blk);
	fstr_eq(blk, "action", "kept: could not be read");
	free(blk);
	run_free(&r);

	/* In a -d directory a file that cannot be read cannot be told from
	 * any other file: skipped. */
	args[1] = "--only=dir";
	args[2] = "-d";
	args[3] = rtdir;
	args[4] = NULL;
	run_exec(&r, NULL, args, NULL, 1);
	expect_ok(&r);
	ck_assert_str_eq(r.out, "");
	run_free(&r);

	/* Nothing was touched. */
	ck_assert_int_eq(access(path, F_OK), 0);
	ck_assert_int_eq(mfs_stat_segment(s, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(st.mode, 0);
	ck_assert_int_eq(chmod(path, 0600), 0);
	ck_assert_int_eq(mfs_detach(s), 0);
	mt_rmtree(rt);
}
END_TEST

/* ------------------------------------------------------------ file system */

static int memory_fs(const char *path)
{
	struct statfs sf;

	ck_assert_int_eq(statfs(path, &sf), 0);
	return (uint32_t)sf.f_type == 0x01021994u || (uint32_t)sf.f_type == 0x858458f6u ||
	       (uint32_t)sf.f_type == 0x958458f6u;
}

/* A segment on a disk file system carries a warning; on tmpfs none. */
START_TEST(filesystem_warning)
{
	char shmdir[] = "/dev/shm/mfs-dump-XXXXXX";
	const char *tmp = mt_tmpdir(), *dirs[2];
	const char *key = mt_key("dump-fs");
	mfs_options o = { MFS_BACKEND_FILE, 0, 0, NULL };
	char buf[300], *line, *nl;
	mfs_segment *s;
	struct run r;
	int i, mem;

	ck_assert_ptr_nonnull(tmp);
	ck_assert_ptr_nonnull(mkdtemp(shmdir));
	dirs[0] = shmdir;
	dirs[1] = tmp;
	for (i = 0; i < 2; i++) {
		mem = memory_fs(dirs[i]);
		o.dir = dirs[i];
		ck_assert_int_eq(mfs_create(key, 4096, &o, &s), 0);
		run_tool(&r, "-b", "file", "-d", dirs[i], key, NULL);
		expect_ok(&r);
		field(r.out, "filesystem", buf, sizeof buf);
		ck_assert_str_ne(buf, "");
		ck_assert_str_ne(buf, "unknown");
		if (i == 0)
			ck_assert_str_eq(buf, "tmpfs");
		if (mem) {
			ck_assert_ptr_null(strstr(r.out, "\nwarning: "));
		} else {
			line = strstr(r.out, "\nwarning: not a memory file system (");
			ck_assert_msg(line != NULL, "no warning for %s on %s:\n%s", dirs[i],
			              buf, r.out);
			ck_assert_ptr_nonnull(strstr(line, buf));
			nl = strstr(line, "\nlock: ");
			ck_assert_ptr_nonnull(nl);
			/* right after filesystem, before lock */
			ck_assert_ptr_nonnull(strstr(r.out, "\nfilesystem: "));
			ck_assert(strstr(r.out, "\nfilesystem: ") < line);
		}
		run_free(&r);
		run_tool(&r, "--json", "-b", "file", "-d", dirs[i], key, NULL);
		expect_ok(&r);
		ck_assert_uint_eq(json_lines(r.out), 1);
		ck_assert((strstr(r.out, ",\"warning\":\"not a memory file system (") != NULL) == !mem);
		run_free(&r);
		ck_assert_int_eq(mfs_detach(s), 0);
	}
	ck_assert_int_eq(rmdir(shmdir), 0);
	mt_rmtree(tmp);
}
END_TEST

/* ------------------------------------------------------------ -x */

START_TEST(hexdump_ranges)
{
	const char *key = mt_key("dump-hex");
	static const char *const bad[][3] = {
		{ "-xfoo", "k", NULL }, { "-x1:", "k", NULL }, { "-x:", "k", NULL },
		{ "--hexdump=1:2:3", "k", NULL }, { "-x-1", "k", NULL },
		{ "-x0x", "k", NULL }, { "-x12z", "k", NULL },
	};
	unsigned char *d;
	mfs_segment *s;
	struct run r;
	char want[200];
	size_t i;

	ck_assert_int_eq(mfs_create(key, 8192, NULL, &s), 0);
	ck_assert_uint_eq(mfs_size(s), 8192);
	d = mfs_data(s);
	for (i = 0; i < 64; i++)
		d[i] = (unsigned char)i;
	d[8191] = 0x7e;

	/* All of it: identical lines collapse into one "*". */
	run_tool(&r, "-x", key, NULL);
	expect_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "\nhexdump: 00000000  00 01 02 03 04 05 06 07  "
	                             "08 09 0a 0b 0c 0d 0e 0f  |................|\n"));
	ck_assert_ptr_nonnull(strstr(r.out, "\nhexdump: 00000030  30 31 32 33 34 35 36 37  "
	                             "38 39 3a 3b 3c 3d 3e 3f  |0123456789:;<=>?|\n"
	                             "hexdump: 00000040  00 00 00 00 00 00 00 00  "
	                             "00 00 00 00 00 00 00 00  |................|\n"
	                             "hexdump: *\n"
	                             "hexdump: 00001ff0  00 00 00 00 00 00 00 00  "
	                             "00 00 00 00 00 00 00 7e  |...............~|\n"
	                             "hexdump: 00002000\n"));
	ck_assert_uint_eq(count_starts(r.out, "hexdump: "), 8);
	run_free(&r);

	run_tool(&r, "-x0x10:0x20", key, NULL);
	expect_ok(&r);
	ck_assert_ptr_nonnull(strstr(r.out, "\nattacher: slot=0 "));
	ck_assert_ptr_nonnull(strstr(r.out, " alive=1\nhexdump: 00000010  10 11 12 13 14 15 16 17  "
	                             "18 19 1a 1b 1c 1d 1e 1f  |................|\n"
	                             "hexdump: 00000020  20 21 22 23 24 25 26 27  "
	                             "28 29 2a 2b 2c 2d 2e 2f  | !\"#$%&'()*+,-./|\n"
	                             "hexdump: 00000030\n"));
	run_free(&r);

	run_tool(&r, "--hexdump=8190", key, NULL);
	expect_ok(&r);
	/* A short line is padded to the ASCII column, as hexdump -C does. */
	snprintf(want, sizeof want, "\nhexdump: 00001ffe  00 7e%45s|.~|\nhexdump: 00002000\n", "");
	ck_assert_msg(strstr(r.out, want) != NULL, "no `%s` in:\n%s", want, r.out);
	run_free(&r);

	/* Past the end: clipped to nothing. */
	run_tool(&r, "-x99999", key, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(count_starts(r.out, "hexdump: "), 1);
	ck_assert_ptr_nonnull(strstr(r.out, "\nhexdump: 00002000\n"));
	run_free(&r);
	run_tool(&r, "-x:0", key, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(count_starts(r.out, "hexdump: "), 1);
	ck_assert_ptr_nonnull(strstr(r.out, "\nhexdump: 00000000\n"));
	run_free(&r);

	run_tool(&r, "--json", "-x4:4", key, NULL);
	expect_ok(&r);
	ck_assert_uint_eq(json_lines(r.out), 1);
	ck_assert_ptr_nonnull(strstr(r.out, "}],\"hexdump\":{\"offset\":4,\"hex\":\"04050607\","
	                             "\"length\":4}}\n"));
	run_free(&r);

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
		expect_usage(bad[i]);
	ck_assert_int_eq(mfs_detach(s), 0);
}
END_TEST

START_TEST(usage_new_options)
{
	static const char *const cases[][8] = {
		{ "--dry-run", "--all", NULL },
		{ "--only=shm", "k", NULL },
		{ "--all", "--only=disk", NULL },
		{ "--all", "--only=shm,", NULL },
		{ "--all", "k", NULL },
		{ "--all", "-b", "shm", NULL },
		{ "--clean", NULL },
		{ "--clean", "-n", NULL },
		{ "--all", "--clean", "-x", NULL },
		{ "-m", "--all", NULL },
		{ "-m", "--clean", NULL },
		{ "-m", "-x", NULL },
		{ "-b", "file", "-d", "/tmp", "-d", "/var/tmp", "k", NULL },
		{ "--all", "--only=dir", NULL },
		{ "--all", "--only=shm", "-d", "/tmp", NULL },
		{ "--all", "--only", NULL },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
		expect_usage(cases[i]);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dump");
	TCase *tc;

	tc = tcase_create("live");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, live_fields);
	tcase_add_test(tc, second_attacher);
	tcase_add_test(tc, locked_self);
	tcase_add_test(tc, locked_by_child);
	tcase_add_test(tc, seq_after_notify);
	tcase_add_test(tc, key_and_paths_agree);
	tcase_add_test(tc, several_operands);
	suite_add_tcase(s, tc);

	tc = tcase_create("json");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, json_output);
	tcase_add_test(tc, json_escaping);
	suite_add_tcase(s, tc);

	tc = tcase_create("backends");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, file_backend);
	tcase_add_test(tc, runtime_backend);
	suite_add_tcase(s, tc);

	tc = tcase_create("usage");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, usage_errors);
	tcase_add_test(tc, version_and_help);
	suite_add_tcase(s, tc);

	tc = tcase_create("failures");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, not_found);
	tcase_add_test(tc, corrupt);
	suite_add_tcase(s, tc);

	tc = tcase_create("readonly");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, leaves_segment_alone);
	suite_add_tcase(s, tc);

	tc = tcase_create("memfd");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, memfd_proc_path);
	tcase_add_test(tc, memfd_list);
	tcase_add_test(tc, memfd_list_shared);
	tcase_add_test(tc, memfd_list_unsealed);
	tcase_add_test(tc, memfd_list_corrupt);
	suite_add_tcase(s, tc);

	tc = tcase_create("golden");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, golden_text);
	tcase_add_test(tc, json_fields);
	tcase_add_test(tc, hexdump_ranges);
	tcase_add_test(tc, filesystem_warning);
	suite_add_tcase(s, tc);

	tc = tcase_create("all");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, all_and_clean);
	tcase_add_test(tc, clean_operands);
	tcase_add_test(tc, all_sources);
	tcase_add_test(tc, hostile_objects);
	tcase_add_test(tc, permission_denied);
	tcase_add_test(tc, usage_new_options);
	suite_add_tcase(s, tc);

	tc = tcase_create("death");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, dead_attacher);
	tcase_add_test(tc, stale_segment);
	tcase_add_test(tc, dead_lock_holder);
	tcase_add_test(tc, stale_and_locked);
	suite_add_tcase(s, tc);

	return mt_run(s);
}
