"""``isomax shard``: write an image folder as WebDataset tar shards."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import check_out

HELP = "write an image folder as WebDataset tar shards"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "shard",
        help=HELP,
        description="Write FOLDER (train/<class>/, optional val/ and test/) as OUT/{train,val,test}-NNNNNN.tar "
        "+ OUT/dataset.json, for `isomax train --dataset OUT` (or 'OUT/train-{000000..000009}.tar'). "
        "Reading them needs the optional extra isomax[shards] (webdataset).",
    )
    p.add_argument("folder", type=Path, metavar="FOLDER")
    p.add_argument("out", type=Path, metavar="OUT")
    p.add_argument("--shard-size", type=int, default=1000, help="images per shard (default 1000)")
    p.add_argument(
        "--val-fraction",
        type=float,
        default=0.1,
        help="without FOLDER/val/: stratified fraction of train/ written as the val shards (default 0.1)",
    )
    p.add_argument("--strict", action="store_true", help="fail on an empty image file instead of skipping it")
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from ..data.shards import write_shards

    if not args.folder.is_dir():
        raise FileNotFoundError(f"FOLDER {args.folder} is not an existing directory")
    check_out(args.out, "OUT")
    out = write_shards(
        args.folder, args.out, shard_size=args.shard_size, val_fraction=args.val_fraction, strict=args.strict
    )
    print(f"wrote {out}; train with: isomax train --dataset {out} ...")
    return 0
