"""The SFU's exception tree, translated to HTTP in one place (``sfu.app``).

::

    SfuError                      500
     +-- BadRequest               400  malformed or hostile SDP, bad JSON
     +-- Unauthorized             401  missing or invalid media token
     +-- Forbidden                403  token for another room/role/resource
     +-- NotFound                 404  unknown room or resource
     +-- MethodNotAllowed         405  e.g. trickle PATCH (not implemented)
     +-- NotAcceptable            406  the offer has no usable codec
     +-- Conflict                 409  floor to an identity that is not publishing
     +-- Gone                     410  a room this node ended (a relay stops pulling it)
     +-- PayloadTooLarge          413  offer body over the limit
     +-- UnsupportedMediaType     415  offer not ``application/sdp``
     +-- TooManyRequests          429  too many signaling requests in flight
     +-- Unavailable              503  draining, at capacity, negotiation timeout
"""

from __future__ import annotations

__all__ = [
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Gone",
    "MethodNotAllowed",
    "NotAcceptable",
    "NotFound",
    "PayloadTooLarge",
    "SfuError",
    "TooManyRequests",
    "Unauthorized",
    "Unavailable",
    "UnsupportedMediaType",
]


class SfuError(Exception):
    status_code = 500

    def __init__(self, reason: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.headers = headers or {}


class BadRequest(SfuError):
    status_code = 400


class Unauthorized(SfuError):
    status_code = 401


class Forbidden(SfuError):
    status_code = 403


class NotFound(SfuError):
    status_code = 404


class Gone(NotFound):
    status_code = 410


class MethodNotAllowed(SfuError):
    status_code = 405


class NotAcceptable(SfuError):
    status_code = 406


class Conflict(SfuError):
    status_code = 409


class PayloadTooLarge(SfuError):
    status_code = 413


class UnsupportedMediaType(SfuError):
    status_code = 415


class TooManyRequests(SfuError):
    status_code = 429


class Unavailable(SfuError):
    status_code = 503
