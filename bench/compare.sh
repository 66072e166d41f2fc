#!/usr/bin/env bash
# compare.sh: the Go benchmarks of WORKLOADS.md side by side with the Rust
# original (onwards 0.18.1's load_balancer.rs, built from rsbench), on this
# machine, interleaved (for each workload Rust, Go, Rust; ROUNDS times),
# and the ratio table Go/Rust.
#
#   bench/compare.sh            # every workload, N = 2, 4, 16, 64
#   ROUNDS=4 GO_COUNT=5 bench/compare.sh
#   bench/compare.sh --table    # the table of the last run again, from bench/out
#
# Each run, and --table, also regenerates the bench/compare.sh block of
# BENCHMARKS.md from the table, with when, of which commit and on which CPU
# it was taken (bench/docblock.sh); review it with git diff and commit it.
#
# Needs cargo and Debian's librust-rand-dev (rsbench's README says why);
# RSBENCH names the rsbench source (default ../shared/bench/rsbench).
# Writes the raw runs to bench/out/ (ignored by git) and prints a Markdown
# table: the median of Go's ROUNDS x GO_COUNT runs, the median of Rust's
# 2 x ROUNDS runs (each itself a median of 10 samples), the range of each
# side's runs (how noisy the host was), Go/Rust, and Go/Rust of each
# side's fastest run, which a spell of the host that slows one side's
# runs more than the other's moves least. The defaults, 3
# rounds of 4, give each Go benchmark the 10 runs or more that WORKLOADS.md
# asks a quoted median to rest on.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/docblock.sh
src=${RSBENCH:-../shared/bench/rsbench}
count=${GO_COUNT:-4}
rounds=${ROUNDS:-3}
out=bench/out
mkdir -p "$out"

table_only=false
[ "${1:-}" = --table ] && table_only=true

if $table_only; then
	if [ ! -s "$out/go.txt" ] || [ ! -s "$out/rust.txt" ]; then
		echo "compare.sh --table: no run in $out to tabulate; run bench/compare.sh first" >&2
		exit 2
	fi
	cat "$out/machine.txt" 2>/dev/null || true
elif ! command -v cargo >/dev/null; then
	echo "compare.sh: cargo is not installed; it builds the Rust side" >&2
	exit 2
fi
if ! $table_only; then
	build=$(mktemp -d)
	trap 'rm -rf "$build"' EXIT
	cp -r "$src" "$build/rsbench"
	(cd "$build/rsbench" && cargo build --release -q)
	rsbench=$build/rsbench/target/release/rsbench
	go test -c -o "$build/pool.test" .

	echo "\`bench/compare.sh\`, $rounds rounds of Rust, Go ($count runs), Rust: $(run_label)" | tee "$out/machine.txt"

	# Interleaved finely, so that the host's noisy spells fall on both sides:
	# for each workload, Rust, then Go, then Rust again; ROUNDS times over.
	: > "$out/rust.txt"; : > "$out/go.txt"
	for round in $(seq "$rounds"); do
		for w in SelectClose:select_close SelectInflight:select_inflight FallbackIter:fallback_iter \
			PrioritySelect:priority_select ParallelInflight:parallel2_inflight; do
			gobench=${w%%:*} rsname=${w#*:}
			cpu=""; [ "$gobench" = ParallelInflight ] && cpu="-test.cpu 2"
			"$rsbench" "$rsname" >> "$out/rust.txt"
			"$build/pool.test" -test.run '^$' -test.bench "^Benchmark$gobench\$" $cpu -test.benchmem \
				-test.count "$count" -test.benchtime 200ms | grep '^Benchmark' >> "$out/go.txt"
			"$rsbench" "$rsname" >> "$out/rust.txt"
		done
	done
fi

# Go name -> Rust name.
awk -v count="$count" '
function median(list,   n, a, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function fastest(list,   n, a, i, lo) {
	n = split(list, a, " "); lo = a[1] + 0
	for (i = 2; i <= n; i++) if (a[i] + 0 < lo) lo = a[i] + 0
	return lo
}
function spread(list,   n, a, i, lo, hi) {
	n = split(list, a, " "); lo = hi = a[1] + 0
	for (i = 2; i <= n; i++) { if (a[i] + 0 < lo) lo = a[i] + 0; if (a[i] + 0 > hi) hi = a[i] + 0 }
	return sprintf("%.1f-%.1f", lo, hi)
}
BEGIN {
	name["SelectClose"] = "select_close"; name["SelectInflight"] = "select_inflight"
	name["FallbackIter"] = "fallback_iter"; name["PrioritySelect"] = "priority_select"
	name["ParallelInflight"] = "parallel2_inflight"
	order = "SelectClose SelectInflight FallbackIter PrioritySelect ParallelInflight"
}
FILENAME ~ /rust/ { rust[$1] = rust[$1] " " $2; next }
/^Benchmark/ {
	split($1, parts, "/"); sub(/^Benchmark/, "", parts[1]); sub(/-[0-9]+$/, "", parts[2])
	key = parts[1] "/" parts[2]
	gons[key] = gons[key] " " $3
	for (i = 4; i < NF; i++) if ($(i + 1) == "B/op") bop[key] = $i
}
END {
	print "| workload | Go ns/op | Rust ns/op | Go/Rust | Go runs | Rust runs | Go/Rust, fastest runs | Go B/op |"
	print "|---|---|---|---|---|---|---|---|"
	split(order, names, " ")
	for (k = 1; k <= 5; k++) for (n = 1; n <= 4; n++) {
		N = n == 1 ? 2 : n == 2 ? 4 : n == 3 ? 16 : 64
		key = names[k] "/" N; rkey = name[names[k]] "/" N
		if (!(key in gons) || !(rkey in rust)) continue
		g = median(gons[key]); r = median(rust[rkey])
		printf "| %s | %.1f | %.1f | %.2f | %s | %s | %.2f | %s |\n", key, g, r, g / r, spread(gons[key]), spread(rust[rkey]), fastest(gons[key]) / fastest(rust[rkey]), bop[key]
	}
}' "$out/rust.txt" "$out/go.txt" | tee "$out/table.md"

{ cat "$out/machine.txt"; echo; cat "$out/table.md"; } > "$out/block.md"
write_doc_block bench/compare.sh "$out/block.md"
