"""`bulk-updater ui` with a 100,000-row, 10 MB CSV in a real headless Chromium: how soon the columns
show, how long the whole check takes, and the tab's memory while the job runs.

The command runs as a child with the bench's leads in its sandbox (*Try it on the local sandbox*);
the browser is Debian's chromium through its chromedriver (`tools/ensure-chromium`), as in the
page's tests. "Columns shown" is timed from the moment the file is chosen, so it includes the
upload itself (the browser gives no time for a request body's end): an upper bound of the target,
which counts from the upload's end. The tab's memory is the resident set of the renderer process
that holds the page (the largest of the browser's renderers; read from /proc, shared libraries
included), sampled while the job runs, for at most `RUN_S` seconds; the page's JavaScript heap
(from Chromium's `Performance.getMetrics`) is shown beside it.
"""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

from harness import progress, stop, track
from results import Context, Result, Section, Table, Target, verdict

COLUMNS_S: Final = 3.0
CHECK_S: Final = 15.0
TAB_MB: Final = 200.0
RUN_S: Final = 30.0
_TITLE: Final = "The page (`bulk-updater ui`), a 100k-row CSV in headless Chromium"
_TARGETS: Final = (
    f"page: columns shown < {COLUMNS_S:.0f} s after the upload",
    f"page: whole check < {CHECK_S:.0f} s",
    f"page: tab memory during the run <= {TAB_MB:.0f} MB",
)


def measure(ctx: Context) -> Result:
    missing = [p for p in ("/usr/bin/chromium", "/usr/bin/chromedriver") if not os.path.exists(p)]
    if missing:
        return Result.not_measured(_TITLE, list(_TARGETS), f"{missing[0]} missing")
    rows = 10_000 if ctx.quick else 100_000
    source = ctx.csv(rows)
    leads = _leads(source, ctx.tmp / "page-leads.json")
    server = _start_page(ctx.tmp, leads)
    try:
        with _browser(ctx.tmp) as browser:
            figures = _drive(browser, server.url, source, rows, 10.0 if ctx.quick else RUN_S)
    finally:
        stop(server.proc)
    return _result(figures, rows, source.stat().st_size)


class _Page:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc, self.url = proc, url


def _leads(source: Path, target: Path) -> Path:
    """Every row's lead, for the sandbox: the job updates leads that exist."""
    with open(source, encoding="utf-8", newline="") as file:
        leads = [{"_id": line["id"], "email": line["email"]} for line in csv.DictReader(file)]
    target.write_text(json.dumps(leads))
    return target


def _start_page(tmp: Path, leads: Path) -> _Page:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENDKIT_", "BULK_UPDATER_"))}
    env.update(XDG_STATE_HOME=str(tmp / "page-state"), TMPDIR=str(tmp), NO_PROXY="127.0.0.1")
    command = [sys.executable, "-m", "bulk_updater", "ui", "--no-browser", "--sandbox-leads"]
    proc = track(
        subprocess.Popen([*command, str(leads)], env=env, stdout=subprocess.PIPE, text=True)
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    found = re.search(r"http://\S+", line)
    if found is None:
        stop(proc)
        raise RuntimeError(f"bulk-updater ui did not start: {line!r}")
    return _Page(proc, found.group(0))


class _browser:
    """Headless Chromium as the page's tests start it; the driver's pid for its processes."""

    def __init__(self, tmp: Path) -> None:
        self.profile = tempfile.mkdtemp(prefix="page-chromium-", dir=tmp)

    def __enter__(self) -> Any:
        os.environ["SE_OFFLINE"] = "true"
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        flags = (
            "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
            "--disable-background-networking --disable-component-update --disable-sync "
            "--disable-dev-shm-usage"
        )
        for flag in [*flags.split(), f"--user-data-dir={self.profile}"]:
            options.add_argument(flag)
        self.driver = webdriver.Chrome(options=options, service=Service("/usr/bin/chromedriver"))
        return self.driver

    def __exit__(self, *exc_info: object) -> None:
        self.driver.quit()


def _wait(holds: Callable[[], object], timeout: float) -> float:
    """Poll `holds` until it is true; the time it took. The page is in another process: there is
    nothing to wait on but its text."""
    started = time.perf_counter()
    while not holds():
        if time.perf_counter() - started > timeout:
            raise RuntimeError("the page did not get there in time")
        time.sleep(0.02)
    return time.perf_counter() - started


def _drive(driver: Any, url: str, source: Path, rows: int, run_s: float) -> dict[str, float]:
    from selenium.webdriver.common.by import By

    def text(element_id: str) -> str:
        return str(driver.find_element(By.ID, element_id).text)

    driver.get(url)
    driver.find_element(By.ID, "sandbox").click()
    _wait(lambda: "local sandbox" in text("where"), 30)
    progress(f"page: uploading {source.stat().st_size / 1e6:.1f} MB")
    driver.find_element(By.ID, "file").send_keys(str(source))
    columns_s = _wait(lambda: len(driver.find_elements(By.CSS_SELECTOR, "#columns tbody tr")), 60)
    done = f"{rows} rows read"
    check_s = _wait(lambda: text("check-counts").startswith(done) and "still" not in text(
        "check-counts"), 120)  # fmt: skip
    progress("page: running")
    driver.find_element(By.ID, "start").click()
    peak_mb, heap_mb = _sample_run(driver, lambda: text("progress"), run_s)
    if not text("progress").startswith("Finished"):
        driver.find_element(By.ID, "stop").click()
        _wait(lambda: text("progress").startswith(("Stopped", "Finished")), 60)
    return {
        "columns_s": columns_s,
        "check_s": check_s,
        "tab_peak_mb": peak_mb,
        "js_heap_peak_mb": heap_mb,
    }


def _sample_run(driver: Any, progress_text: Callable[[], str], run_s: float) -> tuple[float, float]:
    """The tab's highest resident set and JavaScript heap, in MB, while the job runs."""
    chromedriver = driver.service.process.pid
    driver.execute_cdp_cmd("Performance.enable", {})
    peak = heap = 0.0
    ends = time.perf_counter() + run_s
    while time.perf_counter() < ends and not progress_text().startswith("Finished"):
        peak = max(peak, _tab_mb(chromedriver))
        metrics = driver.execute_cdp_cmd("Performance.getMetrics", {})["metrics"]
        used = next(m["value"] for m in metrics if m["name"] == "JSHeapUsedSize")
        heap = max(heap, used / 2**20)
        time.sleep(0.25)
    return max(peak, _tab_mb(chromedriver)), heap


def _tab_mb(root: int) -> float:
    """The resident set of the largest renderer process under `root`: the page's."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(parent, []).append(int(entry))
    largest_kb, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo.extend(children.get(pid, []))
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        if b"--type=renderer" in command:
            rss = re.search(r"VmRSS:\s+(\d+)", status)
            largest_kb = max(largest_kb, int(rss.group(1)) if rss else 0)
    return largest_kb / 1024


def _result(figures: dict[str, float], rows: int, size: int) -> Result:
    columns_ok = figures["columns_s"] < COLUMNS_S
    check_ok = figures["check_s"] < CHECK_S
    tab_ok = figures["tab_peak_mb"] <= TAB_MB
    table = Table.of(
        "rows|file MB|columns shown s (upload included)|check s|tab peak MB|JS heap peak MB",
        [(f"{rows:,}", f"{size / 1e6:.1f}", f"{figures['columns_s']:.2f}",
          f"{figures['check_s']:.2f}", f"{figures['tab_peak_mb']:.0f}",
          f"{figures['js_heap_peak_mb']:.1f}")],
    )  # fmt: skip
    measured = (
        f"{figures['columns_s']:.2f} s",
        f"{figures['check_s']:.2f} s",
        f"{figures['tab_peak_mb']:.0f} MB",
    )
    oks = (columns_ok, check_ok, tab_ok)
    return Result(
        sections=[Section(_TITLE, [table])],
        targets=[Target(n, m, ok) for n, m, ok in zip(_TARGETS, measured, oks, strict=True)],
        readme=[
            (
                f"the page with a {rows // 1000}k-row CSV",
                f"columns in {measured[0]}, check {measured[1]}, tab {measured[2]}",
                f"< {COLUMNS_S:.0f} s, < {CHECK_S:.0f} s, <= {TAB_MB:.0f} MB",
                verdict(all(oks)),
            )
        ],
        data=figures,
    )
