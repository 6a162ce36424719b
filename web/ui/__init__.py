"""The organizer and operations web UI: server-rendered pages, sessions, CSRF, security headers.

Wiring (web/app.py): `routes` join the app's routes, `SecurityHeadersMiddleware`
wraps every response, `build_templates()` goes to `app.state.templates`.

| path                                   | roles          | what                                   |
|----------------------------------------|----------------|----------------------------------------|
| GET, POST /login                       | anyone         | sign in (throttled)                    |
| POST /logout                           | signed in      | sign out, the session ends at once     |
| POST /lang                             | anyone         | language cookie, back to the same page |
| GET /                                  | every role     | today: online per province, meetings   |
| GET /meetings                          | every role     | placeholder until phase 2              |
| GET /endpoints, /endpoints/export.csv  | every role     | list with filters; CSV of the filtered |
| GET /endpoints/{id}                    | every role     | one endpoint and its link profile      |
| POST /endpoints/{id}                   | admin, ops     | edit the link profile                  |
| POST /endpoints/{id}/secret            | admin, ops     | rotate the secret, shown once          |
| GET, POST /endpoints/import            | admin, ops     | CSV import, all or nothing             |
| GET, POST /users                       | admin          | the accounts; add one                  |
| POST /users/{name}/disable, /enable    | admin          | disabling ends the user's sessions     |
| GET /audit                             | admin, ops     | the audit log                          |
| /static/...                            | anyone         | app.css, emblem.svg                    |

Province-scoped organizers see only their province, as in the API.
"""

from __future__ import annotations

from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from web.ui import pages_audit, pages_auth, pages_endpoints, pages_meetings, pages_today, pages_users
from web.ui.rendering import STATIC_DIR, build_templates
from web.ui.security_headers import SecurityHeadersMiddleware

__all__ = ["SecurityHeadersMiddleware", "build_templates", "routes"]

routes = [
    Route("/", pages_today.today, methods=["GET"], name="ui-today"),
    Route("/login", pages_auth.login_form, methods=["GET"], name="ui-login"),
    Route("/login", pages_auth.login_submit, methods=["POST"]),
    Route("/logout", pages_auth.logout, methods=["POST"], name="ui-logout"),
    Route("/lang", pages_auth.set_language, methods=["POST"], name="ui-lang"),
    Route("/meetings", pages_meetings.meetings_placeholder, methods=["GET"], name="ui-meetings"),
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
