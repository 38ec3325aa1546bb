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
kcs_pip_tool checkov checkov "$version" "about a minute"
