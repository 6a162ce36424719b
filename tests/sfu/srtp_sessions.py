"""SRTP sessions for the tests that wire downtracks by hand, in both ways the node protects.

``libsrtp``: an AES-CM/HMAC-SHA1 session, protected by libsrtp (what a peer
that negotiates that profile gets); ``aes-gcm``: an AEAD AES-256-GCM session
(what aiortc and browsers negotiate), protected by ``sfu/_srtp_out.c``. Both
sessions allow an index to be protected again, as aiortc's do.
"""

from __future__ import annotations

import os

from pylibsrtp import Policy, Session

from sfu.downtrack import DownTrack
from sfu.srtp_out import SrtpOut

PROTECTIONS = ("libsrtp", "aes-gcm")
_PROFILES = {  # profile, its name in DTLS-SRTP, key and salt lengths
    "libsrtp": (Policy.SRTP_PROFILE_AES128_CM_SHA1_80, b"SRTP_AES128_CM_SHA1_80", 16, 14),
    "aes-gcm": (Policy.SRTP_PROFILE_AEAD_AES_256_GCM, b"SRTP_AEAD_AES_256_GCM", 32, 12),
}
_MASTER = {name: os.urandom(key + salt) for name, (_, _, key, salt) in _PROFILES.items()}


def session(protection: str, ssrc_type: int = Policy.SSRC_ANY_INBOUND) -> Session:
    """A libsrtp session on the tests' master key of ``protection`` (inbound: a receiver's)."""
    policy = Policy(key=_MASTER[protection], ssrc_type=ssrc_type, srtp_profile=_PROFILES[protection][0])
    policy.allow_repeat_tx = True
    policy.window_size = 1024
    return Session(policy)


def protect(dt: DownTrack, protection: str) -> Session:
    """Give ``dt`` the outgoing SRTP the node gives it once DTLS is up (its SSRCs set first);
    returns the libsrtp session, which must outlive the downtrack."""
    outgoing = session(protection, Policy.SSRC_ANY_OUTBOUND)
    _, name, key, _ = _PROFILES[protection]
    master = _MASTER[protection]
    dt.srtp_out = SrtpOut(outgoing, (dt.ssrc, dt.rtx_ssrc), (name, master[:key], master[key:]))
    assert dt.srtp_out.own == (protection == "aes-gcm")
    return outgoing
