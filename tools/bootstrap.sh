#!/usr/bin/env bash
# Builds the project's external tools from the Go module proxy into a versioned
# cache outside the repo (keyed on a hash of tools/versions.env, where every
# version is pinned), reusing what is already there or on PATH:
#   --only pulumi: pulumi, pulumi-language-nodejs, pulumi-resource-kubernetes,
#                  pulumi-resource-kafka, pulumi-resource-random
#   --only kube:   etcd, kube-apiserver, kube-controller-manager,
#                  kube-scheduler, kubectl, kwok, kwokctl
# Usage: tools/bootstrap.sh [--only pulumi|kube|all]      (default: all)
#   BIN=$(tools/bootstrap.sh | tail -1)
# Progress goes to stderr; the last line of stdout is the bin directory.
# Needs Go >= 1.26 and node. Environment: KCS_CACHE_DIR (default
# ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack); GOPROXY, GOMODCACHE,
# GOCACHE as usual for Go; KCS_KEEP_WORK=1 keeps the wrapper modules.
set -euo pipefail

TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VERSIONS_FILE="$TOOLS_DIR/versions.env"

log() { printf '[bootstrap] %s\n' "$*" >&2; }
die() { printf '[bootstrap] ERROR: %s\n' "$*" >&2; exit 1; }

ONLY=all
while [ $# -gt 0 ]; do
  case "$1" in
    --only) ONLY="${2:-}"; shift 2 || die "--only needs an argument" ;;
    --only=*) ONLY="${1#--only=}"; shift ;;
    -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
done
case "$ONLY" in pulumi|kube|all) ;; *) die "--only must be pulumi, kube or all (got '$ONLY')" ;; esac

[ -f "$VERSIONS_FILE" ] || die "missing $VERSIONS_FILE"
# shellcheck disable=SC1090
. "$VERSIONS_FILE"

VERSIONS_HASH="$(sha256sum "$VERSIONS_FILE" | cut -c1-16)"
CACHE_ROOT="${KCS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack}"
TOOLS_ROOT="$CACHE_ROOT/tools/$VERSIONS_HASH"
BIN_DIR="$TOOLS_ROOT/bin"
LOG_DIR="$TOOLS_ROOT/logs"
mkdir -p "$BIN_DIR" "$LOG_DIR"
cp -f "$VERSIONS_FILE" "$TOOLS_ROOT/versions.env"

# One bootstrap at a time per tool set (parallel test processes share it).
if command -v flock >/dev/null 2>&1; then
  exec 9>"$TOOLS_ROOT/.lock"
  if ! flock -n 9; then
    log "another bootstrap is running for $TOOLS_ROOT; waiting for it..."
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

export CGO_ENABLED=0 GOWORK=off GOTOOLCHAIN=local
export GOFLAGS="-mod=mod -buildvcs=false"

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
WORK_ROOT="$(mktemp -d "$TOOLS_ROOT/work.XXXXXX")"
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
run_step() { # name description eta-minutes function args...
  local name="$1" what="$2" eta="$3"; shift 3
  local logf="$LOG_DIR/$name.log" t0=$SECONDS next=60
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

install_bins() { # out-dir names...
  local out="$1" b; shift
  for b in "$@"; do
    [ -x "$out/$b" ] || { echo "expected binary $b was not produced" >&2; return 1; }
    mv -f "$out/$b" "$BIN_DIR/$b"
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
  if ! have etcd && ! reuse_from_path etcd "etcd Version: $ETCD_VERSION" --version; then
    need_go etcd
    run_step etcd "etcd v$ETCD_VERSION" 2 build_etcd
  fi
  local c todo=()
  for c in kube-apiserver kube-controller-manager kube-scheduler; do
    have "$c" || reuse_from_path "$c" "Kubernetes v$KUBERNETES_VERSION" --version || todo+=("$c")
  done
  have kubectl || reuse_from_path kubectl "Client Version: v$KUBERNETES_VERSION" version --client || todo+=(kubectl)
  if [ ${#todo[@]} -gt 0 ]; then
    need_go kubernetes
    local c
    for c in "${todo[@]}"; do
      case "$c" in
        kube-apiserver) run_step "$c" "$c v$KUBERNETES_VERSION" 5 build_kube "$c" ;;
        kube-controller-manager) run_step "$c" "$c v$KUBERNETES_VERSION" 2 build_kube "$c" ;;
        *) run_step "$c" "$c v$KUBERNETES_VERSION" 1 build_kube "$c" ;;
      esac
    done
  fi
  if ! have kwok kwokctl; then
    if ! { reuse_from_path kwok "version v$KWOK_VERSION " --version &&
      reuse_from_path kwokctl "version v$KWOK_VERSION " --version; }; then
      need_go kwok
      run_step kwok "kwok + kwokctl v$KWOK_VERSION" 2 build_kwok
    fi
  fi
}

# ---------------------------------------------------------------------------
# Pulumi engine, language host, providers
# ---------------------------------------------------------------------------
PULUMI_VERSION_PKG=github.com/pulumi/pulumi/sdk/v3/go/common/version

build_pulumi_cli() {
  local w info; w="$(work_dir pulumi)"
  new_wrapper_module "$w" local/pulumi-build
  info="$(mod_download "github.com/pulumi/pulumi/pkg/v3@v$PULUMI_CLI_VERSION")"
  "$GO_BIN" mod edit -require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_CLI_VERSION" \
    $(version_replaces "$(json_get GoMod <<<"$info")")
  "$GO_BIN" build -trimpath -tags grpcnotrace \
    -ldflags "-s -w -X $PULUMI_VERSION_PKG.Version=v$PULUMI_CLI_VERSION" \
    -o "$w/out/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
  install_bins "$w/out" pulumi
}

build_language_nodejs() {
  local w info m=github.com/pulumi/pulumi/sdk/nodejs/cmd/pulumi-language-nodejs/v3
  w="$(work_dir language-nodejs)"
  new_wrapper_module "$w" local/pulumi-language-nodejs-build "${PULUMI_LANGUAGE_NODEJS_GOSUM:-}"
  info="$(mod_download "$m@$PULUMI_LANGUAGE_NODEJS_MODULE")"
  # Its go.mod points pkg/sdk at ../../..; pin the release right after the commit.
  "$GO_BIN" mod edit -require="$m@$PULUMI_LANGUAGE_NODEJS_MODULE" \
    -require="github.com/pulumi/pulumi/pkg/v3@v$PULUMI_LANGUAGE_NODEJS_PULUMI_VERSION" \
    -require="github.com/pulumi/pulumi/sdk/v3@v$PULUMI_LANGUAGE_NODEJS_PULUMI_VERSION" \
    $(version_replaces "$(json_get GoMod <<<"$info")")
  "$GO_BIN" build -trimpath -tags grpcnotrace \
    -ldflags "-s -w -X $PULUMI_VERSION_PKG.Version=v$PULUMI_LANGUAGE_NODEJS_PULUMI_VERSION" \
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
# providers from those, with a small mapping of our own (below) that yields the
# tokens and property names of the @pulumi/kafka and @pulumi/random SDKs, runs
# tfgen to produce their Pulumi schema and bridge metadata, and embeds those.
write_bridged_sources() { # dir
  local d="$1"
  mkdir -p "$d/kafka" "$d/random" "$d/shim" \
    "$d/cmd/pulumi-tfgen-kafka" "$d/cmd/pulumi-resource-kafka" \
    "$d/cmd/pulumi-tfgen-random" "$d/cmd/pulumi-resource-random"
  cat >"$d/kafka/info.go" <<'EOF'
// Package kafka maps terraform-provider-kafka to the names used by @pulumi/kafka.
package kafka

import (
	"fmt"
	"strings"
	"unicode"

	tfkafka "github.com/Mongey/terraform-provider-kafka/kafka"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	shimv2 "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfshim/sdk-v2"
)

func withEnvDefault(env string, value any) *tfbridge.SchemaInfo {
	return &tfbridge.SchemaInfo{Default: &tfbridge.DefaultInfo{EnvVars: []string{env}, Value: value}}
}

// Provider returns the bridge configuration; metadata is bridge-metadata.json.
func Provider(version string, metadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:            shimv2.NewProvider(tfkafka.Provider()),
		Name:         "kafka",
		Version:      version,
		GitHubOrg:    "Mongey",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Config: map[string]*tfbridge.SchemaInfo{
			"sasl_mechanism":  withEnvDefault("KAFKA_SASL_MECHANISM", "plain"),
			"skip_tls_verify": withEnvDefault("KAFKA_SKIP_VERIFY", false),
			"tls_enabled":     withEnvDefault("KAFKA_ENABLE_TLS", true),
		},
		Resources: map[string]*tfbridge.ResourceInfo{
			// "resourceName" would clash with the SDK's own constructor argument.
			"kafka_acl": {Fields: map[string]*tfbridge.SchemaInfo{
				"resource_name": {Name: "aclResourceName"},
				"resource_type": {Name: "aclResourceType"},
			}},
		},
	}
	// Resources: kafka:index/topic:Topic; functions: kafka:index:getTopic.
	info.MustComputeTokens(tokensFor("kafka_"))
	info.SetAutonaming(255, "-")
	return info
}

func tokensFor(prefix string) tfbridge.Strategy {
	return singleModule(prefix, func(name string) string {
		if strings.HasPrefix(name, "get") {
			return "kafka:index:" + name
		}
		return fmt.Sprintf("kafka:index/%c%s:%s", unicode.ToLower(rune(name[0])), name[1:], name)
	})
}
EOF
  cat >"$d/kafka/tokens.go" <<'EOF'
package kafka

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
)

func singleModule(prefix string, token func(name string) string) tfbridge.Strategy {
	return tokens.SingleModule(prefix, "index", func(_, name string) (string, error) { return token(name), nil })
}
EOF
  cat >"$d/shim/go.mod" <<EOF
module github.com/terraform-providers/terraform-provider-random/shim

go 1.25

require github.com/terraform-providers/terraform-provider-random $TF_RANDOM_MODULE
EOF
  cat >"$d/shim/shim.go" <<'EOF'
// Package shim exposes terraform-provider-random's internal provider; its
// import path sits under that module so Go's internal-package rule allows it.
package shim

import (
	tfpf "github.com/hashicorp/terraform-plugin-framework/provider"
	"github.com/terraform-providers/terraform-provider-random/internal/provider"
)

func NewProvider() tfpf.Provider { return provider.New() }
EOF
  cat >"$d/random/info.go" <<'EOF'
// Package random maps terraform-provider-random to the names used by @pulumi/random.
package random

import (
	"context"
	"errors"

	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/terraform-providers/terraform-provider-random/shim"
)

// Provider returns the bridge configuration; metadata is bridge-metadata.json.
func Provider(version string, metadata []byte) tfbridge.ProviderInfo {
	info := tfbridge.ProviderInfo{
		P:            pf.ShimProvider(shim.NewProvider()),
		Name:         "random",
		Version:      version,
		GitHubOrg:    "hashicorp",
		MetadataInfo: tfbridge.NewProviderMetadata(metadata),
		Resources: map[string]*tfbridge.ResourceInfo{
			// random_bytes has no "id" attribute: use its base64 value.
			"random_bytes": {ComputeID: func(_ context.Context, state resource.PropertyMap) (resource.ID, error) {
				v, ok := state["base64"]
				if ok && v.IsSecret() {
					v = v.SecretValue().Element
				}
				if !ok || !v.IsString() {
					return "", errors.New("random_bytes: no base64 string in state")
				}
				return resource.ID(v.StringValue()), nil
			}},
		},
	}
	// random_password -> random:index/randomPassword:RandomPassword
	standard := tokens.MakeStandard("random")
	info.MustComputeTokens(tokens.SingleModule("random_", "index", func(module, name string) (string, error) {
		return standard(module, "Random"+name)
	}))
	return info
}
EOF
  # Stand-ins for two program generators tfgen links but never calls here.
  mkdir -p "$d/stubs/pulumi-yaml/pkg/pulumiyaml/codegen" "$d/stubs/pulumi-language-dotnet/codegen"
  printf 'module github.com/pulumi/pulumi-yaml\n\ngo 1.25\n' >"$d/stubs/pulumi-yaml/go.mod"
  printf 'module github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3\n\ngo 1.25\n' \
    >"$d/stubs/pulumi-language-dotnet/go.mod"
  local pkg
  for pkg in "$d/stubs/pulumi-yaml/pkg/pulumiyaml/codegen" "$d/stubs/pulumi-language-dotnet/codegen"; do
    cat >"$pkg/stub.go" <<'EOF'
// Package codegen is a stand-in: tfgen links this program generator only to
// translate documentation examples, which these local builds do not need.
package codegen

import (
	"errors"

	"github.com/hashicorp/hcl/v2"
	"github.com/pulumi/pulumi/pkg/v3/codegen/pcl"
)

func GenerateProgram(*pcl.Program) (map[string][]byte, hcl.Diagnostics, error) {
	return nil, nil, errors.New("example translation for this language is not built in")
}
EOF
  done
  cat >>"$d/stubs/pulumi-language-dotnet/codegen/stub.go" <<'EOF'

// Language-specific schema extensions (the same JSON shape tfgen writes).
type CSharpPropertyInfo struct {
	Name string `json:"name,omitempty"`
}

type CSharpResourceInfo struct {
	Name string `json:"name,omitempty"`
}

type CSharpPackageInfo struct {
	PackageReferences            map[string]string `json:"packageReferences,omitempty"`
	Namespaces                   map[string]string `json:"namespaces,omitempty"`
	Compatibility                string            `json:"compatibility,omitempty"`
	DictionaryConstructors       bool              `json:"dictionaryConstructors,omitempty"`
	ProjectReferences            []string          `json:"projectReferences,omitempty"`
	LiftSingleValueMethodReturns bool              `json:"liftSingleValueMethodReturns,omitempty"`
	RootNamespace                string            `json:"rootNamespace,omitempty"`
	RespectSchemaVersion         bool              `json:"respectSchemaVersion,omitempty"`
}
EOF
  local n
  for n in kafka random; do
    cat >"$d/cmd/pulumi-tfgen-$n/main.go" <<EOF
package main

import (
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/$( [ $n = random ] && echo pf/tfgen || echo tfgen )"
	prov "local/bridged-providers/$n"
)

var version = "0.0.0"

func main() {
	$( [ $n = random ] && echo "tfgen.Main(\"$n\", prov.Provider(version, []byte(\"{}\")))" || echo "tfgen.Main(\"$n\", version, prov.Provider(version, []byte(\"{}\")))" )
}
EOF
  done
  cat >"$d/cmd/pulumi-resource-kafka/main.go" <<'EOF'
package main

import (
	_ "embed"

	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	prov "local/bridged-providers/kafka"
)

var version = "0.0.0"

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

func main() { tfbridge.Main("kafka", version, prov.Provider(version, metadata), schema) }
EOF
  cat >"$d/cmd/pulumi-resource-random/main.go" <<'EOF'
package main

import (
	"context"
	_ "embed"

	pf "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	prov "local/bridged-providers/random"
)

var version = "0.0.0"

//go:embed schema.json
var schema []byte

//go:embed bridge-metadata.json
var metadata []byte

func main() {
	pf.Main(context.Background(), "random", prov.Provider(version, metadata), pf.ProviderMetadata{PackageSchema: schema})
}
EOF
}

build_bridged_provider() { # kafka|random
  local n="$1" ver w gen
  case "$n" in
    kafka) ver="$PULUMI_KAFKA_PROVIDER_VERSION" ;;
    random) ver="$PULUMI_RANDOM_PROVIDER_VERSION" ;;
  esac
  w="$(work_dir "provider-$n")"
  new_wrapper_module "$w" local/bridged-providers "${BRIDGED_PROVIDERS_GOSUM:-}"
  TF_RANDOM_MODULE="$TF_RANDOM_MODULE" write_bridged_sources "$w"
  "$GO_BIN" mod edit \
    -require="github.com/pulumi/pulumi-terraform-bridge/v3@v$PULUMI_TERRAFORM_BRIDGE_VERSION" \
    -require="github.com/Mongey/terraform-provider-kafka@v$TF_KAFKA_VERSION" \
    -require="github.com/terraform-providers/terraform-provider-random@$TF_RANDOM_MODULE" \
    -require="github.com/terraform-providers/terraform-provider-random/shim@v0.0.0" \
    -replace="github.com/terraform-providers/terraform-provider-random/shim=./shim"
  # The bridge's own go.mod pins forks via replace; a wrapper must repeat them.
  local binfo; binfo="$(mod_download "github.com/pulumi/pulumi-terraform-bridge/v3@v$PULUMI_TERRAFORM_BRIDGE_VERSION")"
  local reps; reps="$(version_replaces "$(json_get GoMod <<<"$binfo")")"
  [ -z "$reps" ] || "$GO_BIN" mod edit $reps
  # tfgen links pulumi-yaml's and pulumi-dotnet's program generators (used to
  # translate documentation examples); the versions the bridge wants are not
  # served, so stand-ins are used (see write_bridged_sources).
  "$GO_BIN" mod edit \
    -replace=github.com/pulumi/pulumi-yaml=./stubs/pulumi-yaml \
    -replace=github.com/pulumi/pulumi-dotnet/pulumi-language-dotnet/v3=./stubs/pulumi-language-dotnet
  local ld="-s -w -X main.version=$ver"
  echo "== go build pulumi-tfgen-$n"
  "$GO_BIN" build -trimpath -ldflags "$ld" -o "$w/out/pulumi-tfgen-$n" "./cmd/pulumi-tfgen-$n"
  echo "== pulumi-tfgen-$n schema"
  gen="$w/cmd/pulumi-resource-$n"
  (cd "$w" && PULUMI_SKIP_UPDATE_CHECK=true PULUMI_MISSING_DOCS_ERROR=false "$w/out/pulumi-tfgen-$n" schema --out "$gen")
  [ -s "$gen/schema.json" ] && [ -s "$gen/bridge-metadata.json" ] || { echo "tfgen produced no schema" >&2; return 1; }
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
  if ! have pulumi; then
    if ! reuse_from_path pulumi "v$PULUMI_VERSION" version && ! reuse_from_path pulumi "v$PULUMI_CLI_VERSION" version; then
      need_go pulumi
      run_step pulumi "pulumi CLI v$PULUMI_CLI_VERSION" 7 build_pulumi_cli
    fi
  fi
  if ! have pulumi-language-nodejs; then
    # An installed pulumi ships its language host next to it.
    local pdir; pdir="$(dirname "$(readlink -f "$BIN_DIR/pulumi")")"
    if [ "$pdir" != "$BIN_DIR" ] && [ -x "$pdir/pulumi-language-nodejs" ]; then
      ln -sfn "$pdir/pulumi-language-nodejs" "$BIN_DIR/pulumi-language-nodejs"
      log "using pulumi-language-nodejs next to $pdir/pulumi"
    else
      need_go pulumi-language-nodejs
      run_step pulumi-language-nodejs "pulumi-language-nodejs ($PULUMI_LANGUAGE_NODEJS_MODULE)" 3 build_language_nodejs
    fi
  fi
  # The CLI distribution's two script plugins for Node.js: dynamic providers
  # (pulumi.dynamic.Resource) and policy packs, run from the program's
  # node_modules. Found next to the pulumi binary.
  write_node_plugin pulumi-resource-pulumi-nodejs dynamic-provider
  write_node_plugin pulumi-analyzer-policy run-policy-pack
  if ! have pulumi-resource-kubernetes; then
    need_go pulumi-resource-kubernetes
    run_step pulumi-resource-kubernetes "pulumi-resource-kubernetes v$PULUMI_KUBERNETES_PROVIDER_VERSION" 10 build_provider_kubernetes
  fi
  local n
  for n in kafka random; do
    if ! have "pulumi-resource-$n"; then
      need_go "pulumi-resource-$n"
      # kafka compiles the bridge (~10 min cold); random then reuses most of it.
      run_step "pulumi-resource-$n" "pulumi-resource-$n (bridged locally)" "$([ $n = kafka ] && echo 10 || echo 2)" \
        build_bridged_provider "$n"
    fi
  done
  register_plugins
}

# Installs the providers into $TOOLS_ROOT/pulumi-home (the PULUMI_HOME that
# tools/env.sh sets) under the exact versions the npm SDKs request, since the
# engine selects a provider plugin by exact version.
register_plugins() {
  local home="$TOOLS_ROOT/pulumi-home" n key ver
  for n in kubernetes kafka random; do
    key="PULUMI_$(tr 'a-z' 'A-Z' <<<"$n")_VERSION"
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
log "tool set $VERSIONS_HASH in $BIN_DIR"
case "$ONLY" in
  pulumi) bootstrap_pulumi ;;
  kube) bootstrap_kube ;;
  all) bootstrap_kube; bootstrap_pulumi ;;
esac
log "ready in $((SECONDS - t_start))s"
printf '%s\n' "$BIN_DIR"
