"""Large multimodal models (LLaVA-style image-text-to-text) from local weights, for the VQA half of Qu & Xie.

`load_lmm(DIR)` reads a transformers model directory (config.json with a vision config, processor files,
weights) with `local_files_only` — a hub tag fails fast offline, naming what to do. `LMM.answer(images,
questions)` runs one greedy, batched generation with LLaVA-1.5's short-answer VQA prompt ("Answer the question
using a single word or phrase.", LLaVA's eval/model_vqa_loader.py for VQAv2/TextVQA) inside the model's own chat
template when its processor has one, else LLaVA-1.5's "USER: <image>\\n… ASSISTANT:" format.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from clipcomp.errors import ClipcompError

SHORT_ANSWER = "Answer the question using a single word or phrase."


def check_model_dir(path: str) -> dict:
    """The model's config.json, or one line saying why DIR is not a local LMM."""
    if not os.path.isdir(path):
        raise ClipcompError(f"--model {path}: not a local model directory (LMMs load from local files only; "
                            "download one first, e.g. `hf download llava-hf/llava-1.5-7b-hf --local-dir DIR`)")
    cfg_path = os.path.join(path, "config.json")
    if not os.path.exists(cfg_path):
        raise ClipcompError(f"--model {path}: no config.json (expected a transformers image-text-to-text model "
                            "directory: config.json, processor/tokenizer files, weights)")
    try:
        with open(cfg_path, encoding="utf-8") as f:
            cfg = json.load(f)
    except (OSError, ValueError) as exc:
        raise ClipcompError(f"{cfg_path}: unreadable ({exc})") from None
    if "vision_config" not in cfg or "text_config" not in cfg:
        raise ClipcompError(f"--model {path}: config.json describes a {cfg.get('model_type', 'model')!r} without a "
                            "vision and a text config — not an LMM (LLaVA-style image-text-to-text)")
    return cfg


@dataclass
class LMM:
    model: object
    processor: object
    device: str
    template: bool

    def prompt(self, question: str) -> str:
        text = f"{question.strip()}\n{SHORT_ANSWER}"
        if self.template:
            conv = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]
            return self.processor.apply_chat_template(conv, add_generation_prompt=True)
        return f"USER: <image>\n{text} ASSISTANT:"

    def answer(self, images: list, questions: list[str], max_new_tokens: int = 16) -> list[str]:
        import torch

        batch = self.processor(images=images, text=[self.prompt(q) for q in questions], return_tensors="pt",
                               padding=True).to(self.device)
        with torch.no_grad():
            out = self.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
        new = out[:, batch["input_ids"].shape[1]:]
        return [t.strip() for t in self.processor.batch_decode(new, skip_special_tokens=True)]


def load_lmm(path: str, device: str = "auto") -> LMM:
    check_model_dir(path)
    from clipcomp.models.compat import ensure_torchvision

    ensure_torchvision()  # transformers' image processors import torchvision
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
    try:
        processor = AutoProcessor.from_pretrained(path, local_files_only=True)
        model = AutoModelForImageTextToText.from_pretrained(path, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ClipcompError(f"--model {path}: cannot load an image-text-to-text model and its processor "
                            f"({str(exc).splitlines()[0]})") from None
    model.to(dev).eval()
    processor.tokenizer.padding_side = "left"  # generation continues every prompt from its last token
    return LMM(model, processor, dev, bool(getattr(processor, "chat_template", None)))
