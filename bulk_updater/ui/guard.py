"""The page's doorman: which requests the local server answers at all.

A local server is still a server: any web page the user visits can make the browser send it
requests. So, in this order, before any handler runs:

1. the `Host` must be this server's own loopback address (`127.0.0.1:P`, `localhost:P`,
   `[::1]:P`): a DNS-rebinding page reaches us under its own name and is refused (403) before the
   token is even looked at, so it cannot use the token up;
2. the address opened once carries a fresh random token: it is used once, exchanged for an
   `HttpOnly`, `SameSite=Strict` cookie, and the browser is sent on (by the answer's own page) to
   the same address without it; every other request needs that cookie (403 without it). A
   browser sends a host's cookies to every port of it, so the cookie's name carries the port: a
   second `bulk-updater ui` neither replaces the first one's cookie nor answers to it. The
   token's address opened again (the opener twice, a reload) sends the browser on to the page,
   which lets in a browser that has the cookie and no other;
3. a request that changes something (anything but GET and HEAD) must say it comes from the page
   itself: `Sec-Fetch-Site: same-origin` (or `none`), else an `Origin` equal to the page's.

Each run's cookie would stay in the browser, sent to every port, until the headers grew past
what a server reads (aiohttp's 8190 bytes: every answer a 400). So the cookie lasts 12 hours
from the page's last load, and the answers to the token and to the page expire the cookies of
other runs whose port no longer answers on 127.0.0.1 (a server that is gone). A live one's
cookie is left alone: expiring it would cost its tab a new token for nothing.

No CORS header is ever sent, so no other origin may read an answer; the page's answers also say
it runs only its own files and in no other page's frame.
"""

from __future__ import annotations

import asyncio
import html
import secrets
from collections.abc import Awaitable, Callable
from typing import Final

from aiohttp import web

COOKIE_PREFIX: Final = "bulk_updater_ui_"
TOKEN_PARAM: Final = "token"
#: How long the cookie lasts after the page's last load: a working day and more.
COOKIE_AGE: Final = 12 * 3600
#: How long a port of another run is given to answer: loopback refuses at once.
_PROBE_TIMEOUT: Final = 1.0
_SAFE_METHODS: Final = frozenset({"GET", "HEAD"})
_SAME_SITE: Final = frozenset({"same-origin", "none"})

#: On every answer: the page runs only its own files, in no other page's frame, and its address
#: is never sent elsewhere.
_PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def opener(url: str) -> str:
    """A page that sends the browser to `url` (the address with the token), as Jupyter's does.

    The browser is given this page's path, not `url`: a command's arguments are shown to every
    user of the computer (`ps`), a file of the user's private folder is not.
    """
    shown = html.escape(url, quote=True)
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">\n'
        f'<meta http-equiv="refresh" content="0;url={shown}">\n'
        "<title>bulk-updater</title></head>\n"
        f'<body><p>Opening the page of bulk-updater: <a href="{shown}">go on</a>.</p></body>'
        "</html>\n"
    )


def _refuse(reason: str) -> web.Response:
    return web.Response(status=403, text=f"bulk-updater ui: {reason}\n")


class Guard:
    """The three checks above, as an aiohttp middleware; `port` is set once the server listens.

    `token` is what the printed address carries; `secret` is the cookie's value, never shown.
    """

    def __init__(self) -> None:
        self.token = secrets.token_urlsafe(24)
        self.secret = secrets.token_urlsafe(32)
        self.port: int | None = None
        self._token_used = False

    @property
    def cookie(self) -> str:
        """The cookie's name: this server's port in it (`bulk_updater_ui_8765`)."""
        return f"{COOKIE_PREFIX}{self.port}"

    def hosts(self) -> frozenset[str]:
        """The `Host` values this server answers to."""
        port = self.port
        return frozenset({f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}"})

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        host = request.headers.get("Host", "")
        if self.port is None or host.lower() not in self.hosts():
            return _refuse("this page answers only at its own address (127.0.0.1)")
        token = request.query.get(TOKEN_PARAM)
        if token is not None:
            return await self._exchange(request, token)
        if not self._admitted(request):
            return _refuse(
                "no access: open the address `bulk-updater ui` printed (it works once; "
                "restart it for a new one)"
            )
        if request.method not in _SAFE_METHODS and not _same_origin(request, host):
            return _refuse("a change must come from the page itself")
        answer = await handler(request)
        answer.headers.update(_PAGE_HEADERS)
        if request.path == "/" and not answer.prepared:  # the page loaded: 12 hours more
            self._set_cookie(answer)
            await self._expire_gone(request, answer)
        return answer

    def _admitted(self, request: web.Request) -> bool:
        return secrets.compare_digest(request.cookies.get(self.cookie, ""), self.secret)

    async def _exchange(self, request: web.Request, token: str) -> web.StreamResponse:
        """The one use of the token: a cookie instead, and the address without the token."""
        if not secrets.compare_digest(token, self.token):
            return _refuse("this address is wrong; open the one `bulk-updater ui` printed")
        # A page that moves on by itself, not a 303: a `SameSite=Strict` cookie is not sent on
        # a redirect of a navigation that came from elsewhere (the opener file, another app).
        # This page's own move is same-site, so the cookie goes with it.
        path = html.escape(request.rel_url.path, quote=True)
        answer = web.Response(
            text=f'<!doctype html>\n<meta http-equiv="refresh" content="0;url={path}">\n'
            '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">\n'
            f'<a href="{path}">Open the page</a>\n',
            content_type="text/html",
            headers={**_PAGE_HEADERS, "Cache-Control": "no-store"},
        )
        # Used again (the opener twice, a reload), it gives nothing: the move lets in a browser
        # that has the cookie, as a visit. It cannot be checked here: a navigation from the
        # opener file does not send a `Strict` cookie.
        if not self._token_used:
            self._token_used = True
            self._set_cookie(answer)
        await self._expire_gone(request, answer)
        return answer

    def _set_cookie(self, answer: web.StreamResponse) -> None:
        answer.set_cookie(
            self.cookie,
            self.secret,
            httponly=True,
            samesite="Strict",
            path="/",
            max_age=COOKIE_AGE,
        )

    async def _expire_gone(self, request: web.Request, answer: web.StreamResponse) -> None:
        """Expire the cookies of other runs whose port no longer answers."""
        others = {port: name for name in request.cookies if (port := self._other(name))}
        answers = await asyncio.gather(*(_answers(port) for port in others))
        for name, live in zip(others.values(), answers, strict=True):
            if not live:
                answer.del_cookie(name, path="/")

    def _other(self, name: str) -> int | None:
        """The port in the name of another run's cookie, or None."""
        port = name.removeprefix(COOKIE_PREFIX)
        if port == name or not port.isascii() or not port.isdigit() or len(port) > 5:
            return None
        number = int(port)
        return number if 0 < number < 65536 and number != self.port else None


async def _answers(port: int) -> bool:
    """Whether something listens on 127.0.0.1:`port`."""
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            _, writer = await asyncio.open_connection("127.0.0.1", port)
    except (OSError, TimeoutError):
        return False
    writer.close()
    return True


def _same_origin(request: web.Request, host: str) -> bool:
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None:
        return site in _SAME_SITE
    return request.headers.get("Origin") == f"http://{host}"
