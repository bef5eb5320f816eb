#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the libFuzzer target tests/fuzz/fuzz_attach.c (clang, ASan, UBSan,
# libFuzzer) straight from the library sources and run it on a copy of the
# seed corpus.  See tests/fuzz/README.md.
#
#   sh tests/fuzz/run.sh [SECONDS] [libFuzzer args...]   fuzz (default 60 s)
#   sh tests/fuzz/run.sh --repro FILE...                 run inputs once
#   sh tests/fuzz/run.sh --make-seeds DIR                regenerate the seeds
#
# Environment: CC (default clang); FUZZ_BUILD (build and work directory,
# kept; default a temporary one, removed); FUZZ_ARTIFACTS (where crashing
# inputs are saved on failure; default ./fuzz-artifacts).
# Exit status: libFuzzer's (0 = no crash, leak, timeout or finding).
# Flags held in variables are split on purpose; cleanup runs from a trap.
# shellcheck disable=SC2086,SC2317
set -eu

here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
CC=${CC:-clang}

mode=fuzz
secs=60
case ${1:-} in
--repro) mode=repro; shift
	[ $# -gt 0 ] || { echo "usage: $0 --repro FILE..." >&2; exit 2; } ;;
--make-seeds) mode=seeds; shift
	[ $# -eq 1 ] || { echo "usage: $0 --make-seeds DIR" >&2; exit 2; } ;;
-h|--help) sed -n '3,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
''|-*) ;;
*) case $1 in
	*[!0-9]*) echo "$0: SECONDS must be a positive number, not '$1'" >&2; exit 2 ;;
	esac
	[ "$1" -gt 0 ] || { echo "$0: SECONDS must be positive" >&2; exit 2; }
	secs=$1; shift ;;
esac

if [ -n "${FUZZ_BUILD:-}" ]; then
	work=$FUZZ_BUILD
	mkdir -p "$work"
	keep=1
else
	work=$(mktemp -d "${TMPDIR:-/tmp}/mfs-fuzz-build.XXXXXX")
	keep=0
fi
work=$(cd "$work" && pwd)
segdir=
cleanup() {
	[ -z "$segdir" ] || rm -rf "$segdir"
	rm -rf "$work/artifacts" "$work/probe" "$work/probe.c"
	[ "$keep" = 1 ] || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ---------------------------------------------------------------- toolchain
aocflags=$(pkg-config --cflags atomic_ops 2>/dev/null || :)
aolibs=$(pkg-config --libs atomic_ops 2>/dev/null || echo -latomic_ops)

probe() {
	cat > "$work/probe.c" <<'EOF'
#include <stddef.h>
#include <stdint.h>
#include <atomic_ops.h>
int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)
{
	static volatile unsigned w;
	AO_int_store((volatile unsigned *)&w, (unsigned)n);
	return d == NULL;
}
EOF
	$CC -fsanitize=fuzzer,address,undefined $aocflags "$work/probe.c" \
	    -o "$work/probe" $aolibs -pthread >/dev/null 2>&1
}

if ! probe; then
	echo "run.sh: $CC cannot build a libFuzzer target with libatomic_ops;" \
	     "installing clang, libclang-rt-14-dev and libatomic-ops-dev" >&2
	if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		echo "run.sh: need root and apt-get to install them; install" \
		     "clang (with its compiler-rt: libclang-rt-14-dev on Debian 12)" \
		     "and libatomic-ops-dev, or set CC" >&2
		exit 2
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y clang libclang-rt-14-dev libatomic-ops-dev pkg-config \
	    >/dev/null 2>&1 ||
	{ apt-get update -qq && apt-get install -y clang libclang-rt-14-dev \
	    libatomic-ops-dev pkg-config >/dev/null; }
	CC=clang
	aocflags=$(pkg-config --cflags atomic_ops 2>/dev/null || :)
	aolibs=$(pkg-config --libs atomic_ops 2>/dev/null || echo -latomic_ops)
	probe || { echo "run.sh: clang still cannot build a fuzzer:" >&2
		$CC -fsanitize=fuzzer,address,undefined "$work/probe.c" \
		    -o "$work/probe" $aolibs -pthread >&2 || :; exit 2; }
fi

# ---------------------------------------------------------------- build
# lib/internal.h includes <config.h>; the Autotools one is not needed here.
cat > "$work/config.h" <<'EOF'
/* Written by tests/fuzz/run.sh: the fuzz build needs only this. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
EOF
# The library's Linux sources, as Makefile.am lists them (unconditional
# and "if OS_LINUX"), so a new file needs no change here.
srcs=$(awk '
/^if /{cond[++d]=$2; next} /^else/{cond[d]="!" cond[d]; next} /^endif/{d--; next}
/^lib_libmfshare_la_SOURCES[ \t]*\+?=/{ok=(d==0 || (d==1 && cond[1]=="OS_LINUX")); grab=1}
grab { for (i = 1; i <= NF; i++) if (ok && $i ~ /^lib\/.*\.c$/) print $i
       if ($NF != "\\") grab=0 }' "$top/Makefile.am" | sed "s|^|$top/|")
[ -n "$srcs" ] || { echo "run.sh: no library sources found in Makefile.am" >&2; exit 2; }
bin=$work/fuzz_attach
cflags="-g -O1 -std=gnu99 -fno-omit-frame-pointer -fno-sanitize-recover=all
    -D_GNU_SOURCE -I$work -I$top/include -I$top/lib $aocflags"
# The harness gets the sanitizers but no coverage instrumentation: its
# checking loops would only slow libFuzzer down and blur the library's
# coverage.  The library gets everything.
$CC $cflags -fsanitize=address,undefined -c "$here/fuzz_attach.c" -o "$work/fuzz_attach.o"
$CC $cflags -fsanitize=fuzzer,address,undefined $srcs "$work/fuzz_attach.o" \
    -o "$bin" $aolibs -pthread

# The target's private segment directories go here: a tmpfs if there is
# one (as for real segments, and much faster than a disk file system).
if [ -d /dev/shm ] && [ -w /dev/shm ]; then
	segdir=$(mktemp -d /dev/shm/mfs-fuzz-run.XXXXXX)
else
	segdir=$(mktemp -d "$work/seg.XXXXXX")
fi
export MFS_FUZZ_DIR="$segdir"
mkdir -p "$work/artifacts"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

if [ "$mode" = seeds ]; then
	mkdir -p "$1"
	MFS_FUZZ_MAKE_SEEDS=$(cd "$1" && pwd) "$bin"
	echo "run.sh: seeds written to $1"
	exit 0
fi
if [ "$mode" = repro ]; then
	"$bin" -timeout=10 -rss_limit_mb=2048 "$@"
	exit $?
fi

# ---------------------------------------------------------------- fuzz
corpus=$work/corpus
mkdir -p "$corpus"
for f in "$here"/corpus/*; do
	[ -f "$f" ] && cp "$f" "$corpus/"
done

set +e
{
	"$bin" -max_total_time="$secs" -max_len=65536 -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix="$work/artifacts/" "$@" "$corpus" 2>&1
	echo $? > "$work/rc"
} | tee "$work/fuzz.log"
set -e
rc=$(cat "$work/rc" 2>/dev/null || echo 1)

echo "==== fuzz_attach summary ($secs s) ===="
grep -E '^#[0-9]+' "$work/fuzz.log" | tail -n 1 || :
grep -E '^Done [0-9]+ runs|^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' \
    "$work/fuzz.log" || :
if [ "$rc" != 0 ]; then
	echo "run.sh: FAILED (libFuzzer exit $rc)" >&2
	if [ -n "$(ls "$work/artifacts")" ]; then
		dest=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
		mkdir -p "$dest"
		cp "$work"/artifacts/* "$dest/"
		echo "run.sh: crashing inputs saved in $dest; reproduce with:" \
		     "sh tests/fuzz/run.sh --repro FILE" >&2
	fi
else
	echo "run.sh: OK"
fi
rm -f "$work/rc"
[ "$keep" = 1 ] || rm -rf "$corpus"
exit "$rc"
