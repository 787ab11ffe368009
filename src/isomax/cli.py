"""Command-line interface: ``isomax train | evaluate | bench | report | sweep`` (also ``python -m isomax``)."""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from .presets import get_preset, presets_help

# Flags that override fields of a preset's TrainConfig: flag -> (field, type, help)
_CONFIG_FLAGS = {
    "--dataset": ("dataset", str, "in-distribution dataset (fashion-mnist, cifar10, cifar100, svhn)"),
    "--model": ("model", str, "model name (see isomax.models.list_models())"),
    "--epochs": ("epochs", int, "number of epochs"),
    "--batch-size": ("batch_size", int, "global batch size"),
    "--lr": ("lr", float, "peak learning rate"),
    "--weight-decay": ("weight_decay", float, "SGD weight decay"),
    "--head-weight-decay": ("head_weight_decay", float, "weight decay of the head's prototypes and distance scale "
                                                         "(default: --weight-decay)"),
    "--entropic-scale": ("entropic_scale", float, "E_s of the IsoMax losses (default 10, as in the papers)"),
    "--train-limit": ("train_limit", int, "train on only this many images (quick checks)"),
    "--device": ("device", str, "auto, cpu, cuda or cuda:N (default auto)"),
    "--threads": ("threads", int, "CPU threads for torch"),
    "--data-dir": ("data_dir", str, "where the datasets are (also $ISOMAX_DATA; see isomax.data)"),
}


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration overrides (default: the preset's value)")
    for flag, (field, typ, help_) in _CONFIG_FLAGS.items():
        g.add_argument(flag, dest=f"cfg_{field}", type=typ, default=None, metavar=field.upper(), help=help_)
    g.add_argument("--no-amp", dest="cfg_amp", action="store_const", const=False, default=None,
                   help="disable bfloat16 autocast on CUDA")


def _add_detector_flags(p: argparse.ArgumentParser, methods: tuple[str, ...]) -> None:
    g = p.add_argument_group("comparison methods (Tables 4-5 of the 2021 paper)")
    g.add_argument("--methods", nargs="+", default=[], choices=methods, metavar="METHOD",
                   help="also evaluate: " + ", ".join(methods) + " (ODIN and Mahalanobis choose their hyperparameters "
                        "on the validation split vs FGSM samples; oe trains SoftMax with Outlier Exposure)")
    g.add_argument("--detector-samples", type=int, default=500, metavar="N",
                   help="validation (and as many FGSM) samples for ODIN / Mahalanobis hyperparameters (default 500)")
    g.add_argument("--detector-train", type=int, default=20000, metavar="N",
                   help="training images for the Mahalanobis class statistics (default 20000; 0 = all)")


def _detector_options(args: argparse.Namespace) -> dict:
    if args.detector_samples < 2:
        raise ValueError(f"Expected --detector-samples to be >= 2, but got {args.detector_samples}")
    return dict(max_samples=args.detector_samples, max_train=args.detector_train or None)


def _overrides(args: argparse.Namespace) -> dict:
    return {k[4:]: v for k, v in vars(args).items() if k.startswith("cfg_") and v is not None}


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="isomax",
        description="Seamless out-of-distribution detection with the IsoMax and IsoMax+ losses.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run `isomax COMMAND --help` for the options of a command.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    epilog = "presets:\n" + presets_help()

    p = sub.add_parser("train", help="train one model", description="Train one model; resumes if --out holds a run.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--preset", default="fashion-mnist-quick", help="named configuration (default: fashion-mnist-quick)")
    p.add_argument("--loss", default="isomaxplus", help="softmax, isomax or isomaxplus (default: isomaxplus)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, type=Path, help="run directory to write")
    p.add_argument("--no-resume", action="store_true", help="start over even if --out holds a checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    _add_config_flags(p)

    p = sub.add_parser("evaluate", help="evaluate a trained run against out-distributions",
                       description="Evaluate RUN_DIR (made by `isomax train` or `isomax bench`): test accuracy and, "
                                   "for every out-distribution, every applicable score and metric.")
    p.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    p.add_argument("--ood", nargs="+", metavar="NAME_OR_PATH",
                   help="out-distributions: names (mnist, isun, tinyimagenet-resize, lsun-resize, svhn, cifar10, "
                        "gaussian, uniform, ...) or paths to image folders (default: the run's preset list)")
    p.add_argument("--out", required=True, type=Path, help="directory for results.json, results.md and outputs/")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, ("odin", "mahalanobis"))

    p = sub.add_parser("bench", help="train and evaluate losses x seeds, write tables",
                       description="Train every loss x seed with one preset, evaluate them, and write results.json, "
                                   "results.md (the papers' table layouts) and one run directory per model.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--preset", required=True, help="named configuration (listed below)")
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0..N-1), default 3")
    p.add_argument("--losses", nargs="+", default=["softmax", "isomax", "isomaxplus"])
    p.add_argument("--ood", nargs="+", metavar="NAME_OR_PATH", help="out-distributions (default: the preset's)")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--no-progress", action="store_true")
    _add_detector_flags(p, ("odin", "mahalanobis", "oe"))
    p.add_argument("--methods-on", nargs="+", default=["softmax"], metavar="LOSS",
                   help="losses whose runs get ODIN / Mahalanobis (default: softmax, as in the paper)")
    p.add_argument("--outlier-data", default=None, metavar="NAME_OR_PATH",
                   help="outlier images for --methods oe (e.g. tinyimagenet-resize; keep them out of --ood)")
    _add_config_flags(p)

    p = sub.add_parser("report", help="write a Markdown report with figures and LaTeX/CSV tables",
                       description="Write OUT/report.md (figures embedded by relative path), OUT/figures/*.png and "
                                   "OUT/tables/*.{md,tex,csv} from bench or evaluate output directories (results.json, "
                                   "outputs/*.npz), run directories or .npz logit files. Tables use every seed; "
                                   "histograms and ROC curves the first seed. Missing inputs are skipped with a note.")
    p.add_argument("inputs", nargs="+", type=Path, metavar="BENCH_OR_RUN_DIR")
    p.add_argument("--out", required=True, type=Path, help="report directory to write")
    p.add_argument("--seed", type=int, default=None, help="seed of the logits used for figures (default: the first)")
    p.add_argument("--title", default="isomax report")
    p.add_argument("--no-progress", action="store_true", help="no progress messages")

    p = sub.add_parser("sweep", help="choose the entropic scale E_s on a validation out-distribution",
                       description="Entropic-scale sweep (Fig. 2 of the 2019 paper): train IsoMax (and IsoMax+ with "
                                   "--losses) for each scale and measure validation accuracy and OOD detection on the "
                                   "validation split against --val-ood. Writes sweep.json, sweep.md, sweep.png and "
                                   "runs/<loss>-es<scale>-seed<s>/ (reruns resume). Keep the validation "
                                   "out-distribution out of every test out-distribution list.",
                       formatter_class=argparse.RawDescriptionHelpFormatter, epilog=epilog)
    p.add_argument("--preset", default="fashion-mnist-quick", help="named configuration (default: fashion-mnist-quick)")
    p.add_argument("--scales", nargs="+", type=float, default=[1.0, 3.0, 10.0, 30.0, 100.0],
                   help="entropic scales (default: 1 3 10 30 100)")
    p.add_argument("--losses", nargs="+", default=["isomax"], help="isomax and/or isomaxplus (default: isomax)")
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..N-1), default 1")
    p.add_argument("--val-ood", required=True, metavar="NAME_OR_PATH",
                   help="validation out-distribution used to choose E_s (never reuse it as a test out-distribution)")
    p.add_argument("--test-ood", nargs="+", default=[], metavar="NAME_OR_PATH",
                   help="optional test out-distributions, evaluated on the test split for information only")
    p.add_argument("--out", required=True, type=Path)
    p.add_argument("--no-progress", action="store_true")
    _add_config_flags(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _build_parser().parse_args(argv)
    command_line = "isomax " + " ".join(shlex.quote(a) for a in argv)
    try:
        return _run(args, command_line)
    except (ValueError, FileNotFoundError) as err:
        print(f"isomax {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted; rerun the same command to resume from the last checkpoint", file=sys.stderr)
        return 130


def _run(args: argparse.Namespace, command_line: str) -> int:
    from . import distributed

    progress = not args.no_progress
    if args.command == "train":
        from .training import train

        distributed.init_from_env()  # under `torchrun ... -m isomax train`: one process per GPU (or CPU slot)
        config = get_preset(args.preset).config(loss=args.loss, seed=args.seed, **_overrides(args))
        result = train(config, args.out, resume=not args.no_resume, progress=progress)
        if distributed.is_main_process() and result.history:
            last = result.history[-1]
            print(f"done: {args.out} (val accuracy {100 * last['val_accuracy']:.2f}%)")
        distributed.shutdown()  # not on errors: torchrun ends the other processes
        return 0
    if args.command == "evaluate":
        from . import tables
        from .bench import write_markdown
        from .evaluation import evaluate_run, save_results

        records = []
        for i, run_dir in enumerate(args.run_dirs):
            name = run_dir.resolve().name
            records += evaluate_run(run_dir, args.ood, data_dir=args.data_dir, device=args.device, progress=progress,
                                    arrays_path=args.out / "outputs" / f"{name}.npz", methods=args.methods,
                                    detector_options=_detector_options(args))
        path = save_results(records, args.out)
        write_markdown(records, args.out / "results.md", "isomax evaluate", command_line)
        print(tables.all_scores_table(records))
        print(f"wrote {path}")
        return 0
    if args.command == "bench":
        from . import tables
        from .bench import run_bench

        if args.seeds < 1:
            raise ValueError(f"Expected --seeds to be >= 1, but got {args.seeds}")
        records = run_bench(args.preset, range(args.seeds), args.out, losses=args.losses, ood=args.ood,
                            overrides=_overrides(args), progress=progress, command=command_line, methods=args.methods,
                            methods_on=args.methods_on, outlier_data=args.outlier_data,
                            detector_options=_detector_options(args))
        print(tables.seamless_table(records))
        print(f"wrote {args.out / 'results.json'} and {args.out / 'results.md'}")
        return 0
    if args.command == "report":
        from .report import write_report

        path = write_report(args.inputs, args.out, seed=args.seed, title=args.title, command=command_line,
                            log=print if progress else (lambda _: None))
        print(f"wrote {path}")
        return 0
    if args.command == "sweep":
        from .sweep import run_sweep

        if args.seeds < 1:
            raise ValueError(f"Expected --seeds to be >= 1, but got {args.seeds}")
        summary = run_sweep(args.preset, args.val_ood, args.out, scales=args.scales, losses=args.losses,
                            seeds=range(args.seeds), test_ood=args.test_ood, overrides=_overrides(args),
                            progress=progress, command=command_line)
        print(f"chosen: {summary['chosen']} (on {args.val_ood}); wrote {args.out / 'sweep.md'}")
        return 0
    raise AssertionError(args.command)


if __name__ == "__main__":
    sys.exit(main())
