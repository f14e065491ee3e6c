# Shared by scripts/demo and scripts/test: a virtual environment with the package, and a browser.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

pick_python() {
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return 0
        fi
    done
    echo "coupa_async needs Python 3.11 or newer; none found (set PYTHON=/path/to/python3.11)." >&2
    return 1
}

extra="${1:-}"
if [ ! -x .venv/bin/python ]; then
    python=$(pick_python)
    echo "setup: creating .venv with $python" >&2
    "$python" -m venv .venv
fi
stamp=".venv/.coupa_async-installed${extra:+-$extra}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    echo "setup: installing coupa_async${extra:+[$extra]} into .venv" >&2
    .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${extra:+[$extra]}"
    touch "$stamp"
fi
echo "setup: looking for a browser" >&2
.venv/bin/python -m coupa_async browser --install >&2
