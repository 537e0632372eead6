#!/usr/bin/env bash
# Install learnhub and what it needs on this machine, then run it or its tests.
#
#   ./bootstrap.sh up [learnhub up options]   install, then start the platform (demo course included)
#   ./bootstrap.sh test [pytest options]      install with the test extra, then run the tests (jest, then pytest)
#   ./bootstrap.sh install                    install only
#
# Installs: bubblewrap, and for tests Chromium (Debian/Ubuntu, apt-get, as root or with sudo), the hub's
# proxy configurable-http-proxy (npm), and learnhub in a virtual environment .venv (or in the
# active one, if any; or, with LEARNHUB_SYSTEM_PYTHON=1, in python3 itself). Needs Python >= 3.11
# and Node.js with npm.
set -euo pipefail
cd "$(dirname "$0")"

action="${1:-up}"
shift || true

say() { printf 'bootstrap: %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

apt_install() {  # apt_install PACKAGE WHY
  if command -v apt-get >/dev/null && as_root true 2>/dev/null; then
    say "installing $1 ($2)"
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$1" >/dev/null
  else
    say "$1 is missing ($2): install it with your package manager"; exit 1
  fi
}

install_system() {
  command -v bwrap >/dev/null || apt_install bubblewrap "the sandbox for learners' servers and grading"
  # The network fence and the size-capped homes of learners' servers (docs/containment.md).
  command -v ip >/dev/null || apt_install iproute2 "network namespaces for learners' servers"
  command -v nft >/dev/null || apt_install nftables "the network fence of learners' servers"
  command -v mkfs.ext4 >/dev/null || apt_install e2fsprogs "size-capped home folders"
  if ! command -v configurable-http-proxy >/dev/null; then
    command -v npm >/dev/null || { say "Node.js with npm is needed for the hub's proxy"; exit 1; }
    say "installing configurable-http-proxy with npm"
    if [ "$(id -u)" = 0 ]; then
      npm install -g --silent configurable-http-proxy
    else
      npm install -g --silent --prefix "$HOME/.local" configurable-http-proxy
      export PATH="$HOME/.local/bin:$PATH"
    fi
  fi
}

install_browser() {
  # The browser tests drive Debian's Chromium with Playwright; Playwright never downloads its own.
  command -v chromium >/dev/null || apt_install chromium "the browser for the end-to-end tests"
}

frontend_tests() {
  # The JupyterLab extension's own unit tests (jest), once per run of the suite.
  if [ -z "${LEARNHUB_SKIP_LABEXTENSION:-}" ] && [ -z "${LEARNHUB_SKIP_FRONTEND_TESTS:-}" ]; then
    say "JupyterLab extension unit tests (jest)"
    (cd extensions/labextension && { [ -d node_modules ] || npm ci --silent; } && npm test --silent)
  fi
}

python_env() {
  if [ -n "${LEARNHUB_SYSTEM_PYTHON:-}" ]; then
    # Install into this machine's own interpreter (CI machines, containers).
    PY="$(command -v "${PYTHON:-python3}")"
  elif [ -n "${VIRTUAL_ENV:-}" ]; then
    PY="$VIRTUAL_ENV/bin/python"
  else
    if [ ! -x .venv/bin/python ]; then
      base="${PYTHON:-python3}"
      "$base" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || { say "Python >= 3.11 is needed ($base is $("$base" --version 2>&1))"; exit 1; }
      say "creating the virtual environment .venv"
      "$base" -m venv .venv
    fi
    PY="$PWD/.venv/bin/python"
  fi
  export PATH="$(dirname "$PY"):$PATH"
}

install_python() {
  local extra="$1"
  local stamp=".venv-installed$extra"
  # Reinstall only when the project's metadata changed since the last install, or when the installed
  # learnhub is not this checkout's (an editable install of another clone).
  # (An editable install holds a copy of the built JupyterLab extension: rebuild when its sources change.)
  if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ setup.py -nt "$stamp" ] \
     || [ -n "$(find extensions/labextension/src extensions/labextension/style \
                     extensions/labextension/package.json -newer "$stamp" 2>/dev/null | head -n 1)" ] \
     || ! (cd / && "$PY" -c 'import learnhub, sys; sys.exit(not learnhub.__file__.startswith(sys.argv[1]))' \
             "$OLDPWD/") 2>/dev/null; then
    say "installing learnhub$extra (pip install -e)"
    "$PY" -m pip install -q --upgrade pip >/dev/null
    "$PY" -m pip install -q -e ".$extra"
    touch "$stamp"
  fi
}

case "$action" in
  up)
    install_system; python_env; install_python ""
    exec "$PY" -m learnhub up "$@"
    ;;
  test)
    install_system; install_browser; python_env; install_python "[test]"
    frontend_tests
    exec "$PY" -m pytest "$@"
    ;;
  install)
    install_system; install_browser; python_env; install_python "[test]"
    ;;
  *)
    say "unknown action '$action': use up, test or install"; exit 2
    ;;
esac
