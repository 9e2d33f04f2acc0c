#!/usr/bin/env bash
# Co-tenant benchmark (BENCHMARKS.md, "Beside a training job"): how much a
# CPU-bound job using every core loses to the exporter doing back-to-back full
# scans of the 1,000,000-file tree, with the background scans at idle priority
# (the default) and at normal priority; and the scrape latency of two paced
# scrapers (10/s each) during those scans, with and without the co-tenant.
#
#   bench/cotenant.sh [WORK]     (default WORK: /var/tmp/checkpoint_exporter-bench)
#   UNITS=200000 ROUNDS=5 bench/cotenant.sh
#
# Run it on an otherwise idle machine: anything else running is a co-tenant too.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/var/tmp/checkpoint_exporter-bench}
UNITS=${UNITS:-200000}
ROUNDS=${ROUNDS:-5}
PORT=${PORT:-19877}
B=$WORK/bin
mkdir -p "$B" "$WORK/out"
go build -o "$B/checkpoint_exporter" ./cmd/checkpoint_exporter
for p in gentree scrapeload cotenant nullserver; do go build -o "$B/$p" "./bench/$p"; done
dir=$WORK/c
if [ ! -e "$dir/.complete" ]; then
  rm -rf "$dir"; "$B/gentree" --case=c --dir="$dir"; touch "$dir/.complete"
fi
du -s "$dir" >/dev/null # warm the cache

cat > "$WORK/out/cotenant.yml" <<YAML
scan_interval: 1s
targets:
  - name: c
    path: $dir
YAML
URL=http://127.0.0.1:$PORT/metrics
pid=
stop() {
  if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  pid=
}
trap stop EXIT
# start PRIORITY [CONFIG]: the exporter rescanning everything back to back
# (every scan a full walk), once its first scan is done.
start() {
  "$B/checkpoint_exporter" --config.file="${2:-$WORK/out/cotenant.yml}" --web.listen-address="127.0.0.1:$PORT" \
    --collector.full-rescan-interval=1ns "--$1collector.idle-priority" --log.level=debug >"$WORK/out/exporter.log" 2>&1 &
  pid=$!
  until curl -sf "$URL" 2>/dev/null | grep -q '^checkpoint_dir_checkpoints{target="c"} 1000'; do sleep 0.2; done
}
# cpu PID: user+system time of PID, of its children waited for and of its
# running children (the walker process), in 10 ms ticks.
cpu() {
  local t=0 c
  for c in $(pgrep -P "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$c/stat" 2>/dev/null || echo 0))); done
  echo $((t + $(awk '{print $14 + $15 + $16 + $17}' "/proc/$1/stat")))
}
scans() { grep -c 'msg=scanned' "$WORK/out/exporter.log" || true; }
tput() { sed -E 's/.*throughput=([0-9.]+).*/\1/'; }
ratio() { python3 -c "import sys; print('%.3f' % (float(sys.argv[1])/float(sys.argv[2])))" "$1" "$2"; }

echo "# Beside a training job"
echo
echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), tree (c): 1,000,000 files; co-tenant: $UNITS units of SHA-256 over 64 KiB on every core; $ROUNDS rounds, each the co-tenant alone then beside the exporter."
echo
echo "| round | exporter | alone (units/s) | beside (units/s) | beside / alone | full scans during the run | exporter and walker CPU during the run |"
echo "| ---: | --- | ---: | ---: | ---: | ---: | ---: |"
ratios=()
for round in $(seq "$ROUNDS") normal; do
  prio=""; label="idle priority (default)"
  [ "$round" = normal ] && { prio="no-"; label="normal priority"; }
  alone=$("$B/cotenant" --units="$UNITS" | tput)
  start "$prio"
  t0=$(scans); c0=$(cpu "$pid")
  got=$("$B/cotenant" --units="$UNITS" | tput)
  n=$(( $(scans) - t0 )); c=$(( $(cpu "$pid") - c0 ))
  stop
  r=$(ratio "$got" "$alone")
  [ "$round" != normal ] && ratios+=("$r")
  echo "| $round | $label | $alone | $got | $r | $n | $((c * 10)) ms |"
done
echo
echo "Beside / alone at idle priority over $ROUNDS rounds: median $(python3 -c 'import sys,statistics; print("%.3f" % statistics.median(map(float, sys.argv[1:])))' "${ratios[@]}"), mean $(python3 -c 'import sys; print("%.3f" % (sum(map(float, sys.argv[1:]))/len(sys.argv[1:])))' "${ratios[@]}")."
echo
echo "Scrape latency, two scrapers at 10/s each (600 scrapes):"
echo
echo "| exporter | co-tenant | p50 | p99 | max |"
echo "| --- | --- | ---: | ---: | ---: |"
lat() { "$B/scrapeload" --url="$URL" --clients=2 --interval=100ms --scrapes=600 | sed -E 's/.*p50=([^ ]+) p99=([^ ]+) max=([^ ]+).*/\1 | \2 | \3/'; }
"$B/nullserver" --listen="127.0.0.1:$PORT" & pid=$!
until curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1; do sleep 0.1; done
echo "| floor: a Go HTTP server sending 4.5 KB of constant text (bench/nullserver) | none | $("$B/scrapeload" --url="http://127.0.0.1:$PORT/" --clients=2 --interval=100ms --scrapes=600 | sed -E 's/.*p50=([^ ]+) p99=([^ ]+) max=([^ ]+).*/\1 | \2 | \3/') |"
stop
printf 'scan_interval: 1h\ntargets:\n  - name: c\n    path: %s\n' "$dir" > "$WORK/out/noscan.yml"
start "" "$WORK/out/noscan.yml"  # one scan at start, then none for an hour
echo "| not scanning (same targets, last scan kept) | none | $(lat) |"
stop
for prio in "" "no-"; do
  label="full scans back to back, idle priority"; [ -n "$prio" ] && label="full scans back to back, normal priority"
  start "$prio"
  echo "| $label | none | $(lat) |"
  if [ -z "$prio" ]; then
    "$B/cotenant" --units=$((UNITS * 20)) >/dev/null & co=$!
    echo "| $label | every core busy | $(lat) |"
    kill "$co" 2>/dev/null || true; wait "$co" 2>/dev/null || true
  fi
  hwm=$(awk '/^VmHWM/{printf "%.1f", $2/1024}' "/proc/$pid/status")
  stop
done
echo
echo "Peak RSS of the server after these full scans of (c) (VmHWM): $hwm MiB."
echo
a=$WORK/a
if [ ! -e "$a/.complete" ]; then
  rm -rf "$a"; "$B/gentree" --case=a --dir="$a"; touch "$a/.complete"
fi
echo "CPU per scrape of the exporter (300 sequential scrapes, three runs; tree (a), default scan interval):"
echo
echo "| flags | CPU per scrape (runs) | p50 | p99 |"
echo "| --- | ---: | ---: | ---: |"
# cpurow LABEL URL: three runs of 300 sequential scrapes of URL served by $pid.
cpurow() {
  local cpus=() r
  for _ in 1 2 3; do
    r=$("$B/scrapeload" --url="$2" --clients=1 --scrapes=300 --pid="$pid")
    cpus+=("$(echo "$r" | sed -E 's/.*cpu_per_scrape=([^ ]+).*/\1/')")
  done
  echo "| $1 | ${cpus[*]} | $(echo "$r" | sed -E 's/.*p50=([^ ]+) p99=([^ ]+) max=.*/\1 | \2/') |"
}
"$B/nullserver" --listen="127.0.0.1:$PORT" & pid=$!
until curl -sf "http://127.0.0.1:$PORT/" >/dev/null 2>&1; do sleep 0.1; done
cpurow "floor: bench/nullserver, no exporter" "http://127.0.0.1:$PORT/"
stop
for flags in "" "--web.disable-exporter-metrics"; do
  "$B/checkpoint_exporter" --checkpoint.dir="$a" --web.listen-address="127.0.0.1:$PORT" $flags >/dev/null 2>&1 &
  pid=$!
  until curl -sf "$URL" 2>/dev/null | grep -q '^checkpoint_dir_checkpoints'; do sleep 0.2; done
  cpurow "${flags:-defaults}" "$URL"
  stop
done
