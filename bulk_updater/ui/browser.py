"""What the user's browser is given to open the page: the opener file, or the address itself.

The opener file (`UiServer.browser_file`) keeps the token out of the browser's command line,
which `ps` shows to every user. But a snap browser (Ubuntu's default Firefox and Chromium) has a
/tmp of its own: it cannot read the file and shows "File not found" (jupyter/notebook#5479). So
has a Flatpak one (`org.mozilla.firefox`, `org.chromium.Chromium`, `com.google.Chrome` ...),
unless it was granted the host's. Such a browser is given the address itself; the terminal
prints it in every case.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import webbrowser
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from .server import UiServer

#: A snap's desktop file is `<snap>_<app>.desktop` (`firefox_firefox.desktop`).
_SNAP_DESKTOP: Final = re.compile(r"[a-z0-9-]+_[A-Za-z0-9.-]+\.desktop")
#: Flatpak's system installation, unless `FLATPAK_SYSTEM_DIR` moves it (as `flatpak` reads it).
_FLATPAK_SYSTEM: Final = "/var/lib/flatpak"
#: `xdg-settings` is a shell script: a few seconds at most, else it is not asked.
_ASK_TIMEOUT: Final = 5.0


def browser_target(server: UiServer, environ: Mapping[str, str] = os.environ) -> str:
    """What `webbrowser.open` is given: the opener file, unless the browser has a /tmp of its
    own (a snap, a Flatpak)."""
    if sandboxed_browser(environ):
        return server.url
    return server.browser_file().as_uri()


def sandboxed_browser(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the browser `webbrowser` runs is a snap or a Flatpak: its command is one, or
    (without `$BROWSER`, which names the one used) the desktop's default browser is one."""
    command = _command()
    if command is not None and sandboxed_command(command, environ):
        return True
    if environ.get("BROWSER"):
        return False
    default = _default_browser(environ)
    return default is not None and sandboxed_desktop_file(default, environ)


def _command() -> str | None:
    """The command of the browser `webbrowser` would run, if it runs one."""
    try:
        controller = webbrowser.get()
    except webbrowser.Error:
        return None
    name = getattr(controller, "name", None)
    return name if isinstance(name, str) else None


def sandboxed_command(command: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `command` (its first word: `$BROWSER` may be given whole) runs a snap or a
    Flatpak: `/snap/bin/firefox`, `flatpak run ...`, or a Flatpak's exported wrapper."""
    try:
        words = shlex.split(command)
    except ValueError:  # an unclosed quote: no command this could run
        return False
    path = shutil.which(words[0], path=environ.get("PATH")) if words else None
    if path is None:
        return False
    real = os.path.realpath(path)
    # /snap/bin/firefox is a link to /usr/bin/snap, which runs the snap of that name.
    if path.startswith("/snap/") or real == "/usr/bin/snap" or Path(real).name == "flatpak":
        return True
    # `exports/bin/org.mozilla.firefox` links to the app's own script, which runs `flatpak run`.
    return any(
        Path(path).parent == root / "exports" / "bin" or Path(real).is_relative_to(root / "app")
        for root in _flatpak_roots(environ)
    )


def sandboxed_desktop_file(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the desktop file `name` (as `xdg-settings` says the default browser) is a
    snap's, or one a Flatpak exports: named by its app id, in Flatpak's exports folder."""
    if _SNAP_DESKTOP.fullmatch(name):
        return True
    if not name.endswith(".desktop") or "/" in name:
        return False
    # Its name alone does not tell: a system's own browser may be `org.mozilla.firefox.desktop`.
    shared = (
        root / "exports" / "share" / "applications" / name for root in _flatpak_roots(environ)
    )
    return any(path.is_file() for path in shared)


def _flatpak_roots(environ: Mapping[str, str]) -> tuple[Path, Path]:
    """Flatpak's installations: the system's and the user's, where `flatpak` finds them."""
    home = environ.get("HOME") or os.path.expanduser("~")
    data = environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    user = environ.get("FLATPAK_USER_DIR") or os.path.join(data, "flatpak")
    return Path(environ.get("FLATPAK_SYSTEM_DIR") or _FLATPAK_SYSTEM), Path(user)


def _default_browser(environ: Mapping[str, str]) -> str | None:
    """The desktop file of the desktop's default browser, if the desktop says."""
    try:
        asked = subprocess.run(
            ["xdg-settings", "get", "default-web-browser"],
            capture_output=True,
            text=True,
            timeout=_ASK_TIMEOUT,
            check=False,
            env=dict(environ),
        )
    except (OSError, subprocess.TimeoutExpired):  # not a desktop that says
        return None
    return asked.stdout.strip() if asked.returncode == 0 else None
