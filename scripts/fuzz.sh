#!/usr/bin/env bash
# Fuzz the parsers for a bounded time each (FUZZ_SECONDS, default 60):
#  - cargo-fuzz targets in fuzz/ (frame reader, incremental document sync), on the stable toolchain
#    through RUSTC_BOOTSTRAP and without a sanitizer (-s none): Rust's own bounds and overflow checks catch
#    what a sanitizer would in this safe code. Corpora grow in fuzz/corpus/<target> (seeds are committed);
#    a crash leaves its input in fuzz/artifacts/<target>: add it to the corpus with the fix.
#  - property tests for the parsers that live in crates linking llama.cpp (settings, tier file, SQL
#    tokenizer), which a fuzz build would recompile from scratch: run with many cases.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS="${FUZZ_SECONDS:-${1:-60}}"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
# Build first, unfiltered: a target that no longer compiles must say why (the run below keeps only stats).
(cd fuzz && cargo fuzz build -s none -O)
for t in frame_reader documents; do
  mkdir -p "fuzz/corpus/$t"
  echo "fuzz: $t for ${SECS}s" >&2
  # Runs on a scratch copy, so a CI run does not leave the committed seed corpus grown.
  work="$(mktemp -d)"
  cp -r "fuzz/corpus/$t/." "$work/"
  (cd fuzz && cargo fuzz run -s none -O "$t" "$work" -- -max_total_time="$SECS" -print_final_stats=1 2>&1 | grep -E "^(stat::number_of_executed_units|Done|==|SUMMARY)|panicked|Test unit written" >&2)
  rm -rf "$work"
done
# Property tests: as many cases as fit the same budget, about 1 ms a case.
CASES=$(( SECS * 1000 / 3 ))
echo "fuzz: property tests with ${CASES} cases each" >&2
PROPTEST_CASES="$CASES" cargo test --release -p lokal-server --lib props
PROPTEST_CASES="$(( CASES / 20 ))" cargo test --release -p lokal-engine --lib props
