/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check test programs. */
#ifndef MFS_TESTUTIL_H
#define MFS_TESTUTIL_H
#include <check.h>
/* Run a suite in fork mode; returns the process exit status. */
int mt_run(Suite *s);
#endif
