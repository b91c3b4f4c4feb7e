"""clipcomp: which properties of pretraining data decide what CLIP-style models compose and generalize to."""

from clipcomp.errors import ClipcompError
from clipcomp.stats import ConceptStats

__all__ = ["ClipcompError", "ConceptStats", "__version__"]


def __getattr__(name: str):
    # the version is looked up on first use: importlib.metadata costs ~70 ms at every command's start
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("clipcomp")
        except PackageNotFoundError:  # running from a source tree without installation
            return "0.0.0+src"
    raise AttributeError(f"module 'clipcomp' has no attribute {name!r}")
