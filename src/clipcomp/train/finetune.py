"""Fine-tuning recipe: train from any loadable model (optionally with a frozen tower, warm-up and WiSE-FT) and
evaluate the starting and the final model with the harness tasks, in one call."""

from __future__ import annotations

import os

from clipcomp.train.trainer import TrainConfig, _dist_env, train


def _headline(summary: dict) -> dict[str, float]:
    return {k: v for k, v in summary["metrics"].items() if isinstance(v, float) and not k.startswith("n_")}


def finetune(cfg: TrainConfig, evals: list[tuple[str, str]] | None = None, eval_images: str | None = None,
             progress: bool = True, force: bool = False) -> dict:
    """Train `cfg`, then evaluate each (task, data) before (the starting weights) and after (OUT/final.pt).

    Evaluation results go to OUT/eval/{before,after}-<task>-<n>/ as ordinary run folders (gather them with
    `clipcomp eval gather`); returns {"train": train summary, "evals": [{task, metric, before, after}]}.
    """
    from clipcomp.tasks.run import ModelSpec, run_eval

    evals = evals or []
    res = train(cfg, progress=progress, force=force)
    rank, _, _ = _dist_env()
    rows = []
    reporters = None
    if evals and cfg.report_to and rank == 0 and res["steps_done"] == cfg.steps:
        from dataclasses import asdict

        from clipcomp.train.reporting import Reporters

        reporters = Reporters(list(cfg.report_to), cfg.out, asdict(cfg))  # the same run: TensorBoard dir, W&B id
    if evals and rank == 0 and res["steps_done"] == cfg.steps:
        final = os.path.join(cfg.out, "final.pt")
        for n, (task, data) in enumerate(evals):
            before = ModelSpec(model=cfg.model, pretrained=cfg.pretrained, device=cfg.device, seed=cfg.seed,
                               cache_dir=None)
            after = ModelSpec(model=cfg.model, pretrained=final, device=cfg.device, cache_dir=None)
            sb = run_eval(task, data, os.path.join(cfg.out, "eval", f"before-{task}-{n}"), before, eval_images,
                          force=force, progress=progress)
            sa = run_eval(task, data, os.path.join(cfg.out, "eval", f"after-{task}-{n}"), after, eval_images,
                          force=force, progress=progress)
            hb, ha = _headline(sb), _headline(sa)
            rows += [{"task": task, "data": data, "metric": k, "before": hb[k], "after": ha[k]} for k in hb if k in ha]
            if reporters is not None:  # step 0: the starting weights; step N: the trained ones
                reporters.scalars(0, hb, f"eval/{task}-{n}/")
                reporters.scalars(cfg.steps, ha, f"eval/{task}-{n}/")
    if reporters is not None:
        reporters.close()
    return {"train": res, "evals": rows}
