#!/usr/bin/env bash
# Builds kube-score (pinned in tools/lint/versions.env) from the Go module proxy into the cache,
# once per version. The suite scores the rendered dev and prod manifests with it
# (test/unit/manifest-lint.test.ts); no cluster is needed.
# Progress goes to stderr; stdout's last line is the kube-score binary.
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[kube-score] $*" >&2; }
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
version="$(kcs_pin "$here/versions.env" 's/^KUBE_SCORE_VERSION=//p' KUBE_SCORE_VERSION)"
dest="$kcs_cache_root/kube-score/$version"
bin="$dest/kube-score"

if [[ ! -x "$bin" ]]; then
    command -v go >/dev/null 2>&1 || { log "go is not on PATH; install Go 1.26 to build kube-score"; exit 1; }
    log "building kube-score $version from the Go module proxy into $dest (a few minutes, once)"
    mkdir -p "$dest"
    tmp="$(mktemp -d "$dest/bin.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    start=$SECONDS
    GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath \
        "github.com/zegl/kube-score/cmd/kube-score@$version" >&2
    mv "$tmp/kube-score" "$bin"
    log "built in $((SECONDS - start))s"
else
    log "kube-score $version already in $dest"
fi
echo "$bin"
