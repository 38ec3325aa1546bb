#!/usr/bin/env bash
# Builds cyclonus (pinned in tools/lint/versions.env) from the Go module proxy into the cache, once
# per version. The suite runs its offline `analyze` over the stack's rendered NetworkPolicies and a
# synthetic pod model (test/unit/network-policy.test.ts); no cluster is needed.
# Progress goes to stderr; stdout's last line is the cyclonus binary.
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[cyclonus] $*" >&2; }
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
version="$(kcs_pin "$here/versions.env" 's/^CYCLONUS_VERSION=//p' CYCLONUS_VERSION)"
kcs_go_tool cyclonus github.com/mattfenwick/cyclonus/cmd/cyclonus "$version"
