"""scripts/compare_methods.py: sample std (ddof=1), paired per-seed differences, rows for any loss, near/far groups."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from isomax.records import as_records

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_methods.py"


@pytest.fixture(scope="module")
def cm():
    spec = importlib.util.spec_from_file_location("compare_methods", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def rec(loss, score, seed, out, auroc, **extra):
    return dict(
        in_dataset="cifar10",
        out_dataset=out,
        model="m",
        loss=loss,
        score=score,
        seed=seed,
        accuracy=0.8,
        tnr_at_tpr95=auroc / 2,
        auroc=auroc,
        dtacc=0.7,
        auin=auroc,
        auout=auroc,
        fpr_at_tpr95=1 - auroc,
        **extra,
    )


def test_mean_std_is_the_sample_std_and_one_seed_has_none(cm):
    assert cm.mean_std([1.0, 2.0, 3.0]) == f"2.0±{np.std([1, 2, 3], ddof=1):.1f}" == "2.0±1.0"
    assert cm.mean_std([88.6]) == "88.6" and cm.mean_std([]) == "–"


def test_paired_differences_and_level(cm):
    a, b = {0: 99.0, 1: 98.9, 2: 99.4}, {0: 99.3, 1: 98.62, 2: 98.29}  # the 12-epoch schedule-study case
    d = np.array([99.0 - 99.3, 98.9 - 98.62, 99.4 - 98.29])
    assert cm.paired_text(a, b, 2) == f"{d.mean():+.2f}±{d.std(ddof=1):.2f} level"  # +0.36±0.72: within one std
    assert cm.paired_text({0: 3.0, 1: 4.0}, {0: 1.0, 1: 1.5}) == "+2.2±0.4 ahead"
    assert cm.paired_text({0: 1.0, 1: 1.5}, {0: 3.0, 1: 4.0}) == "-2.2±0.4 behind"
    assert cm.paired_text({0: 1.0, 5: 2.0}, {0: 0.5, 1: 0.0}) == "+0.5 (1 seed)"  # only seed 0 is common
    assert cm.paired_text({0: 1.0}, {1: 1.0}) == "– (no common seed)"


def test_rows_cover_detectors_on_any_loss_and_unknown_losses(cm):
    records = as_records(
        [
            rec("softmax", "es", 0, "svhn", 0.8),
            rec("logitnorm", "vim", 0, "svhn", 0.9),
            rec("dismax", "mmles", 0, "svhn", 0.95),
            rec("isomax", "energy", 0, "svhn", 0.5),
        ]
    )
    rows = cm.row_specs(records)
    assert [(c, label, loss) for c, label, loss, *_ in rows] == [
        ("baseline", "SoftMax, entropic score", "softmax"),
        ("seamless", "DisMax, MMLES", "dismax"),
        ("post-hoc", "ViM", "logitnorm"),
    ]


def test_near_far_tables_group_by_role_with_paired_deltas(cm):
    records = []
    for seed, (near, far) in enumerate([(0.70, 0.90), (0.74, 0.94), (0.72, 0.98)]):
        records += [
            rec("softmax", "es", seed, "cifar100", near),
            rec("softmax", "es", seed, "svhn", far),
            rec("isomax", "es", seed, "cifar100", near + 0.01 * (seed - 1)),
            rec("isomax", "es", seed, "svhn", far - 0.1),
        ]
    text = cm.near_far_tables(as_records(records))
    assert "### near-OOD: cifar100" in text and "### far-OOD: svhn" in text and "noise" not in text
    near = text.split("### far-OOD")[0]
    # IsoMax ES near: 69.0, 74.0, 73.0 -> 72.0±2.6; paired to SoftMax (best, 72.0±2.0): -1, 0, +1 -> +0.0±1.0 level
    assert "| IsoMax, entropic score | isomax | 80.0±0.0 | 28.0±2.6 | 72.0±2.6 | 72.0±2.6 | 72.0±2.6 | 3 | " in near
    assert "level |" in near.split("IsoMax, entropic")[1].splitlines()[0]
    far = text.split("### far-OOD")[1]
    assert "| 3 | -10.0±0.0 behind |" in far
