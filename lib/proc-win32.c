/* SPDX-License-Identifier: MIT */
/*
 * Process identity on Windows: process and thread ids, and the process
 * creation time (a FILETIME: 100 ns units since 1601) as the "start time"
 * that tells a recycled pid from the process that recorded it.  Cached per
 * thread, so the lock's fast path makes no system call.
 */
#include "win32.h"

static __thread struct mfs__self self;

static uint64_t created(HANDLE p)
{
	FILETIME c, e, k, u;

	if (!GetProcessTimes(p, &c, &e, &k, &u))
		return 0;
	return ((uint64_t)c.dwHighDateTime << 32) | c.dwLowDateTime;
}

uint64_t mfs__proc_start(long pid)
{
	HANDLE p;
	uint64_t t;

	if ((DWORD)pid == GetCurrentProcessId())
		return created(GetCurrentProcess());
	p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, (DWORD)pid);
	if (!p)
		return 0;
	t = created(p);
	CloseHandle(p);
	return t;
}

int mfs__proc_alive(long pid, uint64_t start)
{
	HANDLE p;
	int r;

	if (pid <= 0)
		return 0;
	p = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION | SYNCHRONIZE, FALSE, (DWORD)pid);
	if (!p)
		return GetLastError() == ERROR_INVALID_PARAMETER ? 0 : -1;
	r = WaitForSingleObject(p, 0) == WAIT_TIMEOUT;
	if (r && start && created(p) != start)
		r = 0;
	CloseHandle(p);
	return r;
}

const struct mfs__self *mfs__self(void)
{
	if (self.tid == 0) {
		self.pid = (uint32_t)GetCurrentProcessId();
		self.tid = (uint32_t)GetCurrentThreadId();
		self.start = created(GetCurrentProcess());
	}
	return &self;
}

void mfs__self_reset(void)
{
	self.tid = 0;
}

uint64_t mfs__now_ms(void)
{
	return (uint64_t)GetTickCount64();
}

void mfs__sleep_ms(unsigned ms)
{
	Sleep(ms);
}
