# Shared by scripts/demo and scripts/test: a project virtualenv and system packages.
# Sourced, not run.

VENV="${VOICECDR_VENV:-.venv}"

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "error: need root (or sudo) to run: $*" >&2; return 1; fi
}

apt_install() {
    echo "==> installing Debian packages: $*" >&2
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq "$@" >/dev/null
}

ensure_venv() {
    local extras="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        if ! python3 -m venv "$VENV" 2>/dev/null; then
            rm -rf "$VENV"
            apt_install python3-venv
            python3 -m venv "$VENV"
        fi
    fi
    echo "==> installing voicecdr$extras into $VENV" >&2
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check -e ".$extras"
}

ensure_postgres() {
    if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        apt_install postgresql
    fi
}

ensure_tools() {
    # The docs' commands use them, and tests/acceptance/test_docs_commands.py runs those.
    local missing=()
    command -v curl >/dev/null || missing+=(curl)
    command -v sqlite3 >/dev/null || missing+=(sqlite3)
    # The console's browser tests (tests/browser) drive Debian's chromium.
    command -v chromium >/dev/null || missing+=(chromium)
    if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}
