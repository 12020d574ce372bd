#!/usr/bin/env bash
# Rebuilds examples/hello.wasm from examples/hello/src. Needs the wasm32-wasip2 target:
#   rustup target add wasm32-wasip2
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cargo build --release --target wasm32-wasip2 --manifest-path "$here/Cargo.toml" \
    --target-dir "$here/target"
cp "$here/target/wasm32-wasip2/release/hello.wasm" "$here/../hello.wasm"
echo "wrote $(cd "$here/.." && pwd)/hello.wasm ($(wc -c < "$here/../hello.wasm") bytes)"
