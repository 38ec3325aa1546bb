# shellcheck shell=bash
# Source me (bash or zsh):  . tools/env.sh
#
# Sets up an offline Pulumi environment for this project:
#   - builds/reuses the pinned tools (tools/bootstrap.sh) and puts their bin
#     directory first on PATH (pulumi, pulumi-language-nodejs, providers,
#     etcd, kube-*, kubectl, kwok, kwokctl);
#   - PULUMI_HOME in the tool cache, where bootstrap.sh registered the locally
#     built providers as plugins, so `pulumi` never reaches for the network;
#   - a file backend and passphrase secrets unless already configured: the
#     same ones the sandbox uses (tools/pulumi-local.sh), so after `./run sandbox`
#     `pulumi preview --diff --stack sandbox` works in this shell.
# Variables you may set before sourcing:
#   KCS_BOOTSTRAP_ARGS   extra args for bootstrap.sh (e.g. "--only pulumi")
#   PULUMI_BACKEND_URL   default file://$KCS_CACHE_DIR/pulumi-state
#   PULUMI_CONFIG_PASSPHRASE / PULUMI_CONFIG_PASSPHRASE_FILE
#                        default: the file $KCS_CACHE_DIR/pulumi-passphrase (random, made once)
# Exports KCS_BIN_DIR (the bin directory) and KCS_TOOLS_ROOT (the tool set's cache directory,
# $KCS_CACHE_DIR/tools/sets/<key>, holding bin/ and pulumi-home/).

if [ -n "${BASH_SOURCE:-}" ]; then
  _kcs_env_src="${BASH_SOURCE[0]}"
elif [ -n "${ZSH_VERSION:-}" ]; then
  # shellcheck disable=SC2296
  _kcs_env_src="${(%):-%x}"
else
  _kcs_env_src="$0"
fi
_kcs_tools_dir="$(cd "$(dirname "$_kcs_env_src")" && pwd)"
unset _kcs_env_src

_kcs_env_main() {
  local bin
  # shellcheck disable=SC2086
  bin="$("$_kcs_tools_dir/bootstrap.sh" ${KCS_BOOTSTRAP_ARGS:-} | tail -n 1)" || {
    echo "[env.sh] tools/bootstrap.sh failed; environment not set" >&2
    return 1
  }
  [ -d "$bin" ] || { echo "[env.sh] bootstrap printed no bin directory" >&2; return 1; }

  export KCS_BIN_DIR="$bin"
  export KCS_TOOLS_ROOT="${bin%/bin}"
  export KCS_CACHE_DIR="${KCS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack}"
  case ":$PATH:" in
    *":$bin:"*) ;;
    *) export PATH="$bin:$PATH" ;;
  esac

  # Pulumi: no update checks, no plugin downloads, state and plugins local.
  export PULUMI_HOME="$KCS_TOOLS_ROOT/pulumi-home"
  export PULUMI_SKIP_UPDATE_CHECK=true
  export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true
  local defaults line
  defaults="$("$_kcs_tools_dir/pulumi-local.sh")" || {
    echo "[env.sh] tools/pulumi-local.sh failed; environment not set" >&2
    return 1
  }
  # Each line is KEY=value; a value the caller already set wins.
  while IFS= read -r line; do
    case "$line" in
      PULUMI_BACKEND_URL=*)
        export PULUMI_BACKEND_URL="${PULUMI_BACKEND_URL:-${line#*=}}" ;;
      PULUMI_CONFIG_PASSPHRASE_FILE=*)
        if [ -z "${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ] && [ -z "${PULUMI_CONFIG_PASSPHRASE+x}" ]; then
          export PULUMI_CONFIG_PASSPHRASE_FILE="${line#*=}"
        fi ;;
    esac
  done <<KCS_DEFAULTS
$defaults
KCS_DEFAULTS
  case "$PULUMI_BACKEND_URL" in
    file://*) mkdir -p "${PULUMI_BACKEND_URL#file://}" ;;
  esac
  mkdir -p "$PULUMI_HOME"

  # bootstrap.sh registered the providers in this PULUMI_HOME under the exact
  # versions the npm SDKs request; providers on PATH (the bin dir) are ignored,
  # so those registered plugins are what runs, without "using ... from $PATH"
  # warnings. (The language host is found next to the pulumi binary.)
  export PULUMI_IGNORE_AMBIENT_PLUGINS=true
}

_kcs_env_main
_kcs_env_rc=$?
unset -f _kcs_env_main
unset _kcs_tools_dir
# shellcheck disable=SC2317 # exit is reached when the file is run instead of sourced
if [ "$_kcs_env_rc" -ne 0 ]; then unset _kcs_env_rc; return 1 2>/dev/null || exit 1; fi
unset _kcs_env_rc
