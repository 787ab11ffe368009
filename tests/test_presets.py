"""Every preset builds a valid configuration whose model, dataset and out-distributions exist."""

import pytest

from isomax.data import IN_DATASETS
from isomax.models import create_model, list_models
from isomax.presets import PRESETS, TrainConfig, get_preset, list_presets, presets_help

CPU_PRESETS = ("fashion-mnist-quick", "fashion-mnist", "cifar10-cpu", "cifar10-cpu-15min")


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_loads(name):
    preset = get_preset(name)
    config = preset.config()
    assert isinstance(config, TrainConfig) and preset.description
    assert TrainConfig.from_dict(config.to_dict()) == config  # what config.json round-trips
    assert config.model in list_models()
    assert config.dataset in IN_DATASETS
    assert config.dataset not in config.ood  # never the in-distribution as an out-distribution
    for loss in ("softmax", "isomax", "isomaxplus"):  # the same recipe for the three heads
        assert preset.config(loss=loss).replace(loss=config.loss) == config
    if config.schedule == "step":
        assert all(0 < m < config.epochs for m in config.milestones)
    assert name in presets_help()


@pytest.mark.parametrize("name", CPU_PRESETS)
def test_cpu_presets_use_cheap_models(name):
    config = get_preset(name).config()
    assert name in PRESETS
    params = sum(p.numel() for p in create_model(config.model).parameters())
    assert params < 1.2e6, f"{config.model}: {params} parameters"


def test_cifar10_cpu_presets_and_the_gpu_presets():
    quick, long_ = get_preset("cifar10-cpu").config(), get_preset("cifar10-cpu-15min").config()
    assert (quick.model, quick.epochs, quick.batch_size) == ("cnn-32-small", 9, 256)
    assert (long_.model, long_.epochs, long_.batch_size) == ("cnn-32-half", 13, 256)
    fast = get_preset("cifar10-fast").config()
    assert (fast.batch_size, fast.epochs, fast.schedule, fast.nesterov, fast.amp) == (512, 20, "onecycle", True, True)
    paper = get_preset("paper").config()
    assert (paper.model, paper.epochs, paper.batch_size, paper.milestones) == (
        "densenet-bc-100",
        300,
        64,
        (150, 200, 250),
    )
