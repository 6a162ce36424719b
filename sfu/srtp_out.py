"""How a downtrack's RTP is protected: its session's own AES-GCM, or libsrtp.

A subscriber's session negotiated with an AEAD AES-GCM profile (what aiortc
and browsers pick first) is protected by ``sfu/_srtp_out.c``: one keyed
OpenSSL context per session, made from the DTLS-SRTP master key the session
was given, and the rollover counters of the downtrack's SSRCs. Any other
profile, or a node without the compiled module, keeps libsrtp's
``srtp_protect`` on the session aiortc made. RTCP always goes through libsrtp
(its index is its own).

Every RTP packet of a downtrack (the fan-out, retransmissions, probe padding)
must go through the same ``vcs_out``: the rollover counter lives there.
"""

from __future__ import annotations

import weakref
from typing import Any

from pylibsrtp._binding import ffi as _srtp_ffi
from pylibsrtp._binding import lib as _srtp_lib

from rtc.aiortc_adapter import libcrypto_addresses, srtp_handle

try:
    from ._fanout import ffi, lib
except ImportError:  # not built: see sfu.fanout
    ffi = lib = None

__all__ = ["GCM_PROFILES", "SrtpOut"]

GCM_PROFILES = (b"SRTP_AEAD_AES_128_GCM", b"SRTP_AEAD_AES_256_GCM")
_PROTECT = int(_srtp_ffi.cast("uintptr_t", _srtp_ffi.addressof(_srtp_lib, "srtp_protect")))
_sessions: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()  # tx pylibsrtp Session -> its vcs_gcm
_EVP = {  # vcs_crypto's fields and the functions they point to
    "ctx_new": "EVP_CIPHER_CTX_new",
    "ctx_free": "EVP_CIPHER_CTX_free",
    "ctx_ctrl": "EVP_CIPHER_CTX_ctrl",
    "encrypt_init": "EVP_EncryptInit_ex",
    "encrypt_update": "EVP_EncryptUpdate",
    "encrypt_final": "EVP_EncryptFinal_ex",
    "aes_128_ctr": "EVP_aes_128_ctr",
    "aes_256_ctr": "EVP_aes_256_ctr",
    "aes_128_gcm": "EVP_aes_128_gcm",
    "aes_256_gcm": "EVP_aes_256_gcm",
}


def _bind_crypto() -> bool:
    """Point ``vcs_srtp_protect`` at libsrtp and ``vcs_crypto`` at its libcrypto; False (libsrtp
    protects everything) when the latter cannot be."""
    if lib is None:
        return False
    lib.vcs_srtp_protect = _PROTECT
    addresses = libcrypto_addresses(list(_EVP.values()))
    if addresses is None:
        return False
    for field, name in _EVP.items():
        setattr(lib.vcs_crypto, field, addresses[name])
    return True


_BOUND = _bind_crypto()


def _gcm_of(session: Any, keying: tuple[bytes, bytes, bytes]) -> Any:
    """The ``vcs_gcm`` of an outgoing session (shared by its downtracks), or None (not an AES-GCM profile)."""
    gcm = _sessions.get(session)
    if gcm is None:
        profile, key, salt = keying
        if profile not in GCM_PROFILES:
            return None
        made = lib.vcs_gcm_new(key, len(key), salt)
        if made == ffi.NULL:
            return None
        gcm = _sessions[session] = ffi.gc(made, lib.vcs_gcm_free)
    return gcm


class SrtpOut:
    """How one downtrack protects: ``fn(handle, buffer, length pointer)``, called as ``srtp_protect`` is.

    ``cdata`` is its ``vcs_out`` (what the compiled fan-out's rows point to),
    None without the compiled module.
    """

    __slots__ = ("cdata", "fn", "handle", "own", "_gcm", "_session")

    def __init__(self, session: Any, ssrcs: tuple[int, int | None], keying: tuple[bytes, bytes, bytes] | None = None) -> None:
        """``session``: the pylibsrtp ``Session`` aiortc made; ``keying``: its (profile, master key, master salt)
        (``rtc.aiortc_adapter.tx_keying``) to protect it here, None to leave it to libsrtp."""
        self._session = session  # keeps libsrtp's srtp_t alive
        self._gcm = _gcm_of(session, keying) if keying is not None and _BOUND else None
        self.own = self._gcm is not None
        self.cdata = None
        self.fn, self.handle = _srtp_lib.srtp_protect, srtp_handle(session)
        if lib is None:
            return
        out = self.cdata = ffi.new("vcs_out *")
        out.srtp = ffi.cast("void *", int(_srtp_ffi.cast("uintptr_t", srtp_handle(session))))
        out.gcm = self._gcm if self._gcm is not None else ffi.NULL
        for i, ssrc in enumerate(ssrcs):
            if ssrc is not None:
                out.ssrc[i] = ssrc
                out.index[i].used = 1
        if self.own:
            self.fn, self.handle = lib.vcs_protect, out

    def protect(self, buffer: Any, length: Any) -> int:
        """Protect the RTP packet in ``buffer`` (``length[0]`` bytes, room for the tag after); 0 when done."""
        return self.fn(self.handle, buffer, length)
