#!/bin/sh
# SPDX-License-Identifier: MIT
#
# tests/model/run.sh: check the Promela models of the lock word
# (lock.pml) and of create/attach/open/detach (lifecycle.pml) with spin.
# Every check is exhaustive (no bitstate, no depth cut-off); a check that
# finds an error, or does not finish its search, fails the script.  The
# mutants are deliberately broken variants that must fail: they show each
# property can be violated at all.  README.md explains the models and
# gives the numbers.
#
#   sh tests/model/run.sh          all checks, two at a time
#   JOBS=1 sh tests/model/run.sh   one at a time
#   TAKEOVER=1 sh tests/model/run.sh
#                                  check the lock with the fixed takeover
#                                  (README.md, "The takeover ABA")
#
# About a minute on two cores; about 1 GB of memory at the peak.

set -u

# What lib/lock.c does when it takes a lock over from a dead holder:
#   0: probe the holder's token (F_OFD_GETLK), then CAS: lock.c before
#      the fix;
#      spin finds the ABA described in README.md
#   1: take the dead holder's token (F_OFD_SETLK) and hold it across the
#      CAS: what lib/lock.c does now (a shared lock on the slot byte,
#      which blocks claimers just the same; README.md).
TAKEOVER=${TAKEOVER:-1}
JOBS=${JOBS:-2}

here=$(cd "$(dirname "$0")" && pwd)

if ! command -v spin >/dev/null 2>&1; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "model: installing spin"
		apt-get install -y spin >/dev/null 2>&1 ||
			{ apt-get update >/dev/null 2>&1 &&
			  apt-get install -y spin >/dev/null 2>&1; }
	fi
	command -v spin >/dev/null 2>&1 ||
		{ echo "model: spin is not installed (apt-get install spin)" >&2; exit 1; }
fi
CC=${CC:-cc}
command -v "$CC" >/dev/null 2>&1 ||
	{ echo "model: no C compiler ($CC) to build pan" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/mfs-model.XXXXXX") || exit 1
trap 'rm -rf "$work"' INT TERM

# check ID MODEL EXPECT SPIN-DEFINES CC-FLAGS PAN-FLAGS
#   EXPECT: pass, or fail (a mutant: the search must find an error).
#   Prints one line; appends ID to $work/failed when the result is wrong.
check()
{
	id=$1 model=$2 expect=$3 defs=$4 ccf=$5 panf=$6
	d=$work/$(echo "$id" | tr / _)
	mkdir -p "$d" && cd "$d" && cp "$here/$model" . || return 1
	if ! spin $defs -a "$model" >spin.out 2>&1; then
		echo "FAIL  $id: spin -a $defs"; sed 's/^/      /' spin.out
		echo "$id" >>"$work/failed"; return 0
	fi
	if ! $CC -w $ccf -o pan pan.c >cc.out 2>&1; then
		echo "FAIL  $id: $CC $ccf pan.c"; sed 's/^/      /' cc.out | head -20
		echo "$id" >>"$work/failed"; return 0
	fi
	./pan $panf >pan.out 2>&1
	errors=$(sed -n 's/.*errors: \([0-9][0-9]*\).*/\1/p' pan.out | head -1)
	stored=$(sed -n 's/^ *\([0-9.e+]*\) states, stored.*/\1/p' pan.out | head -1)
	trans=$(sed -n 's/^ *\([0-9.e+]*\) transitions (= .*/\1/p' pan.out | head -1)
	depth=$(sed -n 's/.*depth reached \([0-9]*\),.*/\1/p' pan.out | head -1)
	mem=$(sed -n 's/^ *\([0-9.]*\)[[:space:]]*total actual memory usage.*/\1/p' pan.out | head -1)
	secs=$(sed -n 's/^pan: elapsed time \([0-9.e+]*\) seconds.*/\1/p' pan.out | head -1)
	what=$(grep -m1 -E 'assertion violated|acceptance cycle|non-progress cycle|invalid end state|claim violated' pan.out |
	       sed 's/^pan:[0-9]*: *//; s/ (at depth.*//; s/assertion violated  *!( !( .*/never claim violated/' | cut -c1-70)
	stats="states=${stored:-?} transitions=${trans:-?} depth=${depth:-?} mem=${mem:-?}MB time=${secs:-?}s"
	incomplete=
	if grep -q -E 'max search depth too small|out of memory|pan: resource|hash table is full' pan.out; then
		incomplete=yes
	fi
	if [ -z "$errors" ]; then
		echo "FAIL  $id: pan did not finish"; tail -5 pan.out | sed 's/^/      /'
		echo "$id" >>"$work/failed"
	elif [ "$expect" = pass ]; then
		if [ "$errors" = 0 ] && [ -z "$incomplete" ]; then
			echo "ok    $id  $stats"
		elif [ "$errors" = 0 ]; then
			echo "FAIL  $id: search incomplete  $stats"
			echo "$id" >>"$work/failed"
		else
			echo "FAIL  $id: $what  $stats"
			echo "      replay: cd $d && spin -t -p -g $defs $model"
			echo "$id" >>"$work/failed"
		fi
	else
		if [ "$errors" != 0 ]; then
			echo "xfail $id: found: $what  $stats"
		else
			echo "FAIL  $id: the mutant passed: the property checks nothing  $stats"
			echo "$id" >>"$work/failed"
		fi
	fi
	cd "$work" || return 1
}

# pan's build: -O2 where the search takes seconds, -O0 where it takes
# less than the compiler would save.
SAFE="-DSAFETY -DNOCLAIM"    # assertions and invalid end states only
CLAIM="-DSAFETY"             # a safety claim ([] p)
LIVE="-DNFAIR=3"             # acceptance cycles under weak fairness
LM="-m300000"                # lock.pml: DFS depth stays under 100000
LMS="$LM -w20"               # the same, small hash table for small runs
CM="-m20000 -N inv"          # lifecycle.pml: depth stays under 1000

NODIE="-DDEATHS=0 -DREATTACH=0 -DTIMEOUTS=0"
DIE="-DTAKEOVER=$TAKEOVER -DREATTACH=1 -DTIMEOUTS=1"

lane_lock()
{
	# The lock with deaths: N=3, up to 2 deaths, 1 slot reused, probe
	# slices (1 death for the costlier progress check).
	check lock/safety lock.pml pass \
		"$DIE -DDEATHS=2" "-O2 $SAFE" "$LM"
	check lock/recover lock.pml pass \
		"$DIE -DDEATHS=2" "-O2 $LIVE" "$LM -a -f -N recover"
	check lock/progress-deaths lock.pml pass \
		"$DIE -DDEATHS=1" "-O2 $LIVE" "$LM -a -f -N progress"
	if [ "$TAKEOVER" = 0 ]; then
		# The same without slot reuse: lock.c holds up there.
		check lock/safety-noreuse lock.pml pass \
			"-DDEATHS=2 -DREATTACH=0" "-O2 $SAFE" "$LM"
	else
		# The takeover of lock.c before the fix: must fail.
		check lock/mutant-takeover0 lock.pml fail \
			"-DTAKEOVER=0 -DDEATHS=1 -DREATTACH=1" "-O0 $SAFE" "$LMS"
	fi
	# No lost wake-up: no deaths, no timeouts (a sleeper wakes only by
	# FUTEX_WAKE).  UNLOCK=0 is lock.c; 1 always wakes; 2 exchanges.
	for u in 0 1 2; do
		check lock/nolost-unlock$u lock.pml pass \
			"$NODIE -DUNLOCK=$u" "-O0 $CLAIM" "$LMS -N nolost"
		check lock/progress-unlock$u lock.pml pass \
			"$NODIE -DUNLOCK=$u" "-O0 $LIVE" "$LMS -a -f -N progress"
	done
	# Mutants.
	check lock/mutant-unlock3 lock.pml fail \
		"$NODIE -DUNLOCK=3" "-O0 $CLAIM" "$LMS -N nolost"
	check lock/mutant-retake1 lock.pml fail \
		"$NODIE -DRETAKE1=1" "-O0 $LIVE" "$LMS -a -f -N progress"
	check lock/mutant-giveup2 lock.pml fail \
		"$NODIE -DGIVEUP=2" "-O0 $CLAIM" "$LMS -N nolost"
	check lock/mutant-claimany lock.pml fail \
		"-DTAKEOVER=1 -DDEATHS=1 -DREATTACH=1 -DCLAIMANY=1" "-O0 $LIVE" \
		"$LMS -a -f -N recover"
	check lock/mutant-noslice lock.pml fail \
		"-DTAKEOVER=1 -DDEATHS=1 -DREATTACH=0 -DTIMEOUTS=0" "-O0 $LIVE" \
		"$LMS -a -f -N recover"
}

lane_lifecycle()
{
	# N=3, 1 death at any step; each process makes one call: mfs_open,
	# mfs_attach or mfs_create; then stays attached or detaches.
	check lifecycle/one-call lifecycle.pml pass \
		"-DOPS=3 -DROUNDS=1 -DDEATHS=1" "-O2 $CLAIM -DCOLLAPSE" "$CM"
	# Three mfs_open calls racing, 2 deaths.
	check lifecycle/open-deaths lifecycle.pml pass \
		"-DOPS=1 -DROUNDS=1 -DDEATHS=2" "-O2 $CLAIM -DCOLLAPSE" "$CM"
	# mfs_open, detach, mfs_open again, three processes, 1 death.
	check lifecycle/open-twice lifecycle.pml pass \
		"-DOPS=1 -DROUNDS=2 -DDEATHS=1" "-O2 $CLAIM -DCOLLAPSE" "$CM"
	# Two processes, three calls each, 2 deaths.
	check lifecycle/three-calls lifecycle.pml pass \
		"-DN=2 -DOPS=3 -DROUNDS=3 -DDEATHS=2" "-O2 $CLAIM" "$CM"
	# Mutants.
	check lifecycle/mutant-nogate lifecycle.pml fail \
		"-DMUTANT=1" "-O0 $CLAIM" "$CM -w20"
	check lifecycle/mutant-unlink lifecycle.pml fail \
		"-DMUTANT=2" "-O0 $CLAIM" "$CM -w20"
}

echo "model: spin $(spin -V 2>/dev/null | sed -n 's/^Spin Version \([^ ]*\).*/\1/p'), TAKEOVER=$TAKEOVER"
if [ "$JOBS" -ge 2 ] 2>/dev/null; then
	lane_lock >"$work/lock.log" 2>&1 &
	p1=$!
	lane_lifecycle >"$work/lifecycle.log" 2>&1 &
	p2=$!
	wait "$p1"; wait "$p2"
	cat "$work/lock.log" "$work/lifecycle.log"
else
	lane_lock
	lane_lifecycle
fi

if [ -s "$work/failed" ]; then
	echo "model: FAILED: $(tr '\n' ' ' <"$work/failed")"
	echo "model: the failing runs and their trails are kept in $work"
	exit 1
fi
rm -rf "$work"
echo "model: all checks passed"
exit 0
