"""What every dataset loader shares: image file extensions, required-column checks and image path resolution."""

from __future__ import annotations

import os

import pyarrow as pa

from clipcomp.errors import ClipcompError

__all__ = ["IMAGE_EXTENSIONS", "crop_box", "require_columns", "resolve"]

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff")


def require_columns(table: pa.Table, columns: list[str], path: str, what: str = "") -> None:
    """One-line error naming the file and the missing columns (and the columns it has)."""
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ClipcompError(f"{path}: missing column(s) {', '.join(repr(c) for c in missing)}"
                            f"{' ' + what if what else ''} (columns: {', '.join(table.column_names)})")


def resolve(path: str, root: str | None) -> str:
    """An image path as given when absolute (or no root), else under `root`."""
    return path if os.path.isabs(path) or root is None else os.path.join(root, path)


def crop_box(path: str, box: tuple[float, float, float, float], crop_dir: str, suite: str) -> str:
    """The (x, y, w, h) box of an image as a PNG in crop_dir, content-addressed (made once): PIL's
    `image.convert("RGB").crop((x, y, x + w, y + h))`, what ARO and CREPE (torchvision's crop on a PIL image) do."""
    import hashlib

    from PIL import Image

    from clipcomp.errors import ClipcompError
    from clipcomp.io import atomic_output

    key = hashlib.sha1(f"{os.path.abspath(path)}|{tuple(box)}|pil-crop".encode()).hexdigest()[:20]
    out = os.path.join(crop_dir, f"{key}.png")
    if not os.path.exists(out):
        os.makedirs(crop_dir, exist_ok=True)
        x, y, w, h = box
        try:
            with Image.open(path) as im, atomic_output(out) as tmp:
                im.convert("RGB").crop((x, y, x + w, y + h)).save(tmp, format="PNG")
        except (OSError, ValueError) as exc:
            raise ClipcompError(f"{path}: unreadable image for a {suite} crop ({exc})") from None
    return out
