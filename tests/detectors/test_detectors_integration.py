"""ODIN, Mahalanobis and Outlier Exposure through `isomax bench` / `isomax evaluate` on tiny fixture data."""

import json

from fixture_data import make_fashion_mnist, make_image_folder
from isomax.cli import main
from isomax.evaluation import RECORD_KEYS


def test_bench_and_evaluate_with_comparison_methods(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ISOMAX_VERIFY", "0")  # fixture files do not match the published checksums
    data = make_fashion_mnist(tmp_path / "data")
    make_image_folder(data / "Imagenet_resize", n=40)  # the outlier set of Outlier Exposure (tinyimagenet-resize)
    folder = make_image_folder(tmp_path / "my-ood", n=30)
    out = tmp_path / "bench"
    args = [
        "bench",
        "--preset",
        "fashion-mnist",
        "--seeds",
        "1",
        "--losses",
        "softmax",
        "isomaxplus",
        "--methods",
        "odin",
        "mahalanobis",
        "oe",
        "--outlier-data",
        "tinyimagenet-resize",
        "--epochs",
        "1",
        "--train-limit",
        "64",
        "--batch-size",
        "32",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--ood",
        "mnist",
        str(folder),
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--no-progress",
        "--detector-samples",
        "30",
        "--detector-train",
        "200",
    ]
    assert main(args) == 0
    records = json.loads((out / "results.json").read_text())
    assert all(set(RECORD_KEYS) <= set(r) for r in records)
    by = {(r["loss"], r["score"]) for r in records}
    assert {("softmax", "odin"), ("softmax", "mahalanobis"), ("isomaxplus", "mds")} <= by
    # OE: a training method
    assert {(r["loss"], r["score"]) for r in records if r["method"] == "oe"} == {("softmax", "es")}
    assert ("isomaxplus", "odin") not in by  # detectors go to SoftMax runs by default
    for r in records:
        if r["score"] == "odin":
            assert set(r["params"]) == {"temperature", "noise"}
            assert r["params"]["temperature"] in (1, 10, 100, 1000)
        if r["score"] == "mahalanobis":
            assert r["params"]["noise"] in (0, 0.0005, 0.001, 0.0014, 0.002, 0.0024, 0.005, 0.01, 0.05, 0.1, 0.2)
        if r["method"] == "oe":
            assert r["outlier_data"] == "tinyimagenet-resize"
    assert {r["out_dataset"] for r in records if r["score"] == "mahalanobis"} == {"mnist", "my-ood"}
    oe_config = json.loads((out / "runs" / "softmax-oe-seed0" / "config.json").read_text())
    assert oe_config["outlier_data"] == "tinyimagenet-resize" and oe_config["loss"] == "softmax"
    assert not (out / "outputs" / "softmax-oe-seed0.npz").exists()
    md = (out / "results.md").read_text()
    assert "ODIN / Mahalanobis / IsoMax+<sub>MDS</sub>" in md  # Table 4 layout
    assert "SoftMax<sub>ES</sub><sup>OE</sup> / IsoMax+<sub>MDS</sub>" in md  # Table 5 layout
    softmax_acc = next(
        r["accuracy"] for r in records if r["loss"] == "softmax" and r["score"] == "es" and r["method"] == "standard"
    )
    assert f"| {100 * softmax_acc:.1f} |" in md.split("## Seamless")[0]  # the OE run is not in Table 2 (one seed: no ±)

    capsys.readouterr()
    assert main(args) == 0  # everything done: nothing retrained or refitted
    assert capsys.readouterr().out.count("skipping") == 3

    ev = tmp_path / "eval"
    assert (
        main(
            [
                "evaluate",
                str(out / "runs" / "isomaxplus-seed0"),
                "--methods",
                "odin",
                "--ood",
                str(folder),
                "--data-dir",
                str(data),
                "--out",
                str(ev),
                "--device",
                "cpu",
                "--no-progress",
                "--detector-samples",
                "20",
            ]
        )
        == 0
    )
    ev_records = json.loads((ev / "results.json").read_text())
    assert {r["score"] for r in ev_records} == {"mps", "es", "mds", "energy", "max_logit", "odin"}
    assert all(r["loss"] == "isomaxplus" for r in ev_records)


def test_evaluate_run_with_the_pytorch_ood_detectors(tmp_path, monkeypatch):
    """The registry's modern detectors go through the same evaluation path as ODIN and Mahalanobis."""
    from isomax.evaluation import evaluate_run

    monkeypatch.setenv("ISOMAX_VERIFY", "0")
    data = make_fashion_mnist(tmp_path / "data")
    folder = make_image_folder(tmp_path / "my-ood", n=30)
    out = tmp_path / "bench"
    assert (
        main(
            [
                "bench",
                "--preset",
                "fashion-mnist",
                "--seeds",
                "1",
                "--losses",
                "softmax",
                "--epochs",
                "1",
                "--train-limit",
                "64",
                "--batch-size",
                "32",
                "--threads",
                "1",
                "--device",
                "cpu",
                "--ood",
                str(folder),
                "--data-dir",
                str(data),
                "--out",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    methods = ["knn", "vim", "react", "dice", "ash", "scale", "gen"]
    records = evaluate_run(
        out / "runs" / "softmax-seed0",
        [str(folder)],
        data_dir=str(data),
        device="cpu",
        progress=False,
        methods=methods,
        detector_options=dict(max_samples=20, max_train=60),
        log=lambda _: None,
    )
    mine = [r for r in records if r.score in methods]
    assert sorted(r.score for r in mine) == sorted(methods)
    assert all(set(RECORD_KEYS) <= set(r.to_dict()) and 0 <= r.auroc <= 1 and isinstance(r.params, dict) for r in mine)
