"""`isomax sweep` (entropic-scale sweep) on tiny fixture data: 2 scales, 1 epoch, 128 training images."""

import json

import pytest

from fixture_data import make_fashion_mnist, make_image_folder
from isomax import tables
from isomax.cli import main
from isomax.sweep import SWEEP_SCORE, _run_name, _summary as _summarise, same_dataset, sweep_table

TINY = ["--epochs", "1", "--train-limit", "128", "--batch-size", "32", "--threads", "1", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _no_checksums(monkeypatch):
    monkeypatch.setenv("ISOMAX_VERIFY", "0")  # fixtures do not match the published checksums


def test_sweep_writes_its_files_and_resumes(tmp_path, capsys):
    data = make_fashion_mnist(tmp_path / "data")
    folder = make_image_folder(tmp_path / "my-ood", n=20)
    out = tmp_path / "sweep"
    args = [
        "sweep",
        "--scales",
        "1",
        "10",
        "--val-ood",
        "mnist",
        "--test-ood",
        str(folder),
        "--data-dir",
        str(data),
        "--out",
        str(out),
        "--no-progress",
        *TINY,
    ]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "warning: the validation out-distribution 'mnist' is used to choose E_s" in printed
    s = json.loads((out / "sweep.json").read_text())
    assert s["val_ood"] == "mnist" and s["test_ood"] == [str(folder)] and s["scales"] == [1.0, 10.0]
    assert [(r["loss"], r["scale"]) for r in s["rows"]] == [("isomax", 1.0), ("isomax", 10.0)]
    best = max(s["rows"], key=lambda r: (r["tnr_at_tpr95"][0], r["auroc"][0]))
    assert s["chosen"] == {"isomax": best["scale"]}  # the scale with the best validation TNR@TPR95
    for name in ("isomax-es1-seed0", "isomax-es10-seed0"):
        run = s["runs"][name]
        assert (out / "runs" / name / "checkpoint.pt").exists()
        assert run["config"]["entropic_scale"] == float(name.split("-es")[1].split("-")[0])
        assert {r["out_dataset"] for r in run["validation"]} == {"mnist"}
        assert {r["out_dataset"] for r in run["test"]} == {"my-ood"}
        assert run["validation"][0]["split"] == "validation" and run["validation"][0]["score"] == "es"
    md = (out / "sweep.md").read_text()
    assert "Validation out-distribution **mnist**" in md and "| IsoMax | ES | " in md and "![sweep](sweep.png)" in md
    assert len([line for line in md.splitlines() if line.startswith("| IsoMax |")]) == 2
    assert 5_000 < (out / "sweep.png").stat().st_size < 150_000
    # rerunning skips the finished runs
    assert main(args) == 0
    assert capsys.readouterr().out.count("skipping") == 2
    # the report shows the sweep (table in md/tex/csv and figure)
    from isomax.report import write_report

    md = write_report([out], tmp_path / "rep", log=lambda _: None).read_text()
    assert "## Entropic-scale sweep" in md and "figures/sweep1.png" in md and "TNR@TPR95 mnist (%)" in md
    assert all((tmp_path / "rep" / "tables" / f"sweep1.{ext}").exists() for ext in ("md", "tex", "csv"))


def test_sweep_refuses_val_ood_among_test_ood(tmp_path, capsys):
    code = main(["sweep", "--val-ood", "mnist", "--test-ood", "gaussian", "MNIST", "--out", str(tmp_path / "s"), *TINY])
    assert code == 2
    err = capsys.readouterr().err
    assert "is also a test out-distribution" in err
    assert not (tmp_path / "s").exists()
    assert main(["sweep", "--val-ood", "mnist", "--losses", "softmax", "--out", str(tmp_path / "s"), *TINY]) == 2
    assert "SoftMax has no entropic scale" in capsys.readouterr().err
    assert main(["sweep", "--val-ood", "mnist", "--entropic-scale", "3", "--out", str(tmp_path / "s"), *TINY]) == 2
    assert "use --scales" in capsys.readouterr().err


def _run(loss, scale, seed, tnr, auroc, acc=0.9, test_tnr=None):
    """A sweep.json run entry with known validation (and optional test) metrics."""

    def rec(split, out, t):
        return dict(
            in_dataset="fashion-mnist",
            out_dataset=out,
            model="cnn-28",
            loss=loss,
            score=SWEEP_SCORE[loss],
            seed=seed,
            accuracy=acc,
            tnr_at_tpr95=t,
            auroc=auroc,
            dtacc=0.5,
            auin=0.5,
            auout=0.5,
            fpr_at_tpr95=1 - t,
            split=split,
            entropic_scale=scale,
        )

    test = [rec("test", o, t) for o, t in zip(("a", "b"), test_tnr)] if test_tnr else []
    return dict(
        loss=loss,
        scale=scale,
        seed=seed,
        val_accuracy=acc,
        validation=[rec("validation", "mnist", tnr)],
        test=test,
        test_ood=["a", "b"] if test_tnr else [],
    )


def _summary(runs, losses=("isomax",), scales=(1.0, 3.0, 10.0), seeds=(0, 1)):
    runs = {_run_name(r["loss"], r["scale"], r["seed"]): r for r in runs}
    return _summarise("p", {}, list(losses), list(scales), list(seeds), "mnist", [], runs, None)


@pytest.mark.parametrize("best", [1.0, 3.0, 10.0])
def test_sweep_chooses_the_scale_with_the_best_mean_tnr(best):
    """The chosen scale follows the validation TNR@TPR95 averaged over seeds, whichever scale has it."""
    runs = []
    for scale in (1.0, 3.0, 10.0):
        for seed in (0, 1):
            high = scale == best
            # seed 1 of a losing scale beats the winner's seed 1: only the mean over seeds decides
            tnr = (0.80 if high else 0.50) if seed == 0 else (0.60 if high else 0.65)
            runs.append(_run("isomax", scale, seed, tnr, auroc=0.9))
    s = _summary(runs)
    assert s["chosen"] == {"isomax": best}
    row = next(r for r in s["rows"] if r["scale"] == best)
    assert row["tnr_at_tpr95"][0] == pytest.approx(0.70) and row["seeds"] == [0, 1]


def test_sweep_breaks_tnr_ties_by_auroc_and_chooses_per_loss():
    runs = [
        _run("isomax", 1.0, 0, 0.7, auroc=0.91),
        _run("isomax", 10.0, 0, 0.7, auroc=0.95),
        _run("isomaxplus", 1.0, 0, 0.9, auroc=0.90),
        _run("isomaxplus", 10.0, 0, 0.2, auroc=0.99),
    ]
    s = _summary(runs, losses=("isomax", "isomaxplus"), scales=(1.0, 10.0), seeds=(0,))
    assert s["chosen"] == {"isomax": 10.0, "isomaxplus": 1.0}


def test_sweep_table_shows_the_records_numbers():
    runs = [
        _run("isomax", 1.0, 0, 0.30, 0.80, acc=0.91, test_tnr=(0.2, 0.4)),
        _run("isomax", 10.0, 0, 0.60, 0.90, acc=0.92, test_tnr=(0.5, 0.7)),
    ]
    s = _summary(runs, scales=(1.0, 10.0), seeds=(0,))
    s["test_ood"] = ["a", "b"]
    md = tables.to_markdown(sweep_table(s))
    assert "| IsoMax | ES | 1 | 91.0 | 30.0 | 80.0 | 91.0 | 30.0 |" in md  # test TNR: mean of 20, 40; one seed: no ±
    assert "| IsoMax | ES | 10 | 92.0 | 60.0 | 90.0 | 92.0 | 60.0 |" in md
    assert "TNR@TPR95 mnist (%)" in md and "not used to choose" in md


def test_same_dataset_ignores_case_punctuation_and_folders():
    assert same_dataset("MNIST", "mnist") and same_dataset("tiny-imagenet-resize", "TinyImageNet_resize")
    assert same_dataset("/data/my-ood/", "my_ood") and not same_dataset("mnist", "fashion-mnist")
