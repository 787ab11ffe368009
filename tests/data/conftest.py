"""Fixtures for the isomax.data tests: tiny files in the original formats, made in tmp_path.

No test here touches the network, ~/.cache or the real data under /usr/share or /work/shared
(except the one skip-if-missing smoke test, which passes the real folders explicitly).
"""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path, monkeypatch):
    """Empty search path and a private cache for every test."""
    import isomax.data.paths as paths

    monkeypatch.delenv("ISOMAX_DATA", raising=False)
    monkeypatch.setenv("ISOMAX_CACHE", str(tmp_path / "_cache"))
    monkeypatch.setattr(paths, "SYSTEM_DATA_DIRS", ())
    yield
