"""Cement and CE-CLIP losses: values and gradients against a hand computation (NumPy, float64), gradient-share
diagnostics, and a loss registered in a test file trained without any trainer edit."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from clipcomp.train.losses import get_loss_class, make_loss  # noqa: E402
from clipcomp.train.losses.cement import cement_hinge_loss, cement_loss  # noqa: E402


def _logsumexp(x, axis):
    m = x.max(axis=axis, keepdims=True)
    return (m + np.log(np.exp(x - m).sum(axis=axis, keepdims=True))).squeeze(axis)


def hand_reconstruction(img, txt, neg, scale, conc, margin=0.2, gamma=10.0, easy_weight=0.5):
    """clipcomp's Cement reconstruction written out in NumPy (K negatives per image, item-major)."""
    n = img.shape[0]
    k = neg.shape[0] // n
    s_txt = img @ txt.T
    s_neg = np.einsum("nd,nkd->nk", img, neg.reshape(n, k, -1))
    s_pos = np.diag(s_txt)
    c = np.broadcast_to(np.asarray(conc).reshape(n, -1), (n, k))
    d = 1 / (1 + np.exp(-gamma * (s_neg - s_pos[:, None])))
    m = margin * c * d
    logits = np.concatenate([scale * s_txt + np.where(np.eye(n, dtype=bool), 0.0, np.log(easy_weight)),
                             scale * (s_neg + m)], axis=1)
    ce_i2t = np.mean(_logsumexp(logits, 1) - logits[np.arange(n), np.arange(n)])
    lt2i = scale * s_txt.T
    ce_t2i = np.mean(_logsumexp(lt2i, 1) - lt2i[np.arange(n), np.arange(n)])
    return (ce_i2t + ce_t2i) / 2, m


def test_cement_reconstruction_value_gradient_and_easy_down_weighting():
    img, txt, _ = _features(3)
    rng = np.random.default_rng(9)
    neg = np.concatenate([0.7 * txt + 0.3 * rng.normal(size=txt.shape) for _ in range(2)], axis=1).reshape(12, -1)
    neg /= np.linalg.norm(neg, axis=1, keepdims=True)  # K = 2 hard negatives per image
    conc = rng.random(12)
    scale = 14.0
    ti = torch.tensor(img, requires_grad=True)
    loss, parts = cement_loss(ti, torch.tensor(txt), torch.tensor(neg), torch.tensor(scale, dtype=torch.float64),
                              torch.tensor(conc), return_parts=True)
    want, m = hand_reconstruction(img, txt, neg, scale, conc)
    assert float(loss.detach()) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(parts["margins"].numpy(), m, rtol=1e-12)
    loss.backward()
    m_fixed = m  # the margin carries no gradient

    def fixed(x):
        n = x.shape[0]
        s_txt = x @ txt.T
        s_neg = np.einsum("nd,nkd->nk", x, neg.reshape(n, 2, -1))
        logits = np.concatenate([scale * s_txt + np.where(np.eye(n, dtype=bool), 0.0, np.log(0.5)),
                                 scale * (s_neg + m_fixed)], axis=1)
        lt2i = scale * s_txt.T
        return (np.mean(_logsumexp(logits, 1) - logits[np.arange(n), np.arange(n)])
                + np.mean(_logsumexp(lt2i, 1) - lt2i[np.arange(n), np.arange(n)])) / 2

    num = np.zeros_like(img)
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            e = np.zeros_like(img)
            e[i, j] = 1e-6
            num[i, j] = (fixed(img + e) - fixed(img - e)) / 2e-6
    np.testing.assert_allclose(ti.grad.numpy(), num, atol=1e-7)
    # easy in-batch negatives: their gradient relative to a hard negative's is scaled by exactly easy_weight
    grads = {}
    for w in (1.0, 0.25):
        x = torch.tensor(img, requires_grad=True)
        out, pr = cement_loss(x, torch.tensor(txt), torch.tensor(neg), 14.0, torch.tensor(conc), easy_weight=w,
                              return_parts=True)
        pr["sims"].retain_grad()
        out.backward()
        grads[w] = pr["sims"].grad.numpy()
    # the text→image half (the same for both weights) is taken out: the image→text half carries the weighting
    st = torch.tensor(img @ txt.T, requires_grad=True)
    (g_t2i,) = torch.autograd.grad(torch.nn.functional.cross_entropy(14.0 * st.T, torch.arange(6)) / 2, st)
    for w in grads:
        grads[w][:, :6] -= g_t2i.numpy()
    ratio = {w: grads[w][0, 1] / grads[w][0, 6] for w in grads}  # row 0: easy column 1 vs hard column 6
    assert ratio[0.25] / ratio[1.0] == pytest.approx(0.25, rel=1e-10)


def test_placeholder_negatives_leave_the_softmax_not_the_batch():
    """An item without a negative keeps its caption in the contrastive term; its placeholder column is masked:
    the loss equals the one computed with that column removed (NegCLIP) / that entry dropped (Cement)."""
    from clipcomp.train.losses.negclip import negclip_loss

    img, txt, neg = (torch.tensor(a) for a in _features(4))
    mask = torch.tensor([1.0, 0.0, 1.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    placeholder = torch.where(mask[:, None] > 0, neg, txt)  # a missing negative carries the caption itself
    got = negclip_loss(img, txt, placeholder, 10.0, negative_mask=mask)
    want = negclip_loss(img, txt, neg[mask > 0], 10.0)
    assert float(got) == pytest.approx(float(want), rel=1e-12)
    conc = torch.full((6,), 0.7, dtype=torch.float64)
    got_c, parts = cement_loss(img, txt, placeholder, 10.0, conc, negative_mask=mask, return_parts=True)
    want_c, m = hand_reconstruction(img.numpy(), txt.numpy(), neg.numpy(), 10.0, conc.numpy())
    # by hand: rows without a negative have only the captions in their softmax
    n = 6
    s_txt = img.numpy() @ txt.numpy().T
    rows = []
    for i in range(n):
        z = 10.0 * s_txt[i] + np.where(np.arange(n) == i, 0.0, np.log(0.5))
        if mask[i] > 0:
            z = np.append(z, 10.0 * (float(img[i] @ neg[i]) + m[i, 0]))
        rows.append(_logsumexp(z[None, :], 1)[0] - z[i])
    lt2i = 10.0 * s_txt.T
    hand = (np.mean(rows) + np.mean(_logsumexp(lt2i, 1) - lt2i[np.arange(n), np.arange(n)])) / 2
    assert float(got_c) == pytest.approx(hand, rel=1e-12)
    assert 0 <= float(parts["active"]) <= 1


def test_cement_margin_couples_concreteness_and_difficulty():
    img, txt, neg = _features(1)
    scale = torch.tensor(10.0, dtype=torch.float64)
    args = (torch.tensor(img), torch.tensor(txt), torch.tensor(neg), scale)
    zero = cement_loss(*args, torch.zeros(6, dtype=torch.float64), return_parts=True)[1]
    one = cement_loss(*args, torch.ones(6, dtype=torch.float64), return_parts=True)[1]
    assert torch.all(zero["margins"] == 0)  # an abstract change: no margin, however hard the pair
    assert torch.allclose(one["margins"], 0.2 * one["difficulty"])  # product, not sum
    half = cement_loss(*args, torch.full((6,), float("nan"), dtype=torch.float64), return_parts=True)[1]
    assert torch.allclose(half["margins"], 0.1 * one["difficulty"])  # missing = 0.5
    from clipcomp.errors import ClipcompError

    with pytest.raises(ClipcompError, match="easy_weight"):
        cement_loss(*args, easy_weight=0.0)


def hand_cement(img, txt, neg, scale, conc, weight=1.0, margin=0.05, alpha=0.15, beta=0.1, gamma=10.0):
    """The hinge variant's formula written out in NumPy."""
    n = img.shape[0]
    texts = np.concatenate([txt, neg])
    sims = img @ texts.T
    li2t = scale * sims
    lt2i = scale * (txt @ img.T)
    ce_i2t = np.mean(_logsumexp(li2t, 1) - li2t[np.arange(n), np.arange(n)])
    ce_t2i = np.mean(_logsumexp(lt2i, 1) - lt2i[np.arange(n), np.arange(n)])
    s_pos = np.einsum("nd,nd->n", img, txt)
    s_neg = np.einsum("nd,nd->n", img, neg)
    d = 1 / (1 + np.exp(-gamma * (s_neg - s_pos)))
    m = margin + alpha * conc + beta * d
    return (ce_i2t + ce_t2i) / 2 + weight * np.mean(np.maximum(0, m - (s_pos - s_neg)))


def _features(seed=0, n=6, d=8):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(3):
        x = rng.normal(size=(n, d))
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    img, txt, neg = out
    neg = 0.7 * txt + 0.3 * neg  # hard negatives: close to the captions, some margins active
    neg /= np.linalg.norm(neg, axis=1, keepdims=True)
    return img, txt, neg


def test_cement_hinge_value_and_gradient_equal_hand_computation():
    img, txt, neg = _features()
    conc = np.array([0.9, 0.1, 0.5, 0.7, 0.3, 1.0])
    scale = 14.0
    ti = torch.tensor(img, requires_grad=True)
    tt, tn = torch.tensor(txt), torch.tensor(neg)
    loss, parts = cement_hinge_loss(ti, tt, tn, torch.tensor(scale, dtype=torch.float64), torch.tensor(conc),
                              return_parts=True)
    want = hand_cement(img, txt, neg, scale, conc)
    assert float(loss.detach()) == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert float(parts["hinge"].detach()) > 0  # the margin term is active in this case
    loss.backward()
    # the gradient w.r.t. the image features by central differences of the hand formula (margin treated as
    # constant, as the loss detaches it)
    d_fixed = 1 / (1 + np.exp(-10.0 * (np.einsum("nd,nd->n", img, neg) - np.einsum("nd,nd->n", img, txt))))

    def hand_fixed(x):
        n = x.shape[0]
        texts = np.concatenate([txt, neg])
        li2t = scale * x @ texts.T
        lt2i = scale * (txt @ x.T)
        ce = (np.mean(_logsumexp(li2t, 1) - li2t[np.arange(n), np.arange(n)])
              + np.mean(_logsumexp(lt2i, 1) - lt2i[np.arange(n), np.arange(n)])) / 2
        m = 0.05 + 0.15 * conc + 0.1 * d_fixed
        return ce + np.mean(np.maximum(0, m - (np.einsum("nd,nd->n", x, txt) - np.einsum("nd,nd->n", x, neg))))

    num = np.zeros_like(img)
    eps = 1e-6
    for i in range(img.shape[0]):
        for j in range(img.shape[1]):
            e = np.zeros_like(img)
            e[i, j] = eps
            num[i, j] = (hand_fixed(img + e) - hand_fixed(img - e)) / (2 * eps)
    assert np.allclose(ti.grad.numpy(), num, atol=1e-7)


def test_cement_hinge_margin_grows_with_concreteness_and_difficulty():
    img, txt, neg = _features(1)
    scale = torch.tensor(10.0, dtype=torch.float64)
    low = cement_hinge_loss(torch.tensor(img), torch.tensor(txt), torch.tensor(neg), scale,
                            torch.zeros(6, dtype=torch.float64), return_parts=True)[1]["margins"]
    high = cement_hinge_loss(torch.tensor(img), torch.tensor(txt), torch.tensor(neg), scale,
                             torch.ones(6, dtype=torch.float64), return_parts=True)[1]["margins"]
    assert torch.allclose(high - low, torch.full_like(low, 0.15))
    # a missing concreteness (NaN) counts as 0.5
    mid = cement_hinge_loss(torch.tensor(img), torch.tensor(txt), torch.tensor(neg), scale,
                      torch.full((6,), float("nan"), dtype=torch.float64), return_parts=True)[1]["margins"]
    assert torch.allclose(mid - low, torch.full_like(low, 0.075))


def test_cement_options_and_errors():
    loss = make_loss("cement-hinge", margin=0.2, alpha=0.0)
    assert loss.options["margin"] == 0.2 and loss.options["alpha"] == 0.0
    assert make_loss("cement", easy_weight=0.3).options["easy_weight"] == 0.3
    from clipcomp.errors import ClipcompError

    with pytest.raises(ClipcompError, match="no option"):
        make_loss("cement", margn=0.2)
    assert set(get_loss_class("cement").batch_fields()) == {"hard_negatives", "concreteness"}
    assert get_loss_class("ceclip").text_fields == ("hard_negatives",)


@pytest.mark.parametrize("name", ["cement", "cement-hinge"])
def test_gradient_shares_sum_to_one_and_measure_hard_negatives(name):
    img, txt, neg = _features(2)
    loss = make_loss(name)
    loss.log_step = True
    out = loss(torch.tensor(img, requires_grad=True), torch.tensor(txt), torch.tensor(14.0, dtype=torch.float64),
               hard_negatives_features=torch.tensor(neg), concreteness=torch.full((6,), 0.5, dtype=torch.float64))
    d = loss.diagnostics()
    assert d["grad_share_easy"] + d["grad_share_hard"] == pytest.approx(1.0)
    assert 0 < d["grad_share_hard"] < 1 and 0 <= d["active_margin_fraction"] <= 1 and d["margin_mean"] >= 0
    # the same shares by hand: |dL/dS| on the hard-negative block over all negative entries
    n = 6
    labels = torch.arange(n)
    if name == "cement":  # columns: captions, then the row's own negative (K = 1)
        s_neg0 = (torch.tensor(img) * torch.tensor(neg)).sum(1, keepdim=True)
        sims = torch.cat([torch.tensor(img) @ torch.tensor(txt).T, s_neg0], 1).requires_grad_(True)
        s_pos, s_neg = sims[labels, labels], sims[:, n]
        m = (0.2 * 0.5 * torch.sigmoid(10 * (s_neg - s_pos))).detach()
        off = torch.zeros_like(sims)
        off[:, :n] = torch.where(torch.eye(n, dtype=torch.bool), 0.0, float(np.log(0.5)))
        off[:, n] = 14.0 * m
        total = (torch.nn.functional.cross_entropy(14.0 * sims + off, labels)
                 + torch.nn.functional.cross_entropy(14.0 * sims[:, :n].T, labels)) / 2
    else:
        sims = torch.tensor(img) @ torch.cat([torch.tensor(txt), torch.tensor(neg)]).T
        sims.requires_grad_(True)
        ce = (torch.nn.functional.cross_entropy(14.0 * sims, labels)
              + torch.nn.functional.cross_entropy(14.0 * sims[:, :n].T, labels)) / 2
        s_pos, s_neg = sims[labels, labels], sims[labels, n + labels]
        m = 0.05 + 0.15 * 0.5 + 0.1 * torch.sigmoid(10 * (s_neg - s_pos)).detach()
        total = ce + torch.relu(m - (s_pos - s_neg)).mean()
    (g,) = torch.autograd.grad(total, sims)
    g = g.abs()
    easy = g[:, :n].sum() - g[labels, labels].sum()
    hard = g[:, n:].sum()
    assert d["grad_share_hard"] == pytest.approx(float(hard / (easy + hard)), rel=1e-9)
    assert float(out.detach()) == pytest.approx(float(total.detach()), rel=1e-9)


def test_ceclip_itm_head_is_trainable_and_terms_are_reported():
    img, txt, neg = _features(3)
    loss = make_loss("ceclip")
    loss.log_step = True
    value = loss(torch.tensor(img, dtype=torch.float32, requires_grad=True), torch.tensor(txt, dtype=torch.float32),
                 torch.tensor(14.0),
                 hard_negatives_features=torch.tensor(neg, dtype=torch.float32))
    value.backward()
    assert loss.itm_scale.grad is not None and loss.itm_bias.grad is not None
    d = loss.diagnostics()
    assert {"itm", "rank", "grad_share_hard"} <= set(d)


SAMPLE = Path(__file__).parent / "data" / "coco_sample"


@pytest.mark.parametrize("loss", ["cement", "ceclip"])
def test_hard_negative_losses_train_on_real_pairs_and_log_gradient_shares(tmp_path, loss):
    """Registered losses run in the unchanged trainer: the declared fields arrive, the diagnostics are logged."""
    from clipcomp.train.trainer import TrainConfig, train

    d = json.loads((SAMPLE / "captions_val2017.json").read_text())
    files = {im["id"]: im["file_name"] for im in d["images"]}
    path = tmp_path / "pairs.csv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["filepath", "title", "neg", "conc"])
        for i, a in enumerate(d["annotations"][:40]):
            cap = a["caption"].strip()
            w.writerow([str(SAMPLE / "images" / files[a["image_id"]]), cap, cap.replace("a ", "two ", 1),
                        (i % 5) / 4])
    fields = {"hard_negatives": "neg", "concreteness": "conc"} if loss == "cement" else {"hard_negatives": "neg"}
    res = train(TrainConfig(data=str(path), model="clipcomp-micro", steps=3, batch_size=8, lr=1e-3, warmup=0,
                            loss=loss, fields=fields, log_every=1, out=str(tmp_path / "run"), workers=0,
                            threads=1), progress=False)
    assert res["steps_done"] == 3
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(lines) == 3
    for x in lines:
        assert x["grad_share_easy"] + x["grad_share_hard"] == pytest.approx(1.0)
        assert ("active_margin_fraction" in x and "margin_mean" in x) if loss == "cement" else ("itm" in x)
    from clipcomp.train.plots import plot_metric, read_metric

    steps, shares = read_metric(str(tmp_path / "run" / "metrics.jsonl"), "grad_share_hard")
    assert steps.tolist() == [1, 2, 3] and ((shares > 0) & (shares < 1)).all()
    png = plot_metric({loss: [str(tmp_path / "run" / "metrics.jsonl")]}, "grad_share_hard",
                      str(tmp_path / "g.png"), "shares")
    assert Path(png).stat().st_size > 1000
    if loss == "ceclip":  # the matching head's parameters are saved with the checkpoint
        ck = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=False)
        assert set(ck["loss_state"]) == {"itm_scale", "itm_bias"}
