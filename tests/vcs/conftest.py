"""Fixtures of the endpoint side's tests: the small WHIP/WHEP peer standing in for the SFU."""

from __future__ import annotations

from collections.abc import Iterator

import aioice.ice
import pytest

from tests.conftest import TEST_SECRET, LiveServer, free_port
from tests.vcs.fake_sfu import FakeSfu
from vcs.media_client import restrict_ice_addresses


@pytest.fixture
def loopback_ice() -> Iterator[None]:
    """aioice never gathers on loopback by itself; this machine's peers talk over 127.0.0.1 only."""
    previous = aioice.ice.get_host_addresses  # another package's tests may have restricted it too: put it back as found
    restrict_ice_addresses(["127.0.0.1"])
    yield
    aioice.ice.get_host_addresses = previous


@pytest.fixture
def sfu(loopback_ice) -> Iterator[tuple[FakeSfu, str]]:
    """A FakeSfu served on a loopback port (in a thread): (the fake, its base URL)."""
    fake = FakeSfu(TEST_SECRET)
    server = LiveServer(fake.app, free_port())
    server.start()
    yield fake, server.url
    server.stop()
