"""Users (admin only): the list, adding an account, disabling and enabling one.

Disabling ends every session of that user at once (the per-user session
index), and the sign-in check refuses disabled accounts.
"""

from __future__ import annotations

from dataclasses import replace

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from vcs import audit
from vcs.divisions import provinces
from vcs.errors import FieldError, ValidationFailed
from vcs.roles import Role
from vcs.users import validate_account
from web.services import services
from web.ui.access import SignedIn, page
from web.ui.forms import errors_by_field, text
from web.ui.i18n import N_
from web.ui.nav import ADMINS
from web.ui.rendering import render
from web.ui.sessions import Sessions

__all__ = ["user_add", "user_disable", "user_enable", "users_page"]

MAX_FULL_NAME = 120
MAX_PASSWORD = 1024


async def _users_page(request: Request, inputs: dict[str, str] | None = None, errors: dict[str, FieldError] | None = None, status: int = 200) -> Response:
    svc = services(request)
    users = await svc.users.all()
    sessions = Sessions(svc.redis)
    return render(
        request,
        "users.html",
        {
            "users": users,
            "live_sessions": {u.username: await sessions.count_user(u.username) for u in users},
            "province_names": {p.code: p.name for p in provinces()},
            "provinces": provinces(),
            "roles": list(Role),
            "values": inputs or {"username": "", "full_name": "", "role": Role.VIEWER.value, "province": ""},
            "errors": errors or {},
        },
        section="users",
        status=status,
    )


@page(*ADMINS)
async def users_page(request: Request, me: SignedIn) -> Response:
    return await _users_page(request)


@page(*ADMINS)
async def user_add(request: Request, me: SignedIn) -> Response:
    svc = services(request)
    form = await request.form()
    inputs = {
        "username": text(form, "username", 100),
        "full_name": text(form, "full_name", MAX_FULL_NAME + 50),
        "role": text(form, "role", 20),
        "province": text(form, "province", 10),
    }
    password = form.get("password") if isinstance(form.get("password"), str) else ""
    errors: dict[str, FieldError] = {}
    try:
        validate_account(inputs["username"], password, inputs["role"], inputs["province"] or None)
    except ValidationFailed as exc:
        errors = errors_by_field(exc)
    if len(inputs["full_name"]) > MAX_FULL_NAME:
        errors["full_name"] = FieldError.of("full_name", "too_long", max=MAX_FULL_NAME)
    if len(password) > MAX_PASSWORD:
        errors["password"] = FieldError.of("password", "too_long", max=MAX_PASSWORD)
    if not errors:
        # no province: an organizer for the whole country
        try:
            user = await svc.users.add(inputs["username"], password, inputs["role"], inputs["province"] or None, inputs["full_name"])
        except ValidationFailed as exc:  # the name was taken in the meantime
            errors = errors_by_field(exc)
    if errors:
        return await _users_page(request, inputs, errors, status=422)
    details = {"role": user.role.value, "province": user.province_code or ""}
    await audit.record(svc.redis, me.username, audit.Action.USER_ADD, user.username, details, now=svc.clock())
    await Sessions(svc.redis).set_flash(me.session, N_("User {username} added."), username=user.username)
    return RedirectResponse("/users", status_code=303)


async def _set_disabled(request: Request, me: SignedIn, disabled: bool) -> Response:
    svc = services(request)
    sessions = Sessions(svc.redis)
    user = await svc.users.get(request.path_params["username"])
    if disabled and user.username == me.username:
        await sessions.set_flash(me.session, N_("You cannot disable your own account."), "error")
        return RedirectResponse("/users", status_code=303)
    await svc.users.save(replace(user, disabled=disabled))
    if disabled:
        revoked = await sessions.revoke_user(user.username)
        await audit.record(svc.redis, me.username, audit.Action.USER_DISABLE, user.username, {"sessions": revoked}, now=svc.clock())
        await sessions.set_flash(me.session, N_("User {username} disabled; {count} session(s) ended."), username=user.username, count=revoked)
    else:
        await audit.record(svc.redis, me.username, audit.Action.USER_ENABLE, user.username, now=svc.clock())
        await sessions.set_flash(me.session, N_("User {username} enabled."), username=user.username)
    return RedirectResponse("/users", status_code=303)


@page(*ADMINS)
async def user_disable(request: Request, me: SignedIn) -> Response:
    return await _set_disabled(request, me, True)


@page(*ADMINS)
async def user_enable(request: Request, me: SignedIn) -> Response:
    return await _set_disabled(request, me, False)
