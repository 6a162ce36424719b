"""The media plane: an aiortc-based selective forwarding unit.

One central studio publishes over WHIP; thousands of commune rooms subscribe
over WHEP. The program picture is decoded once and encoded once per tier in
use; every subscriber of a tier receives the same packets through a fast
per-packet path (``sfu.packet_stream``), at the tier that fits its link
(``sfu.allocator``). See docs/sfu.md.

Layout (LiveKit's pkg/sfu, smaller):

- ``config``: ``SfuConfig`` (``VCS_SFU_*``; the ladder and its fit: ``vcs.tiers``)
- ``node``: ``SfuNode``: rooms, WHIP/WHEP resources, registration (``vcs.routing``), drain
- ``app``: ``create_sfu_app(node)``: the HTTP surface, mounted at ``/sfu``
- ``room``: who speaks (program, floor) and who subscribes
- ``tier_source``: where a room gets a tier's packets (``EncodedTiers`` on an origin)
- ``publisher`` / ``subscriber``: one peer connection each
- ``tier_encoder``: scale + VP8 encode once per tier
- ``packet_stream``: ``PacketStream``, the fan-out hot path
- ``downtrack``: one outgoing stream of one subscriber, its place across stream switches
- ``allocator``: ``LinkInfo`` and the bandwidth fit (pure logic)
- ``offer`` / ``peer``: offer checks, negotiation (ICE limits: ``rtc.ice``;
  aiortc internals only through ``rtc.aiortc_adapter``)
- ``errors``: the exception tree, ``metrics``: Prometheus text
- ``cli``, ``bench``, ``bench_peers``, ``baseline``: commands and benchmark
  (its peers use ``rtc.whip_client`` and ``rtc.synthetic_media``)
"""

from .allocator import LinkInfo, TierAllocation
from .app import create_sfu_app
from .config import SfuConfig
from .node import LinkLookup, SfuNode

__all__ = [
    "LinkInfo",
    "LinkLookup",
    "SfuConfig",
    "SfuNode",
    "TierAllocation",
    "create_sfu_app",
]
