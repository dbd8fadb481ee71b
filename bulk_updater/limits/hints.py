"""The summary's hint after repeated cuts: what to run next time.

At a `--rate` ceiling the API refuses, `--rate auto` (it finds the limit without starting above
it); when the 429s say the limit is shared with another job (they came below the limit the
headers state) or moves (they came at levels far apart), `--redis`, not a lower rate.
"""

from __future__ import annotations

from typing import Final

from .adaptive import SAME_LEVEL, RateController

#: Cuts after which the summary suggests something.
HINT_AFTER_CUTS: Final = 2
#: Cuts at levels further apart than this ratio: the limit is shared or moves, not fixed.
FAR_APART: Final = 1.5


class CutLevels:
    """The lowest and highest levels the job's cuts found the limit at (the first excepted:
    it guesses more)."""

    def __init__(self) -> None:
        self.levels: tuple[float, float] | None = None

    def add(self, level: float) -> None:
        low, high = self.levels or (level, level)
        self.levels = (min(low, level), max(high, level))


def rate_hint(
    controller: RateController, ceiling: float | None, levels: CutLevels, shared: bool
) -> str | None:
    """The hint for a job whose controller cut `controller.cuts` times (None: none yet)."""
    if controller.cuts < HINT_AFTER_CUTS:
        return None
    hint = None if shared else _shared_hint(controller, levels)
    if hint is None and ceiling is not None:
        level = controller.plateau if controller.measured else None  # None: none accepted
        about = "" if level is None else f"{level:.0f}" if level >= 1 else f"{level:.1f}"
        accepted = f" (about {about}/s)" if about else ""
        hint = (
            f"429s at --rate {ceiling:g}: the API accepts less{accepted}; "
            "--rate auto finds its limit without starting above it"
        )
    return hint


def _shared_hint(controller: RateController, levels: CutLevels) -> str | None:
    """When the 429s say the limit is shared with another job or moves: `--redis`. Through
    Redis the limit is shared already, and known to be (the caller asks only without it)."""
    if levels.levels is None:
        return None
    low, high = levels.levels
    stated, plateau = controller.stated, controller.plateau
    below = stated is not None and plateau is not None and plateau < stated * (1 - SAME_LEVEL)
    if not below and high <= low * FAR_APART:
        return None
    at = f"at {low:.0f}/s" if f"{low:.0f}" == f"{high:.0f}" else f"at {low:.0f} to {high:.0f}/s"
    why = (
        f"429s came {at}, below the limit the API states ({controller.stated_why}): "
        "another job on this key takes its share"
        if below
        else f"429s came {at}: the limit is shared with another job on this key, or moves"
    )
    return f"{why}; give every job on the key the same --redis URL to share one budget"
