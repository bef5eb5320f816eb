/* SPDX-License-Identifier: MIT */
/*
 * Shared helpers for the Check test programs: unique segment names, child
 * processes, a start barrier, and reaping with a deadline.
 */
#ifndef MFS_TESTUTIL_H
#define MFS_TESTUTIL_H

#include <check.h>
#include <stdint.h>
#include <sys/types.h>
#include <mfshare.h>

/* Run a suite in fork mode; returns the process exit status. */
int mt_run(Suite *s);

/* A key unique to this process and call: "t-<tag>-<pid>-<n>".  Returns a
 * static buffer rotated over 8 slots. */
const char *mt_key(const char *tag);

/* A fresh private temp directory (mkdtemp under $TMPDIR or /tmp). The
 * caller may rm it with mt_rmtree. */
const char *mt_tmpdir(void);
void mt_rmtree(const char *dir);

/* fork(); the child runs fn(arg) and _exit()s with its return value. */
pid_t mt_spawn(int (*fn)(void *), void *arg);

/* Wait for @pid at most @ms; returns its exit status (0-255), 128+signal
 * when killed, or -1 on timeout (the child is then SIGKILLed and reaped). */
int mt_wait(pid_t pid, int ms);

/* Is @pid (our child) still running (not yet exited, zombie counts dead)? */
int mt_alive(pid_t pid);

/* Monotonic milliseconds. */
uint64_t mt_now_ms(void);
void mt_sleep_ms(unsigned ms);

/* A start barrier in shared anonymous memory, for released-together
 * children: mt_barrier_new(n) before fork, every party calls
 * mt_barrier_wait(). */
typedef struct mt_barrier mt_barrier;
mt_barrier *mt_barrier_new(unsigned parties);
void mt_barrier_wait(mt_barrier *b);

/* Number of open descriptors of this process (counts /proc/self/fd). */
int mt_count_fds(void);

/* Remove what failed tests left in /dev/shm: every mfshare.t-@tag-*
 * entry (a file, or an empty directory), each reported on stderr as
 * "@who: removing leftover PATH". */
void mt_sweep_shm(const char *tag, const char *who);

/* Read a whole file (up to @max bytes) into a malloc'd buffer; *len set.
 * NULL if it cannot be read. */
unsigned char *mt_slurp(const char *path, size_t max, size_t *len);

#endif
