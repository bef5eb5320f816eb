/* SPDX-License-Identifier: MIT */
/*
 * mfshare-dump.exe: the Windows build of mfshare-dump.  Prints a segment's
 * header, by KEY or by PATH, without attaching (mfs_inspect_path: nothing
 * is written, the lock is never taken), as `name: value` lines or one JSON
 * object per segment, with the attacher table and a verdict.
 *
 *     mfshare-dump [-b tempfile|file] [-d DIR] [-s] [--json] KEY|PATH...
 *
 * An operand containing '\', '/' or ':' is a PATH; any other is a KEY
 * (found with mfs_native_path: %TEMP%\mfshare\m-KEY....mfs by default).
 * Reduced on Windows: no --all, --clean, -m (memfds) or --hexdump (the
 * Linux tool's /proc and file-system scans have no counterpart); the
 * fields shown are those of the Linux tool except filesystem.
 * Exit status: 0 read, 1 not found / stale / corrupt / unreadable, 2 usage.
 */
#include <config.h>

#include <mfshare.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "mfshare-dump"
#define MAXATT 240

struct cfg {
	mfs_options o;
	int json;
	int stale;
};

static void usage(FILE *f)
{
	fprintf(f, "usage: " PROG " [-b tempfile|file] [-d DIR] [-s] [--json] KEY|PATH...\n"
	           "       " PROG " -h | -V\n");
}

static const char *state_name(uint32_t s)
{
	switch (s) {
	case MFS_STATE_INIT: return "init";
	case MFS_STATE_READY: return "ready";
	case MFS_STATE_DEAD: return "dead";
	default: return "unknown";
	}
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static const char *verdict(const mfs_stat *st)
{
	if (st->refcount == 0)
		return "stale";
	if (st->locked && st->lock_owner_alive == 0)
		return "wedged";
	return "healthy";
}

static void print_text(const char *path, const mfs_stat *st, const mfs_attacher *a,
                       unsigned n)
{
	unsigned i;

	printf("version: %" PRIu32 "\n", st->version);
	printf("size: %" PRIu64 "\n", st->size);
	printf("refcount: %" PRIu32 "\n", st->refcount);
	printf("locked: %d\n", st->locked ? 1 : 0);
	printf("lock_owner: %ld\n", st->lock_owner);
	printf("seq: %" PRIu32 "\n", st->seq);
	printf("path: %s\n", path);
	printf("state: %s\n", state_name(st->state));
	printf("header_size: %" PRIu32 "\n", st->header_size);
	printf("data_offset: %" PRIu64 "\n", st->data_offset);
	printf("file_size: %" PRIu64 "\n", st->file_size);
	printf("creator_uid: %" PRIu32 "\n", st->creator_uid);
	printf("creator_pid: %ld\n", st->creator_pid);
	printf("creator_start: %" PRIu64 "\n", st->creator_start);
	printf("attach_count: %" PRIu32 "\n", st->attach_count);
	printf("slot_count: %" PRIu32 "\n", st->slot_count);
	printf("slot_high: %" PRIu32 "\n", st->slot_high);
	printf("dead_slots: %" PRIu32 "\n", st->dead_slots);
	printf("lock_word: 0x%08" PRIx32 "\n", st->lock_word);
	printf("lock_owner_tid: %ld\n", st->lock_owner_tid);
	printf("lock_owner_alive: %d\n", st->lock_owner_alive);
	printf("lock_waiters: %" PRIu32 "\n", st->lock_waiters);
	printf("seq_waiters: %" PRIu32 "\n", st->seq_waiters);
	printf("verdict: %s\n", verdict(st));
	for (i = 0; i < n && i < MAXATT; i++)
		printf("attacher: slot=%" PRIu32 " pid=%ld tid=%ld start=%" PRIu64
		       " alive=%d\n", a[i].slot, a[i].pid, a[i].tid, a[i].start_time,
		       a[i].alive ? 1 : 0);
}

static void print_json(const char *path, const mfs_stat *st, const mfs_attacher *a,
                       unsigned n)
{
	unsigned i;

	printf("{\"version\":%" PRIu32 ",\"size\":%" PRIu64 ",\"refcount\":%" PRIu32
	       ",\"locked\":%d,\"lock_owner\":%ld,\"seq\":%" PRIu32 ",\"path\":",
	       st->version, st->size, st->refcount, st->locked ? 1 : 0,
	       st->lock_owner, st->seq);
	json_str(path);
	printf(",\"state\":\"%s\",\"header_size\":%" PRIu32 ",\"data_offset\":%" PRIu64
	       ",\"file_size\":%" PRIu64 ",\"creator_pid\":%ld,\"creator_start\":%" PRIu64
	       ",\"attach_count\":%" PRIu32 ",\"slot_count\":%" PRIu32
	       ",\"slot_high\":%" PRIu32 ",\"dead_slots\":%" PRIu32
	       ",\"lock_word\":%" PRIu32 ",\"lock_owner_tid\":%ld"
	       ",\"lock_owner_alive\":%d,\"lock_waiters\":%" PRIu32
	       ",\"seq_waiters\":%" PRIu32 ",\"verdict\":\"%s\",\"attachers\":[",
	       state_name(st->state), st->header_size, st->data_offset, st->file_size,
	       st->creator_pid, st->creator_start, st->attach_count, st->slot_count,
	       st->slot_high, st->dead_slots, st->lock_word, st->lock_owner_tid,
	       st->lock_owner_alive, st->lock_waiters, st->seq_waiters, verdict(st));
	for (i = 0; i < n && i < MAXATT; i++)
		printf("%s{\"slot\":%" PRIu32 ",\"pid\":%ld,\"tid\":%ld,\"start\":%" PRIu64
		       ",\"alive\":%d}", i ? "," : "", a[i].slot, a[i].pid, a[i].tid,
		       a[i].start_time, a[i].alive ? 1 : 0);
	puts("]}");
}

static int one(const char *arg, const struct cfg *c)
{
	static mfs_attacher att[MAXATT];
	char path[4400];
	mfs_stat st;
	unsigned n = 0;
	int r;

	if (strpbrk(arg, "\\/:")) {
		if (strlen(arg) >= sizeof path) {
			fprintf(stderr, PROG ": %s: path too long\n", arg);
			return 1;
		}
		strcpy(path, arg);
	} else if ((r = mfs_native_path(arg, &c->o, path, sizeof path)) != 0) {
		fprintf(stderr, PROG ": %s: %s\n", arg, mfs_last_error());
		return r == MFS_E_KEY || r == MFS_E_INVALID ? 2 : 1;
	}
	r = mfs_inspect_path(path, c->stale, &st, att, MAXATT, &n);
	if (r != 0) {
		fprintf(stderr, PROG ": %s: %s (%s)\n", arg, mfs_strerror(r), mfs_last_error());
		return 1;
	}
	if (c->json)
		print_json(path, &st, att, n);
	else
		print_text(path, &st, att, n);
	return 0;
}

int main(int argc, char **argv)
{
	struct cfg c;
	int i, rc = 0, r, ops = 0;

	memset(&c, 0, sizeof c);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return 0;
		}
		if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
			printf(PROG " %s (Windows)\n", PACKAGE_VERSION);
			return 0;
		}
		if (strcmp(a, "-j") == 0 || strcmp(a, "--json") == 0) {
			c.json = 1;
		} else if (strcmp(a, "-s") == 0 || strcmp(a, "--stale") == 0) {
			c.stale = 1;
		} else if (strcmp(a, "-b") == 0 && i + 1 < argc) {
			a = argv[++i];
			if (strcmp(a, "tempfile") == 0)
				c.o.backend = MFS_BACKEND_TEMPFILE;
			else if (strcmp(a, "file") == 0)
				c.o.backend = MFS_BACKEND_FILE;
			else {
				fprintf(stderr, PROG ": -b %s: tempfile or file on Windows\n", a);
				return 2;
			}
		} else if (strcmp(a, "-d") == 0 && i + 1 < argc) {
			c.o.dir = argv[++i];
		} else if (a[0] == '-' && a[1]) {
			usage(stderr);
			return 2;
		} else {
			argv[ops++] = argv[i];
		}
	}
	if (ops == 0 || (c.o.backend == MFS_BACKEND_FILE && !c.o.dir)) {
		usage(stderr);
		return 2;
	}
	for (i = 0; i < ops; i++) {
		r = one(argv[i], &c);
		if (r > rc)
			rc = r;
	}
	return rc;
}
