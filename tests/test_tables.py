import pytest

from isomax import tables


def rec(loss, score, seed, out="svhn", **m):
    return dict(
        in_dataset="cifar10",
        out_dataset=out,
        model="densenet-bc-100",
        loss=loss,
        score=score,
        seed=seed,
        accuracy=m.pop("accuracy", 0.9),
        **{k: m.get(k, 0.5) for k in ("tnr_at_tpr95", "auroc", "dtacc", "auin", "auout")},
    )


def test_fmt_mean_std_rounding_and_sample_std():
    assert tables.fmt_mean_std([0.953, 0.951, 0.955]) == "95.3±0.2"
    assert tables.fmt_mean_std([0.5]) == "50.0"  # one seed: no std to show
    assert tables.fmt_mean_std([0.5, 0.5]) == "50.0±0.0"
    assert tables.fmt_mean_std([0.12345, 0.12355], digits=2) == "12.35±0.01"
    assert tables.fmt_mean_std([0.9], bold=True) == "**90.0**"
    assert tables.fmt_mean_std([]) == "–"
    mean, std, n = tables.aggregate([1.0, 2.0, 3.0])
    assert (mean, n) == (2.0, 3) and std == pytest.approx(1.0)


def test_seamless_table_bolds_the_best_mean():
    records = [rec("softmax", "es", s, tnr_at_tpr95=0.40 + 0.01 * s, auroc=0.89) for s in range(3)]
    records += [rec("isomax", "es", s, tnr_at_tpr95=0.78, auroc=0.96) for s in range(3)]
    records += [rec("isomaxplus", "mds", s, tnr_at_tpr95=0.97, auroc=0.994) for s in range(3)]
    records += [rec("isomaxplus", "es", s, tnr_at_tpr95=0.99) for s in range(3)]  # not in the layout
    table = tables.seamless_table(records)
    row = [line for line in table.splitlines() if "| svhn |" in line][0]
    assert "41.0±1.0 / 78.0±0.0 / **97.0±0.0**" in row
    assert "89.0±0.0 / 96.0±0.0 / **99.4±0.0**" in row
    assert "SoftMax<sub>ES</sub> / IsoMax<sub>ES</sub> / IsoMax+<sub>MDS</sub>" in table


def test_accuracy_table_layout():
    records = [rec("softmax", "es", s, accuracy=0.95) for s in range(2)] + [
        rec("isomaxplus", "mds", s, accuracy=0.96) for s in range(2)
    ]
    table = tables.accuracy_table(records)
    assert (
        table.splitlines()[0] == "| Model | Data (training) | SoftMax test accuracy (%) | IsoMax+ test accuracy (%) |"
    )
    assert "| densenet-bc-100 | cifar10 | 95.0±0.0 | 96.0±0.0 |" in table


def test_outlier_exposure_is_a_training_method_not_a_score():
    """OE records (method "oe", score "es") stay out of the standard SoftMax ES cells and the accuracy table."""
    records = [rec("softmax", "es", s, accuracy=0.95, tnr_at_tpr95=0.40) for s in range(2)]
    records += [dict(rec("softmax", "es", s, accuracy=0.50, tnr_at_tpr95=0.90), method="oe") for s in range(2)]
    records += [rec("isomax", "es", s, tnr_at_tpr95=0.70) for s in range(2)]
    assert "40.0±0.0 / **70.0±0.0**" in tables.seamless_table(records)
    assert "| 95.0±0.0 | 90.0±0.0 |" in tables.accuracy_table(records)  # SoftMax, IsoMax; not the OE model's 50
    oe = tables.outlier_exposure_table(records)
    assert "SoftMax<sub>ES</sub><sup>OE</sup> / IsoMax<sub>ES</sub>" in oe and "**90.0±0.0** / 70.0±0.0" in oe
    every = tables.all_scores_table(records)
    assert (
        "| SoftMax | Outlier Exposure | ES | 90.0±0.0 |" in every and "| SoftMax | standard | ES | 40.0±0.0 |" in every
    )


def test_near_far_groups_by_role_with_sample_std():
    """Each seed's mean over the group's sets, then mean ± std (ddof=1) over seeds; a float64 reference by hand."""
    import numpy as np

    aurocs = {
        ("tinyimagenet-resize", 0): 0.70,
        ("tinyimagenet-resize", 1): 0.74,
        ("cifar100", 0): 0.80,
        ("cifar100", 1): 0.78,
        ("svhn", 0): 0.95,
        ("svhn", 1): 0.91,
        ("gaussian", 0): 0.99,
        ("gaussian", 1): 0.5,
    }
    records = [rec("softmax", "es", s, out=o, auroc=a, fpr_at_tpr95=1 - a) for (o, s), a in aurocs.items()]
    records.append(dict(rec("isomax", "es", 0, out="svhn", auroc=0.97), role="near"))  # a recorded role wins
    table = tables.near_far(records)
    keys = [k for k, _ in table.rows]
    assert keys == [
        ("cifar10", "near", "softmax", "standard", "es"),
        ("cifar10", "near", "isomax", "standard", "es"),
        ("cifar10", "far", "softmax", "standard", "es"),
        ("cifar10", "noise", "softmax", "standard", "es"),
    ]
    near = [np.mean([aurocs["tinyimagenet-resize", s], aurocs["cifar100", s]]) for s in (0, 1)]
    md = tables.to_markdown(table).splitlines()
    assert md[0].startswith(
        "| Data (training) | OOD group | Loss | Training | Score | ID accuracy (%) | FPR@95TPR (%) "
        "| AUROC (%) | AUPR-in (%) | AUPR-out (%) | Seeds |"
    )
    expected = f"{100 * np.mean(near):.1f}±{100 * np.std(near, ddof=1):.1f}"
    assert expected == "75.5±0.7" and f"| {expected} |" in md[2] and md[2].endswith("| 2 |")
    assert "| IsoMax | standard | ES | 90.0 | – | 97.0 | 50.0 | 50.0 | 1 |" in md[3]  # one seed: no ±
    assert "| 93.0±2.8 |" in md[4] and "| 74.5±34.6 |" in md[5]
    spec = [s for s in tables.standard_tables(records) if s.name == "near_far"][0]
    assert "cifar10 near: tinyimagenet-resize, cifar100, svhn" in spec.caption and "ddof=1" in spec.caption
