/* SPDX-License-Identifier: MIT */
/*
 * The on-disk header format: docs/FORMAT.md's field tables against
 * struct mfs_header / struct mfs_slot (offsetof, sizeof), and a real
 * segment's file bytes against the documented offsets and mfs_stat.
 */
#include "testutil.h"
#include "header.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

/* ------------------------------------------------------------ the struct */

struct field {
	const char *name;
	size_t off, size;
};

#define HF(f) { #f, offsetof(struct mfs_header, f), sizeof(((struct mfs_header *)0)->f) }
#define SF(f) { #f, offsetof(struct mfs_slot, f), sizeof(((struct mfs_slot *)0)->f) }

/* Every member of struct mfs_header, in order: a member added to the
 * struct without a row here fails the coverage check below (the rows must
 * tile the 4096 bytes). */
static const struct field hdr_fields[] = {
	HF(magic), HF(version), HF(layout), HF(data_offset), HF(data_size),
	HF(total_size), HF(state), HF(creator_uid), HF(creator_pid),
	HF(slot_count), HF(creator_start), HF(attach_count), HF(slot_high),
	HF(reserved0), HF(lock), HF(lock_waiters), HF(owner_pid), HF(owner_tid),
	HF(reserved1), HF(seq), HF(seq_waiters), HF(reserved2), HF(slots),
};
static const struct field slot_fields[] = { SF(pid), SF(tid), SF(start) };

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ------------------------------------------------------------ the document */

#define MAXROWS 64

struct row {
	char name[64];
	long off, size;
	int line;
};

struct doc {
	struct row hdr[MAXROWS], slot[MAXROWS];
	int nhdr, nslot;
	char err[512]; /* first parse problem, "" if none */
};

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		*--e = '\0';
	return s;
}

/* Split a markdown table row into at most @max cells ("\|" is not a
 * separator).  Modifies @line.  Returns the number of cells. */
static int split_row(char *line, char **cells, int max)
{
	char *p = line, *start;
	int n = 0;

	if (*p != '|')
		return 0;
	start = ++p;
	for (; *p; p++) {
		if (*p == '\\' && p[1] == '|') {
			p++;
			continue;
		}
		if (*p == '|') {
			*p = '\0';
			if (n < max)
				cells[n++] = trim(start);
			start = p + 1;
		}
	}
	return n;
}

static int parse_long(const char *s, long *v)
{
	char *end;

	if (!*s)
		return -1;
	errno = 0;
	*v = strtol(s, &end, 10);
	return errno || *end ? -1 : 0;
}

/*
 * Collect the rows of every "offset | size | name | meaning" table: those
 * under a heading naming struct mfs_slot go to doc->slot, those under one
 * naming struct mfs_header to doc->hdr; such a table anywhere else, or a
 * row that does not parse, is an error.
 */
static void parse_doc(const char *text, struct doc *d)
{
	char *copy = strdup(text), *line, *next, *cells[8];
	int section = 0, table = 0, lineno = 0, n;
	long off, size;

	memset(d, 0, sizeof *d);
	if (!copy) {
		snprintf(d->err, sizeof d->err, "out of memory");
		return;
	}
	for (line = copy; line; line = next) {
		struct row *r;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		lineno++;
		if (line[0] == '#') {
			section = strstr(line, "struct mfs_slot") ? 2
			        : strstr(line, "struct mfs_header") ? 1 : 0;
			table = 0;
			continue;
		}
		if (line[0] != '|') {
			table = 0;
			continue;
		}
		n = split_row(line, cells, 8);
		if (table == 0) {
			/* A table's first row: is it a fields table? */
			table = -1;
			if (n == 4 && !strcmp(cells[0], "offset") && !strcmp(cells[1], "size") &&
			    !strcmp(cells[2], "name") && !strcmp(cells[3], "meaning")) {
				if (section == 0 && !d->err[0])
					snprintf(d->err, sizeof d->err, "line %d: a fields table "
					         "outside the mfs_header/mfs_slot sections", lineno);
				table = section ? section : -1;
			}
			continue;
		}
		if (table <= 0)
			continue;
		if (n >= 1 && (cells[0][0] == '-' || cells[0][0] == ':'))
			continue; /* the |---:| separator */
		if (n != 4 || parse_long(cells[0], &off) || parse_long(cells[1], &size)) {
			if (!d->err[0])
				snprintf(d->err, sizeof d->err, "line %d: not an "
				         "\"offset | size | name | meaning\" row", lineno);
			continue;
		}
		if (table == 1 ? d->nhdr >= MAXROWS : d->nslot >= MAXROWS) {
			if (!d->err[0])
				snprintf(d->err, sizeof d->err, "line %d: too many rows", lineno);
			continue;
		}
		r = table == 1 ? &d->hdr[d->nhdr++] : &d->slot[d->nslot++];
		{
			char *nm = cells[2];
			size_t len;

			if (*nm == '`')
				nm++;
			len = strlen(nm);
			if (len && nm[len - 1] == '`')
				nm[--len] = '\0';
			snprintf(r->name, sizeof r->name, "%s", nm);
		}
		r->off = off;
		r->size = size;
		r->line = lineno;
	}
	free(copy);
}

/*
 * Compare document rows with the struct's fields: every row names a field
 * with the same offset and size, every field has exactly one row, and the
 * rows, in order, tile [0, @total).  Returns the number of problems; the
 * first is described in @msg.
 */
static int compare(const struct row *rows, int nrows, const struct field *f,
                   size_t nf, size_t total, char *msg, size_t msglen)
{
	int bad = 0, i, count;
	size_t j;
	long at = 0;

#define PROBLEM(...) do { if (!bad++) snprintf(msg, msglen, __VA_ARGS__); } while (0)
	msg[0] = '\0';
	for (i = 0; i < nrows; i++) {
		for (j = 0; j < nf; j++)
			if (!strcmp(rows[i].name, f[j].name))
				break;
		if (j == nf)
			PROBLEM("line %d: FORMAT.md has field \"%s\", the struct does not",
			        rows[i].line, rows[i].name);
		else if ((size_t)rows[i].off != f[j].off || (size_t)rows[i].size != f[j].size)
			PROBLEM("line %d: %s is documented at offset %ld size %ld; the "
			        "struct has offset %zu size %zu", rows[i].line, rows[i].name,
			        rows[i].off, rows[i].size, f[j].off, f[j].size);
		if (rows[i].off != at)
			PROBLEM("line %d: %s starts at %ld; the previous row ends at %ld "
			        "(gap or overlap)", rows[i].line, rows[i].name, rows[i].off, at);
		at = rows[i].off + rows[i].size;
	}
	if (at != (long)total)
		PROBLEM("the rows end at byte %ld, not %zu", at, total);
	for (j = 0; j < nf; j++) {
		for (i = 0, count = 0; i < nrows; i++)
			count += !strcmp(rows[i].name, f[j].name);
		if (count != 1)
			PROBLEM("FORMAT.md has %d rows for struct field \"%s\" (want 1)",
			        count, f[j].name);
	}
#undef PROBLEM
	return bad;
}

static char *read_doc(void)
{
	const char *src = getenv("MFS_SRCDIR");
	char path[4096];
	unsigned char *buf;
	size_t len;

	snprintf(path, sizeof path, "%s/docs/FORMAT.md", src && *src ? src : ".");
	buf = mt_slurp(path, 1 << 20, &len);
	ck_assert_msg(buf != NULL, "cannot read %s (set MFS_SRCDIR to the source "
	              "directory)", path);
	ck_assert_msg(len > 0 && len < (1u << 20), "%s: %zu bytes", path, len);
	buf[len] = '\0'; /* len < max: room for the terminator */
	return (char *)buf;
}

/* ------------------------------------------------------------ helpers */

static uint32_t rd32(const unsigned char *b, size_t off)
{
	uint32_t v;

	memcpy(&v, b + off, sizeof v);
	return v;
}

static uint64_t rd64(const unsigned char *b, size_t off)
{
	uint64_t v;

	memcpy(&v, b + off, sizeof v);
	return v;
}

static int little_endian(void)
{
	const uint16_t one = 1;
	unsigned char b;

	memcpy(&b, &one, 1);
	return b == 1;
}

static long my_tid(void)
{
	return (long)syscall(SYS_gettid);
}

/* Field 22 of /proc/self/stat: start time in clock ticks since boot. */
static uint64_t my_start(void)
{
	size_t len;
	unsigned char *buf = mt_slurp("/proc/self/stat", 4096, &len);
	char *p;
	int field;
	uint64_t v = 0;

	if (!buf)
		return 0;
	buf[len < 4096 ? len : 4095] = '\0';
	/* After the command's last ')': field 3 (state), then 4, 5, ... */
	p = strrchr((char *)buf, ')');
	if (p) {
		p++;
		for (field = 3; field < 22 && *p; field++) {
			while (*p == ' ')
				p++;
			while (*p && *p != ' ')
				p++;
		}
		v = strtoull(p, NULL, 10);
	}
	free(buf);
	return v;
}

/* The whole file behind @path, exactly (fails the test if unreadable). */
static unsigned char *file_bytes(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *b;

	ck_assert_int_eq(stat(path, &st), 0);
	b = mt_slurp(path, (size_t)st.st_size + 1, len);
	ck_assert_ptr_nonnull(b);
	ck_assert_uint_eq(*len, (size_t)st.st_size);
	return b;
}

/* Is @byte of the file locked by some open file description? */
static int byte_locked(const char *path, uint64_t byte)
{
	struct flock fl;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int r;

	ck_assert_int_ge(fd, 0);
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	fl.l_start = (off_t)byte;
	fl.l_len = 1;
	r = fcntl(fd, F_OFD_GETLK, &fl);
	close(fd);
	ck_assert_int_eq(r, 0);
	return fl.l_type != F_UNLCK;
}

/* One directory per TCase, made and removed by the runner (an unchecked
 * fixture), so it goes away even after a failed test. */
static const char *tmp;
static mfs_options fopts;

static void file_setup(void)
{
	tmp = mt_tmpdir();
	memset(&fopts, 0, sizeof fopts);
	fopts.backend = MFS_BACKEND_FILE;
	fopts.dir = tmp ? tmp : "/nonexistent"; /* the tests then fail */
}

static void file_teardown(void)
{
	if (tmp)
		mt_rmtree(tmp);
	tmp = NULL;
}

/* ------------------------------------------------------------ struct */

START_TEST(struct_size_and_slots)
{
	unsigned i;

	ck_assert_uint_eq(sizeof(struct mfs_header), 4096);
	ck_assert_uint_eq(MFS_HEADER_SIZE, 4096);
	ck_assert_uint_eq(MFS_SLOTS, 240);
	ck_assert_uint_eq(MFS_SLOT_BASE, 256);
	ck_assert_uint_eq(MFS_SLOT_SIZE, 16);
	ck_assert_uint_eq(sizeof(struct mfs_slot), 16);
	ck_assert_uint_eq(NELEM(((struct mfs_header *)0)->slots), MFS_SLOTS);
	ck_assert_uint_eq(offsetof(struct mfs_slot, pid), 0);
	ck_assert_uint_eq(offsetof(struct mfs_slot, tid), 4);
	ck_assert_uint_eq(offsetof(struct mfs_slot, start), 8);
	ck_assert_uint_eq(sizeof(((struct mfs_slot *)0)->pid), 4);
	ck_assert_uint_eq(sizeof(((struct mfs_slot *)0)->tid), 4);
	ck_assert_uint_eq(sizeof(((struct mfs_slot *)0)->start), 8);
	/* Entry i lies at 256 + 16 i, the same byte as slot i's token. */
	for (i = 0; i < MFS_SLOTS; i++) {
		ck_assert_uint_eq(offsetof(struct mfs_header, slots) + i * sizeof(struct mfs_slot),
		                  256 + 16 * i);
		ck_assert_uint_eq(MFS_SLOT_BYTE(i), 256 + 16 * i);
	}
	ck_assert_uint_eq(MFS_SLOT_BYTE(MFS_SLOTS - 1) + MFS_SLOT_SIZE, 4096);
	ck_assert_uint_eq(MFS_GATE_BYTE, 0);
}
END_TEST

START_TEST(struct_magic_layout_lockword)
{
	unsigned char b[8];
	uint64_t m = MFS_MAGIC;

	memcpy(b, &m, 8);
	if (little_endian())
		ck_assert(memcmp(b, "MFSHARE1", 8) == 0);
	else
		ck_assert(memcmp(b, "1ERAHSFM", 8) == 0);
	ck_assert(MFS_MAGIC_SWAPPED == __builtin_bswap64(MFS_MAGIC));
	ck_assert_uint_eq(MFS_VERSION, 1);
	ck_assert_uint_eq(MFS_LAYOUT, 0x00100004u);
	ck_assert_uint_eq(MFS_LAYOUT >> 8, sizeof(struct mfs_header));
	ck_assert_uint_eq(MFS_LAYOUT & 0xff, sizeof(((struct mfs_header *)0)->lock));
	/* (slot + 1) << 2 | state */
	ck_assert_uint_eq(MFS_LOCK_MINE(0) | MFS_LOCK_HELD, 5);
	ck_assert_uint_eq(MFS_LOCK_MINE(1) | MFS_LOCK_WAITERS, 10);
	ck_assert_uint_eq(MFS_LOCK_SLOT(MFS_LOCK_MINE(239) | 1u), 239);
	ck_assert_uint_eq(MFS_LOCK_STATE(MFS_LOCK_MINE(7) | 2u), 2);
	ck_assert_uint_ge(MFS_LOCK_SLOT(1u), MFS_SLOTS); /* no slot: dead */
}
END_TEST

/* ------------------------------------------------------------ document */

START_TEST(doc_header_table)
{
	char *text = read_doc(), msg[512];
	struct doc d;
	int bad;

	parse_doc(text, &d);
	ck_assert_msg(d.err[0] == '\0', "FORMAT.md: %s", d.err);
	ck_assert_int_ge(d.nhdr, (int)NELEM(hdr_fields));
	bad = compare(d.hdr, d.nhdr, hdr_fields, NELEM(hdr_fields),
	              sizeof(struct mfs_header), msg, sizeof msg);
	ck_assert_msg(bad == 0, "FORMAT.md, struct mfs_header: %d problem(s); %s", bad, msg);
	free(text);
}
END_TEST

START_TEST(doc_slot_table)
{
	char *text = read_doc(), msg[512];
	struct doc d;
	int bad;

	parse_doc(text, &d);
	ck_assert_msg(d.err[0] == '\0', "FORMAT.md: %s", d.err);
	ck_assert_int_eq(d.nslot, (int)NELEM(slot_fields));
	bad = compare(d.slot, d.nslot, slot_fields, NELEM(slot_fields),
	              sizeof(struct mfs_slot), msg, sizeof msg);
	ck_assert_msg(bad == 0, "FORMAT.md, struct mfs_slot: %d problem(s); %s", bad, msg);
	free(text);
}
END_TEST

/* The constants a reader needs are spelled out, with these values. */
START_TEST(doc_constants)
{
	char *text = read_doc(), want[64];

	snprintf(want, sizeof want, "0x%016llx", (unsigned long long)MFS_MAGIC);
	ck_assert_msg(strstr(text, want), "FORMAT.md lacks the magic %s", want);
	snprintf(want, sizeof want, "0x%016llx", (unsigned long long)MFS_MAGIC_SWAPPED);
	ck_assert_msg(strstr(text, want), "FORMAT.md lacks the swapped magic %s", want);
	snprintf(want, sizeof want, "0x%08x", MFS_LAYOUT);
	ck_assert_msg(strstr(text, want), "FORMAT.md lacks the layout word %s", want);
	ck_assert(strstr(text, "MFSHARE1"));
	ck_assert(strstr(text, "F_OFD_GETLK"));
	ck_assert(strstr(text, "256 + 16"));
	ck_assert(strstr(text, "## Compatibility"));
	free(text);
}
END_TEST

/* The comparison catches a wrong offset, a missing row, an unknown row and
 * a gap: proof that the two tests above can fail. */
START_TEST(doc_checker_catches_errors)
{
	const char *good =
		"## Header (struct mfs_slot)\n\n"
		"| offset | size | name | meaning |\n|---:|---:|---|---|\n"
		"| 0 | 4 | `pid` | a \\| b |\n| 4 | 4 | `tid` | x |\n| 8 | 8 | `start` | y |\n";
	const char *cases[] = {
		/* wrong offset */
		"## (struct mfs_slot)\n| offset | size | name | meaning |\n|---|---|---|---|\n"
		"| 0 | 4 | `pid` | a |\n| 5 | 4 | `tid` | x |\n| 8 | 8 | `start` | y |\n",
		/* wrong size */
		"## (struct mfs_slot)\n| offset | size | name | meaning |\n|---|---|---|---|\n"
		"| 0 | 4 | `pid` | a |\n| 4 | 4 | `tid` | x |\n| 8 | 4 | `start` | y |\n",
		/* missing field */
		"## (struct mfs_slot)\n| offset | size | name | meaning |\n|---|---|---|---|\n"
		"| 0 | 4 | `pid` | a |\n| 8 | 8 | `start` | y |\n",
		/* a field the struct lacks */
		"## (struct mfs_slot)\n| offset | size | name | meaning |\n|---|---|---|---|\n"
		"| 0 | 4 | `pid` | a |\n| 4 | 4 | `tid` | x |\n| 8 | 8 | `start` | y |\n"
		"| 16 | 4 | `extra` | z |\n",
		/* a field twice */
		"## (struct mfs_slot)\n| offset | size | name | meaning |\n|---|---|---|---|\n"
		"| 0 | 4 | `pid` | a |\n| 4 | 4 | `tid` | x |\n| 4 | 4 | `tid` | x |\n"
		"| 8 | 8 | `start` | y |\n",
	};
	char msg[512];
	struct doc d;
	size_t i;

	parse_doc(good, &d);
	ck_assert_str_eq(d.err, "");
	ck_assert_int_eq(d.nslot, 3);
	ck_assert_int_eq(d.nhdr, 0);
	ck_assert_int_eq(compare(d.slot, d.nslot, slot_fields, 3, 16, msg, sizeof msg), 0);
	for (i = 0; i < NELEM(cases); i++) {
		parse_doc(cases[i], &d);
		ck_assert_str_eq(d.err, "");
		ck_assert_msg(compare(d.slot, d.nslot, slot_fields, 3, 16, msg, sizeof msg) > 0,
		              "case %zu not caught", i);
		ck_assert(msg[0] != '\0');
	}
	/* A row that does not parse, and a fields table in no known section. */
	parse_doc("## (struct mfs_slot)\n| offset | size | name | meaning |\n|---|---|---|---|\n"
	          "| zero | 4 | `pid` | a |\n", &d);
	ck_assert(d.err[0] != '\0');
	parse_doc("## Other\n| offset | size | name | meaning |\n|---|---|---|---|\n"
	          "| 0 | 4 | `pid` | a |\n", &d);
	ck_assert(d.err[0] != '\0');
}
END_TEST

/* ------------------------------------------------------------ segment */

START_TEST(segment_raw_bytes)
{
	const char *key = mt_key("fmt");
	mfs_segment *seg = NULL;
	unsigned char *b;
	size_t len, i;
	struct stat st;
	uint64_t dsz, doff, page = (uint64_t)sysconf(_SC_PAGESIZE);

	ck_assert_int_eq(mfs_create(key, 10000, &fopts, &seg), 0);
	ck_assert_int_eq(stat(mfs_native_key(seg), &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0600);
	b = file_bytes(mfs_native_key(seg), &len);

	if (little_endian())
		ck_assert(memcmp(b, "MFSHARE1", 8) == 0);
	ck_assert(rd64(b, 0) == MFS_MAGIC);
	ck_assert_uint_eq(rd32(b, 8), 1);
	ck_assert_uint_eq(rd32(b, 12), 0x00100004u);
	doff = rd64(b, 16);
	dsz = rd64(b, 24);
	ck_assert_uint_eq(doff, page > 4096 ? page : 4096); /* 4096 with 4 KiB pages */
	ck_assert_uint_ge(dsz, 10000);
	ck_assert_uint_eq(dsz % 4096, 0);
	ck_assert_uint_eq(dsz % page, 0);
	ck_assert_uint_eq(dsz, mfs_size(seg));
	ck_assert_uint_eq(rd64(b, 32), doff + dsz);
	ck_assert_uint_eq(rd64(b, 32), (uint64_t)len);
	ck_assert_uint_eq(rd32(b, 40), 1);                 /* READY */
	ck_assert_uint_eq(rd32(b, 44), (uint32_t)geteuid());
	ck_assert_uint_eq(rd32(b, 48), (uint32_t)getpid());
	ck_assert_uint_eq(rd32(b, 52), 240);
	ck_assert_uint_eq(rd64(b, 56), my_start());
	ck_assert_uint_ne(rd64(b, 56), 0);
	ck_assert_uint_eq(rd32(b, 64), 1);                 /* attach_count */
	ck_assert_uint_eq(rd32(b, 68), 1);                 /* slot_high */
	ck_assert_uint_eq(rd32(b, 128), 0);                /* lock free */
	ck_assert_uint_eq(rd32(b, 132), 0);
	ck_assert_uint_eq(rd32(b, 136), 0);
	ck_assert_uint_eq(rd32(b, 140), 0);
	ck_assert_uint_eq(rd32(b, 192), 0);                /* seq */
	ck_assert_uint_eq(rd32(b, 196), 0);
	/* slot 0: the creator */
	ck_assert_uint_eq(rd32(b, 256), (uint32_t)getpid());
	ck_assert_uint_eq(rd32(b, 260), (uint32_t)my_tid());
	ck_assert_uint_eq(rd64(b, 264), rd64(b, 56));
	/* reserved ranges and unused slots are zero; so is the data */
	for (i = 72; i < 128; i++)
		ck_assert_uint_eq(b[i], 0);
	for (i = 144; i < 192; i++)
		ck_assert_uint_eq(b[i], 0);
	for (i = 200; i < 256; i++)
		ck_assert_uint_eq(b[i], 0);
	for (i = 256 + 16; i < 4096; i++)
		ck_assert_uint_eq(b[i], 0);
	for (i = 4096; i < len; i++)
		ck_assert_uint_eq(b[i], 0);
	free(b);
	ck_assert_int_eq(mfs_detach(seg), 0);
}
END_TEST

START_TEST(segment_stat_agrees)
{
	const char *key = mt_key("fmt");
	mfs_segment *seg = NULL;
	mfs_stat st, si;
	unsigned char *b;
	size_t len;

	ck_assert_int_eq(mfs_create(key, 5000, &fopts, &seg), 0);
	ck_assert_int_eq(mfs_notify(seg), 0);
	ck_assert_int_eq(mfs_notify(seg), 0);
	ck_assert_int_eq(mfs_lock(seg), 0);
	b = file_bytes(mfs_native_key(seg), &len);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_int_eq(mfs_inspect(key, &fopts, &si), 0);

	ck_assert_uint_eq(st.version, rd32(b, 8));
	ck_assert_uint_eq(st.size, rd64(b, 24));
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_int_eq(st.locked, 1);
	ck_assert_int_eq(st.lock_owner, (long)rd32(b, 136));
	ck_assert_int_eq(st.lock_owner, (long)getpid());
	ck_assert_uint_eq(st.seq, rd32(b, 192));
	ck_assert_uint_eq(st.seq, 2);
	ck_assert_uint_eq(st.state, rd32(b, 40));
	ck_assert_uint_eq(st.header_size, 4096);
	ck_assert_uint_eq(st.data_offset, rd64(b, 16));
	ck_assert_uint_eq(st.file_size, (uint64_t)len);
	ck_assert_uint_eq(st.creator_uid, rd32(b, 44));
	ck_assert_int_eq(st.creator_pid, (long)rd32(b, 48));
	ck_assert_uint_eq(st.creator_start, rd64(b, 56));
	ck_assert_uint_eq(st.attach_count, rd32(b, 64));
	ck_assert_uint_eq(st.slot_count, rd32(b, 52));
	ck_assert_uint_eq(st.slot_high, rd32(b, 68));
	ck_assert_uint_eq(st.dead_slots, 0);
	ck_assert_uint_eq(st.lock_word, rd32(b, 128));
	ck_assert_uint_eq(st.lock_word, MFS_LOCK_MINE(0) | MFS_LOCK_HELD);
	ck_assert_int_eq(st.lock_owner_tid, (long)rd32(b, 140));
	ck_assert_int_eq(st.lock_owner_tid, my_tid());
	ck_assert_int_eq(st.lock_owner_alive, 1);
	ck_assert_uint_eq(st.lock_waiters, rd32(b, 132));
	ck_assert_uint_eq(st.seq_waiters, rd32(b, 196));
	ck_assert_uint_eq(st.uid, (uint32_t)geteuid());
	ck_assert_uint_eq(st.mode, 0600);

	/* inspect (no attachment) reads the same header */
	ck_assert_uint_eq(si.version, st.version);
	ck_assert_uint_eq(si.size, st.size);
	ck_assert_uint_eq(si.refcount, 1);
	ck_assert_int_eq(si.locked, 1);
	ck_assert_int_eq(si.lock_owner, st.lock_owner);
	ck_assert_uint_eq(si.seq, st.seq);
	ck_assert_uint_eq(si.state, 1);
	ck_assert_uint_eq(si.data_offset, st.data_offset);
	ck_assert_uint_eq(si.creator_start, st.creator_start);
	ck_assert_uint_eq(si.lock_word, st.lock_word);
	ck_assert_int_eq(si.lock_owner_alive, 1);
	free(b);

	ck_assert_int_eq(mfs_unlock(seg), 0);
	b = file_bytes(mfs_native_key(seg), &len);
	ck_assert_uint_eq(rd32(b, 128), 0);
	ck_assert_uint_eq(rd32(b, 136), 0);
	ck_assert_uint_eq(rd32(b, 140), 0);
	ck_assert_int_eq(mfs_stat_segment(seg, &st), 0);
	ck_assert_int_eq(st.locked, 0);
	ck_assert_int_eq(st.lock_owner, 0);
	ck_assert_int_eq(st.lock_owner_alive, -1);
	free(b);
	ck_assert_int_eq(mfs_detach(seg), 0);
}
END_TEST

/* Tokens: slot i's OFD lock at byte 256 + 16 i while attached; the gate
 * free at rest; a second attachment fills slot 1 and the lock word names
 * its slot. */
START_TEST(segment_tokens_and_slots)
{
	const char *key = mt_key("fmt");
	mfs_segment *a = NULL, *c = NULL;
	unsigned char *b;
	char path[4096];
	size_t len;

	ck_assert_int_eq(mfs_create(key, 4096, &fopts, &a), 0);
	snprintf(path, sizeof path, "%s", mfs_native_key(a));
	ck_assert_int_eq(byte_locked(path, 256), 1);
	ck_assert_int_eq(byte_locked(path, 272), 0);
	ck_assert_int_eq(byte_locked(path, 0), 0);

	ck_assert_int_eq(mfs_attach(key, &fopts, &c), 0);
	ck_assert_int_eq(byte_locked(path, 272), 1);
	ck_assert_int_eq(byte_locked(path, 0), 0);
	b = file_bytes(path, &len);
	ck_assert_uint_eq(rd32(b, 64), 2);
	ck_assert_uint_eq(rd32(b, 68), 2);
	ck_assert_uint_eq(rd32(b, 272), (uint32_t)getpid());
	ck_assert_uint_eq(rd32(b, 276), (uint32_t)my_tid());
	ck_assert_uint_eq(rd64(b, 280), my_start());
	free(b);

	ck_assert_int_eq(mfs_lock(c), 0);
	b = file_bytes(path, &len);
	ck_assert_uint_eq(rd32(b, 128), (2u << 2) | 1u); /* slot 1, held */
	free(b);
	ck_assert_int_eq(mfs_unlock(c), 0);

	ck_assert_int_eq(mfs_detach(c), 0);
	ck_assert_int_eq(byte_locked(path, 272), 0);
	b = file_bytes(path, &len);
	ck_assert_uint_eq(rd32(b, 272), 0);    /* cleanly detached */
	ck_assert_uint_eq(rd32(b, 64), 1);     /* recounted */
	ck_assert_uint_eq(rd32(b, 68), 2);     /* never lowered */
	ck_assert_uint_eq(rd32(b, 40), 1);
	free(b);
	ck_assert_int_eq(mfs_detach(a), 0);
	ck_assert_int_eq(access(path, F_OK), -1); /* last detach removed it */
}
END_TEST

struct child_arg {
	const char *key;
};

static int attach_and_die(void *p)
{
	struct child_arg *ca = p;
	mfs_segment *s = NULL;

	if (mfs_attach(ca->key, &fopts, &s) != 0)
		return 1;
	return 0; /* _exit without detaching */
}

/* A dead attacher: its slot keeps its pid, its token is free, and the
 * counts in the file differ from the truth in exactly the documented way. */
START_TEST(segment_dead_attacher)
{
	const char *key = mt_key("fmt");
	struct child_arg ca;
	mfs_segment *a = NULL;
	unsigned char *b;
	mfs_stat st;
	size_t len;
	pid_t pid;

	ck_assert_int_eq(mfs_create(key, 4096, &fopts, &a), 0);
	ca.key = key;
	pid = mt_spawn(attach_and_die, &ca);
	ck_assert_int_gt(pid, 0);
	ck_assert_int_eq(mt_wait(pid, 5000), 0);
	ck_assert_int_eq(byte_locked(mfs_native_key(a), 272), 0);
	b = file_bytes(mfs_native_key(a), &len);
	ck_assert_uint_eq(rd32(b, 272), (uint32_t)pid);
	ck_assert_uint_eq(rd32(b, 64), 2); /* advisory: not subtracted */
	ck_assert_uint_eq(rd32(b, 68), 2);
	free(b);
	ck_assert_int_eq(mfs_stat_segment(a, &st), 0);
	ck_assert_uint_eq(st.refcount, 1);
	ck_assert_uint_eq(st.dead_slots, 1);
	ck_assert_uint_eq(st.attach_count, 2);
	ck_assert_int_eq(mfs_detach(a), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("format");
	TCase *tc;

	tc = tcase_create("struct");
	tcase_add_test(tc, struct_size_and_slots);
	tcase_add_test(tc, struct_magic_layout_lockword);
	suite_add_tcase(s, tc);

	tc = tcase_create("document");
	tcase_add_test(tc, doc_header_table);
	tcase_add_test(tc, doc_slot_table);
	tcase_add_test(tc, doc_constants);
	tcase_add_test(tc, doc_checker_catches_errors);
	suite_add_tcase(s, tc);

	tc = tcase_create("segment");
	tcase_add_unchecked_fixture(tc, file_setup, file_teardown);
	tcase_set_timeout(tc, 20);
	tcase_add_test(tc, segment_raw_bytes);
	tcase_add_test(tc, segment_stat_agrees);
	tcase_add_test(tc, segment_tokens_and_slots);
	tcase_add_test(tc, segment_dead_attacher);
	suite_add_tcase(s, tc);
	return mt_run(s);
}
