"""GenPairs captions for (class, concept) pairs: seeded templates by default, or a local Hugging Face causal
language model (`transformers`) prompted as in Qu & Xie (an LLM writes one realistic caption of a photo that
contains both concepts).

The paper names its generator (Llama 3.1) but not its prompt text; DEFAULT_PROMPT follows its description.
Generated captions are checked: one that does not name both concepts is replaced by the template caption and
flagged (`caption_source = template_fallback`), so every manifest row stays a valid pair caption.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from clipcomp.errors import ClipcompError

DEFAULT_TEMPLATES = ("a photo of a {cls} and a {concept}.", "a {cls} next to a {concept}.",
                     "a picture of a {cls} with a {concept}.", "a {concept} and a {cls} in the same scene.")
DEFAULT_PROMPT = ("Write one realistic, natural caption for a photograph that clearly shows both a {cls} and a "
                  "{concept}. Mention both by name. Reply with the caption only, in one sentence.")


def _article(text: str) -> str:
    return re.sub(r"\ba ([aeiouAEIOU])", r"an \1", text)


def mentions(caption: str, word: str) -> bool:
    """Whether the caption names the concept (whole words, case-insensitive, plural -s/-es accepted)."""
    w = re.escape(word.lower())
    return re.search(rf"\b{w}(e?s)?\b", caption.lower()) is not None


class TemplateCaptioner:
    """One seeded template per pair; deterministic for (seed, row)."""

    name = "template"

    def __init__(self, templates: Sequence[str] = DEFAULT_TEMPLATES, seed: int = 0) -> None:
        for t in templates:
            if "{cls}" not in t or "{concept}" not in t:
                raise ClipcompError(f"caption template {t!r} must contain {{cls}} and {{concept}}")
        if not templates:
            raise ClipcompError("at least one caption template")
        self.templates, self.seed = list(templates), seed

    def one(self, cls: str, concept: str, row: int) -> str:
        t = self.templates[int(np.random.default_rng([self.seed, row]).integers(len(self.templates)))]
        return _article(t.format(cls=cls, concept=concept))

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> list[str]:
        return [self.one(c, k, i) for i, (c, k) in enumerate(pairs)]


class HFCaptioner:
    """A causal LM from a local directory (never the network): chat template when the tokenizer has one."""

    name = "transformers"

    def __init__(self, model_path: str, prompt: str = DEFAULT_PROMPT, max_new_tokens: int = 48,
                 temperature: float = 0.0, batch_size: int = 8, seed: int = 0, device: str = "auto") -> None:
        if "{cls}" not in prompt or "{concept}" not in prompt:
            raise ClipcompError("the caption prompt must contain {cls} and {concept}")
        if not os.path.isdir(model_path):
            raise ClipcompError(f"{model_path}: not a local model directory (save_pretrained output expected)")
        from clipcomp.models.compat import ensure_torchvision

        ensure_torchvision()  # transformers/diffusers import torchvision, whose PyPI build may not load
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError:
            raise ClipcompError("LLM captions need transformers: pip install 'clipcomp[generate]'") from None
        self.device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        try:
            self.tok = AutoTokenizer.from_pretrained(model_path, local_files_only=True)
            self.model = AutoModelForCausalLM.from_pretrained(model_path, local_files_only=True).to(self.device)
        except (OSError, ValueError) as exc:
            raise ClipcompError(f"{model_path}: cannot load a causal language model ({str(exc).splitlines()[0]})") \
                from None
        self.model.eval()
        self.tok.padding_side = "left"  # decoder-only: pad on the left so generation continues the prompt
        if self.tok.pad_token is None:
            self.tok.pad_token = self.tok.eos_token or self.tok.unk_token
        self.prompt, self.max_new_tokens, self.temperature = prompt, max_new_tokens, temperature
        self.batch_size, self.seed = batch_size, seed
        self.fallback = TemplateCaptioner(seed=seed)

    def _text(self, cls: str, concept: str) -> str:
        msg = self.prompt.format(cls=cls, concept=concept)
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template([{"role": "user", "content": msg}], tokenize=False,
                                                add_generation_prompt=True)
        return msg + "\n"

    @staticmethod
    def clean(text: str) -> str:
        line = next((s for s in text.strip().splitlines() if s.strip()), "")
        return line.strip().strip('"“”\'').strip()

    def generate(self, pairs: Sequence[tuple[str, str]], start_row: int = 0) -> list[str]:
        import torch

        out: list[str] = []
        for s in range(0, len(pairs), self.batch_size):
            part = pairs[s:s + self.batch_size]
            enc = self.tok([self._text(c, k) for c, k in part], return_tensors="pt", padding=True,
                           add_special_tokens=False).to(self.device)
            torch.manual_seed(self.seed * 1_000_003 + start_row + s)  # sampling is reproducible per batch
            kw = {"do_sample": True, "temperature": self.temperature} if self.temperature > 0 else {"do_sample": False}
            with torch.inference_mode():
                gen = self.model.generate(**enc, max_new_tokens=self.max_new_tokens, pad_token_id=self.tok.pad_token_id,
                                          **kw)
            new = gen[:, enc["input_ids"].shape[1]:]
            out += [self.clean(t) for t in self.tok.batch_decode(new, skip_special_tokens=True)]
        return out

    def __call__(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[str], list[str]]:
        raw = self.generate(pairs)
        caps, source = [], []
        for i, ((c, k), t) in enumerate(zip(pairs, raw, strict=True)):
            if t and mentions(t, c) and mentions(t, k):
                caps.append(t)
                source.append("transformers")
            else:
                caps.append(self.fallback.one(c, k, i))
                source.append("template_fallback")
        return caps, source


def add_captions(manifest: pa.Table, captioner) -> pa.Table:
    """Append `caption` and `caption_source` to a GenPairs manifest (columns class, concept)."""
    for col in ("class", "concept"):
        if col not in manifest.column_names:
            raise ClipcompError(f"manifest has no column {col!r} (columns: {', '.join(manifest.column_names)})")
    pairs = list(zip(manifest.column("class").to_pylist(), manifest.column("concept").to_pylist(), strict=True))
    res = captioner(pairs)
    caps, source = res if isinstance(res, tuple) else (res, [captioner.name] * len(res))
    for name in ("caption", "caption_source"):
        if name in manifest.column_names:
            manifest = manifest.drop_columns([name])
    return manifest.append_column("caption", pa.array(caps, pa.string())).append_column(
        "caption_source", pa.array(source, pa.string()))
