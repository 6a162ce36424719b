"""The SFU identity of one `vcs serve` deployment, kept across restarts.

Placements, media tokens and the agents' cached join info name a node by its
id and URL. A `vcs serve` restarted in the middle of a meeting must come back
as the same nodes, or every host and commune would be refused ("token is for
another node") until the occurrence is placed again. So the origin's id and
each local relay's port are written once under the data directory and reused:
a relay takes its remembered port again when that port is free.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["NodeIdentity"]

log = logging.getLogger(__name__)

FILE = "sfu-identity.json"


@dataclass
class NodeIdentity:
    path: Path
    origin_id: str = field(default_factory=lambda: "sfu-" + secrets.token_hex(4))
    relay_ports: dict[str, int] = field(default_factory=dict)  # relay node id => the port it last had

    @classmethod
    def load(cls, data_dir: Path) -> NodeIdentity:
        path = data_dir / FILE
        try:
            raw = json.loads(path.read_text())
            ports = {str(k): int(v) for k, v in raw.get("relay_ports", {}).items() if 0 < int(v) < 65536}
            identity = cls(path, str(raw["origin_id"]), ports)
        except FileNotFoundError:
            identity = cls(path)
            identity.save()
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("%s is unreadable (%s): this deployment's SFU nodes get new ids", path, exc)
            identity = cls(path)
            identity.save()
        return identity

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"origin_id": self.origin_id, "relay_ports": self.relay_ports}))
        tmp.replace(self.path)
