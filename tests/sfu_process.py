"""An SFU node as its own `vcs sfu` process on loopback, for tests that kill and restart one."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.app.test_serve import vcs_env
from tests.conftest import TEST_SECRET, free_port
from vcs.media_tokens import mint_media_token


class SfuProcess:
    """`vcs sfu --role ROLE` on a loopback port, registered in the tests' Redis (a relay with its provinces)."""

    def __init__(self, node_id: str, redis_url: str, data_dir: Path, *, role: str = "relay", provinces: str | None = None,
                 tiers: str | None = None) -> None:  # fmt: skip
        self.node_id = node_id
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = vcs_env(data_dir, redis_url) | {
            "VCS_SFU_NODE_ID": node_id,
            "VCS_SFU_ICE_HOSTS": "127.0.0.1",
            "VCS_SFU_ICE_ALLOW": "127.0.0.0/8",
        } | ({"VCS_SFU_TIERS": tiers} if tiers else {})
        data_dir.mkdir(parents=True, exist_ok=True)
        self.log = data_dir / f"{node_id}.log"
        self.command = [sys.executable, "-m", "app.cli", "sfu", "--role", role, "--port", str(self.port)]
        self.command += ["--provinces", provinces] if provinces else []
        self.start()

    def start(self) -> None:
        """Start the process (again: the same node id on the same port, its log appended to)."""
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(self.command, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    async def room(self, http: httpx.AsyncClient, room: str) -> dict:
        token = mint_media_token(TEST_SECRET, room=room, identity="test", role="control")
        response = await http.get(f"{self.url}/sfu/rooms/{room}", headers={"Authorization": f"Bearer {token}"})
        return response.json() if response.status_code == 200 else {}

    async def answers(self) -> bool:
        """Whether it answers HTTP yet (a test without Redis in view waits for this, not for its registration)."""
        async with httpx.AsyncClient(timeout=2) as http:
            try:
                await http.get(f"{self.url}/sfu/node")
            except httpx.TransportError:
                return False
        return True

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]
