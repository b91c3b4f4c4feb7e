"""ConcretePlant negatives on real captions (CC3M, COCO): each differs from its caption exactly in its declared
span, keeps the part of speech it claims, and `--rank concreteness` perturbs the caption's most concrete
candidate (least-concrete: the least); the job is resumable and fails in one line on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from conftest import SHARED, run_cli

pytest.importorskip("spacy")

from clipcomp.negatives import NegativeOptions, generate_negatives  # noqa: E402
from clipcomp.negatives.generate import Planter  # noqa: E402
from clipcomp.negatives.norms import NUMBERS, PREPOSITIONS, Concreteness  # noqa: E402
from clipcomp.negatives.parse import parse  # noqa: E402
from clipcomp.negatives.wordnet import index_words  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
REPLACE = ("replace-obj", "replace-att", "replace-rel")


@pytest.fixture(scope="module")
def captions(cc3m_lines) -> list[str]:
    coco = [a["caption"].strip() for a in json.loads((SAMPLE / "captions_val2017.json").read_text())["annotations"]]
    cc3m = [c for c in cc3m_lines if c.strip()][:220]
    return cc3m + coco


@pytest.fixture(scope="module")
def generated(tmp_path_factory, captions):
    root = tmp_path_factory.mktemp("neg")
    src = root / "captions.txt"
    src.write_text("\n".join(captions) + "\n", encoding="utf-8")
    out = {}
    for rank in ("concreteness", "least-concrete", "random"):
        res = generate_negatives([str(src)], str(root / rank),
                                 NegativeOptions(rank=rank, types=REPLACE + ("swap-obj", "add-att"), per_caption=2))
        out[rank] = (res, pq.read_table(root / rank / "negatives.parquet").to_pylist())
    return out


def test_every_negative_differs_exactly_in_its_span(generated, captions):
    res, rows = generated["concreteness"]
    assert res.n_captions == len(captions) and len(rows) >= len(captions)  # ~2 per caption
    for r in rows:
        cap = r["caption"]
        assert cap == captions[r["row"]]
        assert r["negative"] == cap[:r["start"]] + r["replacement"] + cap[r["end"]:]
        assert cap[r["start"]:r["end"]] == r["original"] and r["negative"] != cap
    assert {r["type"] for r in rows} == set(REPLACE) | {"swap-obj", "add-att"}


def test_replacements_keep_the_part_of_speech_they_claim(generated):
    _, rows = generated["concreteness"]
    nouns, adjs, verbs = index_words("noun"), index_words("adj"), index_words("verb")
    checked = 0
    for r in rows:
        if r["type"] not in REPLACE:
            continue
        word = r["replacement"].split()[-1].lower()  # the article may be part of the span ("an apple")
        lemma = {"NOUN": nouns, "ADJ": adjs, "VERB": verbs}.get(r["pos"])
        if r["pos"] == "ADP":
            assert r["replacement"].lower().split()[0] in {w for w in PREPOSITIONS} | {"far", "away", "in", "out",
                                                                                        "on", "to"}
        elif r["pos"] == "NUM":
            assert word in NUMBERS
        else:
            # inflected forms: the lemma (or the word itself) is listed under the claimed part of speech
            stems = {word, word[:-1], word[:-2], word[:-3], word[:-3] + "y", word[:-3] + "e", word[:-2] + "e",
                     word[:-1] + "e", word[:-4] + "ie"}  # lying → lie
            assert stems & lemma, (r["replacement"], r["pos"])
        assert r["pos"] == {"replace-obj": "NOUN"}.get(r["type"], r["pos"])
        checked += 1
    assert checked > 200


def _recomputed_extreme(rows, rank: str) -> int:
    planter = Planter(NegativeOptions(rank=rank))
    parsed = {r["caption"]: None for r in rows}
    for pc in parse(list(parsed)):
        parsed[pc.text] = pc
    n = 0
    for r in rows:
        if r["type"] not in REPLACE or r["concreteness_original"] is None:
            continue
        cands = planter.candidates(parsed[r["caption"]], r["type"], np.random.default_rng(0))
        vals = [c.c_orig for c in cands if c.c_orig is not None]  # the default scale: raw ratings
        want = max(vals) if rank == "concreteness" else min(vals)
        assert r["concreteness_original"] == pytest.approx(want), (r["caption"], r["original"])
        n += 1
    return n


def test_rank_concreteness_perturbs_the_most_concrete_candidate(generated):
    assert _recomputed_extreme(generated["concreteness"][1], "concreteness") > 150


def test_rank_least_concrete_perturbs_the_least_concrete_candidate(generated):
    assert _recomputed_extreme(generated["least-concrete"][1], "least-concrete") > 150


def test_concreteness_ranking_moves_the_changed_span_concreteness(generated):
    def mean_norm(rank):
        vals = [r["concreteness_norm"] for r in generated[rank][1] if r["type"] in REPLACE and
                r["concreteness_norm"] is not None]
        return float(np.mean(vals))

    assert mean_norm("concreteness") > mean_norm("random") > mean_norm("least-concrete")


def test_normalization_is_within_part_of_speech():
    c = Concreteness()
    red, dog = c.raw("red"), c.raw("dog")
    assert dog > red  # raw: nouns outrank colours
    assert c.normalized(red, "ADJ") > 0.9 and 0 <= c.normalized(dog, "NOUN") <= 1
    assert c.normalized(None, "NOUN") is None


def test_unperturbable_captions_are_listed_not_errors(tmp_path):
    src = tmp_path / "c.txt"
    src.write_text("A dog runs on the beach.\n!!!\n\nhello\nA red car parked near a tall tree.\n")
    res = generate_negatives([str(src)], str(tmp_path / "out"), NegativeOptions(types=("replace-obj",)))
    un = pq.read_table(tmp_path / "out" / "unperturbable.parquet").to_pylist()
    assert {u["row"] for u in un} >= {1, 2} and res.n_negatives >= 2
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["n_unperturbable"] == len(un) and "percentile" in meta["concreteness"]
    # a second run reuses the finished output
    again = generate_negatives([str(src)], str(tmp_path / "out"), NegativeOptions(types=("replace-obj",)))
    assert again.n_negatives == res.n_negatives


def test_plausibility_matching_with_concept_statistics(tmp_path, cc3m_path, captions):
    from clipcomp.cooccur import BuildOptions, build_stats

    build_stats([cc3m_path], str(tmp_path / "stats"), BuildOptions(min_count=3))
    src = tmp_path / "c.txt"
    src.write_text("\n".join(captions[:60]) + "\n")
    res = generate_negatives([str(src)], str(tmp_path / "out"),
                             NegativeOptions(types=("replace-obj",), stats=str(tmp_path / "stats")))
    assert res.n_negatives > 20


def test_blind_text_check_reports_accuracies(generated, tmp_path, capsys, cc3m_path):
    from clipcomp.cooccur import BuildOptions, build_stats

    build_stats([cc3m_path], str(tmp_path / "stats"), BuildOptions(min_count=3))
    neg_dir = generated["concreteness"][0].out
    code, out, err = run_cli(["negatives", "check", neg_dir, "--stats", str(tmp_path / "stats"), "-o",
                              str(tmp_path / "blind.json")], capsys)
    assert code == 0, err
    rep = json.loads((tmp_path / "blind.json").read_text())
    for scorer in ("bigram_lm", "pmi"):
        a = rep[scorer]["all"]
        assert 0 <= a["accuracy"] <= 1 and a["ci95"][0] <= a["accuracy"] <= a["ci95"][1]
        assert set(rep[scorer]["by_type"]) <= {"replace-obj", "replace-att", "replace-rel", "swap-obj", "add-att"}


def test_cli_generate_and_bad_input(tmp_path, capsys):
    src = tmp_path / "c.txt"
    src.write_text("A small dog sleeps on a wooden bench.\nTwo men ride horses along a beach.\n")
    code, out, err = run_cli(["negatives", "generate", str(src), "-o", str(tmp_path / "o"), "--per-caption", "3",
                              "--workers", "2"], capsys)
    assert code == 0, err and "negatives.parquet" in out
    rows = pq.read_table(tmp_path / "o" / "negatives.parquet").to_pylist()
    assert len(rows) >= 4 and {r["row"] for r in rows} == {0, 1}
    for args, msg in ((["--types", "replace-obj,jumble"], "unknown --types jumble"),
                      (["--rank", "loudest"], "unknown --rank 'loudest'")):
        code, _, err = run_cli(["negatives", "generate", str(src), "-o", str(tmp_path / "x"), *args], capsys)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(["negatives", "generate", str(tmp_path / "none.txt"), "-o", str(tmp_path / "y")], capsys)
    assert code == 2 and "none.txt" in err
    code, _, err = run_cli(["negatives", "check", str(src)], capsys)
    assert code == 2 and "c.txt" in err


@pytest.mark.skipif(not (SHARED / "coco_mini").exists(), reason="needs ../shared/data/coco_mini")
def test_negatives_of_the_shared_coco_captions(tmp_path):
    ann = SHARED / "coco_mini" / "annotations" / "captions_train2017.json"
    res = generate_negatives([str(ann)], str(tmp_path / "coco"), NegativeOptions(types=REPLACE, limit=150))
    rows = pq.read_table(tmp_path / "coco" / "negatives.parquet").to_pylist()
    assert res.n_captions == 150 and len(rows) > 120
    for r in rows:
        assert r["negative"] == r["caption"][:r["start"]] + r["replacement"] + r["caption"][r["end"]:]


def test_frame_words_are_never_changed_or_used(generated, tmp_path):
    """Caption-frame words (picture, image, background, …, and words in most captions of a task) are neither
    perturbed nor used as replacements — on real captions, and on a synthetic world whose every caption says
    "sketch"."""
    from clipcomp.negatives.generate import FRAME_WORDS

    frame = set(FRAME_WORDS)
    for _, rows in generated.values():
        for r in rows:
            assert r["original"].lower().split()[-1] not in frame or r["type"].startswith("add"), r
            assert not (set(r["replacement"].lower().split()) & frame - set(r["original"].lower().split())), r
    world = [f"a sketch of a {c} {s} on a dark background" for c in ("red", "blue", "green", "yellow")
             for s in ("circle", "square", "triangle", "star", "cross")]
    src = tmp_path / "world.txt"
    src.write_text("\n".join(world) + "\n", encoding="utf-8")
    generate_negatives([str(src)], str(tmp_path / "w"), NegativeOptions(types=REPLACE + ("swap-obj",),
                                                                        per_caption=3))
    rows = pq.read_table(tmp_path / "w" / "negatives.parquet").to_pylist()
    assert rows
    for r in rows:
        changed = set(r["original"].lower().split())
        assert not changed & {"sketch", "background"}, r  # "sketch" is in every caption: a frame word
        assert "sketch" not in r["replacement"].lower().split() or "sketch" in changed


def test_blind_lm_is_held_out_by_default_and_empty_input_refused(tmp_path):
    """An LM fitted on the captions it scores prefers them by memory; by default every pair is scored by a model
    fitted on the other fold of the distinct captions (checked against a direct computation)."""
    import pyarrow as pa

    from clipcomp.errors import ClipcompError
    from clipcomp.negatives.blind import BigramLM, blind_check, held_out_lm_scores

    rng = np.random.default_rng(0)
    words = ["dog", "cat", "horse", "bird", "cow", "sheep", "bench", "table", "car", "boat", "tree", "kite"]
    caps = [f"a {a} next to a {b}" for a in words for b in words if a != b]
    negs = [c.replace(c.split()[1], words[int(rng.integers(len(words)))], 1) for c in caps]
    t = pa.table({"caption": caps, "negative": negs, "type": ["replace-obj"] * len(caps)})
    held = blind_check(t)["bigram_lm"]
    seen = blind_check(t, corpus=caps)["bigram_lm"]
    assert "held out" in held["training"] and seen["training"] == "the given corpus"
    assert seen["all"]["accuracy"] > held["all"]["accuracy"]
    p, q = held_out_lm_scores(caps, negs)
    uniq = sorted(set(caps))
    fold = dict(zip(uniq, np.random.default_rng([0, 4_242]).permutation(len(uniq)) % 2, strict=True))
    lm0 = BigramLM([c for c in uniq if fold[c] != fold[caps[0]]])
    assert p[0] == lm0.score(caps[0]) and q[0] == lm0.score(negs[0])
    with pytest.raises(ClipcompError, match="no negatives to check"):
        blind_check(t.slice(0, 0))


def test_non_english_captions_are_skipped_and_counted(tmp_path):
    """Chinese, German, mixed-script and random-byte captions get no negatives (the parser and lexicon are
    English-only); they are listed with the reason, and real English captions almost never are."""
    import pyarrow.parquet as pq

    from clipcomp.negatives import NegativeOptions, generate_negatives
    from clipcomp.negatives.language import is_english
    from clipcomp.negatives.parse import parse

    lines = ["A small dog sleeps on a wooden bench.", "两只猫坐在沙发上", "Zwei Katzen sitzen auf dem roten Sofa.",
             "\x01\x02 zzkq wxv qqq", "A red car parked next to a tree.", "blue 两只猫 on a table"]
    (tmp_path / "c.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    res = generate_negatives([str(tmp_path / "c.txt")], str(tmp_path / "o"), NegativeOptions())
    assert res.n_not_english == 4
    u = pq.read_table(tmp_path / "o" / "unperturbable.parquet").to_pylist()
    assert {r["row"] for r in u if r["reason"] == "not English"} == {1, 2, 3, 5}
    negs = pq.read_table(tmp_path / "o" / "negatives.parquet")
    assert set(negs.column("row").to_pylist()) <= {0, 4}
    data = json.loads((Path(__file__).parent / "data" / "coco_sample" / "captions_val2017.json").read_text())
    parsed = parse([a["caption"] for a in data["annotations"]])
    assert sum(not is_english(p) for p in parsed) <= 0.01 * len(parsed)
