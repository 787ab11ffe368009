"""The README's "Comparison methods" examples run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def _section_python_blocks(title: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    start = text.index(f"## {title}\n")
    end = text.find("\n## ", start + 1)
    section = text[start : end if end != -1 else None]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)


def test_comparison_methods_examples_run():
    blocks = _section_python_blocks("Comparison methods")
    assert blocks, "the section should show how to use the detectors"
    for code in blocks:
        namespace: dict = {}
        exec(compile(code, "README.md (Comparison methods)", "exec"), namespace)
        assert namespace["scores"].shape == (8,)
