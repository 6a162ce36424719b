"""The link lab for real: namespaces, the delay/loss element on its TUN, a short scenario.

These need root and network namespaces (``ip netns``); elsewhere they are
skipped with the reason (shown by ``-ra``).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading

import pytest

from sfu.link_lab.netns import LabNetwork, netns_unavailable_reason
from sfu.link_lab.receivers import CHROMIUM
from sfu.link_lab.run import run_scenario
from sfu.link_lab.scenarios import SCENARIOS

ECHO_CLIENT = r"""
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2.0)
rtts = []
for i in range(20):
    sent = time.monotonic()
    s.sendto(b"x" * 200, (sys.argv[1], int(sys.argv[2])))
    s.recvfrom(2048)
    rtts.append(time.monotonic() - sent)
print(min(rtts))
"""


@pytest.fixture(scope="module")
def netns_allowed() -> None:
    reason = netns_unavailable_reason()
    if reason is not None:
        pytest.skip(f"the link lab cannot run on this machine: {reason}")


def test_the_element_delays_both_directions_and_the_lab_goes_away(netns_allowed):
    lab = LabNetwork.create()
    element = None
    try:
        element = subprocess.Popen(
            lab.in_router(sys.executable, "-m", "sfu.link_lab.impairment", "--tun", lab.tun, "--down-net", lab.subscriber_net,
                          "--down-delay-ms", "60", "--up-delay-ms", "40"),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert element.stdout.readline().strip() == "READY"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as server:
            server.bind((lab.host_ip, 0))

            def echo() -> None:
                for _ in range(20):
                    data, addr = server.recvfrom(2048)
                    server.sendto(data, addr)

            thread = threading.Thread(target=echo, daemon=True)
            thread.start()
            client = subprocess.run(
                lab.in_subscriber(sys.executable, "-c", ECHO_CLIENT, lab.host_ip, str(server.getsockname()[1])),
                capture_output=True, text=True, timeout=60,
            )  # fmt: skip
        assert client.returncode == 0, client.stderr
        assert float(client.stdout) >= 0.100  # 40 ms up and 60 ms down, every time
        element.stdin.close()
        counts = element.stdout.read()
        assert '"down": {"passed": 20' in counts and '"up": {"passed": 20' in counts
    finally:
        if element is not None and element.poll() is None:
            element.kill()
        lab.close()
    assert not lab.exists()
    assert lab.host_ip not in subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout


async def test_a_fibre_profile_on_a_1_mbps_link_end_to_end(netns_allowed, tmp_path):
    lines: list[str] = []
    figures = await run_scenario(SCENARIOS["a"], "aiortc", 12, out=lines.append, samples_to=tmp_path, source=("640x360", 1.0))
    text = "\n".join(lines)
    # the profile says fibre, so the node starts at the top (the first picture decoded is 720p: the node may
    # have fitted the link before its first sample); only the shaped link brings it down
    first_height = json.loads((tmp_path / "a-aiortc.json").read_text())["receiver_samples"][0]["height"]
    assert (figures.tiers[0] == "720p" or first_height == 720) and figures.tiers[-1] != "720p", text
    assert figures.fit_s is not None, text
    for figure in ("seconds to fit after a drop", "frozen seconds per minute", "audio loss after repair"):
        assert figure in text
    n = int(re.search(r"lab 10\.77\.(\d+)\.0/24", text).group(1))
    assert not LabNetwork(n).exists()


async def test_a_satellite_link_gets_its_video_twice_and_keeps_the_receiver(netns_allowed, tmp_path):
    lines: list[str] = []
    figures = await run_scenario(SCENARIOS["d"], "aiortc", 40, out=lines.append, samples_to=tmp_path, source=("640x360", 1.0))
    text = "\n".join(lines)
    # 600 ms and 2 % loss: the node protects the video on the tier that fits it twice (2 Mbps: 180p)
    assert figures.repeat_s_per_min > 0 and figures.tiers[-1] == "180p", text
    record = json.loads((tmp_path / "d-aiortc.json").read_text())
    assert record["node"][-1]["repeat"], text
    # the receiver is still connected and decoding after the 30 s at which consent used to be lost
    late = [s for s in record["receiver_samples"] if s["t"] >= 32]
    assert late and late[-1]["frames"] > late[0]["frames"], text


async def test_chromium_on_a_satellite_link_keeps_its_video_sent_twice(netns_allowed):
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed")
    lines: list[str] = []
    figures = await run_scenario(SCENARIOS["d"], "chromium", 30, out=lines.append, source=("640x360", 1.0))
    text = "\n".join(lines)
    # the copy Chromium drops is not read as loss: the estimate keeps room for 180p twice, never audio only
    assert figures.repeat_s_per_min > 0 and figures.tiers[-1] == "180p", text
    assert figures.audio_only_s_per_min == 0, text
    assert figures.audio_concealed_pct is not None, text  # the audio as heard
