"""Make `import torchvision` (and so `import open_clip`) work when torchvision's compiled ops cannot load.

PyPI's torchvision wheels are CUDA builds; beside a CPU-only torch their `_C` extension fails to load, and
torchvision then dies at import while registering fake kernels for ops (`torchvision::nms`, ...) that were
never defined. clipcomp needs only torchvision's transforms. When — and only when — that import error
happens, we define the missing op *schemas* (no kernels: calling them still raises) and import again.
Nothing changes on a machine where torchvision's ops load.
"""

from __future__ import annotations

import re
import sys

_SCHEMAS = {
    "nms": "nms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
    "qnms": "qnms(Tensor dets, Tensor scores, float iou_threshold) -> Tensor",
}
_LIBRARY = None  # kept alive: a torch.library.Library drops its definitions when collected
PATCHED: list[str] = []  # ops defined here, for diagnostics (`clipcomp env`)


def _forget_torchvision() -> None:
    for name in list(sys.modules):
        if name == "torchvision" or name.startswith("torchvision."):
            del sys.modules[name]


def ensure_torchvision() -> None:
    """Import torchvision, defining missing op schemas first if its compiled ops are unavailable."""
    global _LIBRARY
    for _ in range(len(_SCHEMAS) + 4):
        try:
            import torchvision  # noqa: F401

            return
        except RuntimeError as exc:
            m = re.search(r"operator torchvision::(\w+) does not exist", str(exc))
            if not m:
                raise
            op = m.group(1)
            _forget_torchvision()
            import torch.library

            if _LIBRARY is None:
                _LIBRARY = torch.library.Library("torchvision", "DEF")  # noqa: TOR901
            schema = _SCHEMAS.get(op, f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
            _LIBRARY.define(schema)
            PATCHED.append(op)
    import torchvision  # noqa: F401  - final attempt raises the real error, if any
