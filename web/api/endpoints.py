"""/api/v1/endpoints: the registry of meeting rooms, their link profiles, secrets and CSV."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from vcs import audit
from vcs.divisions import province_code as canonical_province
from vcs.endpoints import Endpoint, EndpointKind
from vcs.errors import FieldError, Forbidden, ValidationFailed
from vcs.contacts import parse_contacts_csv, validate_contact
from vcs.link_csv import MAX_IMPORT_BYTES, decode_csv, export_csv, parse_csv
from vcs.link_profiles import AccessType, validate_profile
from vcs.registry import EndpointQuery
from vcs.roles import Principal, Role
from web.auth import api_principal
from web.requests import json_body, query_int, read_body
from web.services import Services, services

__all__ = ["routes"]

MAX_PER_PAGE = 500


def endpoint_view(endpoint: Endpoint, last_seen: float | None, now: float, timeout: float) -> dict:
    online = last_seen is not None and now - last_seen <= timeout
    return {
        **endpoint.to_dict(),
        "status": "online" if online else "offline",
        "last_seen": datetime.fromtimestamp(last_seen, UTC).isoformat() if last_seen else None,
    }


def _check_scope(principal: Principal, endpoint: Endpoint) -> None:
    if endpoint.kind is not EndpointKind.CENTRAL:
        principal.require_province(endpoint.province_code)


def _parse_query(request: Request, principal: Principal) -> EndpointQuery:
    params = request.query_params
    errors: list[FieldError] = []
    province = params.get("province")
    if province is not None:
        province = canonical_province(province)
        if province is None:
            errors.append(FieldError("province", "unknown province code"))
    if principal.scoped:
        if province is not None and province != principal.province_code:
            raise Forbidden(f"scoped to province {principal.province_code}")
        province = principal.province_code
    kind = params.get("kind")
    if kind is not None and kind not in EndpointKind.__members__.values():
        errors.append(FieldError("kind", "must be central, hall or commune"))
    access = params.get("access")
    if access is not None and access not in AccessType.__members__.values():
        errors.append(FieldError("access", f"must be one of {', '.join(a.value for a in AccessType)}"))
    status = params.get("status")
    if status not in (None, "online", "offline"):
        errors.append(FieldError("status", "must be online or offline"))
    if errors:
        raise ValidationFailed(errors)
    return EndpointQuery(
        province_code=province,
        kind=EndpointKind(kind) if kind else None,
        access=access,
        online=None if status is None else status == "online",
        search=params.get("q") or None,
    )


async def list_endpoints(request: Request) -> Response:
    principal = await api_principal(request)
    svc = services(request)
    query = _parse_query(request, principal)
    page = query_int(request, "page", 1, low=1, high=1_000_000)
    per_page = query_int(request, "per_page", 50, low=1, high=MAX_PER_PAGE)
    now = svc.clock()
    # the whole presence set only to filter by status; otherwise just the scores of the page shown
    online_ids = await svc.presence.online_ids(now) if query.online is not None else None
    found = await svc.registry.query(query, online_ids)
    start = (page - 1) * per_page
    shown = found[start : start + per_page]
    last_seen = await svc.presence.last_seen_of_many([e.id for e in shown])
    items = [endpoint_view(e, last_seen[e.id], now, svc.presence.timeout) for e in shown]
    return JSONResponse({"items": items, "total": len(found), "page": page, "per_page": per_page})


async def _endpoint_of(request: Request, *roles: Role) -> tuple[Principal, Services, Endpoint]:
    """The caller, the services and the endpoint the path names; 403 without one of `roles` (any when none)."""
    principal = await api_principal(request)
    if roles:
        principal.require(*roles)
    svc = services(request)
    return principal, svc, await svc.registry.get(request.path_params["endpoint_id"])


async def get_endpoint(request: Request) -> Response:
    principal, svc, endpoint = await _endpoint_of(request)
    _check_scope(principal, endpoint)
    seen = await svc.presence.last_seen_of(endpoint.id)
    return JSONResponse(endpoint_view(endpoint, seen, svc.clock(), svc.presence.timeout))


async def update_endpoint(request: Request) -> Response:
    """`{"link": {...}}` changes link profile fields, `{"contact": {"name", "phone"}}` the IT contact; either or both."""
    principal, svc, endpoint = await _endpoint_of(request, Role.ADMIN, Role.OPS)
    body = await json_body(request)
    link, contact = body.get("link"), body.get("contact")
    if link is None and contact is None:
        raise ValidationFailed(FieldError("link", "an object with the link profile fields to change (or contact)"))
    if link is not None and not isinstance(link, dict):
        raise ValidationFailed(FieldError("link", "an object with the link profile fields to change"))
    if contact is not None and (not isinstance(contact, dict) or not all(isinstance(contact.get(k, ""), str) for k in ("name", "phone"))):
        raise ValidationFailed(FieldError("contact", 'an object {"name": "...", "phone": "..."}'))
    updated = endpoint
    if link is not None:
        unknown = set(link) - {"access", "down_kbps", "up_kbps", "rtt_ms", "loss_pct"}
        if unknown:
            raise ValidationFailed([FieldError(f"link.{f}", "unknown field") for f in sorted(unknown)])
        profile, problems = validate_profile({**endpoint.link.to_dict(), **link})
        if problems:
            raise ValidationFailed([FieldError(f"link.{p.field}", p.reason) for p in problems])
    if contact is not None:
        (name, phone), problems = validate_contact(contact.get("name", endpoint.contact_name), contact.get("phone", endpoint.contact_phone))
        if problems:
            raise ValidationFailed([FieldError(f"contact.{p.field.removeprefix('contact_')}", p.reason) for p in problems])
        [updated] = await svc.registry.set_contacts([(endpoint.id, name, phone)])
        await audit.record(svc.redis, principal.name, audit.Action.ENDPOINT_CONTACT_EDIT, endpoint.id, {"via": "api", "name": name, "phone": phone}, now=svc.clock())
    if link is not None:
        [updated] = await svc.registry.set_links([(endpoint.id, profile)])
        before, after = endpoint.link.to_dict(), profile.to_dict()
        changes = {f: [before[f], after[f]] for f in before if before[f] != after[f]}
        await audit.record(svc.redis, principal.name, audit.Action.ENDPOINT_LINK_EDIT, endpoint.id, {"via": "api", "changes": changes}, now=svc.clock())
    seen = await svc.presence.last_seen_of(endpoint.id)
    return JSONResponse(endpoint_view(updated, seen, svc.clock(), svc.presence.timeout))


async def rotate_secret(request: Request) -> Response:
    principal, svc, endpoint = await _endpoint_of(request, Role.ADMIN, Role.OPS)
    issued = await svc.credentials.rotate([endpoint.id])
    await audit.record(svc.redis, principal.name, audit.Action.ENDPOINT_SECRET_ROTATE, endpoint.id, {"via": "api"}, now=svc.clock())
    # shown once: the server keeps only its hash
    return JSONResponse({"endpoint_id": endpoint.id, "secret": issued[endpoint.id]}, headers={"Cache-Control": "no-store"})


async def export_endpoints(request: Request) -> Response:
    principal = await api_principal(request)
    query = _parse_query(request, principal)
    found = await services(request).registry.query(query)
    return Response(
        export_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="endpoints.csv"'},
    )


async def import_endpoints(request: Request) -> Response:
    principal = await api_principal(request)
    principal.require(Role.ADMIN, Role.OPS)
    text = decode_csv(await read_body(request, MAX_IMPORT_BYTES))
    registry = services(request).registry
    rows = parse_csv(text, set(await registry.all()))
    updated = await registry.set_links(rows)
    await audit.record(services(request).redis, principal.name, audit.Action.ENDPOINT_CSV_IMPORT, "", {"via": "api", "rows": len(updated)})
    return JSONResponse({"updated": len(updated)})


async def import_contacts(request: Request) -> Response:
    """IT contacts from CSV (id, contact_name, contact_phone): all or nothing, errors per line."""
    principal = await api_principal(request)
    principal.require(Role.ADMIN, Role.OPS)
    text = decode_csv(await read_body(request, MAX_IMPORT_BYTES))
    svc = services(request)
    rows = parse_contacts_csv(text, set(await svc.registry.all()))
    updated = await svc.registry.set_contacts(rows)
    await audit.record(svc.redis, principal.name, audit.Action.ENDPOINT_CONTACTS_IMPORT, "", {"via": "api", "rows": len(updated)})
    return JSONResponse({"updated": len(updated)})


routes = [
    Route("/endpoints/contacts.csv", import_contacts, methods=["POST", "PUT"]),
    Route("/endpoints", list_endpoints, methods=["GET"]),
    Route("/endpoints.csv", export_endpoints, methods=["GET"]),
    Route("/endpoints.csv", import_endpoints, methods=["POST", "PUT"]),
    Route("/endpoints/{endpoint_id}", get_endpoint, methods=["GET"]),
    Route("/endpoints/{endpoint_id}", update_endpoint, methods=["PATCH"]),
    Route("/endpoints/{endpoint_id}/secret", rotate_secret, methods=["POST"]),
]
