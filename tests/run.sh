#!/bin/bash
# The whole test run (README command 2, and what .ci/run calls):
#   1. install the Debian packages (tests/install-deps.sh),
#   2. configure and build build/ (debugoptimized) and build-asan/ (ASan+UBSan),
#   3. run the unit suite of both (meson test --suite unit),
#   4. run the pytest integration suite against build/etcd, then against build-asan/etcd
#      with sanitizer options that turn any report into a failure (the suite's teardown
#      also fails a test whose member printed a sanitizer report on stderr).
# Prints a result line per part and, as its LAST line, "N passed, N failed" (totals over
# unit and integration tests; a part that cannot run, e.g. a failed build, counts as one
# failure). Exits non-zero if anything failed or nothing ran.
#
# Environment: RUN_ASAN_INTEGRATION=0 skips step 4's ASan pass; PYTEST_ARGS adds pytest
# arguments (e.g. "-k kv").
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
PY=/usr/bin/python3
JOBS=$(nproc 2>/dev/null || echo 2)
LOGS="${TMPDIR:-/tmp}/etcd-c-test-logs"
mkdir -p "$LOGS"

passed=0
failed=0
summary=()

part() { # name passed failed [note]
	passed=$((passed + $2))
	failed=$((failed + $3))
	summary+=("$(printf '%-32s %4d passed, %4d failed%s' "$1" "$2" "$3" "${4:+  ($4)}")")
	echo "== $1: $2 passed, $3 failed${4:+ ($4)}"
}

# Sanitizers: stop at the first report and abort, so nothing gets past unnoticed.
SAN_ENV=(
	"ASAN_OPTIONS=halt_on_error=1:abort_on_error=1:detect_leaks=1:print_summary=1:disable_coredump=1"
	"UBSAN_OPTIONS=halt_on_error=1:abort_on_error=1:print_stacktrace=1:print_summary=1"
	"LSAN_OPTIONS=print_suppressions=0"
)

# ---------------------------------------------------------------- 1. dependencies
echo "== installing dependencies"
if ! bash tests/install-deps.sh; then
	part "install-deps" 0 1 "see above"
fi

# ---------------------------------------------------------------- 2. build
build() { # dir [meson options...]
	local dir=$1
	shift
	local log="$LOGS/$(basename "$dir")"
	echo "== building $dir"
	local setup=(meson setup "$dir" --buildtype=debugoptimized "$@")
	if [ -f "$dir/build.ninja" ]; then
		setup=(meson setup --reconfigure "$dir" --buildtype=debugoptimized "$@")
	else
		rm -rf "$dir" # a half-made directory from an interrupted run
	fi
	if ! "${setup[@]}" >"$log.setup.log" 2>&1; then
		tail -30 "$log.setup.log"
		part "configure $dir" 0 1 "log: $log.setup.log"
		return 1
	fi
	if ! ninja -C "$dir" -j "$JOBS" >"$log.ninja.log" 2>&1; then
		grep -E -A3 "error:|FAILED:" "$log.ninja.log" | head -60
		part "build $dir" 0 1 "log: $log.ninja.log"
		return 1
	fi
	if [ ! -x "$dir/etcd" ]; then
		part "build $dir" 0 1 "no $dir/etcd"
		return 1
	fi
}

build_ok=0
asan_ok=0
build build && build_ok=1
build build-asan -Db_sanitize=address,undefined -Db_lundef=false && asan_ok=1

# ---------------------------------------------------------------- 3. unit tests
# Counts meson's testlog.json: OK/EXPECTEDFAIL pass, SKIP is neither, the rest fail.
count_meson() { # testlog.json -> "passed failed skipped"
	$PY - "$1" <<'EOF'
import json, sys
p = f = s = 0
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"):
        p += 1
    elif r == "SKIP":
        s += 1
    else:
        f += 1
print(p, f, s)
EOF
}

unit() { # dir [env...]
	local dir=$1
	shift
	echo "== unit tests in $dir"
	local log="$LOGS/$(basename "$dir").unit.log"
	rm -f "$dir/meson-logs/testlog.json"
	env "$@" meson test -C "$dir" --suite unit --no-rebuild --print-errorlogs \
		>"$log" 2>&1
	local rc=$?
	tail -40 "$log"
	local p f s
	read -r p f s < <(count_meson "$dir/meson-logs/testlog.json")
	if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && ! grep -q "No suitable tests" "$log"; then
		f=1 # meson itself failed
	fi
	part "unit ($dir)" "$p" "$f" "$s skipped"
}

[ $build_ok = 1 ] && unit build
[ $asan_ok = 1 ] && unit build-asan "${SAN_ENV[@]}"

# ---------------------------------------------------------------- 4. integration tests
# Counts the results file conftest.py appends to ("<outcome> <test id>" per test).
count_results() { # file -> "passed failed skipped"
	awk '$1 == "passed" { p++ } $1 == "failed" { f++ } $1 == "skipped" { s++ }
		END { print p + 0, f + 0, s + 0 }' "$1" 2>/dev/null || echo "0 0 0"
}

integration() { # label binary timeout [env...]
	local label=$1 bin=$2 limit=$3
	shift 3
	local xml="$LOGS/pytest-$label.xml" log="$LOGS/pytest-$label.log"
	local results="$LOGS/pytest-$label.results"
	local tmp="${TMPDIR:-/tmp}/etcd-c-pytest-$label"
	echo "== integration tests ($label) against $bin"
	rm -f "$xml" "$results"
	touch "$results"
	# shellcheck disable=SC2086
	env ETCD_BIN="$bin" ETCD_TEST_RESULTS="$results" PYTHONDONTWRITEBYTECODE=1 "$@" \
		timeout -k 10 "$limit" $PY -m pytest tests/integration -q -rfE --tb=short \
		-p no:cacheprovider --basetemp="$tmp" --junitxml="$xml" \
		${PYTEST_ARGS:-} </dev/null >"$log" 2>&1
	local rc=$?
	if [ "$rc" -eq 0 ]; then tail -n 3 "$log"; else tail -n 300 "$log"; fi
	echo "(full log: $log)"
	local p f s
	read -r p f s < <(count_results "$results")
	case $rc in
	0 | 1) ;;
	5) echo "(pytest: no tests collected)" ;;
	124 | 137) f=$((f + 1)); echo "(pytest: timed out after ${limit}s)" ;;
	*) [ "$f" -eq 0 ] && f=1; echo "(pytest exited $rc)" ;;
	esac
	[ "$rc" = 1 ] && [ "$f" -eq 0 ] && f=1
	part "integration ($label)" "$p" "$f" "$s skipped"
}

if [ $build_ok = 1 ]; then
	integration build "$ROOT/build/etcd" 420
fi
if [ $asan_ok = 1 ] && [ "${RUN_ASAN_INTEGRATION:-1}" != 0 ]; then
	integration asan "$ROOT/build-asan/etcd" 600 ETCD_START_TIMEOUT=60 "${SAN_ENV[@]}"
fi

# ---------------------------------------------------------------- result
echo
echo "== results"
printf '%s\n' "${summary[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
