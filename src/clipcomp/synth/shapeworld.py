"""A richer shape world for the miniature paper experiments: 12+ shape classes drawn as natural-looking images
and in four rendition domains whose image statistics differ strongly, with varied captions.

Natural images: a dark *or* light background with low- and high-frequency texture; the shape's fill contrast is
random, down to a fill close to the background, which then keeps a one-pixel rim of the other luminance so the
contour still carries the class; random size, position and rotation; 0–2 distractor blobs. Captions come from
several templates with colour, size and background words, so a corpus holds thousands of distinct strings.

Rendition domains (the same shape classes):
  clipart   flat saturated fill, thick black outline, plain pastel background
  painting  textured fill and textured background in a painter's palette, softened
  sketch    a pencil outline with hatching inside, grey on white paper
  doodle    the shape's corners as dots, joined by a few random strokes (not the whole outline), on white — the
            quickdraw analogue, deliberately unlike the sketch

Every image is a function of (seed, domain, index) alone, so any slice can be regenerated anywhere and shards
are byte-identical whatever the worker count. `generate(...)` renders in memory (~1,000 images/s per core at
32 px); `write_arrays(...)` writes the memory-mapped training layout (`images.npy` + `manifest.parquet`).
"""

from __future__ import annotations

import math
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from clipcomp.errors import ClipcompError

DOMAINS = ("natural", "clipart", "painting", "sketch", "doodle")
RENDITIONS = DOMAINS[1:]
# Styles outside the five domains (never in a default world): "borderline" — a light, faintly textured photo whose
# shape is washed out and carries a pencil-grey contour, between natural and sketch (LAION's ambiguous items).
EXTRA_STYLES = ("borderline",)

# Named colours for fills and captions (RGB); a fill is its colour with a little jitter.
COLOURS = {"red": (205, 40, 40), "green": (40, 165, 60), "blue": (45, 80, 215), "yellow": (235, 210, 40),
           "orange": (240, 135, 30), "purple": (140, 60, 190), "pink": (240, 120, 180), "brown": (130, 85, 45),
           "white": (240, 240, 240), "black": (20, 20, 20), "grey": (128, 128, 128), "teal": (30, 150, 150)}
SIZES = {"small": (0.38, 0.5), "medium": (0.5, 0.64), "large": (0.64, 0.8)}  # extent / image side


def _regular(n: int, rot: float = -math.pi / 2, r: float = 1.0) -> list[tuple[float, float]]:
    return [(r * math.cos(rot + 2 * math.pi * i / n), r * math.sin(rot + 2 * math.pi * i / n)) for i in range(n)]


def _arc(cx: float, cy: float, r: float, a0: float, a1: float, n: int) -> list[tuple[float, float]]:
    return [(cx + r * math.cos(a0 + (a1 - a0) * i / (n - 1)), cy + r * math.sin(a0 + (a1 - a0) * i / (n - 1)))
            for i in range(n)]


def _heart() -> list[tuple[float, float]]:
    pts = []
    for i in range(28):
        t = 2 * math.pi * i / 28
        x = 16 * math.sin(t) ** 3
        y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
        pts.append((x / 17, y / 17 + 0.1))
    return pts


# Each shape: (outer polygon in [-1, 1]², holes, corner indices for the doodle). Rotation is limited (±20°), so
# a diamond stays a diamond and not a rotated square.
SHAPES: dict[str, tuple[list[tuple[float, float]], list[list[tuple[float, float]]]]] = {
    "circle": (_regular(32), []),
    "triangle": (_regular(3, r=1.05), []),
    "square": ([(-0.85, -0.85), (0.85, -0.85), (0.85, 0.85), (-0.85, 0.85)], []),
    "diamond": ([(0, -1), (0.75, 0), (0, 1), (-0.75, 0)], []),
    "star": ([p for i in range(10) for p in [(math.cos(-math.pi / 2 + math.pi * i / 5) * (1 if i % 2 == 0 else 0.42),
                                              math.sin(-math.pi / 2 + math.pi * i / 5) * (1 if i % 2 == 0 else 0.42))]],
             []),
    "cross": ([(-0.3, -1), (0.3, -1), (0.3, -0.3), (1, -0.3), (1, 0.3), (0.3, 0.3), (0.3, 1), (-0.3, 1), (-0.3, 0.3),
               (-1, 0.3), (-1, -0.3), (-0.3, -0.3)], []),
    "arrow": ([(-1, -0.3), (0.15, -0.3), (0.15, -0.8), (1, 0), (0.15, 0.8), (0.15, 0.3), (-1, 0.3)], []),
    "ring": (_regular(32), [_regular(24, r=0.55)]),
    "semicircle": (_arc(0, 0.35, 1.0, math.pi, 2 * math.pi, 17), []),
    "crescent": (_regular(32), [[(0.45 + 0.85 * x, 0.85 * y) for x, y in _regular(32)]]),
    "heart": (_heart(), []),
    "hexagon": (_regular(6, rot=0), []),
    "pentagon": (_regular(5), []),
    "trapezoid": ([(-0.5, -0.6), (0.5, -0.6), (1, 0.6), (-1, 0.6)], []),
}


def _crescent_outline() -> list[tuple[float, float]]:
    outer = [p for p in _regular(32) if math.hypot(p[0] - 0.45, p[1]) > 0.85]
    inner = [(0.45 + 0.85 * x, 0.85 * y) for x, y in _regular(32)]
    inner = [p for p in inner if math.hypot(*p) < 1.0]
    return outer + inner[::-1]


# The points a doodle marks (corners; for curves a handful along the outline; holes and cut-outs included).
DOODLE_POINTS = {name: outer[:: max(1, len(outer) // 8)] + [q for h in holes for q in h[:: max(1, len(h) // 6)]]
                 for name, (outer, holes) in SHAPES.items()}
DOODLE_POINTS["crescent"] = _crescent_outline()[::3]

DEFAULT_CLASSES = ("circle", "triangle", "square", "diamond", "star", "cross", "arrow", "ring", "semicircle",
                   "crescent", "heart", "hexagon")

NATURAL_TEMPLATES = ("a {colour} {shape}", "a photo of a {size} {shape}", "a {size} {colour} {shape} on a {bg} "
                     "background", "a picture of a {shape}", "a {shape} in {colour}", "a close-up of a {colour} "
                     "{shape}", "a {shape} on a {bg} textured surface", "an image of a {size} {shape}",
                     "a {colour} {shape} next to some blobs", "there is a {shape} here")
RENDITION_TEMPLATES = ("a {domain} of a {shape}", "a {domain} of a {colour} {shape}", "a {size} {shape}, {domain}",
                       "{domain} showing a {shape}")
DOMAIN_WORDS = {"natural": "photo", "clipart": "clipart", "painting": "painting", "sketch": "sketch",
                "doodle": "doodle", "borderline": "photo"}
PASTELS = ((250, 235, 215), (225, 240, 250), (235, 250, 225), (250, 225, 235), (245, 245, 220))


def check(classes: list[str] | tuple[str, ...], domains: list[str] | tuple[str, ...] = ("natural",)) -> None:
    """One-line errors for unknown classes/domains or fewer than 2 classes."""
    bad = [c for c in classes if c not in SHAPES]
    if bad:
        raise ClipcompError(f"unknown shape class(es) {', '.join(map(repr, bad))} (available: {', '.join(SHAPES)})")
    if len(set(classes)) < 2:
        raise ClipcompError(f"a world needs at least 2 distinct classes (got {list(classes)})")
    badd = [d for d in domains if d not in DOMAINS + EXTRA_STYLES]
    if badd:
        raise ClipcompError(f"unknown domain(s) {', '.join(map(repr, badd))} (available: "
                            f"{', '.join(DOMAINS + EXTRA_STYLES)})")


def _place(rng: np.random.Generator, res: int) -> tuple[str, float, float, float, float]:
    size = ("small", "medium", "large")[int(rng.integers(3))]
    lo, hi = SIZES[size]
    extent = rng.uniform(lo, hi) * res
    half = extent / 2
    cx = rng.uniform(half, res - half)
    cy = rng.uniform(half, res - half)
    angle = rng.uniform(-20, 20) * math.pi / 180
    return size, extent, cx, cy, angle


def _transform(points, cx: float, cy: float, half: float, angle: float, scale: int) -> list[tuple[float, float]]:
    c, s = math.cos(angle), math.sin(angle)
    return [((cx + half * (x * c - y * s)) * scale, (cy + half * (x * s + y * c)) * scale) for x, y in points]


def shape_mask(shape: str, cx: float, cy: float, extent: float, angle: float, res: int, ss: int = 2) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a shape (supersampled `ss`×)."""
    outer, holes = SHAPES[shape]
    img = Image.new("L", (res * ss, res * ss), 0)
    d = ImageDraw.Draw(img)
    d.polygon(_transform(outer, cx, cy, extent / 2, angle, ss), fill=255)
    for h in holes:
        d.polygon(_transform(h, cx, cy, extent / 2, angle, ss), fill=0)
    if ss > 1:
        img = img.resize((res, res), Image.BOX)
    return np.asarray(img, np.float32) / 255.0


def _noise(rng: np.random.Generator, res: int, cells: int) -> np.ndarray:
    grid = rng.random((cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray((grid * 255).astype(np.uint8)).resize((res, res), Image.BILINEAR),
                      np.float32) / 255.0


def _edge(mask: np.ndarray, width: int = 1) -> np.ndarray:
    m = Image.fromarray((mask > 0.5).astype(np.uint8) * 255)
    grown = np.asarray(m.filter(ImageFilter.MaxFilter(2 * width + 1))) > 127
    shrunk = np.asarray(m.filter(ImageFilter.MinFilter(2 * width + 1))) > 127
    return (grown & ~shrunk).astype(np.float32)


def _blend(img: np.ndarray, alpha: np.ndarray, rgb) -> None:
    a = alpha[..., None]
    img *= 1 - a
    img += a * np.asarray(rgb, np.float32)


def _natural(shape: str, rng: np.random.Generator, res: int) -> tuple[np.ndarray, dict]:
    dark = bool(rng.random() < 0.5)
    base = rng.uniform(15, 70) if dark else rng.uniform(170, 240)
    tint = rng.uniform(-20, 20, 3)
    img = (base + tint + rng.uniform(15, 45) * (_noise(rng, res, int(rng.integers(3, 7))) - 0.5)[..., None]
           ).astype(np.float32) * np.ones((1, 1, 3), np.float32)
    for _ in range(int(rng.integers(0, 3))):  # distractor blobs: soft, small, away from nothing in particular
        bx, by = rng.uniform(0, res, 2)
        r = rng.uniform(0.06, 0.14) * res
        yy, xx = np.mgrid[0:res, 0:res]
        blob = np.clip(1.5 - np.hypot((xx - bx) / r, (yy - by) / (r * rng.uniform(0.6, 1.4))), 0, 1)
        _blend(img, blob.astype(np.float32) * 0.8, rng.uniform(0, 255, 3))
    size, extent, cx, cy, angle = _place(rng, res)
    mask = shape_mask(shape, cx, cy, extent, angle, res)
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    rgb = np.asarray(COLOURS[colour], np.float32) + rng.normal(0, 10, 3)
    if rng.random() < 0.25:  # a fill close to the background: the rim of the other luminance keeps the contour
        rgb = img[int(cy) % res, int(cx) % res] + rng.normal(0, 8, 3)
        rim = (235.0 if dark else 25.0) + rng.normal(0, 10, 3)
        _blend(img, mask, rgb)
        _blend(img, _edge(mask) * 0.9, rim)
    else:
        _blend(img, mask * rng.uniform(0.85, 1.0), rgb * (0.8 + 0.4 * _noise(rng, res, 5))[..., None][
            int(cy) % res, int(cx) % res])
    img += rng.normal(0, 5, img.shape).astype(np.float32)
    return img, {"colour": colour, "size": size, "bg": "dark" if dark else "light"}


def _clipart(shape, rng, res):
    img = np.ones((res, res, 3), np.float32) * np.asarray(PASTELS[int(rng.integers(len(PASTELS)))], np.float32)
    size, extent, cx, cy, angle = _place(rng, res)
    mask = shape_mask(shape, cx, cy, extent, angle, res)
    colour = [c for c in COLOURS if c not in ("white", "grey", "black")][int(rng.integers(9))]
    _blend(img, mask, COLOURS[colour])
    _blend(img, _edge(mask, max(1, res // 24)), (10, 10, 10))
    return img, {"colour": colour, "size": size, "bg": "light"}


def _painting(shape, rng, res):
    palette = np.asarray([(70, 90, 130), (150, 120, 70), (90, 120, 80), (140, 80, 90)], np.float32)
    bgc = palette[int(rng.integers(len(palette)))]
    img = bgc * (0.55 + 0.9 * _noise(rng, res, 4)[..., None]) * (0.85 + 0.3 * _noise(rng, res, 9)[..., None])
    size, extent, cx, cy, angle = _place(rng, res)
    mask = shape_mask(shape, cx, cy, extent, angle, res)
    colour = [c for c in COLOURS if c not in ("white", "black", "grey")][int(rng.integers(9))]
    tex = 0.5 + 0.8 * _noise(rng, res, 6)[..., None]
    fill = np.asarray(COLOURS[colour], np.float32) * tex
    img = img * (1 - mask[..., None]) + fill * mask[..., None]
    img = np.asarray(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(0.8)),
                     np.float32)
    return img, {"colour": colour, "size": size, "bg": "textured"}


def _sketch(shape, rng, res):
    img = np.full((res, res, 3), 246.0, np.float32) - rng.random((res, res, 1)).astype(np.float32) * 14
    size, extent, cx, cy, angle = _place(rng, res)
    mask = shape_mask(shape, cx + rng.normal(0, 0.4), cy + rng.normal(0, 0.4), extent, angle, res)
    grey = rng.uniform(60, 120)
    yy, xx = np.mgrid[0:res, 0:res]
    period = int(rng.integers(3, 5))
    hatch = (((xx + yy * rng.choice([1, -1])) % period) == 0).astype(np.float32) * (mask > 0.6) * 0.6
    _blend(img, np.maximum(_edge(mask) * (rng.random((res, res)) < 0.9), hatch), (grey, grey, grey))
    return img, {"colour": "grey", "size": size, "bg": "white"}


def _doodle(shape, rng, res):
    img = np.full((res, res, 3), 255.0, np.float32)
    size, extent, cx, cy, angle = _place(rng, res)
    pts = _transform(DOODLE_POINTS[shape], cx, cy, extent / 2, angle, 2)
    pts = [(x + rng.normal(0, 1.0), y + rng.normal(0, 1.0)) for x, y in pts]
    canvas = Image.new("L", (res * 2, res * 2), 0)
    d = ImageDraw.Draw(canvas)
    for x, y in pts:
        d.ellipse((x - 1.6, y - 1.6, x + 1.6, y + 1.6), fill=255)
    n = len(pts)
    for _ in range(int(rng.integers(2, 5))):  # a few strokes between neighbouring corners, not the whole outline
        i = int(rng.integers(n))
        d.line([pts[i], pts[(i + 1) % n]], fill=255, width=1)
    alpha = np.asarray(canvas.resize((res, res), Image.BOX), np.float32) / 255.0
    _blend(img, np.clip(alpha * 1.6, 0, 1), (15, 15, 15))
    return img, {"colour": "black", "size": size, "bg": "white"}


def _borderline(shape, rng, res):
    """Light paper-like background with faint texture, a washed-out fill and a grey contour of random strength:
    neither clearly a photo nor clearly a sketch, so similarity to the sketch domain is graded."""
    base = rng.uniform(205, 245)
    img = (base + rng.uniform(-8, 8, 3) + rng.uniform(4, 16) * (_noise(rng, res, int(rng.integers(3, 7))) - 0.5)[
        ..., None]).astype(np.float32) * np.ones((1, 1, 3), np.float32)
    size, extent, cx, cy, angle = _place(rng, res)
    mask = shape_mask(shape, cx, cy, extent, angle, res)
    colour = list(COLOURS)[int(rng.integers(len(COLOURS)))]
    _blend(img, mask * rng.uniform(0.15, 0.55), COLOURS[colour])
    grey = rng.uniform(60, 130)
    _blend(img, _edge(mask) * rng.uniform(0.35, 0.9), (grey, grey, grey))
    img += rng.normal(0, 3, img.shape).astype(np.float32)
    return img, {"colour": colour, "size": size, "bg": "light"}


RENDER = {"natural": _natural, "clipart": _clipart, "painting": _painting, "sketch": _sketch, "doodle": _doodle,
          "borderline": _borderline}


def render(shape: str, domain: str, rng: np.random.Generator, res: int = 32) -> tuple[np.ndarray, dict]:
    """One image (uint8 H×W×3) of `shape` in `domain`, and its attributes (colour, size, background)."""
    img, attrs = RENDER[domain](shape, rng, res)
    return np.clip(img, 0, 255).astype(np.uint8), attrs


def caption(shape: str, domain: str, attrs: dict, rng: np.random.Generator, domain_words: bool = True) -> str:
    """A caption from the domain's templates (natural: colour/size/background words; renditions: the domain word,
    unless `domain_words` is False — Kempf's "aligned captions")."""
    if domain in ("natural", "borderline") or not domain_words:
        t = NATURAL_TEMPLATES[int(rng.integers(len(NATURAL_TEMPLATES)))]
    else:
        t = RENDITION_TEMPLATES[int(rng.integers(len(RENDITION_TEMPLATES)))]
    return t.format(shape=shape, colour=attrs["colour"], size=attrs["size"], bg=attrs["bg"],
                    domain=DOMAIN_WORDS[domain])


def item_rng(seed: int, domain: str, index: int) -> np.random.Generator:
    code = DOMAINS.index(domain) if domain in DOMAINS else 100 + EXTRA_STYLES.index(domain)
    return np.random.default_rng([seed, code, index, 0x5A1])


def generate(classes: list[str] | tuple[str, ...], domain: str, n: int, seed: int = 0, start: int = 0,
             res: int = 32, domain_words: bool = True) -> tuple[np.ndarray, dict[str, list]]:
    """`n` images of `domain` (items start … start+n−1; the class of item i is i mod len(classes), so every
    slice is balanced), with rows {class, label, domain, caption, colour, size, bg, index}."""
    check(classes, (domain,))
    images = np.empty((n, res, res, 3), np.uint8)
    rows: dict[str, list] = {k: [] for k in ("class", "label", "domain", "caption", "colour", "size", "bg", "index")}
    for k in range(n):
        i = start + k
        label = i % len(classes)
        rng = item_rng(seed, domain, i)
        images[k], attrs = render(classes[label], domain, rng, res)
        rows["class"].append(classes[label])
        rows["label"].append(label)
        rows["domain"].append(domain)
        rows["caption"].append(caption(classes[label], domain, attrs, rng, domain_words))
        for key in ("colour", "size", "bg"):
            rows[key].append(attrs[key])
        rows["index"].append(i)
    return images, rows


def write_arrays(out: str, images: np.ndarray, rows: dict[str, list]) -> str:
    """The memory-mapped training layout: OUT/images.npy (uint8 N×H×W×3) + OUT/manifest.parquet (one row per
    image: caption, class, domain, …). `clipcomp train --data OUT` reads it (format `arrays`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clipcomp.io import atomic_output

    os.makedirs(out, exist_ok=True)
    with atomic_output(os.path.join(out, "images.npy")) as tmp:
        np.save(tmp, images)
    with atomic_output(os.path.join(out, "manifest.parquet")) as tmp:  # last: the directory counts as written
        pq.write_table(pa.table(rows), tmp)
    return out
