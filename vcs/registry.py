"""The endpoint registry in Redis, cached in-process and kept fresh by a version counter.

Readers pay one GET per call while nothing changed; any write bumps
`REGISTRY_VERSION` so every process reloads on its next read.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from dataclasses import dataclass, replace

import redis.asyncio as aioredis

from vcs import keys
from vcs.divisions import provinces
from vcs.endpoints import Endpoint, EndpointKind, national_endpoints
from vcs.errors import NotFound
from vcs.link_profiles import LinkProfile
from vcs.names import fold

__all__ = ["EndpointQuery", "Registry"]


@dataclass(frozen=True)
class EndpointQuery:
    province_code: str | None = None
    kind: EndpointKind | None = None
    access: str | None = None
    online: bool | None = None
    search: str | None = None

    def matches(self, endpoint: Endpoint, online_ids: set[str] | None) -> bool:
        if self.province_code is not None and endpoint.province_code != self.province_code:
            return False
        if self.kind is not None and endpoint.kind != self.kind:
            return False
        if self.access is not None and endpoint.link.access != self.access:
            return False
        if self.online is not None and online_ids is not None and (endpoint.id in online_ids) != self.online:
            return False
        if self.search:
            return all(word in endpoint.folded_name for word in self.search_words)
        return True

    @functools.cached_property
    def search_words(self) -> tuple[str, ...]:
        return tuple(fold(self.search or "").split())


class Registry:
    def __init__(self, redis: aioredis.Redis) -> None:
        self.redis = redis
        self._version: str | None = None
        self._endpoints: dict[str, Endpoint] = {}
        self._lock = asyncio.Lock()

    async def seed(self) -> int:
        """Add every national endpoint that is missing; existing ones (and their edits) stay."""
        fields = {e.id: e.to_json() for e in national_endpoints()}
        async with self.redis.pipeline(transaction=True) as pipe:
            for endpoint_id, raw in fields.items():
                pipe.hsetnx(keys.ENDPOINTS, endpoint_id, raw)
            results = await pipe.execute()
        added = sum(1 for r in results if r)
        if added:
            await self.redis.incr(keys.REGISTRY_VERSION)
        return added

    async def all(self) -> dict[str, Endpoint]:
        """Every endpoint by id, in registry order (central, halls, communes by code)."""
        version = await self.redis.get(keys.REGISTRY_VERSION)
        if version is not None and version == self._version:
            return self._endpoints
        async with self._lock:
            if version is not None and version == self._version:
                return self._endpoints
            raw = await self.redis.hgetall(keys.ENDPOINTS)
            loaded = [Endpoint.from_json(value) for value in raw.values()]
            loaded.sort(key=_order)
            self._endpoints = {e.id: e for e in loaded}
            self._version = version
            return self._endpoints

    async def get(self, endpoint_id: str) -> Endpoint:
        endpoint = (await self.all()).get(endpoint_id)
        if endpoint is None:
            raise NotFound(f"no endpoint {endpoint_id!r}")
        return endpoint

    async def query(self, query: EndpointQuery, online_ids: set[str] | None = None) -> list[Endpoint]:
        return [e for e in (await self.all()).values() if query.matches(e, online_ids)]

    async def set_links(self, links: Iterable[tuple[str, LinkProfile]]) -> list[Endpoint]:
        """Replace link profiles in one transaction; unknown ids raise before anything is written."""
        current = await self.all()
        updated = []
        for endpoint_id, link in links:
            if endpoint_id not in current:
                raise NotFound(f"no endpoint {endpoint_id!r}")
            updated.append(current[endpoint_id].with_link(link))
        if not updated:
            return []
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.ENDPOINTS, mapping={e.id: e.to_json() for e in updated})
            pipe.incr(keys.REGISTRY_VERSION)
            await pipe.execute()
        return updated

    async def set_contacts(self, contacts: Iterable[tuple[str, str, str]]) -> list[Endpoint]:
        """Replace IT contacts (endpoint id, name, phone) in one transaction; unknown ids raise before anything is written."""
        current = await self.all()
        updated = []
        for endpoint_id, name, phone in contacts:
            if endpoint_id not in current:
                raise NotFound(f"no endpoint {endpoint_id!r}")
            updated.append(replace(current[endpoint_id], contact_name=name, contact_phone=phone))
        if not updated:
            return []
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.ENDPOINTS, mapping={e.id: e.to_json() for e in updated})
            pipe.incr(keys.REGISTRY_VERSION)
            await pipe.execute()
        return updated

    async def communes_of(self, province_code: str) -> list[Endpoint]:
        return await self.query(EndpointQuery(province_code=province_code, kind=EndpointKind.COMMUNE))

    def province_name(self, code: str) -> str:
        return next((p.name for p in provinces() if p.code == code), code)


_KIND_ORDER = {EndpointKind.CENTRAL: 0, EndpointKind.HALL: 1, EndpointKind.COMMUNE: 2}


def _order(endpoint: Endpoint) -> tuple[int, str]:
    return _KIND_ORDER[endpoint.kind], endpoint.id
