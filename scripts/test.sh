#!/usr/bin/env bash
# Runs the test tiers with node's test runner. Tiers: unit, integration, e2e (default: all).
#   scripts/test.sh                 every tier
#   scripts/test.sh unit            one tier
#   KCS_TEST_FILTER=dataflow scripts/test.sh integration   files whose name contains a word
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
shopt -s nullglob
tiers=("$@")
[[ ${#tiers[@]} -eq 0 ]] && tiers=(unit integration e2e)
files=()
for tier in "${tiers[@]}"; do
    [[ -d "test/$tier" ]] || { echo "unknown test tier '$tier' (expected unit, integration or e2e)" >&2; exit 2; }
    for f in test/"$tier"/*.test.ts; do
        [[ -z "${KCS_TEST_FILTER:-}" || "$f" == *"$KCS_TEST_FILTER"* ]] && files+=("$f")
    done
done
if [[ ${#files[@]} -eq 0 ]]; then
    echo "no test files found for: ${tiers[*]}" >&2
    exit 1
fi
echo "[test] ${#files[@]} files: ${files[*]}" >&2
# One file at a time: integration files start real brokers and engines; two at once would share ports and cores.
# The reporter (scripts/test-summary.mjs) prints node's usual output, then every skipped, todo and failed
# test with its reason: a component a test needs (chdb, KAFKA_LIB, KCS_TOOLS_BIN) is never a skip, it fails.
exec node --import tsx --test --test-concurrency=1 \
    --test-reporter=./scripts/test-summary.mjs --test-reporter-destination=stdout "${files[@]}"
