"""What the user's browser is given to open the page: the opener file, or the address itself.

The opener file (`UiServer.browser_file`) keeps the token out of the browser's command line,
which `ps` shows to every user. But a snap browser (Ubuntu's default Firefox and Chromium) has a
/tmp of its own: it cannot read the file and shows "File not found" (jupyter/notebook#5479). Such
a browser is given the address itself; the terminal prints it in every case.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import webbrowser
from collections.abc import Mapping
from typing import Final

from .server import UiServer

#: A snap's desktop file is `<snap>_<app>.desktop` (`firefox_firefox.desktop`).
_SNAP_DESKTOP: Final = re.compile(r"[a-z0-9-]+_[A-Za-z0-9.-]+\.desktop")
#: `xdg-settings` is a shell script: a few seconds at most, else it is not asked.
_ASK_TIMEOUT: Final = 5.0


def browser_target(server: UiServer, environ: Mapping[str, str] = os.environ) -> str:
    """What `webbrowser.open` is given: the opener file, unless the browser is a snap."""
    if snap_browser(environ):
        return server.url
    return server.browser_file().as_uri()


def snap_browser(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the browser `webbrowser` runs is a snap: its command is one, or (without
    `$BROWSER`, which names the one used) the desktop's default browser is one."""
    command = _command()
    if command is not None and _under_snap(command):
        return True
    if environ.get("BROWSER"):
        return False
    return _default_is_snap()


def _command() -> str | None:
    """The command of the browser `webbrowser` would run, if it runs one."""
    try:
        controller = webbrowser.get()
    except webbrowser.Error:
        return None
    name = getattr(controller, "name", None)
    return name if isinstance(name, str) else None


def _under_snap(command: str) -> bool:
    path = shutil.which(command)
    if path is None:
        return False
    # /snap/bin/firefox is a link to /usr/bin/snap, which runs the snap of that name.
    return path.startswith("/snap/") or os.path.realpath(path) == "/usr/bin/snap"


def _default_is_snap() -> bool:
    try:
        asked = subprocess.run(
            ["xdg-settings", "get", "default-web-browser"],
            capture_output=True,
            text=True,
            timeout=_ASK_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):  # not a desktop that says
        return False
    return asked.returncode == 0 and _SNAP_DESKTOP.fullmatch(asked.stdout.strip()) is not None
