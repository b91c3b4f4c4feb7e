"""clipcomp: which properties of pretraining data decide what CLIP-style models compose and generalize to."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("clipcomp")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+src"

from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.stats import ConceptStats  # noqa: E402

__all__ = ["ClipcompError", "ConceptStats", "__version__"]
