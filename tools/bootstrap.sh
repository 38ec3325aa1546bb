#!/usr/bin/env bash
# Builds the project's external tools from the Go module proxy into a cache
# outside the repo (one directory per tool and key), reusing what is there or on PATH:
#   --only pulumi: pulumi, pulumi-language-nodejs, pulumi-resource-kubernetes,
#                  pulumi-resource-kafka, pulumi-resource-random
#   --only kube:   etcd, kube-apiserver, kube-controller-manager,
#                  kube-scheduler, kubectl, kwok, kwokctl
# Usage: tools/bootstrap.sh [--only pulumi|kube|all]      (default: all)
#   BIN=$(tools/bootstrap.sh | tail -1)
#        tools/bootstrap.sh --print-keys   prints "<tool> <key>" lines, builds nothing
# Progress goes to stderr; the last line of stdout is the bin directory.
# Cache ($KCS_CACHE_DIR/tools):
#   <tool>/<key>/bin    one tool's binaries (<key>.log: its build log); <key> hashes the
#                       versions.env pins the tool uses and its recipe ("Tools and keys"
#                       below), so changing one pin rebuilds only the tools that use it
#   sets/<key>/bin      the directory printed: links to one set of tools
#   sets/<key>/pulumi-home  where the providers are registered as plugins
# Needs Go >= 1.26 and node. Environment: KCS_CACHE_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack); KCS_VERSIONS_FILE
# (default tools/versions.env); GOPROXY, GOMODCACHE, GOCACHE as usual for Go;
# KCS_KEEP_WORK=1 keeps the wrapper modules.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SELF="$TOOLS_DIR/$(basename "${BASH_SOURCE[0]}")"
VERSIONS_FILE="${KCS_VERSIONS_FILE:-$TOOLS_DIR/versions.env}"
# Our Go sources for the bridged providers (see build_bridged_provider).
GO_SRC="$TOOLS_DIR/go/bridged"

log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

ONLY=all PRINT_KEYS=""
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="${2:-}"; shift 2 || die "--only needs an argument" ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
    --print-keys) PRINT_KEYS=1; shift ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$SELF" >&2; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
case "$ONLY" in pulumi|kube|all) ;; *) die "--only must be pulumi, kube or all (got '$ONLY')" ;; esac

[ -f "$VERSIONS_FILE" ] || die "missing $VERSIONS_FILE"
# shellcheck disable=SC1090
. "$VERSIONS_FILE"

# ---------------------------------------------------------------------------
# Tools and keys
# ---------------------------------------------------------------------------
# Per tool: its binaries, the versions.env pins its build reads, and its recipe:
# the functions of this file that build it (their source, without comments, is
# part of the key, as is every pin's value and BOOTSTRAP_RECIPE) and, for the
# bridged providers, the files under tools/go/bridged copied into the build.
declare -A TOOL_BINS TOOL_PINS TOOL_RECIPE TOOL_FILES TOOL_KEY
COMMON_RECIPE="go_env new_wrapper_module mod_download version_replaces json_get"
TOOL_ORDER=""
def_tool() { # tool "binaries" "pins" "functions" ["files"]
  TOOL_BINS[$1]="$2"; TOOL_PINS[$1]="$3"; TOOL_RECIPE[$1]="$4"; TOOL_FILES[$1]="${5:-}"
  TOOL_ORDER+=" $1"
}
def_tool etcd etcd ETCD_VERSION build_etcd
for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
  def_tool "$c" "$c" KUBERNETES_VERSION build_kube
done
def_tool kwok "kwok kwokctl" "KWOK_VERSION KUBERNETES_VERSION" build_kwok
def_tool pulumi pulumi PULUMI_CLI_VERSION build_pulumi_cli
def_tool pulumi-language-nodejs pulumi-language-nodejs \
  "PULUMI_LANGUAGE_NODEJS_MODULE PULUMI_LANGUAGE_NODEJS_PULUMI_VERSION PULUMI_LANGUAGE_NODEJS_GOSUM" \
  build_language_nodejs
def_tool pulumi-resource-kubernetes pulumi-resource-kubernetes \
  "PULUMI_KUBERNETES_PROVIDER_VERSION PULUMI_KUBERNETES_PROVIDER_MODULE PULUMI_KUBERNETES_PROVIDER_GOSUM" \
  build_provider_kubernetes
# Both bridged providers are built in one wrapper module that requires both
# Terraform providers (shared dependencies resolve to one version), so each
# depends on both TF_* pins.
BRIDGE_PINS="PULUMI_TERRAFORM_BRIDGE_VERSION TF_KAFKA_VERSION TF_RANDOM_MODULE BRIDGED_PROVIDERS_GOSUM"
def_tool pulumi-resource-kafka pulumi-resource-kafka "PULUMI_KAFKA_PROVIDER_VERSION $BRIDGE_PINS" \
  build_bridged_provider "kafka cmd/pulumi-tfgen-kafka cmd/pulumi-resource-kafka shim/go.mod stubs"
def_tool pulumi-resource-random pulumi-resource-random "PULUMI_RANDOM_PROVIDER_VERSION $BRIDGE_PINS" \
  build_bridged_provider "random cmd/pulumi-tfgen-random cmd/pulumi-resource-random shim stubs"

# The source of a function of this file, without comment and blank lines.
fn_source() {
  awk -v f="$1" '
    !on && ($0 == f "() {" || index($0, f "() { #") == 1) { on = 1; print; next }
    !on && index($0, f "() { ") == 1 { print; exit } # a one-line function
    on && !/^[[:space:]]*(#|$)/ { print }
    on && /^}$/ { exit }' "$SELF"
}

# What one tool's key is made of (the key is its hash).
tool_inputs() { # tool
  local t="$1" p f src
  echo "tool $t"
  # shellcheck disable=SC2086
  for p in BOOTSTRAP_RECIPE ${TOOL_PINS[$t]}; do printf '%s=%s\n' "$p" "${!p:-}"; done
  # shellcheck disable=SC2086
  for f in $COMMON_RECIPE ${TOOL_RECIPE[$t]}; do
    echo "recipe $f"
    src="$(fn_source "$f")"
    [ -n "$src" ] || { echo "no function $f in $SELF" >&2; return 1; }
    printf '%s\n' "$src"
  done
  if [ -n "${TOOL_FILES[$t]}" ]; then
    # shellcheck disable=SC2086
    (cd "$GO_SRC" && find ${TOOL_FILES[$t]} -type f | LC_ALL=C sort | xargs sha256sum)
  fi
}

hash16() { sha256sum | cut -c1-16; }

for t in $TOOL_ORDER; do
  TOOL_KEY[$t]="$(tool_inputs "$t" | hash16)" || die "cannot compute the cache key of $t"
done
# The set: every tool's key plus what the set itself holds (plugin registration).
SET_KEY="$(
  for t in $TOOL_ORDER; do echo "$t ${TOOL_KEY[$t]}"; done
  for p in PULUMI_VERSION PULUMI_KUBERNETES_VERSION PULUMI_KAFKA_VERSION PULUMI_RANDOM_VERSION; do
    printf '%s=%s\n' "$p" "${!p:-}"
  done
  fn_source register_plugins
)"
SET_KEY="$(hash16 <<<"$SET_KEY")"

if [ -n "$PRINT_KEYS" ]; then
  for t in $TOOL_ORDER; do echo "$t ${TOOL_KEY[$t]}"; done
  echo "set $SET_KEY"
  exit 0
fi

CACHE_ROOT="${KCS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack}"
CACHE_TOOLS="$CACHE_ROOT/tools"
SET_DIR="$CACHE_TOOLS/sets/$SET_KEY"
BIN_DIR="$SET_DIR/bin"
LOG_DIR="$SET_DIR/logs"
mkdir -p "$BIN_DIR" "$LOG_DIR"
cp -f "$VERSIONS_FILE" "$SET_DIR/versions.env"

# One bootstrap at a time per tool set (parallel test processes share it);
# building one tool also takes that tool's lock (sets share tools).
HAVE_FLOCK="$(command -v flock || true)"
if [ -n "$HAVE_FLOCK" ]; then
  exec 9>"$SET_DIR/.lock"
  if ! flock -n 9; then
    log "another bootstrap is running for $SET_DIR; waiting for it..."
    flock 9
  fi
fi

# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------
GO_BIN="$(command -v go || true)"
if [ -z "$GO_BIN" ] && [ -x /usr/local/go/bin/go ]; then GO_BIN=/usr/local/go/bin/go; fi
NODE_BIN="$(command -v node || true)"

need_go() {
  [ -n "$GO_BIN" ] || die "go is not installed (needed to build $1); install Go >= 1.26"
  [ -n "$NODE_BIN" ] || die "node is not installed (needed to build $1)"
}

go_env() {
  export CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local
  export GOFLAGS="-mod=mod -buildvcs=false"
}
go_env

WORK_ROOT=""
BUILD_PID=""
cleanup() {
  if [ -n "$BUILD_PID" ]; then
    kill $(pgrep -P "$BUILD_PID" 2>/dev/null) "$BUILD_PID" 2>/dev/null || true
  fi
  if [ -n "$WORK_ROOT" ] && [ -z "${KCS_KEEP_WORK:-}" ]; then chmod -R u+w "$WORK_ROOT" 2>/dev/null || true; rm -rf "$WORK_ROOT"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM
WORK_ROOT="$(mktemp -d "$SET_DIR/work.XXXXXX")"
work_dir() { # a fresh throwaway directory for one build (a wrapper module)
  local d="$WORK_ROOT/$1"
  rm -rf "$d"; mkdir -p "$d"; printf '%s\n' "$d"
}

# Reads a dotted field from JSON on stdin.
json_get() {
  "$NODE_BIN" -e '
    let s = ""; process.stdin.on("data", d => (s += d)).on("end", () => {
      const v = process.argv[1].split(".").reduce((a, k) => (a == null ? a : a[k]), JSON.parse(s));
      if (v == null) process.exit(1);
      process.stdout.write(String(v) + "\n");
    });' "$1"
}

# Downloads module@version into the module cache; prints the JSON description.
mod_download() {
  local out
  if ! out="$("$GO_BIN" mod download -json "$1")"; then
    printf '%s\n' "$out" >&2
    echo "module $1 could not be downloaded from the Go module proxy" >&2
    return 1
  fi
  printf '%s\n' "$out"
}

# Prints `-replace=old=new@version` flags for the version-pinned (non-local)
# replace directives of a go.mod, so a wrapper module reproduces them.
version_replaces() {
  # shellcheck disable=SC2016 # JavaScript template literals, not shell
  "$GO_BIN" mod edit -json "$1" | "$NODE_BIN" -e '
    let s = ""; process.stdin.on("data", d => (s += d)).on("end", () => {
      for (const r of JSON.parse(s).Replace || []) {
        if (!r.New.Version) continue; // local directory replacements do not apply
        const old = r.Old.Version ? `${r.Old.Path}@${r.Old.Version}` : r.Old.Path;
        console.log(`-replace=${old}=${r.New.Path}@${r.New.Version}`);
      }
    });'
}

# Creates a throwaway wrapper module; the optional third argument is a list of
# pinned go.sum lines (module@version=h1:hash,...) from versions.env.
new_wrapper_module() { # dir name [pins]
  cd "$1"
  "$GO_BIN" mod init "$2" 2>/dev/null
  if [ -n "${3:-}" ]; then
    tr ',' '\n' <<<"$3" | sed -n 's#^\([^@]*\)@\([^=]*\)=\(h1:.*\)$#\1 \2 \3#p' >go.sum
  fi
}

have() { local b; for b in "$@"; do [ -x "$BIN_DIR/$b" ] || return 1; done; }

# Puts a file into the set's bin dir as a hard link (a copy across file
# systems): a program there sees the bin dir as its own directory, the way
# pulumi finds its language host and plugins next to itself.
link_bin() { # file name
  ln -f "$1" "$BIN_DIR/$2.tmp$$" 2>/dev/null || cp -f "$1" "$BIN_DIR/$2.tmp$$"
  mv -f "$BIN_DIR/$2.tmp$$" "$BIN_DIR/$2"
}

# Links a tool's binaries from its cache directory when they are all there.
from_cache() { # tool
  local t="$1" d="$CACHE_TOOLS/$1/${TOOL_KEY[$1]}/bin" b
  # shellcheck disable=SC2086
  for b in ${TOOL_BINS[$t]}; do [ -x "$d/$b" ] || return 1; done
  # shellcheck disable=SC2086
  for b in ${TOOL_BINS[$t]}; do link_bin "$d/$b" "$b"; done
  log "using $t from the cache ($t/${TOOL_KEY[$t]})"
}

# Links a binary found on PATH (outside our bin dir) when its version output
# contains the wanted string. Usage: reuse_from_path NAME WANT ARGS...
reuse_from_path() {
  local name="$1" want="$2"; shift 2
  local p out
  p="$(PATH="$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$BIN_DIR" | paste -sd: -)" command -v "$name" 2>/dev/null)" || return 1
  out="$("$p" "$@" 2>&1 | head -n 20)" || return 1
  grep -qF -- "$want" <<<"$out" || return 1
  ln -sfn "$p" "$BIN_DIR/$name"
  log "using $name from PATH: $p ($want)"
}

# Runs a build step in the background with its output in a log file, prints a
# heartbeat, and fails loudly naming the component.
run_step() { # name description eta-minutes log-file function args...
  local name="$1" what="$2" eta="$3" logf="$4"; shift 4
  local t0=$SECONDS next=60
  log "building $what (this takes ~$eta min cold, seconds when cached)..."
  ( set -euo pipefail; "$@" ) >"$logf" 2>&1 &
  BUILD_PID=$!
  while kill -0 "$BUILD_PID" 2>/dev/null; do
    sleep 1
    if [ $((SECONDS - t0)) -ge $next ]; then
      log "  ... still building $what ($((SECONDS - t0))s)"
      next=$((next + 60))
    fi
  done
  if ! wait "$BUILD_PID"; then
    BUILD_PID=""
    tail -n 40 "$logf" | sed 's/^/[bootstrap]   | /' >&2
    die "building $name ($what) failed; full log: $logf"
  fi
  BUILD_PID=""
  echo "$name $((SECONDS - t0))" >>"$LOG_DIR/timings.txt"
  log "built $what in $((SECONDS - t0))s"
}

# Builds a tool into $CACHE_TOOLS/<tool>/<key> (under that tool's lock, so
# two sets needing the same tool build it once) and links it into the set.
build_tool() { # tool description eta-minutes function args...
  local t="$1" what="$2" eta="$3"; shift 3
  local dir="$CACHE_TOOLS/$t" key="${TOOL_KEY[$t]}"
  need_go "$t"
  mkdir -p "$dir"
  if [ -n "$HAVE_FLOCK" ]; then
    exec 8>"$dir/$key.lock"
    if ! flock -n 8; then
      log "another bootstrap is building $t ($key); waiting for it..."
      flock 8
    fi
  fi
  if ! from_cache "$t"; then
    rm -rf "$dir/$key.tmp"
    mkdir -p "$dir/$key.tmp/bin"
    tool_inputs "$t" | grep -E '^(tool |[A-Z_]+=|recipe |[0-9a-f]{64}  )' >"$dir/$key.tmp/inputs.txt"
    TOOL_OUT="$dir/$key.tmp/bin"
    run_step "$t" "$what (key $key)" "$eta" "$dir/$key.log" "$@"
    mv "$dir/$key.tmp" "$dir/$key"
    from_cache "$t" >/dev/null 2>&1 || die "$t was built but $dir/$key/bin lacks one of: ${TOOL_BINS[$t]}"
  fi
  [ -z "$HAVE_FLOCK" ] || exec 8>&-
}

install_bins() { # out-dir names...
  local out="$1" b; shift
  for b in "$@"; do
    [ -x "$out/$b" ] || { echo "expected binary $b was not produced" >&2; return 1; }
    mv -f "$out/$b" "$TOOL_OUT/$b"
  done
}

# ---------------------------------------------------------------------------
# Kubernetes control plane
# ---------------------------------------------------------------------------
build_etcd() {
  local w; w="$(work_dir etcd)"
  new_wrapper_module "$w" local/etcd-build
  "$GO_BIN" mod edit -require="go.etcd.io/etcd/server/v3@v$ETCD_VERSION"
  # etcd's main package is the root of the server module.
  "$GO_BIN" build -trimpath -ldflags "-s -w" -o "$w/out/etcd" go.etcd.io/etcd/server/v3
  install_bins "$w/out" etcd
}

build_kube() {
  local w kinfo kmod commit btime minor staging
  w="$(work_dir kube)"
  new_wrapper_module "$w" local/kube-build
  kinfo="$(mod_download "k8s.io/kubernetes@v$KUBERNETES_VERSION")"
  kmod="$(json_get GoMod <<<"$kinfo")"
  commit="$(json_get Origin.Hash <<<"$kinfo" || echo unknown)"
  btime="$("$GO_BIN" list -m -f '{{.Time.UTC.Format "2006-01-02T15:04:05Z"}}' "k8s.io/kubernetes@v$KUBERNETES_VERSION")"
  minor="$(cut -d. -f2 <<<"$KUBERNETES_VERSION")"
  "$GO_BIN" mod edit -require="k8s.io/kubernetes@v$KUBERNETES_VERSION"
  # k8s.io/kubernetes replaces every k8s.io/* staging module with ./staging/...;
  # use each one's published v0.<minor>.<patch> twin instead.
  staging="$("$GO_BIN" mod edit -json "$kmod" | "$NODE_BIN" -e '
    let s = ""; process.stdin.on("data", d => (s += d)).on("end", () => {
      for (const r of JSON.parse(s).Replace || [])
        if (r.New.Path.startsWith("./staging/")) console.log(r.Old.Path);
    });')"
  [ -n "$staging" ] || { echo "no staging replaces found in $kmod" >&2; return 1; }
  local m args=()
  for m in $staging; do args+=("-replace=$m=$m@v0.${KUBERNETES_VERSION#*.}"); done
  "$GO_BIN" mod edit "${args[@]}"
  local ld="-s -w" p
  for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
    ld+=" -X $p.gitVersion=v$KUBERNETES_VERSION -X $p.gitMajor=${KUBERNETES_VERSION%%.*} -X $p.gitMinor=$minor"
    ld+=" -X $p.gitCommit=$commit -X $p.gitTreeState=clean -X $p.buildDate=$btime"
  done
  local c
  for c in "$@"; do
    echo "== go build $c"
    "$GO_BIN" build -trimpath -ldflags "$ld" -o "$w/out/$c" "k8s.io/kubernetes/cmd/$c"
    install_bins "$w/out" "$c"
  done
}

build_kwok() {
  local w; w="$(work_dir kwok)"
  new_wrapper_module "$w" local/kwok-build
  "$GO_BIN" mod edit -require="sigs.k8s.io/kwok@v$KWOK_VERSION"
  local ld="-s -w -X sigs.k8s.io/kwok/pkg/consts.Version=$KWOK_VERSION -X sigs.k8s.io/kwok/pkg/consts.KubeVersion=$KUBERNETES_VERSION"
  "$GO_BIN" build -trimpath -ldflags "$ld" -o "$w/out/" sigs.k8s.io/kwok/cmd/kwok sigs.k8s.io/kwok/cmd/kwokctl
  install_bins "$w/out" kwok kwokctl
}


bootstrap_kube() {
  if ! have etcd && ! from_cache etcd && ! reuse_from_path etcd "etcd Version: $ETCD_VERSION" --version; then
    build_tool etcd "etcd v$ETCD_VERSION" 2 build_etcd
  fi
  local c eta
  for c in kube-apiserver kube-controller-manager kube-scheduler kubectl; do
    if have "$c" || from_cache "$c"; then continue; fi
    if [ "$c" = kubectl ]; then
      reuse_from_path kubectl "Client Version: v$KUBERNETES_VERSION" version --client && continue
    else
      reuse_from_path "$c" "Kubernetes v$KUBERNETES_VERSION" --version && continue
    fi
    case "$c" in kube-apiserver) eta=5 ;; kube-controller-manager) eta=2 ;; *) eta=1 ;; esac
    build_tool "$c" "$c v$KUBERNETES_VERSION" "$eta" build_kube "$c"
  done
  if ! have kwok kwokctl && ! from_cache kwok; then
    if ! { reuse_from_path kwok "version v$KWOK_VERSION " --version &&
      reuse_from_path kwokctl "version v$KWOK_VERSION " --version; }; then
      build_tool kwok "kwok + kwokctl v$KWOK_VERSION" 2 build_kwok
    fi
  fi
}

# ---------------------------------------------------------------------------
# Pulumi engine, language host, providers
# ---------------------------------------------------------------------------
build_pulumi_cli() {
  local w info vpkg=github.com/pulumi/pulumi/sdk/v3/go/common/version
  w="$(work_dir pulumi)"
  new_wrapper_module "$w" local/pulumi-build
  info="$(mod_download "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_CLI_VERSION")"
  # shellcheck disable=SC2046 # one flag per line
  "$GO_BIN" mod edit -require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_CLI_VERSION" \
    $(version_replaces "$(json_get GoMod <<<"$info")")
  "$GO_BIN" build -trimpath -tags grpcnotrace \
    -ldflags "-s -w -X $vpkg.Version=v$PULUMI_CLI_VERSION" \
    -o "$w/out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  install_bins "$w/out" pulumi
}

build_language_nodejs() {
  local w info m=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
  local vpkg=github.com/pulumi/pulumi/sdk/v3/go/common/version
  w="$(work_dir language-nodejs)"
  new_wrapper_module "$w" local/pulumi-language-nodejs-build "${PULUMI_LANGUAGE_NODEJS_GOSUM:-}"
  info="$(mod_download "$m@$PULUMI_LANGUAGE_NODEJS_MODULE")"
  # Its go.mod points pkg/sdk at ../../..; pin the release right after the commit.
  # shellcheck disable=SC2046 # one flag per line
  "$GO_BIN" mod edit -require="$m@$PULUMI_LANGUAGE_NODEJS_MODULE" \
    -require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_LANGUAGE_NODEJS_PULUMI_VERSION" \
    -require="github.com/pulumi/pulumi/sdk/v3@v$PULUMI_LANGUAGE_NODEJS_PULUMI_VERSION" \
    $(version_replaces "$(json_get GoMod <<<"$info")")
  "$GO_BIN" build -trimpath -tags grpcnotrace \
    -ldflags "-s -w -X $vpkg.Version=v$PULUMI_LANGUAGE_NODEJS_PULUMI_VERSION" \
    -o "$w/out/pulumi-language-nodejs" "$m"
  install_bins "$w/out" pulumi-language-nodejs
}

build_provider_kubernetes() {
  local w info src m=github.com/pulumi/pulumi-kubernetes/provider/v4
  w="$(work_dir provider-kubernetes)"
  new_wrapper_module "$w" local/pulumi-resource-kubernetes-build "${PULUMI_KUBERNETES_PROVIDER_GOSUM:-}"
  info="$(mod_download "$m@$PULUMI_KUBERNETES_PROVIDER_MODULE")"
  # The module zip lacks the generated (gitignored) embed files: copy it out and
  # write them the way its generate.go does (schema with "version" set, and the
  # minified terraform mapping).
  src="$w/src"
  cp -R "$(json_get Dir <<<"$info")" "$src"
  chmod -R u+w "$src"
  (
    cd "$src/cmd/pulumi-resource-kubernetes"
    "$NODE_BIN" -e '
      const fs = require("fs");
      const schema = JSON.parse(fs.readFileSync("schema.json", "utf8"));
      schema.version = process.argv[1];
      fs.writeFileSync("schema-embed.json", JSON.stringify(schema));
      fs.writeFileSync("terraform-mapping-embed.json",
        JSON.stringify(JSON.parse(fs.readFileSync("terraform-mapping.json", "utf8"))));
    ' "$PULUMI_KUBERNETES_PROVIDER_VERSION"
  )
  cd "$w"
  # shellcheck disable=SC2046 # one flag per line
  "$GO_BIN" mod edit -require="$m@$PULUMI_KUBERNETES_PROVIDER_MODULE" -replace="$m=./src" \
    $(version_replaces "$src/go.mod")
  "$GO_BIN" build -trimpath \
    -ldflags "-s -w -X $m/pkg/version.Version=$PULUMI_KUBERNETES_PROVIDER_VERSION" \
    -o "$w/out/pulumi-resource-kubernetes" "$m/cmd/pulumi-resource-kubernetes"
  install_bins "$w/out" pulumi-resource-kubernetes
}


# kafka and random: the proxy serves no version of pulumi-kafka/provider/v3 or
# pulumi-random/provider/v4, but it does serve what they are made of: the
# Terraform providers and pulumi-terraform-bridge. So this builds the bridged
# providers from those, with a small mapping of our own (tools/go/bridged) that
# yields the tokens and property names of the @pulumi/kafka and @pulumi/random
# SDKs, runs tfgen to produce their Pulumi schema and bridge metadata, and
# embeds those. Only the files the tool's key lists (TOOL_FILES) are copied in;
# versions come from versions.env: go.mod requires (go mod edit) and -ldflags.
build_bridged_provider() { # kafka|random
  local n="$1" ver w gen
  case "$n" in
    kafka) ver="$PULUMI_KAFKA_PROVIDER_VERSION" ;;
    random) ver="$PULUMI_RANDOM_PROVIDER_VERSION" ;;
  esac
  w="$(work_dir "provider-$n")"
  new_wrapper_module "$w" local/bridged-providers "${BRIDGED_PROVIDERS_GOSUM:-}"
  # shellcheck disable=SC2086
  (cd "$GO_SRC" && tar -cf - ${TOOL_FILES[pulumi-resource-$n]}) | tar -C "$w" -xf -
  chmod -R u+w "$w"
  "$GO_BIN" mod edit -require="github.com/terraform-providers/terraform-provider-random@$TF_RANDOM_MODULE" shim/go.mod
  "$GO_BIN" mod edit \
    -require="github.com/pulumi/pulumi-terraform-bridge/v3@v$PULUMI_TERRAFORM_BRIDGE_VERSION" \
    -require="github.com/Mongey/terraform-provider-kafka@v$TF_KAFKA_VERSION" \
    -require="github.com/terraform-providers/terraform-provider-random@$TF_RANDOM_MODULE" \
    -require="github.com/terraform-providers/terraform-provider-random/shim@v0.0.0" \
    -replace="github.com/terraform-providers/terraform-provider-random/shim=./shim"
  # The bridge's own go.mod pins forks via replace; a wrapper must repeat them.
  local binfo; binfo="$(mod_download "github.com/pulumi/pulumi-terraform-bridge/v3@v$PULUMI_TERRAFORM_BRIDGE_VERSION")"
  local reps; reps="$(version_replaces "$(json_get GoMod <<<"$binfo")")"
  # shellcheck disable=SC2086 # one flag per line
  [ -z "$reps" ] || "$GO_BIN" mod edit $reps
  # tfgen links pulumi-yaml's and pulumi-dotnet's program generators (used to
  # translate documentation examples); the versions the bridge wants are not
  # served, so stand-ins are used (tools/go/bridged/stubs).
  "$GO_BIN" mod edit \
    -replace=github.com/pulumi/pulumi-yaml=./stubs/pulumi-yaml \
    -replace=github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3=./stubs/pulumi-language-dotnet
  local ld="-s -w -X main.version=$ver"
  echo "== go build pulumi-tfgen-$n"
  "$GO_BIN" build -trimpath -ldflags "$ld" -o "$w/out/pulumi-tfgen-$n" "./cmd/pulumi-tfgen-$n"
  echo "== pulumi-tfgen-$n schema"
  gen="$w/cmd/pulumi-resource-$n"
  (cd "$w" && PULUMI_SKIP_UPDATE_CHECK=true PULUMI_MISSING_DOCS_ERROR=false "$w/out/pulumi-tfgen-$n" schema --out "$gen")
  if [ ! -s "$gen/schema.json" ] || [ ! -s "$gen/bridge-metadata.json" ]; then
    echo "tfgen produced no schema" >&2; return 1
  fi
  echo "== go build pulumi-resource-$n"
  "$GO_BIN" build -trimpath -ldflags "$ld" -o "$w/out/pulumi-resource-$n" "./cmd/pulumi-resource-$n"
  install_bins "$w/out" "pulumi-resource-$n"
}

write_node_plugin() { # name @pulumi/pulumi/cmd/<entry>
  # Rewritten on every run (it is tiny), so a fix here reaches existing caches.
  # The program directory may be a subfolder (main: infra/index.ts): look upwards for
  # node_modules, as Node's own resolution does.
  cat >"$BIN_DIR/$1.tmp" <<PLUGIN
#!/bin/sh
# Pulumi plugin: runs @pulumi/pulumi/cmd/$2 of the nearest node_modules above the program directory.
d="\$(pwd)"
while :; do
  if [ -e "\$d/node_modules/@pulumi/pulumi/cmd/$2" ]; then exec node "\$d/node_modules/@pulumi/pulumi/cmd/$2" "\$@"; fi
  [ "\$d" = / ] && break
  d="\$(dirname "\$d")"
done
echo "$1: no node_modules/@pulumi/pulumi above \$(pwd); run npm install in the project" >&2
exit 1
PLUGIN
  chmod +x "$BIN_DIR/$1.tmp"
  mv -f "$BIN_DIR/$1.tmp" "$BIN_DIR/$1"
}

bootstrap_pulumi() {
  if ! have pulumi && ! from_cache pulumi; then
    if ! reuse_from_path pulumi "v$PULUMI_VERSION" version && ! reuse_from_path pulumi "v$PULUMI_CLI_VERSION" version; then
      build_tool pulumi "pulumi CLI v$PULUMI_CLI_VERSION" 7 build_pulumi_cli
    fi
  fi
  if ! have pulumi-language-nodejs && ! from_cache pulumi-language-nodejs; then
    # An installed pulumi ships its language host next to it.
    local pdir; pdir="$(dirname "$(readlink -f "$BIN_DIR/pulumi")")"
    if [ "$pdir" != "$BIN_DIR" ] && [ -x "$pdir/pulumi-language-nodejs" ]; then
      ln -sfn "$pdir/pulumi-language-nodejs" "$BIN_DIR/pulumi-language-nodejs"
      log "using pulumi-language-nodejs next to $pdir/pulumi"
    else
      build_tool pulumi-language-nodejs "pulumi-language-nodejs ($PULUMI_LANGUAGE_NODEJS_MODULE)" 3 build_language_nodejs
    fi
  fi
  # The CLI distribution's two script plugins for Node.js: dynamic providers
  # (pulumi.dynamic.Resource) and policy packs, run from the program's
  # node_modules. Found next to the pulumi binary.
  write_node_plugin pulumi-resource-pulumi-nodejs dynamic-provider
  write_node_plugin pulumi-analyzer-policy run-policy-pack
  if ! have pulumi-resource-kubernetes && ! from_cache pulumi-resource-kubernetes; then
    build_tool pulumi-resource-kubernetes "pulumi-resource-kubernetes v$PULUMI_KUBERNETES_PROVIDER_VERSION" 10 build_provider_kubernetes
  fi
  local n
  for n in kafka random; do
    if ! have "pulumi-resource-$n" && ! from_cache "pulumi-resource-$n"; then
      # kafka compiles the bridge (~10 min cold); random then reuses most of it.
      build_tool "pulumi-resource-$n" "pulumi-resource-$n (bridged locally)" "$([ $n = kafka ] && echo 10 || echo 2)" \
        build_bridged_provider "$n"
    fi
  done
  register_plugins
}

# Installs the providers into $SET_DIR/pulumi-home (the PULUMI_HOME that
# tools/env.sh sets) under the exact versions the npm SDKs request, since the
# engine selects a provider plugin by exact version.
register_plugins() {
  local home="$SET_DIR/pulumi-home" n key ver
  for n in kubernetes kafka random; do
    key="PULUMI_$(tr '[:lower:]' '[:upper:]' <<<"$n")_VERSION"
    ver="${!key}"
    [ -x "$home/plugins/resource-$n-v$ver/pulumi-resource-$n" ] && continue
    log "registering pulumi-resource-$n as plugin $n v$ver in $home"
    PULUMI_HOME="$home" PULUMI_SKIP_UPDATE_CHECK=true PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true \
      "$BIN_DIR/pulumi" plugin install resource "$n" "$ver" --file "$BIN_DIR/pulumi-resource-$n" >&2 ||
      die "registering pulumi-resource-$n as plugin $n v$ver failed"
  done
}

# ---------------------------------------------------------------------------
t_start=$SECONDS
log "tool set $SET_KEY in $BIN_DIR"
case "$ONLY" in
  pulumi) bootstrap_pulumi ;;
  kube) bootstrap_kube ;;
  all) bootstrap_kube; bootstrap_pulumi ;;
esac
log "ready in $((SECONDS - t_start))s"
printf '%s\n' "$BIN_DIR"
