"""Render styles as domains (Kempf et al.'s natural vs clipart/sketch/painting/quickdraw, in miniature): the
same single shape drawn in very different image statistics. Each style is a function of (shape, colour, box,
rng) → uint8 H×W×3, seeded by the caller.

  natural    filled colour shape on a dark, slightly noisy background (the lab's look, photo-like noise)
  clipart    flat fill with a thick black outline on a light pastel background
  sketch     grey pencil outline only (no fill) on white, with a little jitter and paper grain
  painting   textured fill (low-frequency colour noise) on a textured background, softened
  quickdraw  one thin black stroke of the outline, jittered and slightly warped, on white, no colour
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from clipcomp.synth.render import draw_object
from clipcomp.synth.world import COLOUR_RGB, STYLES, Obj


def shape_mask(shape: str, box: tuple[int, int, int], resolution: int) -> np.ndarray:
    """Boolean mask of a filled shape at (x, y, extent)."""
    img = Image.new("RGB", (resolution, resolution), (0, 0, 0))
    draw_object(ImageDraw.Draw(img), Obj(shape, "white", "medium", *box))
    return np.asarray(img)[..., 0] > 127


def _edge(mask: np.ndarray, width: int) -> np.ndarray:
    m = Image.fromarray(mask.astype(np.uint8) * 255)
    grown = np.asarray(m.filter(ImageFilter.MaxFilter(2 * width + 1))) > 127
    shrunk = np.asarray(m.filter(ImageFilter.MinFilter(2 * width + 1))) > 127
    return grown & ~shrunk


def _smooth_noise(rng: np.random.Generator, res: int, cells: int) -> np.ndarray:
    """Low-frequency noise in [0, 1]: a coarse random grid upsampled bilinearly."""
    grid = rng.random((cells, cells)).astype(np.float32)
    img = Image.fromarray((grid * 255).astype(np.uint8)).resize((res, res), Image.BILINEAR)
    return np.asarray(img, np.float32) / 255.0


def _background(style: str, res: int, rng: np.random.Generator) -> np.ndarray:
    if style == "natural":
        return np.full((res, res, 3), 24.0, np.float32) + rng.normal(0, 6, (res, res, 1))
    if style == "clipart":
        return np.broadcast_to(200 + 55 * rng.random(3), (res, res, 3)).astype(np.float32).copy()
    if style == "sketch":
        return np.full((res, res, 3), 245.0, np.float32) - rng.random((res, res, 1)) * 12
    if style == "painting":
        return np.array([90, 110, 140], np.float32) * (0.6 + 0.8 * _smooth_noise(rng, res, 4)[..., None])
    return np.full((res, res, 3), 255.0, np.float32)  # quickdraw


def _paint(img: np.ndarray, style: str, shape: str, colour: str, box: tuple[int, int, int], res: int,
           rng: np.random.Generator) -> None:
    rgb = np.array(COLOUR_RGB[colour], np.float32)
    if style == "quickdraw":
        x, y, e = box
        wobble = max(1, e // 10)
        dx, dy = (int(v) for v in rng.integers(-wobble, wobble + 1, 2))
        warped = shape_mask(shape, (x + dx, y + dy, max(5, int(e * rng.uniform(0.85, 1.15)))), res)
        img[_edge(warped, 1) & warped] = 0  # a thin stroke on the inside of the outline
        return
    mask = shape_mask(shape, box, res)
    if style == "natural":
        img[mask] = rgb * rng.uniform(0.85, 1.0)
    elif style == "clipart":
        img[mask] = rgb
        img[_edge(mask, max(1, res // 32))] = 0
    elif style == "sketch":
        edge = _edge(mask, 1) & (rng.random((res, res)) < 0.85)
        img[edge] = 90 + rng.normal(0, 15, (int(edge.sum()), 1))
    else:  # painting
        tex = _smooth_noise(rng, res, 6)[..., None]
        img[mask] = (rgb * (0.55 + 0.6 * tex))[mask]


def render_scene_styled(objects: list[tuple[str, str, tuple[int, int, int]]], resolution: int, style: str,
                        rng: np.random.Generator) -> np.ndarray:
    """Objects (shape, colour, (x, y, extent)) drawn in `style` on that style's background → uint8 H×W×3."""
    if style not in STYLES:
        raise ValueError(f"unknown style {style!r} (expected one of {', '.join(STYLES)})")
    img = _background(style, resolution, rng)
    for shape, colour, box in objects:
        _paint(img, style, shape, colour, box, resolution, rng)
    if style == "natural":
        img = img + rng.normal(0, 4, img.shape)
    elif style == "painting":
        img = np.asarray(Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(1.0)),
                         np.float32)
    return np.clip(img, 0, 255).astype(np.uint8)


def render_styled(style: str, shape: str, colour: str, box: tuple[int, int, int], resolution: int,
                  rng: np.random.Generator) -> np.ndarray:
    """One shape in `style` (the domain dataset's images)."""
    return render_scene_styled([(shape, colour, box)], resolution, style, rng)
