#!/usr/bin/env bash
# Build the local systemd images the sandbox and the Molecule scenarios run on.
#
#   rozitech-sandbox/systemd-base:bookworm  Debian 12 + python3 + systemd (PID 1). From `debian:bookworm`
#                                           when that image is present, else debootstrap + `docker import`.
#   rozitech-sandbox/host:bookworm          base + bookworm-updates/security sources, the extra CA bundle
#                                           trusted (system store, pip, node), tools Ansible needs.
#   rozitech-sandbox/auth-standin:bookworm  host + Node.js + the auth server stand-in (tests/standins/auth_server).
#   rozitech-sandbox/auth-exporter:0.1.0    the auth probe exporter (monitoring/exporter), not systemd.
#   rozitech-sandbox/prometheus:2.42.0      Prometheus from Debian's package (monitoring/prometheus-image).
#   rozitech-sandbox/alertmanager:0.25.0    Alertmanager from Debian's package (monitoring/alertmanager-image).
#   rozitech-sandbox/alert-sink:bookworm     the sandbox's webhook receiver: records what Alertmanager sends.
#   rozitech-sandbox/redis:bookworm         Redis from Debian's package: the app hosts' shared cache (sandbox only).
#
# Cached by tag: the base is built once (about 1 min), derived images reuse Docker's layer cache (seconds).
# Environment:
#   EXTRA_CA_BUNDLE  PEM bundle the images trust (default: this machine's /etc/ssl/certs/ca-certificates.crt;
#                    set it to an empty string to trust only Debian's store)
#   DEBIAN_MIRROR    mirror for debootstrap (default http://deb.debian.org/debian)
#   REBUILD_BASE=1   rebuild the base image even when it exists
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
base_tag="rozitech-sandbox/systemd-base:bookworm"
host_tag="rozitech-sandbox/host:bookworm"
standin_tag="rozitech-sandbox/auth-standin:bookworm"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
ca_bundle="${EXTRA_CA_BUNDLE-/etc/ssl/certs/ca-certificates.crt}"

log() { printf '[images] %s\n' "$*"; }

docker info >/dev/null 2>&1 || { echo "build.sh: the Docker engine is not answering (start dockerd, see README)" >&2; exit 1; }

build_base() {
  if [ "${REBUILD_BASE:-0}" != 1 ] && docker image inspect "$base_tag" >/dev/null 2>&1; then
    log "$base_tag present (cached)"
    return
  fi
  if docker image inspect debian:bookworm >/dev/null 2>&1; then
    log "building $base_tag from debian:bookworm"
    docker build -q -t "$base_tag" - <<'DOCKERFILE'
FROM debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 systemd systemd-sysv ca-certificates && rm -rf /var/lib/apt/lists/*
DOCKERFILE
    return
  fi
  command -v debootstrap >/dev/null || { echo "build.sh: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
  log "building $base_tag with debootstrap from $mirror (about 1 min)"
  rootfs="$(mktemp -d /var/tmp/rozitech-rootfs.XXXXXX)"
  trap 'rm -rf "$rootfs"' RETURN
  debootstrap --variant=minbase --include=python3,systemd,systemd-sysv,ca-certificates \
    bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log" >&2; exit 1; }
  rm -f "$rootfs.log"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  tar -C "$rootfs" -c . | docker import -c 'CMD ["/lib/systemd/systemd"]' - "$base_tag" >/dev/null
}

build_derived() {  # tag, context dir
  local tag="$1" ctx="$2"
  log "building $tag"
  docker build -q -t "$tag" "$ctx" >/dev/null
}

build_base

# The host image trusts the extra CA bundle: stage it into the build context (ignored by git).
if [ -n "$ca_bundle" ] && [ -s "$ca_bundle" ]; then
  cp "$ca_bundle" "$here/host/extra-ca.crt"
else
  : >"$here/host/extra-ca.crt"
fi
build_derived "$host_tag" "$here/host"

# The stand-in image bakes its node_modules (npm ci against the committed lock file) and its code.
ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$here/auth-standin/Dockerfile" "$ctx/"
cp -r "$root/tests/standins/auth_server/." "$ctx/app/"
rm -rf "$ctx/app/node_modules"
build_derived "$standin_tag" "$ctx"

# The auth probe exporter (monitoring/exporter): a plain container, FROM the host image here
# (python:3.11-slim where a registry exists).
exporter_tag="rozitech-sandbox/auth-exporter:0.1.0"
log "building $exporter_tag"
docker build -q --build-arg BASE_IMAGE="$host_tag" -t "$exporter_tag" "$root/monitoring/exporter" >/dev/null

# Prometheus from Debian's package (prom/prometheus where a registry exists).
prom_tag="rozitech-sandbox/prometheus:2.42.0"
log "building $prom_tag"
docker build -q --build-arg BASE_IMAGE="$host_tag" -t "$prom_tag" "$root/monitoring/prometheus-image" >/dev/null
# Alertmanager from Debian's package (prom/alertmanager where a registry exists).
am_tag="rozitech-sandbox/alertmanager:0.25.0"
log "building $am_tag"
docker build -q --build-arg BASE_IMAGE="$host_tag" -t "$am_tag" "$root/monitoring/alertmanager-image" >/dev/null
# The sandbox's webhook receiver (tests/sandbox/alert_sink): what Alertmanager delivers, recorded.
sink_tag="rozitech-sandbox/alert-sink:bookworm"
log "building $sink_tag"
docker build -q --build-arg BASE_IMAGE="$host_tag" -t "$sink_tag" "$root/tests/sandbox/alert_sink" >/dev/null
# Redis (redis:7 where a registry exists): the sandbox's shared identity cache.
redis_tag="rozitech-sandbox/redis:bookworm"
log "building $redis_tag"
docker build -q --build-arg BASE_IMAGE="$host_tag" -t "$redis_tag" "$here/redis" >/dev/null
log "done: $(docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep '^rozitech-sandbox/' | tr '\n' ' ')"
