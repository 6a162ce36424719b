"""Link profiles for the bandwidth fit, read from the national registry."""

from __future__ import annotations

from vcs.errors import NotFound
from vcs.registry import Registry

from .allocator import LinkInfo
from .node import LinkLookup

__all__ = ["registry_link_lookup"]


def registry_link_lookup(registry: Registry) -> LinkLookup:
    """A lookup from a token's subject (an endpoint id) to its link; None for identities not in the registry."""

    async def lookup(endpoint_id: str) -> LinkInfo | None:
        try:
            link = (await registry.get(endpoint_id)).link
        except NotFound:
            return None
        return LinkInfo(link.down_kbps, link.up_kbps, link.rtt_ms, link.loss_pct)

    return lookup
