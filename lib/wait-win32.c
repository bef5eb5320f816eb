/* SPDX-License-Identifier: MIT */
/*
 * The sleep/wake layer on Windows.  WaitOnAddress only wakes threads of
 * the calling process, so sleepers of a segment's lock word and change
 * counter wait on named semaphores shared by every process:
 *
 *     Local\mfshare.VVVVVVVV.IIIIIIIIIIIIIIII.lock    (the lock word)
 *     Local\mfshare.VVVVVVVV.IIIIIIIIIIIIIIII.seq     (the change counter)
 *
 * V: the volume serial number, I: the file index (GetFileInformationByHandle),
 * in hexadecimal: the file's identity, the same for every opener, whatever
 * its name (it survives the rename that publishes a segment).
 *
 * mfs__wait_on(word, val, ms) and mfs__wake(word, n) keep the signatures of
 * wait.h, so lock.c and notify.c are the same on every platform: the
 * segment that contains @word is found in a process-wide list of mapped
 * views (filled by mfs__map), and the word's offset in the header picks
 * the semaphore.
 *
 * Lost wake-ups: sleepers count themselves in the header (lock_waiters,
 * seq_waiters, the word after each) before re-checking the word, wakers
 * release as many units as the count says (all of them for notify, one for
 * unlock), and a semaphore keeps a unit released before its sleeper
 * reached WaitForSingleObject.  A unit can still be taken by a newcomer
 * instead of the sleeper it was meant for; so a sleep lasts at most
 * MFS_PROBE_MS (50 ms) and the callers re-check: a lost wake-up costs at
 * most that, spurious ones a re-check.
 */
#include "win32.h"

#include <stdio.h>
#include <stdlib.h>

#define SLICE_MS   MFS_PROBE_MS
/* Units left by counted sleepers that died are taken by later sleepers as
 * spurious wake-ups; the cap bounds that (a release past it is dropped:
 * at worst a 50 ms slice). */
#define SEM_MAX    4096L
#define OFF_LOCK   128u
#define OFF_SEQ    192u

struct view {
	char *base;
	uint64_t size;
	HANDLE sem[2]; /* lock, seq */
	struct view *next;
};

static SRWLOCK mu = SRWLOCK_INIT;
static struct view *views;

static HANDLE open_sem(const BY_HANDLE_FILE_INFORMATION *bi, const char *what)
{
	wchar_t name[128];

	_snwprintf(name, sizeof name / sizeof name[0], L"Local\\mfshare.%08lx.%08lx%08lx.%hs",
	           (unsigned long)bi->dwVolumeSerialNumber, (unsigned long)bi->nFileIndexHigh,
	           (unsigned long)bi->nFileIndexLow, what);
	name[sizeof name / sizeof name[0] - 1] = 0;
	return CreateSemaphoreW(NULL, 0, SEM_MAX, name);
}

int mfs__win_wait_attach(void *base, uint64_t size, HANDLE file)
{
	BY_HANDLE_FILE_INFORMATION bi;
	struct view *v;

	if (!GetFileInformationByHandle(file, &bi))
		return mfs__fail_win(GetLastError(), "GetFileInformationByHandle");
	if (!(v = calloc(1, sizeof *v)))
		return mfs__fail(MFS_E_NO_RESOURCES, "out of memory");
	v->base = base;
	v->size = size;
	v->sem[0] = open_sem(&bi, "lock");
	v->sem[1] = open_sem(&bi, "seq");
	if (!v->sem[0] || !v->sem[1]) {
		int r = mfs__fail_win(GetLastError(), "CreateSemaphore (the segment's "
		                      "named wake-up objects)");
		if (v->sem[0])
			CloseHandle(v->sem[0]);
		if (v->sem[1])
			CloseHandle(v->sem[1]);
		free(v);
		return r;
	}
	AcquireSRWLockExclusive(&mu);
	v->next = views;
	views = v;
	ReleaseSRWLockExclusive(&mu);
	return 0;
}

void mfs__win_wait_detach(void *base)
{
	struct view *v, **p;

	AcquireSRWLockExclusive(&mu);
	for (p = &views; (v = *p); p = &v->next)
		if (v->base == base) {
			*p = v->next;
			break;
		}
	ReleaseSRWLockExclusive(&mu);
	if (v) {
		CloseHandle(v->sem[0]);
		CloseHandle(v->sem[1]);
		free(v);
	}
}

/* The semaphore for @word, duplicated so that it outlives a concurrent
 * detach of another handle; NULL if the word is not a known one. */
static HANDLE sem_of(volatile uint32_t *word)
{
	const char *w = (const char *)word;
	HANDLE h = NULL;
	struct view *v;
	uint64_t off;

	AcquireSRWLockShared(&mu);
	for (v = views; v; v = v->next) {
		if (w < v->base || w >= v->base + v->size)
			continue;
		off = (uint64_t)(w - v->base);
		if (off == OFF_LOCK || off == OFF_SEQ)
			DuplicateHandle(GetCurrentProcess(), v->sem[off == OFF_SEQ],
			                GetCurrentProcess(), &h, 0, FALSE, DUPLICATE_SAME_ACCESS);
		break;
	}
	ReleaseSRWLockShared(&mu);
	return h;
}

int mfs__wait_on(volatile uint32_t *word, uint32_t val, int timeout_ms)
{
	DWORD ms = timeout_ms < 0 || timeout_ms > SLICE_MS ? SLICE_MS : (DWORD)timeout_ms;
	HANDLE s;
	DWORD r;

	if (*word != val)
		return 0;
	if (!(s = sem_of(word))) {
		Sleep(ms);
		r = WAIT_TIMEOUT;
	} else {
		r = WaitForSingleObject(s, ms);
		CloseHandle(s);
	}
	if (r == WAIT_OBJECT_0)
		return 0;
	/* Slept the whole bound: a timeout only if the caller's time is up;
	 * else a spurious return (the caller re-checks and sleeps again). */
	return timeout_ms >= 0 && timeout_ms <= SLICE_MS ? MFS_E_TIMEOUT : 0;
}

void mfs__wake(volatile uint32_t *word, int n)
{
	LONG units;
	HANDLE s;

	if (!(s = sem_of(word)))
		return;
	/* The sleepers' count is the word after the lock word and after the
	 * change counter (lock_waiters, seq_waiters). */
	units = (LONG)word[1];
	if (n >= 0 && units > n)
		units = n;
	if (units < 1)
		units = 1;
	if (units > 1024)
		units = 1024;
	ReleaseSemaphore(s, units, NULL); /* full (ERROR_TOO_MANY_POSTS): enough units */
	CloseHandle(s);
}
