"""Training logs in the tools people watch: `--report-to tensorboard|wandb` (open_clip's option), beside
`metrics.jsonl`, which stays the source of truth (every scalar sent to a reporter is also in it or in eval/).

A reporter is a small class with `scalars(step, values)` and `close()`, registered by name in REPORTERS; a new
one (MLflow, …) is one class and one entry. TensorBoard writes event files under OUT/tensorboard/ (torch's
SummaryWriter); Weights & Biases logs under OUT/wandb/, offline unless WANDB_MODE or WANDB_API_KEY says
otherwise (no network is assumed; `wandb sync OUT/wandb/offline-run-*` uploads later).
"""

from __future__ import annotations

import math
import os

from clipcomp.errors import ClipcompError


class TensorBoardReporter:
    package = "tensorboard"

    def __init__(self, out: str, config: dict):
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(log_dir=os.path.join(out, "tensorboard"))
        self.writer.add_text("config", "\n".join(f"    {k}: {v}" for k, v in sorted(config.items())))

    def scalars(self, step: int, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, global_step=step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbReporter:
    package = "wandb"

    def __init__(self, out: str, config: dict):
        import hashlib

        import wandb

        mode = os.environ.get("WANDB_MODE") or ("online" if os.environ.get("WANDB_API_KEY") else "offline")
        run_id = hashlib.sha1(os.path.abspath(out).encode()).hexdigest()[:12]  # the same run when resumed
        self.run = wandb.init(project=os.environ.get("WANDB_PROJECT", "clipcomp"), dir=out, mode=mode, id=run_id,
                              resume="allow", config=config, name=os.path.basename(os.path.abspath(out)),
                              reinit=True)

    def scalars(self, step: int, values: dict[str, float]) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


REPORTERS = {"tensorboard": TensorBoardReporter, "wandb": WandbReporter}


def check_report_to(names: list[str], where: str = "train.report_to") -> None:
    """Names known and their package installed — checked before any training starts."""
    import importlib.util

    for n in names:
        if n not in REPORTERS:
            raise ClipcompError(f"{where}: unknown reporter {n!r} (expected {', '.join(REPORTERS)})")
        pkg = REPORTERS[n].package
        if importlib.util.find_spec(pkg) is None:
            raise ClipcompError(f"{where}: {n} needs the {pkg} package (pip install {pkg})")


class Reporters:
    """Every requested reporter at once; numbers only (non-finite values and strings are skipped)."""

    def __init__(self, names: list[str], out: str, config: dict):
        check_report_to(names)
        self.items = [REPORTERS[n](out, config) for n in names]

    def scalars(self, step: int, values: dict, prefix: str = "") -> None:
        clean = {prefix + k: float(v) for k, v in values.items()
                 if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))}
        if clean:
            for r in self.items:
                r.scalars(step, clean)

    def close(self) -> None:
        for r in self.items:
            r.close()
        self.items = []
