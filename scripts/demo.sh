#!/usr/bin/env bash
# The main job: fetch the embedded default model, build lokal, and watch it complete code as you type.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
LOKAL_MODEL="$(scripts/fetch-model.sh)"
export LOKAL_MODEL
exec cargo run --quiet --release --bin lokal -- demo "$@"
