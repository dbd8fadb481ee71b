"""The progress line: fitted to the terminal, never wrapped; rate and ETA from rows really sent."""

from __future__ import annotations

import io

import pytest

from bulk_updater import Outcome, Status
from bulk_updater.progress import Progress


def outcome(status: Status, attempts: int) -> Outcome:
    return Outcome(row=1, id="lead", status=status, attempts=attempts)


def progress(*, total: int | None, live: bool, width: int = 80) -> tuple[Progress, io.StringIO]:
    stream = io.StringIO()
    return Progress(stream, total=total, live=live, interval=1, width=lambda: width), stream


@pytest.mark.parametrize("width", [20, 40, 60, 80, 120, 200])
def test_the_live_bar_never_wraps(width: int) -> None:
    bar, stream = progress(total=123_456, live=True, width=width)
    for status in (Status.UPDATED, Status.NOT_FOUND, Status.INVALID, Status.REJECTED):
        for _ in range(1000):
            bar.update(outcome(status, 1))
    bar.show()
    drawn = stream.getvalue().removeprefix("\r\x1b[2K")
    assert len(drawn) < width
    assert "\n" not in drawn
    assert drawn.startswith(("[", "4000/123456")) or width < 25


def test_the_least_useful_parts_go_first() -> None:
    bar, _ = progress(total=1000, live=True)
    for _ in range(10):
        bar.update(outcome(Status.UPDATED, 1))
    wide, narrow = bar.line(200), bar.line(40)
    assert wide.startswith("[")
    assert "updated 10" in wide
    assert not narrow.startswith("[")  # the bar goes first
    assert narrow.startswith("10/1000 rows")
    assert "ETA" in narrow


def test_rate_and_eta_count_only_rows_that_were_sent() -> None:
    bar, _ = progress(total=1000, live=False)
    for _ in range(900):
        bar.update(outcome(Status.SKIPPED, 0))  # finished by an earlier run: instant
    for _ in range(50):
        bar.update(outcome(Status.INVALID, 0))
    line = bar.line()
    assert "0.0/s" in line
    assert "ETA ?" in line  # nothing sent yet: no made-up ETA of 0:00
    bar.update(outcome(Status.UPDATED, 1))
    assert "ETA ?" not in bar.line()


def test_off_a_terminal_each_line_has_done_total_and_eta() -> None:
    log, stream = progress(total=500, live=False)
    log.update(outcome(Status.UPDATED, 1))
    log.show()
    line = stream.getvalue()
    assert line.startswith("progress: 1/500 rows")
    assert "ETA" in line
    assert line.endswith("\n")
    assert "\r" not in line
    assert "\x1b" not in line


def test_without_a_total_there_is_no_eta() -> None:
    log, stream = progress(total=None, live=False)
    log.update(outcome(Status.UPDATED, 1))
    log.show()
    assert "ETA" not in stream.getvalue()
    assert stream.getvalue().startswith("progress: 1 rows")


def test_the_rate_the_limiter_allows_now_is_shown_and_dropped_first() -> None:
    stream = io.StringIO()
    bar = Progress(
        stream, total=100, live=True, interval=1, width=lambda: 200, rate=lambda: "limit 39.6/s"
    )
    bar.update(outcome(Status.UPDATED, 1))
    assert "/s  limit 39.6/s  updated 1" in bar.line(200)
    assert "limit" not in bar.line(45)  # the first part dropped when the line is short
