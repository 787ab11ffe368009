"""Fixtures shared by the pipeline tests (tiny generated data; never the network)."""

import pytest

from fixture_data import make_fashion_mnist


@pytest.fixture(scope="module")
def fm_fixture_dir(tmp_path_factory):
    """A data root with tiny Fashion-MNIST and MNIST-test idx files."""
    return make_fashion_mnist(tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def no_checksums():
    """Fixture files are not the published ones: skip checksum verification (for the module)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ISOMAX_VERIFY", "0")
        yield
