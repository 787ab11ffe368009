"""Train a timm / torchvision / isomax model with the IsoMax+ loss in PyTorch Lightning, then deploy it.

    pip install 'isomax[lightning,timm]'
    python examples/lightning_isomax.py --out runs/lightning      # tiny random data: a smoke run

The IsoMax part is three lines: build the model with the isomax head (``create_model`` or
``isomax.convert``), use ``IsoMaxLoss`` instead of cross-entropy, score with the minimum distance
(``mds``, higher = more in-distribution). Precision, devices, logging: Lightning as usual (e.g.
``Trainer(precision="bf16-mixed")`` on a GPU; the head and the loss compute in float32).
At the end, :func:`isomax.deploy.save_run` writes a run folder that ``isomax predict``, ``export``,
``threshold`` and ``calibrate`` accept.
"""

from __future__ import annotations

import argparse

import lightning as L
import torch

from isomax import make_loss
from isomax.models import create_model
from isomax.scores import SCORES


class IsoMaxClassifier(L.LightningModule):
    """A classifier trained with an IsoMax / IsoMax+ head and loss.

    Args:
        model: ``"timm:resnet18"``, ``"torchvision:resnet18"``, an isomax model name, or a model
            whose classifier :func:`isomax.convert` already replaced.
        num_classes, in_channels: of the data.
        loss: ``"isomaxplus"`` (default), ``"isomax"`` or ``"softmax"``.
        lr, head_lr: AdamW learning rates of the backbone and of the head (prototypes).
    """

    def __init__(
        self,
        model="timm:resnet18",
        num_classes: int = 10,
        in_channels: int = 3,
        loss: str = "isomaxplus",
        entropic_scale: float = 10.0,
        lr: float = 1e-3,
        head_lr: float = 1e-2,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["model"] if isinstance(model, torch.nn.Module) else None)
        self.model = (
            model
            if isinstance(model, torch.nn.Module)
            else create_model(model, num_classes=num_classes, head=loss, in_channels=in_channels)
        )
        self.loss_fn = make_loss(loss, entropic_scale)
        self.score = SCORES["mds" if loss != "softmax" else "mps"]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = self.loss_fn(self(x).float(), y)  # distances and loss in float32, also under bf16 autocast
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def validation_step(self, batch, batch_idx):
        x, y = batch
        logits = self(x).float()
        self.log_dict(
            {
                "val_loss": self.loss_fn(logits, y),
                "val_acc": (logits.argmax(1) == y).float().mean(),
                "val_score": self.score(logits).mean(),
            }
        )

    def configure_optimizers(self):
        head = self.model.head
        head_ids = {id(p) for p in head.parameters()}
        rest = [p for p in self.model.parameters() if id(p) not in head_ids]
        return torch.optim.AdamW(
            [{"params": rest}, {"params": list(head.parameters()), "lr": self.hparams.head_lr}], lr=self.hparams.lr
        )


def main() -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from isomax.deploy import Predictor, save_run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="timm:resnet18")
    p.add_argument("--out", required=True, help="run folder to write")
    p.add_argument("--epochs", type=int, default=1)
    args = p.parse_args()
    torch.manual_seed(0)
    x, y = torch.randn(64, 3, 32, 32), torch.randint(0, 4, (64,))  # stand-ins for your data
    mean, std = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)
    train = DataLoader(TensorDataset(x[:48], y[:48]), batch_size=16, shuffle=True)
    val = DataLoader(TensorDataset(x[48:], y[48:]), batch_size=16)
    module = IsoMaxClassifier(args.model, num_classes=4)
    L.Trainer(max_epochs=args.epochs, accelerator="auto", logger=False, enable_checkpointing=False).fit(
        module, train, val
    )
    model = module.model.eval()
    predictor = Predictor(model, "mds").fit(x[48:])
    save_run(
        model,
        args.out,
        predictor=predictor,
        input_size=(3, 32, 32),
        mean=mean,
        std=std,
        class_names=["a", "b", "c", "d"],
    )
    print(f"wrote {args.out}: isomax predict {args.out} IMAGES --out predictions.csv")


if __name__ == "__main__":
    main()
