#!/usr/bin/env bash
# bench/flows/run.sh: overhead of the flows collector, side by side in one run.
#
#  1. iperf3 throughput between two namespaces without the agent and with it
#     (eBPF back end, then sock_diag), alternating ROUNDS times; prints the
#     medians and the ratio (goal: under 2% loss).
#  2. The agent's CPU per 10k flows/s: short connections at RATE/s for
#     WARMUP (default 5) + GEN_DUR seconds, measured over the last GEN_DUR
#     (steady state: by then the flow table has filled and recycles its
#     entries; the cost of the warm-up, the table's one-time first fill
#     included, is printed apart); the agent's user+sys CPU (getrusage) plus, for eBPF,
#     the in-kernel run time of its programs (run_time_ns of each program,
#     counted while the sysctl kernel.bpf_stats_enabled is 1: the script sets
#     it and restores it at exit), as a share of one core, scaled to 10k
#     flows/s (goal: under 2% of a core), with program runs per flow and ns
#     per run (less disturbed by other load than shares of a core).
#  3. eBPF only: one iperf3 transfer of IPERF_DUR seconds (default 20) at
#     full speed: program runs per second and in-kernel share of a core
#     (goal: under 0.5%). IPERF_DUR=0 skips it.
#
# Run by hand as root (not in CI). Traffic stays between the two namespaces
# this script creates (10.251.x.0/30) and is bounded in time.
#   sudo bench/flows/run.sh            # DUR=5 ROUNDS=3 RATE=10000 GEN_DUR=10
# Knobs: AGENT_INTERVAL (default 10s, the collector's default interval: one
# refresh of open connections, i.e. one socket iterator pass per network
# namespace for eBPF, per interval), SKIP_THROUGHPUT=1 (churn and long transfer only), CHURN_BACKENDS="ebpf" (default
# "ebpf sockdiag"; "none" skips the churn), PROFILE_DIR=dir (CPU profiles agent-<backend>.pprof),
# FLOWBENCH=binary (use a prebuilt flowbench, e.g. to compare two versions
# in one session).
#
# Figures (before/after issue #18, with the load average and the other
# agents' sock_ops programs present at the time) are in
# docs/collectors/flows.md "Overhead".
set -euo pipefail
[ "$(id -u)" = 0 ] || { echo "run as root" >&2; exit 1; }
for b in iperf3 jq ip go; do command -v $b >/dev/null || { echo "need $b" >&2; exit 1; }; done

DUR=${DUR:-5}
ROUNDS=${ROUNDS:-3}
RATE=${RATE:-10000}
GEN_DUR=${GEN_DUR:-10}
WARMUP=${WARMUP:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
tmp=$(mktemp -d)
A=fbench-a-$$
B=fbench-b-$$
net=$((RANDOM % 250))
IPA=10.251.$net.1
IPB=10.251.$net.2
IPERF_DUR=${IPERF_DUR:-20}
AGENT_INTERVAL=${AGENT_INTERVAL:-10s}
pids=()
stats0=$(sysctl -n kernel.bpf_stats_enabled)

cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	sysctl -qw kernel.bpf_stats_enabled="$stats0"
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT
sysctl -qw kernel.bpf_stats_enabled=1
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg) ($(nproc) CPUs)"

if [ -n "${FLOWBENCH:-}" ]; then cp "$FLOWBENCH" "$tmp/flowbench"; else (cd "$root" && go build -o "$tmp/flowbench" ./bench/flows/flowbench); fi

ip netns add "$A"
ip netns add "$B"
ip link add "fb$$a" type veth peer name "fb$$b"
ip link set "fb$$a" netns "$A"
ip link set "fb$$b" netns "$B"
ip -n "$A" addr add $IPA/30 dev "fb$$a"
ip -n "$B" addr add $IPB/30 dev "fb$$b"
for ns in "$A" "$B"; do ip -n "$ns" link set lo up; done
ip -n "$A" link set "fb$$a" up
ip -n "$B" link set "fb$$b" up
# The churn test closes from the client: let it reuse TIME_WAIT ports.
ip netns exec "$A" sysctl -qw net.ipv4.ip_local_port_range="10000 65000" net.ipv4.tcp_tw_reuse=1
sleep 1

ip netns exec "$B" iperf3 -s -p 5201 >/dev/null 2>&1 &
pids+=($!)
sleep 0.5

iperf_bps() { # appends the receiver's bit/s to $1; keeps the JSON in $1.json
	ip netns exec "$A" timeout $((DUR + 20)) iperf3 -c $IPB -p 5201 -t "$DUR" -J >"$1.json"
	jq '.end.sum_received.bits_per_second' "$1.json" >>"$1"
	jq '.end.cpu_utilization_percent.host_total + .end.cpu_utilization_percent.remote_total' "$1.json" >>"$1.cpu"
}

AGENT=
start_agent() { # backend [flowbench flags]; sets AGENT; report in $tmp/agent-<backend>.json
	rm -f "$tmp/ready"
	# sock_diag sees one network namespace: run it in the client's.
	local in=()
	[ "$1" = sockdiag ] && in=(ip netns exec "$A")
	local prof=()
	[ -n "${PROFILE_DIR:-}" ] && prof=(-cpuprofile "$PROFILE_DIR/agent-$1.pprof")
	"${in[@]}" "$tmp/flowbench" agent -backend "$1" -interval "$AGENT_INTERVAL" "${prof[@]}" -duration 10m -ready "$tmp/ready" "${@:2}" >"$tmp/agent-$1.json" 2>"$tmp/agent-$1.log" &
	AGENT=$!
	for _ in $(seq 100); do [ -e "$tmp/ready" ] && break; sleep 0.1; done
	[ -e "$tmp/ready" ] || { echo "agent ($1) did not start:" >&2; cat "$tmp/agent-$1.log" >&2; exit 1; }
}

stop_agent() { kill -TERM "$AGENT"; wait "$AGENT" || true; }

calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }

median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

if [ "${SKIP_THROUGHPUT:-0}" != 1 ]; then
echo "== throughput: iperf3 -t $DUR, $ROUNDS rounds, alternating =="
: >"$tmp/none"; : >"$tmp/ebpf"; : >"$tmp/sockdiag"; : >"$tmp/ratio-ebpf"; : >"$tmp/ratio-sockdiag"; : >"$tmp/bpfshare"
for r in $(seq "$ROUNDS"); do
	iperf_bps "$tmp/none"
	start_agent ebpf; iperf_bps "$tmp/ebpf"; stop_agent
	# Share of one core spent in the eBPF programs during this transfer.
	jq ".bpf_seconds / $DUR * 100" "$tmp/agent-ebpf.json" >>"$tmp/bpfshare"
	start_agent sockdiag; iperf_bps "$tmp/sockdiag"; stop_agent
	n=$(tail -1 "$tmp/none")
	for b in ebpf sockdiag; do calc "$(tail -1 "$tmp/$b")/$n" >>"$tmp/ratio-$b"; echo >>"$tmp/ratio-$b"; done
	echo "round $r: Gbit/s none $(calc "$n/1e9") ebpf $(calc "$(tail -1 "$tmp/ebpf")/1e9") sockdiag $(calc "$(tail -1 "$tmp/sockdiag")/1e9"); eBPF programs $(calc "$(tail -1 "$tmp/bpfshare")")% of a core"
done
none=$(median <"$tmp/none")
for b in ebpf sockdiag; do
	m=$(median <"$tmp/$b")
	pr=$(median <"$tmp/ratio-$b")
	echo "$b: median $(calc "$m/1e9") Gbit/s vs $(calc "$none/1e9") without agent: ratio of medians $(calc "$m/$none"), median of paired ratios $(calc "$pr") (throughput loss $(calc "(1-$pr)*100")%)"
done
echo "ebpf: the programs ran $(median <"$tmp/bpfshare")% of one core during the transfers, iperf3 (both ends) used $(median <"$tmp/ebpf.cpu")% of a core"
echo
fi
echo "== connection churn: $RATE conn/s target for ${WARMUP}s of warm-up + ${GEN_DUR}s measured =="
ip netns exec "$B" "$tmp/flowbench" sink -listen $IPB:7000 -duration $(((WARMUP + GEN_DUR) * 4 + 30))s &
pids+=($!)
sleep 0.5
for b in ${CHURN_BACKENDS:-ebpf sockdiag}; do
	[ "$b" = none ] && continue
	start_agent $b -warmup "${WARMUP}s" ${RING_BYTES:+-ring-bytes "$RING_BYTES"}
	gen=$(ip netns exec "$A" "$tmp/flowbench" gen -target $IPB:7000 -rate "$RATE" -duration "$((WARMUP + GEN_DUR))s")
	sleep 1.5 # let the last closes arrive
	stop_agent
	rep=$(cat "$tmp/agent-$b.json")
	cpu=$(echo "$rep" | jq '.user_cpu_seconds + .sys_cpu_seconds')
	bpf=$(echo "$rep" | jq .bpf_seconds)
	wall=$(echo "$rep" | jq .wall_seconds)
	closed=$(echo "$rep" | jq .connections_closed)
	gsec=$(echo "$gen" | jq ".seconds - $WARMUP")
	echo "$b: generator $(echo "$gen" | jq -c .)"
	echo "$b: warm-up (${WARMUP}s, the flow table's first fill): $(echo "$rep" | jq .warmup_connections_closed) closed flows, agent CPU $(echo "$rep" | jq .warmup_cpu_seconds)s user+sys, $(echo "$rep" | jq .warmup_bpf_seconds)s in eBPF programs"
	echo "$b: measured: agent saw $closed closed flows (eBPF: both ends of each connection plus any other TCP on the host; sockdiag: the client namespace) in ${wall}s"
	echo "$b: agent CPU ${cpu}s user+sys (of which the socket iterator's program $(echo "$rep" | jq .iter_seconds)s, $(echo "$rep" | jq .iter_runs) runs), ${bpf}s in sock_ops/tracepoint programs ($(echo "$rep" | jq .bpf_runs) runs)"
	if [ "$closed" -gt 0 ]; then
		fr=$(calc "$closed/$gsec")
		echo "$b: $(calc "$fr") flows/s -> per 10k flows/s: user space $(calc "$cpu/$gsec*100*10000/$fr")% of a core, eBPF $(calc "$bpf/$gsec*100*10000/$fr")%, total $(calc "($cpu+$bpf)/$gsec*100*10000/$fr")%"
		echo "$b: per-flow cost: user space $(calc "$cpu/$closed*1e6") us, eBPF $(calc "$bpf/$closed*1e6") us"
		runs=$(echo "$rep" | jq .bpf_runs)
		[ "$runs" -gt 0 ] && echo "$b: eBPF program runs per flow $(calc "$runs/$closed"), ns per run $(calc "$bpf/$runs*1e9")"
		[ "$runs" -gt 0 ] && echo "$b: per program: $(echo "$rep" | jq -r --argjson n "$closed" '.programs // {} | to_entries | map("\(.key) \(.value.runs / $n * 100 | round / 100) runs/flow x \(.value.ns_per_run | round) ns = \(.value.seconds / $n * 1e9 | round) ns/flow") | join("; ")')"
	fi
	echo "$b: closed records read $(echo "$rep" | jq .records_read), lost $(echo "$rep" | jq .ringbuf_lost); new connections past the hot window $(echo "$rep" | jq .hot_window_full)"
	echo "$b: programs (ns per run): $(echo "$rep" | jq -c '.programs // {} | map_values(.ns_per_run | round)')"
	echo "$b: load average after: $(cut -d' ' -f1-3 /proc/loadavg); other sock_ops programs loaded: $(echo "$rep" | jq .other_sockops_programs)"
done
if [ "$IPERF_DUR" -gt 0 ]; then
	echo
	echo "== long transfer: iperf3 -t $IPERF_DUR at full speed, eBPF back end =="
	start_agent ebpf
	DUR=$IPERF_DUR iperf_bps "$tmp/long"
	stop_agent
	rep=$(cat "$tmp/agent-ebpf.json")
	wall=$(echo "$rep" | jq .wall_seconds)
	bpf=$(echo "$rep" | jq .bpf_seconds)
	runs=$(echo "$rep" | jq .bpf_runs)
	echo "ebpf: $(calc "$(tail -1 "$tmp/long")/1e9") Gbit/s; over the agent's ${wall}s: sock_ops/tracepoint programs ran $runs times ($(calc "$runs/$wall")/s), in kernel $(calc "$bpf/$wall*100")% of a core; socket iterator $(echo "$rep" | jq .iter_runs) runs; agent user+sys $(calc "($(echo "$rep" | jq '.user_cpu_seconds + .sys_cpu_seconds'))/$wall*100")% of a core"
	echo "ebpf: load average after: $(cut -d' ' -f1-3 /proc/loadavg); other sock_ops programs loaded: $(echo "$rep" | jq .other_sockops_programs)"
fi
