"""COCO file layout helpers shared by the COCO loaders (captions JSON for retrieval and training)."""

from __future__ import annotations

import os


def default_image_root(json_path: str) -> str | None:
    """COCO layout: annotations/captions_val2017.json → ../val2017/ (when that folder exists)."""
    base = os.path.basename(json_path)
    if base.startswith("captions_") and base.endswith(".json"):
        split = base[len("captions_"):-len(".json")]
        cand = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(json_path))), split)
        if os.path.isdir(cand):
            return cand
    return None
