"""Models: any open_clip architecture, by pretrained tag, checkpoint file or model directory, plus small
configs that train and run on a CPU. One entry point, `load_model`, like open_clip's factory.

`--pretrained` takes:
  * nothing — random initialization (seeded), for tests and training from scratch;
  * an open_clip tag (`openai`, `laion2b_s34b_b79k`, ...) — open_clip's own download/cache path (needs the
    network or a filled cache; with HF_HUB_OFFLINE=1 it fails fast with a clear message);
  * a checkpoint file (`.pt`, `.bin`, `.safetensors`, or a clipcomp training checkpoint);
  * a directory with `open_clip_config.json` and weights (open_clip's `local-dir:` layout).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from clipcomp.errors import ClipcompError, file_sha256

SMALL_MODELS = ("clipcomp-micro", "clipcomp-tiny", "clipcomp-small", "clipcomp-micro32", "clipcomp-tiny32")
_REGISTERED = False


def import_open_clip():
    """open_clip, importable on this machine (torchvision compatibility step) and with clipcomp's configs."""
    global _REGISTERED
    from clipcomp.models.compat import ensure_torchvision

    ensure_torchvision()
    import open_clip

    if not _REGISTERED:
        for name in SMALL_MODELS:
            open_clip.add_model_config(str(resources.files("clipcomp.models").joinpath(f"configs/{name}.json")))
        _REGISTERED = True
    return open_clip


def list_models() -> list[str]:
    return import_open_clip().list_models()


def torch_has_cuda() -> bool:
    """Whether this process sees a CUDA GPU (run on each Dask worker before GPU work is sent to it)."""
    import torch

    return bool(torch.cuda.is_available())


def pick_device(device: str = "auto") -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ClipcompError(f"--device {device}: CUDA is not available on this machine")
    return device


def pick_precision(precision: str, device: str) -> str:
    if precision == "auto":
        return "amp" if device.startswith("cuda") else "fp32"
    if precision not in ("fp32", "amp", "amp_bf16", "fp16", "bf16"):
        raise ClipcompError(f"unknown --precision {precision!r} (expected auto, fp32, amp, amp_bf16, fp16, bf16)")
    return precision


@dataclass
class LoadedModel:
    """A model with everything needed to embed: preprocess, tokenizer, device, precision, identity."""

    model: Any
    preprocess: Any
    tokenizer: Any
    name: str
    pretrained: str | None
    device: str
    precision: str
    identity: str  # hash of what determines the embeddings: weights source, architecture, preprocessing
    info: dict = field(default_factory=dict)

    def autocast(self):
        import contextlib

        import torch

        if self.precision in ("amp", "amp_bf16") and self.device.startswith("cuda"):
            dtype = torch.bfloat16 if self.precision == "amp_bf16" else torch.float16
            return torch.autocast("cuda", dtype=dtype)
        return contextlib.nullcontext()

    @property
    def input_dtype(self):
        import torch

        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision, torch.float32)


def _hub_reachable(timeout: float = 3.0) -> bool:
    import socket

    host = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("://")[-1].split("/")[0]
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _go_offline_if_unreachable():
    """Put huggingface_hub in offline mode for one load when the hub cannot be reached, so a missing tag fails in
    seconds (from the cache or not at all) instead of retrying for over a minute. Returns what to restore."""
    try:
        import huggingface_hub.constants as hc
    except ImportError:
        return None
    old = (os.environ.get("HF_HUB_OFFLINE"), hc.HF_HUB_OFFLINE)
    if hc.HF_HUB_OFFLINE or os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        hc.HF_HUB_OFFLINE = True
        return old
    if not _hub_reachable():
        os.environ["HF_HUB_OFFLINE"] = "1"
        hc.HF_HUB_OFFLINE = True
    return old


def _restore_online(old) -> None:
    import huggingface_hub.constants as hc

    env, const = old
    if env is None:
        os.environ.pop("HF_HUB_OFFLINE", None)
    else:
        os.environ["HF_HUB_OFFLINE"] = env
    hc.HF_HUB_OFFLINE = const


def _state_digest(model) -> str:
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _close_matches(name: str, names: list[str]) -> str:
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    if not close:
        close = [n for n in names if name.lower().split("-")[0] in n.lower()][:5]
    return f" (close matches: {', '.join(close)})" if close else ""


def _load_training_checkpoint(model, path: str) -> bool:
    """clipcomp/open_clip training checkpoints keep weights under 'state_dict'; returns True if handled."""
    import torch

    if not path.endswith((".pt", ".pth", ".ckpt")):
        return False
    obj = torch.load(path, map_location="cpu", weights_only=False)
    if isinstance(obj, dict) and "state_dict" in obj:
        sd = obj["state_dict"]
        sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}
        model.load_state_dict(sd)
        return True
    return False


def checkpoint_model_name(path: str | None) -> str | None:
    """The architecture recorded in a clipcomp training checkpoint (None for anything else)."""
    if not path or not os.path.isfile(path) or not path.endswith((".pt", ".pth", ".ckpt")):
        return None
    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 - not a torch checkpoint: the caller reports it when loading
        return None
    return obj.get("model") if isinstance(obj, dict) else None


@dataclass
class ModelSpec:
    """Which model to run and how: the one way a model is named across evaluation, embedding and suites."""

    model: str | None = "clipcomp-tiny"
    pretrained: str | None = None
    device: str = "auto"
    precision: str = "auto"
    batch_size: int = 64
    loader_workers: int | None = None
    cache_dir: str | None = "default"
    seed: int = 0



def load_model(
    name: str | None = "clipcomp-tiny",
    pretrained: str | None = None,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    cache_dir: str | None = None,
) -> LoadedModel:
    """Create an open_clip model in eval mode on the chosen device."""
    open_clip = import_open_clip()
    import torch

    dev = pick_device(device)
    prec = pick_precision(precision, dev)
    if name is None and pretrained and not os.path.isdir(pretrained):
        name = checkpoint_model_name(pretrained) or "clipcomp-tiny"
    model_name = name
    source: dict[str, Any] = {"model": name, "pretrained": pretrained}
    kwargs: dict[str, Any] = {"precision": prec if prec in ("fp16", "bf16", "fp32") else "fp32", "device": dev}
    if pretrained and os.path.isdir(pretrained):
        cfg = os.path.join(pretrained, "open_clip_config.json")
        if not os.path.exists(cfg):
            raise ClipcompError(f"{pretrained}: model directory has no open_clip_config.json")
        model_name = f"local-dir:{pretrained}"
        with open(cfg, encoding="utf-8") as f:
            source["config"] = json.load(f)
        source["weights_sha256"] = sorted(file_sha256(os.path.join(pretrained, w)) for w in os.listdir(pretrained)
                                          if w.endswith((".bin", ".safetensors", ".pt")))
        pre = None
    elif pretrained and (os.path.isfile(pretrained) or os.sep in pretrained or pretrained.endswith(
            (".pt", ".pth", ".bin", ".safetensors", ".ckpt"))):
        if not os.path.isfile(pretrained):
            raise ClipcompError(f"{pretrained}: checkpoint file not found")
        source["weights_sha256"] = file_sha256(pretrained)
        pre = pretrained
    else:
        pre = pretrained
    if not model_name:
        raise ClipcompError("--model is required unless --pretrained is a model directory")
    if not model_name.startswith("local-dir:") and model_name not in open_clip.list_models():
        raise ClipcompError(f"unknown model {model_name!r}{_close_matches(model_name, open_clip.list_models())}; "
                            "see `clipcomp models`")
    if pre and not os.path.isfile(pre) and not model_name.startswith("local-dir:"):
        tags = [t for m, t in open_clip.list_pretrained() if m == model_name]
        if pre not in tags:
            hint = f" (tags for {model_name}: {', '.join(tags)})" if tags else f" ({model_name} has no tags)"
            raise ClipcompError(f"unknown pretrained tag {pre!r}{hint}; or pass a checkpoint path")
    torch.manual_seed(seed)
    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # open_clip logs "initialized randomly" and download errors on the root logger
    offline_was = _go_offline_if_unreachable() if pre and not os.path.isfile(pre) and \
        not model_name.startswith("local-dir:") else None
    try:
        if pre and os.path.isfile(pre):
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None, **kwargs)
            if not _load_training_checkpoint(model, pre):
                open_clip.load_checkpoint(model, pre)
        else:
            model, _, preprocess = open_clip.create_model_and_transforms(
                model_name, pretrained=pre, cache_dir=cache_dir, **kwargs)
    except Exception as exc:  # noqa: BLE001 - torch/open_clip/hub raise many types for unloadable weights
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if pre and not os.path.exists(pre):
            raise ClipcompError(
                f"cannot load pretrained weights {model_name}/{pre}: not in the local cache and the model hub is "
                "unreachable or offline mode is set (download once with network access, or pass a local "
                "checkpoint path)") from None
        where = pretrained or model_name
        raise ClipcompError(f"{where}: cannot load as weights for {model_name} ({type(exc).__name__}: "
                            f"{msg[:200]})") from None
    finally:
        quiet.setLevel(level)
        if offline_was is not None:
            _restore_online(offline_was)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    if pre is None and "weights_sha256" not in source:
        source["weights_sha256"] = _state_digest(model)
    elif pre and not os.path.isfile(pre):
        source["tag"] = pre
    source["precision"] = prec
    source["preprocess"] = repr(preprocess)
    identity = hashlib.sha256(json.dumps(source, sort_keys=True, default=str).encode()).hexdigest()[:24]
    info = {"embed_dim": _embed_dim(model), "image_size": _image_size(model)}
    return LoadedModel(model, preprocess, tokenizer, name or model_name, pretrained, dev, prec, identity, info)


def _embed_dim(model) -> int | None:
    proj = getattr(model, "text_projection", None)
    if proj is not None and hasattr(proj, "shape"):
        return int(proj.shape[-1])
    return None


def _image_size(model) -> int | None:
    size = getattr(getattr(model, "visual", None), "image_size", None)
    if isinstance(size, (tuple, list)):
        return int(size[0])
    return int(size) if size else None


def save_model_dir(loaded: LoadedModel, path: str, config_name: str | None = None) -> str:
    """Write a model as an open_clip `local-dir:` directory (config + safetensors-free .bin weights)."""
    open_clip = import_open_clip()
    import torch

    os.makedirs(path, exist_ok=True)
    cfg = open_clip.get_model_config(config_name or loaded.name)
    if cfg is None:
        raise ClipcompError(f"no open_clip config for {config_name or loaded.name}")
    with open(os.path.join(path, "open_clip_config.json"), "w", encoding="utf-8") as f:
        json.dump({"model_cfg": cfg, "preprocess_cfg": {}}, f, indent=2)
    torch.save(loaded.model.state_dict(), os.path.join(path, "open_clip_pytorch_model.bin"))
    return path
