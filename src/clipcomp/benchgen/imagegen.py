"""GenPairs images: a text-to-image `diffusers` pipeline loaded from a local directory draws each caption.

Every item has its own seed (seed, row), so an image does not depend on the batch it was drawn in, and the
run is resumable: images already on disk are kept and only the missing ones are drawn. Guidance scale, steps
and size are real options passed to the pipeline (the published builder hard-coded them).
"""

from __future__ import annotations

import os
import time

import pyarrow as pa

from clipcomp.errors import ClipcompError
from clipcomp.io import atomic_output, atomic_write_json, write_parquet


class DiffusersImageGenerator:
    def __init__(self, model_path: str, steps: int = 28, guidance: float = 3.5, height: int | None = None,
                 width: int | None = None, batch_size: int = 4, device: str = "auto", dtype: str = "auto",
                 negative_prompt: str | None = None) -> None:
        if not os.path.isdir(model_path):
            raise ClipcompError(f"{model_path}: not a local diffusers pipeline directory (model_index.json expected)")
        if not os.path.exists(os.path.join(model_path, "model_index.json")):
            raise ClipcompError(f"{model_path}: no model_index.json; save the pipeline with save_pretrained")
        if steps < 1 or batch_size < 1:
            raise ClipcompError("steps and batch_size must be ≥ 1")
        from clipcomp.models.compat import ensure_torchvision

        ensure_torchvision()  # transformers/diffusers import torchvision, whose PyPI build may not load
        try:
            import torch
            from diffusers import DiffusionPipeline
        except ImportError:
            raise ClipcompError("image generation needs diffusers: pip install 'clipcomp[generate]'") from None
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        torch_dtype = {"auto": torch.float16 if self.device.startswith("cuda") else torch.float32,
                       "float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}.get(dtype)
        if torch_dtype is None:
            raise ClipcompError(f"unknown dtype {dtype!r} (auto, float32, float16, bfloat16)")
        import warnings

        try:
            with warnings.catch_warnings():  # newer diffusers rename torch_dtype to dtype; older ones need it
                warnings.filterwarnings("ignore", message=".*torch_dtype.*", category=FutureWarning)
                self.pipe = DiffusionPipeline.from_pretrained(model_path, torch_dtype=torch_dtype,
                                                              local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ClipcompError(f"{model_path}: cannot load the pipeline ({str(exc).splitlines()[0]})") from None
        self.pipe = self.pipe.to(self.device)
        self.pipe.set_progress_bar_config(disable=True)
        self.steps, self.guidance, self.height, self.width = steps, guidance, height, width
        self.batch_size, self.negative_prompt = batch_size, negative_prompt
        self.model_path = model_path

    def draw(self, prompts: list[str], seeds: list[int]):
        import torch

        gens = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
        kw = {"num_inference_steps": self.steps, "guidance_scale": self.guidance, "generator": gens}
        if self.height:
            kw["height"] = self.height
        if self.width:
            kw["width"] = self.width
        if self.negative_prompt is not None:
            kw["negative_prompt"] = [self.negative_prompt] * len(prompts)
        return self.pipe(prompt=prompts, **kw).images


def item_seed(seed: int, row: int) -> int:
    return (seed * 1_000_003 + row) % (2**63 - 1)


def generate_images(manifest: pa.Table, out_dir: str, generator: DiffusersImageGenerator, seed: int = 0,
                    caption_column: str = "caption", progress: bool = True) -> pa.Table:
    """Draw every row's caption to OUT/images/NNNNNN.png (kept if present); writes OUT/manifest.parquet with
    `path` and `image_seed` columns added."""
    from clipcomp.progress import progress_bar

    if caption_column not in manifest.column_names:
        raise ClipcompError(f"manifest has no column {caption_column!r}; add captions first (bench genpairs "
                            "--captions template|MODEL_DIR)")
    captions = manifest.column(caption_column).to_pylist()
    os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
    paths = [os.path.join("images", f"{i:06d}.png") for i in range(len(captions))]
    todo = [i for i, p in enumerate(paths) if not os.path.exists(os.path.join(out_dir, p))]
    t0 = time.perf_counter()
    with progress_bar(len(todo), "images", enabled=progress, desc="draw") as bar:
        for s in range(0, len(todo), generator.batch_size):
            rows = todo[s:s + generator.batch_size]
            images = generator.draw([captions[i] for i in rows], [item_seed(seed, i) for i in rows])
            for i, img in zip(rows, images, strict=True):
                final = os.path.join(out_dir, paths[i])
                with atomic_output(final) as tmp:  # a file on disk is always a whole image
                    img.save(tmp, format="PNG")
            bar.update(len(rows))
    table = manifest
    for name in ("path", "image_seed"):
        if name in table.column_names:
            table = table.drop_columns([name])
    table = table.append_column("path", pa.array(paths)).append_column(
        "image_seed", pa.array([item_seed(seed, i) for i in range(len(paths))], pa.int64()))
    write_parquet(table, os.path.join(out_dir, "manifest.parquet"))
    seconds = time.perf_counter() - t0
    atomic_write_json(os.path.join(out_dir, "imagegen.json"),
                      {"model": os.path.abspath(generator.model_path), "steps": generator.steps,
                       "guidance": generator.guidance, "height": generator.height, "width": generator.width,
                       "seed": seed, "drawn": len(todo), "kept": len(paths) - len(todo), "seconds": seconds})
    return table
