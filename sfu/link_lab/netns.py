"""The lab's network: a router namespace and a subscriber namespace behind the host.

For lab number ``n`` (the lowest not in use)::

    host 10.77.n.1/30  vl{n}-h ══ vl{n}-rh 10.77.n.2/30  [router vl{n}-r]  vl{n}-rs 10.77.n.129/25 ══ vl{n}-s 10.77.n.130/25  [subscriber vl{n}-s]

The host reaches 10.77.n.128/25 through the router. In the router namespace
policy routing sends whatever arrives on either veth into the TUN ``vl{n}-t``,
where `sfu.link_lab.impairment` delays and drops it and writes it back; what
comes out of the TUN is routed normally. The downlink (router to subscriber)
is shaped with ``tbf`` on ``vl{n}-rs``. Everything is torn down by ending
what still runs in the namespaces and deleting them (the veth pairs and the
host's route go with them): `close()` does it, also after Ctrl-C, and is
safe to call twice.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import shutil
import subprocess
from dataclasses import dataclass

__all__ = ["LabNetwork", "NetnsUnavailable", "netns_unavailable_reason"]

PREFIX = "10.77"
MAX_LABS = 250
ROUTING_TABLE = "177"


class NetnsUnavailable(RuntimeError):
    """This machine cannot build the lab (not root, no `ip`, no TUN, namespaces refused)."""


def _ip(*args: str, netns: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    command = (["ip", "netns", "exec", netns] if netns else []) + list(args)
    result = subprocess.run(command, capture_output=True, text=True)
    if check and result.returncode != 0:
        raise NetnsUnavailable(f"`{' '.join(command)}` failed: {result.stderr.strip() or result.returncode}")
    return result


def netns_unavailable_reason() -> str | None:
    """Why the lab cannot run here, or None when it can (tries a throwaway namespace)."""
    for tool in ("ip", "tc"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2)"
    try:
        open("/dev/net/tun", "rb").close()
    except OSError as exc:
        return f"/dev/net/tun cannot be opened: {exc}"
    name = f"vlprobe{os.getpid()}"
    probe = subprocess.run(["ip", "netns", "add", name], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"`ip netns add` failed ({probe.stderr.strip() or 'not root?'}): the lab needs root and network namespaces"
    subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return None


def _labs_in_use() -> set[int]:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    used = {int(m) for m in re.findall(r"^vl(\d+)-[rs]\b", names, re.M)}
    addresses = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    used |= {int(m) for m in re.findall(rf"inet {re.escape(PREFIX)}\.(\d+)\.", addresses)}
    return used


@dataclass(frozen=True)
class LabNetwork:
    """The names and addresses of lab ``n``; `build()` makes it, `close()` removes it."""

    n: int

    @property
    def host_ip(self) -> str:
        return f"{PREFIX}.{self.n}.1"

    @property
    def subscriber_ip(self) -> str:
        return f"{PREFIX}.{self.n}.130"

    @property
    def subscriber_net(self) -> str:
        return f"{PREFIX}.{self.n}.128/25"

    @property
    def network(self) -> str:
        """All of the lab's addresses (the SFU's ICE allow list)."""
        return f"{PREFIX}.{self.n}.0/24"

    @property
    def router_ns(self) -> str:
        return f"vl{self.n}-r"

    @property
    def subscriber_ns(self) -> str:
        return f"vl{self.n}-s"

    @property
    def tun(self) -> str:
        return f"vl{self.n}-t"

    @property
    def downlink_dev(self) -> str:
        return f"vl{self.n}-rs"

    @classmethod
    def create(cls) -> LabNetwork:
        """Build the lowest free lab; on any failure what was made is removed and NetnsUnavailable raised."""
        used = _labs_in_use()
        free = next((n for n in range(1, MAX_LABS) if n not in used), None)
        if free is None:
            raise NetnsUnavailable(f"all {MAX_LABS} lab networks are in use")
        lab = cls(free)
        try:
            lab._build()
        except BaseException:
            lab.close()
            raise
        return lab

    def _build(self) -> None:
        n, r, s = self.n, self.router_ns, self.subscriber_ns
        host_dev, rh, rs, sv = f"vl{n}-h", f"vl{n}-rh", self.downlink_dev, f"vl{n}-sv"
        _ip("ip", "netns", "add", r)
        _ip("ip", "netns", "add", s)
        for ns in (r, s):
            _ip("ip", "link", "set", "lo", "up", netns=ns)
            _ip("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", netns=ns)
        # the router forwards, and takes packets back from the TUN whatever their source
        for key in ("net.ipv4.ip_forward=1", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf.default.rp_filter=0"):
            _ip("sysctl", "-qw", key, netns=r)
        _ip("ip", "link", "add", host_dev, "type", "veth", "peer", "name", rh, "netns", r)
        _ip("ip", "link", "add", rs, "netns", r, "type", "veth", "peer", "name", sv, "netns", s)
        _ip("ip", "addr", "add", f"{PREFIX}.{n}.1/30", "dev", host_dev)
        _ip("ip", "link", "set", host_dev, "up")
        _ip("ip", "route", "add", self.subscriber_net, "via", f"{PREFIX}.{n}.2", "dev", host_dev)
        _ip("ip", "addr", "add", f"{PREFIX}.{n}.2/30", "dev", rh, netns=r)
        _ip("ip", "addr", "add", f"{PREFIX}.{n}.129/25", "dev", rs, netns=r)
        _ip("ip", "addr", "add", f"{self.subscriber_ip}/25", "dev", sv, netns=s)
        for dev, ns in ((rh, r), (rs, r), (sv, s)):
            _ip("ip", "link", "set", dev, "up", netns=ns)
        _ip("ip", "route", "add", "default", "via", f"{PREFIX}.{n}.129", netns=s)
        _ip("ip", "tuntap", "add", "dev", self.tun, "mode", "tun", netns=r)
        _ip("ip", "link", "set", self.tun, "up", netns=r)
        _ip("ip", "route", "add", "default", "dev", self.tun, "table", ROUTING_TABLE, netns=r)
        for dev in (rh, rs):
            _ip("ip", "rule", "add", "iif", dev, "lookup", ROUTING_TABLE, netns=r)

    def shape(self, kbps: int | None, *, latency_ms: int = 200) -> None:
        """Shape the downlink to ``kbps`` with ``tbf`` (a queue of ``latency_ms``), or unshape it with None."""
        if kbps is None:
            _ip("tc", "qdisc", "del", "dev", self.downlink_dev, "root", netns=self.router_ns, check=False)
            return
        if kbps <= 0:
            raise ValueError("a shaped link needs a positive rate")
        burst = max(4000, kbps * 1000 // 8 // 50)  # 20 ms of the rate, and at least a few packets
        _ip(
            "tc", "qdisc", "replace", "dev", self.downlink_dev, "root", "tbf",
            "rate", f"{kbps}kbit", "burst", str(burst), "latency", f"{latency_ms}ms",
            netns=self.router_ns,
        )  # fmt: skip

    def in_router(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.router_ns, *command]

    def in_subscriber(self, *command: str) -> list[str]:
        return ["ip", "netns", "exec", self.subscriber_ns, *command]

    def close(self) -> None:
        # whatever still runs inside was started by the run (a browser's helpers after Ctrl-C): end it
        for ns in (self.subscriber_ns, self.router_ns):
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True).stdout.split()
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
        # the host's end first: a namespace's devices go only when the kernel gets round to it
        subprocess.run(["ip", "link", "del", f"vl{self.n}-h"], capture_output=True)
        for ns in (self.subscriber_ns, self.router_ns):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)

    def exists(self) -> bool:
        names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
        return any(line.split()[0] in (self.router_ns, self.subscriber_ns) for line in names.splitlines() if line.strip())
