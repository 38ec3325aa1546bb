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
kcs_go_tool kube-score github.com/zegl/kube-score/cmd/kube-score "$version"
