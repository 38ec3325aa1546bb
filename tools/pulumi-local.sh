#!/usr/bin/env bash
# The local Pulumi backend and secrets passphrase, in one place: `. tools/env.sh` exports them for
# a shell, and the sandbox (runtime/pulumi.ts) runs the engine with them, so a stack the
# sandbox made is the one `pulumi preview --stack sandbox` finds and can decrypt.
# Prints KEY=value lines on stdout:
#   PULUMI_BACKEND_URL              file://$KCS_CACHE_DIR/pulumi-state
#   PULUMI_CONFIG_PASSPHRASE_FILE   $KCS_CACHE_DIR/pulumi-passphrase, a random passphrase made on
#                                   first use (mode 600); losing it loses the local stacks' secrets
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)
set -euo pipefail

cache="${KCS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack}"
state="$cache/pulumi-state"
passphrase="$cache/pulumi-passphrase"
mkdir -p "$state"
if [[ ! -s "$passphrase" ]]; then
    tmp="$passphrase.tmp.$$"
    (umask 077 && head -c 24 /dev/urandom | base64 >"$tmp")
    # A hard link never replaces an existing file: when two first runs race, the first one wins
    # and both print the same file.
    ln "$tmp" "$passphrase" 2>/dev/null || true
    rm -f "$tmp"
fi
echo "PULUMI_BACKEND_URL=file://$state"
echo "PULUMI_CONFIG_PASSPHRASE_FILE=$passphrase"
