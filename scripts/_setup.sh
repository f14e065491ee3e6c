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
# The browser found last time is used again while it is there (looking costs seconds: it may
# try `playwright install`); a run finds its browser itself, whatever is recorded here.
found=".venv/.coupa_async-browser"
if [ -f "$found" ] && [ -x "$(cat "$found")" ]; then
    echo "setup: browser $(cat "$found")" >&2
else
    echo "setup: looking for a browser" >&2
    answer=$(.venv/bin/python -m coupa_async browser --install)
    echo "$answer" >&2
    path=$(printf '%s\n' "$answer" | sed -n 's/^browser: \(\/.*\) (.*)$/\1/p' | head -n 1)
    if [ -n "$path" ] && [ -x "$path" ]; then echo "$path" >"$found"; else rm -f "$found"; fi
fi
# Fonts for the PDFs of saved e-mails: one covering Latin, Greek and Cyrillic, and one covering
# Chinese, Japanese and Korean. Installed as root on Debian/Ubuntu when missing; elsewhere the
# machine's own fonts serve (see the README, "E-mails").
cjk_font() {
    local font
    for font in /usr/share/fonts/truetype/droid/DroidSansFallback*.ttf \
        /usr/share/fonts/opentype/noto/NotoSansCJK*.tt?; do
        [ -e "$font" ] && return 0
    done
    return 1
}
if [ ! -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || ! cjk_font; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "setup: installing fonts for the e-mails' PDFs (fonts-dejavu-core, fonts-droid-fallback)" >&2
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-dejavu-core fonts-droid-fallback >/dev/null 2>&1 ||
            { apt-get update -q >/dev/null 2>&1 &&
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q fonts-dejavu-core fonts-droid-fallback >/dev/null 2>&1; } ||
            echo "setup: could not install the fonts; e-mails in Chinese, Japanese or Korean will show '?' in their PDFs" >&2
    fi
fi
