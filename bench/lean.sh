#!/usr/bin/env bash
# What a check costs, before and after a change: CPU, tail latency against a resolver that
# ignores CHAOS queries, growth with the number of endpoints, serve under idle connections
# (bench/lean.py says how). Root needed (network namespace, nftables); loopback only.
#
#   sudo LEAN_BEFORE=/path/to/old/bmw-netcheck bench/lean.sh > lean-report.md
#
# LEAN_AFTER defaults to this tree's release build; LEAN_SHIPPED adds a third contender (the
# same sources built with `--profile dist`, as the package ships them); LEAN_RUNS (default 30)
# and LEAN_CASES ("offline resolver scale serve") change the run.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${LEAN_AFTER:-}" ]; then
    cargo build --release --bin bmw-netcheck >&2
    export LEAN_AFTER="$PWD/target/release/bmw-netcheck"
fi
exec python3 bench/lean.py "$@"
