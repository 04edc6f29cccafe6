#!/usr/bin/env bash
# What the port-filter and DNS-transport controls cost: the same runs, before and after, against
# real servers (nginx on 80 and 443, dnsmasq on 53) behind real nftables rules, in two network
# namespaces of their own (root needed). A Markdown table goes to stdout, progress to stderr:
#
#   sudo bench/firewall.sh BEFORE_BINARY AFTER_BINARY [RUNS] > firewall-report.md
#
# FW_CASES=healthy (a part of the case names) runs only the matching cases; FW_ONLY=dns,tcp
# changes the stages run (default dns,tcp,tls,http,latency).
# Each case is run RUNS times (default 10) with each binary: --timeout 2s, --only
# dns,tcp,tls,http,latency, three endpoints. The figures are the medians of the report's
# duration_ms and of the slowest dns and tcp check of each run.
set -euo pipefail
before=$1 after=$2 runs=${3:-10}
tag="nc-fwb-$$"
client="$tag-c" public="$tag-p"
work=$(mktemp -d /tmp/netcheck-fwbench.XXXXXX)
chmod 755 "$work"

cleanup() {
    for ns in "$client" "$public"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$client"
ip netns add "$public"
ip -n "$client" link set lo up
ip -n "$public" link set lo up
ip -n "$client" link add up0 type veth peer name pub0 netns "$public"
ip -n "$client" addr add 198.51.100.2/24 dev up0
ip -n "$public" addr add 198.51.100.1/24 dev pub0
ip -n "$client" link set up0 up
ip -n "$public" link set pub0 up
ip -n "$client" route add default via 198.51.100.1
hosts=(api:203.0.113.10:service sign-in:203.0.113.11:service neutral:203.0.113.12:baseline)
listen80="" listen443="" dns="" profile=""
for h in "${hosts[@]}"; do
    IFS=: read -r name addr role <<<"$h"
    ip -n "$public" addr add "$addr/32" dev lo
    listen80+="listen $addr:80; " listen443+="listen $addr:443 ssl; "
    dns+="address=/$name.fw.netcheck.lan/$addr"$'\n'
    profile+="[[endpoint]]"$'\n'"name = \"$name\""$'\n'"host = \"$name.fw.netcheck.lan\""$'\n'
    profile+="role = \"$role\""$'\n'"public = false"$'\n\n'
done
printf '%s' "$profile" >"$work/profile.toml"

# A CA and one wildcard certificate for the three names.
(
    cd "$work"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 30 \
        -subj "/CN=netcheck bench root" -addext basicConstraints=critical,CA:TRUE 2>/dev/null
    openssl req -newkey rsa:2048 -nodes -keyout leaf.key -out leaf.csr \
        -subj "/CN=*.fw.netcheck.lan" 2>/dev/null
    printf 'subjectAltName=DNS:*.fw.netcheck.lan\n' >ext.cnf
    openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 \
        -extfile ext.cnf -out leaf.pem 2>/dev/null
    cat leaf.pem ca.pem >chain.pem
)
mkdir -p "$work/tmp"
cat >"$work/nginx.conf" <<EOF
master_process off; worker_processes 1; pid $work/nginx.pid; error_log $work/error.log;
events { worker_connections 256; }
http { access_log off; client_body_temp_path $work/tmp; proxy_temp_path $work/tmp;
  fastcgi_temp_path $work/tmp; uwsgi_temp_path $work/tmp; scgi_temp_path $work/tmp;
  server { $listen80 location / { return 200 "ok\n"; } }
  server { $listen443 ssl_certificate $work/chain.pem; ssl_certificate_key $work/leaf.key;
    location / { return 200 "ok\n"; } }
}
EOF
printf 'no-resolv\nno-hosts\nlisten-address=198.51.100.1\nport=53\nbind-interfaces\nuser=root\n%s' \
    "$dns" >"$work/dnsmasq.conf"
ip netns exec "$public" nginx -p "$work" -c "$work/nginx.conf" -g 'daemon off;' &
ip netns exec "$public" dnsmasq --keep-in-foreground --conf-file="$work/dnsmasq.conf" \
    --pid-file="$work/dnsmasq.pid" &
sleep 1

rules() {
    ip netns exec "$public" nft flush ruleset
    if [[ -n $1 ]]; then
        printf 'table inet firewall {\n chain in { type filter hook input priority 0; %s }\n}\n' "$1" |
            ip netns exec "$public" nft -f -
    fi
}

# One run of `bin`, its JSON report on stdout.
once() {
    ip netns exec "$client" "$1" run --only "${FW_ONLY:-dns,tcp,tls,http,latency}" --timeout 2s \
        --deadline 20s --no-history --format json --resolver 198.51.100.1 \
        --ca-file "$work/ca.pem" --profile "$work/profile.toml" || true
}

# Medians of (run duration, slowest dns check, slowest tcp check) over the runs read on stdin,
# the codes of the checks that did not pass, and the first suspects.
summarize() {
    python3 -c '
import json, statistics, sys
text, dec, runs, i = sys.stdin.read(), json.JSONDecoder(), [], 0
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    r, i = dec.raw_decode(text, i)
    runs.append(r)
def slowest(r, probe):
    return max((c["duration_ms"] for c in r["checks"] if c["probe"] == probe), default=0.0)
med = lambda xs: statistics.median(xs)
codes = sorted({c["code"] for r in runs for c in r["checks"] if c["status"] != "pass"})
first = sorted({(r["suspects"] or [{"id": "-"}])[0]["id"] for r in runs})
print("%.1f | %.1f | %.1f | %s | %s" % (
    med([r["duration_ms"] for r in runs]), med([slowest(r, "dns") for r in runs]),
    med([slowest(r, "tcp") for r in runs]), ", ".join(codes) or "none", ", ".join(first)))
'
}

echo "| case | build | run ms (median) | slowest dns ms | slowest tcp ms | codes not passing | first suspect |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
cases=(
    "healthy|"
    "drop 443|tcp dport 443 drop;"
    "reset 443|tcp dport 443 reject with tcp reset;"
    "ICMP prohibited 443|tcp dport 443 reject with icmpx type admin-prohibited;"
    "UDP/53 dropped|udp dport 53 drop;"
)
# Every rejected SYN gets its ICMP answer (the kernel's rate limit would turn some into silence).
ip netns exec "$public" sysctl -qw net.ipv4.icmp_ratelimit=0
for c in "${cases[@]}"; do
    name=${c%%|*} rule=${c#*|}
    [[ $name == *"${FW_CASES:-}"* ]] || continue
    rules "$rule"
    echo "bench: $name" >&2
    # The builds alternate, run by run, so a busy machine weighs on both alike.
    for ((i = 0; i < runs; i++)); do
        once "$before" >>"$work/before.json"
        once "$after" >>"$work/after.json"
    done
    echo "| $name | before | $(summarize <"$work/before.json") |"
    echo "| $name | after | $(summarize <"$work/after.json") |"
    rm -f "$work/before.json" "$work/after.json"
done
