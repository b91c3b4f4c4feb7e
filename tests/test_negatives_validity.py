"""Valid negatives by default: typed replacements (a shape for a shape, a colour for a colour), no synonyms, no
frame words, articles that agree in every type — on real COCO captions and on a synthetic world with its own
typed lexicon; the validity checker itself flags each kind of invalid negative; lexicon errors are one line."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import run_cli

pytest.importorskip("spacy")

from clipcomp.errors import ClipcompError  # noqa: E402
from clipcomp.negatives import NegativeOptions, generate_negatives, negatives_for  # noqa: E402
from clipcomp.negatives.types import TypedLexicon, WordTypes, article_for, synonyms  # noqa: E402
from clipcomp.negatives.validity import CHECKS, check_row, frame_set, validity_report  # noqa: E402

SAMPLE = Path(__file__).parent / "data" / "coco_sample"
ALL = ("replace-obj", "replace-att", "replace-rel", "swap-obj", "swap-att", "add-obj", "add-att")
WORLD = {"shape": ["circle", "square", "triangle", "star", "hexagon", "cross"],
         "colour": ["red", "blue", "green", "yellow", "purple", "white"], "size": ["small", "large"],
         "vertical": ["above", "below"], "quality": ["nice", "typical", "strange"]}


def _row(caption: str, original: str, replacement: str, kind: str, pos: str) -> dict:
    start = caption.index(original)
    neg = caption[:start] + replacement + caption[start + len(original):]
    return {"caption": caption, "negative": neg, "type": kind, "start": start, "end": start + len(original),
            "original": original, "replacement": replacement, "pos": pos}


def test_checker_flags_each_kind_of_invalid_negative():
    types, frame = WordTypes(), frame_set([], ("picture", "image", "background"))
    cases = {
        "frame": _row("a picture of a large purple hexagon", "hexagon", "picture", "replace-obj", "NOUN"),
        "articles": _row("a red square and a blue star", "square", "circle", "replace-obj", "NOUN")
        | {"negative": "an red circle and a blue star"},
        "synonym": _row("a big dog on a bench", "big", "large", "replace-att", "ADJ"),
        "type": _row("a red cube on a table", "red", "wooden", "replace-att", "ADJ"),
    }
    cases["articles"]["start"] = 0
    cases["articles"]["replacement"] = "an red circle"
    cases["articles"]["original"] = "a red square"
    for failing, row in cases.items():
        res = check_row(row, types, frame)
        assert not res[failing], (failing, res)
        if failing != "frame":  # a frame word is also of another type than a shape: only the frame check is asked
            assert all(res[c] for c in CHECKS if c != failing), (failing, res)
    good = _row("a red square and a blue star", "red", "green", "replace-att", "ADJ")
    assert all(check_row(good, types, frame).values())
    image_picture = _row("an image of a dog", "image", "picture", "replace-obj", "NOUN")
    res = check_row(image_picture, types, frame)
    assert not res["frame"] and not res["synonym"]


def test_articles_and_synonyms_and_types_from_the_lexicons():
    assert article_for("orange") == "an" and article_for("unicorn") == "a" and article_for("hour") == "an"
    assert synonyms("big", "large", "ADJ") and synonyms("image", "picture", "NOUN")
    assert not synonyms("red", "blue", "ADJ")
    t = WordTypes()
    assert t.same(t.of("red", "ADJ"), t.of("blue", "ADJ")) and not t.same(t.of("red", "ADJ"), t.of("wooden", "ADJ"))
    assert t.same(t.of("dog", "NOUN"), t.of("cat", "NOUN")) and not t.same(t.of("dog", "NOUN"), t.of("table", "NOUN"))
    lex = WordTypes(TypedLexicon(WORLD), closed=True)
    assert lex.same(lex.of("circle", "NOUN"), lex.of("star", "NOUN"))
    assert lex.of("dog", "NOUN") is None  # a closed world: outside the lexicon nothing has a type


def test_swaps_fix_articles_and_keep_number():
    rows = negatives_for(["An orange cube sits beside a red ball.", "A dog and two cats on the grass."],
                         NegativeOptions(types=("swap-att", "swap-obj"), per_caption=2))
    negs = {r["negative"] for r in rows}
    assert "A red cube sits beside an orange ball." in negs
    assert not any("A cats" in n or "two dog" in n for n in negs)  # different number: not swapped


@pytest.fixture(scope="module")
def coco_negatives(tmp_path_factory):
    root = tmp_path_factory.mktemp("valid")
    res = generate_negatives([str(SAMPLE / "captions_val2017.json")], str(root / "neg"),
                             NegativeOptions(types=ALL, per_caption=3))
    return root, res, pq.read_table(root / "neg" / "negatives.parquet")


def test_real_coco_negatives_are_valid(coco_negatives):
    _, res, table = coco_negatives
    rep = validity_report(table)
    assert rep["all"]["valid"]["n"] == table.num_rows > 150
    assert rep["all"]["valid"]["share"] >= 0.95, rep["all"]
    for kind, block in rep["by_type"].items():
        if block["valid"]["n"] >= 20:
            assert block["valid"]["share"] >= 0.95, (kind, block)
    for r in table.to_pylist():
        if r["type"] in ("replace-obj", "replace-att") and r["pos"] in ("NOUN", "ADJ"):
            old, new = r["original"].split()[-1].lower(), r["replacement"].split()[-1].lower()
            assert not synonyms(old, new, r["pos"]), r


def test_negatives_check_reports_validity_per_type(coco_negatives, capsys):
    root, _, _ = coco_negatives
    code, out, err = run_cli(["negatives", "check", str(root / "neg"), "-o", str(root / "check.json")], capsys)
    assert code == 0, err
    assert "validity:" in out and "pass all checks" in out and "per type:" in out
    rep = json.loads((root / "check.json").read_text())
    assert set(rep["validity"]["by_type"]) == {r for r in ALL if r in rep["bigram_lm"]["by_type"]}
    assert {"frame", "type", "synonym", "articles", "valid"} <= set(rep["validity"]["all"])


def test_a_synthetic_world_with_its_typed_lexicon(tmp_path):
    lex = tmp_path / "lexicon.json"
    lex.write_text(json.dumps(WORLD))
    caps = [f"a {q} picture of a {s} {c} {sh} {rel} a {s2} {c2} {sh2}"
            for q in ("nice", "typical", "strange") for rel in ("above", "below")
            for s, s2 in (("small", "large"), ("large", "small"))
            for c, c2 in (("red", "blue"), ("green", "yellow"), ("purple", "white"))
            for sh, sh2 in (("circle", "square"), ("star", "hexagon"), ("cross", "triangle"))]
    src = tmp_path / "world.txt"
    src.write_text("\n".join(caps) + "\n")
    generate_negatives([str(src)], str(tmp_path / "w"),
                       NegativeOptions(types=ALL[:5], per_caption=3, lexicon=str(lex), lexicon_only=True))
    table = pq.read_table(tmp_path / "w" / "negatives.parquet")
    owner = TypedLexicon(WORLD).word_type
    for r in table.to_pylist():
        if r["type"].startswith("replace"):
            old, new = r["original"].split()[-1].lower(), r["replacement"].split()[-1].lower()
            assert owner[old] == owner[new], r  # a shape for a shape, a colour for a colour
        assert "picture" not in r["original"].lower().split()
    rep = validity_report(table, TypedLexicon(WORLD), lexicon_only=True)
    assert rep["all"]["valid"]["share"] >= 0.95
    assert set(rep["by_type"]) >= {"replace-obj", "replace-att", "replace-rel", "swap-att"}
    assert json.loads((tmp_path / "w" / "meta.json").read_text())["settings"]["lexicon"]["types"]["shape"]


def test_lexicon_errors_are_one_line(tmp_path, capsys):
    bad = tmp_path / "lex.json"
    bad.write_text(json.dumps({"colour": ["red", "orange"], "fruit": ["orange", "apple"]}))
    with pytest.raises(ClipcompError, match="lex.json: 'orange' is in two types"):
        TypedLexicon.load(str(bad))
    src = tmp_path / "c.txt"
    src.write_text("A red apple on a table.\n")
    for args, msg in ((["--lexicon", str(bad)], "is in two types"),
                      (["--lexicon", str(tmp_path / "none.json")], "none.json: lexicon file not found"),
                      (["--lexicon-only"], "--lexicon-only needs --lexicon"),
                      (["--per-caption", "0"], "per-caption")):
        code, _, err = run_cli(["negatives", "generate", str(src), "-o", str(tmp_path / "o"), *args], capsys)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, (args, err)
    tsv = tmp_path / "lex.tsv"
    tsv.write_text("red\tcolour\nblue\tcolour\napple\tfruit\n")
    assert TypedLexicon.load(str(tsv)).word_type == {"red": "colour", "blue": "colour", "apple": "fruit"}


def test_slipform_reads_a_negatives_file_only_when_its_rows_match(coco_negatives, tmp_path):
    import pyarrow as pa

    from clipcomp.pipelines.slipform import prepare

    root, _, table = coco_negatives
    data, images = str(SAMPLE / "captions_val2017.json"), str(SAMPLE / "images")
    res = prepare(data, str(tmp_path / "ok"), images, k=2, negatives_from=str(root / "neg" / "negatives.parquet"))
    train = pq.read_table(tmp_path / "ok" / "train.parquet").to_pylist()
    assert res["n_pairs"] == len(train) and res["n_with_negative"] > 0.8 * len(train)
    for r in train:  # the two most concrete (raw rating) first; placeholders masked
        conc = [c for c, m in zip(r["concreteness"], r["negative_mask"], strict=True) if m and c is not None]
        assert conc == sorted(conc, reverse=True) and all(0 <= c <= 1 for c in conc)
    shifted = table.set_column(0, "row", pa.array([x + 1 for x in table.column("row").to_pylist()], pa.int64()))
    bad = tmp_path / "shifted.parquet"
    pq.write_table(shifted, bad)
    with pytest.raises(ClipcompError, match="shifted.parquet: its rows do not match the training data"):
        prepare(data, str(tmp_path / "bad"), images, negatives_from=str(bad))
