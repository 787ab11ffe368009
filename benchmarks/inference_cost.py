"""Per-image inference cost of the OOD scores and detectors, as ratios to one plain forward pass (2021 paper, Sec. 4).

    python benchmarks/inference_cost.py [--model cnn-28 | --run RUN_DIR] [--threads 2] [--batch-size 100] [--json OUT]

Times, on the SAME model and the SAME batch, in one run:

* ``forward``: ``model(x)`` under ``torch.no_grad()`` (the reference);
* ``mds``, ``mps``, ``es``, ``energy``: the plain scores (one forward pass + a reduction over the logits);
  with ``--head dismax`` also ``max_logit`` and DisMax's ``mmls``, ``mmles``, ``mmleps``;
* every detector of :data:`isomax.detectors.DETECTORS`: ``odin`` (forward, backward to the input,
  second forward), ``mahalanobis`` (one forward, one backward per layer of ``feature_list``, one
  forward per layer, then the logistic regression), and the pytorch-ood adapters ``knn``, ``vim``,
  ``react``, ``dice``, ``ash``, ``scale``, ``gen`` (one forward with a hook, plus their own work).

The detectors are fitted on random inputs and labels (the time does not depend on fit quality):
ODIN with fixed ``T = 1000, eps = 0.0014``; Mahalanobis with fixed ``eps = 0.0014``, class
statistics from random training inputs and its logistic regression from random validation vs
perturbed samples; the others on the random training inputs, except that KNN searches
``--knn-train`` random training features (as many as ``isomax bench`` fits it on, ``max_train``),
since its cost grows with them. ViM and DICE need a linear head: with a distance head (the default
``--head isomaxplus``) they run on a copy of the model with a SoftMax head. The methods are timed
round-robin (``--repeats`` rounds after ``--warmup``) and each reports its median, so load from
other processes spreads evenly. The last line reads ``ratios: mds=<x> mps=<x> odin=<x> ...``;
``--json OUT`` also writes them (with the setting) for ``scripts/compare_methods.py --cost``.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time

import torch
from torch import nn

from isomax.detectors import DETECTORS, ODIN, Mahalanobis, ScoreDetector, create_detector
from isomax.models import create_model

PLAIN_SCORES = ("mds", "mps", "es", "energy")
DISMAX_SCORES = ("max_logit", "mmls", "mmles", "mmleps")  # timed too for --head dismax
#: methods that need the weights and bias of a linear classifier
LINEAR_HEAD = ("vim", "dice")


def build(args) -> tuple[torch.nn.Module, tuple[int, int, int], str]:
    if args.run:
        from isomax.runs import Run

        run = Run.load(args.run, "cpu", calibrated=False)
        model, config = run.model, run.config
        return model.eval(), run.input.shape, f"{config.model} ({config.loss}) from {args.run}"
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=10, head=args.head).eval()
    return model, tuple(model.input_size), f"{args.model} ({args.head}, random weights)"


def fitted_detectors(
    model: torch.nn.Module,
    shape: tuple[int, ...],
    n_fit: int,
    knn_train: int,
    plain_scores: tuple[str, ...] = PLAIN_SCORES,
) -> dict:
    g = torch.Generator().manual_seed(1)
    num_classes = model.num_classes
    x_train = torch.randn(n_fit, *shape, generator=g)
    y_train = torch.arange(n_fit) % num_classes
    x_val = torch.randn(n_fit // 2, *shape, generator=g)
    x_adv = x_val + 0.1 * torch.randn(x_val.shape, generator=g)
    std = (0.5,) * shape[0]
    train = [(x_train, y_train)]
    linear = model
    if not isinstance(getattr(model, "head", None), nn.Linear):  # ViM, DICE: a SoftMax twin of the model
        linear = copy.deepcopy(model)
        linear.reset_head("softmax")
        linear.eval()
    detectors = {
        **{score: ScoreDetector(score, model) for score in plain_scores},
        "odin": ODIN(model, temperature=1000, noise=0.0014, std=std),
        "mahalanobis": Mahalanobis(noise=0.0014, std=std).fit(model, train=train, adversarial=(x_val, x_adv)),
    }
    for name in DETECTORS:
        if name not in detectors:
            detectors[name] = create_detector(name).fit(linear if name in LINEAR_HEAD else model, train=train)
    knn = detectors["knn"]
    dim = knn.detector_.knn.n_features_in_  # sklearn NearestNeighbors inside pytorch-ood's KNN
    features = torch.randn(knn_train, dim, generator=g).relu()  # (knn_train, D), non-negative as after a ReLU
    knn.detector_.fit_features(features, torch.zeros(knn_train, dtype=torch.long))
    return detectors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="cnn-28", help="registered model name (random weights)")
    parser.add_argument("--head", default="isomaxplus", choices=["softmax", "isomax", "isomaxplus", "dismax"])
    parser.add_argument("--run", default=None, help="a run directory (isomax train/bench) instead of --model")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds (each times every method once)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed rounds")
    parser.add_argument("--fit-samples", type=int, default=400, help="random samples to fit the detectors")
    parser.add_argument("--knn-train", type=int, default=20000, help="random training features KNN searches")
    parser.add_argument("--json", default=None, help="also write the ratios and the setting to this JSON file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    model, shape, desc = build(args)
    plain = PLAIN_SCORES + (DISMAX_SCORES if args.head == "dismax" else ())
    methods = ("forward", *plain, *DETECTORS)
    detectors = fitted_detectors(model, shape, args.fit_samples, args.knn_train, plain)
    x = torch.randn(args.batch_size, *shape, generator=torch.Generator().manual_seed(2))

    def forward():
        with torch.no_grad():
            return model(x)

    calls = {"forward": forward, **{name: (lambda d=d: d(x)) for name, d in detectors.items()}}
    times: dict[str, list[float]] = {m: [] for m in methods}
    for i in range(args.warmup + args.repeats):
        for name in (
            methods[i % len(methods) :] + methods[: i % len(methods)]
        ):  # rotate: no method always follows another
            start = time.perf_counter()
            calls[name]()
            if i >= args.warmup:
                times[name].append(time.perf_counter() - start)

    per_image = {m: statistics.median(t) / args.batch_size for m, t in times.items()}
    ratios = {m: per_image[m] / per_image["forward"] for m in methods}
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {desc}, input {shape}, "
        f"batch {args.batch_size}, median of {args.repeats} rounds"
    )
    print(f"{'method':<13}{'ms/image':>10}{'x forward':>11}")
    for m in methods:
        print(f"{m:<13}{1e3 * per_image[m]:>10.3f}{ratios[m]:>11.2f}")
    print("ratios: " + " ".join(f"{m}={ratios[m]:.2f}" for m in methods[1:]))
    if args.json:
        setting = dict(
            torch=torch.__version__,
            threads=torch.get_num_threads(),
            model=desc,
            input=list(shape),
            batch_size=args.batch_size,
            repeats=args.repeats,
            knn_train=args.knn_train,
        )
        with open(args.json, "w") as fh:
            json.dump(
                dict(
                    setting,
                    ms_per_image={m: 1e3 * v for m, v in per_image.items()},
                    ratios={m: round(ratios[m], 3) for m in methods[1:]},
                ),
                fh,
                indent=2,
            )
            fh.write("\n")


if __name__ == "__main__":
    main()
