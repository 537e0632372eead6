#!/usr/bin/env bash
# Start a Docker engine for the container tests and images/build.sh when none answers, and wait until
# it does. As root: installs docker.io, debootstrap and docker-compose from Debian when missing.
#
# Traffic stays on loopback on shared machines: the engine starts with no default bridge
# (--bridge=none); the test deployment's containers use host networking and grading sandboxes
# have no network at all (--network none). Log: /tmp/learnhub-dockerd.log
set -euo pipefail
say() { printf 'dockerd.sh: %s\n' "$*" >&2; }

if docker info >/dev/null 2>&1; then say "a Docker engine answers already"; exit 0; fi
[ "$(id -u)" = 0 ] || { say "not root: start a Docker engine yourself (dockerd)"; exit 1; }

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v debootstrap >/dev/null || missing+=(debootstrap)
command -v docker-compose >/dev/null || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

say "starting dockerd (--bridge=none)"
setsid dockerd --bridge=none --iptables=false --ip-masq=false >/tmp/learnhub-dockerd.log 2>&1 < /dev/null &
for _ in $(seq 1 120); do
  if docker info >/dev/null 2>&1; then say "ready: $(docker info --format '{{.ServerVersion}} {{.Driver}}')"; exit 0; fi
  sleep 0.5
done
say "dockerd did not answer within 60 s; see /tmp/learnhub-dockerd.log"; tail -20 /tmp/learnhub-dockerd.log >&2
exit 1
