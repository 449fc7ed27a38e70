#!/bin/sh
# Run every unit test binary given, even after one fails, then print the
# total: tests run and failed (from cmocka's summary lines) and the binaries
# that failed (a crash or a sanitizer report fails its binary even when no
# summary says so). Exits 1 if any binary failed.
# Usage: sh tests/unit/run.sh BIN...
out=$(mktemp "${TMPDIR:-/tmp}/unit-run.XXXXXX") || exit 2
trap 'rm -f "$out"' EXIT
run=0 failed=0 bad=""
for t in "$@"; do
	echo "== $t"
	./"$t" >"$out" 2>&1
	rc=$?
	cat "$out"
	n=$(sed -n 's/^\[=*\].* \([0-9][0-9]*\) test(s) run\.$/\1/p' "$out" | tail -n 1)
	f=$(sed -n 's/^\[  FAILED  \] \([0-9][0-9]*\) test(s).*/\1/p' "$out" | tail -n 1)
	run=$((run + ${n:-0}))
	failed=$((failed + ${f:-0}))
	if [ "$rc" -ne 0 ]; then
		bad="$bad $t(exit $rc)"
		[ -z "$f" ] && failed=$((failed + 1))
	fi
done
echo "== unit: $# binaries, $run tests run, $failed failed"
if [ -n "$bad" ]; then
	echo "== unit: failed:$bad"
	exit 1
fi
exit 0
