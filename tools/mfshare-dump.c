/* SPDX-License-Identifier: MIT */
/*
 * mfshare-dump: print a libmfshare segment's header, by key or by path, as
 * `name: value` lines or JSON, with a verdict (healthy, stale, wedged,
 * corrupt); list the memfd segments running processes hold (-m); check
 * every segment on the machine (--all) and remove the stale ones (--clean).
 * Built on the public API (mfs_native_path, mfs_inspect_path, mfs_reap_path)
 * plus plain reads of the file: it never attaches, never takes the lock and
 * never writes (--clean's mfs_reap_path aside), so it works on a wedged,
 * stale or corrupt segment.
 */
#include <config.h>

#include <mfshare.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#define PROG "mfshare-dump"

/* The attacher table holds a few hundred rows; start with room for all. */
#define ATT_INITIAL 256u

/* The magic at offset 0 (docs/FORMAT.md), and as the other byte order
 * reads it: how -d tells a segment from any other file. */
#define SEG_MAGIC         UINT64_C(0x314552414853464d)
#define SEG_MAGIC_SWAPPED UINT64_C(0x4d46534841524531)

/* Where --all looks (--only picks among them). */
enum {
	SRC_SHM = 1u << 0,     /* /dev/shm/mfshare.* */
	SRC_RUNTIME = 1u << 1, /* $XDG_RUNTIME_DIR/mfshare/ */
	SRC_MEMFD = 1u << 2,   /* memfds in /proc/PID/fd */
	SRC_DIR = 1u << 3,     /* the -d directories */
	SRC_ALL = 0xfu
};

#define SHM_DIR    "/dev/shm"
#define SHM_PREFIX "mfshare."

struct cfg {
	mfs_options  opts;     /* backend and dir, for KEY operands */
	const char **dirs;     /* every -d, in order (--all scans them all) */
	int          ndirs;
	int          json;     /* --json */
	int          stale;    /* --stale: report stale segments instead of failing */
	int          memfd;    /* --memfd: list the memfd segments processes hold */
	int          all;      /* --all */
	unsigned     sources;  /* SRC_* for --all */
	int          only;     /* --only was given */
	int          clean;    /* --clean */
	int          dry_run;  /* --dry-run */
	int          hex;      /* -x */
	uint64_t     hex_off;  /* -x OFFSET */
	uint64_t     hex_len;  /* -x :LEN; UINT64_MAX = to the end */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: " PROG " [-b shm|runtime|file] [-d DIR] [--json] [-s] [-x[OFF[:LEN]]]"
	        " KEY|PATH...\n"
	        "       " PROG " -a [--only=SOURCES] [-d DIR]... [--json] [-x[OFF[:LEN]]]\n"
	        "       " PROG " --clean [-n] (-a [--only=SOURCES] [-d DIR]... | [-b B] [-d DIR]"
	        " KEY|PATH...)\n"
	        "       " PROG " -m [--json]\n"
	        "       " PROG " -h | -V\n");
}

static void help(void)
{
	usage(stdout);
	printf("\n"
	       "Print the header of libmfshare segments without attaching to them,\n"
	       "with a verdict: healthy, stale (no live attacher), wedged (the lock's\n"
	       "holder died) or corrupt.  An operand containing '/' is a PATH (e.g.\n"
	       "/dev/shm/mfshare.KEY or /proc/PID/fd/N); any other operand is a KEY.\n"
	       "\n"
	       "  -b, --backend=B  where KEYs live: shm (default), runtime, file\n"
	       "  -d, --dir=DIR    the directory for -b file (required) or -b runtime\n"
	       "                   (instead of $XDG_RUNTIME_DIR); with --all, a directory\n"
	       "                   to scan too (repeatable)\n"
	       "  -j, --json       one JSON object per segment, one per line\n"
	       "  -s, --stale      show stale segments (no live attacher) too\n"
	       "  -x, --hexdump[=OFFSET[:LEN]]\n"
	       "                   dump the data area (from OFFSET, LEN bytes; all of it\n"
	       "                   by default)\n"
	       "  -a, --all        every segment: /dev/shm, $XDG_RUNTIME_DIR/mfshare, the\n"
	       "                   -d directories and the memfds running processes hold\n"
	       "      --only=LIST  --all looks only in these (comma-separated): shm,\n"
	       "                   runtime, memfd, dir\n"
	       "      --clean      remove the stale segments found (never a live one)\n"
	       "  -n, --dry-run    with --clean: say what would be removed, remove nothing\n"
	       "  -m, --memfd      list the memfd segments running processes hold, one\n"
	       "                   line per process and descriptor (no operands)\n"
	       "  -h, --help       show this help and exit\n"
	       "  -V, --version    show the version and exit\n"
	       "\n"
	       "Exit status: 0 all segments read (--all, --clean: all healthy, after\n"
	       "cleaning), 1 a segment was not found, stale, corrupt or unreadable (--all,\n"
	       "--clean: or wedged), 2 usage error.  See mfshare-dump(1).\n");
}

/* ------------------------------------------------------------ strings */

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

/* `mfshare-dump: NAME: reason: detail (hint)`, the detail from
 * mfs_last_error(). */
static void report(const char *name, int err, const char *detail, const char *hint)
{
	fprintf(stderr, PROG ": %s: %s", name, mfs_strerror(err));
	if (detail && *detail)
		fprintf(stderr, ": %s", detail);
	if (hint)
		fprintf(stderr, " (%s)", hint);
	fputc('\n', stderr);
}

/* ------------------------------------------------------------ file system */

/*
 * What the segment's pages live on.  tmpfs (and ramfs, hugetlbfs) keep
 * them in memory; any other file system may write every change back to
 * its disk, which costs I/O and defeats the point of shared memory.  The
 * memory test uses statfs's magic number; the name comes from the mount
 * table (exact, e.g. "ext4" or "overlay"), or from the magic number for
 * objects no mount shows (a memfd lives on the kernel's internal tmpfs).
 */
#define FS_TMPFS     0x01021994u
#define FS_RAMFS     0x858458f6u
#define FS_HUGETLBFS 0x958458f6u

static const struct { uint32_t magic; const char *name; } fs_names[] = {
	{ FS_TMPFS, "tmpfs" }, { FS_RAMFS, "ramfs" }, { FS_HUGETLBFS, "hugetlbfs" },
	{ 0xef53u, "ext4" }, { 0x58465342u, "xfs" }, { 0x9123683eu, "btrfs" },
	{ 0x794c7630u, "overlay" }, { 0x6969u, "nfs" }, { 0x65735546u, "fuse" },
	{ 0x01021997u, "9p" }, { 0x2fc12fc1u, "zfs" }, { 0xf2f52010u, "f2fs" },
	{ 0xff534d42u, "cifs" }, { 0x4d44u, "vfat" }, { 0x5346544eu, "ntfs" },
};

struct mnt { unsigned maj, min; char type[32]; };

/* The mount table, read once. */
static struct mnt *mounts;
static size_t nmounts;
static int mounts_read;

static void read_mounts(void)
{
	FILE *f;
	char *line = NULL, *sep;
	size_t cap = 0, room = 0;
	struct mnt m, *nm;

	mounts_read = 1;
	if (!(f = fopen("/proc/self/mountinfo", "re")))
		return;
	while (getline(&line, &cap, f) > 0) {
		/* ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] - TYPE SOURCE OPTS */
		if (sscanf(line, "%*s %*s %u:%u", &m.maj, &m.min) != 2 ||
		    !(sep = strstr(line, " - ")) || sscanf(sep + 3, "%31s", m.type) != 1)
			continue;
		if (nmounts == room) {
			room = room ? room * 2 : 64;
			if (!(nm = realloc(mounts, room * sizeof *nm)))
				break;
			mounts = nm;
		}
		mounts[nmounts++] = m;
	}
	free(line);
	fclose(f);
}

/* The file system of @fd: its name into @name, and *@memory 1 when its
 * pages stay in memory, 0 when they may reach a disk, -1 unknown. */
static void fs_of(int fd, char *name, size_t len, int *memory)
{
	struct statfs sf;
	struct stat sb;
	uint32_t magic;
	size_t i;

	*memory = -1;
	snprintf(name, len, "unknown");
	if (fstatfs(fd, &sf) != 0)
		return;
	magic = (uint32_t)sf.f_type;
	*memory = magic == FS_TMPFS || magic == FS_RAMFS || magic == FS_HUGETLBFS;
	if (!mounts_read)
		read_mounts();
	if (fstat(fd, &sb) == 0)
		for (i = 0; i < nmounts; i++)
			if (mounts[i].maj == major(sb.st_dev) && mounts[i].min == minor(sb.st_dev)) {
				snprintf(name, len, "%s", mounts[i].type);
				return;
			}
	for (i = 0; i < sizeof fs_names / sizeof fs_names[0]; i++)
		if (fs_names[i].magic == magic) {
			snprintf(name, len, "%s", fs_names[i].name);
			return;
		}
	snprintf(name, len, "0x%08" PRIx32, magic);
}

/* ------------------------------------------------------------ examining */

enum verdict { V_HEALTHY, V_STALE, V_WEDGED, V_CORRUPT, V_UNREADABLE };

static const char *const verdict_names[] = {
	"healthy", "stale", "wedged", "corrupt", "unreadable"
};

/* One segment, as read. */
struct seg {
	const char   *path;         /* the file read */
	int           err;          /* 0, or the MFS_E_* that kept it from being read */
	char          detail[1024]; /* mfs_last_error() of err (of the first try if stale) */
	int           stale;        /* readable only as stale (mfs_inspect_path's stale_ok) */
	mfs_stat      st;
	mfs_attacher *att;
	unsigned      natt;
	int           fd;           /* our read-only descriptor of it, or -1 */
	int           nameless;     /* the file has no name (memfd, or removed) */
	uint64_t      magic;        /* read from the file: offset 0 */
	uint32_t      layout;       /* offset 12 */
	uint64_t      total_size;   /* offset 32 */
	char          fs[40];       /* the file system's name */
	int           fs_memory;    /* see fs_of() */
	enum verdict  v;
	char          action[300];  /* --clean: what was done to it */
};

static void seg_free(struct seg *s)
{
	free(s->att);
	s->att = NULL;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* mfs_inspect_path with an attacher table that grows to fit. */
static int inspect(const char *path, int stale_ok, struct seg *s)
{
	unsigned cap = ATT_INITIAL;
	mfs_attacher *na;
	int r;

	for (;;) {
		if (!(na = realloc(s->att, cap * sizeof *na))) {
			snprintf(s->detail, sizeof s->detail, "%s", strerror(ENOMEM));
			return MFS_E_NO_RESOURCES;
		}
		s->att = na;
		r = mfs_inspect_path(path, stale_ok, &s->st, s->att, cap, &s->natt);
		if (r != 0 || s->natt <= cap)
			return r;
		cap = s->natt; /* the table grew between the calls: read it again */
	}
}

/* The native-endian integer at @p (the header's byte order, see
 * docs/FORMAT.md), of 8 or 4 bytes. */
static uint64_t get_u64(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static uint32_t get_u32(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static int errno_code(int e)
{
	switch (e) {
	case ENOENT: return MFS_E_NOT_FOUND;
	case EACCES: case EPERM: return MFS_E_PERMISSION;
	case ELOOP: return MFS_E_CORRUPT;
	case ENOMEM: case EMFILE: case ENFILE: return MFS_E_NO_RESOURCES;
	default: return MFS_E_UNKNOWN;
	}
}

/* How long a memfd that looks corrupt may still be under construction:
 * CORRUPT_RETRIES more reads, CORRUPT_PAUSE_MS apart. */
#define CORRUPT_RETRIES  5
#define CORRUPT_PAUSE_MS 20

/*
 * Read the segment at @path into @s.  @by_name: @path is a segment's name
 * (from a KEY or a directory scan), which the library never follows, so a
 * symbolic link there is not a segment.  @memfd: found in /proc, maybe
 * still being built.
 */
static void examine(struct seg *s, const char *path, int by_name, int memfd)
{
	const struct timespec nap = { 0, CORRUPT_PAUSE_MS * 1000000L };
	unsigned char raw[40];
	struct stat sb;
	int r, tries;
	ssize_t n;

	memset(s, 0, sizeof *s);
	s->fd = -1;
	s->path = path;
	if (by_name && lstat(path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
		s->err = MFS_E_CORRUPT;
		snprintf(s->detail, sizeof s->detail, "%s: a symbolic link, not a segment "
		         "(a segment's name is never followed)", path);
		s->v = V_CORRUPT;
		return;
	}
	r = inspect(path, 0, s);
	/* A memfd shows in /proc before its creator has sized it and written
	 * the header: give one that looks corrupt a moment. */
	for (tries = 0; memfd && r == MFS_E_CORRUPT && tries < CORRUPT_RETRIES; tries++) {
		nanosleep(&nap, NULL);
		r = inspect(path, 0, s);
	}
	if (r != 0 && r != MFS_E_NO_RESOURCES)
		snprintf(s->detail, sizeof s->detail, "%s", mfs_last_error());
	/* Absent and stale read the same to the library; tell them apart. */
	if (r == MFS_E_NOT_FOUND && inspect(path, 1, s) == 0) {
		s->stale = 1;
		r = 0;
	}
	if (r != 0) {
		s->err = r;
		s->v = r == MFS_E_CORRUPT ? V_CORRUPT : V_UNREADABLE;
		return;
	}

	/* Our own look at it: the header fields mfs_stat leaves out, the file
	 * system, and the data for -x.  Read-only, no lock of any kind. */
	s->fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY |
	             (by_name ? O_NOFOLLOW : 0));
	if (s->fd < 0 || fstat(s->fd, &sb) != 0) {
		s->err = errno_code(errno);
		snprintf(s->detail, sizeof s->detail, "open %s: %s", path, strerror(errno));
		s->v = s->err == MFS_E_CORRUPT ? V_CORRUPT : V_UNREADABLE;
		return;
	}
	do
		n = pread(s->fd, raw, sizeof raw, 0);
	while (n < 0 && errno == EINTR);
	if (!S_ISREG(sb.st_mode) || n != (ssize_t)sizeof raw) {
		/* Replaced since it was inspected. */
		s->err = MFS_E_CORRUPT;
		snprintf(s->detail, sizeof s->detail, "%s: changed while being read", path);
		s->v = V_CORRUPT;
		return;
	}
	s->nameless = sb.st_nlink == 0;
	s->magic = get_u64(raw + 0);
	s->layout = get_u32(raw + 12);
	s->total_size = get_u64(raw + 32);
	fs_of(s->fd, s->fs, sizeof s->fs, &s->fs_memory);
	if (s->stale)
		s->v = V_STALE;
	else if (s->st.locked && s->st.lock_owner_alive == 0)
		s->v = V_WEDGED;
	else
		s->v = V_HEALTHY;
}

/* The error of @s as one line: "reason: detail", the path prefix of the
 * detail left out (the block names the path). */
static void error_text(const struct seg *s, char *buf, size_t len)
{
	const char *d = s->detail;
	size_t pl = strlen(s->path);

	if (strncmp(d, s->path, pl) == 0 && d[pl] == ':' && d[pl + 1] == ' ')
		d += pl + 2;
	if (*d)
		snprintf(buf, len, "%s: %s", mfs_strerror(s->err), d);
	else
		snprintf(buf, len, "%s", mfs_strerror(s->err));
}

static const char *lock_state(const mfs_stat *st)
{
	if (!st->locked)
		return "free";
	return st->lock_owner_alive == 0 ? "dead" : "held";
}

/* ------------------------------------------------------------ output */

/* Read up to @len bytes at @off of @fd, as far as the file goes. */
static size_t read_at(int fd, unsigned char *buf, size_t len, uint64_t off)
{
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		n = pread(fd, buf + got, len - got, (off_t)(off + got));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	return got;
}

static void hex_line(uint64_t at, const unsigned char *b, size_t n)
{
	size_t j;

	printf("hexdump: %08" PRIx64 "  ", at);
	for (j = 0; j < 16; j++) {
		if (j < n)
			printf("%02x ", b[j]);
		else
			fputs("   ", stdout);
		if (j == 7)
			putchar(' ');
	}
	fputs(" |", stdout);
	for (j = 0; j < n; j++)
		putchar(b[j] >= 0x20 && b[j] < 0x7f ? b[j] : '.');
	fputs("|\n", stdout);
}

/*
 * -x: the data area from c->hex_off, c->hex_len bytes, clipped to the data.
 * Text: `hexdump -C` lines (offsets from the start of the data), a run of
 * identical lines shown as one "*", and the end offset last.  JSON: a
 * "hexdump" object with the offset, the bytes in hexadecimal and their
 * number.
 */
static void print_hex(const struct seg *s, const struct cfg *c)
{
	static unsigned char buf[1u << 16];
	unsigned char prev[16];
	uint64_t start, pos, end, len;
	size_t n, i, ln, prevn = 0;
	int starred = 0, any = 0;

	start = pos = c->hex_off < s->st.size ? c->hex_off : s->st.size;
	len = s->st.size - pos;
	if (c->hex_len < len)
		len = c->hex_len;
	end = pos + len;
	if (c->json)
		printf(",\"hexdump\":{\"offset\":%" PRIu64 ",\"hex\":\"", pos);
	while (pos < end) {
		n = read_at(s->fd, buf, end - pos < sizeof buf ? (size_t)(end - pos) : sizeof buf,
		            s->st.data_offset + pos);
		if (n == 0)
			break; /* the file is shorter than its header says: stop */
		for (i = 0; i < n; i += ln) {
			ln = n - i < 16 ? n - i : 16;
			if (c->json) {
				size_t j;

				for (j = 0; j < ln; j++)
					printf("%02x", buf[i + j]);
			} else if (any && ln == 16 && prevn == 16 &&
			           memcmp(prev, buf + i, 16) == 0) {
				if (!starred)
					puts("hexdump: *");
				starred = 1;
			} else {
				hex_line(pos + i, buf + i, ln);
				starred = 0;
			}
			memcpy(prev, buf + i, ln);
			prevn = ln;
			any = 1;
		}
		pos += n;
	}
	if (c->json)
		printf("\",\"length\":%" PRIu64 "}", pos - start);
	else
		printf("hexdump: %08" PRIx64 "\n", pos);
}

static void print_text(const struct seg *s, const struct cfg *c)
{
	const mfs_stat *st = &s->st;
	const char *sn = state_name(st->state);
	unsigned i;

	printf("version: %" PRIu32 "\n", st->version);
	printf("size: %" PRIu64 "\n", st->size);
	printf("refcount: %" PRIu32 "\n", st->refcount);
	printf("locked: %d\n", st->locked ? 1 : 0);
	printf("lock_owner: %ld\n", st->lock_owner);
	printf("seq: %" PRIu32 "\n", st->seq);
	fputs("path: ", stdout);
	text_str(s->path);
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
	/* Beyond what mfshare-dump 0.1 printed; new fields go here. */
	printf("magic: 0x%016" PRIx64 "\n", s->magic);
	printf("layout: 0x%08" PRIx32 "\n", s->layout);
	printf("total_size: %" PRIu64 "\n", s->total_size);
	printf("filesystem: %s\n", s->fs);
	if (s->fs_memory == 0)
		printf("warning: not a memory file system (%s): every write may reach "
		       "the disk\n", s->fs);
	if (st->locked)
		printf("lock: %s pid=%ld tid=%ld waiters=%" PRIu32 "\n", lock_state(st),
		       st->lock_owner, st->lock_owner_tid, st->lock_waiters);
	else
		puts("lock: free");
	printf("verdict: %s\n", verdict_names[s->v]);
	if (c->clean)
		printf("action: %s\n", s->action);
	for (i = 0; i < s->natt; i++)
		printf("attacher: slot=%" PRIu32 " pid=%ld tid=%ld start=%" PRIu64
		       " alive=%d\n", s->att[i].slot, s->att[i].pid, s->att[i].tid,
		       s->att[i].start_time, s->att[i].alive ? 1 : 0);
	if (c->hex)
		print_hex(s, c);
}

static void print_json(const struct seg *s, const struct cfg *c)
{
	const mfs_stat *st = &s->st;
	const char *sn = state_name(st->state);
	unsigned i;

	printf("{\"version\":%" PRIu32 ",\"size\":%" PRIu64 ",\"refcount\":%" PRIu32
	       ",\"locked\":%d,\"lock_owner\":%ld,\"seq\":%" PRIu32 ",\"path\":",
	       st->version, st->size, st->refcount, st->locked ? 1 : 0,
	       st->lock_owner, st->seq);
	json_str(s->path);
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
	       "\",\"sealed\":%d",
	       st->lock_word, st->lock_owner_tid, st->lock_owner_alive,
	       st->lock_waiters, st->seq_waiters, st->uid, st->mode,
	       st->sealed ? 1 : 0);
	/* The magic is a string: 64-bit numbers do not survive every JSON
	 * reader. */
	printf(",\"magic\":\"0x%016" PRIx64 "\",\"layout\":%" PRIu32
	       ",\"total_size\":%" PRIu64 ",\"filesystem\":",
	       s->magic, s->layout, s->total_size);
	json_str(s->fs);
	if (s->fs_memory == 0) {
		char w[200];

		snprintf(w, sizeof w, "not a memory file system (%s): every write may "
		         "reach the disk", s->fs);
		fputs(",\"warning\":", stdout);
		json_str(w);
	}
	printf(",\"lock\":\"%s\",\"verdict\":\"%s\"", lock_state(st), verdict_names[s->v]);
	if (c->clean) {
		fputs(",\"action\":", stdout);
		json_str(s->action);
	}
	fputs(",\"attachers\":[", stdout);
	for (i = 0; i < s->natt; i++)
		printf("%s{\"slot\":%" PRIu32 ",\"pid\":%ld,\"tid\":%ld,\"start\":%" PRIu64
		       ",\"alive\":%d}", i ? "," : "", s->att[i].slot, s->att[i].pid,
		       s->att[i].tid, s->att[i].start_time, s->att[i].alive ? 1 : 0);
	putchar(']');
	if (c->hex)
		print_hex(s, c);
	fputs("}\n", stdout);
}

/* A segment that could not be read (corrupt, unreadable), in --all and
 * --clean output: its path, the verdict and the error. */
static void print_error(const struct seg *s, const struct cfg *c)
{
	char err[1200];

	error_text(s, err, sizeof err);
	if (c->json) {
		fputs("{\"path\":", stdout);
		json_str(s->path);
		printf(",\"verdict\":\"%s\",\"error\":", verdict_names[s->v]);
		json_str(err);
		if (c->clean) {
			fputs(",\"action\":", stdout);
			json_str(s->action);
		}
		fputs("}\n", stdout);
		return;
	}
	fputs("path: ", stdout);
	text_str(s->path);
	printf("\nverdict: %s\nerror: ", verdict_names[s->v]);
	text_str(err);
	putchar('\n');
	if (c->clean)
		printf("action: %s\n", s->action);
}

/* Print @s as a block; text blocks are separated by an empty line. */
static void print_seg(const struct seg *s, const struct cfg *c, unsigned *blocks)
{
	if (!c->json && (*blocks)++)
		putchar('\n');
	if (s->err)
		print_error(s, c);
	else if (c->json)
		print_json(s, c);
	else
		print_text(s, c);
}

/* ------------------------------------------------------------ one target */

/* How a target was named. */
enum origin {
	FROM_KEY,   /* a KEY operand: a name */
	FROM_PATH,  /* a PATH operand: followed if it is a link (/proc/PID/fd/N) */
	FROM_SCAN,  /* a file --all found in a directory: a name */
	FROM_MEMFD  /* a memfd --all found in /proc */
};

/*
 * --clean: remove @s if it is stale, through mfs_reap_path, which checks
 * again under the segment's gate and removes nothing that has come back to
 * life.  Fills s->action.  Returns the exit status it earns: 1 when
 * something stale, wedged or corrupt remains.
 */
static int clean(struct seg *s, const char *name, enum origin o, const struct cfg *c)
{
	struct stat sb;
	int r;

	switch (s->v) {
	case V_HEALTHY:
		snprintf(s->action, sizeof s->action, "kept");
		return 0;
	case V_WEDGED:
		snprintf(s->action, sizeof s->action, "kept: in use; the next mfs_lock() "
		         "takes the dead holder's lock over");
		return 1;
	case V_CORRUPT:
		snprintf(s->action, sizeof s->action, "kept: not a valid segment, never "
		         "removed");
		return 1;
	case V_UNREADABLE:
		snprintf(s->action, sizeof s->action, "kept: could not be read");
		return 1;
	case V_STALE:
		break;
	}
	if (o == FROM_MEMFD || s->nameless) {
		snprintf(s->action, sizeof s->action, "kept: it has no name; it goes when "
		         "the processes holding it close it");
		return 1;
	}
	if (o == FROM_PATH && lstat(s->path, &sb) == 0 && S_ISLNK(sb.st_mode)) {
		snprintf(s->action, sizeof s->action, "kept: reached through a link; name "
		         "the file itself to remove it");
		return 1;
	}
	if (c->dry_run) {
		snprintf(s->action, sizeof s->action, "would remove");
		return 1;
	}
	r = mfs_reap_path(s->path);
	switch (r) {
	case 0:
		snprintf(s->action, sizeof s->action, "removed");
		return 0;
	case MFS_E_BUSY:
		snprintf(s->action, sizeof s->action, "kept: it has a live attacher again");
		return 0;
	case MFS_E_NOT_FOUND:
		snprintf(s->action, sizeof s->action, "gone: removed meanwhile by "
		         "another process");
		return 0;
	default:
		snprintf(s->action, sizeof s->action, "kept: cannot remove it: %s",
		         mfs_strerror(r));
		report(name, r, mfs_last_error(), "not removed");
		return 1;
	}
}

/*
 * Examine, print (and with --clean, reap) one target.  @name names it in
 * messages: the operand as given, or the path --all found.  Returns the
 * exit status it earns.
 */
static int one(const char *path, const char *name, enum origin o,
               const struct cfg *c, unsigned *blocks)
{
	int many = c->all || c->clean, status = 0;
	struct seg s;

	examine(&s, path, o == FROM_KEY || o == FROM_SCAN, o == FROM_MEMFD);
	if (s.err) {
		/* Gone since the scan, or (a memfd) another user's: not listed. */
		if ((o == FROM_SCAN || o == FROM_MEMFD) && s.err == MFS_E_NOT_FOUND)
			goto out;
		if (o == FROM_MEMFD && s.err == MFS_E_PERMISSION)
			goto out;
		report(name, s.err, s.detail, NULL);
		status = 1;
		if (many && s.err != MFS_E_NOT_FOUND) {
			if (c->clean)
				clean(&s, name, o, c);
			print_seg(&s, c, blocks);
		}
		goto out;
	}
	if (s.stale && !many && !c->stale) {
		report(name, MFS_E_NOT_FOUND, s.detail, "stale or destroyed; --stale shows it");
		status = 1;
		goto out;
	}
	if (c->clean) {
		status = clean(&s, name, o, c);
		if (s.v == V_HEALTHY)
			goto out; /* --clean shows what it is about */
	} else if (c->all) {
		status = s.v != V_HEALTHY;
	}
	print_seg(&s, c, blocks);
out:
	seg_free(&s);
	return status;
}

/* One KEY or PATH operand. */
static int operand(const char *arg, const struct cfg *c, unsigned *blocks)
{
	char keypath[4096];
	int r;

	if (strchr(arg, '/'))
		return one(arg, arg, FROM_PATH, c, blocks);
	r = mfs_native_path(arg, &c->opts, keypath, sizeof keypath);
	if (r != 0) {
		report(arg, r, mfs_last_error(), NULL);
		return 1;
	}
	return one(keypath, arg, FROM_KEY, c, blocks);
}

/* ------------------------------------------------------------ /proc */

/*
 * The memfd segments running processes hold.  A memfd has no name, but
 * every descriptor of one shows in /proc/PID/fd as a link to
 * "/memfd:DESCRIPTION (deleted)", and libmfshare describes its memfds as
 * "mfshare" or "mfshare:KEY".
 */

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

/* Fill @l with every libmfshare memfd descriptor in /proc, sorted by pid
 * and descriptor.  Returns 0, or 1 when /proc could not be read. */
static int find_memfds(struct memfd_list *l)
{
	long pid, self = (long)getpid();
	struct dirent *e;
	DIR *d;
	int status = 0;

	if (!(d = opendir("/proc"))) {
		fprintf(stderr, PROG ": /proc: %s\n", strerror(errno));
		return 1;
	}
	while ((e = readdir(d)) != NULL) {
		if ((pid = dec(e->d_name)) <= 0 || pid == self)
			continue;
		if (scan_pid(pid, l) != 0) {
			fprintf(stderr, PROG ": /proc: %s\n", strerror(ENOMEM));
			status = 1;
			break;
		}
	}
	closedir(d);
	if (l->n)
		qsort(l->v, l->n, sizeof *l->v, ent_cmp);
	return status;
}

static void memfds_free(struct memfd_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i].desc);
	free(l->v);
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

/* -m: list every libmfshare memfd in /proc/[pid]/fd, once per (pid, fd).
 * Returns the exit status: 0, or 1 if one could not be read (or /proc
 * cannot be). */
static int list_memfds(const struct cfg *c)
{
	struct memfd_list l = { NULL, 0, 0 };
	const struct timespec nap = { 0, CORRUPT_PAUSE_MS * 1000000L };
	char path[96], detail[1024];
	mfs_stat st;
	size_t i;
	int r, tries, status;

	status = find_memfds(&l);
	for (i = 0; i < l.n; i++) {
		snprintf(path, sizeof path, "/proc/%ld/fd/%d", l.v[i].pid, l.v[i].fd);
		/* Stale ones too: a descriptor held without an attachment. */
		r = mfs_inspect_path(path, 1, &st, NULL, 0, NULL);
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
	memfds_free(&l);
	return status;
}

/* ------------------------------------------------------------ --all */

/* A file --all found, and the object it is (one object is listed once,
 * however many names or descriptors lead to it). */
struct cand {
	char        *path;
	enum origin  o;
	dev_t        dev;
	ino_t        ino;
};

struct cands {
	struct cand *v;
	size_t       n, cap;
};

/* Add @path unless it is gone or already listed.  Returns 0, or -1 when
 * out of memory. */
static int cand_add(struct cands *l, const char *path, enum origin o)
{
	struct stat sb;
	size_t i;

	if ((o == FROM_MEMFD ? stat(path, &sb) : lstat(path, &sb)) != 0)
		return 0;
	for (i = 0; i < l->n; i++)
		if (l->v[i].dev == sb.st_dev && l->v[i].ino == sb.st_ino)
			return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 32;
		struct cand *v = realloc(l->v, cap * sizeof *v);

		if (!v)
			return -1;
		l->v = v;
		l->cap = cap;
	}
	if (!(l->v[l->n].path = strdup(path)))
		return -1;
	l->v[l->n].o = o;
	l->v[l->n].dev = sb.st_dev;
	l->v[l->n].ino = sb.st_ino;
	l->n++;
	return 0;
}

/* Does the regular file at @path start with the magic, in either byte
 * order?  (A file we may not read cannot be told apart: no.) */
static int has_magic(const char *path)
{
	unsigned char b[8];
	struct stat sb;
	uint64_t m;
	int fd, ok = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && read_at(fd, b, 8, 0) == 8) {
		m = get_u64(b);
		ok = m == SEG_MAGIC || m == SEG_MAGIC_SWAPPED;
	}
	close(fd);
	return ok;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

enum scan_kind {
	SCAN_SHM,     /* names mfshare.*: every one is a candidate */
	SCAN_RUNTIME, /* every entry is a candidate (the directory is ours) */
	SCAN_DIR      /* only regular files that start with the magic */
};

/* Add the candidates of directory @dir, in name order.  A missing
 * directory is an error only if @must_exist.  Returns the exit status. */
static int scan_dir(struct cands *l, const char *dir, enum scan_kind kind,
                    int must_exist)
{
	char **names = NULL, **nn, path[4096];
	size_t n = 0, cap = 0, i, dl = strlen(dir);
	struct dirent *e;
	int status = 0;
	DIR *d;

	if (!(d = opendir(dir))) {
		if (errno == ENOENT && !must_exist)
			return 0;
		fprintf(stderr, PROG ": %s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (kind == SCAN_SHM && strncmp(e->d_name, SHM_PREFIX, sizeof SHM_PREFIX - 1))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if (!(nn = realloc(names, cap * sizeof *nn)))
				goto nomem;
			names = nn;
		}
		if (!(names[n] = strdup(e->d_name)))
			goto nomem;
		n++;
	}
	closedir(d);
	d = NULL;
	if (n)
		qsort(names, n, sizeof *names, name_cmp);
	for (i = 0; i < n; i++) {
		if (snprintf(path, sizeof path, "%s%s%s", dir,
		             dl && dir[dl - 1] == '/' ? "" : "/", names[i]) >= (int)sizeof path)
			continue;
		if (kind == SCAN_DIR && !has_magic(path))
			continue;
		if (cand_add(l, path, FROM_SCAN) != 0)
			goto nomem;
	}
	goto out;
nomem:
	fprintf(stderr, PROG ": %s: %s\n", dir, strerror(ENOMEM));
	status = 1;
out:
	if (d)
		closedir(d);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return status;
}

/* --all: find every segment in the chosen sources, then examine each in
 * the order found.  Returns the exit status. */
static int all(const struct cfg *c, unsigned *blocks)
{
	struct cands l = { NULL, 0, 0 };
	char rt[4096], path[96];
	const char *xdg;
	size_t i;
	int k, status = 0;

	if (c->sources & SRC_SHM)
		status |= scan_dir(&l, SHM_DIR, SCAN_SHM, 0);
	if (c->sources & SRC_RUNTIME) {
		xdg = getenv("XDG_RUNTIME_DIR");
		if (xdg && *xdg) {
			snprintf(rt, sizeof rt, "%s/mfshare", xdg);
			status |= scan_dir(&l, rt, SCAN_RUNTIME, 0);
		} else if (c->only) {
			fprintf(stderr, PROG ": runtime: XDG_RUNTIME_DIR is not set\n");
			status = 1;
		}
	}
	if (c->sources & SRC_DIR)
		for (k = 0; k < c->ndirs; k++)
			status |= scan_dir(&l, c->dirs[k], SCAN_DIR, 1);
	if (c->sources & SRC_MEMFD) {
		struct memfd_list m = { NULL, 0, 0 };

		status |= find_memfds(&m);
		for (i = 0; i < m.n; i++) {
			snprintf(path, sizeof path, "/proc/%ld/fd/%d", m.v[i].pid, m.v[i].fd);
			if (cand_add(&l, path, FROM_MEMFD) != 0) {
				fprintf(stderr, PROG ": /proc: %s\n", strerror(ENOMEM));
				status = 1;
				break;
			}
		}
		memfds_free(&m);
	}
	for (i = 0; i < l.n; i++)
		status |= one(l.v[i].path, l.v[i].path, l.v[i].o, c, blocks);
	for (i = 0; i < l.n; i++)
		free(l.v[i].path);
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

/* A decimal or 0x-hexadecimal number, the whole of [@s, @end). */
static int parse_num(const char *s, const char *end, uint64_t *v)
{
	int base = 10;
	char *stop;

	if (end - s > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		base = 16;
		s += 2;
	}
	if (s == end || !(base == 16 ? strchr("0123456789abcdefABCDEF", *s)
	                             : strchr("0123456789", *s)))
		return -1;
	errno = 0;
	*v = strtoull(s, &stop, base);
	return errno || stop != end ? -1 : 0;
}

/* -x's argument: OFFSET, OFFSET:LEN or :LEN. */
static int parse_hex_arg(const char *a, struct cfg *c)
{
	const char *colon = strchr(a, ':'), *end = a + strlen(a);

	c->hex_off = 0;
	c->hex_len = UINT64_MAX;
	if (colon != a && parse_num(a, colon ? colon : end, &c->hex_off) != 0)
		return -1;
	if (colon && parse_num(colon + 1, end, &c->hex_len) != 0)
		return -1;
	return 0;
}

/* --only's list: shm, runtime, memfd, dir, separated by commas. */
static int parse_sources(const char *a, unsigned *src)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "shm", SRC_SHM }, { "runtime", SRC_RUNTIME }, { "memfd", SRC_MEMFD },
		{ "dir", SRC_DIR }
	};
	const char *p = a, *e;
	size_t i, n;

	*src = 0;
	for (;;) {
		e = strchr(p, ',');
		n = e ? (size_t)(e - p) : strlen(p);
		for (i = 0; i < sizeof names / sizeof names[0]; i++)
			if (strlen(names[i].name) == n && strncmp(p, names[i].name, n) == 0)
				break;
		if (i == sizeof names / sizeof names[0])
			return -1;
		*src |= names[i].bit;
		if (!e)
			return 0;
		p = e + 1;
	}
}

enum { OPT_ONLY = 256, OPT_CLEAN };

/* The option parsing and the run; main() frees what it allocated on every
 * path, early usage errors included. */
static int run(int argc, char **argv, struct cfg *c)
{
	static const struct option longopts[] = {
		{ "backend", required_argument, NULL, 'b' },
		{ "dir",     required_argument, NULL, 'd' },
		{ "json",    no_argument,       NULL, 'j' },
		{ "stale",   no_argument,       NULL, 's' },
		{ "memfd",   no_argument,       NULL, 'm' },
		{ "all",     no_argument,       NULL, 'a' },
		{ "only",    required_argument, NULL, OPT_ONLY },
		{ "clean",   no_argument,       NULL, OPT_CLEAN },
		{ "dry-run", no_argument,       NULL, 'n' },
		{ "hexdump", optional_argument, NULL, 'x' },
		{ "help",    no_argument,       NULL, 'h' },
		{ "version", no_argument,       NULL, 'V' },
		{ NULL, 0, NULL, 0 }
	};
	unsigned blocks = 0;
	int ch, i, status = 0;

	c->sources = SRC_ALL;
	if (!(c->dirs = calloc((size_t)argc, sizeof *c->dirs))) {
		fprintf(stderr, PROG ": %s\n", strerror(ENOMEM));
		return 1;
	}
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":ab:d:jmnshVx::", longopts, NULL)) != -1) {
		switch (ch) {
		case 'b':
			if (strcmp(optarg, "shm") == 0)
				c->opts.backend = MFS_BACKEND_SHM;
			else if (strcmp(optarg, "runtime") == 0)
				c->opts.backend = MFS_BACKEND_RUNTIME_DIR;
			else if (strcmp(optarg, "file") == 0)
				c->opts.backend = MFS_BACKEND_FILE;
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
			c->dirs[c->ndirs++] = optarg;
			c->opts.dir = optarg;
			break;
		case 'j':
			c->json = 1;
			break;
		case 's':
			c->stale = 1;
			break;
		case 'm':
			c->memfd = 1;
			break;
		case 'a':
			c->all = 1;
			break;
		case OPT_ONLY:
			if (parse_sources(optarg, &c->sources) != 0)
				return bad_usage("--only=%s: a list of shm, runtime, memfd, dir",
				                 optarg);
			c->only = 1;
			break;
		case OPT_CLEAN:
			c->clean = 1;
			break;
		case 'n':
			c->dry_run = 1;
			break;
		case 'x':
			c->hex = 1;
			if (optarg && parse_hex_arg(optarg, c) != 0)
				return bad_usage("-x %s: want OFFSET, OFFSET:LEN or :LEN (decimal "
				                 "or 0x hexadecimal)", optarg);
			if (!optarg) {
				c->hex_off = 0;
				c->hex_len = UINT64_MAX;
			}
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
	if (c->memfd) {
		if (optind < argc)
			return bad_usage("%s: -m takes no KEY or PATH", argv[optind]);
		if (c->opts.backend || c->ndirs)
			return bad_usage("%s", "-m lists memfd segments; -b and -d do not apply");
		if (c->all || c->clean || c->hex || c->only || c->dry_run)
			return bad_usage("%s", "-m lists memfd segments; --all, --only, --clean, "
			                 "--dry-run and -x do not apply");
		status = list_memfds(c);
		goto out;
	}
	if (c->dry_run && !c->clean)
		return bad_usage("%s", "--dry-run goes with --clean");
	if (c->only && !c->all)
		return bad_usage("%s", "--only goes with --all");
	if (c->clean && c->hex)
		return bad_usage("%s", "--clean prints what it removes; -x does not apply");
	if (c->all) {
		if (optind < argc)
			return bad_usage("%s: --all takes no KEY or PATH", argv[optind]);
		if (c->opts.backend)
			return bad_usage("%s", "--all looks everywhere; -b does not apply "
			                 "(see --only)");
		if (c->ndirs && !(c->sources & SRC_DIR))
			return bad_usage("%s", "-d DIR given, but --only leaves out dir");
		if (c->only && c->sources == SRC_DIR && !c->ndirs)
			return bad_usage("%s", "--only=dir needs -d DIR");
		status = all(c, &blocks);
		goto out;
	}
	if (c->ndirs > 1)
		return bad_usage("%s", "-d given more than once; only --all scans several "
		                 "directories");
	if (c->opts.backend == MFS_BACKEND_FILE && !c->opts.dir)
		return bad_usage("%s", "-b file needs -d DIR");
	if (c->opts.dir && c->opts.backend != MFS_BACKEND_FILE &&
	    c->opts.backend != MFS_BACKEND_RUNTIME_DIR)
		return bad_usage("-d %s: only -b file and -b runtime take a directory",
		                 c->opts.dir);
	if (optind >= argc)
		return bad_usage("%s", c->clean ? "--clean needs --all or a KEY or PATH"
		                                : "no KEY or PATH given");

	for (i = optind; i < argc; i++)
		status |= operand(argv[i], c, &blocks);
out:
	free(mounts);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, PROG ": writing the output: %s\n", strerror(errno));
		return 1;
	}
	return status;
}

int main(int argc, char **argv)
{
	struct cfg cfg;
	int status;

	memset(&cfg, 0, sizeof cfg);
	status = run(argc, argv, &cfg);
	free(cfg.dirs);
	return status;
}
