#!/usr/bin/env bash
# bench/soak/run.sh: the agent under every flood and churn load for a long
# time, with its memory, file descriptors and goroutines printed every minute.
#
# The agent (built from this tree) runs in a lab network namespace inside a
# cgroup limited to MEMORY_MAX (default 512 MiB, the shipped unit's
# MemoryMax). From a second namespace over a veth pair: a burst of SYN_BURST
# SYNs with random source ports at SYN_RATE/s every minute, CONN_BATCH short
# connections every 10 s (to 8 echo servers); in the agent's namespace
# CHURN_PAIRS veth pairs created and deleted every 30 s while capture follows
# them; a query_range over the last 15 minutes every 2 s and a /metrics scrape
# every second. The defaults are a low intensity that leaves a shared 2-core
# machine usable. Prints per minute: RSS, peak RSS, cgroup memory, fds,
# threads, goroutines and the load so far; then a summary (max RSS, growth).
#
# Run by hand as root (not in CI). All traffic stays between the two
# namespaces it creates; everything is bounded by DURATION and removed at
# the end or on Ctrl-C.
#   sudo bench/soak/run.sh          # 30m
#   sudo bench/soak/run.sh 2h
# Knobs (environment): MEMORY_MAX (bytes), SYN_BURST, SYN_RATE, CONN_BATCH,
# CHURN_PAIRS, REPORT (e.g. 1m).
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for b in ip go timeout; do command -v $b >/dev/null || { echo "need $b" >&2; exit 1; }; done
cd "$(dirname "$0")/../.."
DURATION=${1:-${DURATION:-30m}}
case "$DURATION" in
  *h) secs=$(( ${DURATION%h} * 3600 ));;
  *m) secs=$(( ${DURATION%m} * 60 ));;
  *s) secs=${DURATION%s};;
  *) echo "DURATION: want Ns, Nm or Nh, got $DURATION" >&2; exit 1;;
esac
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CGO_ENABLED=0 go build -o "$tmp/netsight" ./cmd/netsight
go build -o "$tmp/soak" ./bench/soak/soak
# The run bounds itself; timeout is the backstop (setup and teardown included).
timeout --kill-after=30s $(( secs + 300 )) "$tmp/soak" -bin "$tmp/netsight" -duration "${secs}s" \
  -memory-max "${MEMORY_MAX:-536870912}" -syn-burst "${SYN_BURST:-20000}" -syn-rate "${SYN_RATE:-5000}" \
  -conn-batch "${CONN_BATCH:-2000}" -churn-pairs "${CHURN_PAIRS:-10}" -report "${REPORT:-1m}"
