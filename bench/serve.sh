#!/usr/bin/env bash
# Builds the release binary and the serve benchmark, then runs it on loopback (no root needed).
# The Markdown report goes to stdout, progress to stderr:
#
#   bench/serve.sh > serve-report.md
#
# SERVEBENCH_SCRAPES=N changes the number of scrapes (default 10000).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin bmw-netcheck --example servebench >&2
exec target/release/examples/servebench "$@"
