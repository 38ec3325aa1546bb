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

# kcs_go_tool NAME MODULE_CMD VERSION [HOW_LONG]: builds MODULE_CMD@VERSION (a Go main package on
# the module proxy) into $kcs_cache_root/NAME/VERSION/NAME once, and prints that binary's path on
# stdout; progress goes to stderr. The build lands in a temporary directory beside it and is moved
# into place whole, so an interrupted build leaves nothing that looks finished. HOW_LONG (e.g.
# "about 30 s") is said in the progress message. Runs in a subshell: its trap stays its own.
kcs_go_tool() (
    local name="$1" module="$2" version="$3" how_long="${4:-a few minutes}"
    local dest="$kcs_cache_root/$name/$version"
    local bin="$dest/$name" tmp start
    if [[ -x "$bin" ]]; then
        log "$name $version already in $dest"
        printf '%s\n' "$bin"
        return 0
    fi
    command -v go >/dev/null 2>&1 || { log "go is not on PATH; install Go 1.26 to build $name"; return 1; }
    log "building $name $version from the Go module proxy into $dest ($how_long, once)"
    mkdir -p "$dest"
    tmp="$(mktemp -d "$dest/bin.tmp.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    start=$SECONDS
    GOBIN="$tmp" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath "$module@$version" >&2
    mv "$tmp/$name" "$bin"
    log "built in $((SECONDS - start))s"
    printf '%s\n' "$bin"
)

# kcs_pip_tool NAME PACKAGE VERSION [HOW_LONG]: installs PACKAGE==VERSION from PyPI into a venv at
# $kcs_cache_root/NAME/VERSION once, and prints its bin/NAME on stdout; progress goes to stderr.
# A venv whose NAME does not answer --version is made again; a half-made one is removed, so the
# next run starts over. HOW_LONG is said in the progress message. Runs in a subshell (own trap).
kcs_pip_tool() (
    local name="$1" package="$2" version="$3" how_long="${4:+$4, }"
    local venv="$kcs_cache_root/$name/$version"
    local bin="$venv/bin/$name" python
    if [[ -x "$bin" ]] && "$bin" --version >/dev/null 2>&1; then
        log "$name $version already in $venv"
        printf '%s\n' "$bin"
        return 0
    fi
    python="$(command -v python3 || true)"
    if [[ -z "$python" ]] || ! "$python" -m venv --help >/dev/null 2>&1; then
        log "python3 with the venv module is needed to install $name (Debian: apt-get install python3-venv)"
        return 1
    fi
    log "installing $name $version from PyPI into $venv (${how_long}once)"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    trap 'rm -rf "$venv"' ERR
    "$python" -m venv "$venv" >&2
    "$venv/bin/pip" install -q --disable-pip-version-check "$package==$version" >&2
    "$bin" --version >&2
    printf '%s\n' "$bin"
)
