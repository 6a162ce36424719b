"""Every reach into aiortc's (and aioice's, pylibsrtp's) private internals, in one place.

The fast forwarding path, the non-decoding receivers, the counting bench
subscribers and the ICE guard need parts aiortc does not expose: a DTLS
transport's SRTP sessions, its RTP router and RTCP hooks, the nominated ICE
pair, a receiver's name-mangled decoder and jitter buffer, a sender's SSRCs
and keyframe hook; a receiver that reports arrivals needs the
sockets under its transport and an offer with an extension aiortc does not
implement. Cheap joins need a peer connection made with a given
certificate (aiortc makes a key and certificate for each), an SSL context
built once per certificate, and receivers whose bitrate estimator is built
only when media arrives. They are read and replaced only through these functions,
so an aiortc upgrade is checked against this one file (written for aiortc
1.16, aioice 0.13, pylibsrtp 0.12).
"""

from __future__ import annotations

import contextvars
import ctypes
import ctypes.util
from collections.abc import Awaitable, Callable
from typing import Any

from aioice.ice import CandidatePair
from aiortc import (
    RTCConfiguration,
    RTCDtlsTransport,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc import rtcpeerconnection as _rtcpeerconnection
from aiortc import rtcrtpreceiver as _rtcrtpreceiver
from aiortc import sdp as _sdp
from aiortc.codecs import is_rtx
from aiortc.rate import RemoteBitrateEstimator
from aiortc.rtcdtlstransport import RTCCertificate, SRTPProtectionProfile
from aiortc.rtcrtpparameters import RTCRtcpFeedback, RTCRtpCodecParameters, RTCRtpHeaderExtensionParameters
from OpenSSL import SSL
from pylibsrtp import _binding as _srtp_binding

__all__ = [
    "ReusableCertificate",
    "decoder_thread",
    "defer_bitrate_estimators",
    "bytes_received",
    "ice_connection",
    "libcrypto_addresses",
    "local_sockets",
    "ice_connections",
    "local_transports",
    "offer_header_extension",
    "on_pair_succeeded",
    "replace_host_gathering",
    "replace_local_ufrag",
    "nominated_pair",
    "peer_connection_with",
    "register_rtp_sender",
    "replace_decoder_factory",
    "replace_header_extensions",
    "replace_keyframe_hook",
    "replace_rtcp_handler",
    "replace_rtp_data_handler",
    "replace_rtp_handler",
    "rx_srtp",
    "send_rtcp_packet",
    "sender_ssrcs",
    "srtp_handle",
    "stop_decoder",
    "take_out_receiver_parts",
    "transceiver_codecs",
    "tx_keying",
    "tx_srtp",
    "unregister_rtp_sender",
]

RtpHandler = Callable[..., Awaitable[None]]


# DTLS, SRTP and ICE ---------------------------------------------------------------


def ice_connection(dtls: RTCDtlsTransport) -> Any:
    """The aioice `Connection` under a DTLS transport (shared by every bundled transceiver)."""
    return dtls.transport._connection


def ice_connections(pc: RTCPeerConnection) -> list[Any]:
    """The distinct aioice `Connection`s under a peer connection's transceivers (one when bundled)."""
    seen: dict[int, Any] = {}
    for transceiver in pc.getTransceivers():
        connection = ice_connection(transceiver.receiver.transport)
        seen.setdefault(id(connection), connection)
    return list(seen.values())


def replace_local_ufrag(connection: Any, ufrag: str) -> None:
    """Give `connection` another local username fragment (before its parameters reach the SDP)."""
    connection._local_username = ufrag


def replace_host_gathering(connection: Any, protocol: Any) -> None:
    """Make `connection` gather no socket of its own: `protocol` (its `local_candidate` set) is its one host candidate.

    The protocol joins the connection's protocols at once, so that closing the
    connection closes it even if it never gathered.
    """
    connection._protocols.append(protocol)

    async def get_component_candidates(component: int, addresses: list[str], timeout: int = 5) -> list[Any]:
        return [protocol.local_candidate] if component == protocol.local_candidate.component else []

    connection.get_component_candidates = get_component_candidates


def on_pair_succeeded(connection: Any, callback: Callable[[Any], None]) -> None:
    """Call `callback(pair)` whenever one of the connection's candidate pairs passes its check."""
    original = connection.check_state

    def check_state(pair: Any, state: Any) -> None:
        original(pair, state)
        if state == CandidatePair.State.SUCCEEDED:
            callback(pair)

    connection.check_state = check_state


def nominated_pair(dtls: RTCDtlsTransport) -> Any | None:
    """The nominated RTP candidate pair (`.protocol.transport`, `.remote_addr`), or None before ICE completes."""
    return ice_connection(dtls)._nominated.get(1)


def local_sockets(dtls: RTCDtlsTransport) -> list[Any]:
    """The UDP sockets (`socket.socket`) ICE gathered under a DTLS transport, one per local candidate."""
    return [p.transport.get_extra_info("socket") for p in ice_connection(dtls)._protocols if p.transport is not None]


def local_transports(dtls: RTCDtlsTransport) -> list[Any]:
    """The asyncio datagram transports of those sockets (what ``rtc.udp_reader`` watches)."""
    return [p.transport for p in ice_connection(dtls)._protocols if p.transport is not None]


def tx_srtp(dtls: RTCDtlsTransport) -> Any | None:
    """The outgoing pylibsrtp `Session`, or None before DTLS completes."""
    return dtls._tx_srtp


def tx_keying(dtls: RTCDtlsTransport) -> tuple[bytes, bytes, bytes] | None:
    """(profile name, master key, master salt) of the outgoing SRTP session, as aiortc derived them
    (``RTCDtlsTransport._setup_srtp``: the exporter gives the same bytes each time), or None before DTLS completes."""
    ssl = dtls._ssl
    if dtls._tx_srtp is None or ssl is None:
        return None
    name = ssl.get_selected_srtp_profile()
    profile = next((p for p in dtls._srtp_profiles if p.openssl_profile == name), None)
    if profile is None:
        return None
    view = ssl.export_keying_material(b"EXTRACTOR-dtls_srtp", 2 * (profile.key_length + profile.salt_length))
    key_and_salt = profile.get_key_and_salt(view, 1 if dtls._role == "server" else 0)
    return name, key_and_salt[: profile.key_length], key_and_salt[profile.key_length :]


def libcrypto_addresses(names: list[str]) -> dict[str, int] | None:
    """The addresses of OpenSSL functions in the libcrypto libsrtp runs on: pylibsrtp's binding
    links its own and exports it (else the system's), or None when one is missing."""
    for path in (_srtp_binding.__file__, ctypes.util.find_library("crypto")):
        if path is None:
            continue
        try:
            library = ctypes.CDLL(path)
            return {name: ctypes.cast(getattr(library, name), ctypes.c_void_p).value for name in names}
        except (OSError, AttributeError):
            continue
    return None


def rx_srtp(dtls: RTCDtlsTransport) -> Any | None:
    return dtls._rx_srtp


def srtp_handle(session: Any) -> Any:
    """libsrtp's `srtp_t` inside a pylibsrtp `Session`, for calling `srtp_protect` directly."""
    return session._srtp[0]


def register_rtp_sender(dtls: RTCDtlsTransport, sender: Any, ssrc: int) -> None:
    """Route RTCP for `ssrc` to `sender._handle_rtcp_packet`."""
    dtls._rtp_router.register_sender(sender, ssrc=ssrc)


def unregister_rtp_sender(dtls: RTCDtlsTransport, sender: Any) -> None:
    dtls._rtp_router.unregister_sender(sender)


async def send_rtcp_packet(dtls: RTCDtlsTransport, data: bytes) -> None:
    """Protect and send one RTCP packet through aiortc's own path."""
    await dtls._send_rtp(data)


def bytes_received(dtls: RTCDtlsTransport) -> int:
    """Every datagram's bytes the transport took in (RTP, RTCP, DTLS), as aiortc counts them for its stats."""
    return dtls._RTCDtlsTransport__rx_bytes


def replace_rtcp_handler(dtls: RTCDtlsTransport, wrap: Callable[[RtpHandler], RtpHandler]) -> None:
    """Put `wrap(original)` in front of the transport's handling of incoming RTCP."""
    dtls._handle_rtcp_data = wrap(dtls._handle_rtcp_data)


def replace_rtp_data_handler(dtls: RTCDtlsTransport, wrap: Callable[[RtpHandler], RtpHandler]) -> None:
    """Put `wrap(original)` in front of the transport's handling of each decrypted RTP datagram (bytes, arrival ms)."""
    dtls._handle_rtp_data = wrap(dtls._handle_rtp_data)


# certificates and peer connections ---------------------------------------------------


class ReusableCertificate(RTCCertificate):
    """A DTLS key and certificate for many peer connections.

    aiortc computes a certificate's three fingerprints each time an answer is
    written and builds a new `SSL.Context` for each DTLS transport; here both
    are made once (one context per set of SRTP profiles) and shared. The
    shared context keeps no session cache: nothing is resumed across peers,
    and the cache would otherwise grow with every handshake.
    """

    def __init__(self, key: Any, cert: Any) -> None:
        super().__init__(key, cert)
        self._fingerprints = super().getFingerprints()
        self._contexts: dict[tuple[bytes, ...], SSL.Context] = {}

    @property
    def fingerprint(self) -> str:
        """The SHA-256 fingerprint an answer advertises."""
        return next(f.value for f in self._fingerprints if f.algorithm == "sha-256")

    def getFingerprints(self) -> list[Any]:
        return list(self._fingerprints)

    def _create_ssl_context(self, srtp_profiles: list[SRTPProtectionProfile]) -> SSL.Context:
        key = tuple(p.openssl_profile for p in srtp_profiles)
        context = self._contexts.get(key)
        if context is None:
            context = self._contexts[key] = super()._create_ssl_context(srtp_profiles)
            context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
        return context


_given_certificate: contextvars.ContextVar[RTCCertificate | None] = contextvars.ContextVar("given_certificate", default=None)


class _CertificateSource(RTCCertificate):
    """What `RTCPeerConnection.__init__` calls for its certificate: the one given to
    `peer_connection_with`, else a new one as aiortc makes (other peers of the process)."""

    @classmethod
    def generateCertificate(cls) -> RTCCertificate:  # type: ignore[override]
        given = _given_certificate.get()
        return given if given is not None else RTCCertificate.generateCertificate()


def peer_connection_with(configuration: RTCConfiguration, certificate: RTCCertificate | None) -> RTCPeerConnection:
    """A peer connection using `certificate` for its DTLS transports (None: a new one, aiortc's default).

    aiortc makes the certificate inside the constructor; the one given is
    handed over through a context variable, so a peer made at the same time
    elsewhere (another task, another thread) still gets its own."""
    if certificate is None:
        return RTCPeerConnection(configuration)
    _rtcpeerconnection.RTCCertificate = _CertificateSource  # type: ignore[misc]
    token = _given_certificate.set(certificate)
    try:
        return RTCPeerConnection(configuration)
    finally:
        _given_certificate.reset(token)


class _DeferredBitrateEstimator:
    """aiortc's receive-side bandwidth estimator (REMB), built at the first packet.

    Every video receiver gets one, and its construction (a 1000-bucket rate
    window) is the largest single cost of a node's join; a subscriber's
    receiver never sees a packet, so the node's subscribers never pay it."""

    __slots__ = ("_estimator",)

    def __init__(self) -> None:
        self._estimator: RemoteBitrateEstimator | None = None

    def add(self, *args: Any, **kwargs: Any) -> Any:
        if self._estimator is None:
            self._estimator = RemoteBitrateEstimator()
        return self._estimator.add(*args, **kwargs)


def defer_bitrate_estimators() -> None:
    """Build each receiver's bitrate estimator only when its first packet arrives (process-wide; safe twice)."""
    _rtcrtpreceiver.RemoteBitrateEstimator = _DeferredBitrateEstimator  # type: ignore[misc]


# senders, receivers, transceivers -----------------------------------------------------


def sender_ssrcs(sender: RTCRtpSender) -> tuple[int, int]:
    """The media and RTX SSRCs aiortc chose for `sender`."""
    return sender._ssrc, sender._rtx_ssrc


def replace_keyframe_hook(sender: RTCRtpSender, on_request: Callable[[], None]) -> None:
    """Also call `on_request` when the remote asks for a keyframe (PLI/FIR)."""
    original = sender._send_keyframe

    def send_keyframe() -> None:
        original()
        on_request()

    sender._send_keyframe = send_keyframe


def transceiver_codecs(transceiver: RTCRtpTransceiver) -> list[RTCRtpCodecParameters]:
    """The codecs negotiated for `transceiver`."""
    return transceiver._codecs


def replace_header_extensions(transceiver: RTCRtpTransceiver, extensions: list[Any]) -> None:
    """Negotiate `extensions` (`RTCRtpHeaderExtensionParameters`) for `transceiver`: what its answer advertises."""
    transceiver._headerExtensions = list(extensions)


def offer_header_extension(offer: RTCSessionDescription, uri: str, ext_id: int, feedback: str | None = None) -> RTCSessionDescription:
    """`offer` that also offers the header extension `uri` as `ext_id` in every media section, and
    `a=rtcp-fb:<pt> feedback` for every codec but RTX.

    aiortc offers only the extensions it implements (``createOffer`` sets each transceiver's
    from its own list), so the offer is edited as aiortc's parsed description; given to
    ``setLocalDescription``, it is the local description. Applying the answer keeps aiortc's
    own extensions only: its receivers skip this one, which its caller reads itself.
    """
    description = _sdp.SessionDescription.parse(offer.sdp)
    for media in description.media:
        if media.kind not in ("audio", "video"):
            continue
        if all(e.id != ext_id and e.uri != uri for e in media.rtp.headerExtensions):
            media.rtp.headerExtensions.append(RTCRtpHeaderExtensionParameters(id=ext_id, uri=uri))
        if feedback is None:
            continue
        for codec in media.rtp.codecs:
            if not is_rtx(codec) and all(f.type != feedback for f in codec.rtcpFeedback):
                codec.rtcpFeedback.append(RTCRtcpFeedback(type=feedback))
    return RTCSessionDescription(sdp=str(description), type=offer.type)


def replace_rtp_handler(receiver: RTCRtpReceiver, wrap: Callable[[RtpHandler], RtpHandler]) -> None:
    """Put `wrap(original)` in front of the receiver's handling of each RTP packet."""
    receiver._handle_rtp_packet = wrap(receiver._handle_rtp_packet)


def stop_decoder(receiver: RTCRtpReceiver) -> None:
    """Stop the receiver's decoder thread (packets still arrive, nothing is decoded)."""
    stop = getattr(receiver, "_RTCRtpReceiver__stop_decoder", None)
    if stop is not None:
        stop()


def decoder_thread(receiver: RTCRtpReceiver) -> Any | None:
    return getattr(receiver, "_RTCRtpReceiver__decoder_thread", None)


class _NoJitterBuffer:
    """Takes packets and never yields a frame: no frame assembly."""

    def add(self, packet: Any) -> tuple[bool, None]:
        return False, None


def take_out_receiver_parts(receiver: RTCRtpReceiver) -> None:
    """Drop the receiver's jitter buffer and bandwidth estimator (REMB): for receivers that only count."""
    for name, replacement in (("jitter_buffer", _NoJitterBuffer()), ("remote_bitrate_estimator", None)):
        if hasattr(receiver, f"_RTCRtpReceiver__{name}"):
            setattr(receiver, f"_RTCRtpReceiver__{name}", replacement)


def replace_decoder_factory(factory: Callable[[RTCRtpCodecParameters], Any]) -> None:
    """Make every receiver of this process decode with `factory(codec)` (process-wide: benchmarks only)."""
    _rtcrtpreceiver.get_decoder = factory
