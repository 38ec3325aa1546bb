#!/usr/bin/env bash
# Installs checkov (pinned in tools/lint/versions.env) from PyPI into a venv in the cache, once per
# version. The suite runs its Kubernetes checks over the rendered dev and prod manifests
# (test/unit/manifest-lint.test.ts), offline.
# Progress goes to stderr; the last line on stdout is the checkov binary.
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
log() { echo "[checkov] $*" >&2; }
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
version="$(kcs_pin "$here/versions.env" 's/^CHECKOV_VERSION=//p' CHECKOV_VERSION)"
venv="$kcs_cache_root/checkov/$version"
bin="$venv/bin/checkov"

if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
    log "checkov $version already in $venv"
    echo "$bin"
    exit 0
fi
python="$(command -v python3 || true)"
if [[ -z "$python" ]] || ! "$python" -m venv --help >/dev/null 2>&1; then
    log "python3 with the venv module is needed to install checkov (Debian: apt-get install python3-venv)"
    exit 1
fi
log "installing checkov $version from PyPI into $venv (about a minute, once)"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
# A half-made venv is removed, so the next run starts over.
trap 'rm -rf "$venv"' ERR
"$python" -m venv "$venv" >&2
"$venv/bin/pip" install -q --disable-pip-version-check "checkov==$version" >&2
"$bin" --version >&2
echo "$bin"
