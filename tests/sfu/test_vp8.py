from fractions import Fraction

import av
from aiortc.codecs.vpx import Vp8Encoder

from rtc.synthetic_media import render_scene
from sfu.vp8 import is_keyframe_start


def test_keyframe_detection_on_real_packets():
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = 160, 90, "yuv420p"
    codec.time_base = Fraction(1, 90000)
    codec.options = {"deadline": "realtime", "lag-in-frames": "0"}
    frames = render_scene(160, 90, 30, 3)
    starts = []
    for i, frame in enumerate(frames):
        frame.pts = i * 3000
        frame.pict_type = av.video.frame.PictureType.NONE
        for packet in codec.encode(frame):
            payloads = Vp8Encoder._packetize(bytes(packet), 1000 + i)
            starts.append((packet.is_keyframe, is_keyframe_start(payloads[0]), [is_keyframe_start(p) for p in payloads[1:]]))
    assert starts[0][0] and starts[0][1]
    for keyframe, detected, rest in starts:
        assert keyframe == detected
        assert not any(rest)


def test_garbage_is_not_a_keyframe():
    for data in (b"", b"\x10", b"\x90\x80", b"\x00\x00\x00", b"\xff" * 5):
        assert is_keyframe_start(data) in (False, True)
    assert not is_keyframe_start(b"\x00\x00")
