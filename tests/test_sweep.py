"""`isomax sweep` (entropic-scale sweep) on tiny fixture data: 2 scales, 1 epoch, 128 training images."""
import json

import pytest

from fixture_data import make_fashion_mnist, make_image_folder
from isomax.cli import main

TINY = ["--epochs", "1", "--train-limit", "128", "--batch-size", "32", "--threads", "1", "--device", "cpu"]


@pytest.fixture(autouse=True)
def _no_checksums(monkeypatch):
    monkeypatch.setenv("ISOMAX_VERIFY", "0")  # fixtures do not match the published checksums


def test_sweep_writes_its_files_and_resumes(tmp_path, capsys):
    data = make_fashion_mnist(tmp_path / "data")
    folder = make_image_folder(tmp_path / "my-ood", n=20)
    out = tmp_path / "sweep"
    args = ["sweep", "--scales", "1", "10", "--val-ood", "mnist", "--test-ood", str(folder), "--data-dir", str(data),
            "--out", str(out), "--no-progress", *TINY]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "warning: the validation out-distribution 'mnist' is used to choose E_s" in printed
    s = json.loads((out / "sweep.json").read_text())
    assert s["val_ood"] == "mnist" and s["test_ood"] == [str(folder)] and s["scales"] == [1.0, 10.0]
    assert [(r["loss"], r["scale"]) for r in s["rows"]] == [("isomax", 1.0), ("isomax", 10.0)]
    assert s["chosen"]["isomax"] in (1.0, 10.0)
    for name in ("isomax-es1-seed0", "isomax-es10-seed0"):
        run = s["runs"][name]
        assert (out / "runs" / name / "checkpoint.pt").exists()
        assert run["config"]["entropic_scale"] == float(name.split("-es")[1].split("-")[0])
        assert {r["out_dataset"] for r in run["validation"]} == {"mnist"}
        assert {r["out_dataset"] for r in run["test"]} == {"my-ood"}
        assert run["validation"][0]["split"] == "validation" and run["validation"][0]["score"] == "es"
    md = (out / "sweep.md").read_text()
    assert "Validation out-distribution: **mnist**" in md and "| IsoMax | ES | " in md and "![sweep](sweep.png)" in md
    assert len([l for l in md.splitlines() if l.startswith("| IsoMax |")]) == 2
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
