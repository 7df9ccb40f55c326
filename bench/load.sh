#!/usr/bin/env bash
# Load test: the same MCP tools/call, first straight to a fast upstream, then
# through toolgate validating an RS256 token, on loopback with wrk at a fixed
# 32 connections and 2 threads. Prints req/s, p50 and p99 for each and the
# ratio toolgate/direct. toolgate runs twice: LOG_LEVEL=warn (no per-request
# log line) and the default LOG_LEVEL=info that users run.
#
#   bench/load.sh                          # one round, 10 s per run
#   DURATION=30s ROUNDS=3 bench/load.sh    # three rounds; medians are printed
#   NGINX=1 bench/load.sh                  # also nginx proxy_pass, the reference
#   TOOLGATE_DIR=../branch bench/load.sh   # toolgate built from another checkout
#
# Each round measures every target back to back, so a burst of background
# load hits both sides of a ratio; the ratio shown is the median of the
# per-round ratios. wrk, the upstream and the proxy share the machine's CPUs,
# so the ratio is the one a sidecar on the same host would see; the CPU time
# each process used per request is printed too, as it is much less disturbed
# by neighbours than req/s.
#
# Exits non-zero if any run saw a non-200 answer, a JSON-RPC error or a
# socket error. Everything listens on 127.0.0.1 only, and only the processes
# this script starts are stopped.
set -euo pipefail

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
ROUNDS=${ROUNDS:-1}
NGINX=${NGINX:-0}
CONNECTIONS=32
THREADS=2

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
toolgate_dir=$(cd "${TOOLGATE_DIR:-$root}" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/toolgate-load.XXXXXX")
loadenv_pid=""
proxy_pid="" # the toolgate or nginx being measured

stop() { # stop PID: end one process this script started, and reap it
	local pid=$1
	[[ -n $pid ]] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}
cleanup() {
	stop "$proxy_pid"
	stop "$loadenv_pid"
	if [[ -n ${KEEP_WORK:-} ]]; then
		echo "work directory kept: $work" >&2
	else
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

need() { # need COMMAND PACKAGE: install PACKAGE with apt-get when COMMAND is missing
	command -v "$1" >/dev/null && return 0
	echo "$1 not found; installing $2 with apt-get" >&2
	apt-get install -y "$2" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "$2" >/dev/null; }
}
need wrk wrk
if ((NGINX)); then
	PATH=$PATH:/usr/sbin
	need nginx nginx-light
fi

echo "building toolgate (from $toolgate_dir) and loadenv" >&2
(cd "$toolgate_dir" && go build -o "$work/toolgate" ./cmd/toolgate)
(cd "$root" && go build -o "$work/loadenv" ./bench/loadenv)

"$work/loadenv" -dir "$work" >"$work/loadenv.out" 2>"$work/loadenv.err" &
loadenv_pid=$!
for _ in $(seq 100); do
	[[ -s $work/env ]] && break
	kill -0 "$loadenv_pid" 2>/dev/null || { cat "$work/loadenv.err" >&2; exit 1; }
	sleep 0.1
done
[[ -s $work/env ]] || { echo "loadenv did not start" >&2; exit 1; }
upstream_url=$(sed -n 's/^UPSTREAM_URL=//p' "$work/env")
listen_addr=$(sed -n 's/^LISTEN_ADDR=//p' "$work/env")
resource=$(sed -n 's/^RESOURCE_SERVER_URL=//p' "$work/env")
upstream_conns() { curl -fsS "${upstream_url%/mcp}/loadenv/connections"; }

wait_ready() { # wait_ready URL LOG: poll URL until it answers 2xx while proxy_pid lives
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
		kill -0 "$proxy_pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "the proxy did not become ready; its log:" >&2
	cat "$2" >&2
	exit 1
}

start_toolgate() { # start_toolgate LEVEL: run toolgate and wait until /readyz says ready
	local level=$1
	(
		set -a
		# shellcheck disable=SC1091
		. "$work/env"
		LOG_LEVEL=$level
		exec "$work/toolgate"
	) 2>"$work/toolgate-$level.log" &
	proxy_pid=$!
	wait_ready "http://$listen_addr/readyz" "$work/toolgate-$level.log"
}

# nginx as the brief's reference measured it: a plain proxy_pass, no auth,
# no upstream keep-alive, default access log, one worker per CPU.
start_nginx() {
	local up=${upstream_url#http://}
	up=${up%%/*}
	cat >"$work/nginx.conf" <<-EOF
		worker_processes auto;
		daemon off;
		pid $work/nginx.pid;
		error_log $work/nginx-error.log warn;
		events { worker_connections 1024; }
		http {
		    access_log $work/nginx-access.log;
		    server {
		        listen $listen_addr;
		        location / { proxy_pass http://$up; }
		    }
		}
	EOF
	nginx -c "$work/nginx.conf" -p "$work" -e "$work/nginx-error.log" 2>>"$work/nginx-error.log" &
	proxy_pid=$!
	wait_ready "http://$listen_addr/loadenv/connections" "$work/nginx-error.log"
}

cpu_ticks() { # cpu_ticks PID: user+system CPU time of PID and its children (nginx workers), in clock ticks
	[[ -n $1 ]] || { echo 0; return; }
	local pids=("$1") total=0 t
	mapfile -t -O 1 pids < <(pgrep -P "$1" || true)
	for p in "${pids[@]}"; do
		t=$(awk '{ print $14 + $15 }' "/proc/$p/stat" 2>/dev/null || echo 0)
		total=$((total + t))
	done
	echo "$total"
}

failed=0
declare -A results # "$name $round" -> "rps p50_us p99_us upstream_cpu_us proxy_cpu_us"
clk_tck=$(getconf CLK_TCK)

measure() { # measure NAME ROUND URL [TOKEN_FILE]: warm up, then one measured wrk run
	local name=$1 round=$2 url=$3 token=${4:-}
	local args=(-c "$CONNECTIONS" -t "$THREADS" -s "$root/bench/tools_call.lua" --latency)
	wrk "${args[@]}" -d "$WARMUP" "$url" -- "$token" >/dev/null
	local out result conns up_cpu px_cpu
	conns=$(upstream_conns)
	up_cpu=$(cpu_ticks "$loadenv_pid")
	px_cpu=$(cpu_ticks "$proxy_pid")
	out=$(wrk "${args[@]}" -d "$DURATION" "$url" -- "$token")
	up_cpu=$(($(cpu_ticks "$loadenv_pid") - up_cpu))
	px_cpu=$(($(cpu_ticks "$proxy_pid") - px_cpu))
	# Each curl opens a connection of its own: the second one is counted.
	conns=$(($(upstream_conns) - conns - 1))
	result=$(grep '^RESULT ' <<<"$out") || { echo "$out" >&2; echo "$name: wrk printed no result" >&2; exit 1; }
	field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$result"; }
	per_req() { awk -v t="$1" -v hz="$clk_tck" -v n="$(field requests)" 'BEGIN { printf "%.0f", n ? t * 1e6 / hz / n : 0 }'; }
	results["$name $round"]="$(field rps) $(field p50_us) $(field p99_us) $(per_req "$up_cpu") $(per_req "$px_cpu")"
	printf 'round %d %-14s %s upstream_conns_opened=%d upstream_cpu_us_per_req=%s proxy_cpu_us_per_req=%s\n' \
		"$round" "$name" "${result#RESULT }" "$conns" "$(per_req "$up_cpu")" "$(per_req "$px_cpu")" >&2
	local bad=$(($(field non200) + $(field rpc_errors) + $(field socket_errors)))
	if ((bad > 0)); then
		failed=1
		echo "$name: $bad of $(field requests) requests FAILED (non-200: $(field non200), JSON-RPC errors: $(field rpc_errors), socket errors: $(field socket_errors))" >&2
		grep '^FIRST_BAD ' <<<"$out" >&2 || true
	fi
}

busy_percent() { # CPU time used by anything over one second, in percent
	local a b
	read -ra a < <(head -1 /proc/stat)
	sleep 1
	read -ra b < <(head -1 /proc/stat)
	awk -v a="${a[*]}" -v b="${b[*]}" 'BEGIN {
		n = split(a, x, " "); split(b, y, " ")
		for (i = 2; i <= n; i++) total += y[i] - x[i]
		idle = (y[5] - x[5]) + (y[6] - x[6])
		printf "%d", total ? 100 * (total - idle) / total : 0 }'
}

targets=(direct)
((NGINX)) && targets+=(nginx)
targets+=(toolgate-warn toolgate-info)

busy=$(busy_percent)
echo "wrk: $CONNECTIONS connections, $THREADS threads, $DURATION per run after a $WARMUP warm-up, $ROUNDS round(s); $(nproc) CPUs shared by wrk, upstream and proxy" >&2
if ((busy > 10)); then
	echo "WARNING: the machine was ${busy}% busy before the benchmark started; other processes compete for the CPUs and the figures will be low and noisy" >&2
fi
for round in $(seq "$ROUNDS"); do
	for target in "${targets[@]}"; do
		case $target in
		direct)
			measure direct "$round" "$upstream_url"
			continue
			;;
		nginx)
			start_nginx
			measure nginx "$round" "http://$listen_addr/mcp"
			;;
		toolgate-*)
			start_toolgate "${target#toolgate-}"
			measure "$target" "$round" "$resource" "$work/token"
			;;
		esac
		stop "$proxy_pid"
		proxy_pid=""
	done
done
info_lines=$(grep -c '"msg":"request"' "$work/toolgate-info.log" || true)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
column_of() { # column_of NAME COLUMN: that column of NAME's results, one per round
	for round in $(seq "$ROUNDS"); do
		read -ra r <<<"${results["$1 $round"]}"
		echo "${r[$2]}"
	done
}
ratios_of() { # ratios_of NAME: NAME's req/s over direct's, one per round
	for round in $(seq "$ROUNDS"); do
		read -ra t <<<"${results["$1 $round"]}"
		read -ra d <<<"${results["direct $round"]}"
		awk -v a="${t[0]}" -v b="${d[0]}" 'BEGIN { printf "%.4f\n", a / b }'
	done
}
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }

echo
printf '%-14s %9s %10s %10s %7s %14s %12s\n' target "req/s" p50 p99 ratio "upstream CPU" "proxy CPU"
for name in "${targets[@]}"; do
	proxy="-"
	[[ $name == direct ]] || proxy="$(column_of "$name" 4 | median) us/req"
	printf '%-14s %9.0f %10s %10s %6.2fx %14s %12s\n' "$name" "$(column_of "$name" 0 | median)" \
		"$(ms "$(column_of "$name" 1 | median)")" "$(ms "$(column_of "$name" 2 | median)")" \
		"$(ratios_of "$name" | median)" "$(column_of "$name" 3 | median) us/req" "$proxy"
done
((ROUNDS > 1)) && echo "(medians over $ROUNDS rounds)"
cat <<EOF
(CPU: user+system time the process used during the measured run, per request completed; wrk's share is not shown.
 upstream_conns_opened, per round above: connections the upstream accepted during a measured run. For direct, wrk's
 own $CONNECTIONS; for toolgate, up to about $CONNECTIONS means its pool is reused (they replace connections whose requests
 were cancelled when the warm-up ended); one per request means reconnecting, as nginx without upstream keepalive does.)
(toolgate-info wrote $info_lines request log lines to a file in its last run. Reference on this kind of machine:
 nginx proxy_pass 0.70x, oauth2-proxy 0.10x; target: toolgate at or above 0.70x.)
EOF

if ((failed)); then
	echo "FAILED: some requests did not get a 200 with a JSON-RPC result; the figures above are not valid" >&2
	exit 1
fi
