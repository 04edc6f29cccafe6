#!/usr/bin/env bash
# One connection per host, everything at once: every `dig` in the background, then one
# `curl --parallel` with all the URLs.
#
#   curl-parallel.sh RESOLVER CA_FILE HOST...
#
# Output: one `curl URL HTTP_CODE NAMELOOKUP CONNECT APPCONNECT STARTTRANSFER TOTAL` line per host.
set -u
resolver=$1 ca=$2
shift 2
dir=$(mktemp -d)
for host in "$@"; do
    dig @"$resolver" +tries=1 +time=5 +short "$host" A >"$dir/$host" &
done
wait
args=()
for host in "$@"; do
    read -r ip <"$dir/$host"
    args+=(--resolve "$host:443:$ip" -o /dev/null "https://$host/")
done
rm -rf "$dir"
curl -s --parallel --parallel-immediate --parallel-max 16 --cacert "$ca" --max-time 10 \
    -w "curl %{url_effective} %{http_code} %{time_namelookup} %{time_connect} %{time_appconnect} %{time_starttransfer} %{time_total}\n" \
    "${args[@]}"
