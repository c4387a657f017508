"""Shared fixtures: the hand-built toy network and the bundled example model, built once."""
import pytest

import nmjax
from toy_network import toy_network


@pytest.fixture(scope="session")
def net():
    """The toy network with planted motifs (a module may override `net` with another model)."""
    return toy_network()


@pytest.fixture(scope="session")
def example_net():
    """The bundled example model."""
    return nmjax.load()
