# Shared by bench/run.sh (one member each), bench/cluster.sh (three members each) and
# bench/tls.sh (https): the settings every bench takes from the environment, the checks
# of the binaries and tools, the work dir, stopping everything started (by PID), RSS, wrk
# and fill runs. Expects ROOT (the repo root) and TOOLS (commands the bench needs besides
# wrk and curl); sets OURS, REF, DURATION, WARMUP, NKEYS, THREADS, LUA, WORK, PIDS,
# HELPER_PID. WRK_SCHEME (http) is the scheme wrk_run speaks.

OURS=${ETCD_BIN:-build/etcd}
REF=${REF_BIN:-/usr/bin/etcd}
# relative paths are relative to the repo root, as in the test suite
[[ $OURS == /* ]] || OURS=$ROOT/$OURS
[[ $REF == /* ]] || REF=$ROOT/$REF
DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
NKEYS=${NKEYS:-10000}
THREADS=${THREADS:-2}
LUA=$ROOT/bench/kv.lua
WRK_SCHEME=${WRK_SCHEME:-http}

for b in "$OURS" "$REF"; do
	[ -x "$b" ] || { echo "bench: $b is not an executable (build first: ninja -C build)" >&2; exit 1; }
done
for t in wrk curl ${TOOLS:-}; do
	command -v "$t" >/dev/null || { echo "bench: $t is missing (bash tests/install-deps.sh)" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/etcd-bench.XXXXXX)
PIDS=()
HELPER_PID=

descendants() { # pid -> every descendant pid, from /proc/<pid>/task/*/children
	local c
	for c in $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		echo "$c"
		descendants "$c"
	done
}

stop_members() { # every server in PIDS: SIGTERM, up to 15 s, then SIGKILL of what is left
	local pid all p i
	for pid in "${PIDS[@]}"; do
		all="$pid $(descendants "$pid" | tr '\n' ' ')"
		kill -TERM "$pid" 2>/dev/null || true
		for i in $(seq 150); do # a leader hands leadership over first
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		for p in $all; do
			kill -0 "$p" 2>/dev/null && kill -KILL "$p" 2>/dev/null || true
		done
		wait "$pid" 2>/dev/null || true
	done
	PIDS=()
}

stop_all() {
	if [ -n "$HELPER_PID" ]; then
		kill -TERM "$HELPER_PID" 2>/dev/null || true
		wait "$HELPER_PID" 2>/dev/null || true
		HELPER_PID=
	fi
	stop_members
	rm -rf "$WORK"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

rss_kib() { # pid -> total VmRSS of the pid and its descendants, KiB
	local total=0 p r
	for p in "$1" $(descendants "$1"); do
		r=$(awk '/^VmRSS:/ {print $2}' /proc/"$p"/status 2>/dev/null || true)
		total=$((total + ${r:-0}))
	done
	echo "$total"
}

nprocs() { echo $((1 + $(descendants "$1" | wc -l))); }

wrk_run() { # host threads conns seconds args... -> "RESULT ..." line
	local host=$1 t=$2 c=$3 d=$4
	shift 4
	wrk -t "$t" -c "$c" -d "${d}s" --timeout 10s -s "$LUA" "$WRK_SCHEME://$host:2379" -- "$@" |
		grep '^RESULT' || echo "RESULT 0 0 0 0"
}

fill() { # host prefix total
	local r
	r=$(timeout 900 /usr/bin/python3 "$ROOT/bench/fill.py" "$1" "$2" "$3" "$THREADS" 32) ||
		echo "bench: fill of $1 failed: $r" >&2
	echo "  filled $3 keys on $1 ($r)"
}

