"""The one evaluation registry: every task and suite a model can be scored on, by name.

`clipcomp eval <task>`, `clipcomp eval suite NAME`, `clipcomp eval suites CONFIG`, `clipcomp train --eval NAME=PATH`
and Slipform all look a name up here and run it through `clipcomp.tasks.run.run_suite`. An entry says how to
open the data (`load`), how to score it (`run`), which table columns its metrics give (`columns`) and whether
it needs an image folder. `load` and `run` may be callables or "module:function" strings, imported on first use,
so listing the names costs no heavy imports.

A new suite is one dataset module with an opener plus one entry::

    # mysuite.py
    def open_suite(path, images, options, cache):      # -> a dataset the runner understands
        return load_selection_manifest(path, images)

    register_suite(Suite("my-suite", load="mysuite:open_suite", run="clipcomp.tasks.selection:run_suite"))

Packages can also declare entries under the ``clipcomp.suites`` entry-point group (each a `Suite`).
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from clipcomp.errors import ClipcompError

if TYPE_CHECKING:
    from clipcomp.models.embed import EmbedderLike

Loader = Callable[[str, "str | None", dict, str], Any]  # (path, images, options, cache dir) -> dataset
Runner = Callable[["EmbedderLike", Any, dict], Any]  # (embedder, dataset, options) -> TaskResult
Columns = Callable[[str, dict], "dict[str, float]"]  # (suite name, details/metrics.json) -> table columns


def resolve(ref):
    """A callable, or "module:function" imported now."""
    if callable(ref):
        return ref
    module, _, attr = str(ref).partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ClipcompError(f"suite registry: cannot import {ref!r} ({exc})") from None


@dataclass(frozen=True)
class Suite:
    """One evaluation: how to open its data, run it and turn its metrics into table columns."""

    name: str
    load: Loader | str
    run: Runner | str
    columns: Columns | str = "clipcomp.tasks.selection:columns"
    needs_images: bool = True
    doc: str = ""

    def open(self, path: str, images: str | None, options: dict, cache: str):
        return resolve(self.load)(path, images, options, cache)

    def score(self, embedder, dataset, options: dict):
        return resolve(self.run)(embedder, dataset, options)

    def table_columns(self, metrics: dict, label: str | None = None) -> dict[str, float]:
        cols = resolve(self.columns)(self.name, metrics)
        if label and label != self.name:
            cols = {label + k[len(self.name):] if k.startswith(self.name) else k: v for k, v in cols.items()}
        return cols


SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite, replace: bool = False) -> Suite:
    """Add a suite under its name (one line per suite); `replace` swaps an existing entry."""
    if suite.name in SUITES and not replace:
        raise ClipcompError(f"suite {suite.name!r} is already registered")
    SUITES[suite.name] = suite
    return suite


def _entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="clipcomp.suites"):
        if ep.name not in SUITES:
            try:
                suite = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the built-in suites
                raise ClipcompError(f"suite plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from None
            if isinstance(suite, Suite):
                SUITES[ep.name] = suite


def get_suite(name: str) -> Suite:
    """The entry for `name`; an unknown name is one line listing every registered suite."""
    if name not in SUITES:
        _entry_points()
    if name not in SUITES:
        close = difflib.get_close_matches(name, list(SUITES), n=2)
        hint = f"; did you mean {' or '.join(close)}?" if close else ""
        raise ClipcompError(f"unknown suite {name!r} (expected one of {', '.join(SUITES)}){hint}")
    return SUITES[name]


def suite_names() -> list[str]:
    _entry_points()
    return list(SUITES)


def _selection_columns(**kw) -> Columns:
    """clipcomp.tasks.selection.columns with fixed keywords, imported on first use."""

    def columns(name: str, metrics: dict) -> dict[str, float]:
        return resolve("clipcomp.tasks.selection:columns")(name, metrics, **kw)

    return columns


_SEL = "clipcomp.tasks.selection:run_suite"
for _suite in (
    # the harness tasks (`clipcomp eval zeroshot|retrieval|select|binding`)
    Suite("zeroshot", "clipcomp.datasets.classification:open_suite", "clipcomp.tasks.zeroshot:run_suite",
          "clipcomp.tasks.zeroshot:columns", needs_images=False,
          doc="zero-shot classification: class folders or a path,label manifest"),
    Suite("retrieval", "clipcomp.datasets.coco:open_suite", "clipcomp.tasks.retrieval:run_suite",
          "clipcomp.tasks.retrieval:columns", needs_images=False, doc="image↔text retrieval on a COCO captions JSON"),
    Suite("select", "clipcomp.datasets.selection:open_select", _SEL, needs_images=False,
          doc="caption selection: a manifest (image, positive, negative...) or SugarCrepe JSON + images"),
    Suite("binding", "clipcomp.tasks.binding:open_suite", "clipcomp.tasks.binding:run_suite",
          "clipcomp.tasks.binding:columns", needs_images=False,
          doc="binding probes on a synthetic dataset's held-out scenes"),
    # compositionality suites in their official formats
    Suite("sugarcrepe", "clipcomp.datasets.selection:open_suite", _SEL,
          _selection_columns(subsets="always"),
          doc="SugarCrepe JSON files (one per subset)"),
    Suite("sugarcrepe++", "clipcomp.datasets.sugarcrepe_pp:open_suite", "clipcomp.tasks.sugarcrepe_pp:run_suite",
          "clipcomp.tasks.sugarcrepe_pp:columns", doc="SugarCrepe++ JSON: ITT and TOT"),
    Suite("aro-vg-relation", "clipcomp.datasets.aro:open_vg_relation", _SEL,
          _selection_columns(subsets="never"),
          doc="ARO visual_genome_relation.json: macro accuracy without the symmetric relations, as ARO's notebook"),
    Suite("aro-vg-attribution", "clipcomp.datasets.aro:open_vg_attribution", _SEL,
          _selection_columns(subsets="never"),
          doc="ARO visual_genome_attribution.json: macro accuracy over attribute pairs with ≥ 25 items, as ARO"),
    Suite("coco-order", "clipcomp.datasets.aro:open_coco_order", _SEL, needs_images=False,
          doc="ARO COCO-Order: coco_karpathy_test.json (or a COCO captions JSON), ARO's perturbations"),
    Suite("flickr-order", "clipcomp.datasets.aro:open_flickr_order", _SEL,
          doc="ARO Flickr30k-Order: flickr30k_test.json (or Flickr caption lists), ARO's perturbations"),
    Suite("valse", "clipcomp.datasets.valse:open_suite", _SEL,
          _selection_columns(subsets="always"), doc="VALSE piece JSON files"),
    Suite("winoground", "clipcomp.datasets.winoground:open_suite", "clipcomp.tasks.winoground:run_suite",
          "clipcomp.tasks.winoground:columns", needs_images=False,
          doc="Winoground examples.jsonl (+ images/): text, image, group scores"),
    Suite("colorswap", "clipcomp.datasets.colorswap:open_suite", "clipcomp.tasks.winoground:run_suite",
          "clipcomp.tasks.winoground:columns", needs_images=False,
          doc="ColorSwap test.json (+ images/): Winoground text, image, group scores"),
    Suite("cola", "clipcomp.datasets.cola:open_suite", "clipcomp.tasks.cola:run_suite", "clipcomp.tasks.cola:columns",
          doc="COLA multi-object JSON [image_1, caption_1, image_2, caption_2] + the VG images: COLA accuracy"),
    Suite("mmvp-vlm", "clipcomp.datasets.mmvp:open_suite", "clipcomp.tasks.mmvp:run_suite",
          _selection_columns(subsets="always"), needs_images=False,
          doc="MMVP-VLM folder (Questions.csv + 'MLLM_VLM Images/'): pair accuracy per category and mean"),
    Suite("crepe", "clipcomp.datasets.crepe:open_suite", "clipcomp.tasks.crepe:run_suite",
          _selection_columns(subsets="always"),
          doc="CREPE CSVs (systematicity / productivity hard negatives) + VG images: R@1 per split"),
    Suite("vl-checklist", "clipcomp.datasets.vl_checklist:open_suite", "clipcomp.tasks.vl_checklist:run_suite",
          "clipcomp.tasks.vl_checklist:columns",
          doc="VL-CheckList repository (corpus/v1 yaml + data JSON) + its dataset folder: Object/Attribute/Relation"),
    Suite("eqben", "clipcomp.datasets.eqben:open_suite", "clipcomp.tasks.eqben:run_suite",
          "clipcomp.tasks.eqben:columns",
          doc="EqBen ann_json_finegrained_random.json + src_file/private_*.json + images: group score per subset"),
    Suite("svo-probes", "clipcomp.datasets.svo_probes:open_suite", "clipcomp.tasks.svo_probes:run_suite",
          "clipcomp.tasks.svo_probes:columns",
          doc="SVO-Probes svo_probes.csv + its images: subject/verb/object (pairwise; official with threshold)"),
    Suite("linear-probe", "clipcomp.tasks.linear_probe:open_suite", "clipcomp.tasks.linear_probe:run_suite",
          "clipcomp.tasks.linear_probe:columns", needs_images=False,
          doc="logistic-regression probe (COCO instances JSON: multi-label mAP; folder/manifest: accuracy)"),
):
    register_suite(_suite)
