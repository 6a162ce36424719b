"""The organizer and operations web UI: server-rendered pages, sessions, CSRF, security headers.

Wiring (web/app.py): `create_ui_app()` is a Starlette app of its own, mounted
at the root after the API, with its own HTML exception handlers
(`web.ui.error_pages`); it shares the web app's state (services, and
`build_templates()` in `state.templates`).

| path                                   | roles            | what                                   |
|----------------------------------------|------------------|----------------------------------------|
| GET, POST /login                       | anyone           | sign in (throttled)                    |
| POST /logout                           | signed in        | sign out, the session ends at once     |
| POST /lang                             | anyone           | language cookie, back to the same page |
| GET /                                  | every role       | today: online per province, meetings   |
| GET /meetings[?view=week or list]      | every role       | week calendar (Monday-Sunday) or list  |
| GET, POST /meetings/new                | admin, organizer | book: search, preview, save            |
| GET /meetings/{id}, /meetings/{id}.ics | every role       | one meeting and its plan; iCalendar    |
| GET, POST /meetings/{id}/edit          | admin, organizer | change (in scope)                      |
| GET, POST /meetings/{id}/cancel        | admin, organizer | confirm, cancel series or occurrence   |
| GET /meetings/{id}/live[/events]       | every role       | live view; its Server-Sent Events      |
| POST /meetings/{id}/floor[/take]       | admin, organizer | give the floor / take it back          |
| GET /meetings/{id}/host                | admin, organizer | host console (WHIP from the browser)   |
| POST /meetings/{id}/host/session       | admin, organizer | the host's media tokens (JSON)         |
| GET /endpoints, /endpoints/export.csv  | every role       | list with filters; CSV of the filtered |
| GET /endpoints/{id}                    | every role       | one endpoint and its link profile      |
| POST /endpoints/{id}                   | admin, ops       | edit the link profile                  |
| POST /endpoints/{id}/secret            | admin, ops       | rotate the secret, shown once          |
| GET, POST /endpoints/import            | admin, ops       | CSV import, all or nothing             |
| GET, POST /users                       | admin            | the accounts; add one                  |
| POST /users/{name}/disable, /enable    | admin            | disabling ends the user's sessions     |
| GET /audit                             | admin, ops       | the audit log                          |
| /static/...                            | anyone           | app.css, emblem.svg, live.js, host.js  |

Province-scoped organizers see only their province, as in the API; they
change, cancel, host and hand the floor only for meetings within it.
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from web.ui import (
    pages_audit,
    pages_auth,
    pages_booking,
    pages_endpoints,
    pages_host,
    pages_live,
    pages_meetings,
    pages_reports,
    pages_today,
    pages_users,
)
from web.ui.error_pages import EXCEPTION_HANDLERS
from web.ui.rendering import STATIC_DIR, build_templates

__all__ = ["build_templates", "create_ui_app", "routes"]

routes = [
    Route("/", pages_today.today, methods=["GET"], name="ui-today"),
    Route("/login", pages_auth.login_form, methods=["GET"], name="ui-login"),
    Route("/login", pages_auth.login_submit, methods=["POST"]),
    Route("/logout", pages_auth.logout, methods=["POST"], name="ui-logout"),
    Route("/lang", pages_auth.set_language, methods=["POST"], name="ui-lang"),
    Route("/meetings", pages_meetings.meetings_page, methods=["GET"], name="ui-meetings"),
    # literal paths before /meetings/{meeting_id}, which would match them too
    Route("/meetings/new", pages_booking.new_form, methods=["GET"], name="ui-meeting-new"),
    Route("/meetings/new", pages_booking.new_submit, methods=["POST"]),
    Route("/meetings/{meeting_id}.ics", pages_meetings.meeting_ics, methods=["GET"], name="ui-meeting-ics"),
    Route("/meetings/{meeting_id}", pages_meetings.meeting_detail, methods=["GET"], name="ui-meeting"),
    Route("/meetings/{meeting_id}/edit", pages_booking.edit_form, methods=["GET"], name="ui-meeting-edit"),
    Route("/meetings/{meeting_id}/edit", pages_booking.edit_submit, methods=["POST"]),
    Route("/meetings/{meeting_id}/cancel", pages_meetings.cancel_confirm, methods=["GET"], name="ui-meeting-cancel"),
    Route("/meetings/{meeting_id}/cancel", pages_meetings.cancel_submit, methods=["POST"]),
    Route("/meetings/{meeting_id}/live", pages_live.live_page, methods=["GET"], name="ui-meeting-live"),
    Route("/meetings/{meeting_id}/live/events", pages_live.live_stream, methods=["GET"], name="ui-meeting-live-events"),
    Route("/meetings/{meeting_id}/floor", pages_live.floor_give, methods=["POST"], name="ui-meeting-floor"),
    Route("/meetings/{meeting_id}/floor/take", pages_live.floor_take, methods=["POST"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/report", pages_reports.report_page, methods=["GET"], name="ui-report"),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/report.csv", pages_reports.report_csv_page, methods=["GET"]),
    Route("/meetings/{meeting_id}/occurrences/{occurrence}/recording", pages_reports.recording_file, methods=["GET"], name="ui-recording"),
    Route("/meetings/{meeting_id}/host", pages_host.host_console, methods=["GET"], name="ui-meeting-host"),
    Route("/meetings/{meeting_id}/host/session", pages_host.host_session, methods=["POST"]),
    Route("/endpoints", pages_endpoints.endpoint_list, methods=["GET"], name="ui-endpoints"),
    # literal paths before /endpoints/{endpoint_id}, which would match them too
    Route("/endpoints/export.csv", pages_endpoints.export_endpoints, methods=["GET"], name="ui-endpoints-export"),
    Route("/endpoints/import", pages_endpoints.import_form, methods=["GET"], name="ui-endpoints-import"),
    Route("/endpoints/import", pages_endpoints.import_submit, methods=["POST"]),
    Route("/endpoints/{endpoint_id}", pages_endpoints.endpoint_detail, methods=["GET"], name="ui-endpoint"),
    Route("/endpoints/{endpoint_id}", pages_endpoints.endpoint_edit, methods=["POST"]),
    Route("/endpoints/{endpoint_id}/secret", pages_endpoints.endpoint_rotate, methods=["POST"]),
    Route("/users", pages_users.users_page, methods=["GET"], name="ui-users"),
    Route("/users", pages_users.user_add, methods=["POST"]),
    Route("/users/{username}/disable", pages_users.user_disable, methods=["POST"]),
    Route("/users/{username}/enable", pages_users.user_enable, methods=["POST"]),
    Route("/audit", pages_audit.audit_page, methods=["GET"], name="ui-audit"),
    Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
]


def create_ui_app(state: State) -> Starlette:
    """The UI as an app to mount; `state` is the web app's, where handlers find services and templates."""
    app = Starlette(routes=routes, exception_handlers=EXCEPTION_HANDLERS)
    app.state = state
    return app
