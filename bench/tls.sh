#!/bin/bash
# Benchmark: puts over https, our etcd against Debian's etcd 3.4 on the same machine.
#
#   bash bench/tls.sh            (from anywhere; builds nothing: run `ninja -C build` first)
#
# Makes a throw-away CA and a server certificate (ECDSA P-256, SAN of both hosts) with the
# openssl CLI in a temp dir, starts one single-member cluster of ours (build/etcd) on
# 127.0.57.1 and one of the reference (/usr/bin/etcd) on 127.0.57.2, each with an https
# client listener (--cert-file/--key-file, no --client-cert-auth) and a plain http peer
# listener, fresh data dirs, and drives both with the same wrk load (bench/kv.lua):
#   put: POST /v3/kv/put over https (keep-alive connections: the handshakes happen once
#   per connection, the load is the encrypted requests), random key of NKEYS, 256-byte
#   value, with 64 connections (and whatever else TESTS lists), WARMUP seconds of warm-up
#   and then DURATION seconds measured.
# Prints one table: test, ours req/s, ours p99, etcd req/s, etcd p99, ours/etcd, then the
# negotiated protocol and cipher. Every process it started is stopped by PID on exit.
#
# Environment: ETCD_BIN (ours, default build/etcd), REF_BIN (default /usr/bin/etcd),
# DURATION (10), WARMUP (2), NKEYS (10000), THREADS (wrk threads, default 2),
# TESTS (comma-separated "put <connections>", default "put 64").
# ETCD_BIN=/usr/bin/etcd compares etcd with itself, to check the bench.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TESTS=${TESTS:-put 64}
OURS_HOST=127.0.57.1
REF_HOST=127.0.57.2

TOOLS=openssl
WRK_SCHEME=https
source "$ROOT/bench/lib.sh"

# The certificate: made here, kept in WORK (removed on exit), never committed.
PKI=$WORK/pki
mkdir -p "$PKI"
(
	cd "$PKI"
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ca.key
	openssl req -x509 -new -key ca.key -sha256 -days 2 -subj "/CN=bench-ca" -out ca.crt
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out server.key
	openssl req -new -key server.key -subj "/CN=bench" -out server.csr
	printf 'basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:%s,IP:%s,IP:127.0.0.1\n' \
		"$OURS_HOST" "$REF_HOST" >server.ext
	openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -set_serial 1 -days 2 \
		-sha256 -extfile server.ext -out server.crt
) >"$WORK/openssl.log" 2>&1 || { echo "bench: openssl failed:" >&2; cat "$WORK/openssl.log" >&2; exit 1; }
chmod 600 "$PKI/server.key" "$PKI/ca.key"

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
		--listen-client-urls "https://$host:2379" --advertise-client-urls "https://$host:2379" \
		--cert-file "$PKI/server.crt" --key-file "$PKI/server.key" \
		--listen-peer-urls "http://$host:2380" --initial-advertise-peer-urls "http://$host:2380" \
		--initial-cluster "$name=http://$host:2380" >"$WORK/$name/log" 2>&1) &
	PIDS+=($!)
	for i in $(seq 300); do # up to 30 s
		kill -0 "${PIDS[-1]}" 2>/dev/null || break
		if curl -sf -m 1 --cacert "$PKI/ca.crt" "https://$host:2379/health" 2>/dev/null |
			grep -q true; then
			return 0
		fi
		sleep 0.1
	done
	echo "bench: $name did not become healthy over https; its log:" >&2
	tail -30 "$WORK/$name/log" >&2
	exit 1
}

negotiated() { # host -> "TLSv1.3 TLS_AES_256_GCM_SHA384" as openssl s_client sees it
	timeout 10 openssl s_client -connect "$1:2379" -CAfile "$PKI/ca.crt" </dev/null 2>/dev/null |
		awk '/^New, / { p = $2; c = $NF } /Protocol *:/ { p = $3 } /Cipher *:/ { c = $3 }
			END { print p, c }' | sed 's/,//g'
}

echo "starting ours ($OURS) on $OURS_HOST and etcd ($REF) on $REF_HOST in $WORK (https clients)"
start ours "$OURS" "$OURS_HOST"
start etcd "$REF" "$REF_HOST"

rows=()
IFS=',' read -r -a tests <<<"$TESTS"
for test in "${tests[@]}"; do
	set -- $test
	op=$1 conns=$2
	[ "$op" = put ] || { echo "bench: only put tests (got '$test')" >&2; exit 1; }
	t=$THREADS
	[ "$conns" -lt "$t" ] && t=$conns
	line="https $op, $conns conn"
	for h in "$OURS_HOST" "$REF_HOST"; do
		wrk_run "$h" "$t" "$conns" "$WARMUP" "$op" "$NKEYS" >/dev/null
		res=$(wrk_run "$h" "$t" "$conns" "$DURATION" "$op" "$NKEYS")
		set -- $res
		line="$line|$2|$3|$4|$5"
	done
	rows+=("$line")
	echo "  done: $op with $conns connection(s) over https"
done

echo
printf '%-20s %12s %10s %12s %10s %8s\n' test "ours req/s" "ours p99" "etcd req/s" "etcd p99" ours/etcd
for r in "${rows[@]}"; do
	IFS='|' read -r name ors op99 oerr osock ers ep99 eerr esock <<<"$r"
	ratio=$(awk -v a="$ors" -v b="$ers" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }')
	printf '%-20s %12.0f %8.2fms %12.0f %8.2fms %8s' "$name" "$ors" "$op99" "$ers" "$ep99" "$ratio"
	[ "$oerr$osock$eerr$esock" = 0000 ] || printf '  (errors: ours %s/%s, etcd %s/%s)' \
		"$oerr" "$osock" "$eerr" "$esock"
	echo
done
echo "negotiated (openssl s_client): ours $(negotiated "$OURS_HOST"), etcd $(negotiated "$REF_HOST")"
