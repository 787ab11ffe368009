"""isomax.integrations.huggingface on tiny config-built BERT and ViT models (no downloads)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from isomax import IsoMaxHead, IsoMaxPlusHead  # noqa: E402
from isomax.integrations import huggingface as hf  # noqa: E402
from isomax.losses import reference_isomax_loss  # noqa: E402


def _bert():
    config = transformers.BertConfig(
        vocab_size=50,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=32,
        num_labels=3,
    )
    torch.manual_seed(0)
    model = transformers.BertForSequenceClassification(config).eval()
    inputs = {"input_ids": torch.randint(0, 50, (4, 7)), "attention_mask": torch.ones(4, 7, dtype=torch.long)}
    return model, inputs, transformers.AutoModelForSequenceClassification


def _vit():
    config = transformers.ViTConfig(
        image_size=16,
        patch_size=8,
        num_channels=3,
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        num_labels=3,
    )
    torch.manual_seed(0)
    model = transformers.ViTForImageClassification(config).eval()
    return model, {"pixel_values": torch.randn(4, 3, 16, 16)}, transformers.AutoModelForImageClassification


@pytest.mark.parametrize("make", [_bert, _vit], ids=["bert", "vit"])
@pytest.mark.parametrize("head, head_cls", [("isomaxplus", IsoMaxPlusHead), ("isomax", IsoMaxHead)])
def test_labels_give_the_isomax_loss_and_save_load_round_trips(tmp_path, make, head, head_cls):
    model, inputs, auto = make()
    hf.convert(model, head=head, entropic_scale=10.0)
    assert isinstance(model.classifier, head_cls)
    if head == "isomax":  # zero prototypes: spread them as training would, so the round trip is not trivial
        nn.init.normal_(model.classifier.prototypes)
    labels = torch.tensor([0, 2, 1, 2])
    out = model(**inputs, labels=labels)
    expected = reference_isomax_loss(out.logits.double(), labels, 10.0)  # the papers' formula, float64
    torch.testing.assert_close(out.loss.double(), expected, rtol=1e-5, atol=1e-6)
    plain_ce = nn.functional.cross_entropy(out.logits, labels)
    assert not torch.isclose(out.loss, plain_ce)  # the model's own loss (no entropic scale) is not what is returned
    trainer_loss = hf.isomax_compute_loss(10.0, head=head)(model(**inputs), labels)
    torch.testing.assert_close(trainer_loss, out.loss)

    model.save_pretrained(tmp_path / "saved")
    plain = auto.from_pretrained(tmp_path / "saved")  # what transformers alone does: an nn.Linear again
    assert isinstance(plain.classifier, nn.Linear)
    loaded = hf.load_pretrained(auto, tmp_path / "saved").eval()
    assert isinstance(loaded.classifier, head_cls)
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, rtol=0, atol=0)
    torch.testing.assert_close(loaded(**inputs, labels=labels).loss, out.loss)  # the loss is patched again


def test_gradients_flow_to_the_prototypes():
    model, inputs, _ = _bert()
    hf.convert(model.train(), head="isomaxplus")
    model(**inputs, labels=torch.tensor([0, 1, 2, 0])).loss.backward()
    assert model.classifier.prototypes.grad is not None and model.classifier.prototypes.grad.abs().sum() > 0


def test_regression_and_multilabel_are_refused():
    model, inputs, _ = _bert()
    hf.convert(model, head="isomaxplus")
    with pytest.raises(ValueError, match="single-label"):
        model(**inputs, labels=torch.rand(4, 3))
    model.config.problem_type = "regression"
    with pytest.raises(ValueError, match="single-label"):
        model(**inputs, labels=torch.tensor([0, 1, 2, 0]))


def test_plain_folder_loads_as_usual_and_errors(tmp_path):
    import isomax

    assert isomax.load_pretrained is hf.load_pretrained  # the top-level name of the issue
    model, inputs, auto = _bert()
    model.save_pretrained(tmp_path / "plain")
    assert isinstance(hf.load_pretrained(auto, tmp_path / "plain").classifier, nn.Linear)
    with pytest.raises(FileNotFoundError, match="save_pretrained"):
        hf.load_pretrained(auto, tmp_path / "missing")
    with pytest.raises(TypeError, match="PreTrainedModel"):
        hf.convert(nn.Linear(2, 2))
