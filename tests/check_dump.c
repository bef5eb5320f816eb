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
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "testutil.h"

#ifndef MFS_DUMP
#error "MFS_DUMP must name the built tools/mfshare-dump"
#endif

#define TOOL_MS 10000 /* the longest a run of the tool may take */

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

/* Run the tool with the arguments in @args (NULL-terminated), capturing
 * both streams.  A run that outlives TOOL_MS is killed (status -1). */
static void run_argv(struct run *r, const char *const *args)
{
	const char *argv[32];
	int po[2], pe[2], oo = 1, eo = 1, n = 0;
	size_t ol = 0, oc = 1, el = 0, ec = 1;
	uint64_t t0 = mt_now_ms(), end = t0 + TOOL_MS, now;
	pid_t pid;

	argv[n++] = MFS_DUMP;
	while (*args && n < 31)
		argv[n++] = *args++;
	argv[n] = NULL;
	ck_assert_int_eq(pipe2(po, O_CLOEXEC), 0);
	ck_assert_int_eq(pipe2(pe, O_CLOEXEC), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		if (dup2(po[1], 1) < 0 || dup2(pe[1], 2) < 0)
			_exit(126);
		execv(MFS_DUMP, (char *const *)argv);
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
	ck_assert_msg(r->status != -1, "mfshare-dump ran past %d ms", TOOL_MS);
	ck_assert_msg(r->status != 127 && r->status != 126, "cannot exec %s", MFS_DUMP);
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
		"sealed", "attacher"
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
	ck_assert_ptr_nonnull(strstr(r.out, "\"mode\":\"0600\",\"sealed\":0,\"attachers\":["));
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
	static const char *const unknown[] = { "-x", "k", NULL };
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
	/* The new field comes last, right before the attacher lines. */
	ck_assert_ptr_nonnull(strstr(r.out, "\nmode: 0600\nsealed: 1\nattacher: slot=0 "));
	run_free(&r);

	run_tool(&r, "--json", procpath, NULL);
	expect_ok(&r);
	nl = strchr(r.out, '\n');
	ck_assert_ptr_nonnull(nl);
	ck_assert_str_eq(nl, "\n");
	ck_assert_msg(json_object_line(r.out, nl), "not one JSON object: %s", r.out);
	ck_assert_ptr_nonnull(strstr(r.out, "\"refcount\":1,"));
	ck_assert_ptr_nonnull(strstr(r.out, "\"mode\":\"0600\",\"sealed\":1,\"attachers\":[{"));
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

	tc = tcase_create("death");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, dead_attacher);
	tcase_add_test(tc, stale_segment);
	tcase_add_test(tc, dead_lock_holder);
	tcase_add_test(tc, stale_and_locked);
	suite_add_tcase(s, tc);

	return mt_run(s);
}
