"""The base URL a job sends to: an http(s) origin, plain http only to loopback, shown safely.

Only the origin is kept (`https://api.sendkit.ai`): a path, a query or a fragment is refused
rather than dropped, since what follows the host is where a pasted key or token would sit. A
message never repeats the URL whole: it shows it without its password and cut before its path,
and a key pasted into it is hidden too.
"""

from __future__ import annotations

import re

from yarl import URL

from .proxy import is_loopback
from .urls import HIDDEN, hide_password, scrub


def origin(value: str, key: str | None = None) -> str:
    """The base URL `value` as its origin, or `ValueError` saying why not, `key` hidden."""
    try:
        return _origin(value)
    except ValueError as exc:
        # A key pasted into the URL (`/?api_key=…`, or as its host) is never repeated.
        message = str(exc)
        if key:
            message = re.sub(re.escape(key), HIDDEN, message, flags=re.I)
        raise ValueError(message) from None


def _origin(value: str) -> str:
    """The base URL `value` as its origin (`https://api.sendkit.ai`), or `ValueError` saying why
    not, showing it without its password, path, query or fragment (each may hold a secret)."""
    shown = _shown_origin(value)
    try:
        url = URL(value)
    except ValueError as exc:
        problem = scrub(str(exc), value)
        message = f"{shown!r} is not a URL like https://api.sendkit.ai ({problem})"
        raise ValueError(message) from None
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"{shown!r} is not an http(s) URL like https://api.sendkit.ai")
    if url.scheme == "http" and not is_loopback(url.host):
        raise ValueError(
            f"{shown!r} is plain http: the key would cross the network in clear text; "
            "use https (plain http is allowed only for loopback)"
        )
    login = url.raw_user is not None or url.raw_password is not None  # `http://:pw@host` too
    if url.path not in ("", "/") or url.query_string or url.fragment or login:
        raise ValueError(
            f"{shown!r} must be just scheme, host and port, with no path (nothing after the "
            "host and port is shown)"
        )
    return str(url.origin())


def _shown_origin(value: str) -> str:
    """`value` as a message may show it: no password (`hide_password`), and cut before its
    path, query or fragment."""
    shown = hide_password(value)
    scheme, sep, rest = shown.partition("://")
    if not sep:
        scheme, rest = "", shown
    return scheme + sep + re.split(r"[/?#]", rest, maxsplit=1)[0]
