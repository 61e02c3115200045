#!/usr/bin/env bash
# Issue 22's multi-core table, from the portable kit (bench/Publish-Portable.sh): PSTcp's core
# echo server (default queue and --no-queue) against the Go echo peer, each pinned to the
# server cores, driven by generators pinned to the other cores. Needs no .NET and no Go:
# only bash, taskset (util-linux; without it nothing is pinned, and the results say so),
# awk, sort and the kit's programs.
#
#   run-table.sh RESULTS_DIR [--server-cpus LIST] [--load-cpus LIST] [--rounds N]
#                [--seconds S] [--warmup S] [--bulk-mib N] [--rows a,b,...] [--kit DIR]
#
# LIST is taskset's (0-7, 0,2,4). Defaults: the first half of the CPUs this script may use
# for the servers, the rest for the generators; 2 rounds (servers alternate within a round);
# 2 s measured after a 3 s warm-up; bulk moves 256 MiB. Rows (all by default):
#   pipelined-16, pipelined-64, pipelined-256  go-load: 64 B lines, 128 in flight per client
#   pingpong-64                                bench-load: 64 clients, one 64 B line in flight each
#   bulk                                       bench-load: 1 client, 1 KiB lines, MB/s
#   churn                                      bench-load: 4 workers connect, send a line, read it, close
# Writes RESULTS_DIR/raw/<row>.<server>.<round>.json (each generator's JSON line),
# RESULTS_DIR/results.tsv (every run) and RESULTS_DIR/table.md (medians and ratios to Go, with
# server CPU ns per operation), and prints the table.
set -euo pipefail

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 1 ] || usage
case "$1" in -h|--help) usage ;; esac
results="$1"; shift
kit="$(cd "$(dirname "$0")" && pwd)"
server_cpus=""; load_cpus=""; rounds=2; seconds=2; warmup=3; bulk_mib=256
rows="pipelined-16,pipelined-64,pipelined-256,pingpong-64,bulk,churn"
while [ $# -gt 0 ]; do
    case "$1" in
        --server-cpus) server_cpus="$2"; shift 2 ;;
        --load-cpus) load_cpus="$2"; shift 2 ;;
        --rounds) rounds="$2"; shift 2 ;;
        --seconds) seconds="$2"; shift 2 ;;
        --warmup) warmup="$2"; shift 2 ;;
        --bulk-mib) bulk_mib="$2"; shift 2 ;;
        --rows) rows="$2"; shift 2 ;;
        --kit) kit="$(cd "$2" && pwd)"; shift 2 ;;
        *) echo "unknown argument: $1" >&2; usage ;;
    esac
done
for program in echo-host bench-load go-echo go-load; do
    [ -x "$kit/$program" ] || { echo "$kit/$program is missing: run bench/Publish-Portable.sh $kit first" >&2; exit 2; }
done

# The CPUs this process may use, from taskset when there is one.
pinning="yes"
if command -v taskset > /dev/null; then
    allowed="$(taskset -pc $$ | sed 's/.*: //')"
    # Expands a taskset list (0-3,6) into one CPU per line.
    expand() { echo "$1" | tr ',' '\n' | awk -F- '{ if (NF == 2) for (i = $1; i <= $2; i++) print i; else print $1 }'; }
    cpus=($(expand "$allowed"))
    half=$(( (${#cpus[@]} + 1) / 2 ))
    if [ -z "$server_cpus" ]; then server_cpus="$(IFS=,; echo "${cpus[*]:0:$half}")"; fi
    if [ -z "$load_cpus" ]; then
        if [ ${#cpus[@]} -gt 1 ]; then load_cpus="$(IFS=,; echo "${cpus[*]:$half}")"; else load_cpus="$server_cpus"; fi
    fi
    pin_server=(taskset -c "$server_cpus"); pin_load=(taskset -c "$load_cpus")
else
    echo "taskset not found: nothing is pinned" >&2
    pinning="no (taskset not found)"; server_cpus="all"; load_cpus="all"; pin_server=(); pin_load=()
fi

mkdir -p "$results/raw"
results="$(cd "$results" && pwd)"
tsv="$results/results.tsv"
printf 'row\tserver\tround\tmetric\tvalue\tserver_cpu_ns_per_op\tok\n' > "$tsv"

server_pid=""
stop_server() {
    if [ -n "$server_pid" ]; then
        kill "$server_pid" 2> /dev/null || true
        wait "$server_pid" 2> /dev/null || true
        server_pid=""
    fi
}
trap stop_server EXIT

# Starts one server pinned to the server CPUs; sets server_pid and server_port.
start_server() {
    local name="$1" out="$results/raw/.port"
    rm -f "$out"
    case "$name" in
        pstcp) "${pin_server[@]}" "$kit/echo-host" --port 0 > "$out" 2> "$results/raw/$name.stderr" & ;;
        pstcp-noqueue) "${pin_server[@]}" "$kit/echo-host" --port 0 --no-queue > "$out" 2> "$results/raw/$name.stderr" & ;;
        go) "${pin_server[@]}" "$kit/go-echo" -addr 127.0.0.1:0 > "$out" 2> "$results/raw/$name.stderr" & ;;
    esac
    server_pid=$!
    for _ in $(seq 1 200); do
        if [ -s "$out" ] && head -n 1 "$out" | grep -q '^[0-9][0-9]*$'; then
            server_port="$(head -n 1 "$out")"
            return 0
        fi
        kill -0 "$server_pid" 2> /dev/null || break
        sleep 0.05
    done
    echo "$name did not start: $(cat "$results/raw/$name.stderr" 2> /dev/null)" >&2
    return 1
}

# The generator command of a row (the port and the server's pid appended by the caller).
generator() {
    local row="$1"
    case "$row" in
        pipelined-*) echo "$kit/go-load --clients ${row#pipelined-} --window-lines 128 --line-size 64 --seconds $seconds --warmup $warmup" ;;
        pingpong-*) echo "$kit/bench-load pingpong --clients ${row#pingpong-} --line-size 64 --seconds $seconds --warmup $warmup" ;;
        bulk) echo "$kit/bench-load bulk --clients 1 --line-size 1024 --bytes $((bulk_mib * 1024 * 1024)) --seconds 60" ;;
        churn) echo "$kit/bench-load churn --clients 4 --line-size 64 --seconds $seconds --warmup $warmup" ;;
        *) echo "unknown row $row" >&2; return 1 ;;
    esac
}

metric_of() {
    case "$1" in
        pipelined-*) echo lines_per_sec ;;
        pingpong-*) echo round_trips_per_sec ;;
        bulk) echo mb_per_sec ;;
        churn) echo connections_per_sec ;;
    esac
}

# A number from the generator's one-line JSON.
json_value() { grep -o "\"$2\": *[-0-9.eE+]*" "$1" | head -n 1 | sed 's/.*: *//'; }

IFS=',' read -r -a row_list <<< "$rows"
servers=(pstcp pstcp-noqueue go)
echo "server CPUs: $server_cpus; generator CPUs: $load_cpus; $rounds round(s) of ${seconds}s after ${warmup}s warm-up"
for round in $(seq 1 "$rounds"); do
    # Alternate the order of the servers from one round to the next.
    if [ $((round % 2)) -eq 0 ]; then order=(go pstcp-noqueue pstcp); else order=("${servers[@]}"); fi
    for row in "${row_list[@]}"; do
        for server in "${order[@]}"; do
            start_server "$server"
            raw="$results/raw/$row.$server.$round.json"
            cmd="$(generator "$row")"
            # shellcheck disable=SC2086
            if "${pin_load[@]}" $cmd --port "$server_port" --pid "$server_pid" > "$raw" 2> "$raw.stderr"; then ok=yes; else ok=no; fi
            stop_server
            metric="$(metric_of "$row")"
            value="$(json_value "$raw" "$metric")"; cpu="$(json_value "$raw" server_cpu_ns_per_op)"
            printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$row" "$server" "$round" "$metric" "${value:-}" "${cpu:-}" "$ok" >> "$tsv"
            printf '  round %s %-14s %-14s %s=%s cpu_ns/op=%s ok=%s\n' "$round" "$row" "$server" "$metric" "${value:-?}" "${cpu:-?}" "$ok"
        done
    done
done

# Medians per row and server, ratios to Go.
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
pick() { awk -F'\t' -v r="$1" -v s="$2" -v c="$3" 'NR > 1 && $1 == r && $2 == s && $c != "" { print $c }' "$tsv" | median; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a == "" || b == "" || b + 0 == 0) print "-"; else printf "%.2fx", a / b }'; }
fmt() { awk -v a="$1" 'BEGIN { if (a == "") print "-"; else if (a >= 1000) printf "%\047.0f", a; else printf "%.1f", a }'; }
{
    echo "# PSTcp vs Go, pinned"
    echo
    echo "$(date -u '+%Y-%m-%d %H:%M UTC'); $(nproc 2> /dev/null || echo '?') CPUs; server CPUs $server_cpus, generator CPUs $load_cpus (pinning: $pinning);"
    echo "$rounds round(s), servers alternating, medians; ${seconds}s measured after ${warmup}s warm-up; bulk ${bulk_mib} MiB;"
    echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg 2> /dev/null || echo '?'); $(uname -sr)"
    echo
    echo "| row | metric | Go | PSTcp | PSTcp/Go | PSTcp -NoQueue | NoQueue/Go | CPU ns/op Go / PSTcp / NoQueue |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    for row in "${row_list[@]}"; do
        metric="$(metric_of "$row")"
        go="$(pick "$row" go 5)"; q="$(pick "$row" pstcp 5)"; nq="$(pick "$row" pstcp-noqueue 5)"
        cgo="$(pick "$row" go 6)"; cq="$(pick "$row" pstcp 6)"; cnq="$(pick "$row" pstcp-noqueue 6)"
        echo "| $row | $metric | $(fmt "$go") | $(fmt "$q") | $(ratio "$q" "$go") | $(fmt "$nq") | $(ratio "$nq" "$go") | $(fmt "$cgo") / $(fmt "$cq") / $(fmt "$cnq") |"
    done
    failed="$(awk -F'\t' 'NR > 1 && $7 != "yes"' "$tsv" | wc -l)"
    echo
    echo "Generator runs that reported errors or mismatches: $failed (see raw/*.stderr)."
} > "$results/table.md"
cat "$results/table.md"
