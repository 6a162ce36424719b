"""Just enough of the VP8 RTP payload (RFC 7741) to find keyframes."""

from __future__ import annotations

__all__ = ["is_keyframe_start"]


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
