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
    if [ "${#missing[@]}" -gt 0 ]; then apt_install "${missing[@]}"; fi
}

ensure_browser() {
    # The console's browser tests (tests/browser) drive Debian's chromium.
    command -v chromium >/dev/null || apt_install chromium
}

ensure_citus() {
    # The Citus tier's extension. Built from ../shared/vendor/citus (its README's steps)
    # when that folder is there; otherwise the tier skips, except in CI where it must run.
    local libdir vendor="../shared/vendor/citus" src
    libdir="$(pg_config --pkglibdir 2>/dev/null || true)"
    if [ -n "$libdir" ] && [ -e "$libdir/citus.so" ]; then return 0; fi
    if [ ! -d "$vendor" ]; then
        echo "note: Citus is not installed, so the Citus tests skip. Install Citus Data's" \
            "packages or use its images (https://docs.citusdata.com/en/stable/installation/)." >&2
        if [ "${CI:-}" = "true" ]; then
            echo "error: CI=true needs the Citus tier to run: install Citus" >&2
            return 1
        fi
        return 0
    fi
    echo "==> building Citus from $vendor (about a minute)" >&2
    apt_install postgresql-server-dev-15 liblz4-dev libzstd-dev libcurl4-openssl-dev \
        libkrb5-dev patch make gcc
    vendor="$(cd "$vendor" && pwd)"
    src="$(mktemp -d /tmp/citus-src.XXXXXX)"
    tar xzf "$vendor/citus-13.2.2.tar.gz" -C "$src"
    (cd "$src" && patch -s -p1 <"$vendor/pg15-have-createdb-privilege.patch" &&
        ./configure -q >/dev/null && make -s -j"$(nproc)" >/dev/null && as_root make -s install >/dev/null)
    rm -rf "$src"
}
