#!/usr/bin/env bash
# load.sh: the gateway under load beside what a user would put in front of
# two upstreams instead: Caddy (reverse_proxy, least_conn; the Go peer),
# Portkey's AI gateway (its loadbalance config over custom hosts; the LLM
# gateway peer), nginx (least_conn) and HAProxy (leastconn), the floor that
# C reaches, and a bare httputil.ReverseProxy with round robin (the floor
# for a Go proxy), all on this machine, the same two mock upstreams, the
# same load from wrk: 64 connections, a non-streaming chat completion, then
# an SSE stream of 20 events. Each path's runs are taken in turn, round
# after round, and the medians reported, with the CPU time each path's
# process spends per request, from /proc; it writes bench/out/latency.png.
# Then the same loads at a fixed rate below every proxy's capacity
# (loadbench rate), where the latency is the path's own rather than a
# queue's. Then held streams (loadbench holdstreams): 1000 and 10 000 SSE
# streams that the upstream keeps open with an event a second, through a
# fresh process of each proxy, with its resident memory and goroutines per
# stream, the time to each stream's first byte, and the streams dropped.
# Three more rows are ceilings, not proxies to use
# (bench/loadbench/ceiling.go, bareserver.go): rawproxy, a Go proxy of
# this load with no net/http at all; serverproxy, net/http's server with
# the upstream exchange written out, the most a Handler can be; and
# gateway-bareserver, the gateway over gateway.Transport on a bare
# HTTP/1.1 loop instead of net/http's server.
#
# At the end it regenerates the bench/load.sh block of BENCHMARKS.md from
# the tables, and docs/load-latency.png, the plot the block shows
# (bench/docblock.sh); review them with git diff and commit them.
#
#   bench/load.sh                # 3 rounds of 5 s wrk runs, 5 s per fixed-rate run (about 20 min)
#   ROUNDS=5 DURATION=8s RATE_SECONDS=10 bench/load.sh
#   RATE_CHAT=500 RATE_STREAM=200 bench/load.sh   # the fixed rates, per second
#   HOLD="1000 10000" bench/load.sh               # the held-stream counts
#
# Needs Debian's nginx-light, haproxy, caddy, wrk and gnuplot-nox, and
# Node.js with npm for Portkey (it installs the missing ones when it can;
# Portkey goes to bench/out/portkey).
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
for tool in nginx:nginx-light haproxy:haproxy caddy:caddy wrk:wrk gnuplot:gnuplot-nox npm:npm; do
	command -v "${tool%%:*}" >/dev/null || need+=("${tool#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
	sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
	DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${need[@]}" >/dev/null
fi

# Portkey's AI gateway, from npm, pinned. Two known bugs of its Node build
# are worked around, as its issue tracker says: @hono/node-server is held
# at 1.14.2 (Portkey-AI/gateway#1389), and a stream's response is copied
# before Portkey adds its headers to it, the change of
# Portkey-AI/gateway#1551 for #1550; without it every stream answers 500
# "Something went wrong" (TypeError: immutable).
portkey_version=1.15.2
portkey=$out/portkey/node_modules/@portkey-ai/gateway/build/start-server.js
if ! grep -qs "PORTKEY_STREAM_COPY" "$portkey"; then
	mkdir -p "$out/portkey"
	cat > "$out/portkey/package.json" <<JSON
{"private": true, "dependencies": {"@portkey-ai/gateway": "$portkey_version"}, "overrides": {"@hono/node-server": "1.14.2"}}
JSON
	(cd "$out/portkey" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
	grep -q 'return r?(i=t,c=s)' "$portkey" || { echo "Portkey $portkey_version's build is not the one load.sh patches" >&2; exit 1; }
	sed -i 's/return r?(i=t,c=s)/return r?(i=new Response(t.body,{status:t.status,statusText:t.statusText,headers:new Headers(t.headers)}),c=s)/' "$portkey"
	echo "// PORTKEY_STREAM_COPY: patched by bench/load.sh" >> "$portkey"
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
	for _ in $(seq 200); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return; sleep 0.05; done
	echo "nothing listens on $1" >&2; exit 1
}

# A held stream takes two descriptors in a proxy, one each way: as many as
# the hard limit allows.
hard=$(ulimit -Hn); [ "$hard" != unlimited ] || hard=1048576
ulimit -n "$hard"
max_streams=$((($(ulimit -n) - 200) / 2))

go build -o "$work/loadbench" ./bench/loadbench
up1=$(free_port); "$work/loadbench" upstream -addr "127.0.0.1:$up1" & pids+=($!)
up2=$(free_port); "$work/loadbench" upstream -addr "127.0.0.1:$up2" & pids+=($!)
ups="http://127.0.0.1:$up1,http://127.0.0.1:$up2"
sed -e "s/UP1/127.0.0.1:$up1/" -e "s/UP2/127.0.0.1:$up2/" bench/portkey.json | tr -d '\n' > "$work/portkey.json"
portkey_header="x-portkey-config: $(cat "$work/portkey.json")"

# start NAME starts the proxy NAME on a free port: port[NAME] is where it
# listens, proc[NAME] the process whose CPU time and memory are its own,
# goroutines[NAME] its goroutine profile (for the Go ones). "direct" is
# the first upstream itself; "upstream" is a mock upstream of its own.
declare -A port proc goroutines
start() {
	if [ "$1" = direct ]; then port[direct]=$up1; proc[direct]=${pids[0]}; return; fi
	local p
	p=$(free_port); port[$1]=$p
	case $1 in
	nginx) start_nginx "$p" ;;
	haproxy) start_haproxy "$p" ;;
	caddy)
		local admin; admin=$(free_port)
		XDG_DATA_HOME=$work/caddy XDG_CONFIG_HOME=$work/caddy CADDY_LISTEN=127.0.0.1:$p CADDY_ADMIN=127.0.0.1:$admin \
			UP1=127.0.0.1:$up1 UP2=127.0.0.1:$up2 caddy run --config bench/Caddyfile --adapter caddyfile >/dev/null 2>&1 &
		goroutines[caddy]="http://127.0.0.1:$admin/debug/pprof/goroutine?debug=1" ;;
	portkey) NODE_ENV=production node "$portkey" --port="$p" --headless >/dev/null 2>&1 & ;;
	*)
		"$work/loadbench" "$1" -addr "127.0.0.1:$p" -to "$ups" &
		goroutines[$1]="http://127.0.0.1:$p/debug/pprof/goroutine?debug=1" ;;
	esac
	pids+=($!); proc[$1]=$!
	wait_port "$p"
}
# stop NAME ends the process that start NAME started, if it did.
stop() {
	[ -n "${proc[$1]:-}" ] || return 0
	kill "${proc[$1]}" 2>/dev/null || true
	wait "${proc[$1]}" 2>/dev/null || true
}
# extra NAME sets the array hdr to the flags that loadbench's requests to
# NAME take beside their body: Portkey's config header.
extra() { hdr=(); [ "$1" != portkey ] || hdr=(-H "$portkey_header"); }

start_nginx() {
	mkdir -p "$work/nginx/logs"
	cat > "$work/nginx.conf" <<CONF
worker_processes auto;
worker_rlimit_nofile $(ulimit -n);
events { worker_connections $(ulimit -n); }
http {
	access_log off;
	upstream up { least_conn; server 127.0.0.1:$up1; server 127.0.0.1:$up2; keepalive 256; }
	server {
		listen 127.0.0.1:$1;
		location / {
			proxy_pass http://up;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
			proxy_buffering off;
			proxy_read_timeout 1h;
		}
	}
}
CONF
	nginx -p "$work/nginx" -c "$work/nginx.conf" -g "daemon off; pid $work/nginx.pid; error_log stderr error;" &
}

start_haproxy() {
	cat > "$work/haproxy.cfg" <<CONF
global
	maxconn $max_streams
defaults
	mode http
	timeout connect 5s
	timeout client 1h
	timeout server 1h
frontend f
	bind 127.0.0.1:$1
	default_backend b
backend b
	balance leastconn
	http-reuse always
	server s1 127.0.0.1:$up1
	server s2 127.0.0.1:$up2
CONF
	haproxy -f "$work/haproxy.cfg" -db >/dev/null 2>&1 &
}

contenders="direct nginx haproxy caddy portkey reverseproxy gateway gateway-transport rawproxy serverproxy gateway-bareserver"
for name in $contenders; do start "$name"; done

for kind in chat stream; do
	stream=false; [ "$kind" = stream ] && stream=true
	for with in plain portkey; do
		{
			echo 'wrk.method = "POST"'
			echo 'wrk.headers["Content-Type"] = "application/json"'
			[ "$with" = portkey ] && echo "wrk.headers[\"x-portkey-config\"] = [[$(cat "$work/portkey.json")]]"
			echo "wrk.body = '{\"model\":\"m\",\"stream\":$stream,\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}'"
		} > "$work/$kind-$with.lua"
	done
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

# run NAME KIND: one wrk run, its summary appended to load-runs.txt, with
# the CPU time that NAME's process spent per request.
: > "$out/load-runs.txt"
run() {
	local before
	before=$(cpu_ticks "${proc[$1]}")
	local with=plain; [ "$1" != portkey ] || with=portkey
	wrk -t2 -c64 -d"$duration" --latency -s "$work/$2-$with.lua" "http://127.0.0.1:${port[$1]}/v1/chat/completions" > "$work/wrk.txt"
	awk -v name="$1" -v kind="$2" -v ticks=$(($(cpu_ticks "${proc[$1]}") - before)) -v hz="$ticks_per_s" '
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
# falls on all of them; load.txt gets the median of each column, then the
# lowest and highest req/s of the rounds.
rounds=${ROUNDS:-3}
for round in $(seq "$rounds"); do
	for kind in chat stream; do
		for name in $contenders; do run "$name" "$kind"; done
	done
done
awk "$median_awk"'
{ k = $1 " " $2; if (!(k in seen)) { seen[k] = 1; order[++rows] = k; lo[k] = hi[k] = $3 }
  for (c = 3; c <= 9; c++) col[k, c] = col[k, c] " " $c
  if ($3 + 0 < lo[k] + 0) lo[k] = $3; if ($3 + 0 > hi[k] + 0) hi[k] = $3 }
END { for (i = 1; i <= rows; i++) { k = order[i]; line = k; for (c = 3; c <= 9; c++) line = line " " median(col[k, c]); print line, lo[k], hi[k] } }
' "$out/load-runs.txt" > "$out/load.txt"

# The same paths at a fixed rate, below every proxy's capacity, so the
# latency is each path's own and not a queue's: loadbench rate, 64
# connections, three rounds taken in turn, the median of each percentile.
rate_chat=${RATE_CHAT:-500} rate_stream=${RATE_STREAM:-200} rate_for=${RATE_SECONDS:-5}
: > "$out/rate.txt"
for kind in chat stream; do
	rate=$rate_chat flag=""; [ "$kind" = stream ] && rate=$rate_stream flag="-stream"
	for round in 1 2 3; do
		for name in $contenders; do
			extra "$name"
			line=$("$work/loadbench" rate -to "http://127.0.0.1:${port[$name]}/v1/chat/completions" -rate "$rate" -d "${rate_for}s" $flag "${hdr[@]}")
			echo "$kind $name $rate $line" >> "$out/rate.txt"
		done
	done
done
left=$(curl -s "http://127.0.0.1:${port[gateway]}/inflight" 2>/dev/null || echo "?")
leftt=$(curl -s "http://127.0.0.1:${port[gateway-transport]}/inflight" 2>/dev/null || echo "?")

# Held streams: for each count, a fresh process of each proxy (so that no
# earlier run's memory is counted), warmed by one request, then n streams
# held through it for 4 s with an event a second (loadbench holdstreams).
# The first row, "upstream", holds them at a fresh mock upstream itself:
# net/http's server with a Handler that only writes the events, the floor
# under any Handler's cost, a proxy's before its upstream connection.
# hold.txt: n name n held dropped rss_KiB goroutines ttfb_p50 ttfb_p99 left
holders="upstream gateway-transport gateway serverproxy reverseproxy caddy nginx haproxy portkey"
: > "$out/hold.txt"; hold_note=""
for n in ${HOLD:-1000 10000}; do
	if [ "$n" -gt "$max_streams" ]; then
		hold_note="$hold_note $n streams asked, $max_streams held: the hard limit of open files, $(ulimit -Hn), allows no more through one process."
		n=$max_streams
	fi
	for name in $holders; do
		stop "$name"; start "$name"; extra "$name"
		"$work/loadbench" rate -to "http://127.0.0.1:${port[$name]}/v1/chat/completions" -rate 10 -d 1s "${hdr[@]}" >/dev/null
		inflight=""; case $name in gateway*) inflight="http://127.0.0.1:${port[$name]}/inflight" ;; esac
		line=$("$work/loadbench" holdstreams -to "http://127.0.0.1:${port[$name]}" -n "$n" -pid "${proc[$name]}" \
			-goroutines "${goroutines[$name]:-}" -inflight "$inflight" "${hdr[@]}")
		echo "$n $name $line" | tee -a "$out/hold.txt"
	done
done

echo "\`bench/load.sh\`, wrk -t2 -c64 -d$duration, median of $rounds rounds: $(run_label); nginx $(nginx -v 2>&1 | cut -d/ -f2); HAProxy $(haproxy -v | head -1 | cut -d' ' -f3); Caddy $(caddy version | cut -d' ' -f1); Portkey $portkey_version on Node.js $(node --version)" | tee "$out/label.txt"
awk '
{ kind[NR] = $1; name[NR] = $2; rps[NR] = $3; p50[NR] = $4; p99[NR] = $7; bad[NR] = $8; cpu[NR] = $9; lo[NR] = $10; hi[NR] = $11
  if ($2 == "direct") { d50[$1] = $4; d99[$1] = $7 } if ($2 in ref) { r[$2, $1] = $3 } if ($2 == "caddy") ccpu[$1] = $9 }
BEGIN { ref["nginx"] = ref["caddy"] = ref["portkey"] = ref["serverproxy"] = 1 }
function vs(peer, k, i) { return r[peer, k] && name[i] != "direct" ? sprintf("%.2f", rps[i] / r[peer, k]) : "-" }
END {
	print "| load | through | req/s | req/s, rounds | p50 | p99 | added p50 | added p99 | vs nginx | vs Caddy | vs Portkey | vs serverproxy | CPU per request | CPU vs Caddy |"
	print "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= NR; i++) {
		k = kind[i]; a50 = p50[i] - d50[k]; a99 = p99[i] - d99[k]
		if (name[i] == "direct") { a50s = "-"; a99s = "-" } else { a50s = sprintf("%d µs", a50); a99s = sprintf("%d µs", a99) }
		cvs = ccpu[k] && name[i] != "direct" ? sprintf("%.2f", cpu[i] / ccpu[k]) : "-"
		printf "| %s | %s | %d | %d-%d | %d µs | %d µs | %s | %s | %s | %s | %s | %s | %.1f µs | %s |%s\n", k, name[i], rps[i], lo[i], hi[i], p50[i], p99[i], a50s, a99s,
			vs("nginx", k, i), vs("caddy", k, i), vs("portkey", k, i), vs("serverproxy", k, i), cpu[i], cvs, bad[i] ? " " bad[i] " non-2xx" : ""
	}
}' "$out/load.txt" | tee "$out/load.md"
echo
rate_label="At a fixed rate ($rate_chat chat completions or $rate_stream streams per second, 64 connections, \`loadbench rate\`, $rate_for s, median of 3 rounds; added is each round's against direct's in that round, its median and the rounds' lowest and highest):"
echo "$rate_label"
# rate.txt: kind name rate count seconds p50 p90 p99 p99.9 failed, each
# kind's rounds in turn, every round beginning with direct.
awk -v want="$rate_for" "$median_awk"'
{ k = $1 " " $2; if (!(k in rate)) order[++rows] = k
  if ($2 == "direct") { d50 = $6; d99 = $8 }
  rate[k] = $3; p50[k] = p50[k] " " $6; p99[k] = p99[k] " " $8; failed[k] += $10; if ($5 > want * 1.05) late[k]++
  a = $6 - d50; a50[k] = a50[k] " " a; a99[k] = a99[k] " " ($8 - d99)
  if (!(k in lo) || a < lo[k]) lo[k] = a; if (!(k in hi) || a > hi[k]) hi[k] = a }
END {
	print "| load | through | rate/s | p50 | p99 | added p50 | added p50, rounds | added p99 | failed | rounds behind schedule |"
	print "|---|---|---|---|---|---|---|---|---|---|"
	for (i = 1; i <= rows; i++) {
		k = order[i]; split(k, kn, " "); direct = kn[2] == "direct"
		added50 = direct ? "-" : sprintf("%d µs", median(a50[k]))
		range50 = direct ? "-" : sprintf("%d to %d µs", lo[k], hi[k])
		added99 = direct ? "-" : sprintf("%d µs", median(a99[k]))
		printf "| %s | %s | %d | %d µs | %d µs | %s | %s | %s | %d | %d |\n", kn[1], kn[2], rate[k], median(p50[k]), median(p99[k]), added50, range50, added99, failed[k], late[k]
	}
}' "$out/rate.txt" | tee "$out/rate.md"
echo "requests and slots in flight in the gateway after the runs: $left (over gateway.Transport: $leftt)"
echo
echo "Held streams, an event a second from the upstream, each through a fresh process:$hold_note"
awk '
BEGIN {
	print "| streams | through | held | dropped | memory per stream | goroutines per stream | first byte p50 | first byte p99 | in flight after |"
	print "|---|---|---|---|---|---|---|---|---|"
}
{ printf "| %d | %s | %d | %d | %s KiB | %s | %s ms | %s ms | %s |\n", $1, $2, $4, $5, $6, $7, $8, $9, $10 }
' "$out/hold.txt" | tee "$out/hold.md"

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
set ylabel "ms (log scale)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top left
set grid ytics
set logscale y
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
	echo "$rate_label"
	echo; cat "$out/rate.md"; echo
	echo "Requests and slots in flight in the gateway after the runs: $left (over gateway.Transport: $leftt)."
	echo
	echo "Held streams (\`loadbench holdstreams\`), an event a second from the upstream, each count through a fresh process of each proxy (upstream: at a fresh mock upstream itself, net/http's server with nothing behind it); memory is the growth of its resident set, first byte the time from a stream's request to it, while they open 16 at a time:$hold_note"
	echo; cat "$out/hold.md"; echo
	echo "![Chat completion latency percentiles through each proxy, saturated and at a fixed rate](docs/load-latency.png)"
} > "$out/block.md"
write_doc_block bench/load.sh "$out/block.md"
