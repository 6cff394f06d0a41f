#!/usr/bin/env bash
# The test command: system packages, the test model, then every test of the workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
LOKAL_MODEL="$(scripts/fetch-model.sh)"
export LOKAL_MODEL
# The real llama-server for the remote-engine tests (engine/tests/remote_peer.rs): about 10 minutes on two
# cores the first time, then cached in ~/.cache/lokal/peer.
LOKAL_PEER_BIN="$(scripts/fetch-peer.sh | head -1)"
export LOKAL_PEER_BIN
# Style and lints first: they fail fast. Clippy shares the release profile's llama.cpp build.
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
# One profile for tests, demo and bench, so llama.cpp is compiled once.
cargo test --release --workspace "$@"
# Fuzzing, bounded: 45 s per target keeps the whole run well inside CI's time on two cores.
FUZZ_SECONDS="${FUZZ_SECONDS:-45}" scripts/fuzz.sh
# The editor integrations, driven for real where the editor runs here.
scripts/test-editors.sh
