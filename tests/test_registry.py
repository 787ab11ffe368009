"""One registry per concept (issue 18): a loss or a score is one entry, read live by every consumer."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import tokenize
from pathlib import Path

import numpy as np
import pytest
import torch

import isomax
from isomax import heads, registry, scores
from isomax.errors import InputError
from isomax.registry import LossSpec, ScoreSpec

ROOT = Path(isomax.__file__).parent
LOSS_NAMES = {"softmax", "isomax", "isomaxplus", "dismax", "dismax-fpr", "logitnorm"}


def _mean_logit(logits: torch.Tensor) -> torch.Tensor:
    return logits.mean(dim=1)


def _checked_mean_logit(logits: torch.Tensor) -> torch.Tensor:
    if logits.ndim != 2:
        raise InputError(f"Expected `logits` of shape (batch, classes), but got {tuple(logits.shape)}")
    return _mean_logit(logits)


TOY_SCORE = ScoreSpec("toymean", _checked_mean_logit, _mean_logit, "ToyMean")
# The IsoMax+ head and loss under another name, label and colour, deployed with the toy score
TOY_LOSS = LossSpec(
    name="toy",
    aliases=("toy+",),
    head="isomaxplus",
    head_factory=isomax.IsoMaxPlusHead,
    loss_factory=isomax.IsoMaxLoss,
    score="toymean",
    label="Toy",
    color="#123456",
    sweep_score="mds",
    roc_scores=("toymean",),
)


@pytest.fixture
def toy():
    with registry.registered(TOY_SCORE, TOY_LOSS):
        yield


def test_builtin_entries():
    assert registry.list_losses() == ("softmax", "isomax", "isomaxplus", "dismax", "dismax-fpr", "logitnorm")
    assert registry.list_scores() == ("mps", "es", "mds", "energy", "max_logit", "mmls", "mmles", "mmleps")
    assert heads.HEADS == ("softmax", "isomax", "isomaxplus", "dismax")
    assert [registry.get_loss(n).score for n in ("softmax", "isomax", "isomaxplus", "dismax", "dismax-fpr")] == [
        "es",
        "es",
        "mds",
        "mmles",
        "mmles",
    ]
    assert registry.get_loss("ISOMAX+").name == "isomaxplus" and registry.get_loss("linear").name == "softmax"
    assert registry.applicable_scores("logitnorm") == ("mps", "es", "energy", "max_logit")
    assert registry.applicable_scores("isomax") == ("mps", "es", "mds", "energy", "max_logit")
    assert registry.applicable_scores("dismax-fpr") == registry.list_scores()
    for name in registry.list_scores():  # every score is registered with its own function and graph form
        spec = registry.get_score(name)
        assert spec.function is scores.SCORES[name] and callable(spec.graph)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(InputError, match="isomaxplus.*but got: 'nope'"):
        registry.get_loss("nope")
    with pytest.raises(InputError, match="mmles.*but got: 'nope'"):
        registry.get_score("nope")
    with pytest.raises(InputError, match="already used by 'isomaxplus'"):
        registry.register_loss(dataclasses.replace(TOY_LOSS, aliases=("isomax+",)))
    assert "toy" not in registry.list_losses()  # a refused entry leaves nothing behind
    with pytest.raises(InputError, match="already registered"):
        registry.register_score(ScoreSpec("es", _mean_logit, _mean_logit, "ES"))


def test_graph_form_equals_the_checked_score():
    """Export runs ScoreSpec.graph; the public score must give exactly the same numbers (no second implementation)."""
    from isomax.deploy.export import graph_score

    z = torch.randn(64, 7, dtype=torch.float64) * 5
    z[0] = torch.tensor([0.0, -1e4, -2.0, 1.0, 3.0, -5.0, 2.0], dtype=torch.float64)  # an underflowing row
    for name in registry.list_scores():
        torch.testing.assert_close(graph_score(name, z), scores.SCORES[name](z), rtol=0, atol=0)
    with pytest.raises(InputError, match="plain score in .*but got: 'odin'"):
        graph_score("odin", z)


def test_a_registered_loss_and_score_reach_every_consumer(toy):
    from isomax import plots, report, sweep, tables
    from isomax.deploy.export import graph_score
    from isomax.deploy.threshold import default_score
    from isomax.evaluation import applicable_scores
    from isomax.presets import TrainConfig

    assert type(isomax.make_head("toy+", 8, 3)) is isomax.IsoMaxPlusHead
    assert type(isomax.make_loss("toy", 3.0)) is isomax.IsoMaxLoss and isomax.make_loss("toy", 3.0).entropic_scale == 3
    assert isomax.canonical_head_name("TOY+") == "toy" and isomax.head_kind("toy") == "isomaxplus"
    assert "toy" in heads.LOSSES and heads.LOSS_HEADS["toy"] == "isomaxplus"
    assert TrainConfig(loss="toy").loss == "toy"
    assert default_score("toy") == "toymean"
    assert sweep.SWEEP_SCORE["toy"] == "mds"
    assert applicable_scores("toy")[-1] == "toymean" and "mds" in applicable_scores("toy")
    assert "toymean" in applicable_scores("softmax")  # a score for every head
    assert tables.LOSS_LABELS["toy"] == "Toy" and tables.SCORE_LABELS["toymean"] == "ToyMean"
    assert plots.loss_color("toy") == "#123456"
    assert ("toy", "toymean") in report.ROC_COMBOS
    z = torch.randn(5, 4)
    out = scores.compute_scores(z)
    assert set(out) == set(registry.list_scores()) and torch.equal(out["toymean"], z.mean(dim=1))
    assert torch.equal(graph_score("toymean", z), z.mean(dim=1))
    from isomax.detectors import create_detector

    assert torch.equal(create_detector("toymean", torch.nn.Identity())(z), z.mean(dim=1))


def test_unregistering_removes_every_trace():
    from isomax import plots, tables
    from isomax.deploy.threshold import default_score

    with registry.registered(TOY_SCORE, TOY_LOSS):
        assert "toy" in tables.LOSS_LABELS
    assert "toy" not in registry.list_losses() and "toymean" not in scores.SCORES
    assert "toy" not in tables.LOSS_LABELS and "toy" not in plots.LOSS_COLORS and "toy" not in heads.LOSSES
    with pytest.raises(InputError):
        default_score("toy")
    with pytest.raises(InputError):
        isomax.make_head("toy", 8, 3)
    with pytest.raises(InputError):
        scores.compute_scores(torch.randn(2, 3), ["toymean"])


@pytest.fixture(scope="module")
def data_dir(fm_fixture_dir, no_checksums):
    return fm_fixture_dir


def test_toy_loss_trains_end_to_end(toy, data_dir, tmp_path):
    """``train(TrainConfig(loss="toy"))``: the model gets the toy head, the threshold the toy score, and the
    evaluation and the exported graph compute it."""
    from isomax.deploy import fit_deployment
    from isomax.evaluation import evaluate_run
    from isomax.presets import Runtime, TrainConfig
    from isomax.runs import Run
    from isomax.training import train

    cfg = TrainConfig(
        dataset="fashion-mnist",
        model="cnn-28",
        loss="toy",
        epochs=1,
        batch_size=32,
        lr=0.05,
        train_limit=256,
    )
    runtime = Runtime(eval_batch_size=128, data_dir=str(data_dir), device="cpu", threads=1)
    run = tmp_path / "run"
    fit_deployment(train(cfg, run, runtime=runtime, progress=False, log=lambda s: None), log=lambda s: None)
    loaded = Run.load(run)
    model, config = loaded.model, loaded.config
    assert config.loss == "toy" and type(model.head) is isomax.IsoMaxPlusHead and model.head_kind == "isomaxplus"
    assert json.loads((run / "threshold.json").read_text())["score"] == "toymean"
    records = evaluate_run(run, ["uniform"], device="cpu", progress=False, log=lambda s: None)
    assert "toymean" in {r.score for r in records} and {r.loss for r in records} == {"toy"}

    ort = pytest.importorskip("onnxruntime")
    from isomax.deploy.export import export_onnx

    export_onnx(run, tmp_path / "toy.onnx", log=lambda s: None)
    images = np.random.default_rng(0).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    session = ort.InferenceSession(str(tmp_path / "toy.onnx"))
    logits, *_, score, _ = session.run(None, {session.get_inputs()[0].name: images})
    np.testing.assert_allclose(score, logits.mean(axis=1), rtol=1e-5, atol=1e-5)


def _literal_loss_names(path: Path) -> list[tuple[int, str]]:
    """(line, name) of every string literal that is exactly a loss name (docstrings and comments never are)."""
    hits = []
    for tok in tokenize.generate_tokens(io.StringIO(path.read_text()).readline):
        if tok.type == tokenize.STRING:
            try:
                value = ast.literal_eval(tok.string)
            except (ValueError, SyntaxError):  # f-strings
                continue
            if value in LOSS_NAMES:
                hits.append((tok.start[0], value))
    return hits


def test_loss_names_are_written_in_at_most_five_modules():
    found = {str(p.relative_to(ROOT)): hits for p in sorted(ROOT.rglob("*.py")) if (hits := _literal_loss_names(p))}
    assert "losses.py" in found and "registry.py" in found  # the test sees the entries and the defaults
    assert len(found) <= 5, f"loss names written as literals in {len(found)} modules (at most 5): {found}"
