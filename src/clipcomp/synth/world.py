"""The world: vocabularies of shapes, colours and sizes, and seeded sampling of non-overlapping scenes.

An optional shape co-occurrence matrix M (S×S, non-negative) controls which shapes appear together: the
next shape j is drawn with probability ∝ u_j · Π_{i already in the scene} M[i, j], so M[i, j] = 0 means i and
j never share a scene. This is how a PMI structure is imposed on a training corpus.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from clipcomp.config import typed
from clipcomp.errors import ClipcompError

DEFAULT_SHAPES = ("circle", "square", "triangle", "diamond", "star", "hexagon", "cross", "pentagon")
DEFAULT_COLOURS = ("red", "green", "blue", "yellow", "purple", "orange", "cyan", "white")
DEFAULT_SIZES = ("small", "large")
SHAPES_AVAILABLE = DEFAULT_SHAPES + ("semicircle", "trapezoid", "arrow", "ring")
COLOUR_RGB = {
    "red": (220, 40, 40), "green": (40, 180, 60), "blue": (50, 90, 230), "yellow": (235, 215, 40),
    "purple": (150, 60, 200), "orange": (245, 140, 30), "cyan": (40, 200, 210), "white": (240, 240, 240),
    "pink": (240, 120, 180), "brown": (140, 90, 40), "gray": (128, 128, 128), "lime": (160, 230, 40),
}
SIZE_FRACTION = {"tiny": 0.16, "small": 0.22, "medium": 0.29, "large": 0.36, "huge": 0.44}
BACKGROUND = (24, 24, 24)


@dataclass(frozen=True)
class Obj:
    shape: str
    colour: str
    size: str
    x: int  # top-left of the bounding box, pixels
    y: int
    extent: int  # bounding-box side, pixels

    @property
    def cx(self) -> float:
        return self.x + self.extent / 2

    @property
    def cy(self) -> float:
        return self.y + self.extent / 2

    def as_dict(self) -> dict:
        return {"shape": self.shape, "colour": self.colour, "size": self.size, "x": self.x, "y": self.y,
                "extent": self.extent}


@dataclass(frozen=True)
class Scene:
    objects: tuple[Obj, ...]
    resolution: int

    def with_objects(self, objects) -> Scene:
        return Scene(tuple(objects), self.resolution)


# The render styles of clipcomp.synth.styles (named here, the bottom of synth, so world configs check them without
# importing the renderer).
STYLES = ("natural", "clipart", "sketch", "painting", "quickdraw")


@typed
class WorldConfig:
    """What scenes look like. Every choice is drawn from a seeded generator."""

    shapes: list[str] = field(default_factory=lambda: list(DEFAULT_SHAPES))
    colours: list[str] = field(default_factory=lambda: list(DEFAULT_COLOURS))
    sizes: list[str] = field(default_factory=lambda: list(DEFAULT_SIZES))
    min_objects: int = 3
    max_objects: int = 4
    resolution: int = 64
    shape_weights: list[float] | None = None  # unigram weights u (default uniform)
    cooccurrence: list[list[float]] | None = None  # S×S matrix M (default all ones)
    # render style per scene: {style: weight}; "flat" is the lab's exact flat rendering, the others are the
    # domains of clipcomp.synth.styles (natural, clipart, sketch, painting, quickdraw). Stored per image.
    styles: dict | None = None

    def validate(self, where: str = "world") -> None:
        if self.styles is not None:
            bad = [k for k in self.styles if k not in ("flat", *STYLES)]
            if bad or not self.styles or any(not isinstance(v, (int, float)) or v < 0 for v in self.styles.values()) \
                    or sum(self.styles.values()) <= 0:
                raise ClipcompError(f"{where}.styles: a mapping of style → weight ≥ 0 (styles: flat, "
                                    f"{', '.join(STYLES)}); got {self.styles!r}")
        for name, values, known in (("shapes", self.shapes, SHAPES_AVAILABLE), ("colours", self.colours, COLOUR_RGB),
                                    ("sizes", self.sizes, SIZE_FRACTION)):
            unknown = [v for v in values if v not in known]
            if unknown:
                raise ClipcompError(f"{where}.{name}: unknown {', '.join(map(repr, unknown))} "
                                    f"(available: {', '.join(known)})")
            if len(set(values)) != len(values):
                raise ClipcompError(f"{where}.{name}: duplicates in {values}")
        if not 1 <= self.min_objects <= self.max_objects:
            raise ClipcompError(f"{where}: need 1 ≤ min_objects ≤ max_objects (got {self.min_objects}, "
                                f"{self.max_objects})")
        if self.max_objects > len(self.shapes) or self.max_objects > len(self.colours):
            raise ClipcompError(f"{where}: {self.max_objects} objects per scene need at least that many shapes and "
                                f"colours (have {len(self.shapes)} shapes, {len(self.colours)} colours): objects in a "
                                "scene have distinct shapes and distinct colours")
        if not 16 <= self.resolution <= 1024:
            raise ClipcompError(f"{where}.resolution: {self.resolution} out of range 16..1024")
        s = len(self.shapes)
        if self.shape_weights is not None and (len(self.shape_weights) != s or min(self.shape_weights) < 0):
            raise ClipcompError(f"{where}.shape_weights: need {s} non-negative numbers")
        if self.cooccurrence is not None:
            m = np.asarray(self.cooccurrence, dtype=float)
            if m.shape != (s, s) or (m < 0).any():
                raise ClipcompError(f"{where}.cooccurrence: need a {s}×{s} non-negative matrix")
        self._check_fits()

    def _check_fits(self) -> None:
        side = max(SIZE_FRACTION[s] for s in self.sizes) * self.resolution
        if self.max_objects * (side + 1) ** 2 > 0.6 * self.resolution**2:
            raise ClipcompError(f"world: {self.max_objects} objects of size '{max(self.sizes, key=SIZE_FRACTION.get)}'"
                                f" do not fit without overlap in {self.resolution}×{self.resolution} pixels")


def _extent(size: str, resolution: int) -> int:
    return max(5, int(round(SIZE_FRACTION[size] * resolution)))


def _pick_shapes(cfg: WorldConfig, k: int, rng: np.random.Generator) -> list[int]:
    s = len(cfg.shapes)
    u = np.asarray(cfg.shape_weights if cfg.shape_weights is not None else np.ones(s), dtype=float)
    m = np.asarray(cfg.cooccurrence, dtype=float) if cfg.cooccurrence is not None else None
    chosen: list[int] = []
    for _ in range(k):
        p = u.copy()
        p[chosen] = 0
        if m is not None:
            for i in chosen:
                p = p * m[i]
        if p.sum() <= 0:
            return []  # this start cannot be completed under the co-occurrence constraints
        chosen.append(int(rng.choice(s, p=p / p.sum())))
    return chosen


def sample_scene(cfg: WorldConfig, rng: np.random.Generator, max_tries: int = 200) -> Scene:
    """K objects (K uniform in [min, max]) with distinct shapes and colours, random sizes, no overlap."""
    res = cfg.resolution
    for _ in range(max_tries):
        k = int(rng.integers(cfg.min_objects, cfg.max_objects + 1))
        shapes = _pick_shapes(cfg, k, rng)
        if not shapes:
            continue
        colours = rng.choice(len(cfg.colours), size=k, replace=False)
        sizes = rng.integers(0, len(cfg.sizes), size=k)
        boxes: list[tuple[int, int, int]] = []
        for j in range(k):
            ext = _extent(cfg.sizes[sizes[j]], res)
            for _ in range(100):
                x = int(rng.integers(1, res - ext))
                y = int(rng.integers(1, res - ext))
                if all(x + ext + 1 <= bx or bx + be + 1 <= x or y + ext + 1 <= by or by + be + 1 <= y
                       for bx, by, be in boxes):
                    boxes.append((x, y, ext))
                    break
            else:
                break
        if len(boxes) == k:
            objs = [Obj(cfg.shapes[shapes[j]], cfg.colours[colours[j]], cfg.sizes[sizes[j]], *boxes[j])
                    for j in range(k)]
            return Scene(tuple(objs), res)
    raise ClipcompError("could not place the objects without overlap; lower max_objects or the sizes")
