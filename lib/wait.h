/* SPDX-License-Identifier: MIT */
/*
 * The sleep/wake layer under the lock and mfs_wait: sleep while a 32-bit
 * word in shared memory holds a value, wake sleepers of a word, across
 * processes.  Linux: shared futexes (wait-futex.c).
 */
#ifndef MFS_WAIT_H
#define MFS_WAIT_H

#include <stdint.h>

/* Sleep while *@word == @val, at most @timeout_ms (< 0: no limit).
 * Returns 0 when woken or the value differed, MFS_E_TIMEOUT when the time
 * ran out.  Spurious returns are allowed: callers re-check. */
int mfs__wait_on(volatile uint32_t *word, uint32_t val, int timeout_ms);
/* Wake up to @n sleepers of @word (n < 0: all). */
void mfs__wake(volatile uint32_t *word, int n);

#endif
