"""The project's exception tree, translated to HTTP for the API in one place (`web.errors`)
and to HTML pages for the UI in another (`web.ui.error_pages`).

    VcsError                     400  code           params
    ├── BadRequest               400  bad_request, bad_json, not_an_object
    ├── ValidationFailed         422  invalid        fields: list of FieldError
    ├── Unauthorized             401  unauthorized
    ├── Forbidden                403  forbidden, csrf
    ├── NotFound                 404  not_found
    ├── Conflict                 409  conflict       details: what it collides with
    ├── PayloadTooLarge          413  too_large      {limit}
    ├── UnsupportedMediaType     415  unsupported_media_type
    ├── TooManyRequests          429  too_many_requests  {seconds}; retry_after
    └── SfuUnavailable           502  sfu_unavailable  the media node did not take an order

Every error carries an English `message` (for the API and the logs), a
stable `code` and its `params`: the UI translates by code, never by reading
the English. A `FieldError` does the same for one input: `FieldError.of(
"duration", "between", low=5, high=720)` reads "must be between 5 and 720";
its code's English template is in `REASONS`, the msgid the catalogues
translate. Reasons without a code (`FieldError(field, "free text")`) keep
the code "invalid" and are shown as written.

The SFU keeps its own tree (`sfu.errors`): it imports nothing of this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "REASONS",
    "BadRequest",
    "Conflict",
    "FieldError",
    "Forbidden",
    "N_",
    "NotFound",
    "PayloadTooLarge",
    "SfuUnavailable",
    "TooManyRequests",
    "Unauthorized",
    "UnsupportedMediaType",
    "ValidationFailed",
    "VcsError",
]


def N_(msgid: str) -> str:
    """Marks an English message id for the translation catalogues; translated where it is shown."""
    return msgid


# Field reasons by code: the English template, filled with the error's params.
REASONS: dict[str, str] = {
    "required": N_("is required"),
    "empty": N_("must not be empty"),
    "number": N_("must be a number"),
    "whole_number": N_("must be a whole number"),
    "between": N_("must be between {low} and {high}"),
    "one_of": N_("must be one of {choices}"),
    "date_format": N_("enter the date as dd/mm/yyyy"),
    "time_format": N_("enter the time as HH:MM"),
    # accounts (vcs.users, vcs.api_tokens)
    "username_format": N_("2-64 characters: lowercase letters, digits, . _ -"),
    "too_short": N_("at least {min} characters"),
    "too_long": N_("at most {max} characters"),
    "taken": N_("already taken"),
    "unknown_province": N_("unknown province code {province!r}"),
    "province_scope": N_("only organizers are scoped to a province"),
    # link profile CSV (vcs.link_csv)
    "missing_columns": N_("missing columns: {columns}"),
    "unknown_endpoint_id": N_("unknown endpoint id {endpoint_id!r}"),
    "endpoint_twice": N_("endpoint {endpoint_id} appears twice"),
    "no_rows": N_("no rows"),
    # IT contacts (vcs.contacts)
    "phone_format": N_("a Vietnamese phone number: a mobile of 10 digits or a landline of 11, from 0 or +84"),
    "contact_name_length": N_("a name of at most {max} characters on one line"),
    # meetings (scheduler.meeting, scheduler.recurrence, scheduler.booking)
    "title_too_long": N_("must be at most {max} characters (has {length})"),
    "single_line": N_("must be a single line without control characters"),
    "in_future": N_("must be in the future"),
    "within_5_years": N_("must be within 5 years from now"),
    "duration_range": N_("must be between 5 minutes and 12 hours"),
    "whole_minutes": N_("must be a whole number of minutes"),
    "not_selected_by_rule": N_("the start date is not one the rule selects"),
    "until_before_start": N_("UNTIL is before the start"),
    "count_range": N_("COUNT must be between 1 and {max}, got {value}"),
    "interval_range": N_("INTERVAL must be between 1 and {max}, got {value}"),
    "all_cancelled": N_("every occurrence is cancelled"),
    "no_province": N_("must list at least one province"),
    "no_commune": N_("must list at least one commune"),
    "province_twice": N_("lists a province twice"),
    "commune_twice": N_("lists a commune twice"),
    "unknown_provinces": N_("unknown province code(s): {codes}"),
    "unknown_communes": N_("unknown commune code(s): {codes}"),
    "unknown_endpoint": N_("unknown endpoint {endpoint_id!r}"),
    "names_no_commune": N_("names no commune"),
    "series_started": N_("a series under way keeps its start; cancel it and book anew"),
    "ended": N_("has already ended"),
    "not_an_occurrence": N_("is not an occurrence of this meeting"),
}


@dataclass(frozen=True)
class FieldError:
    """What is wrong with one input: `reason` in English, `code` and `params` to translate it.

    A CSV row's error names its `line` (params "line") and, for a bad value, its
    `column` (params "column"); the English reason then starts with the column.
    """

    field: str
    reason: str
    code: str = "invalid"
    params: Mapping[str, object] = field(default_factory=dict)

    @classmethod
    def of(cls, name: str, code: str, /, **params: object) -> FieldError:
        return cls(name, REASONS[code].format(**params), code, params)

    def at_line(self, line: int) -> FieldError:
        """This value's error as the error of CSV line `line`, column `self.field`."""
        return FieldError(f"line {line}", f"{self.field} {self.reason}", self.code, {**self.params, "line": line, "column": self.field})

    def as_json(self) -> dict:
        return {"field": self.field, "reason": self.reason, "code": self.code}


class VcsError(Exception):
    status = 400
    code = "bad_request"

    def __init__(self, message: str, *, code: str | None = None, params: Mapping[str, object] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.params = dict(params or {})

    def body(self) -> dict:
        return {"error": self.message, "code": self.code}


class BadRequest(VcsError):
    """Unreadable input: not JSON, not an object (codes bad_json, not_an_object)."""


class ValidationFailed(VcsError):
    status = 422
    code = "invalid"

    def __init__(self, errors: list[FieldError] | FieldError, message: str = "invalid input") -> None:
        super().__init__(message)
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)

    def body(self) -> dict:
        return {**super().body(), "fields": [e.as_json() for e in self.errors]}


class Unauthorized(VcsError):
    """No or bad credentials."""

    status = 401
    code = "unauthorized"


class Forbidden(VcsError):
    """Authenticated, but not allowed (code csrf: a form without this session's token)."""

    status = 403
    code = "forbidden"


class NotFound(VcsError):
    status = 404
    code = "not_found"


class Conflict(VcsError):
    status = 409
    code = "conflict"

    def __init__(self, message: str, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.details = details or []

    def body(self) -> dict:
        return {**super().body(), "conflicts": self.details}


class PayloadTooLarge(VcsError):
    status = 413
    code = "too_large"

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit} bytes", params={"limit": limit})
        self.limit = limit


class UnsupportedMediaType(VcsError):
    status = 415
    code = "unsupported_media_type"


class TooManyRequests(VcsError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message, params={"seconds": retry_after})
        self.retry_after = retry_after


class SfuUnavailable(VcsError):
    """An SFU node could not be reached or refused an order (open a room, hand the floor)."""

    status = 502
    code = "sfu_unavailable"
