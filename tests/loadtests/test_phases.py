"""Which media users each phase runs: agents of meetings on the deployment's own nodes, a room's subscribers elsewhere."""

from __future__ import annotations

from pathlib import Path

from loadtests.cli import PROFILES, _locust_command, _phases
from loadtests.provision import Provisioned


def _commands(tmp_path: Path, *, placed: bool) -> dict[str, list[str]]:
    creds = Provisioned(tmp_path, tmp_path / "secrets.csv", tmp_path / "admin.token", media_target=tmp_path / "media-target.json")
    profile = PROFILES["full"]
    phases = _phases(profile, 3321, restartable=True, media=True, processes=1, placed=placed)
    return {p.name: _locust_command(p, "http://127.0.0.1:8000", tmp_path, creds, profile, 3321, placed=placed) for p in phases}


def test_on_the_deployments_own_nodes_media_users_join_where_the_placement_puts_them(tmp_path):
    commands = _commands(tmp_path, placed=True)
    media, storm = commands["media"], commands["storm"]
    assert "--vcs-media-meeting" in media and "--vcs-media-target" not in media
    assert storm[storm.index("--vcs-media-users") + 1] == str(PROFILES["full"].storm_media_users)
    assert "--vcs-media-target" not in storm


def test_another_sfu_gets_a_rooms_subscribers(tmp_path):
    commands = _commands(tmp_path, placed=False)
    media, storm = commands["media"], commands["storm"]
    assert "--vcs-media-meeting" not in media and "--vcs-media-target" in media
    assert "--vcs-media-users" not in storm
