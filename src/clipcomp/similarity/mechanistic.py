"""Mechanistic similarity between domains (Kempf et al., 2025): per-layer representations of each class in each
domain, compared with CKA, and the units that carry each domain's class evidence, compared with Jaccard.

* Activations: forward hooks on named layers of any open_clip image tower (ViT residual blocks — the class token —
  and ResNet stages — the spatial mean), streamed as per-(domain, class) sums, so memory is O(layers × domains ×
  classes × width), never the full activations.
* CKA (Kornblith et al., 2019) between two domains' per-class mean representations (rows = classes):
  linear CKA, biased (HSIC of centred Gram matrices) or unbiased (the U-statistic HSIC of Song et al., 2012,
  as used by Nguyen et al., 2021); RBF CKA with bandwidth = `sigma_frac` × the median pairwise distance.
* Shared units, as the paper measures them (default, `units="per-class"`): per (domain, class), each unit's node
  effect — integrated gradients of the true class's zero-shot logit along the straight path from the layer's
  activation to zero (10 steps), summed over tokens, averaged over the class's images
  (understanding-clip-ood xclip/feature_circuits/attribution.py l.22-92, circuit.py l.61-69,
  scripts/compute_circuits.py l.262-317); the top ceil(10 %) units by |effect|; Jaccard between two domains per
  class, then the mean over classes (scripts/compute_node_similarity.py l.165-183, 199-205).
* Option `units="pooled"` (clipcomp ≤ 0.3): Captum's LayerIntegratedGradients (input-space zero baseline), mean
  |attribution| over a domain's images pooled over classes, top `top_frac` per domain.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from clipcomp.errors import ClipcompError


# ------------------------------------------------------------------------------------------------ layers
def list_layers(model) -> list[str]:
    """Named layers of the image tower that activations can be captured from (in forward order)."""
    visual = model.visual if hasattr(model, "visual") else model
    names = []
    blocks = getattr(getattr(visual, "transformer", None), "resblocks", None)
    if blocks is not None:
        names += [f"visual.transformer.resblocks.{i}" for i in range(len(blocks))]
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        if hasattr(visual, stage):
            names.append(f"visual.{stage}")
    if hasattr(visual, "trunk"):  # timm towers
        names += [f"visual.trunk.{n}" for n, _ in visual.trunk.named_children()]
    return names


def get_layer(model, name: str):
    modules = dict(model.named_modules())
    if name not in modules:
        avail = list_layers(model)
        raise ClipcompError(f"--layers {name!r}: the model has no such layer (layers: {', '.join(avail)})")
    return modules[name]


def _pool(out):
    """(N, L, D) token sequences → the class token; (N, C, H, W) feature maps → spatial mean; (N, D) as is."""
    if isinstance(out, tuple):
        out = out[0]
    if out.ndim == 3:
        return out[:, 0, :]
    if out.ndim == 4:
        return out.mean(dim=(2, 3))
    return out


class ClassMeans:
    """Streaming per-(domain, class) sums of pooled activations for several layers."""

    def __init__(self, layers: Sequence[str], domains: Sequence[str], classes: Sequence[str]) -> None:
        self.layers, self.domains, self.classes = list(layers), list(domains), list(classes)
        self.sums: dict[str, np.ndarray] = {}
        self.counts = np.zeros((len(self.domains), len(self.classes)), np.int64)

    def add(self, layer: str, feats: np.ndarray, d: np.ndarray, c: np.ndarray) -> None:
        if layer not in self.sums:
            self.sums[layer] = np.zeros((len(self.domains), len(self.classes), feats.shape[1]), np.float64)
        np.add.at(self.sums[layer], (d, c), feats.astype(np.float64))

    def means(self, layer: str, domain: str) -> np.ndarray:
        """(classes, width); classes without images in this domain are NaN rows."""
        di = self.domains.index(domain)
        n = self.counts[di][:, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.sums[layer][di] / n


def capture_class_means(model, images: Callable[[np.ndarray], object], n_items: int, domain_idx: np.ndarray,
                        class_idx: np.ndarray, layers: Sequence[str], domains: Sequence[str],
                        classes: Sequence[str], batch_size: int = 64, device: str = "cpu") -> ClassMeans:
    """Run the image tower over all items (`images(rows)` → preprocessed batch) with hooks on `layers`."""
    import torch

    acc = ClassMeans(layers, domains, classes)
    captured: dict[str, np.ndarray] = {}
    handles = []
    for name in layers:
        def hook(_m, _i, out, name=name):
            captured[name] = _pool(out).detach().float().cpu().numpy()

        handles.append(get_layer(model, name).register_forward_hook(hook))
    try:
        model.eval()
        with torch.inference_mode():
            for s in range(0, n_items, batch_size):
                rows = np.arange(s, min(n_items, s + batch_size))
                model.encode_image(images(rows).to(device))
                d, c = domain_idx[rows], class_idx[rows]
                np.add.at(acc.counts, (d, c), 1)
                for name in layers:
                    acc.add(name, captured[name], d, c)
    finally:
        for h in handles:
            h.remove()
    return acc


# ------------------------------------------------------------------------------------------------ CKA
def _centre_gram(k: np.ndarray) -> np.ndarray:
    n = k.shape[0]
    h = np.eye(n) - 1.0 / n
    return h @ k @ h


def hsic_unbiased(k: np.ndarray, l: np.ndarray) -> float:  # noqa: E741 - the literature's name
    """Song et al. (2012) unbiased HSIC estimator (n ≥ 4)."""
    n = k.shape[0]
    if n < 4:
        raise ClipcompError(f"unbiased CKA needs at least 4 rows (classes), got {n}")
    k, l = k.copy(), l.copy()  # noqa: E741
    np.fill_diagonal(k, 0)
    np.fill_diagonal(l, 0)
    one = np.ones(n)
    term = np.trace(k @ l) + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2)) \
        - 2.0 / (n - 2) * (one @ k @ l @ one)
    return float(term / (n * (n - 3)))


def _cka_from_grams(k: np.ndarray, l: np.ndarray, unbiased: bool) -> float:  # noqa: E741
    if unbiased:
        xy, xx, yy = hsic_unbiased(k, l), hsic_unbiased(k, k), hsic_unbiased(l, l)
    else:
        kc, lc = _centre_gram(k), _centre_gram(l)
        xy, xx, yy = float((kc * lc).sum()), float((kc * kc).sum()), float((lc * lc).sum())
    if xx <= 0 or yy <= 0:
        return float("nan")
    return float(xy / np.sqrt(xx * yy))


def linear_cka(x: np.ndarray, y: np.ndarray, unbiased: bool = False) -> float:
    """Linear CKA between two representations of the same rows (n × p, n × q)."""
    x, y = _check_pair(x, y)
    return _cka_from_grams(x @ x.T, y @ y.T, unbiased)


def rbf_gram(x: np.ndarray, sigma_frac: float = 1.0) -> np.ndarray:
    sq = np.sum(x * x, axis=1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * x @ x.T, 0)
    off = d2[~np.eye(len(x), dtype=bool)]
    med = np.median(np.sqrt(off)) if off.size else 0.0
    sigma = sigma_frac * med if med > 0 else 1.0
    return np.exp(-d2 / (2 * sigma * sigma))


def rbf_cka(x: np.ndarray, y: np.ndarray, sigma_frac: float = 1.0, unbiased: bool = False) -> float:
    x, y = _check_pair(x, y)
    return _cka_from_grams(rbf_gram(x, sigma_frac), rbf_gram(y, sigma_frac), unbiased)


def _check_pair(x, y) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ClipcompError(f"CKA needs two matrices with the same rows, got {x.shape} and {y.shape}")
    return x, y


def domain_cka(means: ClassMeans, kind: str = "linear", unbiased: bool = True) -> dict[str, np.ndarray]:
    """Per layer: domains × domains CKA of per-class mean representations (classes present in both)."""
    out = {}
    nd = len(means.domains)
    for layer in means.layers:
        m = np.full((nd, nd), np.nan)
        for i in range(nd):
            for j in range(nd):
                a, b = means.means(layer, means.domains[i]), means.means(layer, means.domains[j])
                ok = np.isfinite(a).all(axis=1) & np.isfinite(b).all(axis=1)
                if ok.sum() < (4 if unbiased else 2):
                    continue
                f = linear_cka if kind == "linear" else rbf_cka
                m[i, j] = f(a[ok], b[ok], unbiased=unbiased)
        out[layer] = m
    return out


# ------------------------------------------------------------------------------------------------ units
def unit_attributions(forward: Callable, layer, inputs, targets, n_steps: int = 16,
                      batch_size: int = 32) -> np.ndarray:
    """Mean |integrated gradients| per unit of `layer` over `inputs` for the `targets` outputs (N,) of
    `forward(inputs) -> (N, classes)`; token axes are summed (ViT) and spatial axes too (conv)."""
    import torch
    from captum.attr import LayerIntegratedGradients

    lig = LayerIntegratedGradients(forward, layer)
    total, n = None, 0
    for s in range(0, len(inputs), batch_size):
        x = inputs[s:s + batch_size]
        t = torch.as_tensor(targets[s:s + batch_size])
        attr = lig.attribute(x, baselines=torch.zeros_like(x), target=t, n_steps=n_steps)
        if isinstance(attr, tuple):
            attr = attr[0]
        a = attr.detach().float()
        if a.ndim == 3:
            a = a.sum(dim=1)
        elif a.ndim == 4:
            a = a.sum(dim=(2, 3))
        a = a.abs().sum(dim=0).cpu().numpy().astype(np.float64)
        total = a if total is None else total + a
        n += len(x)
    return total / max(n, 1)


def node_effects(forward: Callable, layer, inputs, targets, n_steps: int = 10, batch_size: int = 64,
                 per_item: bool = False) -> np.ndarray:
    """Kempf et al.'s node effect per unit of `layer`, averaged (signed) over `inputs`: with the layer's output a
    replaced by (1 − α)·a for α = 0, 1/n, …, (n−1)/n, the mean gradient of the target logit times (0 − a), summed
    over token / spatial axes (attribution.py l.64-92: patch = None → a zero patch). Captum's layer IG cannot take
    a baseline in activation space, hence the hook. `per_item`: the (N, units) effects, not their mean (one
    batched pass for many classes; the mean of a class's rows is the class's effect)."""
    import torch

    if n_steps < 1:
        raise ClipcompError(f"--n-steps must be ≥ 1 (got {n_steps})")
    total, n, items = None, 0, []
    state: dict = {}

    def hook(_m, _i, out):
        if "replace" in state:
            rep = state["replace"]
            return (rep, *out[1:]) if isinstance(out, tuple) else rep
        state["clean"] = (out[0] if isinstance(out, tuple) else out).detach()
        return None

    handle = layer.register_forward_hook(hook)
    try:
        for s in range(0, len(inputs), batch_size):
            x = inputs[s:s + batch_size]
            t = torch.as_tensor(np.asarray(targets[s:s + batch_size]), dtype=torch.long).view(-1, 1)
            state.clear()
            with torch.no_grad():
                forward(x)
            clean = state.pop("clean")
            grad = torch.zeros_like(clean)
            for step in range(n_steps):
                f = ((1 - step / n_steps) * clean).requires_grad_(True)
                state["replace"] = f
                metric = forward(x).gather(1, t).sum()
                grad += torch.autograd.grad(metric, f)[0]
            state.pop("replace", None)
            effect = (grad / n_steps) * (-clean)
            if effect.ndim == 3:  # (N, tokens, D)
                effect = effect.sum(dim=1)
            elif effect.ndim == 4:  # (N, C, H, W)
                effect = effect.sum(dim=(2, 3))
            if per_item:
                items.append(effect.double().cpu().numpy())
                continue
            e = effect.double().sum(dim=0).cpu().numpy()
            total = e if total is None else total + e
            n += len(x)
    finally:
        handle.remove()
    if per_item:
        return np.concatenate(items) if items else np.zeros((0, 0))
    return total / max(n, 1)


def top_units_ceil(effect: np.ndarray, top_frac: float = 0.1) -> set[int]:
    """The ceil(top_frac × units) units of largest |effect| (compute_node_similarity.py l.170-173; ties by
    index)."""
    if not 0 < top_frac <= 1:
        raise ClipcompError(f"--top must be in (0, 1] (got {top_frac})")
    k = math.ceil(effect.size * top_frac)
    order = np.lexsort((np.arange(effect.size), -np.abs(effect)))
    return {int(i) for i in order[:k]}


def class_shared_units(effects: dict[str, dict[str, np.ndarray]], top_frac: float = 0.1
                       ) -> tuple[list[str], np.ndarray, dict[str, np.ndarray]]:
    """effects[domain][class] → (domains, domains × domains mean-over-classes Jaccard, per-class matrices).
    A pair of domains is averaged over the classes present in both (compute_node_similarity.py l.152-205)."""
    names = list(effects)
    tops = {d: {c: top_units_ceil(v, top_frac) for c, v in effects[d].items()} for d in names}
    classes = sorted({c for d in names for c in effects[d]})
    per_class = {c: np.full((len(names), len(names)), np.nan) for c in classes}
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            for c in classes:
                if c in tops[a] and c in tops[b]:
                    per_class[c][i, j] = jaccard(tops[a][c], tops[b][c])
    stack = np.stack([per_class[c] for c in classes]) if classes else np.zeros((0, len(names), len(names)))
    with np.errstate(invalid="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = np.nanmean(stack, axis=0) if classes else np.full((len(names), len(names)), np.nan)
    return names, mean, per_class


def top_units(scores: np.ndarray, top_frac: float) -> set[int]:
    """Indices of the top `top_frac` share of units (at least one), ties broken by index."""
    if not 0 < top_frac <= 1:
        raise ClipcompError(f"--top must be in (0, 1] (got {top_frac})")
    k = max(1, int(round(top_frac * scores.size)))
    order = np.lexsort((np.arange(scores.size), -scores))
    return {int(i) for i in order[:k]}


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else float("nan")


def shared_units(scores_by_domain: dict[str, np.ndarray], top_frac: float) -> tuple[list[str], np.ndarray]:
    """Domains and their pairwise Jaccard overlap of top units."""
    names = list(scores_by_domain)
    tops = {d: top_units(scores_by_domain[d], top_frac) for d in names}
    m = np.array([[jaccard(tops[a], tops[b]) for b in names] for a in names])
    return names, m


# ------------------------------------------------------------------------------------------------ report
UNIT_MODES = ("per-class", "pooled")


def mech_report(manifest: str, out: str, model: str | None = "clipcomp-tiny", pretrained: str | None = None,
                layers: Sequence[str] | None = None, top_frac: float | None = None, attr_per_domain: int = 32,
                n_steps: int | None = None, batch_size: int = 64, templates: Sequence[str] = ("a {c}",),
                image_column: str = "image", class_column: str = "class", domain_column: str = "domain",
                device: str = "auto", seed: int = 0, force: bool = False, units: str = "per-class",
                attr_per_class: int = 16, progress: bool = True) -> dict:
    """CKA between domains (per layer) and shared top-attribution units, for one model on a domain-labelled
    manifest; writes OUT/mech.json, OUT/cka_<layer>.png heat maps and OUT/report.md. `units="per-class"` (the
    paper's measure; top 10 %, 10 IG steps, `attr_per_class` images per (domain, class)) or `"pooled"` (top 5 %,
    16 steps, `attr_per_domain` images per domain)."""
    if units not in UNIT_MODES:
        raise ClipcompError(f"--units {units!r}: expected one of {', '.join(UNIT_MODES)}")
    per_class = units == "per-class"
    top_frac = top_frac if top_frac is not None else (0.1 if per_class else 0.05)
    n_steps = n_steps if n_steps is not None else (10 if per_class else 16)
    if not 0 < top_frac <= 1:
        raise ClipcompError(f"--top must be in (0, 1] (got {top_frac})")
    import os

    import torch
    from PIL import Image

    from clipcomp.datasets.mixtures import read_domain_manifest
    from clipcomp.io import atomic_write_json, atomic_write_text, prepare_output
    from clipcomp.models import load_model
    from clipcomp.models.embed import Embedder
    from clipcomp.tasks.zeroshot import zero_shot_classifier

    table = read_domain_manifest(manifest, image_column, class_column, domain_column)
    root = os.path.dirname(os.path.abspath(manifest))
    paths = [p if os.path.isabs(str(p)) else os.path.join(root, str(p)) for p in table.column(image_column).to_pylist()]
    cls = [str(c) for c in table.column(class_column).to_pylist()]
    dom = [str(d) for d in table.column(domain_column).to_pylist()]
    classes, domains = sorted(set(cls)), sorted(set(dom))
    if len(domains) < 2:
        raise ClipcompError(f"{manifest}: needs at least two domains (found {', '.join(domains)})")
    if len(classes) < 4:
        raise ClipcompError(f"{manifest}: {len(classes)} class(es); the unbiased CKA of per-class means needs at "
                            "least 4 classes (with 2, any two representations give CKA 1)")
    lm = load_model(model, pretrained, device=device, seed=seed)
    all_layers = list_layers(lm.model)
    layers = list(layers) if layers else all_layers
    for name in layers:
        get_layer(lm.model, name)
    prepare_output(out, "mech report", {"manifest": os.path.abspath(manifest), "model_identity": lm.identity,
                                        "layers": layers, "top_frac": top_frac, "attr_per_domain": attr_per_domain,
                                        "n_steps": n_steps, "templates": list(templates), "seed": seed,
                                        "units": units, "attr_per_class": attr_per_class},
                   force=force, markers=("mech.json",))
    c_idx = np.array([classes.index(c) for c in cls])
    d_idx = np.array([domains.index(d) for d in dom])

    def load(rows):
        return torch.stack([lm.preprocess(Image.open(paths[i]).convert("RGB")) for i in rows])

    means = capture_class_means(lm.model, load, len(paths), d_idx, c_idx, layers, domains, classes, batch_size,
                                lm.device)
    cka_lin = domain_cka(means, "linear", unbiased=len(classes) >= 4)
    cka_rbf = domain_cka(means, "rbf", unbiased=False)
    weights = torch.from_numpy(zero_shot_classifier(Embedder(lm, cache_dir=None, progress=False), classes,
                                                    list(templates))).float().to(lm.device)

    def forward(x):
        f = lm.model.encode_image(x)
        return torch.nn.functional.normalize(f, dim=-1) @ weights.T

    rng = np.random.default_rng([seed, 5_151])
    shared: dict[str, dict] = {}
    from clipcomp.progress import progress_bar

    with progress_bar(len(layers), "layers", enabled=progress, desc="attributions") as bar:
        for name in layers:
            shared[name] = _layer_units(lm, forward, name, per_class, domains, classes, d_idx, c_idx, load, rng,
                                        attr_per_class, attr_per_domain, n_steps, batch_size, top_frac)
            bar.update(1)
    result = {"model": lm.name, "pretrained": pretrained, "layers": layers, "domains": domains, "classes": classes,
              "cka_linear": {k: v.tolist() for k, v in cka_lin.items()},
              "cka_rbf": {k: v.tolist() for k, v in cka_rbf.items()}, "shared_units": shared, "top_frac": top_frac,
              "units": units}
    atomic_write_json(os.path.join(out, "mech.json"), result)
    _plot_heatmaps(result, out)
    atomic_write_text(os.path.join(out, "report.md"), _markdown(result))
    return result


def _layer_units(lm, forward, name, per_class, domains, classes, d_idx, c_idx, load, rng, attr_per_class,
                 attr_per_domain, n_steps, batch_size, top_frac) -> dict:
    """One layer's shared top-attribution units (per class, the paper's measure, or pooled per domain)."""
    layer = get_layer(lm.model, name)
    if per_class:
        effects: dict[str, dict[str, np.ndarray]] = {}
        for di, d in enumerate(domains):
            effects[d] = {}
            for ci, c in enumerate(classes):
                rows = np.flatnonzero((d_idx == di) & (c_idx == ci))
                if rows.size:
                    rows = np.sort(rng.permutation(rows)[:attr_per_class])
                    effects[d][c] = node_effects(forward, layer, load(rows).to(lm.device), c_idx[rows], n_steps,
                                                 batch_size)
        names, jac, by_class = class_shared_units(effects, top_frac)
        n_units = int(next(iter(effects[domains[0]].values())).size)
        return {"domains": names, "jaccard": jac.tolist(), "n_units": n_units,
                "per_class": {c: m.tolist() for c, m in by_class.items()}}
    scores = {}
    for di, d in enumerate(domains):
        rows = np.flatnonzero(d_idx == di)
        rows = np.sort(rng.permutation(rows)[:attr_per_domain])
        scores[d] = unit_attributions(forward, layer, load(rows).to(lm.device), c_idx[rows], n_steps, batch_size)
    names, jac = shared_units(scores, top_frac)
    return {"domains": names, "jaccard": jac.tolist(), "n_units": int(next(iter(scores.values())).size)}


def arrays_mechanics(lm, images_by_domain: dict[str, tuple[np.ndarray, np.ndarray]], classes: Sequence[str],
                     templates: Sequence[str], layers: Sequence[str] | None = None, attr_per_class: int = 8,
                     n_steps: int = 10, top_frac: float = 0.1, seed: int = 0, batch_size: int = 64) -> dict:
    """`mech_report`'s two measures for in-memory images ({domain: (uint8 N×H×W×3, labels)}) and a loaded model:
    per layer, unbiased linear CKA of per-class means between domains and the per-class shared units (mean
    Jaccard of top ceil(10 %) node-effect units). Returns {layers, domains, cka, units, units_per_class}."""
    import torch
    from PIL import Image

    from clipcomp.models.embed import Embedder
    from clipcomp.tasks.zeroshot import zero_shot_classifier

    domains = list(images_by_domain)
    layers = list(layers) if layers else list_layers(lm.model)
    imgs = np.concatenate([images_by_domain[d][0] for d in domains])
    c_idx = np.concatenate([np.asarray(images_by_domain[d][1], np.int64) for d in domains])
    d_idx = np.concatenate([np.full(len(images_by_domain[d][1]), i) for i, d in enumerate(domains)])

    def load(rows):
        return torch.stack([lm.preprocess(Image.fromarray(imgs[i])) for i in rows]).to(lm.device)

    means = capture_class_means(lm.model, load, len(imgs), d_idx, c_idx, layers, domains, list(classes),
                                batch_size, lm.device)
    cka = domain_cka(means, "linear", unbiased=len(classes) >= 4)
    weights = torch.from_numpy(zero_shot_classifier(Embedder(lm, cache_dir=None, progress=False), list(classes),
                                                    list(templates))).float().to(lm.device)

    def forward(x):
        return torch.nn.functional.normalize(lm.model.encode_image(x), dim=-1) @ weights.T

    rng = np.random.default_rng([seed, 5_152])
    picks = {}
    for di, d in enumerate(domains):
        for ci, c in enumerate(classes):
            rows = np.flatnonzero((d_idx == di) & (c_idx == ci))
            if rows.size:
                picks[(d, c)] = np.sort(rng.permutation(rows)[:attr_per_class])
    units, per_class = {}, {}
    lm.model.eval()
    keys = list(picks)
    all_rows = np.concatenate([picks[k] for k in keys])
    bounds = np.cumsum([0] + [picks[k].size for k in keys])
    for name in layers:
        layer = get_layer(lm.model, name)
        item_effects = node_effects(forward, layer, load(all_rows), c_idx[all_rows], n_steps, batch_size,
                                    per_item=True)
        effects: dict[str, dict[str, np.ndarray]] = {d: {} for d in domains}
        for (d, c), a, b in zip(keys, bounds[:-1], bounds[1:], strict=True):
            effects[d][c] = item_effects[a:b].mean(axis=0)
        _, m, by_class = class_shared_units(effects, top_frac)
        units[name], per_class[name] = m.tolist(), {c: v.tolist() for c, v in by_class.items()}
    return {"layers": layers, "domains": domains, "cka": {k: v.tolist() for k, v in cka.items()}, "units": units,
            "units_per_class": per_class, "top_frac": top_frac, "attr_per_class": attr_per_class,
            "n_steps": n_steps}


def domain_similarity(result: dict, reference: str) -> dict[str, float]:
    """Per domain: mean over layers of linear CKA and of unit Jaccard with the reference (natural) domain."""
    doms = result["domains"]
    r = doms.index(reference)
    out = {}
    for i, d in enumerate(doms):
        if d == reference:
            continue
        ck = [m[r][i] for m in result["cka_linear"].values() if m[r][i] == m[r][i]]
        jc = [u["jaccard"][r][i] for u in result["shared_units"].values()]
        out[d] = {"cka": float(np.mean(ck)) if ck else float("nan"), "jaccard": float(np.mean(jc))}
    return out


def _plot_heatmaps(result: dict, out: str) -> None:
    import os

    from clipcomp.io import new_figure, save_figure

    doms = result["domains"]
    for kind, key in (("cka", "cka_linear"), ("units", "shared_units")):
        layers = result["layers"]
        fig, axes = new_figure(1, len(layers), figsize=(2.6 * len(layers) + 1.6, 2.8), dpi=120, squeeze=False,
                               layout="constrained")
        im = None
        for ax, layer in zip(axes[0], layers, strict=True):
            m = np.array(result[key][layer]["jaccard"] if kind == "units" else result[key][layer], float)
            im = ax.imshow(m, vmin=0, vmax=1, cmap="viridis")
            ax.set_xticks(range(len(doms)), doms, rotation=60, fontsize=6)
            ax.set_yticks(range(len(doms)), doms, fontsize=6)
            parts = layer.split(".")
            ax.set_title(".".join(parts[-2:]) if len(parts) > 1 else layer, fontsize=7)  # e.g. resblocks.3
        if im is not None:
            fig.colorbar(im, ax=list(axes[0]), shrink=0.8, label="CKA" if kind == "cka" else "Jaccard")
        fig.suptitle("linear CKA of per-class means" if kind == "cka" else
                     f"Jaccard of top-{result['top_frac']:.0%} attribution units"
                     + (" (per class, mean)" if result.get("units") == "per-class" else ""), fontsize=8)
        save_figure(fig, os.path.join(out, f"{kind}.png"))


def _markdown(result: dict) -> str:
    doms = result["domains"]
    lines = [f"# Mechanistic similarity between domains — {result['model']}", "",
             f"Domains: {', '.join(doms)}; classes: {len(result['classes'])}; layers: {len(result['layers'])}.", "",
             "![CKA](cka.png)", "", "![shared units](units.png)", ""]
    for layer in result["layers"]:
        lines += [f"## {layer}", "", "| | " + " | ".join(doms) + " |", "|---|" + "---:|" * len(doms)]
        m = result["cka_linear"][layer]
        for i, d in enumerate(doms):
            lines.append(f"| CKA {d} | " + " | ".join("n/a" if v != v else f"{v:.3f}" for v in m[i]) + " |")
        j = result["shared_units"][layer]["jaccard"]
        for i, d in enumerate(doms):
            lines.append(f"| units {d} | " + " | ".join(f"{v:.3f}" for v in j[i]) + " |")
        lines.append("")
    return "\n".join(lines)
