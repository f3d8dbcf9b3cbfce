#!/bin/bash
# Runs every fuzz target of the module for FUZZTIME each (make fuzz);
# FUZZ=REGEXP runs only the targets whose names match.
#
# A target fails when the fuzzer reports a failing input (it writes it
# under the package's testdata/fuzz/, to be committed with the fix). Go's
# fuzz coordinator up to Go 1.26 can also end a run that found nothing
# with a bare "context deadline exceeded" right at the -fuzztime boundary
# (a race between its deadline and a worker's last input, golang/go#75804,
# fixed in Go 1.27); such a run is reported as that and not counted as a
# failure. The test binary's own -timeout is set well above FUZZTIME.
# Every input that reaches new code is first made smaller for up to
# FUZZMINIMIZETIME (Go's default, 60s, leaves a parser fed whole kernel
# objects minimising most of the run).
set -u
fuzztime=${FUZZTIME:-10m}
parallel=${FUZZPARALLEL:-2}
minimize=${FUZZMINIMIZETIME:-5s}
go=${GO:-go}
failed=0
while IFS=: read -r file fn; do
	pkg=$(dirname "$file")
	t=${fn#func }
	[[ $t =~ ${FUZZ:-.} ]] || continue
	echo "== $pkg $t ($fuzztime)"
	log=$(mktemp)
	"$go" test "$pkg" -run '^$' -fuzz "^$t\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimize" -parallel "$parallel" -timeout "${FUZZTIMEOUT:-4h}" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	if [ "$rc" -ne 0 ]; then
		if ! grep -q 'Failing input written to' "$log" && grep -qx '    context deadline exceeded' "$log"; then
			echo "== $pkg $t: no failing input; the run ended in Go's fuzz coordinator race at the -fuzztime deadline (golang/go#75804)"
		else
			echo "== $pkg $t: FAILED"
			failed=$((failed + 1))
		fi
	fi
	rm -f "$log"
done < <(grep -r --include='*_test.go' -o '^func Fuzz[A-Za-z0-9_]*' . | sort)
if [ "$failed" -ne 0 ]; then
	echo "$failed fuzz target(s) failed" >&2
	exit 1
fi
