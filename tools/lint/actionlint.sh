#!/usr/bin/env bash
# Builds actionlint (pinned in tools/lint/versions.env) from the Go module proxy into the cache,
# once per version, and installs shellcheck from Debian when missing (actionlint runs it on every
# `run:` script; the suite passes it explicitly so every machine lints the same way).
# Progress goes to stderr; stdout's last two lines are the actionlint and shellcheck binaries.
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[actionlint] $*" >&2; }
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
version="$(kcs_pin "$here/versions.env" 's/^ACTIONLINT_VERSION=//p' ACTIONLINT_VERSION)"

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi
}

if ! command -v shellcheck >/dev/null 2>&1; then
    log "installing shellcheck with apt-get (actionlint checks the workflows' run: scripts with it)"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends shellcheck >&2
fi

kcs_go_tool actionlint github.com/rhysd/actionlint/cmd/actionlint "$version" "about 30 s"
command -v shellcheck
