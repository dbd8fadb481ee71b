"""The API contract as the sandbox enforces it: who may call, what a body may hold, how errors look.

A client that breaks a rule here would also break against the real API, or depends on behaviour
the docs do not promise. The sandbox answers such a request the way the API would (400, 401, 403,
415) and the caller records the problem, so a test can assert that none occurred.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from aiohttp import web

__all__ = [
    "ALLOWED_FIELDS",
    "BadRequest",
    "auth_problem",
    "error",
    "read_update",
    "refuse",
    "validate_update",
]

_PLATFORM_KEY_PREFIX = "sk_user_"

_STRING_FIELDS = frozenset(
    {
        "firstName",
        "lastName",
        "companyName",
        "jobTitle",
        "phone",
        "linkedinUrl",
        "city",
        "state",
        "country",
    }
)
ALLOWED_FIELDS = _STRING_FIELDS | {"tags", "customFields"}

_UNAUTHORIZED = {"error": "Unauthorized", "message": "Invalid or missing API key", "code": 401}
_FORBIDDEN = {
    "error": "Forbidden",
    "message": "You don't have permission to access this resource",
    "code": 403,
}


def error(status: int, code: str, message: str) -> web.Response:
    """An error answer in the body shape the leads endpoints use."""
    return web.json_response(
        {"success": False, "error": {"code": code, "message": message}}, status=status
    )


class BadRequest(Exception):
    """The request broke the API contract; `answer()` is what the API would say."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def answer(self) -> web.Response:
        return error(self.status, self.code, self.message)


def _invalid(message: str) -> BadRequest:
    return BadRequest(400, "VALIDATION_ERROR", message)


def auth_problem(request: web.Request) -> str | None:
    """A contract problem with the auth headers that the API may still accept."""
    if "X-Api-Key" in request.headers and "Authorization" in request.headers:
        return "sent both X-Api-Key and Authorization"
    return None


def refuse(request: web.Request, api_key: str) -> web.Response | None:
    """The 401 or 403 answer for a request without the right key, or None to let it through."""
    presented: list[str] = []
    x_api_key = request.headers.get("X-Api-Key")
    if x_api_key is not None:
        presented.append(x_api_key)
    authorization = request.headers.get("Authorization")
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        presented.append(token.strip() if scheme.lower() == "bearer" else "")
    # aiohttp decodes header bytes with surrogateescape; encode them back the same way.
    expected = api_key.encode()
    if not presented or not all(
        hmac.compare_digest(key.encode("utf-8", "surrogateescape"), expected) for key in presented
    ):
        return web.json_response(_UNAUTHORIZED, status=401)
    if api_key.startswith(_PLATFORM_KEY_PREFIX) and not request.headers.get("X-Workspace-Id"):
        return web.json_response(_FORBIDDEN, status=403)
    return None


def _reject_constant(name: str) -> Any:
    # json.loads accepts NaN and Infinity, which are not JSON.
    raise ValueError(f"{name} is not valid JSON")


async def read_update(request: web.Request) -> dict[str, Any]:
    """Read and check a PATCH body; raise `BadRequest` with the API's answer if it is not one."""
    if request.content_type != "application/json":
        raise BadRequest(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            f"Content-Type must be application/json, got {request.content_type}",
        )
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise BadRequest(413, "PAYLOAD_TOO_LARGE", "Body is too large") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _invalid("Body is not valid UTF-8") from exc
    try:
        body = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise _invalid("Body is not valid JSON") from exc
    return validate_update(body)


def validate_update(body: object) -> dict[str, Any]:
    """Check a decoded body against the update contract; return it as a dict."""
    if not isinstance(body, dict):
        raise _invalid("Body must be a JSON object")
    if "email" in body:
        raise _invalid("Email cannot be changed after creation")
    if not body:
        raise _invalid("Body must set at least one field")
    for key, value in body.items():
        _check_field(key, value)
    return body


def _check_field(key: str, value: object) -> None:
    if key in _STRING_FIELDS:
        if not isinstance(value, str):
            raise _invalid(f"Field '{key}' must be a string")
    elif key == "tags":
        if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
            raise _invalid("Field 'tags' must be an array of strings")
    elif key == "customFields":
        if not isinstance(value, dict):
            raise _invalid("Field 'customFields' must be an object")
        for name, item in value.items():
            if item is not None and not isinstance(item, str | int | float | bool):
                raise _invalid(
                    f"Field 'customFields.{name}' must be a string, number, boolean or null"
                )
    else:
        raise _invalid(f"Unknown field '{key}'; allowed: {', '.join(sorted(ALLOWED_FIELDS))}")
