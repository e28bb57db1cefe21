#!/usr/bin/env bash
# Side-by-side: netsight's socket counting vs `ss -tan` on the same 40 000
# TCP sockets (20 000 connections over 10.80.0.1 on the loopback of a
# throw-away namespace, held by 4 helper processes: the open-file limit is
# per process). Run by hand as root:
#   sudo bench/sockets/run.sh [connections-per-helper] [runs]
# Needs: go, iproute2 (ss). Traffic stays inside the namespace.
set -euo pipefail
PER=${1:-5000}
RUNS=${2:-15}
HELPERS=4
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NS=nsbench-sk-$$
TMP=$(mktemp -d)
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT

(cd "$ROOT" && go build -o "$TMP/netsight" ./cmd/netsight && go test -c -o "$TMP/sockets.test" ./collector/sockets)
ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
nsx ip addr add 10.80.0.1/32 dev lo
for i in $(seq 0 $((HELPERS - 1))); do
	mkfifo "$TMP/in$i"
	# The helper holds its sockets until its stdin (the fifo) closes.
	nsx env NETSIGHT_HOLD_SOCKETS="10.80.0.1:$((7100 + i)):$PER" "$TMP/sockets.test" <"$TMP/in$i" >"$TMP/out$i" 2>&1 &
	PIDS+=($!)
	exec {fd}>"$TMP/in$i"
done
for i in $(seq 0 $((HELPERS - 1))); do
	for _ in $(seq 600); do grep -q ready "$TMP/out$i" 2>/dev/null && break; sleep 0.1; done
	grep -q ready "$TMP/out$i" || { echo "helper $i failed: $(cat "$TMP/out$i")"; exit 1; }
done
echo "sockets (ss -tanH | wc -l): $(nsx ss -tanH | wc -l)"

# Runs are interleaved (peer, CLI, peer, CLI, ...) so both see the same load
# on a shared machine; median and minimum are printed.
wall_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
peer=() cli=()
for _ in $(seq "$RUNS"); do
	peer+=("$(wall_ms nsx ss -tan)")
	# Whole CLI (process start, socket count with sock_diag, conntrack
	# count/max, NIC read; no conntrack dump).
	cli+=("$(wall_ms nsx "$TMP/netsight" conntrack --json --sample 0 --max-dump-entries 0)")
done
stat() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[int((NR+1)/2)]/1000, a[1]/1000}'; }
read -r peer_med peer_min <<<"$(stat "${peer[@]}")"
read -r cli_med cli_min <<<"$(stat "${cli[@]}")"
# In-process counting of the same sockets (the benchmark counts the
# namespace it runs in), both back ends.
bench=$(nsx env NETSIGHT_BENCH_INPLACE=1 "$TMP/sockets.test" -test.run '^$' -test.bench Count40k -test.benchtime "${RUNS}x")
iter=$(echo "$bench" | awk '/bpf_iter/ {printf "%.2f", $3/1e6}')
diag=$(echo "$bench" | awk '/sockdiag/ {printf "%.2f", $3/1e6}')

r() { echo "$1 / $2" | bc -l; }
echo "$RUNS runs, median / min:"
printf '  ss -tan (wall, > /dev/null)                     %8.2f / %8.2f ms\n' "$peer_med" "$peer_min"
printf '  netsight count, bpf_iter (in-process, mean)     %8.2f ms            ratio %.2fx (vs median)\n' "$iter" "$(r "$iter" "$peer_med")"
printf '  netsight count, sockdiag (in-process, mean)     %8.2f ms            ratio %.2fx (vs median)\n' "$diag" "$(r "$diag" "$peer_med")"
printf '  netsight conntrack --max-dump-entries 0 (CLI)   %8.2f / %8.2f ms   ratio %.2fx / %.2fx\n' "$cli_med" "$cli_min" "$(r "$cli_med" "$peer_med")" "$(r "$cli_min" "$peer_min")"
echo "goal: <= 0.50x"
