#!/bin/bash
# Benchmark of three-member clusters: ours against Debian's etcd 3.4, same machine, same load.
#
#   bash bench/cluster.sh        (from anywhere; builds nothing: run `ninja -C build` first)
#
# Starts a cluster of ours (build/etcd) on 127.0.1.10-12 and one of the reference
# (/usr/bin/etcd) on 127.0.1.20-22, the guide's flags on the guide's ports, fresh data
# dirs in a temp dir, then, on each cluster in turn (never both at once):
#   - fills the key space (NKEYS keys, 256-byte values, bench/fill.py) through the leader,
#   - put   : POST /v3/kv/put to the leader, random key, 256-byte value,
#   - range : POST /v3/kv/range to the leader, one random existing key, linearizable
#             (etcd's default: a ReadIndex round with the followers per read batch),
#   - range on a follower (linearizable: the follower asks the leader for the read index),
#   with 1 and 64 connections, WARMUP seconds of warm-up, then DURATION seconds measured
#   (wrk, bench/kv.lua). Every put is replicated to both followers and fsynced by a majority
#   before it is acknowledged.
# Prints one table: test, ours req/s, ours p99, etcd req/s, etcd p99, ours/etcd; for one
# connection also the mean latency (1/rate) ratio, which the issue's target is about.
# Every process it started is stopped by PID on exit.
#
# Environment: ETCD_BIN (ours, default build/etcd), REF_BIN (default /usr/bin/etcd),
# DURATION (10), WARMUP (2), NKEYS (10000), THREADS (wrk threads for 64 connections, 2).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
OURS_HOSTS=(127.0.1.10 127.0.1.11 127.0.1.12)
REF_HOSTS=(127.0.1.20 127.0.1.21 127.0.1.22)

source "$ROOT/bench/lib.sh"

start_cluster() { # name binary host0 host1 host2 -> pids in PIDS
	local name=$1 bin=$2 i h ic="" d
	shift 2
	local hosts=("$@")
	for i in 0 1 2; do
		for port in 2379 2380; do
			if (exec 3<>/dev/tcp/"${hosts[i]}"/"$port") 2>/dev/null; then
				echo "bench: ${hosts[i]}:$port is already in use" >&2
				exit 1
			fi
		done
		ic="$ic${ic:+,}infra$i=http://${hosts[i]}:2380"
	done
	for i in 0 1 2; do
		h=${hosts[i]}
		d=$WORK/$name$i
		mkdir -p "$d"
		(cd "$d" && exec "$bin" --name "infra$i" --data-dir "$d/data" \
			--initial-advertise-peer-urls "http://$h:2380" --listen-peer-urls "http://$h:2380" \
			--listen-client-urls "http://$h:2379" --advertise-client-urls "http://$h:2379" \
			--initial-cluster-token "bench-$name" --initial-cluster "$ic" \
			--initial-cluster-state new >"$d/log" 2>&1) &
		PIDS+=($!)
	done
	for h in "${hosts[@]}"; do
		for i in $(seq 300); do # up to 30 s
			if curl -sf -m 1 "http://$h:2379/health" 2>/dev/null | grep -q true; then
				continue 2
			fi
			sleep 0.1
		done
		echo "bench: $name on $h did not become healthy; its log:" >&2
		tail -30 "$WORK/$name"*/log >&2
		exit 1
	done
}

leader_host() { # host... -> the host whose member leads (by /v3/maintenance/status)
	local h id lead
	for h in "$@"; do
		j=$(curl -sf -m 5 -X POST "http://$h:2379/v3/maintenance/status" -d '{}')
		id=$(echo "$j" | sed -n 's/.*"member_id":"\([0-9]*\)".*/\1/p')
		lead=$(echo "$j" | sed -n 's/.*"leader":"\([0-9]*\)".*/\1/p')
		if [ -n "$id" ] && [ "$id" = "$lead" ]; then
			echo "$h"
			return
		fi
	done
	echo "bench: no leader among $*" >&2
	exit 1
}

# One cluster at a time: the other's processes would take CPU from it.
declare -A RES
run_cluster() { # name binary hosts...
	local name=$1 bin=$2
	shift 2
	local hosts=("$@") lead follower test op conns t where
	echo "starting $name ($bin) on ${hosts[*]}"
	PIDS=()
	start_cluster "$name" "$bin" "${hosts[@]}"
	lead=$(leader_host "${hosts[@]}")
	for h in "${hosts[@]}"; do
		[ "$h" != "$lead" ] && follower=$h && break
	done
	fill "$lead" key "$NKEYS"
	for test in "put 1 L" "put 64 L" "range 1 L" "range 64 L" "range 64 F"; do
		set -- $test
		op=$1 conns=$2 where=$3
		t=$THREADS
		[ "$conns" -lt "$t" ] && t=$conns
		h=$lead
		[ "$where" = F ] && h=$follower
		wrk_run "$h" "$t" "$conns" "$WARMUP" "$op" "$NKEYS" >/dev/null
		RES[$name,$test]=$(wrk_run "$h" "$t" "$conns" "$DURATION" "$op" "$NKEYS")
		echo "  done: $op with $conns connection(s) on the $([ "$where" = L ] && echo leader || echo follower)"
	done
	stop_members
}

run_cluster ours "$OURS" "${OURS_HOSTS[@]}"
run_cluster etcd "$REF" "${REF_HOSTS[@]}"

echo
printf '%-26s %12s %10s %12s %10s %8s\n' "test (3 members)" "ours req/s" "ours p99" \
	"etcd req/s" "etcd p99" ours/etcd
for test in "put 1 L" "put 64 L" "range 1 L" "range 64 L" "range 64 F"; do
	set -- $test
	name="$1, $2 conn, $([ "$3" = L ] && echo leader || echo follower)"
	set -- ${RES[ours,$test]}
	ors=$2 op99=$3 oerr=$4 osock=$5
	set -- ${RES[etcd,$test]}
	ers=$2 ep99=$3 eerr=$4 esock=$5
	ratio=$(awk -v a="$ors" -v b="$ers" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	printf '%-26s %12.0f %8.2fms %12.0f %8.2fms %8s' "$name" "$ors" "$op99" "$ers" "$ep99" "$ratio"
	[ "$oerr$osock$eerr$esock" = 0000 ] || printf '  (errors: ours %s/%s, etcd %s/%s)' \
		"$oerr" "$osock" "$eerr" "$esock"
	echo
done
set -- ${RES[ours,put 1 L]}
o=$2
set -- ${RES[etcd,put 1 L]}
awk -v a="$o" -v b="$2" 'BEGIN { if (a > 0 && b > 0)
	printf "put latency, 1 conn (mean = 1/rate): ours %.3f ms, etcd %.3f ms, ours/etcd %.2f\n",
		1000 / a, 1000 / b, b / a }'
