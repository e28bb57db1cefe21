#!/usr/bin/env bash
# Side-by-side: netsight's conntrack dump vs `conntrack -L` on the same
# 20 000-entry table, in a throw-away network namespace. Run by hand as root:
#   sudo bench/conntrack/run.sh [entries] [runs]
# Needs: go, conntrack, nft, hping3, iproute2. Sends only inside the namespace
# (UDP to 10.82.0.0/16 through a veth pair whose both ends live in it).
set -euo pipefail
N=${1:-20000}
RUNS=${2:-15}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
NS=nsbench-ct-$$
BIN=$(mktemp -d)/netsight
cleanup() { ip netns del "$NS" 2>/dev/null || true; rm -rf "$(dirname "$BIN")"; }
trap cleanup EXIT

(cd "$ROOT" && go build -o "$BIN" ./cmd/netsight)
ip netns add "$NS"
nsx() { ip netns exec "$NS" "$@"; }
nsx ip link set lo up
nsx ip link add ct0 type veth peer name ct1
nsx ip addr add 10.81.0.1/24 dev ct0
nsx ip link set ct0 up
nsx ip link set ct1 up
nsx ip neigh add 10.81.0.2 lladdr 02:00:00:00:81:02 dev ct0 nud permanent
nsx ip route add 10.82.0.0/16 via 10.81.0.2 dev ct0
nsx nft 'add table inet t; add chain inet t c { type filter hook output priority 0; }; add rule inet t c ct state established accept'
nsx sysctl -qw net.netfilter.nf_conntrack_udp_timeout=600
# One UDP datagram per destination port: N distinct unreplied entries.
nsx timeout 60 hping3 -q --udp -a 10.81.0.1 -s 5000 -k -p ++10000 -c "$N" -i u20 10.82.0.1 >/dev/null 2>&1 || true
have=$(nsx conntrack -C)
echo "entries in table: $have (wanted $N)"

BIN_TEST=$(dirname "$BIN")/conntrack.test
(cd "$ROOT" && go test -c -o "$BIN_TEST" ./collector/conntrack)

# Runs are interleaved (peer, CLI, peer, CLI, ...) so both see the same load
# on a shared machine; median and minimum are printed.
wall_ms() { local s e; s=$(date +%s%N); "$@" >/dev/null 2>&1; e=$(date +%s%N); echo $(( (e - s) / 1000 )); }
peer=() cli=() dump=()
for _ in $(seq "$RUNS"); do
	peer+=("$(wall_ms nsx conntrack -L)")
	cli+=("$(wall_ms nsx "$BIN" conntrack --json --sample 0)")
	# In-process dump time as measured by netsight itself (no process start).
	dump+=("$(nsx "$BIN" conntrack --json --sample 0 | awk -F': ' '/"duration_seconds"/ {gsub(/,/,"",$2); printf "%d", $2*1e6}')")
done
stat() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {printf "%.2f %.2f", a[int((NR+1)/2)]/1000, a[1]/1000}'; }
read -r peer_med peer_min <<<"$(stat "${peer[@]}")"
read -r cli_med cli_min <<<"$(stat "${cli[@]}")"
read -r dump_med dump_min <<<"$(stat "${dump[@]}")"
# Warm, repeated dump (go test -bench) on the same table.
bench=$(nsx env NETSIGHT_BENCH_INPLACE=1 "$BIN_TEST" -test.run '^$' -test.bench DumpStates20k -test.benchtime "${RUNS}x" | awk '/DumpStates/ {printf "%.2f", $3/1e6}')
read_entries=$(nsx "$BIN" conntrack --json --sample 0 | awk -F': ' '/"entries_read"/ {gsub(/,/,"",$2); print $2}')

r() { echo "$1 / $2" | bc -l; }
echo "$RUNS interleaved runs, $have entries ($read_entries read by netsight), median / min:"
printf '  conntrack -L (wall, > /dev/null)            %8.2f / %8.2f ms\n' "$peer_med" "$peer_min"
printf '  netsight conntrack --json (wall, whole CLI) %8.2f / %8.2f ms   ratio %.2fx / %.2fx\n' "$cli_med" "$cli_min" "$(r "$cli_med" "$peer_med")" "$(r "$cli_min" "$peer_min")"
printf '  netsight dump, in the CLI (cold process)    %8.2f / %8.2f ms   ratio %.2fx / %.2fx\n' "$dump_med" "$dump_min" "$(r "$dump_med" "$peer_med")" "$(r "$dump_min" "$peer_min")"
printf '  netsight dump, go test -bench (warm)        %8.2f ms (mean)      ratio %.2fx (vs median)\n' "$bench" "$(r "$bench" "$peer_med")"
echo "goal: <= 0.50x"
