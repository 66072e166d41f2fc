#!/usr/bin/env bash
# load.sh: the gateway under load beside what a user would put in front of
# two upstreams instead: nginx (least_conn), HAProxy (leastconn) and a bare
# httputil.ReverseProxy with round robin (the floor for a Go proxy), all on
# this machine, the same two mock upstreams, the same load from wrk: 64
# connections, a non-streaming chat completion, then an SSE stream of 20
# events. Prints a Markdown table, with the CPU time each path's process
# spends per request, and writes bench/out/latency.png; then
# the same loads at a fixed rate below every proxy's capacity (loadbench
# rate), where the latency is the path's own rather than a queue's; then
# the memory a stream in flight holds in the gateway and in the
# ReverseProxy (loadbench holdstreams). Three more rows are ceilings, not
# proxies to use (bench/loadbench/ceiling.go, bareserver.go): rawproxy, a
# Go proxy of this load with no net/http at all; serverproxy, net/http's
# server with the upstream exchange written out, the most a Handler can
# be; and gateway-bareserver, the gateway over gateway.Transport on a bare
# HTTP/1.1 loop instead of net/http's server.
#
# At the end it regenerates the bench/load.sh block of BENCHMARKS.md from
# the tables, and docs/load-latency.png, the plot the block shows
# (bench/docblock.sh); review them with git diff and commit them.
#
#   bench/load.sh                # 3 rounds of 5 s wrk runs, 5 s per fixed-rate run
#   ROUNDS=5 DURATION=8s RATE_SECONDS=10 bench/load.sh
#   RATE_CHAT=2000 RATE_STREAM=500 bench/load.sh   # the fixed rates, per second
#
# Needs Debian's nginx-light, haproxy, wrk and gnuplot-nox (it installs the
# missing ones when it can).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/docblock.sh
duration=${DURATION:-5s}
out=$PWD/bench/out
mkdir -p "$out"
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

need=()
for tool in nginx:nginx-light haproxy:haproxy wrk:wrk gnuplot:gnuplot-nox; do
	command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# free_port picks a port nothing answers on, below the kernel's ephemeral
# range: the runs leave thousands of connections behind in TIME_WAIT, whose
# local ports come from that range and may not be bound again.
ephemeral_lo=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
[ "$ephemeral_lo" -gt 11000 ] || ephemeral_lo=60000
free_port() {
	local p
	while :; do
		p=$((10000 + RANDOM % (ephemeral_lo - 10000)))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
wait_port() {
	for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
	echo "nothing listens on $1" >&2; exit 1
}

# proc maps each path of the table to the process that serves it ("direct"
# is the first upstream), whose CPU time per request the table reports.
declare -A proc
go build -o "$work/loadbench" ./bench/loadbench
up1=$(free_port); "$work/loadbench" upstream -addr "127.0.0.1:$up1" & pids+=($!); proc[direct]=$!
up2=$(free_port); "$work/loadbench" upstream -addr "127.0.0.1:$up2" & pids+=($!)
ups="http://127.0.0.1:$up1,http://127.0.0.1:$up2"
rp=$(free_port); "$work/loadbench" reverseproxy -addr "127.0.0.1:$rp" -to "$ups" & pids+=($!); proc[reverseproxy]=$!
gw=$(free_port); "$work/loadbench" gateway -addr "127.0.0.1:$gw" -to "$ups" & pids+=($!); proc[gateway]=$!
gwt=$(free_port); "$work/loadbench" gateway-transport -addr "127.0.0.1:$gwt" -to "$ups" & pids+=($!); proc[gateway-transport]=$!
raw=$(free_port); "$work/loadbench" rawproxy -addr "127.0.0.1:$raw" -to "$ups" & pids+=($!); proc[rawproxy]=$!
srv=$(free_port); "$work/loadbench" serverproxy -addr "127.0.0.1:$srv" -to "$ups" & pids+=($!); proc[serverproxy]=$!
bare=$(free_port); "$work/loadbench" gateway-bareserver -addr "127.0.0.1:$bare" -to "$ups" & pids+=($!); proc[gateway-bareserver]=$!

ngx=$(free_port)
mkdir -p "$work/nginx/logs"
cat > "$work/nginx.conf" <<CONF
worker_processes auto;
events { worker_connections 4096; }
http {
	access_log off;
	upstream up { least_conn; server 127.0.0.1:$up1; server 127.0.0.1:$up2; keepalive 256; }
	server {
		listen 127.0.0.1:$ngx;
		location / {
			proxy_pass http://up;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
		}
	}
}
CONF
nginx -p "$work/nginx" -c "$work/nginx.conf" -g "daemon off; pid $work/nginx.pid; error_log stderr error;" & pids+=($!); proc[nginx]=$!

hap=$(free_port)
cat > "$work/haproxy.cfg" <<CONF
global
	maxconn 4096
defaults
	mode http
	timeout connect 5s
	timeout client 60s
	timeout server 60s
frontend f
	bind 127.0.0.1:$hap
	default_backend b
backend b
	balance leastconn
	http-reuse always
	server s1 127.0.0.1:$up1
	server s2 127.0.0.1:$up2
CONF
haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 & pids+=($!); proc[haproxy]=$!
for p in $up1 $up2 $rp $gw $gwt $raw $srv $bare $ngx $hap; do wait_port "$p"; done

for kind in chat stream; do
	stream=false; [ "$kind" = stream ] && stream=true
	cat > "$work/$kind.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"model":"m","stream":$stream,"messages":[{"role":"user","content":"Hi"}]}'
LUA
done

# cpu_ticks PID: the CPU time, user and system, in clock ticks, that the
# process PID and its children (nginx's workers) have used so far. It
# includes the kernel's work on the loopback packets the process sends.
cpu_ticks() {
	local t=0 p
	for p in "$1" $(pgrep -P "$1" || true); do
		t=$((t + $(awk '{ print $14 + $15 }' "/proc/$p/stat")))
	done
	echo "$t"
}
ticks_per_s=$(getconf CLK_TCK)

# run NAME PORT KIND: one wrk run, its summary appended to load-runs.txt,
# with the CPU time that NAME's process spent per request.
: > "$out/load-runs.txt"
run() {
	local before
	before=$(cpu_ticks "${proc[$1]}")
	wrk -t2 -c64 -d"$duration" --latency -s "$work/$3.lua" "http://127.0.0.1:$2/v1/chat/completions" > "$work/wrk.txt"
	awk -v name="$1" -v kind="$3" -v ticks=$(($(cpu_ticks "${proc[$1]}") - before)) -v hz="$ticks_per_s" '
	function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /s$/) return v * 1000000; return v }
	/^ +50%/ { p50 = us($2) } /^ +75%/ { p75 = us($2) } /^ +90%/ { p90 = us($2) } /^ +99%/ { p99 = us($2) }
	/^Requests\/sec/ { rps = $2 } /Non-2xx/ { bad = $NF } / requests in / { n = $1 }
	END { printf "%s %s %.0f %.0f %.0f %.0f %.0f %d %.1f\n", kind, name, rps, p50, p75, p90, p99, bad, n ? ticks / hz * 1e6 / n : 0 }' "$work/wrk.txt" >> "$out/load-runs.txt"
}
# median_awk is an awk function: the median of the numbers of a string of
# " n1 n2 ...", as the awk programs below gather them.
median_awk='
function median(list,   v, n, a, b, t) {
	n = split(substr(list, 2), v, " ")
	for (a = 1; a <= n; a++) for (b = a + 1; b <= n; b++) if (v[b] + 0 < v[a] + 0) { t = v[a]; v[a] = v[b]; v[b] = t }
	return v[int((n + 1) / 2)]
}
'

# Each path ROUNDS times, taken in turn, so that a noisy spell of the host
# falls on all of them; load.txt gets the median of each column.
rounds=${ROUNDS:-3}
for round in $(seq "$rounds"); do
	for kind in chat stream; do
		run direct "$up1" "$kind"
		run nginx "$ngx" "$kind"
		run haproxy "$hap" "$kind"
		run reverseproxy "$rp" "$kind"
		run gateway "$gw" "$kind"
		run gateway-transport "$gwt" "$kind"
		run rawproxy "$raw" "$kind"
		run serverproxy "$srv" "$kind"
		run gateway-bareserver "$bare" "$kind"
	done
done
awk "$median_awk"'
{ k = $1 " " $2; if (!(k in seen)) { seen[k] = 1; order[++rows] = k } for (c = 3; c <= 9; c++) col[k, c] = col[k, c] " " $c }
END { for (i = 1; i <= rows; i++) { k = order[i]; line = k; for (c = 3; c <= 9; c++) line = line " " median(col[k, c]); print line } }
' "$out/load-runs.txt" > "$out/load.txt"

# The same paths at a fixed rate, below every proxy's capacity, so the
# latency is each path's own and not a queue's: loadbench rate, 64
# connections, three rounds taken in turn, the median of each percentile.
rate_chat=${RATE_CHAT:-2000} rate_stream=${RATE_STREAM:-500} rate_for=${RATE_SECONDS:-5}
: > "$out/rate.txt"
for kind in chat stream; do
	rate=$rate_chat flag=""; [ "$kind" = stream ] && rate=$rate_stream flag="-stream"
	for round in 1 2 3; do
		for target in direct:$up1 nginx:$ngx haproxy:$hap reverseproxy:$rp gateway:$gw gateway-transport:$gwt rawproxy:$raw serverproxy:$srv gateway-bareserver:$bare; do
			line=$("$work/loadbench" rate -to "http://127.0.0.1:${target#*:}/v1/chat/completions" -rate "$rate" -d "${rate_for}s" $flag)
			echo "$kind ${target%%:*} $rate $line" >> "$out/rate.txt"
		done
	done
done
left=$(curl -s "http://127.0.0.1:$gw/inflight" 2>/dev/null || echo "?")
leftt=$(curl -s "http://127.0.0.1:$gwt/inflight" 2>/dev/null || echo "?")

# Memory per stream in flight: 2000 streams held open by the upstream
# after their first event, through the gateway and the bare ReverseProxy
# (a first round warms their pools; the second is reported).
: > "$out/streammem.txt"
for name in gateway:$gw gateway-transport:$gwt reverseproxy:$rp; do
	"$work/loadbench" holdstreams -to "http://127.0.0.1:${name#*:}" -n 2000 >/dev/null
	"$work/loadbench" holdstreams -to "http://127.0.0.1:${name#*:}" -n 2000 | sed "s/^/${name%%:*}: /" >> "$out/streammem.txt"
done

echo "\`bench/load.sh\`, wrk -t2 -c64 -d$duration, median of $rounds rounds: $(run_label); nginx $(nginx -v 2>&1 | cut -d/ -f2); HAProxy $(haproxy -v | head -1 | cut -d' ' -f3)" | tee "$out/label.txt"
awk '
{ kind[NR] = $1; name[NR] = $2; rps[NR] = $3; p50[NR] = $4; p99[NR] = $7; bad[NR] = $8; cpu[NR] = $9
  if ($2 == "direct") { d50[$1] = $4; d99[$1] = $7 } if ($2 == "nginx") { n50[$1] = $4 - d50[$1]; nrps[$1] = $3 } if ($2 == "reverseproxy") rprps[$1] = $3 }
END {
	print "| load | through | req/s | p50 | p99 | added p50 | added p99 | vs nginx req/s | vs ReverseProxy req/s | CPU per request |"
	print "|---|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= NR; i++) {
		k = kind[i]; a50 = p50[i] - d50[k]; a99 = p99[i] - d99[k]
		vsn = nrps[k] ? sprintf("%.2f", rps[i] / nrps[k]) : "-"; vsr = rprps[k] ? sprintf("%.2f", rps[i] / rprps[k]) : "-"
		if (name[i] == "direct") { a50s = "-"; a99s = "-"; vsn = "-"; vsr = "-" } else { a50s = sprintf("%d µs", a50); a99s = sprintf("%d µs", a99) }
		printf "| %s | %s | %d | %d µs | %d µs | %s | %s | %s | %s | %.1f µs |%s\n", k, name[i], rps[i], p50[i], p99[i], a50s, a99s, vsn, vsr, cpu[i], bad[i] ? " " bad[i] " non-2xx" : ""
	}
}' "$out/load.txt" | tee "$out/load.md"
echo
echo "At a fixed rate ($rate_chat chat completions or $rate_stream streams per second, 64 connections, loadbench rate, $rate_for s, median of 3 rounds):"
# rate.txt: kind name rate count seconds p50 p90 p99 p99.9 failed
awk -v want="$rate_for" "$median_awk"'
{ k = $1 " " $2; if (!(k in rate)) order[++rows] = k
  rate[k] = $3; p50[k] = p50[k] " " $6; p99[k] = p99[k] " " $8; failed[k] += $10; if ($5 > want * 1.05) late[k]++ }
END {
	print "| load | through | rate/s | p50 | p99 | added p50 | added p99 | failed | rounds behind schedule |"
	print "|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= rows; i++) { k = order[i]; m50[k] = median(p50[k]); m99[k] = median(p99[k]) }
	for (i = 1; i <= rows; i++) {
		k = order[i]; split(k, kn, " "); d = kn[1] " direct"
		added50 = k == d ? "-" : sprintf("%d µs", m50[k] - m50[d])
		added99 = k == d ? "-" : sprintf("%d µs", m99[k] - m99[d])
		printf "| %s | %s | %d | %d µs | %d µs | %s | %s | %d | %d |\n", kn[1], kn[2], rate[k], m50[k], m99[k], added50, added99, failed[k], late[k]
	}
}' "$out/rate.txt" | tee "$out/rate.md"
echo "requests and slots in flight in the gateway after the runs: $left (over gateway.Transport: $leftt)"
cat "$out/streammem.txt"

# Latency percentiles of the chat load through each, as a PNG: saturated
# (wrk) on the left, at the fixed rate (medians of the rounds) on the right.
# The ceilings are left out: they are not proxies to put in front.
ceiling='$2 == "rawproxy" || $2 == "serverproxy" || $2 == "gateway-bareserver" { next }'
awk "$ceiling"' $1 == "chat" { print $2, $4 / 1000, $5 / 1000, $6 / 1000, $7 / 1000 }' "$out/load.txt" > "$work/plot.dat"
awk "$median_awk"'
'"$ceiling"'
$1 == "chat" { if (!($2 in p50)) order[++rows] = $2; p50[$2] = p50[$2] " " $6; p90[$2] = p90[$2] " " $7; p99[$2] = p99[$2] " " $8 }
END { for (i = 1; i <= rows; i++) { k = order[i]; print k, median(p50[k]) / 1000, median(p90[k]) / 1000, median(p99[k]) / 1000 } }
' "$out/rate.txt" > "$work/rate.dat"
gnuplot <<PLOT
set terminal pngcairo size 1200,480 font "sans,11" noenhanced
set output "$out/latency.png"
set multiplot layout 1,2 title "Chat completion latency through each proxy, 64 connections, two mock upstreams"
set ylabel "ms"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top left
set grid ytics
set yrange [0:*]
set xtics rotate by -30 left
set bmargin 5
set title "saturated: wrk, as fast as each answers"
plot "$work/plot.dat" using 2:xtic(1) title "p50", "" using 3 title "p75", "" using 4 title "p90", "" using 5 title "p99"
set title "at $rate_chat per second: loadbench rate, median of 3 rounds"
plot "$work/rate.dat" using 2:xtic(1) title "p50" lt 1, "" using 3 title "p90" lt 3, "" using 4 title "p99" lt 4
unset multiplot
PLOT
echo "wrote bench/out/latency.png"

# BENCHMARKS.md's bench/load.sh block, and the plot it shows.
cp "$out/latency.png" docs/load-latency.png
{
	cat "$out/label.txt"; echo; cat "$out/load.md"; echo
	echo "At a fixed rate ($rate_chat chat completions or $rate_stream streams per second, 64 connections, \`loadbench rate\`, $rate_for s, median of 3 rounds):"
	echo; cat "$out/rate.md"; echo
	echo "Requests and slots in flight in the gateway after the runs: $left (over gateway.Transport: $leftt). Memory per stream held open:"
	echo; sed 's/^/- /' "$out/streammem.txt"; echo
	echo "![Chat completion latency percentiles through each proxy, saturated and at a fixed rate](docs/load-latency.png)"
} > "$out/block.md"
write_doc_block bench/load.sh "$out/block.md"
