"""Who a meeting's selector names, resolved against the registry and saved groups.

Resolution happens per occurrence (a commune added to a province next month
joins that month's meetings), and is cached per registry and meeting version.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

import redis.asyncio as aioredis

from scheduler.meeting import ParticipantSelector
from vcs import keys
from vcs.endpoints import Endpoint, EndpointKind
from vcs.errors import FieldError, ValidationFailed
from vcs.registry import Registry

__all__ = ["Groups", "resolve", "selected"]


async def resolve(registry: Registry, groups: Groups, selector: ParticipantSelector) -> frozenset[str]:
    """The commune endpoint ids the selector names (the host is not among them)."""
    saved = await groups.all() if selector.kind == "group" else {}
    return selected(selector, await registry.all(), saved)


def selected(selector: ParticipantSelector, endpoints: Mapping[str, Endpoint], groups: Mapping[str, tuple[str, ...]]) -> frozenset[str]:
    """`resolve` on a registry and saved groups already read."""
    if selector.kind == "all":
        return frozenset(e.id for e in endpoints.values() if e.kind is EndpointKind.COMMUNE)
    if selector.kind == "provinces":
        wanted = {f"{code:02d}" for code in selector.province_codes}
        return frozenset(e.id for e in endpoints.values() if e.kind is EndpointKind.COMMUNE and e.province_code in wanted)
    if selector.kind == "communes":
        return frozenset(i for i in selector.commune_ids if i in endpoints)
    if selector.kind == "group":
        return frozenset(i for i in groups.get(selector.group or "", ()) if i in endpoints)
    return frozenset()


class Groups:
    """Saved participant groups: a name for a list of endpoints booked together often."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis

    async def all(self) -> dict[str, tuple[str, ...]]:
        return {name: tuple(json.loads(raw)) for name, raw in (await self.redis.hgetall(keys.GROUPS)).items()}

    async def save(self, name: str, endpoint_ids: list[str], registry: Registry) -> None:
        name = name.strip()
        known = await registry.all()
        errors = []
        if not name or len(name) > 100:
            errors.append(FieldError("name", "1-100 characters"))
        unknown = [i for i in endpoint_ids if i not in known]
        if unknown or not endpoint_ids:
            errors.append(FieldError("endpoint_ids", f"unknown: {', '.join(unknown[:10])}" if unknown else "at least one"))
        if errors:
            raise ValidationFailed(errors)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.GROUPS, name, json.dumps(sorted(set(endpoint_ids))))
            pipe.incr(keys.MEETINGS_VERSION)  # meetings booked for this group now resolve differently
            # no meeting id: any meeting may name this group, so agents' schedules and jobs are all re-derived
            pipe.publish(keys.MEETINGS_CHANGED, json.dumps({"group": name}))
            await pipe.execute()
