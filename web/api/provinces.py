"""/api/v1/provinces: per-province summaries (communes, online, access mix)."""

from __future__ import annotations

from collections import Counter

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vcs.divisions import province_code as canonical_province
from vcs.divisions import provinces
from vcs.endpoints import EndpointKind
from vcs.errors import NotFound
from web.auth import api_principal
from web.services import services

__all__ = ["province_summaries", "routes"]


async def province_summaries(request: Request) -> list[dict]:
    svc = services(request)
    endpoints = (await svc.registry.all()).values()
    online = await svc.presence.online_ids(svc.clock())
    total: Counter[str] = Counter()
    up: Counter[str] = Counter()
    access: dict[str, Counter[str]] = {}
    for e in endpoints:
        if e.kind is not EndpointKind.COMMUNE:
            continue
        total[e.province_code] += 1
        up[e.province_code] += e.id in online
        access.setdefault(e.province_code, Counter())[e.link.access.value] += 1
    return [
        {
            "code": p.code,
            "name": p.name,
            "division_type": p.division_type,
            "communes": total[p.code],
            "online": up[p.code],
            "hall_online": f"hall-{p.code}" in online,
            "access": dict(access.get(p.code, {})),
        }
        for p in provinces()
    ]


async def list_provinces(request: Request) -> Response:
    principal = await api_principal(request)
    summaries = await province_summaries(request)
    if principal.scoped:
        summaries = [s for s in summaries if s["code"] == principal.province_code]
    return JSONResponse({"items": summaries, "total": len(summaries)})


async def get_province(request: Request) -> Response:
    principal = await api_principal(request)
    code = canonical_province(request.path_params["code"])
    if code is None:
        raise NotFound(f"no province {request.path_params['code']!r}")
    principal.require_province(code)
    summary = next(s for s in await province_summaries(request) if s["code"] == code)
    return JSONResponse(summary)


routes = [
    Route("/provinces", list_provinces, methods=["GET"]),
    Route("/provinces/{code}", get_province, methods=["GET"]),
]
