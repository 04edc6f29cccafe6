#!/usr/bin/env bash
# Memory of a long `watch`: resident set size after the first runs and at the end, to show it
# stays flat (a bounded ring of samples per endpoint, counters per check). Loopback only: one
# endpoint on 127.0.0.1 that a Python listener serves for the first half and refuses for the
# second, so the view and the summary both have something to keep.
#
#   bench/watch-memory.sh [RUNS] [BINARY]      # default 120 runs (2 minutes), target/debug
#
# Prints one line per sample (runs 10, 1/4, 1/2, 3/4, last): run number and VmRSS in KiB,
# then the growth and the summary the watch printed.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-120}
bin=${2:-target/debug/bmw-netcheck}
dir=$(mktemp -d)
trap 'kill "${listener:-}" "${watch:-}" 2>/dev/null || true; rm -rf "$dir"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$dir/profile.toml" <<TOML
name = "bench"
[[endpoint]]
name = "api"
host = "127.0.0.1"
port = $port
public = false
TOML
python3 - "$port" "$((runs / 2))" <<'PY' &
import socket, sys, threading, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(128)
def serve():
    while True:
        try:
            c, _ = s.accept()
            c.close()
        except OSError:
            return
threading.Thread(target=serve, daemon=True).start()
time.sleep(int(sys.argv[2]))
s.close()
time.sleep(3600)
PY
listener=$!
sleep 0.5   # the listener is up before the first run
"$bin" watch --every 1s --count "$runs" --profile "$dir/profile.toml" --only tcp,latency \
  --history "$dir/history.jsonl" --color never > "$dir/out.txt" &
watch=$!
rss() { awk '/VmRSS/ {print $2}' "/proc/$watch/status" 2>/dev/null || echo 0; }
lines() { if [ -f "$dir/history.jsonl" ]; then wc -l < "$dir/history.jsonl"; else echo 0; fi; }
first=""
for mark in 10 $((runs / 4)) $((runs / 2)) $((3 * runs / 4)) $((runs - 1)); do
  while [ "$(lines)" -lt "$mark" ]; do sleep 0.05; done
  r=$(rss)
  echo "run $mark: VmRSS $r KiB"
  first=${first:-$r}
  last=$r
done
wait "$watch" || true
echo "growth from run 10 to run $((runs - 1)): $((last - first)) KiB"
tail -3 "$dir/out.txt"
