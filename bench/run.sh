#!/usr/bin/env bash
# Builds the release binary and the benchmark, then runs the benchmark (root needed: network
# namespaces and TUN devices). The Markdown report goes to stdout, progress to stderr:
#
#   sudo bench/run.sh > bench-report.md
#
# NETBENCH_REPS=N changes the number of repetitions (default 7).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin bmw-netcheck --example netbench >&2
exec target/release/examples/netbench "$@"
