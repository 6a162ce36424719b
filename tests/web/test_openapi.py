"""The OpenAPI document against the running app: every route described, every answer documented.

The generated requests come from the document itself (hypothesis, and
`from_schema` below for the subset of JSON Schema the document uses): valid and
invalid parameters and bodies, with and without credentials of each role. Each answer must be a status the operation
documents, and never a 5xx.

`make test` draws the same cases every run, so a failure there is a change in
the code, not the luck of the draw; `VCS_TEST_EXPLORE=1` draws new ones (and
`VCS_TEST_EXAMPLES=N` more of them) to look for what those miss.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import time
from urllib.parse import quote

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.routing import Mount, Route, WebSocketRoute

from tests.conftest import TEST_SECRET
from vcs.agent_tokens import mint_agent_token

EXAMPLES_PER_OPERATION = int(os.environ.get("VCS_TEST_EXAMPLES", "25"))
EXPLORE = os.environ.get("VCS_TEST_EXPLORE") == "1"
METHODS = ("get", "post", "put", "patch", "delete")


def api_routes(app) -> set[tuple[str, str]]:
    """(path, method) of every route mounted under /api/v1."""
    found = set()
    for mount in app.routes:
        if not (isinstance(mount, Mount) and mount.path == "/api/v1"):
            continue
        for route in mount.routes:
            if isinstance(route, WebSocketRoute):
                found.add((f"/api/v1{route.path}", "get"))
            elif isinstance(route, Route):
                found.update((f"/api/v1{route.path}", m.lower()) for m in route.methods if m != "HEAD")
    return found


async def test_every_api_route_is_described(live_server, http):
    document = (await http.get("/api/v1/openapi.json")).json()
    described = {(path, method) for path, item in document["paths"].items() for method in item if method in METHODS}
    routes = api_routes(live_server.app)
    assert len(routes) > 30
    assert routes - described == set(), "routes missing from the OpenAPI document"
    assert {d for d in described if d[0].startswith("/api/v1/") and d[0] != "/api/v1/openapi.json"} - routes == set(), "described but not served"
    for path, method in routes:
        operation = document["paths"][path][method]
        assert operation["summary"] and operation["responses"]
        declared = {p["name"] for p in operation.get("parameters", []) if p["in"] == "path"}
        assert declared == set(_path_names(path)), f"{method} {path}: path parameters"
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")):  # every error answer has a described body
                assert response["content"]["application/json"]["schema"]["$ref"].startswith("#/components/schemas/"), (path, status)


def _path_names(path: str) -> list[str]:
    return [part[1:-1].split(".")[0] for part in path.replace("}.", "}/.").split("/") if part.startswith("{")]


def inline_refs(node, schemas: dict):
    """The schema with its $refs replaced by what they name."""
    if isinstance(node, dict):
        if "$ref" in node:
            return inline_refs(copy.deepcopy(schemas[node["$ref"].rsplit("/", 1)[1]]), schemas)
        return {k: inline_refs(v, schemas) for k, v in node.items()}
    if isinstance(node, list):
        return [inline_refs(v, schemas) for v in node]
    return node


TIMES = st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat())


def from_schema(schema: dict) -> st.SearchStrategy:
    """Values that satisfy `schema` (types, enum, required, properties, bounds, allOf): valid input."""
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "allOf" in schema:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for part in schema["allOf"]:
            merged = {**part, **merged, "properties": {**part.get("properties", {}), **merged.get("properties", {})}}
        return from_schema(merged)
    kinds = schema.get("type", "object")
    if isinstance(kinds, list):
        return st.one_of([from_schema({**schema, "type": kind}) for kind in kinds])
    if kinds == "null":
        return st.none()
    if kinds == "boolean":
        return st.booleans()
    if kinds in ("integer", "number"):
        low, high = schema.get("minimum"), schema.get("maximum")
        ints = st.integers(min_value=low, max_value=high)
        return ints if kinds == "integer" else ints | st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    if kinds == "string":
        return TIMES if schema.get("format") == "date-time" else st.text(max_size=30)
    if kinds == "array":
        return st.lists(from_schema(schema.get("items", {"type": "string"})), max_size=5)
    properties = schema.get("properties", {})
    required = set(schema.get("required", []))
    return st.fixed_dictionaries(
        {name: from_schema(sub) for name, sub in properties.items() if name in required},
        optional={name: from_schema(sub) for name, sub in properties.items() if name not in required},
    )


# a few values that exist in the seeded registry, mixed with anything at all but the dot segments
# "." and "..", which a client removes from the path (RFC 3986 5.2.4): the request then names another route
PATH_VALUES = st.one_of(
    st.sampled_from(["00070", "00004", "hall-01", "central", "01", "79", "2030-01-06T01:00:00Z", "current"]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="/?#%"), min_size=1, max_size=30).filter(
        lambda value: value not in (".", "..")
    ),
)
ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=10,
)


def operation_strategy(path: str, method: str, operation: dict, schemas: dict, credentials: dict[str, dict]):
    params = operation.get("parameters", [])
    path_params = {p["name"]: PATH_VALUES for p in params if p["in"] == "path"}
    query = {
        p["name"]: st.one_of(from_schema(inline_refs(p["schema"], schemas)).map(lambda v: v if isinstance(v, str) else json.dumps(v)), st.text(max_size=20))
        for p in params
        if p["in"] == "query"
    }
    body = st.none()
    content_type = st.just(None)
    if "requestBody" in operation:
        [(media, spec)] = operation["requestBody"]["content"].items()
        if media == "application/json":
            body = st.one_of(from_schema(inline_refs(spec["schema"], schemas)), ANY_JSON).map(lambda v: json.dumps(v).encode())
        else:
            body = st.one_of(st.text(max_size=200).map(str.encode), st.binary(max_size=200))
        content_type = st.sampled_from([media, media, "text/plain"])
    schemes = [next(iter(s)) for s in operation.get("security", [])]
    auth = st.sampled_from([None, "Bearer garbage", *(credentials[s] for s in schemes for _ in range(4))]).flatmap(
        lambda c: st.sampled_from(list(c.values())) if isinstance(c, dict) else st.just(c)
    )
    return st.fixed_dictionaries(
        {
            "path": st.fixed_dictionaries(path_params),
            "query": st.fixed_dictionaries({}, optional=query),
            "body": body,
            "content_type": content_type,
            "auth": auth,
        }
    )


def send(client: httpx.Client, path: str, method: str, case: dict) -> int:
    url = path
    for name, value in case["path"].items():
        url = url.replace("{" + name + "}", quote(value, safe=""))
    headers = {}
    if case["auth"]:
        headers["Authorization"] = case["auth"]
    if case["content_type"]:
        headers["Content-Type"] = case["content_type"]
    # streamed: a live stream that opens is not read to its end
    with client.stream(method.upper(), url, params=case["query"], content=case["body"], headers=headers) as response:
        return response.status_code


def check_operation(client: httpx.Client, path: str, method: str, operation: dict, cases, statuses: set[int]) -> None:
    documented = {int(s) for s in operation["responses"]}

    @settings(
        max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None, derandomize=not EXPLORE, suppress_health_check=list(HealthCheck)
    )
    @given(case=cases)
    def answers_as_documented(case: dict) -> None:
        status = send(client, path, method, case)
        statuses.add(status)
        assert status < 500, f"{method.upper()} {path} answered {status} to {case}"
        assert status in documented, f"{method.upper()} {path} answered undocumented {status} to {case}"

    answers_as_documented()


def check_operations(base_url: str, document: dict, credentials: dict[str, dict]) -> dict[str, set[int]]:
    seen: dict[str, set[int]] = {}
    schemas = document["components"]["schemas"]
    with httpx.Client(base_url=base_url, timeout=30) as client:
        for path, item in document["paths"].items():
            if not path.startswith("/api/v1/"):
                continue
            for method, operation in item.items():
                if operation.get("x-websocket"):
                    continue
                statuses = seen.setdefault(f"{method.upper()} {path}", set())
                check_operation(client, path, method, operation, operation_strategy(path, method, operation, schemas, credentials), statuses)
    return seen


async def test_generated_requests_get_documented_answers(live_server, http, mint_token):
    document = (await http.get("/api/v1/openapi.json")).json()
    credentials = {
        "bearer": {role: (await mint_token(*role.split("-")))["Authorization"] for role in ("admin", "ops", "organizer-01", "viewer")},
        "agent": {"00070": f"Bearer {mint_agent_token(TEST_SECRET, '00070', now=time.time())}"},
    }
    # DELETE /auth/token revokes what it is sent: it gets its own tokens, so the others stay valid
    spare = [(await mint_token("viewer"))["Authorization"] for _ in range(EXAMPLES_PER_OPERATION * 2)]
    document["paths"]["/api/v1/auth/token"]["delete"]["security"] = [{"spare": []}]
    credentials["spare"] = {str(i): token for i, token in enumerate(spare)}
    seen = await asyncio.to_thread(check_operations, live_server.url, document, credentials)
    # the generator reached past authentication: successes and refusals of bad input both came back
    every = set().union(*seen.values())
    assert {200, 401, 404, 422} <= every, every
