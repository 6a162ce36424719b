"""A conference room: its publishers, subscribers, program and ladder.

The room keeps who speaks and who subscribes. The *program* is what every
commune receives: the host's picture and sound, or those of the commune
holding the floor. Video: a subscriber's downtrack attaches to the source of
its tier (``sfu.tier_source``: on an origin, the program publisher's decoded
frames go to one ``TierEncoder`` per tier in use), or to that tier's repeated
variant when its allocation protects it (``sfu.video_repeat``: a long lossy
link gets each packet twice); audio: the program's Opus
packets are forwarded into one program ``PacketStream`` (sequence numbers and
timestamps made continuous across floor changes). Nobody receives their own
audio back. On a relay the program (video and audio) comes from the origin:
the floor there only detaches the speaker's own subscriber from the audio,
and nothing is decoded. A commune's own camera (a low tier it encodes itself) is
forwarded only to the host, who subscribes with ``source=<identity>``.
"""

from __future__ import annotations

import logging
import random
import time
from typing import Any

from aiortc.rtp import RtpPacket

from vcs.tiers import TierSpec

from .config import SfuConfig
from .errors import Conflict, Forbidden, NotFound
from .packet_stream import PacketStream, make_packet
from .publisher import Publisher
from .red import RedEncoder
from .subscriber import Subscriber
from .test_room import PublishProbe, is_test_room
from .tier_source import EncodedTiers, TierSource, TierSources
from .transport_cc import HEADER_BYTES
from .uplink import Uplink
from .video_repeat import RepeatedTier

__all__ = ["Room"]

logger = logging.getLogger(__name__)

AUDIO_CLOCK = 48000


class Room:
    def __init__(self, name: str, config: SfuConfig, *, clock=time.monotonic, tiers: TierSources | None = None) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self.created = clock()
        self.last_active = self.created
        self.host: str | None = None
        self.floor: str | None = None
        self.publishers: dict[str, Publisher] = {}  # by identity
        self.subscribers: dict[str, Subscriber] = {}  # by resource id
        self.tiers: TierSources = tiers or EncodedTiers(name, config, clock=clock)
        self.audio = PacketStream("audio", f"{name}/audio", clock_rate=AUDIO_CLOCK, history=64, fanout=config.fanout)
        self.audio.taps.append(self._protect_audio)
        self.uplinks: dict[str, Uplink] = {}  # on a relay: the communes forwarded to the origin, by identity
        self._red: dict[int, tuple[RedEncoder, PacketStream]] = {}  # Opus payload type -> its RED variant of the audio
        # for long links without RED: each packet sent again beside the next (same number: the receiver keeps one)
        self._repeat: PacketStream | None = None
        self._previous_audio: tuple[bytes, int, int, bool] | None = None
        self._audio_source: Publisher | None = None
        self._repeated: dict[str, RepeatedTier] = {}  # tier name -> its video sent twice, for protected subscribers
        self._audio_seq = random.randrange(0, 1 << 15)
        self._audio_ts_off = 0
        self.closed = False
        self.test = is_test_room(name)  # a test room: every publisher is looked at, none is the program
        self.probes: dict[str, PublishProbe] = {}  # test rooms: by publisher resource id

    @property
    def encoders(self) -> dict[str, TierSource]:
        """The tier sources in use, by tier name."""
        return self.tiers.sources

    # who speaks --------------------------------------------------------------

    @property
    def program_identity(self) -> str | None:
        return self.floor or self.host

    def set_host(self, identity: str) -> None:
        self.host = identity
        self._program_changed()

    def give_floor(self, identity: str) -> None:
        """`identity` speaks. On a relay the speaker may publish on another node (its uplink
        reaches the origin from there): then nobody here is the speaker, which is no error."""
        if identity not in self.publishers and self.tiers.makes_program:
            raise Conflict(f"{identity} is not publishing in room {self.name}")
        self.floor = identity
        self._program_changed()

    def take_floor(self) -> None:
        self.floor = None
        self._program_changed()

    def _program_changed(self) -> None:
        self.tiers.program_changed()
        speaker = self.program_identity
        if self.tiers.makes_program:  # a relay never decodes: its origin makes the program
            for publisher in self.publishers.values():
                publisher.set_decoding(publisher.identity == speaker or self.test)
        # the speaker must not hear itself: on a relay too, where the program audio comes from the origin
        for sub in self.subscribers.values():
            if sub.source is None and sub.ready and sub.audio is not None:
                if sub.identity == speaker:
                    if sub.audio.stream is not None:
                        sub.audio.stream.detach(sub.audio)
                else:
                    self._audio_for(sub).attach(sub.audio, at_keyframe=False)

    # publishers ----------------------------------------------------------------

    def new_publisher(self, resource_id: str, identity: str, pc: Any) -> Publisher:
        return Publisher(resource_id, identity, pc, on_frame=self._on_frame, on_audio=self._on_audio, fanout=self.config.fanout)

    def add_publisher(self, publisher: Publisher, *, host: bool = False) -> Publisher | None:
        """Add ``publisher``; return the one it replaces (same identity).

        ``host``: its token names it the room's host; it becomes the program
        unless the orchestrator already named a host (``set_host``).
        """
        previous = self.publishers.get(publisher.identity)
        self.publishers[publisher.identity] = publisher
        if self.test:
            self.probes[publisher.resource_id] = PublishProbe()
            host = False  # the test pattern is the program of a test room
        if self.host is None and host:
            self.host = publisher.identity
        self.last_active = self._clock()
        self._program_changed()
        return previous

    def remove_publisher(self, publisher: Publisher) -> None:
        self.probes.pop(publisher.resource_id, None)
        if self.publishers.get(publisher.identity) is publisher:
            del self.publishers[publisher.identity]
            if self.floor == publisher.identity:
                self.floor = None
                self._program_changed()
        if self._audio_source is publisher:
            self._audio_source = None
        self.last_active = self._clock()

    def _on_frame(self, publisher: Publisher, frame: Any) -> None:
        if self.test:
            if (probe := self.probes.get(publisher.resource_id)) is not None:
                probe.on_frame(frame)
            return
        if publisher.identity == self.program_identity:
            self.tiers.program_frame(frame)

    def _on_audio(self, publisher: Publisher, packet: RtpPacket) -> None:
        if self.test:
            if (probe := self.probes.get(publisher.resource_id)) is not None:
                probe.on_audio(packet.payload)
            return
        if publisher.identity != self.program_identity or not self.tiers.makes_program:
            return  # on a relay the program audio comes from the origin (the speaker's uplink goes there)
        stream = self.audio
        if self._audio_source is not publisher:
            if stream.last_time is None:
                next_ts = random.randrange(0, 1 << 31)
            else:
                elapsed = max(0.02, self._clock() - stream.last_time)
                next_ts = stream.last_ts + int(elapsed * AUDIO_CLOCK)
            self._audio_ts_off = (next_ts - packet.timestamp) & 0xFFFFFFFF
            self._audio_source = publisher
        seq = self._audio_seq = (self._audio_seq + 1) & 0xFFFF
        ts = (packet.timestamp + self._audio_ts_off) & 0xFFFFFFFF
        marker = bool(packet.marker)
        stream.push(make_packet(packet.payload, seq, ts, marker), seq, ts, marker, False)

    def _protect_audio(self, plain: bytes, seq: int, ts: int, marker: bool, keyframe: bool) -> None:
        """Every program audio packet, made here or pulled from the origin, into its RED and repeated variants."""
        if self._red:
            payload = plain[HEADER_BYTES:]
            for red, red_stream in self._red.values():
                red_stream.push(red.packet(payload, seq, ts, marker), seq, ts, marker, False)
        if self._repeat is not None:
            if self._previous_audio is not None:
                self._repeat.push(*self._previous_audio, False)
            self._repeat.push(plain, seq, ts, marker, False)
        self._previous_audio = (plain, seq, ts, marker)

    @property
    def audio_streams(self) -> list[PacketStream]:
        """The program audio, plain, its RED variants and the repeated one."""
        repeat = [] if self._repeat is None else [self._repeat]
        return [self.audio] + [stream for _, stream in self._red.values()] + repeat

    def _audio_for(self, sub: Subscriber) -> PacketStream:
        """The program audio as ``sub`` gets it: plain; when its RTT is long (a retransmission
        would come too late), RED if it offered RED, else each packet twice."""
        dt = sub.audio
        if dt is None or sub.rtt_ms is None:
            return self.audio
        protected = dt.stream is not None and (dt.stream.red or dt.stream.repeat)
        if sub.rtt_ms < self.config.red_rtt_ms * (0.8 if protected else 1.0):  # hysteresis on the way back
            return self.audio
        if dt.red_pt is None:
            if self._repeat is None:
                self._repeat = PacketStream(
                    "audio", f"{self.name}/audio-repeat", clock_rate=AUDIO_CLOCK, history=64, repeat=True, fanout=self.config.fanout
                )
                self._repeat.last_seq, self._repeat.last_ts = self.audio.last_seq, self.audio.last_ts
            return self._repeat
        entry = self._red.get(dt.pt)
        if entry is None:
            red_stream = PacketStream(
                "audio", f"{self.name}/audio-red-{dt.pt}", clock_rate=AUDIO_CLOCK, history=64, red=True, fanout=self.config.fanout
            )
            red_stream.last_seq, red_stream.last_ts = self.audio.last_seq, self.audio.last_ts  # one numbering with the plain stream
            entry = self._red[dt.pt] = (RedEncoder(dt.pt), red_stream)
        return entry[1]

    # subscribers ---------------------------------------------------------------

    def check_source(self, identity: str, source: str | None) -> None:
        """Only the host may receive a single commune's own camera."""
        if source is None:
            return
        if self.host is None or identity != self.host:
            raise Forbidden("only the host may subscribe to a commune's camera")
        if source not in self.publishers:
            raise NotFound(f"{source} is not publishing in room {self.name}")

    def watched(self, identity: str) -> bool:
        """Whether anyone here needs ``identity``'s camera: it holds the floor, or the host views it."""
        return self.floor == identity or any(sub.source == identity for sub in self.subscribers.values())

    def add_subscriber(self, sub: Subscriber) -> None:
        self.subscribers[sub.resource_id] = sub
        self.last_active = self._clock()

    def activate(self, sub: Subscriber) -> None:
        """The subscriber's transport is up: start feeding it."""
        if sub.closed or sub.resource_id not in self.subscribers:
            return
        if sub.source is not None:
            publisher = self.publishers.get(sub.source)
            if publisher is None:
                return
            if sub.audio is not None:
                publisher.audio.attach(sub.audio, at_keyframe=False)
            if sub.video is not None:
                publisher.video.attach(sub.video, at_keyframe=True)
            sub.tier_name = "camera"
            return
        if sub.audio is not None and sub.identity != self.program_identity:
            self._audio_for(sub).attach(sub.audio, at_keyframe=False)
        if sub.video is None:
            sub.tier_name = "audio"  # what a subscriber without video receives, whatever its allocation
        self.set_tier(sub, sub.allocation.tier)

    def set_tier(self, sub: Subscriber, tier: TierSpec) -> None:
        if sub.source is not None or sub.video is None or not sub.ready:
            return
        if tier.audio_only:
            for stream in (sub.video.stream, sub.video.pending):
                if stream is not None:
                    stream.detach(sub.video)
        else:
            self._video_for(sub, tier).attach(sub.video, at_keyframe=True)
        sub.tier_name = tier.name
        self._retire_idle()

    def _video_for(self, sub: Subscriber, tier: TierSpec) -> PacketStream:
        """The stream of ``tier`` as ``sub`` gets it: plain, or sent twice when its allocation protects it."""
        source = self.tiers.source(tier)
        if not sub.allocation.protected or sub.pinned:
            return source.stream
        repeated = self._repeated.get(tier.name)
        if repeated is None or repeated.tier_stream is not source.stream:
            if repeated is not None:
                repeated.close()
            repeated = self._repeated[tier.name] = RepeatedTier(source.stream, source.request_keyframe)
        return repeated.stream

    def _retire_idle(self) -> None:
        """Drop repeated tiers nobody receives, then the tiers nobody receives."""
        for name, repeated in list(self._repeated.items()):
            if repeated.idle:
                repeated.close()
                del self._repeated[name]
        self.tiers.retire_idle()

    def remove_subscriber(self, sub: Subscriber) -> None:
        self.subscribers.pop(sub.resource_id, None)
        for dt in sub.downtracks:
            for stream in (dt.stream, dt.pending):
                if stream is not None:
                    stream.detach(dt)
        self._retire_idle()
        self.last_active = self._clock()

    def take_retired(self) -> list[TierSource]:
        return self.tiers.take_retired()

    # periodic and reporting --------------------------------------------------------

    def tick(self, now: float) -> None:
        self._retire_idle()
        speaker = self.program_identity
        for sub in list(self.subscribers.values()):
            try:
                sub.tick(now)
                audio = sub.audio
                if sub.source is None and sub.ready and audio is not None and audio.stream is not None and sub.identity != speaker:
                    stream = self._audio_for(sub)  # RED on, or off, as the RTT moved
                    if audio.stream is not stream:
                        stream.attach(audio, at_keyframe=False)
            except Exception:
                logger.exception("room %s: subscriber %s tick failed", self.name, sub.resource_id)

    @property
    def empty(self) -> bool:
        return not self.publishers and not self.subscribers

    def stats(self) -> dict:
        return {
            "room": self.name,
            "host": self.host,
            "floor": self.floor,
            "program": self.program_identity,
            "publishers": [
                {
                    "resource": p.resource_id,
                    "identity": p.identity,
                    "state": p.pc.connectionState,
                    "frames": p.frames,
                    "video_packets": p.video_packets,
                    "audio_packets": p.audio_packets,
                    **({"relay": p.relay} if p.relay else {}),
                }
                for p in self.publishers.values()
            ],
            "tiers": self.tiers.stats(),
            "subscribers": [s.stats() for s in self.subscribers.values()],
            **self.tiers.room_stats(),
            **({"uplinks": [u.stats() for u in self.uplinks.values()]} if self.uplinks else {}),
        }
