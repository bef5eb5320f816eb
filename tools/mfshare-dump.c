/* SPDX-License-Identifier: MIT */
/*
 * mfshare-dump: print a libmfshare segment's header, by key or by path, as
 * `name: value` lines or JSON.  Built on the public API alone
 * (mfs_native_path + mfs_inspect_path): it never attaches, never takes the
 * lock and never writes, so it works on a wedged, stale or corrupt segment.
 */
#include <config.h>

#include <mfshare.h>

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROG "mfshare-dump"

/* The attacher table holds a few hundred rows; start with room for all. */
#define ATT_INITIAL 256u

struct cfg {
	mfs_options opts;   /* backend and dir, for KEY operands */
	int         json;   /* --json */
	int         stale;  /* --stale: report stale segments instead of failing */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG " [-b shm|runtime|file] [-d DIR] [--json] [-s] KEY|PATH...\n"
	        "       " PROG " -h | -V\n");
}

static void help(void)
{
	usage(stdout);
	printf("\n"
	       "Print the header of libmfshare segments without attaching to them.\n"
	       "An operand containing '/' is a PATH (e.g. /dev/shm/mfshare.KEY or\n"
	       "/proc/PID/fd/N); any other operand is a KEY.\n"
	       "\n"
	       "  -b, --backend=B  where KEYs live: shm (default), runtime, file\n"
	       "  -d, --dir=DIR    the directory for -b file (required) or -b runtime\n"
	       "                   (instead of $XDG_RUNTIME_DIR)\n"
	       "  -j, --json       one JSON object per segment, one per line\n"
	       "  -s, --stale      show stale segments (no live attacher) too\n"
	       "  -h, --help       show this help and exit\n"
	       "  -V, --version    show the version and exit\n"
	       "\n"
	       "Exit status: 0 all segments read, 1 a segment was not found, stale,\n"
	       "corrupt or unreadable, 2 usage error.  See mfshare-dump(1).\n");
}

/* ------------------------------------------------------------ output */

static const char *state_name(uint32_t s)
{
	switch (s) {
	case MFS_STATE_INIT: return "init";
	case MFS_STATE_READY: return "ready";
	case MFS_STATE_DEAD: return "dead";
	default: return NULL;
	}
}

/* A path on one text line: control bytes and '\' as C escapes, so the
 * value never spans lines and can be decoded back. */
static void text_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if (*p == '\\')
			fputs("\\\\", stdout);
		else if (*p < 0x20 || *p == 0x7f)
			printf("\\x%02x", *p);
		else
			putchar(*p);
	}
}

/* Length of the valid UTF-8 sequence at @p (1-4), or 0 if it is not one
 * (overlong forms, surrogates and code points past U+10FFFF are invalid). */
static int utf8_len(const unsigned char *p)
{
	unsigned c = p[0];

	if (c >= 0xc2 && c <= 0xdf)
		return (p[1] & 0xc0) == 0x80 ? 2 : 0;
	if (c >= 0xe0 && c <= 0xef) {
		if ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0))
			return 0;
		return (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 ? 3 : 0;
	}
	if (c >= 0xf0 && c <= 0xf4) {
		if ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90))
			return 0;
		return (p[1] & 0xc0) == 0x80 && (p[2] & 0xc0) == 0x80 &&
		       (p[3] & 0xc0) == 0x80 ? 4 : 0;
	}
	return 0;
}

/* A JSON string: RFC 8259 escapes; bytes that are not UTF-8 become
 * U+FFFD so the output is always valid JSON. */
static void json_str(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	int n;

	putchar('"');
	while (*p) {
		if (*p == '"' || *p == '\\') {
			putchar('\\');
			putchar(*p++);
		} else if (*p < 0x20) {
			switch (*p) {
			case '\b': fputs("\\b", stdout); break;
			case '\f': fputs("\\f", stdout); break;
			case '\n': fputs("\\n", stdout); break;
			case '\r': fputs("\\r", stdout); break;
			case '\t': fputs("\\t", stdout); break;
			default: printf("\\u%04x", *p); break;
			}
			p++;
		} else if (*p < 0x80) {
			putchar(*p++);
		} else if ((n = utf8_len(p)) > 0) {
			fwrite(p, 1, (size_t)n, stdout);
			p += n;
		} else {
			fputs("\\ufffd", stdout);
			p++;
		}
	}
	putchar('"');
}

static void print_text(const char *path, const mfs_stat *st,
                       const mfs_attacher *att, unsigned natt)
{
	const char *sn = state_name(st->state);
	unsigned i;

	printf("version: %" PRIu32 "\n", st->version);
	printf("size: %" PRIu64 "\n", st->size);
	printf("refcount: %" PRIu32 "\n", st->refcount);
	printf("locked: %d\n", st->locked ? 1 : 0);
	printf("lock_owner: %ld\n", st->lock_owner);
	printf("seq: %" PRIu32 "\n", st->seq);
	fputs("path: ", stdout);
	text_str(path);
	putchar('\n');
	if (sn)
		printf("state: %s\n", sn);
	else
		printf("state: %" PRIu32 "\n", st->state);
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
	printf("uid: %" PRIu32 "\n", st->uid);
	printf("mode: %04" PRIo32 "\n", st->mode);
	for (i = 0; i < natt; i++)
		printf("attacher: slot=%" PRIu32 " pid=%ld tid=%ld start=%" PRIu64
		       " alive=%d\n", att[i].slot, att[i].pid, att[i].tid,
		       att[i].start_time, att[i].alive ? 1 : 0);
}

static void print_json(const char *path, const mfs_stat *st,
                       const mfs_attacher *att, unsigned natt)
{
	const char *sn = state_name(st->state);
	unsigned i;

	printf("{\"version\":%" PRIu32 ",\"size\":%" PRIu64 ",\"refcount\":%" PRIu32
	       ",\"locked\":%d,\"lock_owner\":%ld,\"seq\":%" PRIu32 ",\"path\":",
	       st->version, st->size, st->refcount, st->locked ? 1 : 0,
	       st->lock_owner, st->seq);
	json_str(path);
	if (sn)
		printf(",\"state\":\"%s\"", sn);
	else
		printf(",\"state\":%" PRIu32, st->state);
	printf(",\"header_size\":%" PRIu32 ",\"data_offset\":%" PRIu64
	       ",\"file_size\":%" PRIu64 ",\"creator_uid\":%" PRIu32
	       ",\"creator_pid\":%ld,\"creator_start\":%" PRIu64
	       ",\"attach_count\":%" PRIu32 ",\"slot_count\":%" PRIu32
	       ",\"slot_high\":%" PRIu32 ",\"dead_slots\":%" PRIu32,
	       st->header_size, st->data_offset, st->file_size, st->creator_uid,
	       st->creator_pid, st->creator_start, st->attach_count,
	       st->slot_count, st->slot_high, st->dead_slots);
	printf(",\"lock_word\":%" PRIu32 ",\"lock_owner_tid\":%ld"
	       ",\"lock_owner_alive\":%d,\"lock_waiters\":%" PRIu32
	       ",\"seq_waiters\":%" PRIu32 ",\"uid\":%" PRIu32 ",\"mode\":\"%04" PRIo32
	       "\",\"attachers\":[",
	       st->lock_word, st->lock_owner_tid, st->lock_owner_alive,
	       st->lock_waiters, st->seq_waiters, st->uid, st->mode);
	for (i = 0; i < natt; i++)
		printf("%s{\"slot\":%" PRIu32 ",\"pid\":%ld,\"tid\":%ld,\"start\":%" PRIu64
		       ",\"alive\":%d}", i ? "," : "", att[i].slot, att[i].pid,
		       att[i].tid, att[i].start_time, att[i].alive ? 1 : 0);
	fputs("]}\n", stdout);
}

/* ------------------------------------------------------------ one operand */

/* `mfshare-dump: NAME: reason: detail`, the detail from mfs_last_error(). */
static void report(const char *name, int err, const char *detail, const char *hint)
{
	fprintf(stderr, PROG ": %s: %s", name, mfs_strerror(err));
	if (detail && *detail)
		fprintf(stderr, ": %s", detail);
	if (hint)
		fprintf(stderr, " (%s)", hint);
	fputc('\n', stderr);
}

/* Dump one KEY or PATH.  Returns 0 or 1 (the exit status it earns);
 * *@blocks counts the text blocks printed so far, for the blank line. */
static int dump(const char *operand, const struct cfg *c, unsigned *blocks)
{
	char keypath[4096], detail[1024];
	const char *path = operand;
	mfs_attacher *att = NULL, *na;
	unsigned cap = ATT_INITIAL, natt = 0;
	mfs_stat st;
	int r;

	if (!strchr(operand, '/')) {
		r = mfs_native_path(operand, &c->opts, keypath, sizeof keypath);
		if (r != 0) {
			report(operand, r, mfs_last_error(), NULL);
			return 1;
		}
		path = keypath;
	}
	for (;;) {
		if (!(na = realloc(att, cap * sizeof *att))) {
			fprintf(stderr, PROG ": %s: %s\n", operand, strerror(ENOMEM));
			free(att);
			return 1;
		}
		att = na;
		r = mfs_inspect_path(path, c->stale, &st, att, cap, &natt);
		if (r != 0 || natt <= cap)
			break;
		cap = natt; /* the table grew between the calls: read it again */
	}
	if (r != 0) {
		const char *hint = NULL;

		snprintf(detail, sizeof detail, "%s", mfs_last_error());
		/* Absent and stale read the same to the library; tell them apart
		 * for the user. */
		if (r == MFS_E_NOT_FOUND && !c->stale &&
		    mfs_inspect_path(path, 1, &st, NULL, 0, NULL) == 0)
			hint = "stale or destroyed; --stale shows it";
		report(operand, r, detail, hint);
		free(att);
		return 1;
	}
	if (c->json) {
		print_json(path, &st, att, natt);
	} else {
		if ((*blocks)++)
			putchar('\n');
		print_text(path, &st, att, natt);
	}
	free(att);
	return 0;
}

/* ------------------------------------------------------------ main */

static int bad_usage(const char *fmt, const char *arg)
{
	fprintf(stderr, PROG ": ");
	fprintf(stderr, fmt, arg);
	fputc('\n', stderr);
	usage(stderr);
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "dir",     required_argument, NULL, 'd' },
		{ "json",    no_argument,       NULL, 'j' },
		{ "stale",   no_argument,       NULL, 's' },
		{ "help",    no_argument,       NULL, 'h' },
		{ "version", no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct cfg c;
	unsigned blocks = 0;
	int ch, i, status = 0;

	memset(&c, 0, sizeof c);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":b:d:jshV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "shm") == 0)
				c.opts.backend = MFS_BACKEND_SHM;
			else if (strcmp(optarg, "runtime") == 0)
				c.opts.backend = MFS_BACKEND_RUNTIME_DIR;
			else if (strcmp(optarg, "file") == 0)
				c.opts.backend = MFS_BACKEND_FILE;
			else if (strcmp(optarg, "memfd") == 0)
				return bad_usage("-b %s: memfd segments have no name; "
				                 "give /proc/PID/fd/N instead", optarg);
			else
				return bad_usage("-b %s: unknown backend (shm, runtime, file)",
				                 optarg);
			break;
		case 'd':
			if (!*optarg)
				return bad_usage("%s", "-d needs a directory");
			c.opts.dir = optarg;
			break;
		case 'j':
			c.json = 1;
			break;
		case 's':
			c.stale = 1;
			break;
		case 'h':
			help();
			return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
		case 'V':
			printf(PROG " (libmfshare) %s\n", PACKAGE_VERSION);
			return fflush(stdout) == 0 && !ferror(stdout) ? 0 : 1;
		case ':':
			return bad_usage("%s: missing argument", argv[optind - 1]);
		default:
			if (optopt) {
				char opt[3] = { '-', (char)optopt, 0 };

				return bad_usage("%s: unknown option", opt);
			}
			return bad_usage("%s: unknown option", argv[optind - 1]);
		}
	}
	if (c.opts.backend == MFS_BACKEND_FILE && !c.opts.dir)
		return bad_usage("%s", "-b file needs -d DIR");
	if (c.opts.dir && c.opts.backend != MFS_BACKEND_FILE &&
	    c.opts.backend != MFS_BACKEND_RUNTIME_DIR)
		return bad_usage("-d %s: only -b file and -b runtime take a directory",
		                 c.opts.dir);
	if (optind >= argc)
		return bad_usage("%s", "no KEY or PATH given");

	for (i = optind; i < argc; i++)
		status |= dump(argv[i], &c, &blocks);

	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the output: %s\n", strerror(errno));
		return 1;
	}
	return status;
}
