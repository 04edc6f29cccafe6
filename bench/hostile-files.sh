#!/usr/bin/env bash
# Two figures of the file-safety work, measured on this machine with the debug or release binary
# given (default: target/debug/bmw-netcheck, built if missing):
#
#   1. peak resident memory of one run appending to a 200 MiB history (GNU time's
#      "Maximum resident set size"), the run that also trims it to 1000 lines, and of the
#      next run;
#   2. how far past its --deadline a run ends when its history path is a FIFO nobody reads,
#      with a report larger than a pipe's buffer (300 endpoints that accept and then stay silent).
#
#   bench/hostile-files.sh [BINARY]
#
# Needs /usr/bin/time (Debian: time) and python3 (for the silent loopback listener). Everything
# stays on loopback, in a temporary directory removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-target/debug/bmw-netcheck}
[ -x "$bin" ] || cargo build --bin bmw-netcheck >&2
work=$(mktemp -d)
trap 'kill "${listener:-0}" 2>/dev/null || true; rm -rf "$work"' EXIT

printf '[[endpoint]]\nname = "api"\nhost = "127.0.0.1"\nport = 9\npublic = false\n' >"$work/closed.toml"
python3 - "$work/big.jsonl" <<'EOF'
import sys
line = ('{"filler":"' + 'z' * 180 + '"}\n').encode()
block = line * 4096
with open(sys.argv[1], 'wb') as f:
    size = 0
    while size < 200 * 1024 * 1024:
        f.write(block)
        size += len(block)
EOF
echo "history: $(du -m "$work/big.jsonl" | cut -f1) MiB, $(wc -l <"$work/big.jsonl") lines"
for run in trim steady; do
  /usr/bin/time -v "$bin" --profile "$work/closed.toml" --only tcp --format json \
    --history "$work/big.jsonl" >/dev/null 2>"$work/time.txt" || true
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time.txt")
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time.txt")
  echo "append ($run): max RSS ${rss} KiB, wall ${wall}, history now $(wc -l <"$work/big.jsonl") lines"
done

port_file="$work/port"
python3 - "$port_file" <<'EOF' &
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(1024)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
held = []
while True:
    c, _ = s.accept()
    held.append(c)
EOF
listener=$!
for _ in $(seq 50); do [ -s "$port_file" ] && break; sleep 0.1; done
port=$(cat "$port_file")
for i in $(seq 300); do
  printf '[[endpoint]]\nname = "api%d"\nhost = "127.0.0.1"\nport = %d\npublic = false\n' "$i" "$port"
done >"$work/silent.toml"
mkfifo "$work/fifo"
for i in 1 2 3; do
  start=$(date +%s.%N)
  timeout 60 "$bin" --profile "$work/silent.toml" --only dns,tcp,tls,http --timeout 10s \
    --deadline 2s --format json --history "$work/fifo" >/dev/null 2>&1 || true
  end=$(date +%s.%N)
  echo "FIFO history, --deadline 2s: run $i ended after $(awk "BEGIN { printf \"%.3f\", $end - $start }") s"
done
