#!/bin/sh
# SPDX-License-Identifier: MIT
# The README demo (`make demo`): one process shares a file through a
# segment, a second one attaches and verifies it, mfshare-dump shows both
# attachments, and the segment disappears when the last one detaches.
# Usage: sh examples/demo.sh BUILDDIR.  Leaves no process or segment behind.

usage="usage: sh demo.sh BUILDDIR"
[ $# -eq 1 ] || { echo "$usage" >&2; exit 2; }
builddir=$(cd "$1" 2>/dev/null && pwd) || {
	echo "demo: $1: no such build directory" >&2; exit 2; }
srcdir=$(cd "$(dirname "$0")/.." && pwd) || exit 2

share=$builddir/examples/share-file
dump=$builddir/tools/mfshare-dump
key=mfshare-demo-$$
shmfile=/dev/shm/mfshare.$key
file=$srcdir/include/mfshare.h
[ -r "$file" ] || file=$srcdir/examples/demo.sh

for prog in "$share" "$dump"; do
	[ -x "$prog" ] || {
		echo "demo: $prog is not built; run make first" >&2; exit 2; }
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mfshare-demo.XXXXXX") || exit 1
put_pid=
get_pid=

# Whatever happens, end both processes (closing their stdin, then TERM,
# then KILL) and remove anything left under our key.
cleanup() {
	exec 3>&- 4>&-
	for pid in $get_pid $put_pid; do
		n=0
		while kill -0 "$pid" 2>/dev/null && [ $n -lt 20 ]; do
			[ $n -eq 5 ] && kill -TERM "$pid" 2>/dev/null
			sleep 0.1
			n=$((n + 1))
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rm -f "$shmfile"
	rm -rf "$tmp"
}
trap 'cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

fail() {
	echo "demo: FAILED: $*" >&2
	for log in "$tmp"/*.out; do
		[ -s "$log" ] && { echo "--- $(basename "$log"):" >&2; cat "$log" >&2; }
	done
	exit 1
}

# wait_for LOG PATTERN PID: until LOG has a line matching PATTERN (10 s).
wait_for() {
	n=0
	until grep -q "$2" "$1" 2>/dev/null; do
		if ! kill -0 "$3" 2>/dev/null; then
			grep -q "$2" "$1" 2>/dev/null && return 0
			fail "$(basename "$1" .out) ended early"
		fi
		[ $n -lt 100 ] || fail "timed out waiting for '$2' in $(basename "$1")"
		sleep 0.1
		n=$((n + 1))
	done
}

step() {
	echo
	echo "==> $*"
}

echo "libmfshare demo: sharing $file"
echo "under the key $key (its file: $shmfile)"

# Each long-running process reads its stdin from a fifo we hold open; it
# stays attached until we close our end.
mkfifo "$tmp/put.in" "$tmp/get.in" || fail "mkfifo in $tmp"

step "1. share-file put: create the segment, copy the file in under the lock, notify"
"$share" put "$key" "$file" <"$tmp/put.in" >"$tmp/put.out" 2>&1 &
put_pid=$!
exec 3>"$tmp/put.in"
wait_for "$tmp/put.out" "^put: $key: .* bytes" "$put_pid"
cat "$tmp/put.out"
[ -e "$shmfile" ] || fail "$shmfile does not exist"
echo "(the segment exists: $shmfile)"

step "2. share-file get --hold: a second process attaches, waits for the data, verifies it"
"$share" get --hold "$key" "$file" <"$tmp/get.in" >"$tmp/get.out" 2>&1 &
get_pid=$!
exec 4>"$tmp/get.in"
wait_for "$tmp/get.out" "^get: $key: .*verified" "$get_pid"
cat "$tmp/get.out"

step "3. mfshare-dump $key: read the header without attaching (two attachments)"
"$dump" "$key" >"$tmp/dump.out" 2>&1 || fail "mfshare-dump $key failed"
cat "$tmp/dump.out"
grep -q '^refcount: 2$' "$tmp/dump.out" || fail "expected refcount: 2"

step "4. get detaches (its stdin ends): put is the only attachment left"
exec 4>&-
wait "$get_pid" || fail "share-file get exited with status $?"
get_pid=
grep 'detached' "$tmp/get.out"
"$dump" "$key" >"$tmp/dump.out" 2>&1 || fail "mfshare-dump $key failed"
grep '^refcount:' "$tmp/dump.out"
grep -q '^refcount: 1$' "$tmp/dump.out" || fail "expected refcount: 1"

step "5. put detaches: the last attachment ends, so the segment is removed"
exec 3>&-
wait "$put_pid" || fail "share-file put exited with status $?"
put_pid=
grep 'detached' "$tmp/put.out"
[ ! -e "$shmfile" ] || fail "$shmfile is still there"
if "$dump" "$key" >"$tmp/dump.out" 2>&1; then
	fail "mfshare-dump still finds $key"
fi
echo "$shmfile is gone; mfshare-dump says: $(cat "$tmp/dump.out")"

echo
echo "demo: OK"
exit 0
