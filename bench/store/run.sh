#!/usr/bin/env bash
# Side-by-side: netsight's embedded store vs a Prometheus server scraping the
# same agent's /metrics at the same interval. Both see the same input (the
# agent's registry); the script then runs the same PromQL on both and prints
# latency ratios, result agreement and disk usage. Run by hand (not in CI):
#
#   sudo bench/store/run.sh            # DURATION=120 INTERVAL=5 by default
#   DURATION=600 INTERVAL=1 bench/store/run.sh
#
# Needs: go, curl, jq, prometheus (Debian package "prometheus").
set -euo pipefail
DURATION=${DURATION:-120}
INTERVAL=${INTERVAL:-5}
RUNS=${RUNS:-20}
cd "$(dirname "$0")/../.."
for b in go curl jq prometheus; do command -v "$b" >/dev/null || { echo "missing $b" >&2; exit 1; }; done

tmp=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT

go build -o "$tmp/netsight" ./cmd/netsight
NS=127.0.0.1:19981
PR=127.0.0.1:19982
"$tmp/netsight" run --listen "$NS" --data-dir "$tmp/ns" --set store.scrape_interval="${INTERVAL}s" --log.level warn 2>"$tmp/ns.log" &
pids+=($!)
cat >"$tmp/prometheus.yml" <<YAML
global: {scrape_interval: ${INTERVAL}s, scrape_timeout: ${INTERVAL}s}
scrape_configs:
  - job_name: netsight
    honor_labels: true
    static_configs: [{targets: ["$NS"]}]
YAML
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/prom" \
  --web.listen-address="$PR" --log.level=warn 2>"$tmp/prom.log" &
pids+=($!)
echo "collecting for ${DURATION}s at ${INTERVAL}s ..." >&2
sleep "$DURATION"

now=$(date +%s)
start=$((now - DURATION))
step=$(( INTERVAL > DURATION / 250 ? INTERVAL : DURATION / 250 ))
queries=(
  'count({__name__=~"netsight_.+"})'
  'sum(rate(netsight_collector_duration_seconds[1m]))'
  'sum by (collector) (netsight_collector_up)'
  'topk(5, netsight_collector_duration_seconds)'
  '{__name__=~"netsight_.+"}'
)
# Prometheus adds job/instance labels; drop them so results compare.
strip='def s: del(.metric.job, .metric.instance); [.data.result[] | s | {m: (.metric|tostring), n: ((.values // [])|length)}] | sort_by(.m)'

timeit() { # url query -> mean seconds over RUNS
  local url=$1 q=$2 t total=0
  for _ in $(seq "$RUNS"); do
    t=$(curl -s -o /dev/null -w '%{time_total}' "$url/api/v1/query_range" --data-urlencode "query=$q" \
      -d start="$start" -d end="$now" -d step="$step")
    total=$(echo "$total + $t" | bc -l)
  done
  echo "scale=6; $total / $RUNS" | bc -l
}

printf '%-55s %10s %10s %7s %s\n' query netsight_s prom_s ratio agree
for q in "${queries[@]}"; do
  a=$(timeit "http://$NS" "$q"); b=$(timeit "http://$PR" "$q")
  ra=$(curl -s "http://$NS/api/v1/query_range" --data-urlencode "query=$q" -d start="$start" -d end="$now" -d step="$step" | jq -c "$strip")
  rb=$(curl -s "http://$PR/api/v1/query_range" --data-urlencode "query=$q" -d start="$start" -d end="$now" -d step="$step" | jq -c "$strip")
  na=$(echo "$ra" | jq length); nb=$(echo "$rb" | jq length)
  agree="series ${na}/${nb}"
  printf '%-55s %10.4f %10.4f %7.2f %s\n' "${q:0:55}" "$a" "$b" "$(echo "$a / $b" | bc -l)" "$agree"
done
dn=$(du -sb "$tmp/ns/tsdb" | cut -f1); dp=$(du -sb "$tmp/prom" | cut -f1)
printf 'disk bytes: netsight %d, prometheus %d, ratio %.2f\n' "$dn" "$dp" "$(echo "$dn / $dp" | bc -l)"
sa=$(curl -s "http://$NS/api/v1/query" --data-urlencode 'query=netsight_store_samples_appended_total' | jq -r '.data.result[0].value[1]')
sb=$(curl -s "http://$PR/metrics" | awk '/^prometheus_tsdb_head_samples_appended_total/ {s += $2} END {printf "%d", s}')
printf 'samples appended: netsight %s, prometheus %s\n' "$sa" "$sb"
echo "(netsight appends in-process, no HTTP scrape/parse; Prometheus adds up, scrape_* series per target)"
