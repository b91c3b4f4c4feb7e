"""`clipcomp vqa`: answers from a local LMM for the VQA analysis."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

console = Console()

vqa_app = typer.Typer(rich_markup_mode=None, help="Visual question answering with a local LMM.",
                      no_args_is_help=True)


@vqa_app.command("run")
def vqa_run(
    questions: Annotated[str, typer.Argument(help="VQAv2 questions JSON, TextVQA JSON, or a table with question, "
                                                  "image [, question_id, answer, answers].")],
    model: Annotated[str, typer.Option("--model", "-m", help="Local LLaVA-style model directory (transformers "
                                                             "image-text-to-text; no download).")],
    out: Annotated[str, typer.Option("-o", "--out", help="Output directory (answers.jsonl, predictions.json, "
                                                         "answers.parquet).")] = "runs/vqa-answers",
    images: Annotated[str | None, typer.Option(help="Image folder (VQAv2/TextVQA ids; relative table paths).")]
    = None,
    batch_size: Annotated[int, typer.Option(help="Questions per generation batch (≥ 1).", min=1)] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Longest answer in tokens (≥ 1).", min=1)] = 16,
    device: Annotated[str, typer.Option(help="auto | cpu | cuda")] = "auto",
    force: Annotated[bool, typer.Option(help="Replace answers of another model or question set in OUT.")] = False,
    quiet: Annotated[bool, typer.Option("-q", "--quiet", help="No progress bar.")] = False,
) -> None:
    """Answer every question with the LMM (greedy, LLaVA-1.5's short-answer prompt, batched); an interrupted run
    resumes. → pipelines.vqa.run_vqa"""
    from clipcomp.pipelines.vqa import run_vqa

    s = run_vqa(questions, model, out, images, batch_size, max_new_tokens, device, force, not quiet)
    console.print(f"{out}: {s['answered']:,}/{s['questions']:,} questions answered ({s['resumed']:,} from an "
                  f"earlier run); yes {s['yes']:,}, no {s['no']:,}; predictions.json, answers.parquet")
