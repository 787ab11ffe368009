"""Doctests of the package (``>>>`` examples in docstrings) run with the test suite
(``--doctest-modules`` over ``src/isomax``; see ``[tool.pytest.ini_options]``): the names the examples
use without importing them."""

import pytest

collect_ignore = ["src/isomax/__main__.py"]  # importing it runs the CLI


@pytest.fixture(autouse=True)
def _doctest_names(doctest_namespace):
    import torch
    import torchvision

    import isomax
    from isomax.models import create_model

    doctest_namespace.update(
        torch=torch,
        torchvision=torchvision,
        isomax=isomax,
        create_model=create_model,
        **{name: getattr(isomax, name) for name in isomax.__all__},
    )
