"""Every public entry point rejects bad input with an error that names the offending argument."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from isomax import DistanceHead, IsoMaxHead, IsoMaxLoss, IsoMaxLossSecondPart, IsoMaxPlusHead, SoftMaxLoss, make_head, ood_metrics
from isomax.scores import SCORES, energy_score, entropic_score, max_probability, min_distance_score

NAN, INF = float("nan"), float("inf")


def _feats(*shape, dtype=torch.float32, fill=None, at=(0, 0)):
    x = torch.randn(*shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    if fill is not None:
        x[at] = fill
    return x


def _logits(*shape, fill=None):
    return _feats(*shape, fill=fill)


def _head(x):
    return IsoMaxHead(4, 3)(x)


def _plus_head(x):
    return IsoMaxPlusHead(4, 3)(x)


def _loss(logits, targets):
    return IsoMaxLoss()(logits, targets)


T3 = torch.tensor([0, 1, 2])

BAD_INPUTS = [
    # ---- heads: features -----------------------------------------------------------------
    pytest.param(lambda: _head(_feats(4)), ValueError, "features", id="head-features-1d"),
    pytest.param(lambda: _head(_feats(2, 3, 4)), ValueError, "features", id="head-features-3d"),
    pytest.param(lambda: _head(_feats(2, 5)), ValueError, "features", id="head-features-wrong-count"),
    pytest.param(lambda: _plus_head(_feats(2, 3)), ValueError, "features", id="plushead-features-wrong-count"),
    pytest.param(lambda: _head(torch.ones(2, 4, dtype=torch.int64)), ValueError, "features", id="head-features-int"),
    pytest.param(lambda: _head(torch.ones(2, 4, dtype=torch.bool)), ValueError, "features", id="head-features-bool"),
    pytest.param(lambda: _head(_feats(2, 4, fill=NAN)), ValueError, "features", id="head-features-nan"),
    pytest.param(lambda: _head(_feats(2, 4, fill=INF)), ValueError, "features", id="head-features-inf"),
    pytest.param(lambda: _plus_head(_feats(2, 4, fill=-INF)), ValueError, "features", id="plushead-features-neg-inf"),
    pytest.param(lambda: _plus_head(_feats(2, 4, fill=NAN, dtype=torch.float64)), ValueError, "features", id="plushead-features-nan-f64"),
    pytest.param(lambda: _head([[0.0, 1.0, 2.0, 3.0]]), TypeError, "features", id="head-features-list"),
    pytest.param(lambda: _head(np.zeros((2, 4), dtype=np.float32)), TypeError, "features", id="head-features-numpy"),
    # ---- loss: logits --------------------------------------------------------------------
    pytest.param(lambda: _loss(_logits(3, 4, 2), T3), ValueError, "logits", id="loss-logits-3d"),
    pytest.param(lambda: _loss(_logits(3), T3), ValueError, "logits", id="loss-logits-1d"),
    pytest.param(lambda: _loss(torch.zeros(3, 4, dtype=torch.int64), T3), ValueError, "logits", id="loss-logits-int"),
    pytest.param(lambda: _loss(_logits(3, 4, fill=NAN), T3), ValueError, "logits", id="loss-logits-nan"),
    pytest.param(lambda: _loss(_logits(3, 4, fill=INF), T3), ValueError, "logits", id="loss-logits-inf"),
    pytest.param(lambda: _loss([[0.0, 1.0]], T3), TypeError, "logits", id="loss-logits-list"),
    # ---- loss: targets -------------------------------------------------------------------
    pytest.param(lambda: _loss(_logits(3, 4), T3.float()), ValueError, "targets", id="loss-targets-float"),
    pytest.param(lambda: _loss(_logits(3, 4), T3 == 1), ValueError, "targets", id="loss-targets-bool"),
    pytest.param(lambda: _loss(_logits(3, 4), torch.tensor([0, -1, 2])), ValueError, "targets", id="loss-targets-negative"),
    pytest.param(lambda: _loss(_logits(3, 4), torch.tensor([0, 4, 2])), ValueError, "targets", id="loss-targets-equal-C"),
    pytest.param(lambda: _loss(_logits(3, 4), torch.tensor([0, 1, 99])), ValueError, "targets", id="loss-targets-above-C"),
    pytest.param(lambda: _loss(_logits(3, 4), torch.tensor([0, 1])), ValueError, "targets", id="loss-targets-too-short"),
    pytest.param(lambda: _loss(_logits(3, 4), torch.tensor([0, 1, 2, 3])), ValueError, "targets", id="loss-targets-too-long"),
    pytest.param(lambda: _loss(_logits(3, 4), T3[:, None]), ValueError, "targets", id="loss-targets-2d"),
    pytest.param(lambda: _loss(_logits(3, 4), [0, 1, 2]), TypeError, "targets", id="loss-targets-list"),
    pytest.param(lambda: SoftMaxLoss()(_logits(3, 4), torch.tensor([0, 1, 7])), ValueError, "targets", id="softmaxloss-targets-above-C"),
    pytest.param(lambda: IsoMaxLossSecondPart()(_logits(3, 4), torch.tensor([-3, 1, 2]), debug=True), ValueError, "targets", id="compat-loss-targets-negative"),
    # ---- scores --------------------------------------------------------------------------
    pytest.param(lambda: entropic_score(_logits(2, 3, fill=NAN)), ValueError, "logits", id="es-logits-nan"),
    pytest.param(lambda: max_probability(_logits(2, 3, fill=INF)), ValueError, "logits", id="mps-logits-inf"),
    pytest.param(lambda: min_distance_score(_logits(2, 3, fill=-INF)), ValueError, "logits", id="mds-logits-neg-inf"),
    pytest.param(lambda: energy_score(_logits(2, 3, 4)), ValueError, "logits", id="energy-logits-3d"),
    pytest.param(lambda: SCORES["max_logit"](_logits(3)), ValueError, "logits", id="maxlogit-logits-1d"),
    pytest.param(lambda: entropic_score(torch.zeros(2, 3, dtype=torch.int32)), ValueError, "logits", id="es-logits-int"),
    pytest.param(lambda: entropic_score(torch.zeros(2, 0)), ValueError, "logits", id="es-logits-no-classes"),
    pytest.param(lambda: max_probability([[0.0, 1.0]]), TypeError, "logits", id="mps-logits-list"),
    pytest.param(lambda: min_distance_score(_logits(2, 3), 0.0), ValueError, "distance_scale", id="mds-distance-scale-zero"),
    pytest.param(lambda: energy_score(_logits(2, 3), temperature=0.0), ValueError, "temperature", id="energy-temperature-zero"),
    # ---- ood_metrics ---------------------------------------------------------------------
    pytest.param(lambda: ood_metrics([], [0.1, 0.2]), ValueError, "scores_in", id="metrics-scores-in-empty"),
    pytest.param(lambda: ood_metrics([0.1], np.array([])), ValueError, "scores_out", id="metrics-scores-out-empty"),
    pytest.param(lambda: ood_metrics(torch.empty(0), [0.1]), ValueError, "scores_in", id="metrics-scores-in-empty-tensor"),
    pytest.param(lambda: ood_metrics(np.zeros((3, 2)), [0.1]), ValueError, "scores_in", id="metrics-scores-in-2d"),
    pytest.param(lambda: ood_metrics([0.1], torch.zeros(2, 2)), ValueError, "scores_out", id="metrics-scores-out-2d"),
    pytest.param(lambda: ood_metrics(0.5, [0.1]), ValueError, "scores_in", id="metrics-scores-in-scalar"),
    pytest.param(lambda: ood_metrics([0.1, NAN], [0.2]), ValueError, "scores_in", id="metrics-scores-in-nan"),
    pytest.param(lambda: ood_metrics([0.1], np.array([0.2, NAN])), ValueError, "scores_out", id="metrics-scores-out-nan"),
    pytest.param(lambda: ood_metrics([0.1], torch.tensor([INF])), ValueError, "scores_out", id="metrics-scores-out-inf"),
    pytest.param(lambda: ood_metrics(["a", "b"], [0.1]), ValueError, "scores_in", id="metrics-scores-in-strings"),
    pytest.param(lambda: ood_metrics([0.1], [0.2], out_positive=True) and ood_metrics([0.1], [NAN], out_positive=True), ValueError, "scores_out", id="metrics-out-positive-nan"),
    # ---- constructors --------------------------------------------------------------------
    pytest.param(lambda: IsoMaxHead(4, 0), ValueError, "num_classes", id="head-num-classes-zero"),
    pytest.param(lambda: IsoMaxPlusHead(4, -2), ValueError, "num_classes", id="plushead-num-classes-negative"),
    pytest.param(lambda: IsoMaxHead(0, 3), ValueError, "num_features", id="head-num-features-zero"),
    pytest.param(lambda: IsoMaxHead(4.0, 3), ValueError, "num_features", id="head-num-features-float"),
    pytest.param(lambda: IsoMaxHead(4, True), ValueError, "num_classes", id="head-num-classes-bool"),
    pytest.param(lambda: IsoMaxHead(4, 3, temperature=0.0), ValueError, "temperature", id="head-temperature-zero"),
    pytest.param(lambda: IsoMaxPlusHead(4, 3, temperature=-1.0), ValueError, "temperature", id="plushead-temperature-negative"),
    pytest.param(lambda: DistanceHead(4, 3, "hamming"), ValueError, "distance", id="distancehead-unknown-distance"),
    pytest.param(lambda: DistanceHead(4, 3, init="uniform"), ValueError, "init", id="distancehead-unknown-init"),
    pytest.param(lambda: IsoMaxLoss(entropic_scale=-1), ValueError, "entropic_scale", id="loss-entropic-scale-negative"),
    pytest.param(lambda: IsoMaxLoss(entropic_scale=0), ValueError, "entropic_scale", id="loss-entropic-scale-zero"),
    pytest.param(lambda: IsoMaxLoss(entropic_scale="10"), ValueError, "entropic_scale", id="loss-entropic-scale-str"),
    pytest.param(lambda: IsoMaxLoss(reduction="foo"), ValueError, "reduction", id="loss-reduction-foo"),
    pytest.param(lambda: SoftMaxLoss(reduction="avg"), ValueError, "reduction", id="softmaxloss-reduction-avg"),
    pytest.param(lambda: IsoMaxLossSecondPart(entropic_scale=-1.0), ValueError, "entropic_scale", id="compat-entropic-scale-negative"),
    pytest.param(lambda: make_head("arcface", 4, 3), ValueError, "kind", id="make-head-unknown-kind"),
]


@pytest.mark.parametrize("call, error, argument", BAD_INPUTS)
def test_bad_input_raises_and_names_argument(call, error, argument):
    with pytest.raises(error, match=f"`{argument}`"):
        call()
