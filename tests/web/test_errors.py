"""How the API answers errors: a stable code beside the message, 413 past a body limit, and a bare 500."""

import httpx
from starlette.routing import Route

from tests.conftest import LiveServer, free_port
from web.app import create_app
from web.requests import MAX_JSON_BYTES


async def test_errors_carry_a_stable_code(http, mint_token):
    headers = await mint_token("admin")
    missing = await http.get("/api/v1/endpoints/99999", headers=headers)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found" and "99999" in missing.json()["error"]
    invalid = await http.get("/api/v1/endpoints?page=x", headers=headers)
    assert invalid.status_code == 422 and invalid.json()["code"] == "invalid"
    assert invalid.json()["fields"] == [{"field": "page", "reason": "must be a whole number", "code": "whole_number"}]
    unauthorized = await http.get("/api/v1/endpoints")
    assert unauthorized.status_code == 401 and unauthorized.json()["code"] == "unauthorized"


async def test_a_json_body_past_the_limit_is_413(http):
    oversized = b'{"username": "' + b"x" * MAX_JSON_BYTES + b'"}'
    response = await http.post("/api/v1/auth/token", content=oversized, headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and response.json()["code"] == "too_large"

    async def chunks():  # no Content-Length: the reader stops at the limit
        for _ in range(MAX_JSON_BYTES // 65536 + 2):
            yield b" " * 65536

    streamed = await http.post("/api/v1/auth/token", content=chunks(), headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and str(MAX_JSON_BYTES) in streamed.json()["error"]


async def test_an_unexpected_api_error_is_a_bare_500_with_the_security_headers(settings, redis):
    async def broken(request):
        raise RuntimeError("secret detail /srv/vcs/state.py")

    port = free_port()
    server = LiveServer(create_app(settings.with_overrides(port=port), mounts=[Route("/broken", broken)]), port)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as client:
            response = await client.get("/broken")
    finally:
        server.stop()
    assert response.status_code == 500 and response.json() == {"error": "internal error", "code": "internal"}
    assert response.headers["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"
