"""``isomax cache``: show or clear the decoded-image cache."""

from __future__ import annotations

import argparse

HELP = "show or clear the decoded-image cache"


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "cache",
        help=HELP,
        description="The in-memory path keeps decoded image folders and archives in $ISOMAX_CACHE/decoded "
        "(default ~/.cache/isomax/decoded), at most $ISOMAX_CACHE_MAX_GB GiB (default 4; 0: off), "
        "least recently used entries evicted first. The streaming path writes no cache.",
    )
    p.add_argument("action", choices=("info", "clear"))
    return p


def run(args: argparse.Namespace, command_line: str) -> int:
    from ..data.cache import cache_clear, cache_entries, cache_max_bytes
    from ..data.paths import cache_dir

    where = cache_dir() / "decoded"
    if args.action == "clear":
        n, size = cache_clear()
        print(f"removed {n} entries ({size / 2**30:.2f} GiB) from {where}")
        return 0
    entries = cache_entries()
    for e in sorted(entries, key=lambda e: -e["mtime"]):
        print(f"{e['bytes'] / 2**20:10.1f} MiB  {e['key']}  {e['name']}")
    print(
        f"{len(entries)} entries, {sum(e['bytes'] for e in entries) / 2**30:.2f} GiB of "
        f"{cache_max_bytes() / 2**30:.2f} GiB in {where}"
    )
    return 0
