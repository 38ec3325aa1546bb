# shellcheck shell=bash
# Sourced by the scripts that fetch or build a pinned component (tools/*/*.sh): where the cache is,
# and how a pin is read. Each script defines log() (its own prefix) before sourcing this file.
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)

# shellcheck disable=SC2034 # used by the scripts that source this file
kcs_cache_root="${KCS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack}"

# kcs_pin FILE SED_SCRIPT WHAT: the first value SED_SCRIPT prints from FILE; without one, says
# which pin is missing from which file and fails (the caller's `set -e` stops it).
kcs_pin() {
    local value
    value="$(sed -n "$2" "$1" | head -n1)"
    if [[ -z "$value" ]]; then
        log "no $3 in $1: restore it (git checkout -- $1)"
        return 1
    fi
    printf '%s\n' "$value"
}
