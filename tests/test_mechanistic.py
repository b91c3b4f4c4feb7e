"""CKA against reference properties and a direct formula; shared-unit Jaccard exact on a network with known
attributions; the report on a generated domain dataset."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("captum")

from clipcomp.similarity.mechanistic import (  # noqa: E402
    class_shared_units,
    hsic_unbiased,
    jaccard,
    linear_cka,
    node_effects,
    rbf_cka,
    shared_units,
    top_units,
    top_units_ceil,
    unit_attributions,
)


def test_cka_invariances_and_independence():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 20))
    q, _ = np.linalg.qr(rng.normal(size=(20, 20)))
    for unbiased in (False, True):
        assert linear_cka(x, x @ q, unbiased) == pytest.approx(1.0, abs=1e-9)  # orthogonal transform
        assert linear_cka(x, 3.7 * x, unbiased) == pytest.approx(1.0, abs=1e-9)  # isotropic scaling
        assert rbf_cka(x, x @ q, unbiased=unbiased) == pytest.approx(1.0, abs=1e-9)  # distances preserved
    big = rng.normal(size=(2000, 10))
    noise = rng.normal(size=(2000, 10))
    assert abs(linear_cka(big, noise, unbiased=True)) < 0.01  # independent: ≈ 0 (unbiased)
    assert linear_cka(big, noise, unbiased=False) < 0.02
    y = x[:, :5] @ rng.normal(size=(5, 8))  # a related but not equivalent representation
    assert 0.2 < linear_cka(x, y) < 1.0


def test_linear_cka_equals_the_feature_space_formula():
    """Biased linear CKA = ||Yc^T Xc||_F^2 / (||Xc^T Xc||_F ||Yc^T Yc||_F) (Kornblith et al., eq. 6)."""
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(12, 7))
    xc, yc = x - x.mean(0), y - y.mean(0)
    ref = np.linalg.norm(yc.T @ xc) ** 2 / (np.linalg.norm(xc.T @ xc) * np.linalg.norm(yc.T @ yc))
    assert linear_cka(x, y) == pytest.approx(ref, rel=1e-12)


def test_unbiased_hsic_matches_the_definition_on_small_cases():
    """Song et al. (2012): HSIC_1 = 1/(n(n-3)) [tr(K~L~) + 1'K~1 1'L~1 / ((n-1)(n-2)) - 2/(n-2) 1'K~L~1],
    written out with explicit sums over index tuples."""
    rng = np.random.default_rng(2)
    for n in (4, 5, 7):
        x, y = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
        k, l = x @ x.T, y @ y.T  # noqa: E741
        kt, lt = k.copy(), l.copy()
        np.fill_diagonal(kt, 0)
        np.fill_diagonal(lt, 0)
        a = sum(kt[i, j] * lt[j, i] for i in range(n) for j in range(n))
        b = sum(kt[i, j] for i in range(n) for j in range(n)) * sum(lt[i, j] for i in range(n) for j in range(n))
        c = sum(kt[i, j] * lt[j, m] for i in range(n) for j in range(n) for m in range(n))
        ref = (a + b / ((n - 1) * (n - 2)) - 2.0 / (n - 2) * c) / (n * (n - 3))
        assert hsic_unbiased(k, l) == pytest.approx(ref, rel=1e-10)


class _Known(torch.nn.Module):
    """logit_c(x) = sum_j W[c, j] · h_j with h = x ⊙ g: integrated gradients of h_j from a zero baseline are
    exactly W[c, j] · h_j, so each domain's top units are known in advance."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.gate = torch.nn.Identity()
        self.w = w

    def forward(self, x):
        return self.gate(x) @ self.w.T


def test_shared_unit_jaccard_is_exact_on_a_constructed_network():
    d = 20
    w = torch.ones(2, d)
    net = _Known(w)
    active = {"a": [0, 1, 2, 3], "b": [2, 3, 4, 5], "c": [10, 11, 12, 13]}
    scores = {}
    for name, units in active.items():
        x = torch.zeros(6, d)
        x[:, units] = torch.linspace(1.0, 2.0, len(units))  # distinct magnitudes inside the active set
        scores[name] = unit_attributions(net, net.gate, x, np.zeros(6, int), n_steps=8)
        expected = np.zeros(d)
        expected[units] = np.linspace(1.0, 2.0, len(units))
        np.testing.assert_allclose(scores[name], expected, rtol=1e-5, atol=1e-7)
        assert top_units(scores[name], 4 / d) == set(units)
    names, m = shared_units(scores, 4 / d)
    assert names == ["a", "b", "c"]
    assert m[0, 1] == pytest.approx(2 / 6) and m[0, 2] == 0.0 and m[1, 1] == 1.0
    assert jaccard({1, 2}, {2, 3}) == pytest.approx(1 / 3)


class _Tokens(torch.nn.Module):
    """A layer with (N, tokens, D) output; logit_c = (sum over tokens of h) · W[c], or its square."""

    def __init__(self, w: torch.Tensor, square: bool = False) -> None:
        super().__init__()
        self.gate = torch.nn.Identity()
        self.w, self.square = w, square

    def forward(self, x):
        z = self.gate(x).sum(dim=1) @ self.w.T
        return z * z if self.square else z


def test_node_effects_equal_the_hand_computation():
    """Kempf's effect: mean over α ∈ {0, .1, …, .9} of d logit / d f at f = (1 − α)h, times (0 − h), summed over
    tokens, averaged over images. Linear logit: −W[c] ⊙ Σ_t h. Squared logit s²: 2 · mean(1 − α) · s · W[c] ⊙ (−Σ_t h)
    with mean(1 − α) = 0.55."""
    rng = np.random.default_rng(3)
    w = torch.tensor(rng.normal(size=(3, 6)), dtype=torch.float64)
    x = torch.tensor(rng.normal(size=(5, 4, 6)), dtype=torch.float64)
    t = np.array([0, 1, 2, 1, 0])
    hs = x.sum(dim=1).numpy()
    wn = w.numpy()
    net = _Tokens(w)
    lin = node_effects(net, net.gate, x, t, n_steps=10, batch_size=2)
    np.testing.assert_allclose(lin, np.mean([-wn[c] * h for c, h in zip(t, hs, strict=True)], axis=0), rtol=1e-10)
    sq = _Tokens(w, square=True)
    got = node_effects(sq, sq.gate, x, t, n_steps=10, batch_size=3)
    ref = np.mean([2 * 0.55 * (h @ wn[c]) * wn[c] * (-h) for c, h in zip(t, hs, strict=True)], axis=0)
    np.testing.assert_allclose(got, ref, rtol=1e-10)
    items = node_effects(sq, sq.gate, x, t, n_steps=10, batch_size=4, per_item=True)
    assert items.shape == (5, 6)
    np.testing.assert_allclose(items.mean(axis=0), ref, rtol=1e-10)


def test_per_class_shared_units_are_exact():
    """Per class: top ceil(10 %) units by |effect|, Jaccard between domains, mean over the classes both have."""
    d = 20  # ceil(0.1 × 20) = 2 units per (domain, class)
    net = _Tokens(torch.ones(3, d, dtype=torch.float64))
    active = {"natural": {"a": [0, 1], "b": [2, 3]}, "sketch": {"a": [0, 5], "b": [2, 3]},
              "doodle": {"a": [7, 8], "b": [9, 10], "c": [11, 12]}}
    effects = {}
    for dom, by_class in active.items():
        effects[dom] = {}
        for ci, (c, units) in enumerate(by_class.items()):
            x = torch.zeros(4, 2, d, dtype=torch.float64)
            x[:, 0, units] = torch.tensor([1.0, 2.0], dtype=torch.float64)
            x[:, 1, 15] = 0.01  # small: never in the top 2
            effects[dom][c] = node_effects(net, net.gate, x, np.full(4, ci), n_steps=10)
            assert top_units_ceil(effects[dom][c], 0.1) == set(units)
    names, m, per_class = class_shared_units(effects, 0.1)
    assert names == ["natural", "sketch", "doodle"]
    assert per_class["a"][0, 1] == pytest.approx(1 / 3) and per_class["b"][0, 1] == 1.0
    assert m[0, 1] == pytest.approx((1 / 3 + 1.0) / 2)  # mean over classes a, b
    assert m[0, 2] == 0.0 and np.isnan(per_class["c"][0, 2])  # natural has no class c: left out of the mean


def test_mech_report_on_generated_domains(tmp_path):
    from clipcomp.similarity.mechanistic import domain_similarity, list_layers, mech_report
    from clipcomp.synth.domains import DomainSpec, generate_domains

    man = generate_domains(DomainSpec(out=str(tmp_path / "d"), per_cell=4, classes=["circle", "square", "triangle",
                                                                                     "star", "cross"],
                                      domains=["natural", "sketch", "quickdraw"]))
    res = mech_report(man, str(tmp_path / "m"), model="clipcomp-micro", attr_per_class=2, n_steps=3)
    assert res["units"] == "per-class" and res["top_frac"] == 0.1
    some = next(iter(res["shared_units"].values()))
    assert set(some["per_class"]) == {"circle", "square", "triangle", "star", "cross"}
    assert res["layers"] == list_layers(__import__("clipcomp.models", fromlist=["x"]).load_model("clipcomp-micro")
                                        .model)
    for m in res["cka_linear"].values():
        assert np.allclose(np.diag(np.array(m)), 1.0)
    sim = domain_similarity(res, "natural")
    assert set(sim) == {"sketch", "quickdraw"} and all(0 <= v["jaccard"] <= 1 for v in sim.values())
    for f in ("report.md", "cka.png", "units.png"):
        assert (tmp_path / "m" / f).stat().st_size > 0
    assert json.loads((tmp_path / "m" / "mech.json").read_text())["domains"] == ["natural", "quickdraw", "sketch"]


def test_mech_report_refuses_too_few_classes(tmp_path):
    from clipcomp.errors import ClipcompError
    from clipcomp.similarity.mechanistic import mech_report
    from clipcomp.synth.domains import DomainSpec, generate_domains

    man = generate_domains(DomainSpec(out=str(tmp_path / "d"), per_cell=3, classes=["circle", "square"],
                                      domains=["natural", "sketch"]))
    with pytest.raises(ClipcompError, match="2 class.*at least 4 classes"):
        mech_report(man, str(tmp_path / "m"), model="clipcomp-micro")
