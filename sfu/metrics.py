"""Prometheus text exposition of a node's state (``GET /sfu/metrics``).

Rooms, tiers and subscribers name meetings and endpoints: they are rendered
only for a caller the node has authorized for control (``rooms=True``); anyone
else sees the node's totals.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rtc.consent import consent_counters

from . import fanout

if TYPE_CHECKING:
    from .node import SfuNode

__all__ = ["render_metrics"]


def _escape(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _labels(**labels: object) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in labels.items()) + "}"


class _Writer:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def sample(self, name: str, metric_type: str, help_text: str, value: float, **labels: object) -> None:
        if name not in self._declared:
            self._declared.add(name)
            self.lines.append(f"# HELP {name} {help_text}")
            self.lines.append(f"# TYPE {name} {metric_type}")
        self.lines.append(f"{name}{_labels(**labels)} {value}")


def render_metrics(node: SfuNode, *, rooms: bool) -> str:
    w = _Writer()
    node_id = node.config.node_id
    w.sample("vcs_sfu_up", "gauge", "1 while the node runs, 0 once draining.", 0 if node.draining else 1, node=node_id)
    w.sample("vcs_sfu_capacity", "gauge", "Subscribers this node accepts.", node.config.capacity, node=node_id)
    w.sample("vcs_sfu_rooms", "gauge", "Rooms on this node.", len(node.rooms), node=node_id)
    w.sample("vcs_sfu_subscribers", "gauge", "Subscribers on this node.", node.load, node=node_id)
    w.sample("vcs_sfu_process_cpu_seconds_total", "counter", "CPU time of the node's process.", round(time.process_time(), 3))
    w.sample("vcs_sfu_handshakes", "gauge", "Peers in their ICE/DTLS handshake.", node.handshakes, node=node_id)
    for outcome, value in node.admission.items():
        w.sample("vcs_sfu_admission_total", "counter", "Joins that waited for a handshake slot or were deferred (503).", value, outcome=outcome)
    joining = node.joining
    w.sample("vcs_sfu_admission_queue", "gauge", "Joins waiting for a handshake slot.", joining.queued, node=node_id)
    w.sample("vcs_sfu_admission_allowed", "gauge", "Handshakes admitted at once now (fewer while the loop lags).", joining.allowed, node=node_id)
    w.sample("vcs_sfu_handshake_seconds", "gauge", "Running mean of an admitted join's ICE/DTLS handshake.", round(joining.handshake_s, 3), node=node_id)
    w.sample("vcs_sfu_joins_total", "counter", "Admitted joins that completed their handshake.", node.joins_connected, node=node_id)
    consent = consent_counters()
    w.sample("vcs_sfu_consent_checks_total", "counter", "ICE consent checks sent.", consent.checks)
    w.sample("vcs_sfu_consent_unanswered_total", "counter", "ICE consent checks with no answer in time.", consent.unanswered)
    w.sample("vcs_sfu_consent_expired_total", "counter", "Peers closed for lost ICE consent.", consent.expired)
    w.sample("vcs_sfu_loop_lag_seconds_total", "counter", "Seconds the event loop ran late, not held against peers.", round(consent.loop_lag_s, 3))
    udp = node.udp
    if udp is not None:
        w.sample("vcs_sfu_udp_peers", "gauge", "Peers on the node's shared UDP socket.", udp.peers, node=node_id)
        for reason, value in udp.dropped.items():
            w.sample("vcs_sfu_udp_dropped_total", "counter", "Datagrams dropped on the shared UDP socket, by reason.", value, reason=reason)
        w.sample("vcs_sfu_udp_address_takeovers_total", "counter", "Addresses a newer peer's ICE check took over.", udp.takeovers)
        w.sample("vcs_sfu_udp_send_errors_total", "counter", "Datagrams the shared UDP socket could not send.", udp.send_errors)
    if node.config.fanout == "compiled":
        calls, messages = fanout.totals()
        w.sample("vcs_sfu_fanout_sendmmsg_total", "counter", "System calls of the compiled fan-out (one per socket and batch).", calls)
        w.sample("vcs_sfu_fanout_messages_total", "counter", "Messages (datagrams or GSO batches) they sent.", messages)
    if node.config.role == "relay":
        w.sample("vcs_sfu_upstream_streams", "gauge", "Upstream subscriptions of this relay to its origins.", node.upstream_streams)
        hop = node.hops.p95_ms()
        if hop is not None:
            w.sample("vcs_sfu_relay_hop_ms_p95", "gauge", "95th percentile of a packet's time in this relay (sampled).", hop)
    w.sample("vcs_sfu_uplinks", "gauge", "Communes' cameras this relay forwards to origins.", node.uplinks, node=node_id)
    w.sample("vcs_sfu_relayed_publishers", "gauge", "Communes' cameras this origin receives from relays.", node.relayed_publishers, node=node_id)
    for outcome, value in node.uplink_outcomes.items():
        w.sample("vcs_sfu_uplinks_total", "counter", "Uplinks started or refused (relay), closed unwatched (origin).", value, outcome=outcome)
    for name, value in sorted(node.counters.items()):
        w.sample("vcs_sfu_signaling_requests_total", "counter", "Signaling requests by endpoint.", value, endpoint=name)
    if not rooms:
        return "\n".join(w.lines) + "\n"
    for room in node.rooms.values():
        w.sample("vcs_sfu_room_publishers", "gauge", "Publishers in a room.", len(room.publishers), room=room.name)
        w.sample("vcs_sfu_room_subscribers", "gauge", "Subscribers in a room.", len(room.subscribers), room=room.name)
        if room.uplinks:
            w.sample("vcs_sfu_room_uplinks", "gauge", "Communes' cameras a relay room forwards to its origin.", len(room.uplinks), room=room.name)
        for enc in room.encoders.values():
            labels = {"room": room.name, "tier": enc.tier.name}
            w.sample("vcs_sfu_tier_subscribers", "gauge", "Subscribers of a tier.", len(enc.stream), **labels)
            w.sample("vcs_sfu_tier_frames_total", "counter", "Frames encoded for a tier.", enc.frames, **labels)
            w.sample("vcs_sfu_tier_bytes_total", "counter", "Encoded bytes for a tier.", enc.bytes, **labels)
            w.sample("vcs_sfu_tier_keyframes_total", "counter", "Keyframes sent on a tier.", enc.stream.keyframes, **labels)
            w.sample(
                "vcs_sfu_tier_keyframe_requests_total", "counter", "Keyframe requests to a tier.", enc.keyframe_requests, **labels
            )
        for sub in room.subscribers.values():
            labels = {"room": room.name, "subscriber": sub.identity, "resource": sub.resource_id}
            tier = sub.tier_name or "none"
            w.sample("vcs_sfu_subscriber_info", "gauge", "A subscriber's current tier.", 1, tier=tier, **labels)
            w.sample("vcs_sfu_subscriber_bitrate_bps", "gauge", "Bitrate sent to a subscriber.", round(sub.bitrate_bps), **labels)
            w.sample("vcs_sfu_subscriber_loss_ratio", "gauge", "Loss reported by a subscriber.", sub.loss, **labels)
            w.sample("vcs_sfu_subscriber_estimate_bps", "gauge", "Send-side bandwidth estimate for a subscriber.", round(sub.estimator.estimate_bps), **labels)
            w.sample("vcs_sfu_subscriber_probes_total", "counter", "Probes before a step up.", sub.allocation.probes, **labels)
            w.sample("vcs_sfu_subscriber_feedback_errors_total", "counter", "Malformed feedback (transport-cc, REMB) dropped.", sub.feedback_errors, **labels)
            if sub.rtt_ms is not None:
                w.sample("vcs_sfu_subscriber_rtt_ms", "gauge", "Round-trip time to a subscriber.", round(sub.rtt_ms, 1), **labels)
    return "\n".join(w.lines) + "\n"
