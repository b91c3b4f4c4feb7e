"""Concept co-occurrence counting: vectorized per-shard counts, mergeable partials, local or Dask engines."""

from clipcomp.cooccur.build import BuildOptions, BuildResult, build_stats

__all__ = ["BuildOptions", "BuildResult", "build_stats"]
