"""Just enough of the VP8 RTP payload (RFC 7741) to find keyframes."""

from __future__ import annotations

__all__ = ["depacketize", "is_keyframe_start", "keyframe_size"]


def is_keyframe_start(payload: bytes) -> bool:
    """True for the first packet of a VP8 keyframe."""
    n = len(payload)
    if n < 2:
        return False
    first = payload[0]
    if not first & 0x10 or first & 0x0F:  # S bit and partition 0
        return False
    pos = 1
    if first & 0x80:  # X: extension byte
        ext = payload[1]
        pos = 2
        if ext & 0x80:  # I: picture id
            if pos >= n:
                return False
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:  # L: TL0PICIDX
            pos += 1
        if ext & 0x30:  # T or K
            pos += 1
    if pos >= n:
        return False
    return not payload[pos] & 0x01  # P bit 0: keyframe


def depacketize(payload: bytes) -> tuple[bool, bytes]:
    """(starts a frame, the VP8 bytes): the payload descriptor stripped off (RFC 7741 section 4.2)."""
    n = len(payload)
    if n < 1:
        return False, b""
    first = payload[0]
    pos = 1
    if first & 0x80 and n > 1:
        ext = payload[1]
        pos = 2
        if ext & 0x80 and pos < n:
            pos += 2 if payload[pos] & 0x80 else 1
        if ext & 0x40:
            pos += 1
        if ext & 0x30:
            pos += 1
    return bool(first & 0x10) and not first & 0x0F, payload[pos:]


def keyframe_size(frame: bytes) -> tuple[int, int] | None:
    """Width and height of a VP8 keyframe (RFC 6386 section 9.1); None for an interframe."""
    if len(frame) < 10 or frame[0] & 0x01 or frame[3:6] != b"\x9d\x01\x2a":
        return None
    return int.from_bytes(frame[6:8], "little") & 0x3FFF, int.from_bytes(frame[8:10], "little") & 0x3FFF
