/* SPDX-License-Identifier: MIT */
/*
 * Linux shared futexes for the lock and change notification.  Never
 * FUTEX_PRIVATE_FLAG: the word lives in a file mapped by many processes,
 * and the kernel keys shared futexes on the page, not the address.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int mfs__wait_on(volatile uint32_t *word, uint32_t val, int timeout_ms)
{
	struct timespec ts, *tp = NULL;
	long r;

	if (timeout_ms >= 0) {
		ts.tv_sec = timeout_ms / 1000;
		ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
		tp = &ts;
	}
	r = syscall(SYS_futex, word, FUTEX_WAIT, val, tp, NULL, 0);
	if (r == -1 && errno == ETIMEDOUT)
		return MFS_E_TIMEOUT;
	return 0; /* woken, EAGAIN (value differed) or EINTR: caller re-checks */
}

void mfs__wake(volatile uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n < 0 ? INT_MAX : n, NULL, NULL, 0);
}
