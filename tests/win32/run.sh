#!/bin/sh
# SPDX-License-Identifier: MIT
# make check's runner for the Windows test program: run it (under $WINE
# when cross-compiling; directly on Windows) with the freshly built DLL
# found first.  Wine: its own prefix under /tmp unless WINEPREFIX is set,
# no debug chatter.
prog=$1; shift
b=${MFS_BUILDDIR:-.}
real=$prog
case $prog in *.exe) ;; *) real=$prog.exe ;; esac
# libtool may leave a wrapper; run the real program with the DLL on PATH.
dir=$(dirname "$real"); base=$(basename "$real")
[ -f "$dir/.libs/$base" ] && real=$dir/.libs/$base
if [ -n "${WINE:-}" ]; then
	: "${WINEPREFIX:=/tmp/wineprefix-mfs}"
	: "${WINEDEBUG:=-all}"
	export WINEPREFIX WINEDEBUG
	WINEPATH="Z:$(printf %s "$b/lib/.libs" | tr / '\\\\')"
	export WINEPATH
	MFS_DUMP="Z:$(printf %s "$b/tools/.libs/mfshare-dump.exe" | tr / '\\\\')"
	[ -f "$b/tools/.libs/mfshare-dump.exe" ] ||
		MFS_DUMP="Z:$(printf %s "$b/tools/mfshare-dump.exe" | tr / '\\\\')"
	export MFS_DUMP
	exec "$WINE" "$real" "$@"
fi
MFS_DUMP=$b/tools/mfshare-dump.exe
[ -f "$b/tools/.libs/mfshare-dump.exe" ] && MFS_DUMP=$b/tools/.libs/mfshare-dump.exe
export MFS_DUMP
PATH="$b/lib/.libs:$PATH" exec "$real" "$@"
