#!/usr/bin/env bash
# A/B: two builds of checkpoint_exporter on the same tree in one run, for a
# change that must not cost speed (BENCHMARKS.md, "raw syscalls").
#
#   bench/ab.sh BEFORE_BIN AFTER_BIN [WORK]   (default WORK: /var/tmp/checkpoint_exporter-ab)
#
# Scan: 10 runs of each binary, interleaved, on the warm tree (b). Prune:
# `prune --keep=3 --execute` on fresh copies of (b), alternating A and B,
# caches dropped before each run. Needs: go, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 WORK=${3:-/var/tmp/checkpoint_exporter-ab}
RUNS=${RUNS:-3}
mkdir -p "$WORK"
go build -o "$WORK/gentree" ./bench/gentree
if [ ! -e "$WORK/b/.complete" ]; then
  rm -rf "$WORK/b"; "$WORK/gentree" --case=b --dir="$WORK/b"; touch "$WORK/b/.complete"
fi
du -s "$WORK/b" >/dev/null
timeit() { local s e; s=$(date +%s.%N); "$@" >/dev/null; e=$(date +%s.%N); python3 -c "print($e-$s)"; }
declare -A t
for i in $(seq 10); do   # interleaved, so both see the same cache and load
  t[scan_before]+=" $(timeit "$A" scan "--checkpoint.dir=$WORK/b" --log.level=error)"
  t[scan_after]+=" $(timeit "$B" scan "--checkpoint.dir=$WORK/b" --log.level=error)"
done
for i in $(seq "$RUNS"); do
  for which in before after; do
    bin=$A; [ "$which" = after ] && bin=$B
    rm -rf "$WORK/p"; cp -a "$WORK/b" "$WORK/p"
    sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true
    du -s "$WORK/p" >/dev/null
    d=$(timeit "$bin" prune "--checkpoint.dir=$WORK/p" --keep=3 --execute)
    [ "$(ls "$WORK/p" | grep -c '^checkpoint-')" = 3 ] || { echo "prune left the wrong checkpoints" >&2; exit 1; }
    t[prune_$which]+=" $d"
    echo "prune $which run $i: $d s"
  done
done
rm -rf "$WORK/p"
python3 -c '
import statistics,sys
m=[statistics.median(float(x) for x in a.split()) for a in sys.argv[1:]]
print("scan of (b), median of 10: before %.1f ms, after %.1f ms (%.2fx)" % (m[0]*1e3, m[1]*1e3, m[1]/m[0]))
print("prune --keep=3 --execute of (b), median of %d: before %.2f s, after %.2f s (%.2fx)" % (len(sys.argv[3].split()), m[2], m[3], m[3]/m[2]))' \
  "${t[scan_before]}" "${t[scan_after]}" "${t[prune_before]}" "${t[prune_after]}"
