/* SPDX-License-Identifier: MIT */
/*
 * mfshare-dump: print a libmfshare segment's header, by key or by path, as
 * `name: value` lines or JSON, or (-m) list the memfd segments that running
 * processes hold.  Built on the public API alone (mfs_native_path +
 * mfs_inspect_path): it never attaches, never takes the lock and never
 * writes, so it works on a wedged, stale or corrupt segment.
 */
#include <config.h>

#include <mfshare.h>

#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "mfshare-dump"

/* The attacher table holds a few hundred rows; start with room for all. */
#define ATT_INITIAL 256u

struct cfg {
	mfs_options opts;   /* backend and dir, for KEY operands */
	int         json;   /* --json */
	int         stale;  /* --stale: report stale segments instead of failing */
	int         memfd;  /* --memfd: list the memfd segments processes hold */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG " [-b shm|runtime|file] [-d DIR] [--json] [-s] KEY|PATH...\n"
	        "       " PROG " -m [--json]\n"
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
	       "  -m, --memfd      list the memfd segments running processes hold, one\n"
	       "                   line per process and descriptor (no operands)\n"
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
	printf("sealed: %d\n", st->sealed ? 1 : 0);
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
	       "\",\"sealed\":%d,\"attachers\":[",
	       st->lock_word, st->lock_owner_tid, st->lock_owner_alive,
	       st->lock_waiters, st->seq_waiters, st->uid, st->mode,
	       st->sealed ? 1 : 0);
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

/* ------------------------------------------------------------ -m */

/*
 * -m: the memfd segments running processes hold.  A memfd has no name, but
 * every descriptor of one shows in /proc/PID/fd as a link to
 * "/memfd:DESCRIPTION (deleted)", and libmfshare describes its memfds as
 * "mfshare" or "mfshare:KEY".  Each such descriptor is inspected through
 * its /proc path like a PATH operand.  One memfd open on several
 * descriptors or in several processes is listed once per (pid, fd).
 */

/* How long a memfd that looks corrupt may still be under construction:
 * CORRUPT_RETRIES more reads, CORRUPT_PAUSE_MS apart. */
#define CORRUPT_RETRIES  5
#define CORRUPT_PAUSE_MS 20

/* A descriptor found in /proc: who holds it and the memfd's description. */
struct memfd_ent {
	long  pid;
	int   fd;
	char *desc;
};

struct memfd_list {
	struct memfd_ent *v;
	size_t            n, cap;
};

/* The whole of @s as a non-negative decimal number, or -1. */
static long dec(const char *s)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	return errno || *end ? -1 : v;
}

/* The description of a libmfshare memfd in its /proc link @target
 * ("/memfd:mfshare:KEY (deleted)" gives "mfshare:KEY"), and its length in
 * *@len; NULL if @target is something else. */
static const char *memfd_desc(const char *target, size_t *len)
{
	static const char pre[] = "/memfd:", ours[] = "mfshare", del[] = " (deleted)";
	const char *d = target + sizeof pre - 1;
	size_t n;

	if (strncmp(target, pre, sizeof pre - 1) != 0 ||
	    strncmp(d, ours, sizeof ours - 1) != 0)
		return NULL;
	/* "mfshare" alone or "mfshare:...", not another program's "mfsharex". */
	if (d[sizeof ours - 1] != '\0' && d[sizeof ours - 1] != ':' &&
	    d[sizeof ours - 1] != ' ')
		return NULL;
	n = strlen(d);
	if (n >= sizeof del - 1 && strcmp(d + n - (sizeof del - 1), del) == 0)
		n -= sizeof del - 1;
	*len = n;
	return d;
}

/* Add the libmfshare memfds among process @pid's descriptors to @l.
 * A process we may not look into, or that ended meanwhile, adds nothing.
 * Returns 0, or -1 when out of memory. */
static int scan_pid(long pid, struct memfd_list *l)
{
	char dir[64], link[96], target[4096];
	struct dirent *e;
	ssize_t n;
	DIR *d;
	long fd;
	int r = 0;

	snprintf(dir, sizeof dir, "/proc/%ld/fd", pid);
	if (!(d = opendir(dir)))
		return 0;
	while ((e = readdir(d)) != NULL) {
		const char *found;
		char *desc;
		size_t len;

		if ((fd = dec(e->d_name)) < 0 || fd > 0x7fffffffL)
			continue;
		snprintf(link, sizeof link, "%s/%ld", dir, fd);
		n = readlink(link, target, sizeof target - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		if (!(found = memfd_desc(target, &len)))
			continue;
		if (!(desc = strndup(found, len))) {
			r = -1;
			break;
		}
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 16;
			struct memfd_ent *v = realloc(l->v, cap * sizeof *v);

			if (!v) {
				free(desc);
				r = -1;
				break;
			}
			l->v = v;
			l->cap = cap;
		}
		l->v[l->n].pid = pid;
		l->v[l->n].fd = (int)fd;
		l->v[l->n].desc = desc;
		l->n++;
	}
	closedir(d);
	return r;
}

static int ent_cmp(const void *a, const void *b)
{
	const struct memfd_ent *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return (x->fd > y->fd) - (x->fd < y->fd);
}

/* One -m line: the segment's size, refcount and seal, or the error that
 * kept us from reading it (@err != 0). */
static void print_memfd(const struct memfd_ent *m, const mfs_stat *st, int err,
                        int json)
{
	if (json) {
		printf("{\"pid\":%ld,\"fd\":%d,", m->pid, m->fd);
		if (err)
			printf("\"error\":\"%s\"", mfs_err_name(err));
		else
			printf("\"size\":%" PRIu64 ",\"refcount\":%" PRIu32 ",\"sealed\":%d",
			       st->size, st->refcount, st->sealed ? 1 : 0);
		fputs(",\"description\":", stdout);
		json_str(m->desc);
		fputs("}\n", stdout);
		return;
	}
	printf("memfd: pid=%ld fd=%d ", m->pid, m->fd);
	if (err)
		printf("error=%s", mfs_err_name(err));
	else
		printf("size=%" PRIu64 " refcount=%" PRIu32 " sealed=%d", st->size,
		       st->refcount, st->sealed ? 1 : 0);
	fputs(" description=", stdout);
	text_str(m->desc);
	putchar('\n');
}

/* List every libmfshare memfd in /proc/[pid]/fd.  Returns the exit status:
 * 0, or 1 if one could not be read (or /proc cannot be). */
static int list_memfds(const struct cfg *c)
{
	struct memfd_list l = { NULL, 0, 0 };
	char path[96], detail[1024];
	long pid, self = (long)getpid();
	struct dirent *e;
	mfs_stat st;
	const struct timespec nap = { 0, CORRUPT_PAUSE_MS * 1000000L };
	size_t i;
	DIR *d;
	int r, tries, status = 0;

	if (!(d = opendir("/proc"))) {
		fprintf(stderr, PROG ": /proc: %s\n", strerror(errno));
		return 1;
	}
	while ((e = readdir(d)) != NULL) {
		if ((pid = dec(e->d_name)) <= 0 || pid == self)
			continue;
		if (scan_pid(pid, &l) != 0) {
			fprintf(stderr, PROG ": /proc: %s\n", strerror(ENOMEM));
			status = 1;
			break;
		}
	}
	closedir(d);
	if (l.n)
		qsort(l.v, l.n, sizeof *l.v, ent_cmp);

	for (i = 0; i < l.n; i++) {
		snprintf(path, sizeof path, "/proc/%ld/fd/%d", l.v[i].pid, l.v[i].fd);
		/* Stale ones too: a descriptor held without an attachment. */
		r = mfs_inspect_path(path, 1, &st, NULL, 0, NULL);
		/* A memfd shows in /proc before its creator has sized it and
		 * written the header: give one that looks corrupt a moment. */
		for (tries = 0; r == MFS_E_CORRUPT && tries < CORRUPT_RETRIES; tries++) {
			nanosleep(&nap, NULL);
			r = mfs_inspect_path(path, 1, &st, NULL, 0, NULL);
		}
		/* Not ours to read, or closed (or its process gone) since the
		 * scan: not listed. */
		if (r == MFS_E_PERMISSION || r == MFS_E_NOT_FOUND)
			continue;
		if (r != 0) {
			snprintf(detail, sizeof detail, "%s", mfs_last_error());
			report(path, r, detail, NULL);
			status = 1;
		}
		print_memfd(&l.v[i], &st, r, c->json);
	}
	for (i = 0; i < l.n; i++)
		free(l.v[i].desc);
	free(l.v);
	return status;
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
		{ "memfd",   no_argument,       NULL, 'm' },
		{ "help",    no_argument,       NULL, 'h' },
		{ "version", no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	struct cfg c;
	unsigned blocks = 0;
	int ch, i, status = 0;

	memset(&c, 0, sizeof c);
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":b:d:jmshV", longopts, NULL)) != -1) {
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
		case 'm':
			c.memfd = 1;
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
	if (c.memfd) {
		if (optind < argc)
			return bad_usage("%s: -m takes no KEY or PATH", argv[optind]);
		if (c.opts.backend || c.opts.dir)
			return bad_usage("%s", "-m lists memfd segments; -b and -d do not apply");
		status = list_memfds(&c);
		goto out;
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
out:
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the output: %s\n", strerror(errno));
		return 1;
	}
	return status;
}
