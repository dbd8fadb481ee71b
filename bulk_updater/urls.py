"""How a URL that may hold a password is shown: without its credentials, however it parses.

A password with a `/`, `?`, `#` or `@` (common in base64 cloud keys) that is not
percent-encoded makes `urllib` read part of it as the host, the port or the path. What a URL is
shown as never depends on that reading: everything before its last `@` is credentials, and so is
every query value from the first `password=` on. The same pieces are taken out of what a library
says about the URL (`Port could not be cast to integer value as 'S3cr3t'`).

Those rules read only ASCII. A URL holding anything else after its scheme (a space, a control,
a full-width `@` (U+FF20) that `urllib` folds into `@` by NFKC, an invisible character) is shown as
`scheme://***`, and nothing a library says about it is repeated.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Final
from urllib.parse import unquote, unquote_plus

HIDDEN: Final = "***"
#: Said instead of what a library said about a URL that is shown as `scheme://***`.
UNSHOWN: Final = "not shown: the URL holds a space, a control or a character that is not ASCII"
#: A scheme as RFC 3986 spells it: text before `://` that is not one is no scheme.
_SCHEME: Final = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
#: Text the rules below read as a library does: printable ASCII, which none folds or drops.
_PLAIN: Final = re.compile(r"[!-~]*")
#: What ends a user name: past one of these, the text before the last `@` is no user name.
_NOT_USER: Final = re.compile(r"[/?#;&=]")
#: Where `urllib` may cut hidden text into a host, a port, a path or query values.
_CUTS: Final = re.compile(r"[:/?#@&;=]")
#: What `urllib` refuses to find in a host once NFKC folded it, and what a URL is cut at.
_FOLDED_CUTS: Final = ":/?#@&;=[]%\\"
#: What separates a query's `name=value` pairs (as `urllib` reads them).
_PAIRS: Final = re.compile(r"[&;]")
#: A piece of one character is in any message: it stays.
_SHORTEST_PIECE: Final = 2


def hide_password(url: str) -> str:
    """`url` as it may be shown: `redis://user:***@host:6379/0`, `unix:///s.sock?password=***`.

    A user name stays only when it is plainly one; else all before the last `@` is `***`.
    """
    return _split(url)[0]


def scrub(text: str, url: str) -> str:
    """`text` (what a library said about `url`) without any piece of the URL's credentials,
    in any case (`urllib` lower-cases what it reads as a host name); `UNSHOWN` when the URL
    is shown as `scheme://***`, since its text may be quoted folded or cut anywhere."""
    if _opaque(url):
        return UNSHOWN
    secrets = _secrets(url)
    if not secrets:
        return text
    return re.sub("|".join(map(re.escape, secrets)), HIDDEN, text, flags=re.IGNORECASE)


def _secrets(url: str) -> list[str]:
    """The texts of `url` that `hide_password` hides, whole, cut where `urllib` may cut them,
    and percent-decoded (as a path or as a query), longest first: to take out of a message."""
    hidden = _split(url)[1]
    found = {*hidden, *(piece for part in hidden for piece in _CUTS.split(part))}
    found |= {decode(text) for text in found for decode in (unquote, unquote_plus)}
    return sorted((s for s in found if len(s) >= _SHORTEST_PIECE), key=len, reverse=True)


def _split(url: str) -> tuple[str, list[str]]:
    """`url` as it may be shown, and the texts left out."""
    scheme, sep, rest = url.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        scheme, sep, rest = "", "", url
    if _opaque(url):
        return scheme + sep + HIDDEN, [rest]
    shown, hidden, done = [scheme + sep], [], 0
    for start, end in _merged(_credentials(rest)):
        shown += [rest[done:start], HIDDEN]
        hidden.append(rest[start:end])
        done = end
    shown.append(rest[done:])
    return "".join(shown), hidden


def _opaque(url: str) -> bool:
    """Whether the rules that find credentials may misread `url`: it holds more than printable
    ASCII after its scheme. Text with no scheme is taken for such a URL only when NFKC folds a
    character of it into one a URL is cut at (U+FF20 into `@`), so that a path or a column name
    such as `café` or `Nº` is not."""
    scheme, sep, rest = url.partition("://")
    if sep and _SCHEME.fullmatch(scheme):
        return not _PLAIN.fullmatch(rest)
    folded = unicodedata.normalize("NFKC", url)
    return any(folded.count(cut) > url.count(cut) for cut in _FOLDED_CUTS)


def _credentials(rest: str) -> list[tuple[int, int]]:
    """Where `rest` (a URL after its `scheme://`) may hold credentials: before its last `@`
    (after the user name, when it is plainly one), and from its first query password on
    (a `&` or `#` in a password that is not percent-encoded would show the rest of it)."""
    found = []
    at = rest.rfind("@")
    if at >= 0:
        user, colon, _ = rest[:at].partition(":")
        found.append((len(user) + 1 if colon and not _NOT_USER.search(user) else 0, at))
    start = rest.find("?") + 1
    for pair in _PAIRS.split(rest[start:]) if start else ():
        name = pair.partition("=")[0]
        if "pass" in unquote_plus(name).lower():
            shows_name = name.lower() == "password" and "=" in pair
            found.append((start + len(name) + 1 if shows_name else start, len(rest)))
            break
        start += len(pair) + 1
    return found


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """`spans` in order, overlapping ones made one, empty ones left out."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(span for span in spans if span[0] < span[1]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
