"""Shared fixtures: real caption samples (bundled in the package, and ../shared/data when present)."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def cc3m_path() -> str:
    """15,833 real CC3M validation captions shipped inside the package (source: Google Conceptual Captions)."""
    return str(resources.files("clipcomp").joinpath("data/cc3m_val_captions.txt"))


@pytest.fixture(scope="session")
def cc3m_lines(cc3m_path) -> list[str]:
    with open(cc3m_path, encoding="utf-8") as f:
        return f.read().splitlines()


def run_cli(args, capsys):
    """Run the CLI in-process; returns (exit code, stdout, stderr)."""
    from clipcomp.cli import main

    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code
    cap = capsys.readouterr()
    return code, cap.out, cap.err


def shared_path(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present: ../shared/data is only in the project's checkouts, not a plain clone")
    return path
