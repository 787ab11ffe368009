"""examples/lightning_isomax.py: the LightningModule trains under lightning.Trainer and its model
is deployed with save_run (tiny random data, CPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

L = pytest.importorskip("lightning")
pytest.importorskip("timm")
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "lightning_isomax.py"


def _example():
    spec = importlib.util.spec_from_file_location("lightning_isomax", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lightning_module_trains_and_deploys(tmp_path):
    from torch.utils.data import DataLoader, TensorDataset

    from isomax import IsoMaxLoss, IsoMaxPlusHead
    from isomax.deploy import Predictor, save_run
    from isomax.runs import Run

    example = _example()
    torch.manual_seed(0)
    x, y = torch.randn(32, 3, 32, 32), torch.randint(0, 3, (32,))
    module = example.IsoMaxClassifier("timm:resnet18", num_classes=3, lr=1e-3, head_lr=1e-2)
    assert isinstance(module.model.head, IsoMaxPlusHead) and isinstance(module.loss_fn, IsoMaxLoss)
    before = module.model.head.prototypes.detach().clone()
    opt = module.configure_optimizers()
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-2]
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(
        module,
        DataLoader(TensorDataset(x[:24], y[:24]), batch_size=8),
        DataLoader(TensorDataset(x[24:], y[24:]), batch_size=8),
    )
    assert trainer.global_step == 3 and not torch.equal(before, module.model.head.prototypes)
    assert set(trainer.callback_metrics) >= {"train_loss", "val_loss", "val_acc", "val_score"}
    model = module.model.eval()
    out = save_run(
        model,
        tmp_path / "run",
        predictor=Predictor(model, "mds").fit(x[24:]),
        input_size=(3, 32, 32),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
    )
    run = Run.load(out, calibrated=False)
    loaded, config = run.model, run.config
    assert config.model == "timm:resnet18"
    with torch.no_grad():
        torch.testing.assert_close(loaded(x[:4]), model(x[:4]))
