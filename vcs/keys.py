"""Every Redis key the project uses, with its type and meaning.

All keys start with `vcs:` so a shared Redis can hold other data too.
Functions build per-item keys; constants are singletons.
"""

from __future__ import annotations

PREFIX = "vcs:"

# --- registry -------------------------------------------------------------

# hash of endpoint id => JSON of the endpoint (name, kind, province, link profile); no secrets
ENDPOINTS = PREFIX + "endpoints"
# string counter, incremented on every registry write; readers cache the registry by it
REGISTRY_VERSION = PREFIX + "registry:version"
# hash of endpoint id => "sha256$<hex>" of the endpoint's secret
ENDPOINT_SECRETS = PREFIX + "endpoint-secrets"
# sorted set of endpoint id scored by the epoch seconds of its last heartbeat
PRESENCE = PREFIX + "presence"

# --- authentication -------------------------------------------------------

# hash: "role", "province", "name", "created" of one API token, keyed by the sha256 of the token
def api_token(token_hash: str) -> str:
    return f"{PREFIX}api-token:{token_hash}"


# hash of username => JSON of the user (role, province, argon2 hash, disabled)
USERS = PREFIX + "users"


# string counter of failed agent logins for one endpoint within the current window (expires)
def agent_login_failures(endpoint_id: str) -> str:
    return f"{PREFIX}agent-login-failures:{endpoint_id}"


__all__ = [
    "ENDPOINTS",
    "ENDPOINT_SECRETS",
    "PRESENCE",
    "PREFIX",
    "REGISTRY_VERSION",
    "USERS",
    "agent_login_failures",
    "api_token",
]
