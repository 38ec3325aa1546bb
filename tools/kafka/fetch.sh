#!/usr/bin/env bash
# Fetches the Apache Kafka broker and tools pinned in tools/kafka/pom.xml from Maven Central into
# a cache directory outside the repository, once. Installs Java and Maven from apt when missing.
# Progress goes to stderr; the last line on stdout is the directory of jars (a Java classpath
# is "<that dir>/*").
#
#   KCS_CACHE_DIR   cache root (default: ${XDG_CACHE_HOME:-$HOME/.cache}/kafka-clickhouse-stack)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$here/pom.xml"
log() { echo "[kafka-fetch] $*" >&2; }

# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$here/../lib.sh"
version="$(kcs_pin "$pom" 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' '<kafka.version>')"
dest="$kcs_cache_root/kafka/$version"
lib="$dest/lib"
# The stamp ties the jars to the exact pom: editing the pom (another jar, another binding)
# refetches even when the Kafka version stays the same.
pom_sum="$(sha256sum "$pom" | cut -d' ' -f1)"
stamp="$dest/pom.sha256"

if [[ -f "$stamp" && "$(cat "$stamp")" == "$pom_sum" && -d "$lib" ]]; then
    log "Kafka $version already in $lib"
    echo "$lib"
    exit 0
fi

java_major() {
    java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

as_root() {
    if [[ "$(id -u)" == 0 ]]; then "$@"; else sudo "$@"; fi
}

missing=()
if ! command -v java >/dev/null 2>&1 || ! java -version >/dev/null 2>&1 || (( "$(java_major)" < 17 )); then
    missing+=(default-jre-headless)
fi
if ! command -v mvn >/dev/null 2>&1 || ! mvn -v >/dev/null 2>&1; then
    missing+=(maven)
fi
if (( ${#missing[@]} > 0 )); then
    log "installing ${missing[*]} with apt-get (Kafka $version needs Java 17 or later)"
    as_root apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
    if (( "$(java_major)" < 17 )); then
        log "java on PATH is $(java_major); Kafka $version needs 17 or later"
        exit 1
    fi
fi

mkdir -p "$dest"
exec 9>"$dest/.lock"
# Two test runs starting at once fetch only once.
if command -v flock >/dev/null 2>&1; then
    flock 9
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$pom_sum" && -d "$lib" ]]; then
        log "Kafka $version already in $lib"
        echo "$lib"
        exit 0
    fi
fi

log "fetching Kafka $version and its tools from Maven Central into $lib (about 45 MB, once)"
tmp="$(mktemp -d "$dest/lib.tmp.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
start=$SECONDS
# Maven 3.8 prints colour resets even in batch mode; strip them from its output.
mvn -q -B -Dstyle.color=never -f "$pom" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$tmp" 2>&1 | sed 's/\x1b\[[0-9;]*m//g' >&2
count="$(find "$tmp" -name '*.jar' | wc -l)"
if (( count == 0 )); then
    log "maven copied no jars"
    exit 1
fi
rm -rf "$lib"
mv "$tmp" "$lib"
echo "$pom_sum" >"$stamp"
log "fetched $count jars in $((SECONDS - start))s"
echo "$lib"
