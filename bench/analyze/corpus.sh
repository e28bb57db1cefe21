#!/usr/bin/env bash
# Corpus check: `netsight analyze --json` against tshark's tcp.analysis.* on
# every capture in a directory. Prints, per field, on how many files the two
# agree, then every disagreement (file, field, netsight, tshark).
#
# Usage: bench/analyze/corpus.sh [-b NETSIGHT] [-c CACHEDIR] [-a] [-r] DIR
#   -b  netsight binary (default: built from this tree)
#   -c  cache of tshark results, keyed by the file's SHA-1 (default
#       /tmp/netsight-corpus-cache): tshark is slow to start (~1 s a file),
#       and its answer does not change between two netsight versions
#   -a  run tshark on every file; by default a file in which neither
#       netsight nor `tcpdump -nr` sees a TCP header is counted as having none
#   -r  go through the files in reverse order (two runs, one each way, fill
#       the cache in half the time)
#
# Fields (netsight JSON name = tshark display filter, frames counted):
#   tcp                 = tcp && !icmp && !icmpv6 (ICMP errors quote TCP headers)
#   flows               = distinct tcp.stream
#   retrans+ooo         = retransmissions + out_of_order = tcp.analysis.retransmission
#                         + tcp.analysis.out_of_order (the sum, because docs/analyze.md
#                         difference 1 moves segments between the two)
#   fast_retransmissions, spurious_retransmissions, duplicate_acks, zero_windows,
#   zero_window_probes, window_full, window_updates, keep_alives, lost_segments,
#   acked_unseen (= tcp.analysis.ack_lost_segment), resets, syns, fins (the flags)
# A file is compared when either tool sees TCP in it.
#
# Needs: tshark, tcpdump, jq, sha1sum. Sends no traffic.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
bin="" cache=/tmp/netsight-corpus-cache all=0 order=-z
while getopts "b:c:ar" o; do
	case $o in
	b) bin=$OPTARG ;;
	c) cache=$OPTARG ;;
	a) all=1 ;;
	r) order=-rz ;;
	*) echo "usage: $0 [-b NETSIGHT] [-c CACHEDIR] [-a] [-r] DIR" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
dir=${1:?usage: $0 [-b NETSIGHT] [-c CACHEDIR] [-a] [-r] DIR}
if [ -z "$bin" ]; then
	bin=$(mktemp -d)/netsight
	(cd "$root" && CGO_ENABLED=0 go build -o "$bin" ./cmd/netsight)
fi
mkdir -p "$cache"

fields=(tcp flows retrans+ooo fast_retransmissions spurious_retransmissions duplicate_acks zero_windows
	zero_window_probes window_full window_updates keep_alives lost_segments acked_unseen resets syns fins)

# tshark_counts FILE: prints the fields' values in the order above.
tshark_counts() {
	timeout 300 nice -n 10 tshark -n -r "$1" -Y 'tcp && !icmp && !icmpv6' -T fields -E separator=';' -E occurrence=f \
		-e tcp.stream -e tcp.analysis.retransmission -e tcp.analysis.out_of_order \
		-e tcp.analysis.fast_retransmission -e tcp.analysis.spurious_retransmission -e tcp.analysis.duplicate_ack \
		-e tcp.analysis.zero_window -e tcp.analysis.zero_window_probe -e tcp.analysis.window_full \
		-e tcp.analysis.window_update -e tcp.analysis.keep_alive -e tcp.analysis.lost_segment \
		-e tcp.analysis.ack_lost_segment -e tcp.flags.reset -e tcp.flags.syn -e tcp.flags.fin 2>/dev/null |
		awk -F';' '
		function on(x) { return x != "" && x != "0" && x != "False" }
		{ n++; if ($1 != "") s[$1] = 1
		  if (on($2) || on($3)) ro++
		  for (i = 4; i <= 16; i++) if (on($i)) c[i]++ }
		END { printf "%d %d %d", n, length(s), ro
		      for (i = 4; i <= 16; i++) printf " %d", c[i]
		      print "" }'
}

# netsight_counts FILE: the same from netsight's JSON ("" when it failed).
netsight_counts() {
	"$bin" analyze --json --top 0 --partial-ok --progress never "$1" 2>/dev/null |
		jq -r '[.tcp, .flows, (.retransmissions + .out_of_order), .fast_retransmissions, .spurious_retransmissions,
			.duplicate_acks, .zero_windows, .zero_window_probes, .window_full, .window_updates, .keep_alives,
			.lost_segments, .acked_unseen, .resets, .syns, .fins] | map(tostring) | join(" ")' 2>/dev/null || true
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
files=0 compared=0 failed=0
: >"$tmp/diffs"
declare -A agree
for f in "${fields[@]}"; do agree[$f]=0; done
while IFS= read -r -d '' file; do
	files=$((files + 1))
	ours=$(netsight_counts "$file")
	if [ -z "$ours" ]; then
		failed=$((failed + 1))
		echo "$file: netsight failed: $("$bin" analyze --progress never "$file" 2>&1 >/dev/null | head -1 || true)" >>"$tmp/diffs"
		continue
	fi
	read -r -a o <<<"$ours"
	sum=$(sha1sum "$file" | cut -d' ' -f1)
	if [ -s "$cache/$sum" ]; then
		theirs=$(cat "$cache/$sum")
	elif [ "$all" = 0 ] && [ "${o[0]}" = 0 ] && ! timeout 20 tcpdump -nr "$file" 2>/dev/null | grep -q 'Flags \['; then
		theirs="0 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0"
	else
		theirs=$(tshark_counts "$file" || true) # tshark exits 2 on a damaged file
		echo "$theirs" >"$cache/$sum"
	fi
	read -r -a t <<<"$theirs"
	if [ "${o[0]}" = 0 ] && [ "${t[0]}" = 0 ]; then
		continue
	fi
	compared=$((compared + 1))
	for i in "${!fields[@]}"; do
		if [ "${o[$i]}" = "${t[$i]}" ]; then
			agree[${fields[$i]}]=$((agree[${fields[$i]}] + 1))
		else
			printf '%s: %s netsight %s tshark %s\n' "$file" "${fields[$i]}" "${o[$i]}" "${t[$i]}" >>"$tmp/diffs"
		fi
	done
done < <(find "$dir" -type f -print0 | sort "$order")

echo "captures: $files, with TCP (compared): $compared, netsight failed: $failed"
echo
printf '| %-26s | %14s |\n' field "files agreeing"
printf '|%s|%s|\n' "$(printf -- '-%.0s' {1..28})" "$(printf -- '-%.0s' {1..16})"
total=0
for f in "${fields[@]}"; do
	printf '| %-26s | %6d / %-5d |\n' "$f" "${agree[$f]}" "$compared"
	total=$((total + agree[$f]))
done
printf '| %-26s | %6d / %-5d |\n' "all fields" "$total" $((compared * ${#fields[@]}))
echo
echo "disagreements:"
cat "$tmp/diffs"
