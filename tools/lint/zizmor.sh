#!/usr/bin/env bash
# Installs zizmor (pinned in tools/lint/versions.env) from PyPI into a venv in the cache, once per
# version. Progress goes to stderr; the last line on stdout is the zizmor binary.
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[zizmor] $*" >&2; }
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
version="$(kcs_pin "$here/versions.env" 's/^ZIZMOR_VERSION=//p' ZIZMOR_VERSION)"
kcs_pip_tool zizmor zizmor "$version"
