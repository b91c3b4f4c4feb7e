"""Evaluation tasks, CLIP_benchmark style: each module exposes `evaluate(embedder, data, ...) -> TaskResult`."""

from clipcomp.tasks.common import TaskResult, write_result

__all__ = ["TaskResult", "write_result"]
