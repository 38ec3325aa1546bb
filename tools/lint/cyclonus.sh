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
dest="$kcs_cache_root/cyclonus/$version"
bin="$dest/cyclonus"

if [[ ! -x "$bin" ]]; then
    command -v go >/dev/null 2>&1 || { log "go is not on PATH; install Go 1.26 to build cyclonus"; exit 1; }
    log "building cyclonus $version from the Go module proxy into $dest (a few minutes, once)"
    mkdir -p "$dest"
    tmp="$(mktemp -d "$dest/bin.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    start=$SECONDS
    GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath \
        "github.com/mattfenwick/cyclonus/cmd/cyclonus@$version" >&2
    mv "$tmp/cyclonus" "$bin"
    log "built in $((SECONDS - start))s"
else
    log "cyclonus $version already in $dest"
fi
echo "$bin"
