"""The node's DTLS certificate: one for every peer it connects, replaced on a schedule.

aiortc makes a P-256 key and a self-signed certificate for each peer
connection and an SSL context for each DTLS transport; a node carrying
hundreds of peers makes them once instead (`rtc.aiortc_adapter.ReusableCertificate`).
Every ``rotate_s`` seconds a new one is made for the peers that join from then
on: a connected peer keeps the certificate it negotiated with (its DTLS
transport holds it), and each answer advertises the fingerprint of the
certificate its peer will use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from rtc.aiortc_adapter import ReusableCertificate

__all__ = ["NodeCertificate"]

logger = logging.getLogger(__name__)


class NodeCertificate:
    def __init__(self, rotate_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rotate_s = rotate_s
        self._clock = clock
        self.current = ReusableCertificate.generateCertificate()
        self._made_at = clock()
        self.rotations = 0

    def rotate_if_due(self) -> None:
        """Make the next certificate once the current one has served ``rotate_s`` (the node's tick calls this)."""
        if self._clock() - self._made_at < self.rotate_s:
            return
        self.current = ReusableCertificate.generateCertificate()
        self._made_at = self._clock()
        self.rotations += 1
        logger.info("DTLS certificate rotated: new peers get %s", self.current.fingerprint)

    def for_new_peer(self) -> ReusableCertificate:
        """The certificate a peer joining now uses (rotated first when due: a tick may be late)."""
        self.rotate_if_due()
        return self.current
