#!/usr/bin/env bash
# Build learnhub's three images: hub, singleuser and grader (docs/deployment.md).
#
#   images/build.sh [hub] [singleuser] [grader] [postgres]   (without arguments: the first three, and
#                                                  postgres where no registry answers)
#
# Tags learnhub/NAME:VERSION and :latest; `hub` also builds learnhub/worker (the hub image's
# `worker` target: a grading worker with the Docker client).
#
# Settings (environment):
#   LEARNHUB_BASE_IMAGE   the base of every image (default: python:3.12-slim-bookworm when it can be
#                         pulled, else the offline base below)
#   LEARNHUB_OFFLINE=1    do not try a registry: use (or make) the offline base and install Python
#                         packages only from the wheelhouse the host builds
#   LEARNHUB_IMAGE_TAG    the tag of the built images (default: learnhub's version, and :latest too)
#
# Offline base: on a machine that reaches no image registry the base is made with debootstrap
# (Debian bookworm, minbase, with python3 and venv) and imported as learnhub/base:bookworm; it is
# kept between runs (delete the image to make it anew). Python packages come from a wheelhouse
# (images/.build/wheels) that the host's pip fills, with the host's index and CA settings, so no
# certificate or index credential ever enters an image; the configurable-http-proxy of the hub
# image is installed by the host's npm the same way.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf 'build.sh: %s\n' "$*" >&2; }
stamp() { date +%s; }

targets=("$@")
for t in "${targets[@]}"; do
  case "$t" in hub|singleuser|grader|postgres) ;; *) say "unknown image '$t': use hub, singleuser, grader or postgres"; exit 2 ;; esac
done

PY="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || command -v python3 )}"
VERSION="$("$PY" -c 'import re,sys; print(re.search(r"__version__\s*=\s*[\x27\"]([^\x27\"]+)", open("learnhub/_version.py").read()).group(1))')"
TAG="${LEARNHUB_IMAGE_TAG:-$VERSION}"
REVISION="$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
PUBLIC_BASE=python:3.12-slim-bookworm
OFFLINE_BASE=learnhub/base:bookworm
BUILD=images/.build
mkdir -p "$BUILD/wheels"

docker info >/dev/null 2>&1 || { say "no Docker engine answers (start one: images/dockerd.sh as root)"; exit 1; }

make_offline_base() {
  if docker image inspect "$OFFLINE_BASE" >/dev/null 2>&1; then say "offline base $OFFLINE_BASE is there (kept from an earlier run)"; return; fi
  command -v debootstrap >/dev/null || { say "debootstrap is needed to make the offline base (apt-get install debootstrap)"; exit 1; }
  local t0 root mirror
  t0=$(stamp)
  root="$(mktemp -d /tmp/learnhub-base.XXXXXX)"
  # the host's own Debian mirror, as its apt sources name it
  mirror="$(grep -h -m1 -oE '^URIs: *http[^ ]*debian/?$' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true)"
  mirror="${mirror:-http://deb.debian.org/debian}"
  say "making the offline base with debootstrap (bookworm, minbase) from $mirror"
  debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates bookworm "$root" "$mirror" \
    >"$BUILD/debootstrap.log" 2>&1 || { tail -20 "$BUILD/debootstrap.log" >&2; exit 1; }
  # the public python image's names: `python` on PATH, and apt sources for builds that install packages
  ln -sf /usr/bin/python3 "$root/usr/local/bin/python"
  rm -rf "$root/var/cache/apt/archives/"*.deb "$root/var/lib/apt/lists/"*
  tar -C "$root" -c . | docker import \
    --change 'ENV LANG=C.UTF-8 PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["python3"]' - "$OFFLINE_BASE" >/dev/null
  rm -rf "$root"
  say "offline base made in $(( $(stamp) - t0 )) s"
}

BASE="${LEARNHUB_BASE_IMAGE:-}"
if [ -z "$BASE" ]; then
  if [ -z "${LEARNHUB_OFFLINE:-}" ] && { docker image inspect "$PUBLIC_BASE" >/dev/null 2>&1 \
       || timeout 30 docker pull -q "$PUBLIC_BASE" >/dev/null 2>&1; }; then
    BASE="$PUBLIC_BASE"
  else
    LEARNHUB_OFFLINE=1
    make_offline_base
    BASE="$OFFLINE_BASE"
  fi
fi
say "base: $BASE"
# all three; and where the official postgres image cannot be had, learnhub/postgres for deploy/compose
if [ ${#targets[@]} -eq 0 ]; then
  targets=(grader hub singleuser)
  [ "$BASE" = "$OFFLINE_BASE" ] && targets+=(postgres)
fi

wheels() {  # wheels REQUIREMENT...: fill the wheelhouse for an offline build
  [ -n "${LEARNHUB_OFFLINE:-}" ] || return 0
  local t0; t0=$(stamp)
  "$PY" -m pip wheel -q --wheel-dir "$BUILD/wheels" "$@" >"$BUILD/pip-wheel.log" 2>&1 \
    || { tail -30 "$BUILD/pip-wheel.log" >&2; exit 1; }
  "$PY" -m pip wheel -q --no-deps --wheel-dir "$BUILD/wheels" -r images/offline-wheels.txt >>"$BUILD/pip-wheel.log" 2>&1 \
    || { tail -30 "$BUILD/pip-wheel.log" >&2; exit 1; }
  say "wheelhouse for $* in $(( $(stamp) - t0 )) s"
}

WHEEL_BUILT=
learnhub_wheel() {
  # learnhub itself (images/.build/learnhub), with the JupyterLab extension (setup.py builds it when
  # needed), and the list of its dependencies (images/.build/requirements.txt, from the wheel's
  # metadata), which the images install first, in a layer of their own. Once per run.
  [ -z "$WHEEL_BUILT" ] || return 0
  WHEEL_BUILT=1
  local t0; t0=$(stamp)
  rm -rf "$BUILD/learnhub"; mkdir -p "$BUILD/learnhub"
  "$PY" -m pip wheel -q --no-deps --wheel-dir "$BUILD/learnhub" . >"$BUILD/pip-learnhub.log" 2>&1 \
    || { tail -30 "$BUILD/pip-learnhub.log" >&2; exit 1; }
  "$PY" - "$BUILD/learnhub"/learnhub-*.whl >"$BUILD/requirements.txt" <<'PYEOF'
import sys, zipfile
from email.parser import Parser
with zipfile.ZipFile(sys.argv[1]) as whl:
    meta = next(n for n in whl.namelist() if n.endswith(".dist-info/METADATA"))
    for req in Parser().parsestr(whl.read(meta).decode()).get_all("Requires-Dist") or []:
        if "extra ==" not in req:
            print(req)
PYEOF
  say "learnhub's wheel in $(( $(stamp) - t0 )) s"
  wheels -r "$BUILD/requirements.txt"
}

chp() {
  [ -d "$BUILD/chp/node_modules/configurable-http-proxy" ] && return 0
  say "configurable-http-proxy with the host's npm"
  npm install --silent --no-audit --no-fund --prefix "$BUILD/chp" configurable-http-proxy@^4.6 >/dev/null
}

build() {  # build NAME [DOCKERFILE-DIR TARGET]
  local name="$1" dir="${2:-$1}" target="${3:-}" t0; t0=$(stamp)
  docker build -q --network host ${target:+--target "$target"} \
    --build-arg "BASE_IMAGE=$BASE" --build-arg "VERSION=$VERSION" --build-arg "REVISION=$REVISION" \
    --build-arg "OFFLINE=${LEARNHUB_OFFLINE:-}" \
    -f "images/$dir/Dockerfile" -t "learnhub/$name:$TAG" -t "learnhub/$name:latest" . >/dev/null
  say "learnhub/$name:$TAG built in $(( $(stamp) - t0 )) s"
}

for t in "${targets[@]}"; do
  case "$t" in
    grader) wheels -r images/grader/requirements.txt ;;
    hub|singleuser) learnhub_wheel ;;
  esac
  if [ "$t" = hub ]; then
    chp
    # learnhub's courses/ (the demo course), which the hub image copies in (the context is images/)
    rm -rf "$BUILD/courses" && cp -r courses "$BUILD/courses"
    build hub hub hub
    build worker hub worker   # the hub image with the Docker client: grading workers
  else
    build "$t"
  fi
done
