"""What makes a page heavy, like a real SaaS page: a big stylesheet with a web font, script
bundles that run at load, images, a notifications poll, a refused analytics host and a
long-poll. Everything is generated from the seed once per simulator and kept in memory.

The bundles do real work at load (tens of milliseconds of CPU) but never touch the page's
content: they only fill `window.__coupaModules`.
"""

from __future__ import annotations

import hashlib
import json
import random
import struct
import zlib
from dataclasses import dataclass
from functools import cached_property

ANALYTICS_ORIGIN = "http://127.0.0.2:9"  # port 9 on 127.0.0.2: refused at once
NOTIFICATIONS_PATH = "/api/notifications/unread_count"
UPDATES_PATH = "/api/session/updates"
NOTIFICATIONS_EVERY_MS = 2000
CACHE_CONTROL = "public, max-age=31536000"
CSS_SIZE = 300 * 1024
FONT_SIZE = 60 * 1024
BUNDLE_SIZE_RANGE = (350 * 1024, 480 * 1024)
BUNDLES = ("vendor", "app", "chunk")
BOOT_ITERATIONS = 150_000  # calls per bundle at load: some ms of CPU each
IMAGES = (("logo", 120, 32), ("avatar", 48, 48), ("sprite", 256, 64))


@dataclass(frozen=True)
class Asset:
    path: str
    content_type: str
    body: bytes


@dataclass(frozen=True)
class AssetRefs:
    """The URLs a heavy page refers to."""

    stylesheet: str
    font: str
    scripts: tuple[str, ...]  # vendor, app, chunk
    images: tuple[tuple[str, int, int], ...]  # (path, width, height)

    def logo_html(self) -> str:
        path, width, height = self.images[0]
        return f'<img src="{path}" alt="coupa" width="{width}" height="{height}">'


def heavy_head(refs: AssetRefs) -> str:
    """What a heavy page adds to its <head>."""
    vendor, app, chunk = refs.scripts
    return (
        f'<link rel="stylesheet" href="{refs.stylesheet}">\n'
        f'<link rel="preload" as="font" type="font/woff2" href="{refs.font}" crossorigin>\n'
        f'<script src="{vendor}"></script>\n'
        f'<script src="{app}" defer></script>\n'
        f'<script src="{chunk}" defer></script>\n'
        f'<script async src="{ANALYTICS_ORIGIN}/analytics.js"></script>\n'
    )


# The notifications poll, the analytics beacon after load and the long-poll, re-issued each
# time it answers. Failures are swallowed, as a real page's are.
_TAIL_SCRIPT = """
(function () {
  'use strict';
  function unread() {
    fetch(%(notifications)s, {credentials: 'same-origin'})
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (d) {
        var badge = document.getElementById('notification-count');
        if (badge && d) { badge.textContent = String(d.count); }
      })
      .catch(function () {});
  }
  unread();
  setInterval(unread, %(every)d);
  var cursor = 0;
  function updates() {
    fetch(%(updates)s + '?cursor=' + cursor, {credentials: 'same-origin'})
      .then(function (r) { cursor += 1; setTimeout(updates, r.ok ? 0 : 2000); })
      .catch(function () { setTimeout(updates, 5000); });
  }
  updates();
  window.addEventListener('load', function () {
    var data = JSON.stringify({page: location.pathname, t: Date.now()});
    try { navigator.sendBeacon(%(collect)s, data); } catch (e) { /* blocked */ }
    fetch(%(collect)s, {method: 'POST', mode: 'no-cors', body: data}).catch(function () {});
  });
})();
""".strip()


def heavy_tail(refs: AssetRefs) -> str:
    """What a heavy page adds at the end of its <body>: images and the polling script."""
    images = "".join(
        f'<img class="decor" src="{path}" alt="" width="{w}" height="{h}" loading="eager">'
        for path, w, h in refs.images[1:]
    )
    script = _TAIL_SCRIPT % {
        "notifications": json.dumps(NOTIFICATIONS_PATH),
        "updates": json.dumps(UPDATES_PATH),
        "collect": json.dumps(f"{ANALYTICS_ORIGIN}/collect"),
        "every": NOTIFICATIONS_EVERY_MS,
    }
    decor = f'<div class="footer-decor" aria-hidden="true">{images}</div>'
    return f"{decor}\n<script>\n{script}\n</script>\n"


class HeavyAssets:
    """All assets of one simulator, generated on first use."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    @cached_property
    def _built(self) -> tuple[AssetRefs, dict[str, Asset]]:
        rng = random.Random(f"coupa-sim-assets:{self.seed}")
        assets: list[Asset] = []
        font = _hashed("/assets/fonts/coupa-sans-{}.woff2", "font/woff2", _font(rng))
        assets.append(font)
        assets.append(_hashed("/assets/application-{}.css", "text/css", _css(rng, font.path)))
        for name in BUNDLES:
            size = rng.randint(*BUNDLE_SIZE_RANGE)
            body = _bundle(rng, name, size)
            assets.append(_hashed(f"/assets/{name}-{{}}.js", "application/javascript", body))
        images = []
        for name, width, height in IMAGES:
            image = _hashed(f"/assets/img/{name}-{{}}.png", "image/png", _png(rng, width, height))
            assets.append(image)
            images.append((image.path, width, height))
        refs = AssetRefs(
            stylesheet=assets[1].path,
            font=font.path,
            scripts=tuple(a.path for a in assets[2:5]),
            images=tuple(images),
        )
        return refs, {a.path: a for a in assets}

    @property
    def refs(self) -> AssetRefs:
        return self._built[0]

    def find(self, path: str) -> Asset | None:
        return self._built[1].get(path)

    @property
    def all(self) -> list[Asset]:
        return list(self._built[1].values())


def _hashed(pattern: str, content_type: str, body: bytes) -> Asset:
    digest = hashlib.sha256(body).hexdigest()[:20]
    return Asset(pattern.format(digest), content_type, body)


def _font(rng: random.Random) -> bytes:
    """Bytes with a WOFF2 signature (not a usable font: a browser falls back)."""
    return b"wOF2" + rng.randbytes(FONT_SIZE - 4)


_PROPS = ("margin", "padding", "border-width", "gap", "min-height", "letter-spacing")
_COLORS = ("color", "background-color", "border-color", "outline-color")


def _css(rng: random.Random, font_path: str) -> bytes:
    """A big stylesheet: a font face, then many rules for classes no element of the page has."""
    parts = [
        '@font-face{font-family:"Coupa Sans";font-display:swap;'
        f'src:url({font_path}) format("woff2")}}\n'
        'body{font-family:"Coupa Sans",Arial,Helvetica,sans-serif}\n'
    ]
    size = len(parts[0])
    i = 0
    while size < CSS_SIZE:
        rule = (
            f".cx-{i:05d} .cx-el-{rng.randint(0, 999)},.cx-{i:05d}:hover{{"
            f"{rng.choice(_PROPS)}:{rng.randint(0, 24)}px;"
            f"{rng.choice(_COLORS)}:#{rng.randrange(0x1000000):06x};"
            f"transition:opacity {rng.randint(50, 400)}ms ease-in-out}}\n"
        )
        parts.append(rule)
        size += len(rule)
        i += 1
    return "".join(parts).encode()[:CSS_SIZE].rsplit(b"\n", 1)[0] + b"\n"


_WORDS = (
    "order", "supplier", "invoice", "approval", "budget", "receipt", "catalog", "contract",
    "shipment", "expense", "payment", "requisition", "currency", "address", "account",
)  # fmt: skip


def _function(rng: random.Random, name: str, k: int) -> str:
    a, b, c = rng.randint(3, 97), rng.randint(1, 9999), rng.randint(1000, 99991)
    word = rng.choice(_WORDS)
    return (
        f"function {name}_{k}(x){{var a=x|0,s='{word}-{k}';"
        f"for(var i=0;i<4;i++){{a=(a*{a}+{b}+s.charCodeAt(i%s.length))%{c};}}"
        f"return a;}}\n"
    )


def _bundle(rng: random.Random, name: str, size: int) -> bytes:
    """A script bundle of about `size` bytes: many functions and a table of messages, then a
    boot that calls them all many times and sorts and serializes what it got."""
    head = f"/*! {name} bundle (coupa simulator) */\n(function(root){{'use strict';\n"
    parts = [head]
    total = len(head)
    k = 0
    while total < size * 0.8:
        fn = _function(rng, name, k)
        parts.append(fn)
        total += len(fn)
        k += 1
    messages: dict[str, str] = {}
    while total < size - 1200:
        key = f"{rng.choice(_WORDS)}.{rng.choice(_WORDS)}.{len(messages)}"
        text = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 12)))
        messages[key] = text
        total += len(key) + len(text) + 6
    fns = ",".join(f"{name}_{i}" for i in range(k))
    boot = (
        f"var messages={json.dumps(messages, separators=(',', ':'))};\n"
        f"var fns=[{fns}];\n"
        "var registry=root.__coupaModules||(root.__coupaModules={});\n"
        "var acc=7,keys=[];\n"
        f"for(var n=0;n<{BOOT_ITERATIONS};n++){{acc=fns[n%fns.length](acc+n);"
        "if(n%61===0){keys.push((acc>>>0).toString(36));}}\n"
        "keys.sort();\n"
        "var names=Object.keys(messages).sort();\n"
        f"registry[{json.dumps(name)}]=JSON.parse(JSON.stringify("
        "{acc:acc,keys:keys.length,messages:names.length,first:names[0]}));\n"
        "})(window);\n"
    )
    parts.append(boot)
    return "".join(parts).encode()


def _png(rng: random.Random, width: int, height: int) -> bytes:
    """A real RGB PNG: a seeded gradient."""
    r0, g0, b0 = rng.randrange(256), rng.randrange(256), rng.randrange(256)
    rows = b"".join(
        b"\x00"
        + bytes(
            v
            for x in range(width)
            for v in ((r0 + x) % 256, (g0 + y * 3) % 256, (b0 + x + y) % 256)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
