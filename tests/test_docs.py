"""The README's and the docs' examples run as written in a plain clone: every fenced block marked
`<!-- runnable -->` is executed in document order from the repository root (bash with -e, or Python)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"<!-- runnable -->\s*\n```(bash|python)\n(.*?)\n```", re.S)


def runnable_blocks(path: Path) -> list[tuple[str, str]]:
    return BLOCK.findall(path.read_text(encoding="utf-8"))


def test_the_readme_has_runnable_examples():
    assert len(runnable_blocks(ROOT / "README.md")) >= 3


@pytest.mark.slow
@pytest.mark.parametrize("doc", [d for d in DOCS if runnable_blocks(d)], ids=lambda d: d.name)
def test_runnable_blocks(doc: Path, tmp_path):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CLIPCOMP_CACHE": str(tmp_path / "cache"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    setup = subprocess.run([sys.executable, "-m", "clipcomp.cli", "stats", "build", "-o", "runs/cc3m-stats", "-q"],
                           cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert setup.returncode == 0, setup.stderr
    for n, (lang, code) in enumerate(runnable_blocks(doc)):
        cmd = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{doc.name} block {n} failed:\n{code}\n--- stderr ---\n{proc.stderr[-3000:]}"
