"""DisMax (Macedo et al. 2022): head, loss with and without FPR, the FPR batch, the MMLS/MMLES/MMLEPS scores.

Every formula is checked against a direct float64 transcription of ../shared/docs/DISMAX.md (loops
where the library vectorises), gradients by finite differences, and the toolchain guarantees
(compile without graph breaks, export) as for the other heads; a CLI train + evaluate + calibrate
smoke test runs on the generated Fashion-MNIST fixture.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest
import torch
from torch import nn

import isomax
from fixture_data import make_fashion_mnist
from isomax import DisMaxHead, DisMaxLoss, fpr_batch, scores
from isomax.deploy.export import _traceable_head_logits, graph_score
from isomax.heads import canonical_head_name, head_kind, make_head
from isomax.losses import make_loss

F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Direct float64 transcriptions of the formulas (loops, no shared code with the library)
# ---------------------------------------------------------------------------------------------
def ref_logits(f, p, s, t):
    """z_j = -(d_j + mean_k d_k) / T, d_j = |s| |f^ - p^_j| / sqrt(2)."""
    f, p = f.double(), p.double()
    out = torch.empty(f.shape[0], p.shape[0], dtype=F64)
    for i in range(f.shape[0]):
        fi = f[i] / max(float(f[i].norm()), 1e-12)
        d = [
            abs(float(s)) * float((fi - p[j] / max(float(p[j].norm()), 1e-12)).norm()) / math.sqrt(2)
            for j in range(p.shape[0])
        ]
        mean = sum(d) / len(d)
        for j in range(p.shape[0]):
            out[i, j] = -(d[j] + mean) / float(t)
    return out


def ref_log_softmax_row(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def ref_loss(z, y, es=10.0):
    """-log softmax(E_s z)_y, probability first, logarithm second, mean over rows."""
    total = 0.0
    for i in range(z.shape[0]):
        e = [math.exp(es * float(v)) for v in z[i]]
        total += -math.log(e[int(y[i])] / sum(e))
    return total / z.shape[0]


def ref_fpr_loss(z, targets, es=10.0, alpha=1.0):
    n = z.shape[0]
    h = n // 2
    l1 = sum(-ref_log_softmax_row([es * float(v) for v in z[i]])[int(targets[i, 0])] for i in range(h)) / h
    l2 = 0.0
    for i in range(h, n):
        t = [0.0] * z.shape[1]
        for c in targets[i]:
            t[int(c)] += 0.25
        log_p = ref_log_softmax_row([es * float(v) for v in z[i]])
        l2 += sum(tj * (math.log(tj) - lp) for tj, lp in zip(t, log_p) if tj > 0)
    l2 /= n - h
    return (l1 + alpha * l2) / 2


def ref_scores(z):
    out = {"mmls": [], "mmles": [], "mmleps": []}
    for row in z.double().tolist():
        e = [math.exp(v) for v in row]
        p = [v / sum(e) for v in e]
        mml = max(row) + sum(row) / len(row)
        ent = sum(pj * math.log(pj) for pj in p)
        out["mmls"].append(mml)
        out["mmles"].append(mml + ent)
        out["mmleps"].append(mml + ent + max(p))
    return {k: torch.tensor(v, dtype=F64) for k, v in out.items()}


def _head(f=12, c=5, dtype=F64, seed=0, scale=-1.7, temperature=1.3):
    torch.manual_seed(seed)
    head = DisMaxHead(f, c, dtype=dtype)
    with torch.no_grad():
        head.distance_scale.fill_(scale)  # |d_s| is what counts
    head.temperature = temperature
    return head


# ---------------------------------------------------------------------------------------------
# Head
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype, tol", [(F64, 1e-12), (torch.float32, 2e-6)], ids=["float64", "float32"])
@pytest.mark.parametrize("batch, classes", [(7, 5), (1, 3), (4, 1), (16, 10)])
def test_head_logits_equal_the_formula(dtype, tol, batch, classes):
    head = _head(9, classes, dtype=dtype)
    f = 3 * torch.randn(batch, 9, dtype=dtype)
    f[0] = head.prototypes.detach()[0] * 2.5  # a feature on a prototype's direction: distance 0
    got = head(f)
    assert got.dtype == dtype and got.shape == (batch, classes)
    expected = ref_logits(f, head.prototypes.detach(), head.distance_scale.detach(), head.temperature)
    torch.testing.assert_close(got.double(), expected, rtol=tol, atol=tol)


def test_head_defaults_buffers_and_linear_habits():
    torch.manual_seed(0)
    head = make_head("dismax", 6, 4, dtype=F64)
    assert type(head) is DisMaxHead and type(make_head("dismax-fpr", 6, 4)) is DisMaxHead
    assert list(head.state_dict()) == ["prototypes", "distance_scale", "temperature"]
    assert (
        float(head.distance_scale.detach()) == 1.0 and float(head.temperature) == 1.0 and head.prototypes.dtype == F64
    )
    assert (head.in_features, head.out_features) == (6, 4)
    assert "in_features=6, out_features=4" in repr(head)
    assert DisMaxHead(6, 4, device="meta").prototypes.is_meta
    with pytest.raises(ValueError, match="`dtype`"):
        DisMaxHead(6, 4, dtype=torch.int64)
    with pytest.raises(ValueError, match="`num_classes`"):
        DisMaxHead(6, 0)
    with pytest.raises(ValueError, match="`temperature`"):
        DisMaxHead(6, 4, temperature=0.0)
    with pytest.raises(ValueError, match=r"`features`.*\(batch, 6\)"):
        head(torch.randn(2, 5, dtype=F64))
    with pytest.raises(ValueError, match="`features`.*NaN"):
        head(torch.full((2, 6), float("nan"), dtype=F64))
    # reset_parameters keeps the temperature, restores d_s = 1 and fresh N(0, 1) prototypes
    with torch.no_grad():
        head.prototypes.zero_()
        head.distance_scale.fill_(3.0)
    head.temperature = 2.0
    head.reset_parameters()
    assert (
        float(head.distance_scale.detach()) == 1.0
        and head.prototypes.abs().sum() > 0
        and float(head.temperature) == 2.0
    )


def test_temperature_divides_the_enhanced_logits_and_distances_are_plain():
    head = _head(temperature=1.0)
    f = torch.randn(5, 12, dtype=F64)
    before = head(f)
    head.temperature = 4.0
    torch.testing.assert_close(head(f), before / 4.0, rtol=1e-13, atol=1e-13)
    ref = torch.cdist(torch.nn.functional.normalize(f), torch.nn.functional.normalize(head.prototypes.detach()))
    torch.testing.assert_close(head.distances(f), ref, rtol=1e-10, atol=1e-10)


def test_convert_swaps_in_a_dismax_head():
    model = isomax.convert(nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)), head="dismax", module="2")
    assert type(model[2]) is DisMaxHead and (model[2].in_features, model[2].out_features) == (8, 3)


def test_names_and_losses():
    assert canonical_head_name("DisMax") == "dismax"
    for alias in ("dismax-fpr", "dismax+fpr", "dismax_fpr", "DISMAXFPR"):
        assert canonical_head_name(alias) == "dismax-fpr" and head_kind(alias) == "dismax"
    plain, fpr = make_loss("dismax"), make_loss("dismax+fpr", 7.0)
    assert type(plain) is DisMaxLoss and not plain.fpr and fpr.fpr and fpr.entropic_scale == 7.0
    assert "fpr=True" in repr(fpr) and "fpr" not in repr(plain)
    with pytest.raises(ValueError, match="`fpr`"):
        DisMaxLoss(fpr="yes")
    with pytest.raises(ValueError, match="`alpha`"):
        DisMaxLoss(alpha=-1.0)


# ---------------------------------------------------------------------------------------------
# Loss without and with FPR
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_without_fpr_equals_the_formula(seed):
    head = _head(seed=seed)
    f, y = torch.randn(9, 12, dtype=F64), torch.randint(0, 5, (9,))
    z = head(f)
    expected = ref_loss(z.detach(), y)
    for loss in (DisMaxLoss(), make_loss("dismax"), make_loss("dismax-fpr")):  # class targets: the plain loss
        torch.testing.assert_close(loss(z, y).item(), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("n", [2, 3, 8, 9])
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_fpr_loss_equals_the_formula(n, alpha):
    g = torch.Generator().manual_seed(n)
    z = torch.randn(n, 6, generator=g, dtype=F64)
    targets = torch.randint(0, 6, (n, 4), generator=g)
    targets[: n // 2] = targets[: n // 2, :1]  # the plain half: one label
    targets[-1] = 3  # a mosaic of four images of one class: target one-hot
    got = DisMaxLoss(fpr=True, alpha=alpha)(z, targets)
    torch.testing.assert_close(got.item(), ref_fpr_loss(z, targets, alpha=alpha), rtol=1e-12, atol=1e-12)


def test_fpr_loss_finite_where_the_reference_probability_underflows():
    z = torch.tensor([[0.0, -200.0], [0.0, -200.0]], dtype=F64, requires_grad=True)  # E_s z: exp(-2000) = 0
    targets = torch.tensor([[1, 1, 1, 1], [0, 1, 0, 1]])
    loss = DisMaxLoss(fpr=True)(z, targets)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(z.grad).all()
    torch.testing.assert_close(
        loss.item(), ((2000.0) + 0.5 * math.log(0.5) + 0.5 * (math.log(0.5) + 2000.0)) / 2, rtol=1e-9, atol=1e-9
    )


def test_fpr_loss_bad_input():
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="fpr=True"):
        DisMaxLoss()(z, torch.zeros(4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\(batch, 4\)"):
        DisMaxLoss(fpr=True)(z, torch.zeros(4, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="at least 2"):
        DisMaxLoss(fpr=True)(z[:1], torch.zeros(1, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"`targets`.*\[0, 2\]"):
        DisMaxLoss(fpr=True)(z, torch.full((4, 4), 3))
    with pytest.raises(ValueError, match="reduction='mean'"):
        DisMaxLoss(fpr=True, reduction="sum")(z, torch.zeros(4, 4, dtype=torch.int64))
    with pytest.raises(ValueError, match="`logits`.*NaN"):
        DisMaxLoss(fpr=True)(torch.full((4, 3), float("nan")), torch.zeros(4, 4, dtype=torch.int64))


# ---------------------------------------------------------------------------------------------
# The FPR batch, pixel by pixel
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, height, width", [(7, 5, 3), (8, 4, 4), (2, 3, 6), (9, 32, 32)])
@pytest.mark.parametrize("layout", ["float", "uint8-channels-last"])
def test_fpr_batch_pixel_by_pixel(n, height, width, layout):
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (n, 2, height, width), generator=g).to(torch.uint8 if "uint8" in layout else F64)
    if "channels-last" in layout:
        images = images.contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, 10, (n,), generator=g)
    original, original_labels = images.clone(), labels.clone()
    x, targets = fpr_batch(images, labels, generator=torch.Generator().manual_seed(5))
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(5)).tolist()  # the same draw
    assert torch.equal(images, original) and torch.equal(labels, original_labels)  # inputs untouched
    assert x.shape == images.shape and x.dtype == images.dtype and targets.shape == (n, 4)
    h, m = n // 2, n - n // 2
    for i in range(n):
        if i < h:
            assert torch.equal(x[i], images[perm[i]])
            assert targets[i].tolist() == [int(labels[perm[i]])] * 4
            continue
        k = i - h
        src = [perm[h + (k - shift) % m] for shift in range(4)]  # top-left, bottom-left, top-right, bottom-right
        assert targets[i].tolist() == [int(labels[s]) for s in src]
        for r in range(height):
            for c in range(width):
                shift = (1 if r >= height // 2 else 0) + (2 if c >= width // 2 else 0)
                assert torch.equal(x[i, :, r, c], images[src[shift], :, r, c]), (i, r, c)


def test_fpr_batch_bad_input_and_global_generator():
    with pytest.raises(ValueError, match="`images`"):
        fpr_batch(torch.zeros(4, 8, 8), torch.zeros(4, dtype=torch.int64))
    with pytest.raises(ValueError, match="`labels`.*4"):
        fpr_batch(torch.zeros(4, 1, 8, 8), torch.zeros(3, dtype=torch.int64))
    with pytest.raises(ValueError, match="at least 2"):
        fpr_batch(torch.zeros(1, 1, 8, 8), torch.zeros(1, dtype=torch.int64))
    x, t = fpr_batch(torch.randn(6, 3, 8, 8), torch.arange(6))  # the global generator
    assert x.shape == (6, 3, 8, 8) and sorted(t[:3, 0].tolist() + t[3:, 0].tolist()) == list(range(6))
    same_x, same_y = DisMaxLoss().batch_transform(x, t[:, 0])  # without FPR: unchanged
    assert same_x is x and torch.equal(same_y, t[:, 0])


# ---------------------------------------------------------------------------------------------
# Scores
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed, classes", [(0, 2), (1, 5), (2, 10)])
def test_scores_equal_the_formulas(seed, classes):
    z = 3 * torch.randn(8, classes, generator=torch.Generator().manual_seed(seed), dtype=F64)
    ref = ref_scores(z)
    torch.testing.assert_close(scores.max_mean_logit_score(z), ref["mmls"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(scores.max_mean_logit_entropy_score(z), ref["mmles"], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(
        scores.max_mean_logit_entropy_probability_score(z), ref["mmleps"], rtol=1e-12, atol=1e-12
    )
    for name in ("mmls", "mmles", "mmleps"):
        torch.testing.assert_close(scores.SCORES[name](z), ref[name], rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(graph_score(name, z), ref[name], rtol=1e-12, atol=1e-12)  # the exported graph's


def test_scores_direction_and_finite_when_probabilities_underflow():
    z = torch.tensor([[-0.1, -1.5, -1.5, -1.5], [-1.0, -1.0, -1.0, -1.0]], dtype=F64)
    for name in ("mmls", "mmles", "mmleps"):
        s = scores.SCORES[name](z)
        assert s[0] > s[1], name
        assert torch.isfinite(scores.SCORES[name](torch.tensor([[0.0, -1e4, -2.0]]))).all()
    with pytest.raises(ValueError, match="`logits`.*NaN"):
        scores.max_mean_logit_entropy_score(torch.tensor([[0.0, float("nan")]]))


def test_temperature_scales_mmls_and_reorders_mmles():
    z = 3 * torch.randn(64, 5, generator=torch.Generator().manual_seed(7), dtype=F64)
    torch.testing.assert_close(scores.max_mean_logit_score(z / 2.0), scores.max_mean_logit_score(z) / 2.0)
    assert not torch.equal(
        scores.max_mean_logit_entropy_score(z / 2.0).argsort(), scores.max_mean_logit_entropy_score(z).argsort()
    )


def test_applicable_and_default_scores():
    from isomax.deploy.threshold import default_score
    from isomax.evaluation import applicable_scores

    for loss in ("dismax", "dismax-fpr"):
        assert default_score(loss) == "mmles"
        assert {"mmls", "mmles", "mmleps", "es", "mds"} <= set(applicable_scores(loss))
    assert default_score("isomaxplus") == "mds" and "mmles" not in applicable_scores("isomaxplus")


# ---------------------------------------------------------------------------------------------
# Gradients by finite differences (float64)
# ---------------------------------------------------------------------------------------------
def test_head_gradcheck():
    head = _head(6, 4)
    f = torch.randn(5, 6, dtype=F64, requires_grad=True)
    p = head.prototypes.detach().clone().requires_grad_()
    s = head.distance_scale.detach().clone().requires_grad_()
    t = torch.tensor(1.3, dtype=F64, requires_grad=True)

    def fn(f, p, s, t):
        return torch.func.functional_call(head, {"prototypes": p, "distance_scale": s, "temperature": t}, (f,))

    assert torch.autograd.gradcheck(fn, (f, p, s, t))


@pytest.mark.parametrize("fpr", [False, True], ids=["plain", "fpr"])
def test_head_and_loss_gradcheck(fpr):
    head = _head(6, 4)
    f = torch.randn(7, 6, dtype=F64, requires_grad=True)
    p = head.prototypes.detach().clone().requires_grad_()
    s = head.distance_scale.detach().clone().requires_grad_()
    targets = torch.randint(0, 4, (7, 4) if fpr else (7,), generator=torch.Generator().manual_seed(3))
    loss = DisMaxLoss(fpr=fpr)

    def fn(f, p, s):
        return loss(torch.func.functional_call(head, {"prototypes": p, "distance_scale": s}, (f,)), targets)

    assert torch.autograd.gradcheck(fn, (f, p, s))


# ---------------------------------------------------------------------------------------------
# Toolchain: torch.compile(fullgraph=True) without graph breaks, torch.export, the export head path
# ---------------------------------------------------------------------------------------------
def _breaks(fn, *args):
    torch._dynamo.reset()
    result = torch._dynamo.explain(fn)(*args)
    return result.graph_break_count, [str(b.reason) for b in result.break_reasons]


@pytest.mark.parametrize("fpr", [False, True], ids=["plain", "fpr"])
def test_compile_fullgraph_head_loss_scores_equal_eager(fpr):
    torch.manual_seed(0)
    head, loss = DisMaxHead(16, 5), DisMaxLoss(fpr=fpr)
    features = torch.randn(8, 16)
    targets = torch.randint(0, 5, (8, 4) if fpr else (8,))

    def step(f, y):
        logits = head(f)
        return loss(logits, y), scores.max_mean_logit_entropy_score(logits), scores.max_mean_logit_score(logits)

    assert _breaks(step, features, targets) == (0, [])
    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    results = []
    for fn in (step, compiled):
        head.zero_grad(set_to_none=True)
        f = features.clone().requires_grad_()
        out = fn(f, targets)
        out[0].backward()
        results.append((tuple(o.detach() for o in out), f.grad, [q.grad for q in head.parameters()]))
    torch.testing.assert_close(results[1], results[0], rtol=1e-5, atol=1e-6)


def test_torch_export_dynamic_batch_and_traceable_head():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), DisMaxHead(16, 5)).eval()
    program = torch.export.export(model, (torch.randn(4, 12),), dynamic_shapes=({0: torch.export.Dim("batch")},))
    for n in (1, 7):
        x = torch.randn(n, 12)
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-6, atol=1e-6)
    head = _head(16, 5, dtype=torch.float32)  # the legacy ONNX exporter's plain-ops path
    f = torch.randn(6, 16)
    torch.testing.assert_close(_traceable_head_logits(head, f), head(f), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Training and the CLI
# ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fixture_data(tmp_path_factory):
    return make_fashion_mnist(tmp_path_factory.mktemp("data"))


def _run_cli(*args):
    env = {**os.environ, "ISOMAX_VERIFY": "0"}
    proc = subprocess.run([sys.executable, "-m", "isomax", *map(str, args)], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def test_fpr_training_is_deterministic_and_learns(fixture_data, tmp_path, monkeypatch):
    from isomax.presets import Runtime, TrainConfig
    from isomax.training import train

    monkeypatch.setenv("ISOMAX_VERIFY", "0")
    rt = Runtime(eval_batch_size=128, data_dir=str(fixture_data), device="cpu", threads=1)
    cfg = TrainConfig(
        dataset="fashion-mnist",
        model="cnn-28",
        epochs=2,
        batch_size=32,
        lr=0.05,
        train_limit=256,
        loss="dismax-fpr",
    )
    calls = []
    original = fpr_batch

    def spy(images, labels, **kw):
        calls.append(images.shape)
        return original(images, labels, **kw)

    monkeypatch.setattr("isomax.losses.fpr_batch", spy)
    a = train(cfg, tmp_path / "a", runtime=rt, progress=False, log=lambda s: None)
    assert len(calls) == 2 * (256 // 32) and calls[0] == (32, 1, 28, 28)  # every training step, no other
    b = train(cfg, tmp_path / "b", runtime=rt, progress=False, log=lambda s: None)
    wa, wb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert type(a.model.head) is DisMaxHead
    # learns (2 epochs on 256 fixture images: well above chance, 10%, and the loss falls)
    assert a.history[-1].val_accuracy >= 0.2 and a.history[-1].train_loss < a.history[0].train_loss
    assert a.history[-1].distance_scale is not None


def test_cli_train_evaluate_calibrate(fixture_data, tmp_path):
    run = tmp_path / "run"
    _run_cli(
        "train",
        "--loss",
        "dismax-fpr",
        "--epochs",
        "1",
        "--train-limit",
        "128",
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--data-dir",
        fixture_data,
        "--out",
        run,
        "--no-progress",
    )
    assert json.loads((run / "config.json").read_text())["loss"] == "dismax-fpr"
    assert json.loads((run / "threshold.json").read_text())["score"] == "mmles"  # DisMax's default score
    ev = tmp_path / "eval"
    _run_cli(
        "evaluate",
        run,
        "--ood",
        "gaussian",
        "--data-dir",
        fixture_data,
        "--out",
        ev,
        "--device",
        "cpu",
        "--no-progress",
    )
    records = json.loads((ev / "results.json").read_text())
    assert {r["score"] for r in records} == {"mps", "es", "mds", "energy", "max_logit", "mmls", "mmles", "mmleps"}
    assert {r["loss"] for r in records} == {"dismax-fpr"}
    proc = _run_cli("calibrate", run, "--device", "cpu", "--data-dir", fixture_data, "--no-progress")
    assert "temperature" in proc.stdout
    cal = json.loads((run / "calibration.json").read_text())
    from isomax.runs import Run

    model = Run.load(run, torch.device("cpu")).model
    assert float(model.head.temperature) == pytest.approx(cal["temperature"])  # the head's temperature buffer
