"""Pillow rendering of scenes: flat colours on a dark background, no anti-aliasing (pixels are exact)."""

from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from clipcomp.synth.world import BACKGROUND, COLOUR_RGB, Obj, Scene


def _polygon(obj: Obj, points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    e = obj.extent - 1
    return [(obj.x + px * e, obj.y + py * e) for px, py in points]


def _regular(n: int, rot: float = -math.pi / 2, radius: float = 0.5) -> list[tuple[float, float]]:
    return [(0.5 + radius * math.cos(rot + 2 * math.pi * i / n), 0.5 + radius * math.sin(rot + 2 * math.pi * i / n))
            for i in range(n)]


_STAR = [(0.5 + (0.5 if i % 2 == 0 else 0.22) * math.cos(-math.pi / 2 + math.pi * i / 5),
          0.5 + (0.5 if i % 2 == 0 else 0.22) * math.sin(-math.pi / 2 + math.pi * i / 5)) for i in range(10)]
_CROSS = [(1 / 3, 0), (2 / 3, 0), (2 / 3, 1 / 3), (1, 1 / 3), (1, 2 / 3), (2 / 3, 2 / 3), (2 / 3, 1), (1 / 3, 1),
          (1 / 3, 2 / 3), (0, 2 / 3), (0, 1 / 3), (1 / 3, 1 / 3)]
_ARROW = [(0, 0.35), (0.55, 0.35), (0.55, 0.1), (1, 0.5), (0.55, 0.9), (0.55, 0.65), (0, 0.65)]


def draw_object(draw: ImageDraw.ImageDraw, obj: Obj) -> None:
    rgb = COLOUR_RGB[obj.colour]
    box = (obj.x, obj.y, obj.x + obj.extent - 1, obj.y + obj.extent - 1)
    s = obj.shape
    if s == "circle":
        draw.ellipse(box, fill=rgb)
    elif s == "square":
        draw.rectangle(box, fill=rgb)
    elif s == "triangle":
        draw.polygon(_polygon(obj, [(0.5, 0), (1, 1), (0, 1)]), fill=rgb)
    elif s == "diamond":
        draw.polygon(_polygon(obj, [(0.5, 0), (1, 0.5), (0.5, 1), (0, 0.5)]), fill=rgb)
    elif s == "star":
        draw.polygon(_polygon(obj, _STAR), fill=rgb)
    elif s == "hexagon":
        draw.polygon(_polygon(obj, _regular(6, 0)), fill=rgb)
    elif s == "pentagon":
        draw.polygon(_polygon(obj, _regular(5)), fill=rgb)
    elif s == "cross":
        draw.polygon(_polygon(obj, _CROSS), fill=rgb)
    elif s == "semicircle":
        draw.pieslice((obj.x, obj.y, obj.x + obj.extent - 1, obj.y + 2 * obj.extent - 2), 180, 360, fill=rgb)
    elif s == "trapezoid":
        draw.polygon(_polygon(obj, [(0.25, 0.15), (0.75, 0.15), (1, 0.85), (0, 0.85)]), fill=rgb)
    elif s == "arrow":
        draw.polygon(_polygon(obj, _ARROW), fill=rgb)
    elif s == "ring":
        draw.ellipse(box, outline=rgb, width=max(2, obj.extent // 5))
    else:
        raise ValueError(f"unknown shape {s!r}")


def render_scene(scene: Scene) -> np.ndarray:
    """(H, W, 3) uint8."""
    img = Image.new("RGB", (scene.resolution, scene.resolution), BACKGROUND)
    draw = ImageDraw.Draw(img)
    for obj in scene.objects:
        draw_object(draw, obj)
    return np.asarray(img, dtype=np.uint8)
