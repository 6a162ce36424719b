"""What a load run is told: one frozen `LoadSettings`, built once from Locust's parsed options.

Every scenario locustfile adds these options to Locust's command line
(`add_arguments`); users, shapes and the summary read them through
`settings_of(environment)` and never look at the environment variables.
The runner (`loadtests.cli`) writes the files named here before it starts
Locust (see `loadtests.provision`).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LoadSettings", "MediaTarget", "add_arguments", "settings_of"]


@dataclass(frozen=True)
class MediaTarget:
    """Where media users go without a meeting: a room's WHEP/WHIP URLs and tokens (`vcs token media`)."""

    whep_url: str
    subscribe_token: str
    whip_url: str = ""
    publish_token: str = ""
    room: str = ""
    subscribe_tokens: tuple[str, ...] = ()  # one per subscriber, each for a commune of its own (its link profile)

    @classmethod
    def from_file(cls, path: Path) -> MediaTarget:
        data = json.loads(path.read_text())
        fields = {k: data[k] for k in ("whep_url", "subscribe_token", "whip_url", "publish_token", "room") if k in data}
        return cls(**fields, subscribe_tokens=tuple(s["token"] for s in data.get("subscribers", ())))

    def token_for(self, number: int) -> str:
        """The subscribe token of the `number`th subscriber (the shared one when there are too few)."""
        if number < len(self.subscribe_tokens):
            return self.subscribe_tokens[number]
        return self.subscribe_token


@dataclass(frozen=True)
class LoadSettings:
    phase: str = "adhoc"
    secrets: Path | None = None  # CSV endpoint_id,secret (`vcs endpoint rotate-secret --all -o`)
    organizers: Path | None = None  # CSV username,password
    admin_token: str = ""  # API token of an admin: books the national meeting, reads online counts
    expired_agent_token: str = ""  # an agent token past its expiry, for the bad-input probes
    media_target: MediaTarget | None = None  # token mode for media users (no meeting needed)
    endpoints: int = 0  # endpoint users; 0 means every commune in the secrets file
    organizer_users: int = 50
    media_users: int = 0
    studio: bool = False  # a publishing host user (WHIP), identity "central" or the media target's publisher
    media_meeting: bool = False  # the media ramp's subscribers are communes of a meeting (placed on relays), not of a room
    media_lead: float = 20.0  # seconds between booking the media ramp's meeting and its start
    spawn_rate: float = 100.0
    workers: int = 0  # Locust worker processes sharing the identities; 0: as many as --processes starts
    hold: float = 240.0  # seconds the main stage of a shape lasts once everyone is spawned
    heartbeat: float = 10.0
    sync_every: float = 300.0
    probe_every: int = 100  # every Nth endpoint user also probes the edges (wrong secret, expired token, ...)
    bad_password_probes: int = 2  # wrong organizer passwords per process: the sign-in throttle counts them
    storm_lead: float = 180.0  # seconds between booking the national meeting and its start
    storm_hold: float = 30.0  # seconds after the start before the admin cancels it
    canary_every: float = 0.0  # seconds between canary meetings (MonitorUser); 0: none
    canary_lead: float = 70.0  # seconds between booking a canary and its start
    expect_restart: bool = False  # the orchestrator will be restarted: drops and refusals are expected
    reconnect_deadline: float = 120.0  # a dropped agent must be back within this many seconds
    media_steps: tuple[int, ...] = (5, 10, 20, 40)
    media_step_seconds: float = 30.0
    loss_threshold: float = 1.0  # percent; a media window above it is a failure
    summary: Path | None = None

    @classmethod
    def from_options(cls, options: argparse.Namespace) -> LoadSettings:
        def path(name: str) -> Path | None:
            value = getattr(options, name, None)
            return Path(value) if value else None

        def text_of(name: str) -> str:
            file = path(name)
            return file.read_text().strip() if file and file.exists() else ""

        media = path("vcs_media_target")
        return cls(
            phase=options.vcs_phase,
            secrets=path("vcs_secrets"),
            organizers=path("vcs_organizers"),
            admin_token=text_of("vcs_admin_token_file"),
            expired_agent_token=text_of("vcs_expired_agent_token_file"),
            media_target=MediaTarget.from_file(media) if media and media.exists() else None,
            endpoints=options.vcs_endpoints,
            organizer_users=options.vcs_organizer_users,
            media_users=options.vcs_media_users,
            studio=options.vcs_studio,
            media_meeting=options.vcs_media_meeting,
            media_lead=options.vcs_media_lead,
            spawn_rate=options.vcs_spawn_rate,
            workers=options.vcs_workers,
            hold=options.vcs_hold,
            heartbeat=options.vcs_heartbeat,
            sync_every=options.vcs_sync_every,
            probe_every=options.vcs_probe_every,
            bad_password_probes=options.vcs_bad_password_probes,
            storm_lead=options.vcs_storm_lead,
            storm_hold=options.vcs_storm_hold,
            canary_every=options.vcs_canary_every,
            canary_lead=options.vcs_canary_lead,
            expect_restart=options.vcs_expect_restart,
            reconnect_deadline=options.vcs_reconnect_deadline,
            media_steps=tuple(int(s) for s in str(options.vcs_media_steps).split(",") if s.strip()),
            media_step_seconds=options.vcs_media_step_seconds,
            loss_threshold=options.vcs_loss_threshold,
            summary=path("vcs_summary"),
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Locust's `init_command_line_parser` listener calls this; every option starts with --vcs-."""
    group = parser.add_argument_group("vcs", "what the vcs load users need (written by `python -m loadtests`)")
    add = group.add_argument
    add("--vcs-phase", default="adhoc", help="name of this run in the summary")
    add("--vcs-secrets", default="", help="CSV endpoint_id,secret of the endpoints to impersonate")
    add("--vcs-organizers", default="", help="CSV username,password of organizer accounts")
    add("--vcs-admin-token-file", default="", help="file holding an admin API token")
    add("--vcs-expired-agent-token-file", default="", help="file holding an expired agent token (probes)")
    add("--vcs-media-target", default="", help="JSON file: whep_url, subscribe_token[, whip_url, publish_token, room]")
    add("--vcs-endpoints", type=int, default=0, help="endpoint users (0: every commune in the secrets file)")
    add("--vcs-organizer-users", type=int, default=50)
    add("--vcs-media-users", type=int, default=0)
    add("--vcs-studio", action="store_true", help="add a publishing host (WHIP)")
    add("--vcs-media-meeting", action="store_true",
        help="media ramp: book a meeting for the subscribers' communes (several provinces); each joins where its schedule says")
    add("--vcs-media-lead", type=float, default=20.0, help="seconds between booking the media ramp's meeting and its start")
    add("--vcs-spawn-rate", type=float, default=100.0)
    add("--vcs-workers", type=int, default=0,
        help="with --master/--worker: how many workers share the identities (give it to every worker); --processes sets it")
    add("--vcs-hold", type=float, default=240.0, help="seconds the main stage lasts after spawning")
    add("--vcs-heartbeat", type=float, default=10.0)
    add("--vcs-sync-every", type=float, default=300.0)
    add("--vcs-probe-every", type=int, default=100, help="every Nth endpoint user probes the edges (0: none)")
    add("--vcs-bad-password-probes", type=int, default=2)
    add("--vcs-storm-lead", type=float, default=180.0)
    add("--vcs-storm-hold", type=float, default=30.0)
    add("--vcs-canary-every", type=float, default=0.0, help="seconds between canary meetings (0: none)")
    add("--vcs-canary-lead", type=float, default=70.0, help="seconds between booking a canary and its start")
    add("--vcs-expect-restart", action="store_true", help="the orchestrator restarts during the run")
    add("--vcs-reconnect-deadline", type=float, default=120.0)
    add("--vcs-media-steps", default="5,10,20,40", help="media subscribers per step of the media ramp")
    add("--vcs-media-step-seconds", type=float, default=30.0)
    add("--vcs-loss-threshold", type=float, default=1.0, help="percent of lost packets that fails a media window")
    add("--vcs-summary", default="", help="write this phase's summary JSON here")


def settings_of(environment: Any) -> LoadSettings:
    """The run's settings, parsed once per process and kept on the environment."""
    cached = getattr(environment, "vcs_settings", None)
    if cached is None:
        options = environment.parsed_options
        cached = LoadSettings.from_options(options) if options is not None else LoadSettings()
        environment.vcs_settings = cached
    return cached
