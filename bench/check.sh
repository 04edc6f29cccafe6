#!/usr/bin/env bash
# The checks bmw-netcheck makes, done the way a user would script them with dig and curl.
#
#   check.sh RESOLVER CA_FILE SAMPLES HOST...
#
# For each host: one `dig` for its A record, then one curl process making SAMPLES HTTPS requests
# to it (the servers close every connection, so each request opens a new one): the first gives
# the DNS/TCP/TLS/HTTP timings, and every request's time_connect is a latency sample.
# MODE=seq (default) does the hosts one after another; MODE=par runs one background job per host.
# Output, one line per lookup / per request:
#   dig  HOST QUERY_MS ADDRESS
#   curl HOST HTTP_CODE NAMELOOKUP CONNECT APPCONNECT STARTTRANSFER TOTAL   (seconds)
set -u
resolver=$1 ca=$2 samples=$3
shift 3

check() {
    local host=$1 out ip="" qt="" a b c d e
    out=$(dig @"$resolver" +tries=1 +time=5 +noall +answer +stats "$host" A)
    while read -r a b c d e _; do
        if [[ $d == A ]]; then ip=$e; fi
        if [[ $a == ";;" && $b == Query ]]; then qt=$d; fi
    done <<<"$out"
    echo "dig $host $qt $ip"
    local args=() i
    for ((i = 0; i < samples; i++)); do args+=(-o /dev/null "https://$host/"); done
    curl -s --cacert "$ca" --resolve "$host:443:$ip" --max-time 10 \
        -w "curl $host %{http_code} %{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}\n" \
        "${args[@]}"
}

if [[ ${MODE:-seq} == par ]]; then
    dir=$(mktemp -d)
    for host in "$@"; do check "$host" >"$dir/$host" & done
    wait
    cat "$dir"/*
    rm -rf "$dir"
else
    for host in "$@"; do check "$host"; done
fi
