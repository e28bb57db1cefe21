#!/usr/bin/env bash
# Side by side: netsight's prober vs prometheus-blackbox-exporter on the same
# lab paths (network namespaces created and removed by the benchmark; traffic
# never leaves them; blackbox listens on the client namespace's loopback).
# Needs root, iproute2, nftables, iputils-ping,
# prometheus-blackbox-exporter. Run by hand, not in CI:
#
#   sudo bench/probe/run.sh                 # defaults: 500 probes, 5000+10000 targets
#   sudo bench/probe/run.sh -scale 2000 -duration 10s
set -euo pipefail
cd "$(dirname "$0")/../.."
for b in ip nft ping nstat; do
	command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 2; }
done
BB=${BLACKBOX:-/usr/bin/prometheus-blackbox-exporter}
[ -x "$BB" ] || { echo "missing $BB (apt-get install prometheus-blackbox-exporter)" >&2; exit 2; }
go build -o /tmp/probebench.$$ ./bench/probe
trap 'rm -f /tmp/probebench.$$' EXIT
/tmp/probebench.$$ -blackbox "$BB" "$@"
