"""Check a WHIP/WHEP offer before aiortc sees it.

Everything a peer can send us is hostile until proven otherwise: aiortc's SDP
parser raises many exception types, so parsing is wrapped broadly and turned
into ``BadRequest`` with a reason. The SFU speaks VP8 video and Opus audio
(one section of each at most); an offer without them is ``NotAcceptable``.
Candidates are checked too (``rtc.ice.filter_candidates``): a malformed one or
too many is ``BadRequest``; those outside the allowed networks are dropped.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiortc import sdp

from rtc.ice import MAX_CANDIDATES, CandidateRefused, _Network, filter_candidates

from .errors import BadRequest, NotAcceptable, PayloadTooLarge, UnsupportedMediaType

__all__ = ["USABLE_CODECS", "Offer", "check_content_type", "check_offer"]

USABLE_CODECS = {"audio": "opus", "video": "vp8"}
_SENDING = {"sendonly", "sendrecv"}
_RECEIVING = {"recvonly", "sendrecv"}


@dataclass(frozen=True)
class Offer:
    """A checked offer: its text (what aiortc is given) and its parsed form (read, never changed)."""

    text: str
    description: sdp.SessionDescription

    @property
    def kinds(self) -> list[str]:
        """Its media kinds, in order."""
        return [m.kind for m in self.description.media]


def check_content_type(content_type: str | None) -> None:
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type != "application/sdp":
        raise UnsupportedMediaType("the offer must be sent as application/sdp")


def check_offer(
    body: bytes,
    *,
    max_bytes: int,
    publishing: bool,
    networks: Sequence[_Network] = (),
    max_candidates: int = MAX_CANDIDATES,
) -> Offer:
    """Return the offer, its text cleaned and parsed once; or raise a 4xx ``SfuError``."""
    if len(body) > max_bytes:
        raise PayloadTooLarge(f"the offer is larger than {max_bytes} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("the offer is not valid UTF-8") from None
    if "\x00" in text:
        raise BadRequest("the offer contains NUL characters")
    if not text.lstrip().startswith("v=0"):
        raise BadRequest("the offer is not an SDP session description (no v=0)")
    try:
        text = filter_candidates(text, networks, max_candidates)  # before aiortc parses them
    except CandidateRefused as exc:
        raise BadRequest(str(exc)) from None
    try:
        description = sdp.SessionDescription.parse(text)
    except Exception as exc:  # aiortc raises ValueError, KeyError, IndexError, ...
        raise BadRequest(f"unparsable SDP: {type(exc).__name__}: {exc}") from None
    _check_media(description, publishing)
    return Offer(text, description)


def _check_media(description: sdp.SessionDescription, publishing: bool) -> None:
    media = description.media
    if not media:
        raise BadRequest("the offer has no media section")
    kinds = [m.kind for m in media]
    for kind in kinds:
        if kind not in USABLE_CODECS:
            raise NotAcceptable(f"unsupported media section {kind!r}: only audio and video")
    if len(kinds) != len(set(kinds)):
        raise BadRequest("at most one audio and one video section")
    mids = [m.rtp.muxId for m in media]
    if len(set(mids)) != len(mids):
        raise BadRequest("two media sections share a mid")
    for group in description.group:
        if group.semantic == "BUNDLE" and not set(map(str, group.items)) <= set(mids):
            raise BadRequest("the BUNDLE group names a mid that has no media section")
    wanted = _SENDING if publishing else _RECEIVING
    for m in media:
        if m.port == 0:
            raise BadRequest(f"the {m.kind} section is rejected (port 0)")
        if m.direction not in wanted:
            verb = "send" if publishing else "receive"
            raise BadRequest(f"the {m.kind} section must {verb} media (direction {m.direction})")
        if m.ice is None or not m.ice.usernameFragment or not m.ice.password:
            raise BadRequest(f"the {m.kind} section lacks ICE credentials")
        if m.dtls is None or not m.dtls.fingerprints:
            raise BadRequest(f"the {m.kind} section lacks a DTLS fingerprint")
        if not m.rtcp_mux:
            raise BadRequest(f"the {m.kind} section must use rtcp-mux")
        if not m.rtp.muxId:
            raise BadRequest(f"the {m.kind} section lacks a=mid")
        names = {c.mimeType.split("/", 1)[-1].lower() for c in m.rtp.codecs}
        if USABLE_CODECS[m.kind] not in names:
            raise NotAcceptable(
                f"the {m.kind} section offers no usable codec: {USABLE_CODECS[m.kind].upper()} is required"
            )
