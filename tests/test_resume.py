"""A killed build resumes: finished tasks are not redone and the result equals an uninterrupted build."""

from __future__ import annotations

import pytest

import clipcomp.cooccur.engine as engine
from clipcomp.cooccur import BuildOptions, build_stats


def test_interrupted_build_resumes_without_redoing_tasks(tmp_path, cc3m_path, monkeypatch):
    opts = BuildOptions(min_count=2, task_bytes=100_000)
    fresh = tmp_path / "fresh"
    build_stats([cc3m_path], str(fresh), opts)

    real = engine.run_task
    calls: list[tuple[str, int]] = []

    def dying(phase, task, ctx):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append((phase, task.tid))
        return real(phase, task, ctx)

    monkeypatch.setattr(engine, "run_task", dying)
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        build_stats([cc3m_path], str(out), opts)
    assert not (out / "meta.json").exists()
    assert len(list((out / "_work").glob("discover-*.json"))) == 5

    computed: list[tuple[str, int]] = []
    import clipcomp.cooccur.work as work

    real_discover = work._discover

    def counting(task, ctx):
        computed.append(("discover", task.tid))
        return real_discover(task, ctx)

    monkeypatch.setattr(engine, "run_task", real)
    monkeypatch.setattr(work, "_discover", counting)
    build_stats([cc3m_path], str(out), opts)
    assert sorted(computed) == [("discover", t) for t in range(5, 9)]
    for name in ("concepts.parquet", "pairs.parquet", "meta.json"):
        assert (out / name).read_bytes() == (fresh / name).read_bytes()
    assert not (out / "_work").exists()
