"""Which HTTP proxy a job sends through, where that came from, and how it is shown.

The environment is read as curl and aiohttp (`trust_env=True`) read it: `HTTPS_PROXY` for an
`https://` base URL, `HTTP_PROXY` for `http://`, else `ALL_PROXY` (as curl), either spelling (the
lowercase one wins, as in Python's `urllib`), and `NO_PROXY` names the hosts reached directly, by
curl's rules (`no_proxy_names`). Loopback is no exception: `NO_PROXY` must name it. Uppercase
`HTTP_PROXY` is read, as aiohttp and requests read it (curl does not: `docs/proxies.md`). The
`proxy` setting (`--proxy`, `BULK_UPDATER_PROXY`) replaces all of them; an empty one means no
proxy, as curl's `--proxy ""`. A proxy is shown only without its user and password
(`Proxy.shown`), and its login goes as curl sends it: UTF-8, in Base64 (`Proxy.authorization`).
"""

from __future__ import annotations

import base64
import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from yarl import URL

from .answers import Redactor
from .urls import hide_password

#: Where the `proxy` setting is said to come from in messages: its flag, or its variable.
SETTING: Final = "--proxy"
SETTING_VARIABLE: Final = "BULK_UPDATER_PROXY"
_LOOPBACK_NAMES: Final = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
#: What separates the entries of `NO_PROXY`: commas, white space, or both.
_SEPARATORS: Final = re.compile(r"[,\s]+")
#: Quotes around a value (from a `.env` file, say) that are no part of the URL.
_QUOTES: Final = frozenset("\"'")


@dataclass(frozen=True, slots=True)
class Proxy:
    """The proxy of a job: its URL (without its login), where it was found, and its login."""

    url: URL
    source: str  # "--proxy", "HTTPS_PROXY", "https_proxy" ...
    user: str | None = None
    password: str | None = None

    @classmethod
    def at(cls, url: URL, source: str) -> Proxy:
        """The proxy `url` names, its login taken out of it (aiohttp would send it Latin-1)."""
        return cls(url.with_user(None), source, url.user, url.password)

    @property
    def shown(self) -> str:
        """The URL as it may be printed: scheme, host and port, no user or password (and by
        the rule every shown URL follows, `http://***` should it hold more than ASCII)."""
        return hide_password(str(self.url.with_user(None).with_path("")))

    @property
    def secrets(self) -> tuple[str, ...]:
        """What of its login a proxy may echo: the password, the user (a token, for some
        proxies; a name of 3 letters or fewer is taken for a name), `user:password`, and its
        Base64 as `Proxy-Authorization` carries it."""
        if not self.with_login:
            return ()
        user, password = self.user or "", self.password or ""
        login = f"{user}:{password}"
        named = user if len(user) >= Redactor.SHORT else ""
        return tuple(s for s in (password, named, login, self._encoded) if s)

    @property
    def authorization(self) -> str | None:
        """The `Proxy-Authorization` header's value, None without a login: UTF-8 as curl sends
        it, so a login with any character goes, and goes as the proxy knows it from curl."""
        return f"Basic {self._encoded}" if self.with_login else None

    @property
    def _encoded(self) -> str:
        return base64.b64encode(f"{self.user or ''}:{self.password or ''}".encode()).decode()

    @property
    def with_login(self) -> bool:
        return self.user is not None or self.password is not None

    def __str__(self) -> str:
        return f"the proxy {self.shown} (from {self.source})"


def is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host.lower() in _LOOPBACK_NAMES:
        return True
    address = _address(host.strip("[]"))
    return address is not None and address.is_loopback


def proxy_problem(value: str) -> str:
    """Why `value` cannot be a proxy URL, in words that never repeat it; "" when it can."""
    if _QUOTES.intersection(value.strip()[:1] + value.strip()[-1:]):
        return "is not a URL (it is in quotes: remove them); give http://HOST:PORT"
    try:
        url = _as_url(value)
    except ValueError:
        return "is not a URL; give http://HOST:PORT"
    if url.scheme != "http":
        return (
            f"a {url.scheme}:// proxy is not supported; give the proxy's http:// URL "
            "(https requests still go through it encrypted, by CONNECT)"
        )
    if not url.host or url.path not in ("", "/") or url.query_string or url.fragment:
        return "must be just http://[USER:PASSWORD@]HOST:PORT"
    return ""


def proxy_for(
    base_url: str, setting: str | None, environ: Mapping[str, str] | None = None
) -> Proxy | None:
    """The proxy requests to `base_url` go through, or None for a direct connection (an empty
    `setting` is one, whatever the environment says).

    Raises ValueError with a message naming the setting or variable when it is no proxy URL
    (its value is not repeated: it may hold a password).
    """
    env = os.environ if environ is None else environ
    if setting is not None:
        if not setting.strip():
            return None
        # The setting's value is its variable's when that holds the same URL.
        given = env.get(SETTING_VARIABLE, "").strip() == setting.strip()
        source = SETTING_VARIABLE if given else SETTING
        if problem := proxy_problem(setting):
            raise ValueError(f"{source}: {problem}")
        return Proxy.at(_as_url(setting), source)
    target = URL(base_url)
    found = _scheme_variable(env, target.scheme)
    if found is None:
        return None
    name, value = found
    no_proxy = _variable(env, "no_proxy")
    if no_proxy is not None and no_proxy_names(target.host or "", no_proxy[1]):
        return None
    problem = proxy_problem(value)
    if problem:
        raise ValueError(f"{name}: {problem}, or unset it")
    return Proxy.at(_as_url(value), name)


def clear_text_problem(base_url: str, proxy: Proxy) -> str:
    """Why requests to `base_url` may not go through `proxy`, in one line; "" when they may.

    An `http://` base URL is on loopback (`settings.py` refuses others), and the key goes to
    it in clear text: through a proxy elsewhere, it would cross the network so (and reach the
    proxy's loopback, not this machine's).
    """
    target = URL(base_url)
    if target.scheme != "http" or is_loopback(proxy.url.host):
        return ""
    if proxy.source in (SETTING, SETTING_VARIABLE):
        fix = f"give a proxy on this machine in {proxy.source}, or none"
    else:
        fix = f"add {target.host} to NO_PROXY (or give a proxy on this machine with --proxy)"
    return (
        f"an http:// base URL is not sent through {proxy}: the key would cross the network "
        f"in clear text; {fix}"
    )


def bypassed_by(base_url: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The variable (`NO_PROXY`) that sends `base_url` around a proxy named in the environment,
    for `-v` to say why no proxy is used; None when no proxy variable applies."""
    env = os.environ if environ is None else environ
    if _scheme_variable(env, URL(base_url).scheme) is None:
        return None
    no_proxy = _variable(env, "no_proxy")
    return no_proxy[0] if no_proxy is not None else None


def no_proxy_names(host: str, no_proxy: str) -> bool:
    """Whether `no_proxy` (the value of `NO_PROXY`) names `host`, as curl reads it.

    Entries are separated by commas or white space; `*` alone names every host. A name matches
    itself and the names under it (`sendkit.ai` and `.sendkit.ai` both name `api.sendkit.ai`,
    never `notsendkit.ai`), in any case, a trailing dot aside. An IP address matches only the
    same address written the same way (`::1`), or a network that holds it (`127.0.0.0/8`,
    `fd00::/8`). An entry with a port names no host: curl matches none.
    """
    if no_proxy.strip() == "*":
        return True
    name = host.strip("[]").rstrip(".").lower()
    address = _address(name)
    for entry in filter(None, _SEPARATORS.split(no_proxy.lower())):
        if address is None:
            domain = entry.strip(".")
            if domain and (name == domain or name.endswith("." + domain)):
                return True
        elif "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:  # no network: it names nothing
                continue
        elif entry == name:
            return True
    return False


def _address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _scheme_variable(env: Mapping[str, str], scheme: str) -> tuple[str, str] | None:
    """(name, value) of the variable naming the proxy for `scheme`: its own, else `ALL_PROXY`."""
    return _variable(env, f"{scheme}_proxy") or _variable(env, "all_proxy")


def _variable(env: Mapping[str, str], lower: str) -> tuple[str, str] | None:
    """(name, value) of `lower` or its uppercase spelling, the lowercase first; empty is unset."""
    for name in (lower, lower.upper()):
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def _as_url(value: str) -> URL:
    """`host:port` is read as `http://host:port`, as curl reads it."""
    text = value.strip()
    return URL(text if "://" in text else "http://" + text)
