"""Notebook-style: every CLI command's library function (docs/api.md), called directly on bundled data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
COCO = str(SAMPLE / "captions_val2017.json")
IMG = str(SAMPLE / "images")


@pytest.fixture(scope="module")
def nb(tmp_path_factory, cc3m_path):
    """A notebook session: one working folder, the bundled statistics built once."""
    from clipcomp.cooccur import BuildOptions, build_stats

    root = tmp_path_factory.mktemp("nb")
    res = build_stats([cc3m_path], str(root / "stats"), BuildOptions(min_count=5))
    assert res.n_captions == 15_833
    return root


def test_stats_functions(nb):
    from clipcomp import ConceptStats

    s = ConceptStats.load(nb / "stats")
    p = s.pair("dog", "beach")
    assert p.count == s.count("dog", "beach") > 0 and s.pmi("dog", "beach") == pytest.approx(p.pmi)
    assert all("dog" in (t.a, t.b) for t in s.top_pairs(concept="dog", k=3))
    assert sorted(s.score("a dog on the beach").concepts) == ["beach", "dog"]
    assert s.info()["n_captions"] == 15_833


def test_eval_functions_and_gather(nb):
    from clipcomp.analysis.gather import gather_runs, write_table
    from clipcomp.tasks.run import ModelSpec, eval_binding, eval_retrieval, eval_select, eval_zeroshot

    spec = ModelSpec(model="clipcomp-tiny", cache_dir=None, loader_workers=0)
    zs = eval_zeroshot(str(SAMPLE / "labels.csv"), str(nb / "zs"), templates="simple", spec=spec, progress=False)
    assert zs["task"] == "zeroshot_classification" and zs["pretrained"] == "random-init(seed=0)"
    ret = eval_retrieval(COCO, str(nb / "ret"), images=IMG, spec=spec, progress=False)
    assert ret["metrics"]["n_images"] == 18
    sc = eval_select([str(SAMPLE / "sugarcrepe")], str(nb / "sc"), images=IMG, spec=spec, progress=False)
    assert sc["n_items"] == 33
    table = gather_runs([str(nb / "zs"), str(nb / "ret"), str(nb / "sc")])
    # overall + one row per SugarCrepe subset, as CLIP_benchmark's own runs give
    assert table.num_rows == 2 + 1 + 6
    assert {"acc1", "acc5", "acc", "image_retrieval_recall@1"} <= set(table.column_names)
    write_table(table, str(nb / "table.md"))
    assert "sugar_crepe/add_obj" in (nb / "table.md").read_text()
    from clipcomp.synth import CaptionKnobs, WorldConfig
    from clipcomp.synth.dataset import DatasetSpec, generate

    meta = generate(WorldConfig(), CaptionKnobs(), DatasetSpec(out=str(nb / "synth"), n_train=32, n_test=8),
                    progress=False)
    assert meta["n_test"] == 8
    b = eval_binding(str(nb / "synth"), str(nb / "bind"), ModelSpec(model="clipcomp-micro", cache_dir=None),
                     scenes=8, progress=False)
    # brute force: the attribute-swap probe is right when the image is closer to its caption than to the caption
    # with two objects' colours swapped (the probes drawn with the same seed)
    from clipcomp.models import load_model
    from clipcomp.models.embed import Embedder
    from clipcomp.synth.dataset import SynthDataset
    from clipcomp.tasks.binding import build_probes

    ds = SynthDataset(str(nb / "synth"), "test")
    emb = Embedder(load_model("clipcomp-micro"), cache_dir=None, progress=False)
    probes = build_probes(ds.scenes()[:8], 0, ds.meta["settings"]["world"]["colours"],
                          ds.meta["settings"]["world"]["shapes"])
    img = emb.arrays(ds.images(np.arange(8)))
    right = (img * emb.texts(probes["true"])).sum(1) > (img * emb.texts(probes["swap"])).sum(1)
    assert b["metrics"]["binding_accuracy"] == pytest.approx(float(right.mean()))


def test_analyze_functions(nb, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from clipcomp.analysis.reports import analyze_pmi, analyze_vqa

    caps = ["a dog on the beach", "a cat on a sofa", "a dog and a frisbee", "a man riding a horse",
            "a bowl of fruit on a table", "a car on the street"] * 5
    pq.write_table(pa.table({"caption": caps, "correct": [i % 3 != 0 for i in range(30)]}), tmp_path / "r.parquet")
    res = analyze_pmi(str(tmp_path / "r.parquet"), str(nb / "stats"), str(tmp_path / "an"), boot=50)
    assert res.n_used > 0 and (tmp_path / "an" / "report.md").exists()
    rows = [{"question": f"is the {w} on the beach?", "answer": "yes" if i % 2 else "no",
             "prediction": "yes"} for i, w in enumerate(["dog", "cat", "man", "car", "horse", "bowl"] * 3)]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    v = analyze_vqa(str(tmp_path / "q.jsonl"), str(nb / "stats"), out=str(tmp_path / "vqa"), boot=20)
    assert v.n_yes + v.n_no == 18


def test_train_finetune_sweep_functions(nb, tmp_path):
    from clipcomp.pipelines.lab import sweep
    from clipcomp.train import TrainConfig, finetune, train

    res = train(TrainConfig(data=COCO, images=IMG, out=str(tmp_path / "t"), model="clipcomp-micro", steps=2,
                            batch_size=8, warmup=1, workers=0), progress=False)
    assert res["steps_done"] == 2 and res["format"] == "coco"
    ft = finetune(TrainConfig(data=COCO, images=IMG, out=str(tmp_path / "ft"), model="clipcomp-micro", steps=2,
                              batch_size=8, warmup=1, workers=0, pretrained=str(tmp_path / "t" / "final.pt"),
                              wise_ft=0.5), evals=[("retrieval", COCO)], eval_images=IMG, progress=False)
    assert {r["metric"] for r in ft["evals"]} >= {"text_retrieval_recall@1", "image_retrieval_recall@1"}
    cfg = tmp_path / "sweep.yaml"
    cfg.write_text(f"dataset: {{n_train: 32, n_test: 8, shard_size: 32}}\n"
                   f"train: {{model: clipcomp-micro, steps: 2, batch_size: 8, warmup: 1, threads: 1}}\n"
                   f"sweep: {{out: {tmp_path / 'sw'}, seeds: [0], eval_scenes: 8, "
                   f"cells: {{base: {{}}}}}}\n")
    out = sweep(str(cfg), progress=False)
    assert len(out["rows"]) == 1 and "base" in out["table"]


def test_bench_and_model_functions(nb, tmp_path):
    from clipcomp.benchgen.genpairs import build_genpairs
    from clipcomp.benchgen.paste import build_paste_benchmark
    from clipcomp.models import list_models, load_model

    gp = build_genpairs(str(nb / "stats"), str(tmp_path / "gp"), ["dog", "car"], per_quantile=1, quantiles=2,
                        unseen=1, min_concreteness=4.0)
    assert gp["n_classes"] == 2 and (tmp_path / "gp" / "manifest.parquet").exists()
    pb = build_paste_benchmark(str(SAMPLE / "labels.csv"), str(tmp_path / "paste"), coco=str(SAMPLE /
                               "instances_val2017.json"), coco_images=IMG, min_area=400)
    assert pb["n_edits"] == 18
    assert "clipcomp-micro" in list_models() and load_model("clipcomp-micro").name == "clipcomp-micro"


@pytest.mark.slow
def test_quickstart_function(tmp_path):
    from clipcomp.pipelines.miniature.pipeline import QuickstartConfig, run

    s = run(QuickstartConfig(out=str(tmp_path / "qs"), steps=3, n_train=200, per_pair=1, batch_size=16, workers=1,
                             control=False, finetune=False), progress=False)
    assert set(s["results"]) == {"pmi"}


def test_domain_mixture_and_mechanistic_functions(tmp_path):
    from clipcomp.datasets.mixtures import MixSpec, mix_build
    from clipcomp.similarity.mechanistic import domain_similarity, list_layers, mech_report
    from clipcomp.synth.domains import DomainSpec, generate_domains

    man = generate_domains(DomainSpec(out=str(tmp_path / "d"), per_cell=4, domains=["natural", "sketch", "clipart"]))
    meta = mix_build(man, str(tmp_path / "mix"), MixSpec(setting="cg-low", test_domain="sketch",
                                                         natural_domain="natural", n_held_out=2))
    assert meta["n_train"] > 0 and len(meta["held_out_classes"]) == 2
    res = mech_report(man, str(tmp_path / "mech"), model="clipcomp-micro", attr_per_domain=2, n_steps=2,
                      layers=["visual.transformer.resblocks.2"])
    assert res["layers"] == ["visual.transformer.resblocks.2"] and set(domain_similarity(res, "natural")) == {
        "sketch", "clipart"}
    from clipcomp.models import load_model

    assert list_layers(load_model("clipcomp-micro").model)[-1] == "visual.transformer.resblocks.2"
