"""`clipcomp vqa run` → `clipcomp analyze vqa` end to end on a tiny, randomly initialized LLaVA-architecture
model built here (a CLIP vision tower, a Llama language model, a word-level tokenizer; no weights downloaded):
batched greedy answers, resumable, in the files the analysis reads."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from conftest import run_cli

pytest.importorskip("transformers")
pytest.importorskip("torch")

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
WORDS = ["<unk>", "<pad>", "<s>", "</s>", "<image>", "USER", "ASSISTANT", ":", "?", ".", "\n", "yes", "no", "a",
         "the", "is", "there", "what", "color", "dog", "cat", "red", "blue", "two", "Answer", "question", "using",
         "single", "word", "or", "phrase", "in", "image", "this", "how", "many", "Yes", ",", "man"]


@pytest.fixture(scope="module")
def tiny_llava(tmp_path_factory):
    from clipcomp.models.compat import ensure_torchvision

    ensure_torchvision()
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import (
        CLIPImageProcessor,
        CLIPVisionConfig,
        LlamaConfig,
        LlavaConfig,
        LlavaForConditionalGeneration,
        LlavaProcessor,
        PreTrainedTokenizerFast,
    )

    vocab = {w: i for i, w in enumerate(WORDS)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.Split("\n", "isolated"),
                                                 pre_tokenizers.WhitespaceSplit()])
    tok.decoder = decoders.WordPiece(prefix="##")
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>", pad_token="<pad>", bos_token="<s>",
                                   eos_token="</s>", extra_special_tokens={"image_token": "<image>"})
    processor = LlavaProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 32},
                                                                  crop_size={"height": 32, "width": 32}),
                               tokenizer=fast, patch_size=8, vision_feature_select_strategy="default",
                               image_token="<image>", num_additional_image_tokens=1)
    cfg = LlavaConfig(
        vision_config=CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                       num_attention_heads=2, image_size=32, patch_size=8, projection_dim=32),
        text_config=LlamaConfig(vocab_size=len(WORDS), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256,
                                pad_token_id=1, bos_token_id=2, eos_token_id=3),
        image_token_index=vocab["<image>"], vision_feature_select_strategy="default", vision_feature_layer=-2)
    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("tiny-llava")
    LlavaForConditionalGeneration(cfg).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def _questions(tmp_path) -> Path:
    images = sorted(os.listdir(SAMPLE / "images"))[:5]
    rows = []
    # concept pairs that occur in the sample's captions, so the analysis has PMI values
    for k, (q, a) in enumerate([("is there a brick wall ?", "yes"), ("is the bedding in a pile ?", "yes"),
                                ("what is on the bedside ?", "humidifier"), ("is the beef black ?", "no"),
                                ("is there big work at the station ?", "yes"), ("is the blanket clothing ?", "no"),
                                ("what color is the wooden cabinet ?", "brown")]):
        rows.append({"question_id": 100 + k, "question": q, "image": str(SAMPLE / "images" / images[k % 5]),
                     "answer": a})
    path = tmp_path / "questions.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return path


def test_normalize_answer_collapses_yes_and_no():
    from clipcomp.pipelines.vqa import normalize_answer

    assert normalize_answer("Yes, there is a dog.") == "yes" and normalize_answer(" No.") == "no"
    assert normalize_answer("Two dogs.") == "two dogs" and normalize_answer("nothing") == "nothing"


def test_vqa_run_resumes_and_feeds_analyze_vqa(tmp_path, tiny_llava, capsys):
    from clipcomp.pipelines.vqa import run_vqa

    qpath = _questions(tmp_path)
    full = run_vqa(str(qpath), str(tiny_llava), str(tmp_path / "full"), batch_size=3, max_new_tokens=4,
                   progress=False)
    assert full["finished"] and full["answered"] == 7
    preds = json.loads((tmp_path / "full" / "predictions.json").read_text())
    assert [p["question_id"] for p in preds] == list(range(100, 107))
    # interrupted after one batch of 3, then resumed: the same answers as the uninterrupted run
    part = run_vqa(str(qpath), str(tiny_llava), str(tmp_path / "part"), batch_size=3, max_new_tokens=4,
                   progress=False, stop_after=1)
    assert not part["finished"] and part["answered"] == 3
    assert not (tmp_path / "part" / "predictions.json").exists()
    code, out, err = run_cli(["vqa", "run", str(qpath), "--model", str(tiny_llava), "-o", str(tmp_path / "part"),
                              "--batch-size", "3", "--max-new-tokens", "4", "-q"], capsys)
    assert code == 0, err
    assert "7/7 questions answered (3 from an earlier run)" in " ".join(out.split())
    assert json.loads((tmp_path / "part" / "predictions.json").read_text()) == preds
    # the answers table goes straight into `analyze vqa`
    code, _, err = run_cli(["stats", "build", str(SAMPLE / "captions_val2017.json"), "-o", str(tmp_path / "st"),
                            "--min-count", "1", "-q"], capsys)
    assert code == 0, err
    code, out, err = run_cli(["analyze", "vqa", str(tmp_path / "part" / "answers.parquet"), "--stats",
                              str(tmp_path / "st"), "-o", str(tmp_path / "an"), "--boot", "50"], capsys)
    assert code == 0, err


def test_vqa_run_bad_inputs_are_one_line(tmp_path, tiny_llava, capsys):
    qpath = _questions(tmp_path)
    (tmp_path / "notlmm").mkdir()
    (tmp_path / "notlmm" / "config.json").write_text(json.dumps({"model_type": "bert"}))
    for model, expected in (("llava-hf/llava-1.5-7b-hf", "not a local model directory"),
                            (str(tmp_path / "notlmm"), "not an LMM")):
        code, _, err = run_cli(["vqa", "run", str(qpath), "--model", model, "-o", str(tmp_path / "o")], capsys)
        assert code == 2 and expected in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "q.csv").write_text("question\nis it?\n")
    code, _, err = run_cli(["vqa", "run", str(tmp_path / "q.csv"), "--model", str(tiny_llava), "-o",
                            str(tmp_path / "o2")], capsys)
    assert code == 2 and "lacks column(s) image" in err


def test_vqa_run_reads_vqav2_questions_with_coco_image_ids(tmp_path, tiny_llava):
    from clipcomp.pipelines.vqa import run_vqa

    ids = [int(Path(n).stem) for n in sorted(os.listdir(SAMPLE / "images"))[:2]]
    qs = {"data_subtype": "val2017",
          "questions": [{"question_id": 7 + i, "image_id": im, "question": "is there a dog ?"}
                        for i, im in enumerate(ids)]}
    (tmp_path / "q.json").write_text(json.dumps(qs))
    s = run_vqa(str(tmp_path / "q.json"), str(tiny_llava), str(tmp_path / "o"), images=str(SAMPLE / "images"),
                max_new_tokens=2, progress=False)
    assert s["finished"] and [p["question_id"] for p in json.loads((tmp_path / "o" / "predictions.json")
                                                                    .read_text())] == [7, 8]
