/* SPDX-License-Identifier: MIT */
/*
 * The C side of the C++ contenders of mfs-bench: QSharedMemory (adapt-qt.cpp)
 * and Boost.Interprocess (adapt-boost.cpp).  Every function returns 0 (or a
 * handle) on success, -1 (or NULL) on failure with a message in adapt_error.
 * The loops live in the adapters, so that the lock calls are direct calls
 * there, as in the C contenders.
 */
#ifndef MFS_BENCH_ADAPT_H
#define MFS_BENCH_ADAPT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

extern char adapt_error[256];

/* QSharedMemory: a 4 KiB segment named @key; lock()/unlock() is the lock. */
void *qt_open(const char *key, int creator);
void qt_close(void *h);
int qt_unc(void *h, long n);                                   /* n lock+unlock */
int qt_count(void *h, long n, volatile uint64_t *counter);     /* n increments */
int qt_pp_init(void **hs, int role);       /* ping-pong: take the first locks */
int qt_pingpong(void **hs, long n, int role); /* n round trips (role 0) */
/* QSharedMemory::create(size), a second object's attach(), one byte
 * written by the first and read by the second, detach both (the last
 * detach removes the segment). */
int qt_create_cycle(const char *key, size_t size);
/* Remove what a killed process left under @key: the System V segment (if
 * nobody is attached), its semaphore and Qt's two key files. */
void qt_cleanup(const char *key);

/* boost::interprocess::interprocess_mutex at the start of a 4 KiB
 * shared_memory_object named @key, mapped with mapped_region. */
void *bx_open(const char *key, int creator);
void bx_close(void *h, int creator);
int bx_unc(void *h, long n);
int bx_count(void *h, long n, volatile uint64_t *counter);
int bx_pp_init(void **hs, int role);
int bx_pingpong(void **hs, long n, int role);

#ifdef __cplusplus
}

/* The ping-pong of mfs-bench.c (LOOPS) over three locks, for the adapters:
 * @lk and @ul take a handle and return false on failure. */
template <class L, class U> static int adapt_pp_init(void **hs, int role, L lk, U ul)
{
	(void)ul;
	if (role == 0)
		return lk(hs[0]) && lk(hs[1]) ? 0 : -1;
	return lk(hs[2]) ? 0 : -1;
}

template <class L, class U> static int adapt_pingpong(void **hs, long n, int role, L lk, U ul)
{
	int x = 0;

	if (role == 1) {
		if (!lk(hs[0]))
			return -1;
		x = 2;
	}
	for (long i = 0; i < n; i++) {
		if (!ul(hs[x]))
			return -1;
		if (role == 1 && i == n - 1)
			break;
		if (!lk(hs[(x + 2) % 3]))
			return -1;
		x = (x + 1) % 3;
	}
	if (role == 0 && !ul(hs[x]))
		return -1;
	return ul(hs[(x + 1) % 3]) ? 0 : -1;
}
#endif

#endif
