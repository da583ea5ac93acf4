#!/bin/bash
# Benchmark: the gateway's overhead (etcd gateway start), ours against Debian's etcd 3.4's
# on the same machine.
#
#   bash bench/gateway.sh        (from anywhere; builds nothing: run `ninja -C build` first)
#
# Starts one single-member cluster of ours (build/etcd) on 127.0.58.1 with our gateway on
# 127.0.58.2:2379 in front of it, and one of the reference (/usr/bin/etcd) on 127.0.58.3
# with its gateway on 127.0.58.4:2379, fresh data dirs, and drives each member directly
# and through its gateway with the same wrk load (bench/kv.lua): POST /v3/kv/put of a
# random key of NKEYS with a 256-byte value, for each connection count in CONNS, WARMUP
# seconds of warm-up, then DURATION seconds measured.
# Prints one table: test, then for ours and for etcd the direct and gateway req/s and the
# gateway's cost in throughput, and ours/etcd through the gateways. Every process it
# started is stopped by PID on exit.
#
# Environment: ETCD_BIN (ours, default build/etcd), REF_BIN (default /usr/bin/etcd),
# DURATION (10), WARMUP (2), NKEYS (10000), THREADS (wrk threads, default 2),
# CONNS (comma-separated connection counts, default "1,64").
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CONNS=${CONNS:-1,64}
OURS_HOST=127.0.58.1
OURS_GW=127.0.58.2
REF_HOST=127.0.58.3
REF_GW=127.0.58.4

source "$ROOT/bench/lib.sh"

free_port() { # host port: exits when something listens there
	if (exec 3<>/dev/tcp/"$1"/"$2") 2>/dev/null; then
		echo "bench: $1:$2 is already in use" >&2
		exit 1
	fi
}

healthy() { # host name -> waits up to 30 s for /health through host:2379
	local i
	for i in $(seq 300); do
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		curl -sf -m 1 "http://$1:2379/health" 2>/dev/null | grep -q true && return 0
		sleep 0.1
	done
	echo "bench: $2 did not become healthy; its log:" >&2
	tail -30 "$WORK/$2/log" >&2
	exit 1
}

member() { # name binary host
	local name=$1 bin=$2 host=$3
	free_port "$host" 2379
	free_port "$host" 2380
	mkdir -p "$WORK/$name"
	(cd "$WORK/$name" && exec "$bin" --name "$name" --data-dir "$WORK/$name/data" \
		--listen-client-urls "http://$host:2379" --advertise-client-urls "http://$host:2379" \
		--listen-peer-urls "http://$host:2380" --initial-advertise-peer-urls "http://$host:2380" \
		--initial-cluster "$name=http://$host:2380" >"$WORK/$name/log" 2>&1) &
	PIDS+=($!)
	healthy "$host" "$name"
}

gateway() { # name binary listen-host endpoint-host
	local name=$1 bin=$2 host=$3 ep=$4
	free_port "$host" 2379
	mkdir -p "$WORK/$name"
	(cd "$WORK/$name" && exec "$bin" gateway start --endpoints "$ep:2379" \
		--listen-addr "$host:2379" >"$WORK/$name/log" 2>&1) &
	PIDS+=($!)
	healthy "$host" "$name"
}

echo "starting ours ($OURS) on $OURS_HOST (gateway $OURS_GW) and etcd ($REF) on $REF_HOST (gateway $REF_GW) in $WORK"
member ours "$OURS" "$OURS_HOST"
gateway ours-gw "$OURS" "$OURS_GW" "$OURS_HOST"
member etcd "$REF" "$REF_HOST"
gateway etcd-gw "$REF" "$REF_GW" "$REF_HOST"

measure() { # host conns -> req/s
	local t=$THREADS res
	[ "$2" -lt "$t" ] && t=$2
	wrk_run "$1" "$t" "$2" "$WARMUP" put "$NKEYS" >/dev/null
	res=$(wrk_run "$1" "$t" "$2" "$DURATION" put "$NKEYS")
	set -- $res
	echo "$2"
}

rows=()
IFS=',' read -r -a conns <<<"$CONNS"
for c in "${conns[@]}"; do
	line="put, $c conn"
	for h in "$OURS_HOST" "$OURS_GW" "$REF_HOST" "$REF_GW"; do
		line="$line|$(measure "$h" "$c")"
	done
	rows+=("$line")
	echo "  done: put with $c connection(s)"
done

echo
printf '%-14s %12s %12s %9s %12s %12s %9s %10s\n' test "ours direct" "ours gw" "gw cost" \
	"etcd direct" "etcd gw" "gw cost" "gw ours/etcd"
for r in "${rows[@]}"; do
	IFS='|' read -r name od og ed eg <<<"$r"
	awk -v n="$name" -v od="$od" -v og="$og" -v ed="$ed" -v eg="$eg" 'BEGIN {
		oc = 0; ec = 0; q = 0
		if (od > 0) oc = 100 * (od - og) / od
		if (ed > 0) ec = 100 * (ed - eg) / ed
		if (eg > 0) q = og / eg
		printf "%-14s %12.0f %12.0f %8.1f%% %12.0f %12.0f %8.1f%% %10.2f\n", n, od, og, oc, ed, eg, ec, q }'
done
