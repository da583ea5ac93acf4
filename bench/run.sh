#!/bin/bash
# Benchmark: our etcd against Debian's etcd 3.4 on the same machine, same load.
#
#   bash bench/run.sh            (from anywhere; builds nothing: run `ninja -C build` first)
#
# Starts one single-member cluster of ours (build/etcd) on 127.0.55.1 and one of the
# reference (/usr/bin/etcd) on 127.0.55.2, each with a fresh data dir under a temp dir,
# and drives both with the same wrk load (bench/kv.lua):
#   - first fills the key space (NKEYS keys, 256-byte values, bench/fill.py) so ranges hit,
#   - put   : POST /v3/kv/put, random key of the key space, 256-byte value,
#   - range : POST /v3/kv/range, one random existing key (linearizable),
#   each with 1 connection and with 64 connections, WARMUP seconds of warm-up and then
#   DURATION seconds measured,
# then the watch fan-out: WATCHERS (100) prefix watches on "key" spread over WATCH_STREAMS
# (10) POST /v3/watch streams, read by bench/watchcount.c (built here with cc; it counts
# events without parsing JSON), while the put load runs for DURATION seconds with 64
# connections: events delivered per second to all watchers, from the start of the load
# until every watcher has received the last put (so lagging watchers count against the
# rate), and the p99 of those puts,
# then writes 100,000 more keys into each (bench/fill.py: individual puts over 64
# keep-alive connections) and measures each server's total RSS (every
# process: for ours the supervisor and all its descendants; VmRSS from /proc).
# Prints one table: test, ours req/s, ours p99, etcd req/s, etcd p99, ours/etcd, then the
# RSS line. Every process it started is stopped by PID on exit.
#
# Environment: ETCD_BIN (ours, default build/etcd), REF_BIN (default /usr/bin/etcd),
# DURATION (10), WARMUP (2), NKEYS (10000), FILL (100000), THREADS (wrk threads for the
# 64-connection runs and fill processes, default 2), WATCHERS (100), WATCH_STREAMS (10).
# ETCD_BIN=/usr/bin/etcd compares etcd with itself, to check the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
FILL=${FILL:-100000}
WATCHERS=${WATCHERS:-100}
WATCH_STREAMS=${WATCH_STREAMS:-10}
OURS_HOST=127.0.55.1
REF_HOST=127.0.55.2
[ $((WATCHERS % WATCH_STREAMS)) -eq 0 ] ||
	{ echo "bench: WATCHERS must be a multiple of WATCH_STREAMS" >&2; exit 1; }

TOOLS=cc # for bench/watchcount.c
source "$ROOT/bench/lib.sh"

start() { # name binary host -> pid in PIDS
	local name=$1 bin=$2 host=$3 i
	for port in 2379 2380; do
		if (exec 3<>/dev/tcp/"$host"/"$port") 2>/dev/null; then
			echo "bench: $host:$port is already in use" >&2
			exit 1
		fi
	done
	mkdir -p "$WORK/$name"
	(cd "$WORK/$name" && exec "$bin" --name "$name" --data-dir "$WORK/$name/data" \
		--listen-client-urls "http://$host:2379" --advertise-client-urls "http://$host:2379" \
		--listen-peer-urls "http://$host:2380" --initial-advertise-peer-urls "http://$host:2380" \
		--initial-cluster "$name=http://$host:2380" >"$WORK/$name/log" 2>&1) &
	PIDS+=($!)
	for i in $(seq 300); do # up to 30 s
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		if curl -sf -m 1 "http://$host:2379/health" 2>/dev/null | grep -q true; then
			return 0
		fi
		sleep 0.1
	done
	echo "bench: $name did not become healthy; its log:" >&2
	tail -30 "$WORK/$name/log" >&2
	exit 1
}

# The watch fan-out: watchcount holds the watches; once they are all created, "GO" on its
# stdin as the put load starts; when the load is over, a put of key~end, and watchcount
# stops when every watcher has received it.
WATCHCOUNT=$WORK/watchcount
cc -std=gnu11 -O2 -D_GNU_SOURCE -o "$WATCHCOUNT" "$ROOT/bench/watchcount.c" ||
	{ echo "bench: cannot build bench/watchcount.c" >&2; exit 1; }
END_KEY=$(printf 'key~end' | base64)

watch_run() { # host -> W_RESULT="<events/s> <put req/s> <put p99 ms> <errors> <sock errors> <closed>"
	# (a variable, not stdout: a subshell would hide HELPER_PID from the EXIT trap)
	local host=$1 i res wline
	local fifo=$WORK/watch.in out=$WORK/watch.out
	rm -f "$fifo" "$out"
	mkfifo "$fifo"
	"$WATCHCOUNT" "$host" key "$WATCH_STREAMS" $((WATCHERS / WATCH_STREAMS)) \
		<"$fifo" >"$out" 2>"$WORK/watch.err" &
	HELPER_PID=$!
	exec 7>"$fifo"
	for i in $(seq 600); do # up to 60 s for every watch to be created
		grep -q READY "$out" 2>/dev/null && break
		kill -0 "$HELPER_PID" 2>/dev/null || break
		sleep 0.1
	done
	if ! grep -q READY "$out" 2>/dev/null; then
		echo "bench: the watchers on $host were not created: $(cat "$WORK/watch.err")" >&2
		exec 7>&-
		kill -TERM "$HELPER_PID" 2>/dev/null || true
		wait "$HELPER_PID" 2>/dev/null || true
		HELPER_PID=
		W_RESULT="0 0 0 0 0 $WATCH_STREAMS"
		return
	fi
	echo GO >&7
	res=$(wrk_run "$host" "$THREADS" 64 "$DURATION" put "$NKEYS")
	curl -sf -m 10 -o /dev/null -X POST "http://$host:2379/v3/kv/put" \
		-d "{\"key\":\"$END_KEY\",\"value\":\"\"}" || echo "bench: end key put failed" >&2
	exec 7>&-
	for i in $(seq 3100); do # watchcount gives up 300 s after GO
		kill -0 "$HELPER_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -TERM "$HELPER_PID" 2>/dev/null || true
	wait "$HELPER_PID" 2>/dev/null || true
	HELPER_PID=
	wline=$(grep '^WATCH' "$out" || echo "WATCH 0 0 0 $WATCH_STREAMS 1")
	[ "$(echo "$wline" | awk '{print $6}')" = 0 ] ||
		echo "bench: the watchers on $host did not all get the last put within 300 s" >&2
	set -- $res
	local rps=$2 p99=$3 e1=$4 e2=$5
	set -- $wline
	W_RESULT="$4 $rps $p99 $e1 $e2 $5"
}

echo "starting ours ($OURS) on $OURS_HOST and etcd ($REF) on $REF_HOST in $WORK"
start ours "$OURS" "$OURS_HOST"
OURS_PID=${PIDS[0]}
start etcd "$REF" "$REF_HOST"
REF_PID=${PIDS[1]}

for h in "$OURS_HOST" "$REF_HOST"; do
	fill "$h" key "$NKEYS"
done

rows=()
for test in "put 1" "put 64" "range 1" "range 64"; do
	set -- $test
	op=$1 conns=$2
	t=$THREADS
	[ "$conns" -lt "$t" ] && t=$conns
	line="$op, $conns conn"
	for h in "$OURS_HOST" "$REF_HOST"; do
		wrk_run "$h" "$t" "$conns" "$WARMUP" "$op" "$NKEYS" >/dev/null
		res=$(wrk_run "$h" "$t" "$conns" "$DURATION" "$op" "$NKEYS")
		set -- $res
		line="$line|$2|$3|$4|$5"
	done
	rows+=("$line")
	echo "  done: $op with $conns connection(s)"
done

line="watch ${WATCHERS}w, 64c"
wnote=""
for h in "$OURS_HOST" "$REF_HOST"; do
	watch_run "$h"
	read -r evs rps p99 e1 e2 closed <<<"$W_RESULT"
	line="$line|$evs|$p99|$e1|$e2"
	exp=$(awk -v r="$rps" -v w="$WATCHERS" 'BEGIN { printf "%.0f", r * w }')
	who=etcd
	[ "$h" = "$OURS_HOST" ] && who=ours
	wnote="$wnote $who: $rps puts/s x $WATCHERS = $exp events/s made"
	[ "$closed" = 0 ] || wnote="$wnote, $closed streams closed"
	wnote="$wnote;"
done
rows+=("$line")
echo "  done: watch fan-out"

for h in "$OURS_HOST" "$REF_HOST"; do
	fill "$h" fill/ "$FILL"
done
sleep 1
OURS_RSS=$(rss_kib "$OURS_PID")
REF_RSS=$(rss_kib "$REF_PID")
OURS_N=$(nprocs "$OURS_PID")
REF_N=$(nprocs "$REF_PID")

echo
printf '%-18s %12s %10s %12s %10s %8s\n' test "ours req/s" "ours p99" "etcd req/s" "etcd p99" ours/etcd
for r in "${rows[@]}"; do
	IFS='|' read -r name ors op99 oerr osock ers ep99 eerr esock <<<"$r"
	ratio=$(awk -v a="$ors" -v b="$ers" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	printf '%-18s %12.0f %8.2fms %12.0f %8.2fms %8s' "$name" "$ors" "$op99" "$ers" "$ep99" "$ratio"
	[ "$oerr$osock$eerr$esock" = 0000 ] || printf '  (errors: ours %s/%s, etcd %s/%s)' \
		"$oerr" "$osock" "$eerr" "$esock"
	echo
done
echo "watch: events/s delivered to all $WATCHERS watchers ($WATCH_STREAMS streams), from the start"
echo "       of the puts until the last one reached every watcher; p99 is the puts'."
echo "      $wnote"
printf 'RSS after %d keys:  ours %.1f MiB in %d process%s, etcd %.1f MiB in %d process%s, ours/etcd %s\n' \
	$((FILL + NKEYS)) "$(awk -v k="$OURS_RSS" 'BEGIN{print k/1024}')" "$OURS_N" \
	"$([ "$OURS_N" = 1 ] || echo es)" \
	"$(awk -v k="$REF_RSS" 'BEGIN{print k/1024}')" "$REF_N" "$([ "$REF_N" = 1 ] || echo es)" \
	"$(awk -v a="$OURS_RSS" -v b="$REF_RSS" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')"
