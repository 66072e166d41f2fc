#!/usr/bin/env bash
# sim.sh: runs the strategy simulator (bench/sim) over every workload and
# writes its tables, headed by when and of which commit they were taken,
# into the bench/sim.sh block of BENCHMARKS.md, and a plot of the
# heterogeneous workload to docs/sim-heterogeneous.png. The simulator is
# deterministic: the same commit gives the same figures on any machine.
# Needs gnuplot (Debian's gnuplot-nox) for the plot; without it the block
# is written and the plot left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/docblock.sh

out=bench/out
mkdir -p "$out"
go run ./bench/sim > "$out/sim.md"
go run ./bench/sim -json -workload heterogeneous > "$out/sim-heterogeneous.json"

{
	echo "\`bench/sim.sh\` ($(run_label)):"
	cat "$out/sim.md"
	echo
	echo "![p99 and time-to-first-token p99 of each strategy on the heterogeneous workload](docs/sim-heterogeneous.png)"
} > "$out/sim-block.md"
write_doc_block bench/sim.sh "$out/sim-block.md"

if ! command -v gnuplot >/dev/null; then
	echo "no gnuplot: docs/sim-heterogeneous.png left as it is" >&2
	exit 0
fi
# strategy, p99 s, TTFT p99 s: from the JSON lines, without a JSON tool.
sed -E 's/.*"strategy":"([^"]*)".*"p99_ms":([0-9.]+).*"ttft_p99_ms":([0-9.]+).*/\1 \2 \3/' \
	"$out/sim-heterogeneous.json" | awk '{ print $1, $2 / 1000, $3 / 1000 }' > "$out/sim.dat"
gnuplot <<PLOT
set terminal pngcairo size 900,420 font "sans,11" noenhanced
set output "docs/sim-heterogeneous.png"
set title "Heterogeneous workload: one of four servers 5x slower for the middle third (bench/sim)"
set ylabel "seconds"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top right
set grid ytics
set yrange [0:*]
plot "$out/sim.dat" using 2:xtic(1) title "completion p99", "" using 3 title "time to first token p99"
PLOT
echo "wrote docs/sim-heterogeneous.png"
