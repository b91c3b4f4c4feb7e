"""clipcomp: which properties of pretraining data decide what CLIP-style models compose and generalize to.

The package reads top-down (docs/architecture.md): ``cli`` → ``pipelines`` → ``tasks``/``train``/``analysis``/
``similarity``/``negatives``/``benchgen`` → ``datasets``/``synth``/``stats``/``cooccur``/``models`` → ``io``/
``errors``/``config``. Module paths of release 0.1 that moved keep working for one release (with a
DeprecationWarning) through the alias table below.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings

from clipcomp.errors import ClipcompError
from clipcomp.stats import ConceptStats

__all__ = ["ClipcompError", "ConceptStats", "__version__"]

# Old module path → new one (release 0.1 → 0.2). Removed in the release after 0.2.
MOVED_MODULES = {
    "clipcomp.analyze": "clipcomp.analysis.reports",
    "clipcomp.vqa": "clipcomp.analysis.vqa",
    "clipcomp.gather": "clipcomp.analysis.gather",
    "clipcomp.report": "clipcomp.analysis.report",
    "clipcomp.similarity.analysis": "clipcomp.analysis.similarity",
    "clipcomp.benchmarks": "clipcomp.benchgen",
    "clipcomp.benchmarks.captioners": "clipcomp.benchgen.captioners",
    "clipcomp.benchmarks.genpairs": "clipcomp.benchgen.genpairs",
    "clipcomp.benchmarks.imagegen": "clipcomp.benchgen.imagegen",
    "clipcomp.benchmarks.paste": "clipcomp.benchgen.paste",
    "clipcomp.miniature": "clipcomp.pipelines.miniature",
    "clipcomp.miniature.design": "clipcomp.pipelines.miniature.design",
    "clipcomp.miniature.pipeline": "clipcomp.pipelines.miniature.pipeline",
    "clipcomp.miniature.report": "clipcomp.pipelines.miniature.report",
    "clipcomp.miniature.testsets": "clipcomp.pipelines.miniature.testsets",
    "clipcomp.lab": "clipcomp.pipelines.lab",
    "clipcomp.slipform": "clipcomp.pipelines.slipform",
    "clipcomp.suites": "clipcomp.pipelines.suites",
    "clipcomp.evaluate": "clipcomp.tasks.run",
    "clipcomp.mixtures": "clipcomp.datasets.mixtures",
    "clipcomp.torchvision_compat": "clipcomp.models.compat",
    "clipcomp.embed": "clipcomp.models.embed",
    "clipcomp.cli_bench": "clipcomp.cli.bench",
    "clipcomp.cli_eval": "clipcomp.cli.eval",
    "clipcomp.cli_lab": "clipcomp.cli.train",
    "clipcomp.cli_mech": "clipcomp.cli.mech",
    "clipcomp.cli_mix": "clipcomp.cli.mix",
    "clipcomp.cli_negatives": "clipcomp.cli.negatives",
    "clipcomp.cli_similarity": "clipcomp.cli.similarity",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module at its new place (the same module object)."""

    def find_spec(self, name, path=None, target=None):
        if name in MOVED_MODULES:
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        new = MOVED_MODULES[spec.name]
        warnings.warn(f"{spec.name} moved to {new}; the old path goes away in the next release",
                      DeprecationWarning, stacklevel=3)
        return importlib.import_module(new)

    def exec_module(self, module) -> None:
        pass


if not any(isinstance(f, _MovedModules) for f in sys.meta_path):
    sys.meta_path.insert(0, _MovedModules())


def __getattr__(name: str):
    # the version is looked up on first use: importlib.metadata costs ~70 ms at every command's start
    if name == "__version__":
        from clipcomp.io import package_version

        return package_version()
    raise AttributeError(f"module 'clipcomp' has no attribute {name!r}")
