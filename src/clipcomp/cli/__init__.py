"""The `clipcomp` command line: a thin Typer layer over the Python API, one module per command group
(each command parses its options, makes one library call and prints), and the one error boundary, `main`."""

from __future__ import annotations

import os
import sys

import click
import typer
from rich.console import Console

from clipcomp.cli.analyze import analyze_app
from clipcomp.cli.base import base_cmd
from clipcomp.cli.bench import bench_app
from clipcomp.cli.domains import domains_app
from clipcomp.cli.embed import embed_cmd
from clipcomp.cli.eval import eval_app
from clipcomp.cli.lab import lab_app
from clipcomp.cli.mech import mech_app
from clipcomp.cli.mix import mix_app
from clipcomp.cli.models import models_cmd
from clipcomp.cli.negatives import negatives_app
from clipcomp.cli.quickstart import quickstart_cmd
from clipcomp.cli.similarity import similarity_app
from clipcomp.cli.slipform import slipform_cmd
from clipcomp.cli.stats import stats_app
from clipcomp.cli.synth import synth_app
from clipcomp.cli.train import train_cmd
from clipcomp.cli.vqa import vqa_app
from clipcomp.errors import ClipcompError

app = typer.Typer(
    rich_markup_mode=None,  # plain click help: wrapped, never cut to "…"
    help="clipcomp: which properties of pretraining data decide what CLIP models compose.",
    no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)
for _name, _group in (("stats", stats_app), ("eval", eval_app), ("analyze", analyze_app), ("synth", synth_app),
                      ("lab", lab_app), ("bench", bench_app), ("mix", mix_app), ("negatives", negatives_app),
                      ("mech", mech_app), ("similarity", similarity_app), ("domains", domains_app),
                      ("vqa", vqa_app)):
    app.add_typer(_group, name=_name)
for _name, _cmd in (("train", train_cmd), ("embed", embed_cmd), ("quickstart", quickstart_cmd),
                    ("slipform", slipform_cmd), ("models", models_cmd), ("base", base_cmd)):
    app.command(_name)(_cmd)

err_console = Console(stderr=True)


def _click_errors():
    """Click's exception classes — Typer ≥ 0.29 vendors its own copy of click, so catch both."""
    mods = [click.exceptions]
    try:
        from typer._click import exceptions as vendored

        mods.append(vendored)
    except ImportError:
        pass
    pick = lambda name: tuple(getattr(m, name) for m in mods if hasattr(m, name))  # noqa: E731
    return pick("UsageError"), pick("Exit"), pick("Abort"), pick("ClickException")


def _output_dir(argv: list[str]) -> str | None:
    """The -o/--out value of the command line (where finished work was kept), if any."""
    from clipcomp.io import CURRENT_OUTPUTS

    if CURRENT_OUTPUTS:
        return CURRENT_OUTPUTS[-1]
    for i, a in enumerate(argv):
        if a in ("-o", "--out") and i + 1 < len(argv):
            return argv[i + 1]
        if a.startswith("--out="):
            return a.split("=", 1)[1]
    return None


def _not_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return False
    except UnicodeEncodeError:
        return True


def _osvalidation_error_line(exc: OSError) -> str:
    where = exc.filename if exc.filename is not None else "input"
    what = exc.strerror or type(exc).__name__
    if isinstance(exc, IsADirectoryError):
        what = "is a directory, expected a file"
    elif isinstance(exc, NotADirectoryError):
        what = "is not a directory"
    return f"{where}: {what}"


def _finite_floats() -> None:
    """Every float option rejects NaN and ±inf at parse time (a usage error naming the option, exit 2)."""
    import math

    import click

    if getattr(click.types.FloatParamType, "_clipcomp_finite", False):
        return
    convert = click.types.FloatParamType.convert

    def finite(self, value, param, ctx):
        v = convert(self, value, param, ctx)
        if isinstance(v, float) and not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return v

    click.types.FloatParamType.convert = finite
    click.types.FloatParamType._clipcomp_finite = True


def main(argv: list[str] | None = None) -> None:
    """The CLI's one error boundary. Usage errors: usage text, exit 2. Expected failures (ClipcompError, OS and
    encoding errors): one line naming the path, exit 2. Ctrl-C / SIGTERM: one line saying what was kept, exit
    130 / 143. Anything else is a bug: one line with the debug hint, exit 1."""
    from clipcomp import procs
    from clipcomp.procs import Interrupted, install_interrupt_handlers

    debug = os.environ.get("CLIPCOMP_DEBUG") == "1"
    args = list(sys.argv[1:] if argv is None else argv)
    _finite_floats()
    usage_errors, exits, aborts, click_errors = _click_errors()
    install_interrupt_handlers()
    try:
        rv = app(args=args, standalone_mode=False, prog_name="clipcomp")
        # Typer turns KeyboardInterrupt into Exit(130) and, outside standalone mode, *returns* that code
        if isinstance(rv, int) and not isinstance(rv, bool) and rv != 0:
            if rv == 130 or procs.LAST_SIGNAL:
                raise Interrupted(procs.LAST_SIGNAL or 2)
            sys.exit(rv)
    except ClipcompError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except usage_errors as exc:
        exc.show()
        sys.exit(2)
    except exits as exc:
        sys.exit(exc.exit_code)
    except click_errors as exc:
        exc.show()
        sys.exit(2)
    except (KeyboardInterrupt, *aborts) as exc:
        signum = getattr(exc, "signum", None) or procs.LAST_SIGNAL or 2
        out = _output_dir(args)
        kept = f"finished work kept in {out}; " if out else ""
        err_console.print(f"interrupted ({'SIGTERM' if signum == 15 else 'Ctrl-C'}): {kept}rerun the same command "
                          "to resume", highlight=False, soft_wrap=True)
        sys.exit(128 + signum)
    except UnicodeEncodeError as exc:
        if debug:
            raise
        bad = next((a for a in args if _not_utf8(a)), None)
        what = f"argument {bad.encode('utf-8', 'surrogateescape')!r}" if bad is not None else "some text"
        err_console.print(f"[bold red]error:[/] {what} is not valid UTF-8 text ({exc.reason})", highlight=False,
                          soft_wrap=True)
        sys.exit(2)
    except UnicodeDecodeError as exc:
        if debug:
            raise
        err_console.print(f"[bold red]error:[/] input is not UTF-8 text (byte {exc.start}: {exc.reason})",
                          highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as exc:
        if debug:
            raise
        dep = _dependency_of(exc)  # PIL's UnidentifiedImageError is an OSError without a file name
        line = (f"{_input_hint(args)}{dep} could not read the input: {_first_line(exc)}" if dep and not exc.filename
                else _osvalidation_error_line(exc))
        err_console.print(f"[bold red]error:[/] {line}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except Exception as exc:  # noqa: BLE001 - last line of defence for the one-line promise
        if debug:
            raise
        dep = _dependency_of(exc)
        if dep:  # a library rejected the input: the input's problem, in one line
            err_console.print(f"[bold red]error:[/] {_input_hint(args)}{dep} could not read the input: "
                              f"{_first_line(exc)}", highlight=False, soft_wrap=True)
            sys.exit(2)
        err_console.print(f"[bold red]error:[/] {type(exc).__name__}: {_first_line(exc)} (set CLIPCOMP_DEBUG=1 "
                          "for a traceback)", highlight=False, soft_wrap=True)
        sys.exit(1)


DEPENDENCIES = {"pyarrow": "Arrow", "PIL": "PIL", "sklearn": "scikit-learn", "faiss": "faiss", "yaml": "YAML",
                "webdataset": "webdataset", "tarfile": "tar", "zipfile": "zip", "json": "JSON",
                "safetensors": "safetensors", "polars": "Polars", "numpy": "NumPy"}


def _dependency_of(exc: BaseException) -> str | None:
    """The library an exception comes from (its module, or faiss's C++ text), when it rejected an input."""
    root = type(exc).__module__.split(".")[0]
    if root in DEPENDENCIES:
        return DEPENDENCIES[root]
    text = str(exc)
    if isinstance(exc, RuntimeError) and ("faiss" in text or "Error in " in text and ".cpp" in text):
        return "faiss"
    return None


def _first_line(exc: BaseException) -> str:
    """The informative line of a message (faiss's C++ text: the line after the source location)."""
    text = str(exc)
    if "Error in " in text and ": Error: " in text:  # faiss: "Error in <fn> at <file>.cpp:<n>: Error: '<cond>' …"
        text = text.split(": Error: ", 1)[1]
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return type(exc).__name__
    for ln in lines:
        if ln.lower().startswith(("error: ", "assertion")) or "failed" in ln:
            return ln.removeprefix("Error: ").removeprefix("error: ")[:300]
    return lines[-1][:300] if "Error in " in lines[0] else lines[0][:300]


def _input_hint(args: list[str]) -> str:
    """'PATH: ' for the command's first existing path argument (the input, as a rule), else ''."""
    skip = False
    for a in args:
        if skip:
            skip = False
            continue
        if a in ("-o", "--out"):
            skip = True
            continue
        if not a.startswith("-") and os.path.exists(a):
            return f"{a}: "
    return ""


if __name__ == "__main__":
    main()
