"""TrainConfig.head_weight_decay: the head's prototypes and distance scale in their own parameter group."""

import pytest
import torch

from isomax.presets import Runtime, TrainConfig, get_preset
from isomax.training import _param_groups, build_model, train


def test_default_is_one_group_with_the_global_weight_decay():
    config = get_preset("fashion-mnist").config(loss="isomaxplus")
    model = build_model(config, 10, 1)
    opt = torch.optim.SGD(_param_groups(model, config), lr=0.1, weight_decay=config.weight_decay)
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["weight_decay"] == config.weight_decay


def test_head_group_gets_its_own_weight_decay():
    config = get_preset("fashion-mnist").config(loss="isomaxplus", head_weight_decay=0.0)
    model = build_model(config, 10, 1)
    opt = torch.optim.SGD(_param_groups(model, config), lr=0.1, weight_decay=config.weight_decay)
    body, head = opt.param_groups
    assert body["weight_decay"] == config.weight_decay and head["weight_decay"] == 0.0
    assert {id(p) for p in head["params"]} == {id(model.head.prototypes), id(model.head.distance_scale)}
    assert len(body["params"]) + len(head["params"]) == len(list(model.parameters()))


def test_no_decay_on_head_leaves_prototypes_untouched_by_decay(fm_fixture_dir, no_checksums, tmp_path):
    # with lr > 0 and zero gradient, only weight decay moves a parameter: freeze the loss' pull by
    # comparing against a run where the head decays
    kw = dict(
        dataset="fashion-mnist",
        model="cnn-28",
        epochs=1,
        batch_size=32,
        lr=0.05,
        train_limit=64,
        loss="isomaxplus",
        weight_decay=0.5,
    )
    rt = Runtime(eval_batch_size=64, data_dir=str(fm_fixture_dir), device="cpu", threads=1)
    a = train(TrainConfig(**kw, head_weight_decay=0.0), tmp_path / "a", runtime=rt, progress=False, log=lambda s: None)
    b = train(TrainConfig(**kw), tmp_path / "b", runtime=rt, progress=False, log=lambda s: None)
    assert a.model.head.prototypes.norm() > b.model.head.prototypes.norm()


@pytest.mark.parametrize("bad", [-1.0, float("nan")])
def test_bad_head_weight_decay_is_refused(bad):
    with pytest.raises(ValueError, match="head_weight_decay"):
        TrainConfig(head_weight_decay=bad)
