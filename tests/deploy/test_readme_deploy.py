"""The README's deploy numbers are the output of scripts/deploy_numbers.py (no hand-copied numbers)."""

import importlib.util
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_quotes_the_tables_the_script_renders_from_its_json():
    spec = importlib.util.spec_from_file_location("deploy_numbers", ROOT / "scripts" / "deploy_numbers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    record = json.loads((ROOT / "docs" / "results" / "deploy" / "fashion-mnist-quick.json").read_text())
    tables = (ROOT / "docs" / "results" / "deploy" / "tables.md").read_text()
    assert module.tables(record["runs"]) == tables
    assert tables in (ROOT / "README.md").read_text()
    assert "scripts/deploy_numbers.py" in record["command"]
