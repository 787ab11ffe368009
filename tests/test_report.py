"""`isomax report` and the LaTeX/CSV table output, on synthetic bench directories (no training)."""

import csv
import io
import json

import numpy as np
import pytest

from isomax import report, tables

LOSSES = ("softmax", "isomax", "isomaxplus")
OODS = ("mnist", "gaussian")


def _logits(loss, n, num_classes, rng, ood):
    """Logits shaped like each head's: free for SoftMax, minus distances for the IsoMax heads."""
    labels = rng.integers(0, num_classes, n)
    if loss == "softmax":
        z = rng.normal(0, 1, (n, num_classes))
        z[np.arange(n), labels] += 3.0 if ood else 8.0
        return z.astype(np.float32), labels
    d = rng.uniform(1.0, 1.4, (n, num_classes))
    d[np.arange(n), labels] = rng.uniform(0.5, 1.2, n) if ood else rng.uniform(0.1, 0.6, n)
    scale = 7.0 if loss == "isomaxplus" else 4.0
    return (-scale * d).astype(np.float32), labels


def make_bench(root, seeds=(0, 1), losses=LOSSES, oods=OODS, n=300, num_classes=10, npz=True, extra_records=()):
    """A bench directory like `isomax bench` writes: results.json, outputs/*.npz, runs/*/log.jsonl."""
    from isomax.evaluation import applicable_scores
    from isomax.metrics import ood_metrics
    from isomax.scores import SCORES
    import torch

    root.mkdir(parents=True, exist_ok=True)
    records = []
    for seed in seeds:
        for k, loss in enumerate(losses):
            rng = np.random.default_rng(100 * seed + k)
            logits_in, labels = _logits(loss, n, num_classes, rng, ood=False)
            arrays = {"logits/in": logits_in, "labels/in": labels}
            acc = float((logits_in.argmax(1) == labels).mean())
            for o in oods:
                arrays[f"logits/{o}"] = _logits(loss, n, num_classes, rng, ood=True)[0]
                for s in applicable_scores(loss):
                    m = ood_metrics(
                        SCORES[s](torch.from_numpy(logits_in)), SCORES[s](torch.from_numpy(arrays[f"logits/{o}"]))
                    )
                    records.append(
                        dict(
                            in_dataset="fashion-mnist",
                            out_dataset=o,
                            model="cnn-28",
                            loss=loss,
                            score=s,
                            seed=seed,
                            accuracy=acc,
                            **m,
                        )
                    )
            if loss == "isomaxplus":
                arrays["distance_scale"] = np.asarray(7.0)
            meta = dict(run=f"runs/{loss}-seed{seed}", loss=loss, model="cnn-28", seed=seed, in_dataset="fashion-mnist")
            if npz:
                (root / "outputs").mkdir(exist_ok=True)
                np.savez_compressed(
                    root / "outputs" / f"{loss}-seed{seed}.npz", **arrays, meta=np.asarray(json.dumps(meta))
                )
            run = root / "runs" / f"{loss}-seed{seed}"
            run.mkdir(parents=True, exist_ok=True)
            (run / "config.json").write_text(
                json.dumps(dict(loss=loss, seed=seed, dataset="fashion-mnist", model="cnn-28"))
            )
            (run / "log.jsonl").write_text(
                "".join(json.dumps(dict(epoch=e, val_accuracy=0.6 + 0.1 * e + 0.01 * k)) + "\n" for e in (1, 2, 3))
            )
    records += list(extra_records)
    (root / "results.json").write_text(json.dumps(records))
    return root


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    return make_bench(tmp_path_factory.mktemp("bench") / "bench")


@pytest.fixture(scope="module")
def small_bench(tmp_path_factory):
    return make_bench(
        tmp_path_factory.mktemp("small") / "bench", losses=("softmax", "isomaxplus"), oods=("mnist",), n=100
    )


@pytest.fixture(scope="module")
def written(bench, tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "rep"
    path = report.write_report([bench], out, log=lambda s: None)
    return out, path.read_text()


def test_report_writes_every_file(written):
    out, md = written
    pngs = sorted((out / "figures").glob("*.png"))
    kinds = {p.name.split("_fashion")[0] for p in pngs}
    assert kinds == {
        "logits",
        "max_probability",
        "entropy",
        "min_distance",
        "roc",
        "training",
        "reliability",
        "risk_coverage",
    }
    # logits, max prob, entropy: 3 losses x 2 oods; distances: 2 losses x 2 oods; ROC: 2; training: 1;
    # reliability: 3 losses; risk-coverage: 1
    assert len(pngs) == 3 * 3 * 2 + 2 * 2 + 2 + 1 + 3 + 1
    for p in pngs:
        assert 5_000 < p.stat().st_size < 150_000, p
        assert f"]({p.relative_to(out).as_posix()})" in md  # embedded by relative path
    for name in ("table2_accuracy", "table3_seamless", "table6_scores", "all_scores"):
        for ext in ("md", "tex", "csv"):
            assert (out / "tables" / f"{name}.{ext}").stat().st_size > 0
    assert "Table 4 layout" in md and "no ODIN or Mahalanobis records" in md  # skipped with a note
    assert "no Outlier Exposure records" in md
    tex = (out / "tables" / "table3_seamless.tex").read_text()
    assert r"\toprule" in tex and r"\bottomrule" in tex and r"\textbf{" in tex and "$\\pm$" in tex


def test_png_is_a_paper_column(written):
    from PIL import Image

    out, _ = written
    with Image.open(next((out / "figures").glob("max_probability_*.png"))) as im:
        w, h = im.size
    assert 400 < w < 560 and 300 < h < 420  # about 3.3 x 2.5 in at 150 dpi


def records_known():
    def rec(loss, score, seed, out, tnr, auroc, acc=0.9):
        return dict(
            in_dataset="cifar10",
            out_dataset=out,
            model="densenet",
            loss=loss,
            score=score,
            seed=seed,
            accuracy=acc,
            tnr_at_tpr95=tnr,
            auroc=auroc,
            dtacc=0.5,
            auin=0.5,
            auout=0.5,
            fpr_at_tpr95=1 - tnr,
        )

    r = []
    for s, (a, b) in enumerate([(0.404, 0.891), (0.414, 0.893)]):
        r.append(rec("softmax", "es", s, "svhn", a, b, acc=0.953 + 0.002 * s))
    for s in range(2):
        r.append(rec("isomax", "es", s, "svhn", 0.786, 0.962, acc=0.952))
        r.append(rec("isomaxplus", "mds", s, "svhn", 0.970 - 0.01 * s, 0.994, acc=0.95))
        r.append(rec("isomaxplus", "mds", s, "lsun", 0.90, 0.98, acc=0.95))
        r.append(rec("isomaxplus", "es", s, "lsun", 0.80, 0.97, acc=0.95))
    return r


def test_tables_known_numbers_md_tex_csv():
    t = tables.comparison(records_known(), tables.SEAMLESS)
    md = tables.to_markdown(t)
    row = next(line for line in md.splitlines() if "| svhn |" in line)
    assert "40.9±0.7 / 78.6±0.0 / **96.5±0.7**" in row  # mean, sample std, rounding, bold best
    assert "89.2±0.1 / 96.2±0.0 / **99.4±0.0**" in row
    # only IsoMax+ has lsun: a lone cell is not bolded
    assert "| densenet | cifar10 | lsun | – / – / 90.0±0.0 |" in md
    tex = tables.to_latex(t, caption="Seamless 100% & more", label="tab:x")
    assert r"\textbf{96.5$\pm$0.7}" in tex and "40.9$\\pm$0.7 & 78.6$\\pm$0.0" in tex
    assert r"Seamless 100\% \& more" in tex and r"\multicolumn{3}{c}{TNR@TPR95 (\%)}" in tex
    assert "IsoMax+$_\\mathrm{MDS}$" in tex
    assert r"\\" + "\n" + r" &  & lsun &" in tex or " &  & lsun" in tex  # repeated keys blanked
    rows = list(csv.DictReader(io.StringIO(tables.to_csv(t))))
    svhn = next(r for r in rows if r["out_dataset"] == "svhn")
    assert float(svhn["tnr_at_tpr95_softmax_es_mean"]) == pytest.approx(40.9)
    assert float(svhn["tnr_at_tpr95_softmax_es_std"]) == pytest.approx(100 * np.std([0.404, 0.414], ddof=1), abs=1e-4)
    assert svhn["auroc_isomaxplus_mds_n"] == "2"
    lsun = next(r for r in rows if r["out_dataset"] == "lsun")
    assert lsun["auroc_softmax_es_mean"] == "" and lsun["auroc_softmax_es_n"] == "0"


def test_accuracy_and_averaged_tables():
    recs = records_known()
    acc = tables.comparison(
        recs, [(loss, None) for loss in LOSSES], ("accuracy",), keys=("model", "in_dataset"), joined=False
    )
    md = tables.to_markdown(acc)
    assert md.splitlines()[0] == (
        "| Model | Data (training) | SoftMax test accuracy (%) | IsoMax test accuracy (%) | IsoMax+ test accuracy (%) |"
    )
    assert "| densenet | cifar10 | **95.4±0.1** | 95.2±0.0 | 95.0±0.0 |" in md
    # Table 6: per seed, the mean over out-distributions; then mean ± std over seeds
    t6 = tables.comparison(
        recs, [("isomaxplus", "es"), ("isomaxplus", "mds")], ("tnr_at_tpr95",), keys=("model", "in_dataset")
    )
    assert t6.rows[0][1][0][1] == pytest.approx([(0.97 + 0.90) / 2, (0.96 + 0.90) / 2])
    assert "80.0±0.0 / **93.2±0.4**" in tables.to_markdown(t6)
    # lower is better for FPR
    fpr = tables.comparison(recs, tables.SEAMLESS, ("fpr_at_tpr95",))
    assert "59.1±0.7 / 21.4±0.0 / **3.5±0.7**" in tables.to_markdown(fpr)


def test_posthoc_and_oe_tables_when_records_exist(tmp_path):
    extra = []
    for s in (0, 1):
        for o in OODS:
            for score in ("odin", "mahalanobis", "oe"):
                extra.append(
                    dict(
                        in_dataset="fashion-mnist",
                        out_dataset=o,
                        model="cnn-28",
                        loss="softmax",
                        score=score,
                        seed=s,
                        accuracy=0.5 if score == "oe" else 1.0,
                        tnr_at_tpr95=0.5,
                        auroc=0.9,
                        dtacc=0.85,
                        auin=0.9,
                        auout=0.9,
                        fpr_at_tpr95=0.5,
                    )
                )
    bench = make_bench(tmp_path / "b", seeds=(0, 1), n=60, npz=False, extra_records=extra)
    out = tmp_path / "r"
    md = report.write_report([bench], out, log=lambda s: None).read_text()
    assert (out / "tables" / "table4_posthoc.tex").exists() and (
        out / "tables" / "table5_outlier_exposure.csv"
    ).exists()
    t4 = (out / "tables" / "table4_posthoc.md").read_text()
    assert "ODIN / Mahalanobis / IsoMax+<sub>MDS</sub>" in t4
    # OE runs are other SoftMax models: their accuracy stays out of the accuracy table
    t2 = (out / "tables" / "table2_accuracy.csv").read_text()
    assert "accuracy_softmax_mean" in t2 and "50.0000" not in t2 and "75.0000" not in t2
    assert "No logit files" in md and "histograms and ROC curves skipped" in md  # no npz: noted, no crash
    assert list((out / "figures").glob("*.png")) == [out / "figures" / "training_fashion-mnist-cnn-28.png"]


def test_missing_inputs_are_noted_and_bad_paths_refused(tmp_path, bench, small_bench):
    ev = tmp_path / "eval"  # an evaluate dir with only logits, no results.json
    (ev / "outputs").mkdir(parents=True)
    src = bench / "outputs" / "isomax-seed1.npz"
    (ev / "outputs" / "isomax-seed1.npz").write_bytes(src.read_bytes())
    md = report.write_report([ev], tmp_path / "r", log=lambda s: None).read_text()
    assert "tables skipped" in md and "seed 1" in md
    assert len(list((tmp_path / "r" / "figures").glob("min_distance_*.png"))) == 2
    # a run directory in a bench: its curve, logits and records
    md = report.write_report([small_bench / "runs" / "softmax-seed0"], tmp_path / "r2", log=lambda s: None).read_text()
    assert "run directory, logits, records" in md and "Minimum distance" in md
    with pytest.raises(ValueError, match="neither a bench"):
        report.write_report([tmp_path / "r2" / "tables"], tmp_path / "r3")
    with pytest.raises(FileNotFoundError):
        report.write_report([tmp_path / "nope"], tmp_path / "r3")


def test_cli_report(small_bench, tmp_path, capsys):
    from isomax.cli import main

    assert main(["report", str(small_bench), "--out", str(tmp_path / "r"), "--seed", "1", "--no-progress"]) == 0
    md = (tmp_path / "r" / "report.md").read_text()
    assert "SoftMax seed 1" in md and "isomax report" in md
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "x")]) == 2
    assert "neither a bench" in capsys.readouterr().err


def test_report_tables_hold_the_records_numbers(bench, written):
    """Each cell of the seamless table and the accuracy table is the mean ± std over seeds of the records."""
    out, _ = written
    records = json.loads((bench / "results.json").read_text())
    rows = list(csv.DictReader(io.StringIO((out / "tables" / "table3_seamless.csv").read_text())))
    assert {r["out_dataset"] for r in rows} == set(OODS)
    checked = 0
    for row in rows:
        for loss, score in tables.SEAMLESS:
            for metric in ("tnr_at_tpr95", "auroc"):
                values = [
                    r[metric]
                    for r in records
                    if (r["loss"], r["score"], r["out_dataset"]) == (loss, score, row["out_dataset"])
                ]
                assert float(row[f"{metric}_{loss}_{score}_mean"]) == pytest.approx(100 * np.mean(values), abs=1e-4)
                assert float(row[f"{metric}_{loss}_{score}_std"]) == pytest.approx(
                    100 * np.std(values, ddof=1), abs=1e-4
                )
                assert int(row[f"{metric}_{loss}_{score}_n"]) == len(values) == 2
                checked += 1
    assert checked == len(OODS) * 3 * 2
    acc = next(csv.DictReader(io.StringIO((out / "tables" / "table2_accuracy.csv").read_text())))
    for loss in LOSSES:
        per_seed = {r["seed"]: r["accuracy"] for r in records if r["loss"] == loss}
        assert float(acc[f"accuracy_{loss}_mean"]) == pytest.approx(100 * np.mean(list(per_seed.values())), abs=1e-4)


def test_report_figures_follow_their_inputs(bench, written):
    """One figure per loss x out-distribution, drawn from that pair's logits: the same inputs give the same bytes,
    other inputs other figures; the plotted quantities are isomax.scores' (entropy = minus the entropic score)."""
    from isomax import plots
    from isomax.scores import entropic_score, max_probability
    import torch

    out, _ = written
    names = {p.name for p in (out / "figures").glob("*.png")}
    for loss in LOSSES:
        for o in OODS:
            assert f"logits_fashion-mnist-cnn-28_{loss}_{o}.png" in names
            assert f"entropy_fashion-mnist-cnn-28_{loss}_{o}.png" in names
            assert (f"min_distance_fashion-mnist-cnn-28_{loss}_{o}.png" in names) == (loss != "softmax")

    def fig(kind: str, loss: str, o: str) -> bytes:
        return (out / "figures" / f"{kind}_fashion-mnist-cnn-28_{loss}_{o}.png").read_bytes()

    assert fig("entropy", "isomax", "mnist") != fig("entropy", "isomax", "gaussian")
    assert fig("entropy", "isomax", "mnist") != fig("entropy", "softmax", "mnist")
    with np.load(bench / "outputs" / "isomax-seed0.npz") as z:  # the figures use seed 0
        li, lo = z["logits/in"], z["logits/mnist"]
    again = plots.score_histogram(
        plots.entropy(li),
        plots.entropy(lo),
        out / "again.png",
        quantity="entropy",
        loss="isomax",
        in_name="fashion-mnist",
        out_name="mnist",
        num_classes=li.shape[1],
    )
    assert again.read_bytes() == fig("entropy", "isomax", "mnist")
    p = torch.softmax(torch.from_numpy(li).double(), 1).numpy()
    assert plots.entropy(li) == pytest.approx(-(p * np.log(p)).sum(1), abs=1e-5)
    assert plots.entropy(li) == pytest.approx(-entropic_score(torch.from_numpy(li)).numpy())
    assert plots.max_probability(li) == pytest.approx(max_probability(torch.from_numpy(li)).numpy())
    assert plots.min_distance(li, 2.0) == pytest.approx(-li.max(1) / 2.0)


def test_report_draws_calibration_and_risk_coverage_from_the_test_logits(bench, written):
    from isomax import plots
    from isomax.deploy.calibration import expected_calibration_error, reliability_bins
    from isomax.deploy.selective import aurc, risk_coverage
    import torch

    out, md = written
    assert "#### Calibration and selective classification" in md
    for loss in LOSSES:
        assert (out / "figures" / f"reliability_fashion-mnist-cnn-28_{loss}.png").is_file()
    with np.load(bench / "outputs" / "isomax-seed0.npz") as z:
        li, labels = z["logits/in"], z["labels/in"]
    li_t, labels_t = torch.from_numpy(li).double(), torch.from_numpy(labels).long()
    again = plots.reliability_diagram(
        reliability_bins(li_t, labels_t),
        out / "again.png",
        title="IsoMax, fashion-mnist test",
        ece=expected_calibration_error(li_t, labels_t),
    )
    assert again.read_bytes() == (out / "figures" / "reliability_fashion-mnist-cnn-28_isomax.png").read_bytes()
    s, correct = plots.score_values(li, "es"), li.argmax(1) == labels
    cov, risk = risk_coverage(s, correct)
    assert (
        cov[-1] == 1
        and risk[-1] == pytest.approx(1 - correct.mean())
        and aurc(s, correct) == pytest.approx(risk.mean())
    )
    assert (out / "figures" / "risk_coverage_fashion-mnist-cnn-28.png").is_file()


def test_report_markdown_links_resolve(written):
    import re

    out, md = written
    links = re.findall(r"\]\(([^)]+)\)", md)
    assert len(links) > 30
    for link in links:
        assert (out / link).is_file(), link


def test_truncated_logit_file_gives_a_one_line_error(tmp_path):
    import numpy as np

    from isomax.cli import main

    out = tmp_path / "bench" / "outputs"
    out.mkdir(parents=True)
    np.savez_compressed(
        out / "isomax-seed0.npz", **{"logits/in": np.zeros((4, 3), np.float32), "labels/in": np.zeros(4, np.int64)}
    )
    data = (out / "isomax-seed0.npz").read_bytes()
    (out / "isomax-seed0.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npz"):
        from isomax.report import write_report

        write_report([tmp_path / "bench"], tmp_path / "report", log=lambda _: None)
    assert main(["report", str(tmp_path / "bench"), "--out", str(tmp_path / "report2")]) == 2
