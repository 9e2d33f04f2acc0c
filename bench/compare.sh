#!/usr/bin/env bash
# Benchmarks checkpoint_exporter's scan against du -s and gdu on the same warm
# trees, and records rescans, syscalls, peak RSS, scrape latency during a scan
# and prune against rm -rf. Results: a Markdown report on stdout and in
# $WORK/results.md. See BENCHMARKS.md.
#
#   bench/compare.sh [WORK]          (default WORK: /var/tmp/checkpoint_exporter-bench)
#   CASES="a b" RUNS=5 bench/compare.sh
#
# Needs: go, du, gdu, hyperfine, strace, /usr/bin/time, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-/var/tmp/checkpoint_exporter-bench}
CASES=${CASES:-a b c}
RUNS=${RUNS:-5}
mkdir -p "$WORK/bin" "$WORK/out"
for tool in du gdu hyperfine strace python3; do
  command -v "$tool" >/dev/null || { echo "missing $tool (apt-get install gdu hyperfine strace)" >&2; exit 1; }
done
[ -x /usr/bin/time ] || { echo "missing /usr/bin/time (apt-get install time)" >&2; exit 1; }

go build -o "$WORK/bin/checkpoint_exporter" ./cmd/checkpoint_exporter
for p in gentree rescan scrapeload; do go build -o "$WORK/bin/$p" "./bench/$p"; done
B=$WORK/bin
REPORT=$WORK/results.md
: > "$REPORT"
say() { echo "$*" | tee -a "$REPORT"; }

median() { python3 -c 'import sys,statistics; print(statistics.median(float(x) for x in sys.argv[1:]))' "$@"; }

# peak RSS in MiB, median of 3 runs
rss() {
  local v=()
  for _ in 1 2 3; do
    /usr/bin/time -f '%M' -o "$WORK/out/rss.txt" "$@" >/dev/null 2>&1 || true
    v+=("$(tail -1 "$WORK/out/rss.txt")")
  done
  python3 -c 'import sys,statistics; print("%.1f" % (statistics.median(float(x) for x in sys.argv[1:])/1024))' "${v[@]}"
}

# total syscalls of a command and its threads
syscalls() {
  strace -c -f -o "$WORK/out/strace.txt" "$@" >/dev/null 2>&1 || true
  awk '$NF=="total"{print $(NF-2)}' "$WORK/out/strace.txt"
}

say "# checkpoint_exporter benchmark"
say ""
say "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -r), $(df -T "$WORK" | awk 'NR==2{print $2}') at $WORK; $(du --version | head -1); gdu $(gdu --version 2>&1 | awk '/Version/{print $2}'); median of $RUNS warm runs (hyperfine)."
say ""
say "| case | files | tool | wall (median) | vs du | peak RSS | syscalls |"
say "| --- | ---: | --- | ---: | ---: | ---: | ---: |"
for c in $CASES; do
  dir=$WORK/$c
  if [ ! -e "$dir/.complete" ]; then
    rm -rf "$dir"; "$B/gentree" --case="$c" --dir="$dir"; touch "$dir/.complete"
  fi
  files=$(find "$dir" -type f | wc -l)
  du -s "$dir" >/dev/null; gdu -n -p -s -x "$dir" >/dev/null  # warm the cache
  scan=("$B/checkpoint_exporter" scan "--checkpoint.dir=$dir" --log.level=error)
  hyperfine -N --style none --warmup 2 --runs "$RUNS" --export-json "$WORK/out/$c.json" \
    -n exporter "${scan[*]}" -n du "du -s $dir" -n gdu "gdu -n -p -s -x $dir" >/dev/null 2>&1
  read -r t_exp t_du t_gdu < <(python3 -c '
import json,sys
r={x["command"]:x["median"] for x in json.load(open(sys.argv[1]))["results"]}
print(r["exporter"], r["du"], r["gdu"])' "$WORK/out/$c.json")
  for tool in exporter du gdu; do
    case $tool in
      exporter) cmd=("${scan[@]}"); t=$t_exp ;;
      du) cmd=(du -s "$dir"); t=$t_du ;;
      gdu) cmd=(gdu -n -p -s -x "$dir"); t=$t_gdu ;;
    esac
    ratio=$(python3 -c "print('%.2fx' % ($t/$t_du))")
    say "| $c | $files | $tool | $(python3 -c "print('%.1f ms' % ($t*1000))") | $ratio | $(rss "${cmd[@]}") MiB | $(syscalls "${cmd[@]}") |"
  done
done

# filesystem syscalls only (no futex noise from the Go runtime)
fssyscalls() {
  strace -c -f -e trace=%file,%desc -o "$WORK/out/strace.txt" "$@" >/dev/null 2>&1 || true
  awk '$NF=="total"{print $(NF-2)}' "$WORK/out/strace.txt"
}

say ""
say "## Rescans (one process, tree unchanged)"
say ""
say "| case | first scan | rescan (median of 20) | du -s | rescan vs du | file syscalls per rescan |"
say "| --- | ---: | ---: | ---: | ---: | ---: |"
for c in $CASES; do
  dir=$WORK/$c
  out=$("$B/rescan" --dir="$dir" --rescans=20)
  first=$(echo "$out" | awk '/first scan/{print $NF}')
  re=$(echo "$out" | awk '/rescan median/{print $3}')
  s0=$(fssyscalls "$B/rescan" --dir="$dir" --rescans=0)
  s10=$(fssyscalls "$B/rescan" --dir="$dir" --rescans=10)
  t_du=$(python3 -c 'import json,sys; print([x["median"] for x in json.load(open(sys.argv[1]))["results"] if x["command"]=="du"][0])' "$WORK/out/$c.json")
  ratio=$(python3 -c "
import re,sys
def sec(s):
    m=re.fullmatch(r'([0-9.]+)(ns|µs|us|ms|s)', s); v=float(m.group(1))
    return v*{'ns':1e-9,'µs':1e-6,'us':1e-6,'ms':1e-3,'s':1}[m.group(2)]
print('%.0fx faster' % ($t_du/sec('$re')))")
  say "| $c | $first | $re | $(python3 -c "print('%.1f ms' % ($t_du*1000))") | $ratio | $(( (s10 - s0) / 10 )) |"
done

# serve DIR FULLRESCAN: start the exporter on DIR, wait for its first scan.
serve() {
  printf 'scan_interval: 100ms\ntargets:\n  - name: t\n    path: %s\n' "$1" > "$WORK/out/serve.yml"
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$B/checkpoint_exporter" --config.file="$WORK/out/serve.yml" --web.listen-address="127.0.0.1:$port" \
    --collector.full-rescan-interval="$2" --log.level=warn 2>"$WORK/out/serve.log" &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/metrics" | grep -q 'checkpoint_dir_up{target="t"} 1'; do sleep 0.2; done
  URL="http://127.0.0.1:$port/metrics"
}
if [[ " $CASES " == *" c "* ]]; then
  say ""
  say "## Scrape latency"
  say ""
  say "| exporter is | clients | pacing | scrapes | p50 | p99 | max |"
  say "| --- | ---: | --- | ---: | ---: | ---: | ---: |"
  row() { # label pacing-label interval
    local r; r=$("$B/scrapeload" --url="$URL" --clients=10 --scrapes=1000 --interval="$3")
    say "| $1 | 10 | $2 | $(echo "$r" | sed -E 's/.*scrapes=([0-9]+).*p50=([^ ]+) p99=([^ ]+) max=([^ ]+)/\1 | \2 | \3 | \4/') |"
  }
  serve "$WORK/a" 1h
  row "idle (250 files, rescans cached)" "back to back" 0s
  kill $pid; wait $pid 2>/dev/null || true
  serve "$WORK/c" -1s   # every scan is a full walk of 1 000 000 files, back to back
  row "walking (c) without pause" "back to back" 0s
  row "walking (c) without pause" "100 ms apart" 100ms
  dur=$(curl -fs "$URL" | awk '/^checkpoint_scan_duration_seconds/{print $2}')
  kill $pid; wait $pid 2>/dev/null || true
  say ""
  say "Last full scan of (c) inside the server (one walker, the other core left to HTTP): ${dur}s."
fi

if [[ " $CASES " == *" b "* ]]; then
  say ""
  say "## prune --execute --keep 3 against rm -rf on (b)"
  say ""
  tp=(); tr=()
  for _ in 1 2 3; do
    rm -rf "$WORK/b-prune" "$WORK/b-rm"
    cp -a "$WORK/b" "$WORK/b-prune"; cp -a "$WORK/b" "$WORK/b-rm"
    old=$(ls "$WORK/b-rm" | grep '^checkpoint-' | sort -t- -k2 -n | head -n -3 | sed "s|^|$WORK/b-rm/|")
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    du -s "$WORK/b-prune" "$WORK/b-rm" >/dev/null
    s=$(date +%s.%N); "$B/checkpoint_exporter" prune "--checkpoint.dir=$WORK/b-prune" --keep=3 --execute >/dev/null; e=$(date +%s.%N)
    tp+=("$(python3 -c "print($e-$s)")")
    s=$(date +%s.%N); echo "$old" | xargs rm -rf; e=$(date +%s.%N)
    tr+=("$(python3 -c "print($e-$s)")")
    [ "$(ls "$WORK/b-prune" | grep -c '^checkpoint-')" = 3 ] || { echo "prune left the wrong checkpoints" >&2; exit 1; }
  done
  mp=$(median "${tp[@]}"); mr=$(median "${tr[@]}")
  say "197 of 200 directories (98 500 files): prune $(python3 -c "print('%.0f ms' % ($mp*1000))"), rm -rf $(python3 -c "print('%.0f ms' % ($mr*1000))"): $(python3 -c "print('%.2fx' % ($mp/$mr))") (median of 3; the prune includes its scan, lock and re-checks)"
  rm -rf "$WORK/b-prune" "$WORK/b-rm"
fi
