"""Rewrite a sweep's ``sweep.md`` from its ``sweep.json`` (no training): what ``isomax sweep`` writes today.

python scripts/sweep_markdown.py docs/results/fashion-mnist-sweep
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from isomax._io import atomic_write_text
from isomax.sweep import _markdown


def main(folder: str) -> None:
    folder = Path(folder)
    atomic_write_text(folder / "sweep.md", _markdown(json.loads((folder / "sweep.json").read_text())))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
