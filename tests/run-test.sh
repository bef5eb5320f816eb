#!/bin/sh
# SPDX-License-Identifier: MIT
# Test wrapper (LOG_COMPILER): runs one test, keeps its whole output for
# the .log, and copies Check's summary line to fd 9 (the terminal of
# `make check`, see AM_TESTS_FD_REDIRECT in Makefile.am).
out=$(mktemp) || exit 99
"$@" >"$out" 2>&1
rc=$?
cat "$out"
name=$(basename "$1")
if grep -q '%: Checks:' "$out"; then
	grep '%: Checks:' "$out" | sed "s|^|$name: |" >&9 2>/dev/null
fi
rm -f "$out"
exit $rc
