"""`bulk-updater ui` as a command: the address it prints, the key it takes, how it stops."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from pathlib import Path

import aiohttp

from bulk_updater.ui.browser import sandboxed_command
from tests.cli.conftest import KEY, clean_env, command


async def _start(tmp_path: Path, *args: str, **env: str) -> asyncio.subprocess.Process:
    environment = clean_env(TMPDIR=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"), **env)
    return await asyncio.create_subprocess_exec(
        *command("--no-browser", *args, subcommand="ui"),
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


async def _address(process: asyncio.subprocess.Process) -> str:
    assert process.stdout is not None
    line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
    assert line.startswith("bulk-updater ui: the page is at http://127.0.0.1:"), line
    return line.rsplit(" ", 1)[1].strip()


async def _state_through(address: str) -> tuple[dict[str, object], str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(address) as opened:  # the token, for the cookie
            assert opened.status == 200
        origin = str(opened.url.origin())
        async with http.get(origin + "/") as page:  # where the answer's page moves on to
            assert page.status == 200
            text = await page.text()
        async with http.get(origin + "/api/state") as answer:
            return await answer.json(), text


async def test_with_a_key_the_page_opens_at_the_file_and_never_shows_the_key(
    tmp_path: Path,
) -> None:
    process = await _start(tmp_path, "--base-url", "http://127.0.0.1:9", SENDKIT_API_KEY=KEY)
    try:
        state, page = await _state_through(await _address(process))
        assert state["connection"] == {"base_url": "http://127.0.0.1:9", "sandbox": False}
        assert KEY not in str(state)
        assert KEY not in page
        assert 'id="choose"' in page
    finally:
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err
    assert KEY.encode() not in out + err
    left = await asyncio.to_thread(lambda: list(tmp_path.glob("bulk-updater-ui-*")))
    assert not left  # the private folder is gone


async def test_without_a_key_the_page_asks_for_one(tmp_path: Path) -> None:
    process = await _start(tmp_path)
    try:
        state, _ = await _state_through(await _address(process))
        assert state["connection"] is None
    finally:
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0


async def test_a_closed_terminal_sighup_stops_it_and_removes_the_private_folder(
    tmp_path: Path,
) -> None:
    process = await _start(tmp_path)
    try:
        await _state_through(await _address(process))
        assert await asyncio.to_thread(lambda: list(tmp_path.glob("bulk-updater-ui-*")))
    finally:
        process.send_signal(signal.SIGHUP)
        await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0  # stopped as by Ctrl+C, not killed by the signal
    left = await asyncio.to_thread(lambda: list(tmp_path.glob("bulk-updater-ui-*")))
    assert not left


async def test_an_unreadable_key_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    process = await _start(tmp_path, "--api-key-file", str(tmp_path / "missing"))
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    lines = err.decode().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("bulk-updater: error: --api-key-file")
    assert not out


async def test_a_port_in_use_is_one_line_and_exit_2(tmp_path: Path) -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    with taken:
        port = str(taken.getsockname()[1])
        process = await _start(tmp_path, "--port", port)
        _, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert err.decode().splitlines() == [
        f"bulk-updater: error: cannot listen on 127.0.0.1:{port} (address already in use); "
        "choose another --port, or leave it out for a free one"
    ]
    left = await asyncio.to_thread(lambda: list(tmp_path.glob("bulk-updater-ui-*")))
    assert not left


async def test_a_second_page_server_is_refused_while_one_runs(tmp_path: Path) -> None:
    first = await _start(tmp_path)
    try:
        await _address(first)
        second = await _start(tmp_path)
        _, err = await asyncio.wait_for(second.communicate(), 30)
    finally:
        first.send_signal(signal.SIGTERM)
        await asyncio.wait_for(first.communicate(), 30)
    assert second.returncode == 75
    [line] = err.decode().splitlines()
    assert line.startswith("bulk-updater: error: another bulk-updater ui is running")
    assert line.endswith("use its page, or stop it first")
    third = await _start(tmp_path)  # the first one gone, its lock went with it
    try:
        await _address(third)
    finally:
        third.send_signal(signal.SIGTERM)
        await asyncio.wait_for(third.communicate(), 30)
    assert third.returncode == 0


async def _opened(
    tmp_path: Path, browser: str, folder: Path | None = None, **env: str
) -> tuple[str, list[str]]:
    """The address `bulk-updater ui` prints, and what `browser` (a script's name in `folder`,
    `bin` by default, run with what to open) was given, with that file's modes and text when it
    is one."""
    # The script writes what it was given (its command line, which `ps` shows to every user)
    # and the file's modes and text to a pipe.
    opened = tmp_path / "opened"
    os.mkfifo(opened)
    pipe = os.open(opened, os.O_RDWR | os.O_NONBLOCK)  # a writer of our own: no end of file
    loop = asyncio.get_running_loop()
    written: asyncio.Future[None] = loop.create_future()
    loop.add_reader(pipe, lambda: written.done() or written.set_result(None))
    seen = tmp_path / "seen"
    script = (folder or tmp_path / "bin") / browser
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text(
        "#!/bin/sh\n"
        'page="${1#file://}"\n'
        f'{{ printf "%s\\n" "$1"; stat -c %a "$page" "${{page%/*}}"; cat "$page"; }} > {seen}\n'
        f"cat {seen} > {opened}\n"  # one write: the test reads it whole
    )
    script.chmod(0o755)
    environment = clean_env(TMPDIR=str(tmp_path), XDG_STATE_HOME=str(tmp_path / "state"))
    # Without $BROWSER nor a display, `webbrowser` runs the terminal's browser (`www-browser`).
    for name in ("BROWSER", "DISPLAY", "WAYLAND_DISPLAY"):
        environment.pop(name, None)
    environment.update(env)
    process = await asyncio.create_subprocess_exec(
        *command(subcommand="ui"),
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        address = await _address(process)  # printed in the terminal, the user's own
        assert process.stdout is not None
        advice = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        assert (
            advice.strip()
            == "open that address in your browser if the page does not open by itself"
        )
        await asyncio.wait_for(written, 30)
        return address, os.read(pipe, 65536).decode().splitlines()
    finally:
        loop.remove_reader(pipe)
        os.close(pipe)
        process.send_signal(signal.SIGTERM)
        await asyncio.wait_for(process.communicate(), 30)


async def test_without_no_browser_the_page_is_opened_in_the_users_browser(tmp_path: Path) -> None:
    # `webbrowser` runs $BROWSER with what to open.
    browser = str(tmp_path / "bin" / "browser")
    address, (given, file_mode, folder_mode, *page) = await _opened(
        tmp_path, "browser", BROWSER=browser
    )
    token = address.split("token=", 1)[1]
    assert token not in given
    assert given.startswith("file:///")
    assert given.endswith("/open.html")
    assert (file_mode, folder_mode) == ("600", "700")
    assert f'<meta http-equiv="refresh" content="0;url={address}">' in page


def _xdg_settings(tmp_path: Path, default: str) -> None:
    """An `xdg-settings` that says `default` is the desktop's browser."""
    script = tmp_path / "bin" / "xdg-settings"
    script.parent.mkdir(exist_ok=True)
    script.write_text(f'#!/bin/sh\n[ "$*" = "get default-web-browser" ] && echo {default}\n')
    script.chmod(0o755)


async def test_a_snap_browser_is_given_the_address_it_cannot_read_the_file(
    tmp_path: Path,
) -> None:
    # A snap's /tmp is its own: Ubuntu's Firefox shows "File not found" for the opener file.
    _xdg_settings(tmp_path, "firefox_firefox.desktop")
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    address, (given, *_) = await _opened(tmp_path, "www-browser", PATH=path)
    assert given == address


async def test_a_browser_of_the_system_is_given_the_opener_file(tmp_path: Path) -> None:
    _xdg_settings(tmp_path, "firefox.desktop")
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    _, (given, *_) = await _opened(tmp_path, "www-browser", PATH=path)
    assert given.startswith("file:///")
    assert given.endswith("/open.html")


async def test_a_flatpak_default_browser_is_given_the_address(tmp_path: Path) -> None:
    # A Flatpak's /tmp is its own too; its desktop file is named by its app id, in the exports
    # of the user's installation (~/.local/share/flatpak, under XDG_DATA_HOME).
    _xdg_settings(tmp_path, "org.mozilla.firefox.desktop")
    applications = tmp_path / "data" / "flatpak" / "exports" / "share" / "applications"
    applications.mkdir(parents=True)
    (applications / "org.mozilla.firefox.desktop").write_text("[Desktop Entry]\n")
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    env = {"PATH": path, "XDG_DATA_HOME": str(tmp_path / "data")}
    address, (given, *_) = await _opened(tmp_path, "www-browser", **env)
    assert given == address


async def test_a_default_browser_named_like_a_flatpak_but_of_the_system_is_given_the_file(
    tmp_path: Path,
) -> None:
    # Some systems name their own browser's desktop file by its app id too: not a Flatpak's.
    _xdg_settings(tmp_path, "org.mozilla.firefox.desktop")
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    env = {"PATH": path, "XDG_DATA_HOME": str(tmp_path / "data")}
    _, (given, *_) = await _opened(tmp_path, "www-browser", **env)
    assert given.startswith("file:///")


async def test_a_flatpaks_exported_wrapper_as_browser_is_given_the_address(
    tmp_path: Path,
) -> None:
    # `flatpak install` puts `org.chromium.Chromium` in the system installation's exports/bin.
    system = tmp_path / "flatpak"
    wrapper = system / "exports" / "bin"
    browser = str(wrapper / "org.chromium.Chromium")
    env = {"BROWSER": browser, "FLATPAK_SYSTEM_DIR": str(system)}
    address, (given, *_) = await _opened(tmp_path, "org.chromium.Chromium", wrapper, **env)
    assert given == address


async def test_flatpak_run_as_browser_is_given_the_address(tmp_path: Path) -> None:
    flatpak = tmp_path / "bin" / "flatpak"
    flatpak.parent.mkdir()
    # `flatpak run org.mozilla.firefox URL`: the app, run with what to open.
    flatpak.write_text(f'#!/bin/sh\nshift 2\nexec {tmp_path / "bin" / "browser"} "$@"\n')
    flatpak.chmod(0o755)
    path = f"{tmp_path / 'bin'}:{os.environ['PATH']}"
    env = {"BROWSER": "flatpak run org.mozilla.firefox %s", "PATH": path}
    address, (given, *_) = await _opened(tmp_path, "browser", **env)
    assert given == address


def test_a_link_into_a_flatpaks_app_folder_is_a_flatpak(tmp_path: Path) -> None:
    # Wherever the wrapper is linked from, it is the app's own script, which runs `flatpak run`.
    system = tmp_path / "flatpak"
    script = system / "app" / "org.mozilla.firefox" / "current" / "active" / "export" / "bin"
    script.mkdir(parents=True)
    (script / "org.mozilla.firefox").write_text("#!/bin/sh\n")
    (script / "org.mozilla.firefox").chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "firefox").symlink_to(script / "org.mozilla.firefox")
    environ = {"PATH": str(tmp_path / "bin"), "FLATPAK_SYSTEM_DIR": str(system)}
    assert sandboxed_command("firefox", environ)
    assert not sandboxed_command("firefox", {**environ, "FLATPAK_SYSTEM_DIR": str(tmp_path)})
