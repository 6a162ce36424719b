"""Settings read from the environment: the readiness test's pacing."""

import pytest

from vcs.config import ConfigError, Settings


def test_rooms_testing_at_once_default_to_10_and_must_be_at_least_1():
    assert Settings.from_environ({}).readiness_concurrency == 10
    assert Settings.from_environ({"VCS_READINESS_CONCURRENCY": "4"}).readiness_concurrency == 4
    for bad in ("0", "-2", "ten"):
        with pytest.raises(ConfigError, match="VCS_READINESS_CONCURRENCY"):
            Settings.from_environ({"VCS_READINESS_CONCURRENCY": bad})
