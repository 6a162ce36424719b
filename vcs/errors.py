"""The project's exception tree, translated to HTTP in one place (`web.errors`).

    VcsError
    ├── ValidationFailed   422  fields: list of (field, reason)
    ├── NotFound           404
    ├── Unauthorized       401  no or bad credentials
    ├── Forbidden          403  authenticated, but not allowed
    ├── Conflict           409  details: what it collides with
    └── TooManyRequests    429  retry_after seconds
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "Conflict",
    "FieldError",
    "Forbidden",
    "NotFound",
    "TooManyRequests",
    "Unauthorized",
    "ValidationFailed",
    "VcsError",
]


class VcsError(Exception):
    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def body(self) -> dict:
        return {"error": self.message}


@dataclass(frozen=True)
class FieldError:
    field: str
    reason: str


class ValidationFailed(VcsError):
    status = 422

    def __init__(self, errors: list[FieldError] | FieldError, message: str = "invalid input") -> None:
        super().__init__(message)
        self.errors = [errors] if isinstance(errors, FieldError) else list(errors)

    def body(self) -> dict:
        return {"error": self.message, "fields": [{"field": e.field, "reason": e.reason} for e in self.errors]}


class NotFound(VcsError):
    status = 404


class Unauthorized(VcsError):
    status = 401


class Forbidden(VcsError):
    status = 403


class Conflict(VcsError):
    status = 409

    def __init__(self, message: str, details: list[dict] | None = None) -> None:
        super().__init__(message)
        self.details = details or []

    def body(self) -> dict:
        return {"error": self.message, "conflicts": self.details}


class TooManyRequests(VcsError):
    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after
