"""Endpoint pages: the list with filters, one endpoint's link profile, secrets, CSV import and export."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from urllib.parse import urlencode

from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vcs import audit
from vcs.contacts import validate_contact
from vcs.divisions import province_code as canonical_province
from vcs.divisions import provinces
from vcs.endpoints import Endpoint, EndpointKind
from vcs.errors import FieldError, ValidationFailed
from vcs.link_csv import MAX_IMPORT_BYTES, decode_csv, export_csv, parse_csv
from vcs.link_profiles import AccessType, validate_profile
from vcs.registry import EndpointQuery
from web.services import services
from web.ui.access import SignedIn, page
from web.ui.forms import number_text, text
from web.ui.i18n import N_
from web.ui.nav import EVERYONE, LINK_EDITORS
from web.ui.rendering import render
from web.ui.sessions import Sessions

__all__ = ["endpoint_detail", "endpoint_edit", "endpoint_list", "endpoint_rotate", "export_endpoints", "import_form", "import_submit"]

PER_PAGE = 50
LINK_FIELDS = ("access", "down_kbps", "up_kbps", "rtt_ms", "loss_pct")
CONTACT_FIELDS = ("contact_name", "contact_phone")  # the on-duty IT contact, validated as in the API (vcs.contacts)
MAX_SEARCH = 100


@dataclass(frozen=True)
class Filters:
    province: str = ""
    kind: str = ""
    access: str = ""
    status: str = ""
    q: str = ""

    def query(self) -> EndpointQuery:
        return EndpointQuery(
            province_code=self.province or None,
            kind=EndpointKind(self.kind) if self.kind else None,
            access=self.access or None,
            online=None if not self.status else self.status == "online",
            search=self.q or None,
        )

    def params(self, **extra: object) -> str:
        return urlencode({k: v for k, v in {**asdict(self), **extra}.items() if v})


def _filters(request: Request, me: SignedIn) -> Filters:
    """Filters from the query string; values no form could send are ignored rather than refused."""
    params = request.query_params
    province = canonical_province(params.get("province", "")) or ""
    if me.principal.scoped:
        province = me.principal.province_code or ""
    kind = params.get("kind", "")
    access = params.get("access", "")
    status = params.get("status", "")
    return Filters(
        province=province,
        kind=kind if kind in EndpointKind.__members__.values() else "",
        access=access if access in AccessType.__members__.values() else "",
        status=status if status in ("online", "offline") else "",
        q=" ".join(params.get("q", "").split())[:MAX_SEARCH],
    )


async def _found(request: Request, filters: Filters) -> list[Endpoint]:
    """The endpoints the filters select; the whole presence set is read only to filter by status."""
    svc = services(request)
    online_ids = await svc.presence.online_ids(svc.clock()) if filters.status else None
    return await svc.registry.query(filters.query(), online_ids)


@page(*EVERYONE)
async def endpoint_list(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    filters = _filters(request, me)
    found = await _found(request, filters)
    pages = max(1, math.ceil(len(found) / PER_PAGE))
    raw_page = request.query_params.get("page", "1")
    current = min(max(int(raw_page), 1), pages) if raw_page.isdigit() else 1
    shown = found[(current - 1) * PER_PAGE : current * PER_PAGE]
    names = {p.code: p.name for p in provinces()}
    last_seen = await svc.presence.last_seen_of_many([e.id for e in shown])
    now = svc.clock()
    rows = [
        {"endpoint": e, "province": names.get(e.province_code or "", ""), "online": svc.presence.is_online(last_seen[e.id], now), "last_seen": last_seen[e.id]}
        for e in shown
    ]
    return render(
        request,
        "endpoints/list.html",
        {
            "filters": filters,
            "rows": rows,
            "total": len(found),
            "page": current,
            "pages": pages,
            "first_index": (current - 1) * PER_PAGE + 1 if found else 0,
            "last_index": (current - 1) * PER_PAGE + len(shown),
            "prev_url": f"/endpoints?{filters.params(page=current - 1)}" if current > 1 else None,
            "next_url": f"/endpoints?{filters.params(page=current + 1)}" if current < pages else None,
            "export_url": f"/endpoints/export.csv?{filters.params()}".rstrip("?"),
            "provinces": [p for p in provinces() if not me.principal.scoped or p.code == me.principal.province_code],
            "kinds": list(EndpointKind),
            "access_types": list(AccessType),
            "can_edit": me.user.principal().can_write_links(),
        },
        section="endpoints",
    )


@page(*EVERYONE)
async def export_endpoints(request: Request, me: SignedIn) -> Response:
    filters = _filters(request, me)
    found = await _found(request, filters)
    return Response(
        export_csv(found),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="endpoints.csv"'},
    )


async def _endpoint(request: Request, me: SignedIn) -> Endpoint:
    """The endpoint named in the path; 404 page when unknown, 403 page outside the user's province."""
    endpoint = await services(request).registry.get(request.path_params["endpoint_id"])
    if endpoint.kind is not EndpointKind.CENTRAL:
        me.principal.require_province(endpoint.province_code)
    return endpoint


async def _detail_page(
    request: Request,
    me: SignedIn,
    endpoint: Endpoint,
    inputs: dict[str, str] | None = None,
    errors: dict[str, FieldError] | None = None,
    rotate_error: str = "",
    status: int = 200,
) -> Response:
    svc = services(request)
    seen = await svc.presence.last_seen_of(endpoint.id)
    names = {p.code: p.name for p in provinces()}
    return render(
        request,
        "endpoints/detail.html",
        {
            "endpoint": endpoint,
            "province": names.get(endpoint.province_code or "", ""),
            "online": svc.presence.is_online(seen, svc.clock()),
            "last_seen": seen,
            "has_secret": await svc.credentials.has_secret(endpoint.id),
            "values": inputs or {**{k: str(v) for k, v in endpoint.link.to_dict().items()},
                                 "contact_name": endpoint.contact_name, "contact_phone": endpoint.contact_phone},
            "errors": errors or {},
            "rotate_error": rotate_error,
            "access_types": list(AccessType),
            "can_edit": me.user.principal().can_write_links(),
        },
        section="endpoints",
        status=status,
    )


@page(*EVERYONE)
async def endpoint_detail(request: Request, me: SignedIn) -> Response:
    return await _detail_page(request, me, await _endpoint(request, me))


@page(*LINK_EDITORS)
async def endpoint_edit(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    endpoint = await _endpoint(request, me)
    form = await request.form()
    inputs = {name: text(form, name, 50) for name in LINK_FIELDS}
    contact_inputs = {name: text(form, name, 200) for name in CONTACT_FIELDS}
    parsed = {name: value if name == "access" else number_text(value, integer=name != "loss_pct") for name, value in inputs.items()}
    profile, problems = validate_profile(parsed)
    (name, phone), contact_problems = validate_contact(contact_inputs["contact_name"], contact_inputs["contact_phone"])
    if profile is None or contact_problems:
        errors = {p.field: p for p in [*problems, *contact_problems]}
        return await _detail_page(request, me, endpoint, {**inputs, **contact_inputs}, errors, status=422)
    before, after = endpoint.link.to_dict(), profile.to_dict()
    changes = {field: [before[field], after[field]] for field in LINK_FIELDS if before[field] != after[field]}
    contact_changed = (name, phone) != (endpoint.contact_name, endpoint.contact_phone)
    sessions = Sessions(svc.redis)
    if changes:
        await svc.registry.set_links([(endpoint.id, profile)])
        await audit.record(svc.redis, me.username, audit.Action.ENDPOINT_LINK_EDIT, endpoint.id, {"via": "ui", "changes": changes}, now=svc.clock())
    if contact_changed:
        await svc.registry.set_contacts([(endpoint.id, name, phone)])
        await audit.record(svc.redis, me.username, audit.Action.ENDPOINT_CONTACT_EDIT, endpoint.id, {"via": "ui", "name": name, "phone": phone}, now=svc.clock())
    if changes or contact_changed:
        await sessions.set_flash(me.session, N_("Link profile of {name} saved."), name=endpoint.name)
    else:
        await sessions.set_flash(me.session, N_("Nothing changed."), "info")
    return RedirectResponse(f"/endpoints/{endpoint.id}", status_code=303)


@page(*LINK_EDITORS)
async def endpoint_rotate(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    endpoint = await _endpoint(request, me)
    form = await request.form()
    if form.get("confirm") != "yes":
        return await _detail_page(request, me, endpoint, rotate_error=N_("Tick the box to confirm."), status=422)
    issued = await svc.credentials.rotate([endpoint.id])
    await audit.record(svc.redis, me.username, audit.Action.ENDPOINT_SECRET_ROTATE, endpoint.id, {"via": "ui"}, now=svc.clock())
    # shown once: the server keeps only its hash; never cached
    context = {"endpoint": endpoint, "secret": issued[endpoint.id], "current_path": f"/endpoints/{endpoint.id}"}
    return render(request, "endpoints/secret.html", context, section="endpoints")


def _import_page(request: Request, errors: list[FieldError] | None = None, file_error: str = "", status: int = 200) -> Response:
    return render(
        request,
        "endpoints/import.html",
        {"errors": errors or [], "file_error": file_error, "max_bytes": MAX_IMPORT_BYTES},
        section="endpoints",
        status=status,
    )


@page(*LINK_EDITORS)
async def import_form(request: Request, me: SignedIn) -> Response:
    return _import_page(request)


@page(*LINK_EDITORS, max_body=MAX_IMPORT_BYTES + 64 * 1024)
async def import_submit(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    form = await request.form()
    upload = form.get("file")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return _import_page(request, file_error=N_("Choose a CSV file."), status=422)
    raw = await upload.read()
    if len(raw) > MAX_IMPORT_BYTES:
        return _import_page(request, file_error=N_("The file is larger than {limit} bytes."), status=413)
    try:
        content = decode_csv(raw)
    except ValidationFailed:
        return _import_page(request, file_error=N_("The file must be UTF-8 text (save it as CSV UTF-8)."), status=422)
    try:
        rows = parse_csv(content, set(await svc.registry.all()))
    except ValidationFailed as exc:
        return _import_page(request, exc.errors, status=422)
    updated = await svc.registry.set_links(rows)
    details = {"via": "ui", "rows": len(updated), "filename": upload.filename[:200]}
    await audit.record(svc.redis, me.username, audit.Action.ENDPOINT_CSV_IMPORT, "", details, now=svc.clock())
    await Sessions(svc.redis).set_flash(me.session, N_("Imported {count} link profiles; nothing else changed."), count=len(updated))
    return RedirectResponse("/endpoints", status_code=303)
