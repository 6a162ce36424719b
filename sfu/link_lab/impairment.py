"""The lab's delay and loss: a user-space router between two namespaces.

The kernel here has no ``netem``, so delay and random loss are done by this
small process. It runs in the lab's router namespace, attached to a TUN
device that policy routing sends every forwarded packet through (see
`sfu.link_lab.netns`): it reads each IPv4 packet, drops it with the
direction's probability, and writes it back into the TUN after the
direction's fixed delay, whence the kernel routes it on (and ``tbf`` shapes
the downlink). A fixed delay keeps the order, so each direction is a FIFO
and one ``select`` timeout serves both: no per-packet task or timer.

`Impairment` is the pure part (a fake clock and a seeded random drive it in
the tests); `run` is the loop around the TUN. Run as::

    python -m sfu.link_lab.impairment --tun vl1-t --down-net 10.77.1.128/25 \\
        --down-delay-ms 20 --up-delay-ms 20 --loss 0.005

It prints ``READY`` once attached, ends when stdin closes (or on ``EXIT``)
and then prints one JSON line of counts per direction.
"""

from __future__ import annotations

import argparse
import collections
import fcntl
import ipaddress
import json
import os
import random
import select
import struct
import sys
import time

__all__ = ["Impairment", "open_tun", "run"]

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
MAX_PACKET = 65535


class Impairment:
    """One direction of a link: every packet delayed by ``delay_s``, or dropped with probability ``loss``."""

    def __init__(self, delay_s: float, loss: float, rng: random.Random | None = None) -> None:
        if delay_s < 0 or not 0.0 <= loss <= 1.0:
            raise ValueError("delay must be >= 0 and loss within 0..1")
        self.delay_s = delay_s
        self.loss = loss
        self._rng = rng or random.Random()
        self._queue: collections.deque[tuple[float, bytes]] = collections.deque()
        self.passed = 0
        self.dropped = 0

    def push(self, packet: bytes, now: float) -> bool:
        """Take a packet arriving at ``now``; False when it is lost."""
        if self.loss and self._rng.random() < self.loss:
            self.dropped += 1
            return False
        self._queue.append((now + self.delay_s, packet))
        return True

    def due(self, now: float) -> list[bytes]:
        """The packets whose delay has passed at ``now``, in arrival order."""
        queue, out = self._queue, []
        while queue and queue[0][0] <= now:
            out.append(queue.popleft()[1])
        self.passed += len(out)
        return out

    def next_due(self) -> float | None:
        """When the oldest waiting packet is due, or None when none waits."""
        return self._queue[0][0] if self._queue else None

    @property
    def waiting(self) -> int:
        return len(self._queue)

    def counts(self) -> dict[str, int]:
        return {"passed": self.passed, "dropped": self.dropped, "waiting": len(self._queue)}


def open_tun(name: str) -> int:
    """Attach to the TUN device ``name`` (made beforehand with ``ip tuntap``); a non-blocking fd of raw IP packets."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    except OSError:
        os.close(fd)
        raise
    return fd


def run(fd: int, down_net: ipaddress.IPv4Network, down: Impairment, up: Impairment, control: int | None = None) -> None:
    """Forward until ``control`` (a readable fd, stdin) reaches its end or says ``EXIT``."""
    watched = [fd] + ([control] if control is not None else [])
    net, mask = int(down_net.network_address), int(down_net.netmask)
    while True:
        waits = [t for t in (down.next_due(), up.next_due()) if t is not None]
        timeout = max(0.0, min(waits) - time.monotonic()) if waits else None
        readable, _, _ = select.select(watched, [], [], timeout)
        now = time.monotonic()
        if fd in readable:
            while True:
                try:
                    packet = os.read(fd, MAX_PACKET)
                except BlockingIOError:
                    break
                if len(packet) >= 20 and packet[0] >> 4 == 4:
                    to_down = int.from_bytes(packet[16:20], "big") & mask == net
                    (down if to_down else up).push(packet, now)
                # anything else (IPv6 is off in the lab) is not forwarded
        for direction in (down, up):
            for packet in direction.due(now):
                try:
                    os.write(fd, packet)
                except OSError:
                    direction.dropped += 1  # the kernel refused it (queue full): lost like on a wire
        if control is not None and control in readable:
            line = os.read(control, 4096)
            if not line or b"EXIT" in line:
                return


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sfu.link_lab.impairment")
    parser.add_argument("--tun", required=True, help="TUN device to attach to")
    parser.add_argument("--down-net", required=True, help="destinations of the downlink (the subscriber's network)")
    parser.add_argument("--down-delay-ms", type=float, default=0.0)
    parser.add_argument("--up-delay-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0, help="probability a packet is lost, each direction")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    down = Impairment(args.down_delay_ms / 1000, args.loss, rng)
    up = Impairment(args.up_delay_ms / 1000, args.loss, rng)
    fd = open_tun(args.tun)
    print("READY", flush=True)
    try:
        run(fd, ipaddress.IPv4Network(args.down_net, strict=False), down, up, control=sys.stdin.fileno())
    except KeyboardInterrupt:
        pass
    finally:
        os.close(fd)
        print(json.dumps({"down": down.counts(), "up": up.counts()}), flush=True)


if __name__ == "__main__":
    main()
