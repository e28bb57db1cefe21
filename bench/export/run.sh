#!/usr/bin/env bash
# netsight's outputs side by side with vmagent on the same series, in one run:
#   1. CPU and wire bytes per 1,000 samples for each output (remote_write 1.0
#      and 2.0, influxdb, otlp over HTTP, collectd) delivering a backlog to a
#      sink on 127.0.0.1, and vmagent forwarding the same samples (remote
#      write 1.0 in and out) to the same kind of sink; ratios netsight/vmagent;
#   2. catch-up: both hold the same backlog (netsight in its store, vmagent in
#      its on-disk queue) while their VictoriaMetrics (one each, on loopback)
#      is down for -outage with live samples still arriving every 5s; then
#      VictoriaMetrics restarts and the script prints the time to the first and
#      the last row, drain rate and CPU, ratios, and whether VictoriaMetrics
#      ends up with exactly the samples sent (no gap).
# Every process listens on 127.0.0.1 and is stopped at the end. Run by hand:
#
#   bench/export/run.sh                       # 200 series, 1h backlog, 30s outage (~3 min)
#   bench/export/run.sh -outage 10m           # the issue's 10-minute receiver outage
#   bench/export/run.sh -series 2000 -backlog 2h
#
# Flags: -series N (default 200), -backlog D (default 1h; at most ~1h50m, the
# outputs' default max_age is 2h), -outage D (default 30s).
# Needs: go, victoria-metrics and vmagent (Debian package victoria-metrics).
set -euo pipefail
cd "$(dirname "$0")/../.."
for b in go victoria-metrics vmagent; do command -v "$b" >/dev/null || { echo "missing $b (apt-get install victoria-metrics)" >&2; exit 2; }; done
exec go test -run '^$' -bench ExportVsVmagent -benchtime 1x -timeout 60m ./bench/export/ -args "$@"
