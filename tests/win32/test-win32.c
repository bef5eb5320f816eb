/* SPDX-License-Identifier: MIT */
/*
 * The Windows test program (Check is not available for mingw-w64): one
 * executable that is both the test driver and, started again by itself
 * with CreateProcess ("child CMD KEY ..."), the peer processes the
 * multi-process tests need.  make check runs it (under Wine when
 * cross-compiling: tests/win32/run.sh).  Every test prints "PASS name" or
 * "FAIL name: ..." lines; the exit status is the number of failures.
 *
 * Wine (8.0) differences found (see README, "Windows"):
 *  - Wine refuses the POSIX-semantics delete (FileDispositionInfoEx:
 *    ERROR_INVALID_PARAMETER), so under Wine remove_mapped and every last
 *    detach free the name by the rename-then-delete path; on Windows 10
 *    the POSIX delete does it.  A plain delete of a mapped file is refused
 *    by both (ERROR_ACCESS_DENIED), as the design expects.
 *  - Wine does not implement FileAllocationInfo: the size is set without
 *    reserving the clusters (nothing here can test a full disk anyway).
 *  - Wine's wineserver releases a killed process's LockFileEx locks once
 *    it sees the process gone (20-40 ms here); Windows releases them when
 *    it closes the dead process's handles, also possibly a little later.
 *    owner_death checks the contract's 200 ms with slack (1 s) for loaded
 *    CI machines and prints the time it measured.
 *  - Process ids are small and quickly reused under Wine.
 */
#include <mfshare.h>

#include <windows.h>

#include <io.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int failures;
static char prefix[64];
static wchar_t self_path[MAX_PATH];

#define CHECK(cond, ...)                                                      \
	do {                                                                      \
		if (!(cond)) {                                                        \
			printf("FAIL %s:%d: %s: ", __func__, __LINE__, #cond);            \
			printf(__VA_ARGS__);                                              \
			printf(" [last error: %s]\n", mfs_last_error());                  \
			failures++;                                                       \
			ok = 0;                                                           \
		}                                                                     \
	} while (0)

#define EQ(a, b) CHECK((a) == (b), "%s = %lld, expected %lld", #a, (long long)(a), \
                       (long long)(b))

static void key_of(char *buf, size_t len, const char *name)
{
	snprintf(buf, len, "%s-%s", prefix, name);
}

static uint64_t now_ms(void)
{
	return GetTickCount64();
}

/* Start this program as "child CMD ARG..."; returns the process handle. */
static HANDLE spawn(const char *cmd, const char *a1, const char *a2)
{
	wchar_t line[1024];
	STARTUPINFOW si;
	PROCESS_INFORMATION pi;

	_snwprintf(line, 1024, L"\"%ls\" child %hs %hs %hs", self_path, cmd,
	           a1 ? a1 : "-", a2 ? a2 : "-");
	line[1023] = 0;
	memset(&si, 0, sizeof si);
	si.cb = sizeof si;
	if (!CreateProcessW(self_path, line, NULL, NULL, FALSE, 0, NULL, NULL, &si, &pi)) {
		printf("CreateProcess failed: %lu\n", (unsigned long)GetLastError());
		return NULL;
	}
	CloseHandle(pi.hThread);
	return pi.hProcess;
}

static int wait_exit(HANDLE p, DWORD ms)
{
	DWORD code = 999;

	if (!p)
		return -1;
	if (WaitForSingleObject(p, ms) != WAIT_OBJECT_0) {
		TerminateProcess(p, 99);
		WaitForSingleObject(p, 5000);
		CloseHandle(p);
		return -2;
	}
	GetExitCodeProcess(p, &code);
	CloseHandle(p);
	return (int)code;
}

/* The shared layout the tests use in a segment's data. */
struct shared {
	volatile LONG flag;      /* child -> parent: "I am ready" */
	volatile LONG go;        /* parent -> child */
	volatile LONG counter;   /* the lock test's counter (plain ++ under the lock) */
	volatile LONG result;
	volatile LONG busy;      /* trylocks that found the lock held: overlap */
	volatile uint32_t seen;
	unsigned char pattern[256];
};

static int wait_flag(volatile LONG *f, LONG v, DWORD ms)
{
	uint64_t end = now_ms() + ms;

	while (*f != v) {
		if (now_ms() > end)
			return -1;
		Sleep(1);
	}
	return 0;
}

/* ------------------------------------------------------------ children */

static int child(int argc, char **argv)
{
	const char *cmd = argv[2], *key = argv[3];
	mfs_segment *seg;
	struct shared *sh;
	int r, i;

	(void)argc;
	if (strcmp(cmd, "open") == 0) { /* the mfs_open race: exit 100 + created */
		int created = -1;
		HANDLE ev = OpenEventA(SYNCHRONIZE, FALSE, argv[4]);
		if (!ev || WaitForSingleObject(ev, 30000) != WAIT_OBJECT_0)
			return 9;
		if (mfs_open(key, 4096, NULL, &seg, &created) != 0)
			return 10;
		sh = mfs_data(seg);
		InterlockedIncrement(&sh->flag);
		while (sh->go == 0) /* stay attached until all have opened */
			Sleep(1);
		mfs_detach(seg);
		return 100 + created;
	}
	if (strcmp(cmd, "hold") == 0) { /* attach, then stay until killed */
		if (mfs_attach(key, NULL, &seg) != 0)
			return 10;
		sh = mfs_data(seg);
		InterlockedIncrement(&sh->flag);
		for (;;)
			Sleep(1000);
	}
	if (strcmp(cmd, "create-hold") == 0) { /* create, then stay until killed */
		if (mfs_create(key, 4096, NULL, &seg) != 0)
			return 10;
		for (;;)
			Sleep(1000);
	}
	if ((r = mfs_attach(key, NULL, &seg)) != 0) {
		fprintf(stderr, "child %s: attach %s: %s\n", cmd, key, mfs_last_error());
		return 10;
	}
	sh = mfs_data(seg);
	if (strcmp(cmd, "verify") == 0) { /* check the parent's bytes, answer */
		for (i = 0; i < 256; i++)
			if (sh->pattern[i] != (unsigned char)(i * 7 + 3))
				return 11;
		sh->result = 4242;
		mfs_detach(seg);
		return 0;
	}
	if (strcmp(cmd, "count") == 0) { /* the mutual exclusion test */
		int n = atoi(argv[4]);
		InterlockedIncrement(&sh->flag);
		while (!sh->go)
			Sleep(1);
		for (i = 0; i < n; i++) {
			LONG v;
			if ((r = mfs_trylock(seg)) == MFS_E_BUSY) {
				InterlockedIncrement(&sh->busy);
				r = mfs_lock(seg);
			}
			if (r != 0)
				return 12;
			v = sh->counter;
			if (i % 4 == 0)
				Sleep(0); /* invite a race the lock must prevent */
			sh->counter = v + 1;
			if (mfs_unlock(seg) != 0)
				return 13;
		}
		mfs_detach(seg);
		return 0;
	}
	if (strcmp(cmd, "lock-hold") == 0) { /* take the lock and die holding it */
		if (mfs_lock(seg) != 0)
			return 12;
		InterlockedIncrement(&sh->flag);
		for (;;)
			Sleep(1000);
	}
	if (strcmp(cmd, "trylock") == 0) { /* the parent holds the lock */
		uint64_t t0;
		if ((r = mfs_trylock(seg)) != MFS_E_BUSY)
			return 20;
		if ((r = mfs_timedlock(seg, 0)) != MFS_E_TIMEOUT)
			return 21;
		t0 = now_ms();
		if ((r = mfs_timedlock(seg, 150)) != MFS_E_TIMEOUT)
			return 22;
		if (now_ms() - t0 < 140 || now_ms() - t0 > 2000)
			return 23;
		InterlockedIncrement(&sh->flag); /* the parent now unlocks */
		if ((r = mfs_timedlock(seg, 10000)) != 0)
			return 24;
		mfs_unlock(seg);
		mfs_detach(seg);
		return 0;
	}
	if (strcmp(cmd, "wait") == 0) { /* sleep in mfs_wait until notified */
		uint32_t seen = 0;
		mfs_stat st;
		mfs_stat_segment(seg, &st);
		seen = st.seq;
		InterlockedIncrement(&sh->flag);
		r = mfs_wait(seg, &seen, 10000);
		if (r != 0)
			return 30;
		sh->seen = seen;
		InterlockedIncrement(&sh->result);
		mfs_detach(seg);
		return 0;
	}
	return 2;
}

/* ------------------------------------------------------------ tests */

static int t_lifecycle(void)
{
	char key[128];
	mfs_segment *a, *b, *c;
	mfs_stat st;
	unsigned char *p;
	size_t i;
	int ok = 1, created = -1, zero = 1;

	key_of(key, sizeof key, "life");
	EQ(mfs_create(key, 5000, NULL, &a), 0);
	if (!a)
		return 0;
	CHECK(mfs_size(a) >= 5000, "size %zu", mfs_size(a));
	p = mfs_data(a);
	CHECK(((uintptr_t)p & 4095) == 0, "data %p not page-aligned", (void *)p);
	for (i = 0; i < mfs_size(a); i++)
		if (p[i])
			zero = 0;
	CHECK(zero, "new data not zeroed");
	EQ(mfs_fd(a), -1);
	CHECK(mfs_native_key(a) && strstr(mfs_native_key(a), "\\mfshare\\m-"),
	      "native key %s", mfs_native_key(a) ? mfs_native_key(a) : "(null)");
	CHECK(mfs_key(a) && strcmp(mfs_key(a), key) == 0, "key");
	EQ(mfs_create(key, 5000, NULL, &b), MFS_E_EXISTS);
	CHECK(b == NULL, "out not NULL on failure");
	EQ(mfs_attach(key, NULL, &b), 0);
	if (!b)
		return 0;
	strcpy(mfs_data(a), "hello from a");
	CHECK(strcmp(mfs_data(b), "hello from a") == 0, "b does not see a's write");
	EQ(mfs_inspect(key, NULL, &st), 0);
	EQ(st.refcount, 2);
	EQ(st.version, 1);
	EQ(mfs_open(key, 100, NULL, &c, &created), 0);
	EQ(created, 0);
	EQ(mfs_size(c), mfs_size(a));
	EQ(mfs_detach(c), 0);
	EQ(mfs_detach(b), 0);
	EQ(mfs_inspect(key, NULL, &st), 0);
	EQ(st.refcount, 1);
	EQ(mfs_detach(a), 0);
	/* The last detach removed it: the name is free at once. */
	EQ(mfs_inspect(key, NULL, &st), MFS_E_NOT_FOUND);
	EQ(mfs_attach(key, NULL, &b), MFS_E_NOT_FOUND);
	EQ(mfs_open(key, 100, NULL, &a, &created), 0);
	EQ(created, 1);
	CHECK(a && ((unsigned char *)mfs_data(a))[0] == 0, "recreated not zeroed");
	/* remove: the name goes now, attachments keep working. */
	EQ(mfs_remove(key, NULL), 0);
	EQ(mfs_attach(key, NULL, &b), MFS_E_NOT_FOUND);
	if (a) {
		strcpy(mfs_data(a), "still mapped");
		CHECK(strcmp(mfs_data(a), "still mapped") == 0, "write after remove");
		EQ(mfs_lock(a), 0);
		EQ(mfs_unlock(a), 0);
	}
	EQ(mfs_create(key, 4096, NULL, &b), 0); /* a new one under the name */
	EQ(mfs_detach(b), 0);
	EQ(mfs_detach(a), 0);
	EQ(mfs_detach(NULL), 0);
	/* Read-only data: the header still works (lock, notify). */
	EQ(mfs_create(key, 4096, NULL, &a), 0);
	{
		mfs_options ro = { 0 };
		MEMORY_BASIC_INFORMATION mi;
		ro.flags = MFS_READ_ONLY;
		EQ(mfs_attach(key, &ro, &b), 0);
		if (b) {
			EQ(mfs_lock(b), 0);
			EQ(mfs_unlock(b), 0);
			EQ(mfs_notify(b), 0);
			CHECK(VirtualQuery(mfs_data(b), &mi, sizeof mi) && mi.Protect == PAGE_READONLY,
			      "read-only data is not PAGE_READONLY (0x%lx)", (unsigned long)mi.Protect);
			EQ(mfs_detach(b), 0);
		}
	}
	EQ(mfs_detach(a), 0);
	return ok;
}

/* Files in the directory of @native (our segments' and leftovers). */
static int files_in_dir_of(const char *native)
{
	char pat[4400];
	WIN32_FIND_DATAA fd;
	HANDLE f;
	int n = 0;

	snprintf(pat, sizeof pat, "%s", native);
	if (!strrchr(pat, '\\'))
		return -1;
	strcpy(strrchr(pat, '\\') + 1, "*");
	f = FindFirstFileA(pat, &fd);
	if (f == INVALID_HANDLE_VALUE)
		return 0;
	do
		if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY))
			n++;
	while (FindNextFileA(f, &fd));
	FindClose(f);
	return n;
}

/* Removed while two processes' handles map it: the name goes at once, a
 * new segment can take it, and the old file is deleted by the last
 * detach (no ".dead" leftover). */
static int t_remove_mapped(void)
{
	char key[128], native[4400];
	mfs_segment *a, *b, *c;
	int ok = 1, before;

	key_of(key, sizeof key, "rm");
	EQ(mfs_create(key, 4096, NULL, &a), 0);
	if (!a)
		return 0;
	snprintf(native, sizeof native, "%s", mfs_native_key(a));
	before = files_in_dir_of(native);
	EQ(mfs_attach(key, NULL, &b), 0);
	EQ(mfs_remove(key, NULL), 0);
	CHECK(GetFileAttributesA(native) == INVALID_FILE_ATTRIBUTES, "%s still exists", native);
	EQ(mfs_attach(key, NULL, &c), MFS_E_NOT_FOUND);
	EQ(mfs_create(key, 4096, NULL, &c), 0);
	strcpy(mfs_data(a), "old");
	CHECK(b && strcmp(mfs_data(b), "old") == 0, "the removed segment stopped working");
	CHECK(c && ((char *)mfs_data(c))[0] == 0, "the new segment is not new");
	EQ(mfs_detach(b), 0);
	EQ(mfs_detach(a), 0);
	EQ(files_in_dir_of(native), before); /* the old file is gone, the new one stays */
	EQ(mfs_detach(c), 0);
	EQ(files_in_dir_of(native), before - 1);
	return ok;
}

#define NOPEN 4

/* Many processes mfs_open one key at once: one segment, one creator. */
static int t_open_race(void)
{
	char key[128], evname[64];
	HANDLE p[NOPEN], ev;
	mfs_segment *s;
	struct shared *sh;
	int ok = 1, i, creators = 0, rc;

	key_of(key, sizeof key, "race");
	snprintf(evname, sizeof evname, "%s-go", prefix);
	ev = CreateEventA(NULL, TRUE, FALSE, evname);
	for (i = 0; i < NOPEN; i++)
		p[i] = spawn("open", key, evname);
	Sleep(300); /* let them all reach the event */
	SetEvent(ev);
	s = NULL;
	{
		uint64_t t0 = now_ms();
		while (mfs_attach(key, NULL, &s) != 0 && now_ms() - t0 < 30000)
			Sleep(1);
	}
	CHECK(s != NULL, "never attached");
	if (s) {
		sh = mfs_data(s);
		CHECK(wait_flag(&sh->flag, NOPEN, 30000) == 0, "only %ld opened", (long)sh->flag);
		sh->go = 1;
	}
	for (i = 0; i < NOPEN; i++) {
		rc = wait_exit(p[i], 30000);
		CHECK(rc == 100 || rc == 101, "child exit %d", rc);
		creators += rc == 101;
	}
	EQ(creators, 1);
	CloseHandle(ev);
	EQ(mfs_detach(s), 0);
	return ok;
}

static int t_backends(void)
{
	mfs_options o = { 0 };
	mfs_segment *s;
	char key[128], dir[MAX_PATH], path[4400], buf[4400];
	int ok = 1;

	key_of(key, sizeof key, "be");
	o.backend = MFS_BACKEND_SHM;
	EQ(mfs_create(key, 4096, &o, &s), MFS_E_NOT_SUPPORTED);
	o.backend = MFS_BACKEND_RUNTIME_DIR;
	EQ(mfs_create(key, 4096, &o, &s), MFS_E_NOT_SUPPORTED);
	o.backend = MFS_BACKEND_MEMFD;
	EQ(mfs_create(key, 4096, &o, &s), MFS_E_NOT_SUPPORTED);
	o.backend = MFS_BACKEND_FILE;
	EQ(mfs_create(key, 4096, &o, &s), MFS_E_INVALID);
	/* FILE with a directory of our own. */
	GetTempPathA(sizeof dir, dir);
	snprintf(path, sizeof path, "%s%s-dir", dir, prefix);
	CreateDirectoryA(path, NULL);
	o.dir = path;
	EQ(mfs_create(key, 4096, &o, &s), 0);
	if (s) {
		mfs_segment *t;
		CHECK(strncmp(mfs_native_key(s), path, strlen(path)) == 0, "native %s",
		      mfs_native_key(s));
		EQ(mfs_attach(key, &o, &t), 0);
		if (t)
			EQ(mfs_detach(t), 0);
		EQ(mfs_attach(key, NULL, &t), MFS_E_NOT_FOUND); /* not in TEMPFILE's dir */
		EQ(mfs_locator(s, buf, sizeof buf), 0);
		CHECK(strncmp(buf, "file:", 5) == 0, "locator %s", buf);
		EQ(mfs_attach_locator(buf, NULL, &t), 0);
		if (t) {
			mfs_stat st;
			EQ(mfs_stat_segment(t, &st), 0);
			EQ(st.refcount, 2);
			EQ(mfs_detach(t), 0);
		}
		{ /* a descriptor of its own file object, attached by descriptor */
			int fd = -1;
			EQ(mfs_export_fd(s, 1, &fd), MFS_E_NOT_SUPPORTED);
			EQ(mfs_export_fd(s, 0, &fd), 0);
			EQ(mfs_attach_fd(fd, NULL, &t), 0);
			if (t) {
				mfs_stat st;
				CHECK(mfs_key(t) && strcmp(mfs_key(t), key) == 0, "key %s",
				      mfs_key(t) ? mfs_key(t) : "(null)");
				EQ(mfs_stat_segment(t, &st), 0);
				EQ(st.refcount, 2);
				EQ(mfs_detach(t), 0);
			}
			_close(fd);
			EQ(mfs_attach_fd(fd, NULL, &t), MFS_E_INVALID);
			EQ(mfs_reap(key, &o), MFS_E_BUSY); /* live: never reaped */
		}
		EQ(mfs_spawn(s, "x", (char *[]){ "x", NULL }, NULL, -1, NULL), MFS_E_NOT_SUPPORTED);
		EQ(mfs_send(0, s), MFS_E_NOT_SUPPORTED);
		EQ(mfs_recv(0, NULL, 0, &t), MFS_E_NOT_SUPPORTED);
		EQ(mfs_attach_inherited(NULL, &t), MFS_E_NOT_SUPPORTED);
		EQ(mfs_detach(s), 0);
	}
	EQ(mfs_inspect(key, &o, NULL), MFS_E_INVALID);
	RemoveDirectoryA(path);
	return ok;
}

static int t_key_case(void)
{
	char k1[128], k2[128], k3[128];
	mfs_segment *a = NULL, *b = NULL, *c;
	mfs_stat st;
	int ok = 1;

	key_of(k1, sizeof k1, "Key");
	key_of(k2, sizeof k2, "key");
	key_of(k3, sizeof k3, "KEY");
	EQ(mfs_create(k1, 4096, NULL, &a), 0);
	EQ(mfs_create(k2, 4096, NULL, &b), 0); /* distinct keys: distinct segments */
	if (!a || !b)
		return 0;
	CHECK(strcmp(mfs_native_key(a), mfs_native_key(b)) != 0, "same file %s",
	      mfs_native_key(a));
	strcpy(mfs_data(a), "upper");
	strcpy(mfs_data(b), "lower");
	EQ(mfs_attach(k1, NULL, &c), 0);
	if (c) {
		CHECK(strcmp(mfs_data(c), "upper") == 0, "Key reads %s", (char *)mfs_data(c));
		EQ(mfs_detach(c), 0);
	}
	EQ(mfs_attach(k3, NULL, &c), MFS_E_NOT_FOUND);
	EQ(mfs_inspect(k1, NULL, &st), 0);
	EQ(st.refcount, 1);
	EQ(mfs_detach(a), 0);
	EQ(mfs_inspect(k1, NULL, &st), MFS_E_NOT_FOUND);
	EQ(mfs_attach(k2, NULL, &c), 0); /* "key" survived "Key"'s end */
	if (c) {
		CHECK(strcmp(mfs_data(c), "lower") == 0, "key reads %s", (char *)mfs_data(c));
		EQ(mfs_detach(c), 0);
	}
	EQ(mfs_detach(b), 0);
	/* Keys the Win32 layer would mangle: trailing dot, device names. */
	key_of(k1, sizeof k1, "x.");
	EQ(mfs_create(k1, 4096, NULL, &a), 0);
	key_of(k2, sizeof k2, "x");
	EQ(mfs_create(k2, 4096, NULL, &b), 0);
	EQ(mfs_detach(a), 0);
	EQ(mfs_detach(b), 0);
	EQ(mfs_create("CON", 4096, NULL, &a), 0);
	EQ(mfs_detach(a), 0);
	EQ(mfs_create("nul.txt", 4096, NULL, &a), 0);
	EQ(mfs_detach(a), 0);
	EQ(mfs_create("a/b", 4096, NULL, &a), MFS_E_KEY);
	/* The documented encoding (docs/FORMAT.md, "Windows"). */
	{
		mfs_options o = { 0 };
		char path[512];
		o.backend = MFS_BACKEND_FILE;
		o.dir = "C:\\d";
		EQ(mfs_native_path("aB.cD", &o, path, sizeof path), 0);
		CHECK(strcmp(path, "C:\\d\\m-ab.cd^i.mfs") == 0, "%s", path);
		EQ(mfs_native_path("KEY", &o, path, sizeof path), 0);
		CHECK(strcmp(path, "C:\\d\\m-key^7.mfs") == 0, "%s", path);
		EQ(mfs_native_path("key.", &o, path, sizeof path), 0);
		CHECK(strcmp(path, "C:\\d\\m-key..mfs") == 0, "%s", path);
	}
	return ok;
}

static int t_two_processes(void)
{
	char key[128];
	mfs_segment *s;
	struct shared *sh;
	mfs_stat st;
	HANDLE p;
	int ok = 1, i;

	key_of(key, sizeof key, "two");
	EQ(mfs_create(key, 65536, NULL, &s), 0);
	if (!s)
		return 0;
	sh = mfs_data(s);
	for (i = 0; i < 256; i++)
		sh->pattern[i] = (unsigned char)(i * 7 + 3);
	EQ(wait_exit(spawn("verify", key, NULL), 20000), 0);
	EQ(sh->result, 4242);
	/* A child attached and killed: its attachment stops counting. */
	sh->flag = 0;
	p = spawn("hold", key, NULL);
	CHECK(wait_flag(&sh->flag, 1, 20000) == 0, "child did not attach");
	EQ(mfs_stat_segment(s, &st), 0);
	EQ(st.refcount, 2);
	TerminateProcess(p, 9);
	WaitForSingleObject(p, 5000);
	CloseHandle(p);
	{
		uint64_t t0 = now_ms();
		do {
			mfs_stat_segment(s, &st);
		} while (st.refcount != 1 && now_ms() - t0 < 2000 && (Sleep(5), 1));
		EQ(st.refcount, 1);
		printf("  refcount dropped %llu ms after the child's death\n",
		       (unsigned long long)(now_ms() - t0));
	}
	EQ(mfs_detach(s), 0);
	/* A segment whose only attacher was killed is stale: absent to
	 * attach, replaced by create. */
	p = spawn("create-hold", key, NULL);
	{
		uint64_t t0 = now_ms();
		while (mfs_inspect(key, NULL, &st) != 0 && now_ms() - t0 < 20000)
			Sleep(5);
	}
	EQ(mfs_inspect(key, NULL, &st), 0);
	TerminateProcess(p, 9);
	WaitForSingleObject(p, 5000);
	CloseHandle(p);
	{
		uint64_t t0 = now_ms();
		while (mfs_attach(key, NULL, &s) != MFS_E_NOT_FOUND && now_ms() - t0 < 2000) {
			if (s)
				mfs_detach(s);
			Sleep(5);
		}
	}
	EQ(mfs_attach(key, NULL, &s), MFS_E_NOT_FOUND);
	EQ(mfs_create(key, 4096, NULL, &s), 0);
	EQ(mfs_detach(s), 0);
	return ok;
}

#define NCHILD 3
#define NITER 3000

static int t_lock_exclusion(void)
{
	char key[128], n[16];
	mfs_segment *s;
	struct shared *sh;
	HANDLE p[NCHILD];
	int ok = 1, i;

	key_of(key, sizeof key, "mutex");
	EQ(mfs_create(key, 4096, NULL, &s), 0);
	if (!s)
		return 0;
	sh = mfs_data(s);
	snprintf(n, sizeof n, "%d", NITER);
	for (i = 0; i < NCHILD; i++)
		p[i] = spawn("count", key, n);
	CHECK(wait_flag(&sh->flag, NCHILD, 30000) == 0, "children did not start");
	sh->go = 1;
	for (i = 0; i < NITER; i++) {
		LONG v;
		int r = mfs_trylock(s);
		if (r == MFS_E_BUSY) {
			InterlockedIncrement(&sh->busy);
			r = mfs_lock(s);
		}
		EQ(r, 0);
		v = sh->counter;
		if (i % 4 == 0)
			Sleep(0);
		sh->counter = v + 1;
		EQ(mfs_unlock(s), 0);
	}
	for (i = 0; i < NCHILD; i++)
		EQ(wait_exit(p[i], 60000), 0);
	EQ(sh->counter, (NCHILD + 1) * NITER);
	/* The processes really did compete (else the count proves nothing). */
	CHECK(sh->busy > 0, "no contention seen");
	printf("  %ld of %d lock calls found the lock held\n", (long)sh->busy,
	       (NCHILD + 1) * NITER);
	EQ(mfs_detach(s), 0);
	return ok;
}

static DWORD WINAPI unlock_other(LPVOID arg)
{
	return (DWORD)-mfs_unlock(arg);
}

static int t_trylock_timedlock(void)
{
	char key[128];
	mfs_segment *s;
	struct shared *sh;
	HANDLE p, t;
	DWORD code = 0;
	int ok = 1;

	key_of(key, sizeof key, "try");
	EQ(mfs_create(key, 4096, NULL, &s), 0);
	if (!s)
		return 0;
	sh = mfs_data(s);
	EQ(mfs_trylock(s), 0);
	EQ(mfs_lock(s), MFS_E_LOCK);         /* no self-deadlock */
	EQ(mfs_trylock(s), MFS_E_LOCK);
	t = CreateThread(NULL, 0, unlock_other, s, 0, NULL);
	WaitForSingleObject(t, INFINITE);
	GetExitCodeThread(t, &code);
	CloseHandle(t);
	EQ((int)code, -MFS_E_LOCK);          /* another thread cannot unlock */
	p = spawn("trylock", key, NULL);
	CHECK(wait_flag(&sh->flag, 1, 30000) == 0, "child did not reach its wait");
	Sleep(100);
	EQ(mfs_unlock(s), 0);
	EQ(wait_exit(p, 30000), 0);
	EQ(mfs_unlock(s), MFS_E_LOCK);
	EQ(mfs_detach(s), 0);
	return ok;
}

struct locker {
	mfs_segment *s;
	int r, ur;
	uint64_t done;
};

/* Lock (blocking), note when, unlock: the lock belongs to this thread. */
static DWORD WINAPI lock_thread(LPVOID arg)
{
	struct locker *l = arg;

	l->r = mfs_lock(l->s);
	l->done = now_ms();
	l->ur = mfs_unlock(l->s);
	return 0;
}

static int t_owner_death(void)
{
	char key[128];
	mfs_segment *s;
	struct shared *sh;
	struct locker l;
	mfs_stat st;
	uint64_t killed;
	HANDLE p, t;
	int ok = 1, r;

	key_of(key, sizeof key, "death");
	EQ(mfs_create(key, 4096, NULL, &s), 0);
	if (!s)
		return 0;
	sh = mfs_data(s);
	/* 1. A waiter blocked in mfs_lock takes over from a killed holder. */
	p = spawn("lock-hold", key, NULL);
	CHECK(wait_flag(&sh->flag, 1, 30000) == 0, "holder did not lock");
	EQ(mfs_stat_segment(s, &st), 0);
	EQ(st.locked, 1);
	EQ(st.lock_owner_alive, 1);
	EQ(mfs_trylock(s), MFS_E_BUSY);
	l.s = s;
	l.r = 1;
	l.done = 0;
	t = CreateThread(NULL, 0, lock_thread, &l, 0, NULL);
	Sleep(200);
	EQ(l.done, 0); /* still blocked while the holder lives */
	killed = now_ms();
	TerminateProcess(p, 9);
	WaitForSingleObject(t, 10000);
	CloseHandle(t);
	WaitForSingleObject(p, 5000);
	CloseHandle(p);
	EQ(l.r, MFS_E_OWNER_DEAD);
	printf("  waiter got MFS_E_OWNER_DEAD %llu ms after TerminateProcess\n",
	       (unsigned long long)(l.done - killed));
	/* The contract's 200 ms, plus slack for Wine's teardown of the
	 * killed process (it releases the locks once the wineserver sees
	 * the process gone). */
	CHECK(l.done - killed <= 1000, "takeover took %llu ms",
	      (unsigned long long)(l.done - killed));
	EQ(l.ur, 0);
	/* 2. The next trylock after the death takes over. */
	sh->flag = 0;
	p = spawn("lock-hold", key, NULL);
	CHECK(wait_flag(&sh->flag, 1, 30000) == 0, "holder did not lock");
	killed = now_ms();
	TerminateProcess(p, 9);
	WaitForSingleObject(p, 5000);
	CloseHandle(p);
	while ((r = mfs_trylock(s)) == MFS_E_BUSY && now_ms() - killed < 2000)
		Sleep(2);
	EQ(r, MFS_E_OWNER_DEAD);
	EQ(mfs_stat_segment(s, &st), 0);
	EQ(st.lock_owner, (long)GetCurrentProcessId());
	EQ(mfs_unlock(s), 0);
	EQ(mfs_detach(s), 0);
	return ok;
}

static int t_notify_wait(void)
{
	char key[128];
	mfs_segment *s;
	struct shared *sh;
	mfs_stat st;
	HANDLE p[3];
	uint32_t seen;
	uint64_t t0;
	int ok = 1, i;

	key_of(key, sizeof key, "notify");
	EQ(mfs_create(key, 4096, NULL, &s), 0);
	if (!s)
		return 0;
	sh = mfs_data(s);
	/* Nothing changes: a timeout, after (not before) its time. */
	seen = 0;
	t0 = now_ms();
	EQ(mfs_wait(s, &seen, 120), MFS_E_TIMEOUT);
	CHECK(now_ms() - t0 >= 110, "timed out after %llu ms",
	      (unsigned long long)(now_ms() - t0));
	EQ(seen, 0);
	/* Already changed: at once. */
	EQ(mfs_notify(s), 0);
	seen = 0;
	EQ(mfs_wait(s, &seen, 0), 0);
	EQ(seen, 1);
	/* Three sleepers in other processes, one notify wakes them all. */
	for (i = 0; i < 3; i++)
		p[i] = spawn("wait", key, NULL);
	CHECK(wait_flag(&sh->flag, 3, 30000) == 0, "waiters did not start");
	t0 = now_ms();
	do {
		mfs_stat_segment(s, &st);
	} while (st.seq_waiters < 3 && now_ms() - t0 < 5000 && (Sleep(2), 1));
	EQ(st.seq_waiters, 3);
	Sleep(100);
	EQ(sh->result, 0); /* all still asleep */
	t0 = now_ms();
	EQ(mfs_notify(s), 0);
	CHECK(wait_flag(&sh->result, 3, 5000) == 0, "only %ld of 3 woke", (long)sh->result);
	printf("  3 waiters in other processes woke in %llu ms\n",
	       (unsigned long long)(now_ms() - t0));
	for (i = 0; i < 3; i++)
		EQ(wait_exit(p[i], 10000), 0);
	EQ(sh->seen, 2);
	EQ(mfs_detach(s), 0);
	return ok;
}

static int write_file(const char *path, const void *buf, DWORD n)
{
	HANDLE h = CreateFileA(path, GENERIC_WRITE, 0, NULL, CREATE_ALWAYS, 0, NULL);
	DWORD w = 0;

	if (h == INVALID_HANDLE_VALUE)
		return -1;
	WriteFile(h, buf, n, &w, NULL);
	CloseHandle(h);
	return w == n ? 0 : -1;
}

static int same_file(const char *path, const void *buf, DWORD n)
{
	static unsigned char got[16384];
	HANDLE h = CreateFileA(path, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE, NULL,
	                       OPEN_EXISTING, 0, NULL);
	DWORD r = 0;

	if (h == INVALID_HANDLE_VALUE)
		return 0;
	ReadFile(h, got, sizeof got, &r, NULL);
	CloseHandle(h);
	return r == n && memcmp(got, buf, n) == 0;
}

static int t_hostile(void)
{
	static unsigned char hdr[8192];
	mfs_options o = { 0 };
	char key[128], dir[MAX_PATH], path[4400];
	mfs_segment *s;
	mfs_stat st;
	int ok = 1, created = 7;

	GetTempPathA(sizeof dir, dir);
	snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "%s-hostile", prefix);
	CreateDirectoryA(dir, NULL);
	o.backend = MFS_BACKEND_FILE;
	o.dir = dir;
	key_of(key, sizeof key, "bad");
	EQ(mfs_native_path(key, &o, path, sizeof path), 0);
	/* A real segment's header, to forge from. */
	EQ(mfs_create(key, 4096, &o, &s), 0);
	if (!s)
		return 0;
	memcpy(hdr, (char *)mfs_data(s) - 4096, 4096);
	EQ(mfs_detach(s), 0);

	/* Empty file. */
	EQ(write_file(path, hdr, 0), 0);
	EQ(mfs_attach(key, &o, &s), MFS_E_CORRUPT);
	EQ(mfs_open(key, 4096, &o, &s, &created), MFS_E_CORRUPT);
	EQ(created, 0);
	EQ(mfs_create(key, 4096, &o, &s), MFS_E_EXISTS);
	EQ(mfs_inspect(key, &o, &st), MFS_E_CORRUPT);
	EQ(mfs_remove(key, &o), MFS_E_CORRUPT);
	CHECK(same_file(path, hdr, 0), "the empty file was changed");
	/* Bad magic. */
	{
		static unsigned char junk[4096];
		memset(junk, 0x5a, sizeof junk);
		EQ(write_file(path, junk, sizeof junk), 0);
		EQ(mfs_attach(key, &o, &s), MFS_E_CORRUPT);
		CHECK(strstr(mfs_last_error(), "magic") != NULL, "%s", mfs_last_error());
		EQ(mfs_inspect_path(path, 1, &st, NULL, 0, NULL), MFS_E_CORRUPT);
		CHECK(same_file(path, junk, sizeof junk), "the junk file was changed");
	}
	/* A valid header claiming more than the file holds. */
	EQ(write_file(path, hdr, 4096), 0);
	EQ(mfs_attach(key, &o, &s), MFS_E_CORRUPT);
	CHECK(strstr(mfs_last_error(), "total_size") != NULL, "%s", mfs_last_error());
	EQ(mfs_remove(key, &o), MFS_E_CORRUPT);
	CHECK(same_file(path, hdr, 4096), "the short file was changed");
	/* Truncated inside the header. */
	EQ(write_file(path, hdr, 100), 0);
	EQ(mfs_attach(key, &o, &s), MFS_E_CORRUPT);
	CHECK(strstr(mfs_last_error(), "truncated") != NULL, "%s", mfs_last_error());
	/* A lock word naming no slot. */
	{
		uint32_t w = (300u + 1) << 2 | 1;
		memcpy(hdr + 128, &w, 4);
		EQ(write_file(path, hdr, 8192), 0);
		EQ(mfs_attach(key, &o, &s), MFS_E_CORRUPT);
		CHECK(strstr(mfs_last_error(), "lock") != NULL, "%s", mfs_last_error());
		CHECK(same_file(path, hdr, 8192), "the forged file was changed");
	}
	DeleteFileA(path);
	/* A directory at the name. */
	CreateDirectoryA(path, NULL);
	EQ(mfs_attach(key, &o, &s), MFS_E_CORRUPT);
	EQ(mfs_inspect(key, &o, &st), MFS_E_CORRUPT);
	EQ(mfs_create(key, 4096, &o, &s), MFS_E_EXISTS);
	RemoveDirectoryA(path);
	/* A device name as a path is never opened. */
	EQ(mfs_inspect_path("\\\\.\\NUL", 1, &st, NULL, 0, NULL), MFS_E_CORRUPT);
	RemoveDirectoryA(dir);
	return ok;
}

/* Run mfshare-dump.exe ($MFS_DUMP, set by run.sh) with @args; its exit
 * status, its output in @out. */
static int run_dump(const char *args, char *out, size_t len)
{
	const char *dump = getenv("MFS_DUMP");
	SECURITY_ATTRIBUTES sa = { sizeof sa, NULL, TRUE };
	STARTUPINFOA si;
	PROCESS_INFORMATION pi;
	HANDLE rd, wr;
	char line[2048];
	DWORD n, got = 0, code = 999;

	if (!CreatePipe(&rd, &wr, &sa, 0))
		return -1;
	SetHandleInformation(rd, HANDLE_FLAG_INHERIT, 0);
	snprintf(line, sizeof line, "\"%s\" %s", dump, args);
	memset(&si, 0, sizeof si);
	si.cb = sizeof si;
	si.dwFlags = STARTF_USESTDHANDLES;
	si.hStdOutput = wr;
	si.hStdError = wr;
	si.hStdInput = GetStdHandle(STD_INPUT_HANDLE);
	if (!CreateProcessA(NULL, line, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi)) {
		CloseHandle(rd);
		CloseHandle(wr);
		return -1;
	}
	CloseHandle(wr);
	while (got + 1 < len && ReadFile(rd, out + got, (DWORD)(len - 1 - got), &n, NULL) && n)
		got += n;
	out[got] = '\0';
	CloseHandle(rd);
	WaitForSingleObject(pi.hProcess, 30000);
	GetExitCodeProcess(pi.hProcess, &code);
	CloseHandle(pi.hProcess);
	CloseHandle(pi.hThread);
	return (int)code;
}

static int t_dump(void)
{
	static char out[65536];
	char key[128], args[512];
	mfs_segment *s, *t;
	int ok = 1;

	if (!getenv("MFS_DUMP")) {
		printf("  skipped: $MFS_DUMP (the path of mfshare-dump.exe) is not set\n");
		return 1;
	}
	key_of(key, sizeof key, "Dump");
	EQ(mfs_create(key, 8192, NULL, &s), 0);
	EQ(mfs_attach(key, NULL, &t), 0);
	if (!s || !t)
		return 0;
	EQ(mfs_lock(s), 0);
	EQ(mfs_notify(s), 0);
	EQ(run_dump(key, out, sizeof out), 0);
	CHECK(strstr(out, "refcount: 2\r\n") || strstr(out, "refcount: 2\n"), "%s", out);
	CHECK(strstr(out, "size: 8192"), "%s", out);
	CHECK(strstr(out, "locked: 1"), "%s", out);
	CHECK(strstr(out, "seq: 1"), "%s", out);
	snprintf(args, sizeof args, "--json \"%s\"", mfs_native_key(s));
	EQ(run_dump(args, out, sizeof out), 0);
	CHECK(strstr(out, "\"refcount\":2") && strstr(out, "\"locked\":1"), "%s", out);
	EQ(mfs_unlock(s), 0);
	EQ(mfs_detach(t), 0);
	EQ(mfs_detach(s), 0);
	EQ(run_dump(key, out, sizeof out), 1);   /* gone */
	CHECK(strstr(out, "mfshare-dump: ") != NULL, "%s", out);
	EQ(run_dump("-b nosuch x", out, sizeof out), 2);
	return ok;
}

int main(int argc, char **argv)
{
	static const struct { const char *name; int (*fn)(void); } tests[] = {
		{ "lifecycle", t_lifecycle },
		{ "remove_mapped", t_remove_mapped },
		{ "open_race", t_open_race },
		{ "backends", t_backends },
		{ "key_case", t_key_case },
		{ "two_processes", t_two_processes },
		{ "lock_exclusion", t_lock_exclusion },
		{ "trylock_timedlock", t_trylock_timedlock },
		{ "owner_death", t_owner_death },
		{ "notify_wait", t_notify_wait },
		{ "hostile", t_hostile },
		{ "dump", t_dump },
	};
	unsigned i, pass = 0, n = sizeof tests / sizeof tests[0];

	setvbuf(stdout, NULL, _IONBF, 0);
	if (argc >= 4 && strcmp(argv[1], "child") == 0)
		return child(argc, argv);
	GetModuleFileNameW(NULL, self_path, MAX_PATH);
	snprintf(prefix, sizeof prefix, "w32t-%lu", (unsigned long)GetCurrentProcessId());
	for (i = 0; i < n; i++) {
		int before = failures;
		uint64_t t0 = now_ms();
		if (argc >= 2 && strcmp(argv[1], tests[i].name) != 0)
			continue;
		tests[i].fn();
		printf("%s %s (%llu ms)\n", failures == before ? "PASS" : "FAIL", tests[i].name,
		       (unsigned long long)(now_ms() - t0));
		pass += failures == before;
	}
	printf("%u of %u tests passed, %d failed checks\n", pass, n, failures);
	return failures ? 1 : 0;
}
