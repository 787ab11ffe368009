"""timm:/torchvision: models, --pretrained, fine-tuning options, --config files, save_run."""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

from isomax import IsoMaxPlusHead
from isomax.models import LibraryModel, create_model

timm = pytest.importorskip("timm")


# ---- model specs ------------------------------------------------------------------------------
def test_timm_spec_builds_the_converted_library_model():
    torch.manual_seed(0)
    model = create_model("timm:resnet18", num_classes=3, head="isomaxplus", in_channels=1)
    assert isinstance(model, LibraryModel) and model.spec == "timm:resnet18"
    assert isinstance(model.head, IsoMaxPlusHead) and model.head is model.net.fc and model.num_classes == 3
    assert model.net.conv1.in_channels == 1
    logits = model.eval()(torch.randn(2, 1, 32, 32))
    assert logits.shape == (2, 3) and torch.all(logits <= 0)
    assert all(k.startswith("net.") for k in model.state_dict())
    from isomax.detectors.hooks import find_classifier

    assert find_classifier(model) == ("net.fc", model.head)  # the post-hoc detectors read its input


@pytest.mark.parametrize(
    "spec, head_path",
    [
        ("torchvision:resnet18", "fc"),
        ("torchvision:squeezenet1_1", "classifier.3"),
        ("torchvision:mobilenet_v3_small", "classifier.3"),
    ],
)
def test_torchvision_spec(spec, head_path):
    torch.manual_seed(0)
    model = create_model(spec, num_classes=4, head="isomax", in_channels=3).eval()
    assert model.head_names == [head_path] and model.head.out_features == 4
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 4)


def test_inception_is_built_without_auxiliary_heads():
    model = create_model("torchvision:googlenet", num_classes=4, head="isomaxplus", in_channels=3)
    assert not any(n.startswith("aux") for n, _ in model.net.named_children() if getattr(model.net, n) is not None)
    assert model.train()(torch.randn(2, 3, 64, 64)).shape == (2, 4)  # one output in training too


@pytest.mark.parametrize(
    "spec, message",
    [
        ("timm:no_such_net", "timm has no 'no_such_net'"),
        ("torchvision:resnet", "torchvision classification model.*resnet18"),
        ("keras:resnet18", "one of"),
        ("timm:deit_tiny_distilled_patch16_224", "2 classifier heads"),
    ],
)
def test_bad_specs_are_refused_with_one_line(spec, message):
    with pytest.raises(ValueError, match=message):
        create_model(spec, num_classes=3, head="isomaxplus", in_channels=3)


def test_torchvision_needs_rgb():
    with pytest.raises(ValueError, match="3-channel.*timm"):
        create_model("torchvision:resnet18", num_classes=3, in_channels=1)


# ---- --pretrained ----------------------------------------------------------------------------
def _weights(tmp_path, suffix, num_classes=1000, in_chans=3):
    torch.manual_seed(1)
    source = timm.create_model("resnet18", pretrained=False, num_classes=num_classes, in_chans=in_chans)
    path = tmp_path / f"w{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(source.state_dict(), str(path))
    else:
        torch.save(source.state_dict(), path)
    return source, path


@pytest.mark.parametrize("suffix", [".safetensors", ".pt"])
def test_pretrained_loads_everything_but_the_classifier(tmp_path, suffix):
    from isomax.models.pretrained import load_pretrained

    source, path = _weights(tmp_path, suffix)
    model = create_model("timm:resnet18", num_classes=3, head="isomaxplus", in_channels=3)
    head_before = model.head.prototypes.detach().clone()
    report = load_pretrained(model, path)
    assert report["dropped"] == ["fc.bias", "fc.weight"]
    for k, v in source.state_dict().items():
        if not k.startswith("fc."):
            torch.testing.assert_close(model.net.state_dict()[k], v, rtol=0, atol=0)
    torch.testing.assert_close(model.head.prototypes, head_before)  # the head keeps its own initialisation


def test_pretrained_mismatch_lists_keys(tmp_path):
    from isomax.models.pretrained import PretrainedMismatchError, load_pretrained

    source, _ = _weights(tmp_path, ".pt")
    state = source.state_dict()
    state.pop("layer1.0.conv1.weight")
    state["extra.weight"] = torch.zeros(1)
    torch.save(state, tmp_path / "bad.pt")
    model = create_model("timm:resnet18", num_classes=3, head="isomaxplus", in_channels=3)
    with pytest.raises(
        PretrainedMismatchError, match=r"missing 1: layer1\.0\.conv1\.weight; unexpected 1: extra\.weight"
    ):
        load_pretrained(model, tmp_path / "bad.pt")
    _, grey = _weights(tmp_path, ".pth", in_chans=1)
    with pytest.raises(PretrainedMismatchError, match=r"wrong shape.*conv1\.weight \(64, 1, 7, 7\) vs \(64, 3, 7, 7\)"):
        load_pretrained(model, grey)


def test_pretrained_refuses_code_and_garbage(tmp_path):
    import pickle

    from isomax.models.pretrained import read_state_dict

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(ValueError, match="not a state dict of tensors"):
        read_state_dict(tmp_path / "evil.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(ValueError, match="not a safetensors file"):
        read_state_dict(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match=r"\.safetensors, \.pt"):
        read_state_dict(tmp_path / "w.npz")
    torch.save({"state_dict": {"a": torch.zeros(2)}}, tmp_path / "wrapped.pt")
    assert list(read_state_dict(tmp_path / "wrapped.pt")) == ["a"]


def test_isomax_model_pretrained_drops_head(tmp_path):
    from isomax.models.pretrained import load_pretrained

    source = create_model("cnn-28", num_classes=10, head="softmax", in_channels=1)
    torch.save(source.state_dict(), tmp_path / "cnn.pt")
    model = create_model("cnn-28", num_classes=4, head="isomaxplus", in_channels=1)
    assert load_pretrained(model, tmp_path / "cnn.pt")["dropped"] == ["head.bias", "head.weight"]


def test_timm_data_config_is_read_without_download():
    from isomax.models import library_data_config

    cfg = library_data_config(create_model("timm:resnet18", num_classes=3, in_channels=3))
    assert cfg["input_size"] == (3, 224, 224) and cfg["mean"] == (0.485, 0.456, 0.406)
    assert library_data_config(create_model("cnn-28", num_classes=3)) is None


# ---- optimiser, schedule, head lr, label smoothing ------------------------------------------------
def test_cosine_schedule_matches_its_formula():
    from isomax.presets import TrainConfig
    from isomax.training import make_scheduler

    config = TrainConfig(schedule="cosine", warmup_epochs=1, epochs=4, lr=2.0)
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=config.lr)
    sched = make_scheduler(opt, config, steps_per_epoch=10)
    lrs = []
    for _ in range(40):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    expected = [
        2.0 * (it + 1) / 10 if it < 10 else 2.0 * 0.5 * (1 + math.cos(math.pi * (it - 10) / 30)) for it in range(40)
    ]
    assert lrs == pytest.approx(expected, rel=1e-12)


def test_head_lr_adamw_and_label_smoothing():
    from isomax.presets import TrainConfig
    from isomax.training import make_optimizer, make_scheduler

    model = create_model("timm:resnet18", num_classes=3, head="isomaxplus", in_channels=3)
    config = TrainConfig(model="timm:resnet18", optimizer="adamw", lr=1e-3, head_lr=1e-2, head_weight_decay=0.0)
    opt = make_optimizer(model, config)
    assert isinstance(opt, torch.optim.AdamW)
    rest, head = opt.param_groups
    assert {id(p) for p in head["params"]} == {id(p) for p in model.head.parameters()}
    assert head["lr"] == 1e-2 and rest["lr"] == 1e-3 and head["weight_decay"] == 0.0
    assert len(rest["params"]) + len(head["params"]) == len(list(model.parameters()))
    sched = make_scheduler(opt, config.replace(epochs=2), steps_per_epoch=4)
    opt.step()
    sched.step()
    assert opt.param_groups[1]["lr"] / opt.param_groups[0]["lr"] == pytest.approx(10.0)  # the ratio is kept
    with pytest.raises(ValueError, match="optimizer"):
        TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="label_smoothing"):
        TrainConfig(label_smoothing=1.5)


def test_old_configs_load_and_compare_equal(tmp_path):
    """A config.json written before the fine-tuning fields existed loads with their defaults, and
    check_config of that run sees no difference."""
    from isomax import runs
    from isomax.presets import TrainConfig

    old = TrainConfig().to_dict()
    for key in ("pretrained", "optimizer", "head_lr", "label_smoothing"):
        old.pop(key)
    (tmp_path / "config.json").write_text(json.dumps(old))
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    assert runs.read_config(tmp_path) == TrainConfig()
    runs.check_config(tmp_path, TrainConfig())  # no error


# ---- config files -----------------------------------------------------------------------------
def test_config_file_precedence_and_errors(tmp_path):
    from isomax.cli import _build_parser
    from isomax.cli.train import train_settings

    (tmp_path / "run.toml").write_text(
        'preset = "cifar10-cpu"\nmodel = "timm:resnet18"\nlr = 0.01\nmilestones = [2, 3]\nloss = "isomax"\n'
    )
    args = _build_parser().parse_args(["train", "--config", str(tmp_path / "run.toml"), "--lr", "0.5"])
    config, _ = train_settings(args)
    # preset < file < flag
    got = (config.dataset, config.model, config.lr, config.milestones, config.loss)
    assert got == ("cifar10", "timm:resnet18", 0.5, (2, 3), "isomax")
    from isomax.config_file import read_config_file, to_toml

    (tmp_path / "printed.toml").write_text(to_toml(config))
    from isomax.presets import TrainConfig

    assert TrainConfig().replace(**read_config_file(tmp_path / "printed.toml")) == config  # round trip
    for text, message in (
        ("lr = 'fast'\n", "expected `lr` to be float"),
        ("colour = 1\n", "unknown setting"),
        ("lr = \n", "cannot parse"),
        ("lr = {a = 1}\n", "is a table"),
        ("[train]\nlr = 1\n", "unknown setting"),
    ):
        (tmp_path / "bad.toml").write_text(text)
        with pytest.raises(ValueError, match=message):
            read_config_file(tmp_path / "bad.toml")


def test_print_config_cli(capsys):
    from isomax.cli import main

    assert main(["train", "--print-config", "--model", "timm:resnet18", "--lr-schedule", "cosine"]) == 0
    out = capsys.readouterr().out
    assert 'model = "timm:resnet18"' in out and 'schedule = "cosine"' in out and 'optimizer = "sgd"' in out
    # the runtime settings come last, after a comment line, in the same flat table
    config_part, runtime_part = out.split("# runtime:")
    assert 'device = "auto"' in runtime_part and "eval_batch_size = 1000" in runtime_part
    assert "device" not in config_part and "eval_batch_size" not in config_part
    assert main(["train", "--model", "cnn-28"]) == 2  # no --out: a one-line error


def test_config_file_with_runtime_settings_and_print_config_round_trip(tmp_path, capsys):
    """A --config file holds TrainConfig and Runtime fields, flat; they go to the two dataclasses, and what
    --print-config prints is the same pair again."""
    from isomax.cli import _build_parser, main
    from isomax.cli.train import train_settings
    from isomax.presets import Runtime

    (tmp_path / "run.toml").write_text('lr = 0.01\ndevice = "cpu"\nthreads = 2\neval_batch_size = 64\n')
    args = _build_parser().parse_args(["train", "--config", str(tmp_path / "run.toml"), "--workers", "0"])
    config, runtime = train_settings(args)
    assert config.lr == 0.01 and runtime == Runtime(device="cpu", threads=2, eval_batch_size=64, workers=0)
    assert main(["train", "--print-config", "--config", str(tmp_path / "run.toml"), "--workers", "0"]) == 0
    (tmp_path / "printed.toml").write_text(capsys.readouterr().out)
    again = train_settings(_build_parser().parse_args(["train", "--config", str(tmp_path / "printed.toml")]))
    assert again == (config, runtime)


def test_folder_run_from_pretrained_timm_weights_takes_their_input_size(tmp_path, capsys):
    from PIL import Image

    from isomax.cli import main

    for name in ("a", "b"):
        (tmp_path / "photos" / "train" / name).mkdir(parents=True)
        Image.new("RGB", (50, 40)).save(tmp_path / "photos" / "train" / name / "0.png")
    common = ["train", "--print-config", "--dataset", str(tmp_path / "photos"), "--model", "timm:vit_tiny_patch16_384"]
    assert main(common + ["--pretrained", "w.safetensors"]) == 0
    assert "img_size = 384" in capsys.readouterr().out  # timm's pretrained configuration, no download
    assert main(common + ["--pretrained", "w.safetensors", "--img-size", "64"]) == 0
    assert "img_size = 64" in capsys.readouterr().out  # the flag wins
    assert main(common) == 0
    assert "img_size = 384" not in capsys.readouterr().out  # random weights: the folder default


# ---- save_run --------------------------------------------------------------------------------
@pytest.mark.parametrize("head, score", [("isomaxplus", "mds"), ("dismax", "mmles")])
def test_save_run_timm_model_rebuilds_identically(tmp_path, head, score):
    from isomax import convert
    from isomax.deploy import Predictor, save_run
    from isomax.runs import Run

    torch.manual_seed(0)
    model = convert(timm.create_model("resnet18", pretrained=False, num_classes=3), head=head).eval()
    val = torch.randn(40, 3, 32, 32)
    pred = Predictor(model, score).fit(val)
    out = save_run(
        model,
        tmp_path / "run",
        predictor=pred,
        input_size=(3, 32, 32),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        class_names=["a", "b", "c"],
    )
    run = Run.load(out, calibrated=False)
    loaded, config = run.model, run.config
    assert config.model == "timm:resnet18" and config.loss == head and run.class_names == ["a", "b", "c"]
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
    assert json.loads((out / "threshold.json").read_text())["score"] == score


def test_save_run_torchvision_needs_a_spec(tmp_path):
    import torchvision

    from isomax import convert
    from isomax.deploy import UnsupportedModelError, save_run

    model = convert(torchvision.models.resnet18(num_classes=3), head="isomax").eval()
    with pytest.raises(UnsupportedModelError, match="model_spec='torchvision:NAME'"):
        save_run(model, tmp_path / "r", input_size=(3, 32, 32), mean=(0.5,) * 3, std=(0.25,) * 3)
    with pytest.raises(ValueError, match="does not hold this model's weights"):
        save_run(
            model,
            tmp_path / "r",
            model_spec="torchvision:resnet34",
            input_size=(3, 32, 32),
            mean=(0.5,) * 3,
            std=(0.25,) * 3,
        )
    save_run(
        model,
        tmp_path / "r",
        model_spec="torchvision:resnet18",
        input_size=(3, 32, 32),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
    )
    with pytest.raises(UnsupportedModelError, match="register_model"):
        save_run(
            nn.Sequential(nn.Flatten(), nn.Linear(12, 2)),
            tmp_path / "s",
            input_size=(3, 2, 2),
            mean=(0,) * 3,
            std=(1,) * 3,
        )


def test_save_run_googlenet_drops_auxiliary_heads(tmp_path):
    import torchvision

    from isomax import convert
    from isomax.deploy import save_run

    model = convert(torchvision.models.googlenet(num_classes=3, aux_logits=True, init_weights=True), head="isomaxplus")
    save_run(
        model.eval(),
        tmp_path / "g",
        model_spec="torchvision:googlenet",
        input_size=(3, 64, 64),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
    )
    saved = torch.load(tmp_path / "g" / "checkpoint.pt", weights_only=True)
    assert saved["dropped_auxiliary"] and all("aux" in k for k in saved["dropped_auxiliary"])


def test_run_config_json_and_yaml_are_config_files(tmp_path):
    from isomax.config_file import read_config_file
    from isomax.presets import TrainConfig

    config = TrainConfig(model="timm:resnet18", optimizer="adamw", milestones=(3, 6), head_lr=0.01, train_limit=50)
    (tmp_path / "config.json").write_text(json.dumps(config.to_dict()))  # what a run folder holds
    assert TrainConfig().replace(**read_config_file(tmp_path / "config.json")) == config
    yaml = pytest.importorskip("yaml")
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"model": "timm:resnet18", "milestones": [3, 6], "lr": 0.5}))
    assert read_config_file(tmp_path / "run.yaml") == {"model": "timm:resnet18", "milestones": (3, 6), "lr": 0.5}
    (tmp_path / "run.ini").write_text("")
    with pytest.raises(ValueError, match=r"\.toml, \.json or \.yaml"):
        read_config_file(tmp_path / "run.ini")


@pytest.mark.parametrize(
    "name, make",
    [
        # 1x1 conv classifier: classifier.1.*
        ("squeezenet1_1", lambda tv: tv.squeezenet1_1(num_classes=1000)),
        # + aux1/aux2 weights
        ("googlenet", lambda tv: tv.googlenet(num_classes=1000, aux_logits=True, init_weights=True)),
    ],
)
def test_torchvision_pretrained_layouts(tmp_path, name, make):
    import torchvision

    from isomax.models.pretrained import load_pretrained

    source = make(torchvision.models)
    torch.save(source.state_dict(), tmp_path / "w.pth")
    model = create_model(f"torchvision:{name}", num_classes=3, head="isomaxplus", in_channels=3)
    report = load_pretrained(model, tmp_path / "w.pth")
    kept = {k: v for k, v in source.state_dict().items() if k not in report["dropped"]}
    assert kept and all(torch.equal(model.net.state_dict()[k], v) for k, v in kept.items())
    assert all(k.startswith(("classifier.1.", "fc.", "aux")) for k in report["dropped"])
