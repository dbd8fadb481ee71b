"""The TLS context of a job: the system's certificate authorities and those that `SSL_CERT_FILE`
and `SSL_CERT_DIR` name, read as the job starts (not when aiohttp was imported).

OpenSSL passes over a variable that names nothing it can read, and every request would then fail
its certificate check, one row after another. So a variable that is set must name a file of
certificates (`SSL_CERT_FILE`) or folders (`SSL_CERT_DIR`, separated by `:`), or the job does
not start: exit 2, one line naming the variable and the path, as curl stops naming its CA file.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from pathlib import Path

from .errors import ConfigError
from .printable import escape


def tls_context(environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """A context that verifies servers against the authorities the system and the environment
    name; `ConfigError` when `SSL_CERT_FILE` or `SSL_CERT_DIR` names what cannot be read."""
    env = os.environ if environ is None else environ
    context = ssl.create_default_context()
    if file := env.get("SSL_CERT_FILE", "").strip():
        try:
            context.load_verify_locations(cafile=file)
        except ssl.SSLError:
            raise ConfigError(_problem("SSL_CERT_FILE", file, "holds no certificate")) from None
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise ConfigError(_problem("SSL_CERT_FILE", file, f"cannot be read ({why})")) from None
    for folder in env.get("SSL_CERT_DIR", "").split(os.pathsep):
        if folder.strip() and not Path(folder.strip()).is_dir():
            raise ConfigError(_problem("SSL_CERT_DIR", folder.strip(), "is no folder"))
    return context


def _problem(variable: str, path: str, what: str) -> str:
    wanted = "a file of PEM certificates" if variable == "SSL_CERT_FILE" else "folders of them"
    return f"{variable}: {escape(path)} {what}; name {wanted}, or unset {variable}"
