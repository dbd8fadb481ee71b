"""The shapes of the sandbox's limit, in virtual time (`RateLimit` reads the loop's clock): a
fixed second, a token bucket, a window with a bucket on top, a limit that halves and comes back.
The sliding window and the headers over real sockets are in test_ratelimit.py."""

from __future__ import annotations

import pytest

from bulk_updater.sandbox.ratelimit import RateLimit, Shape
from tests.conftest import VirtualTimeLoop, advance


def admitted(limit: RateLimit, n: int) -> list[bool]:
    return [limit.admit() is None for _ in range(n)]


async def test_a_fixed_window_resets_on_the_second(virtual_time: VirtualTimeLoop) -> None:
    fixed, sliding = RateLimit(rate=2, burst=0, shape="fixed"), RateLimit(rate=2, burst=0)
    await advance(0.5)
    assert admitted(fixed, 3) == [True, True, False]
    assert admitted(sliding, 3) == [True, True, False]
    refused = fixed.admit()
    assert refused is not None
    assert refused.headers["Retry-After"] == "1"  # 0.5 s, in whole seconds rounded up
    await advance(0.5)  # a new second: the fixed window is empty, the sliding one is not
    assert admitted(fixed, 3) == [True, True, False]
    assert admitted(sliding, 1) == [False]


async def test_a_token_bucket_allows_its_size_then_the_rate(virtual_time: VirtualTimeLoop) -> None:
    bucket = RateLimit(rate=10, burst=3, shape="bucket")
    assert admitted(bucket, 4) == [True, True, True, False]
    await advance(0.1)  # one token back
    assert admitted(bucket, 2) == [True, False]
    arrivals = 0
    for _ in range(50):  # spaced at the rate: every one is admitted
        await advance(0.1)
        arrivals += bucket.admit() is None
    assert arrivals == 50


@pytest.mark.parametrize(("shape", "clump"), [("window+bucket", 2), ("sliding", 4)])
async def test_a_bucket_on_top_of_the_window_refuses_a_clump(
    virtual_time: VirtualTimeLoop, shape: Shape, clump: int
) -> None:
    """4 a second with a bucket of 2: the second has room for 4, but not all at once."""
    limit = RateLimit(rate=4, burst=2 if shape == "window+bucket" else 0, shape=shape)
    assert sum(admitted(limit, 4)) == clump
    await advance(1.0)
    spaced = []
    for _ in range(5):
        spaced.append(limit.admit() is None)
        await advance(0.26)
    assert spaced == [True] * 5


async def test_a_limit_halves_and_comes_back(virtual_time: VirtualTimeLoop) -> None:
    limit = RateLimit(rate=4, burst=0, halve_after=2.0, restore_after=4.0)
    per_second = []
    for _ in range(6):
        per_second.append(sum(admitted(limit, 10)))
        await advance(1.0)
    assert per_second == [4, 4, 2, 2, 4, 4]


@pytest.mark.parametrize("shape", ["fixed", "bucket"])
async def test_headers_say_what_the_shape_has_left(
    virtual_time: VirtualTimeLoop, shape: Shape
) -> None:
    from aiohttp import web

    limit = RateLimit(rate=4, burst=2, headers="ietf", shape=shape)
    await advance(0.25)
    admitted(limit, 2)
    response = web.Response()
    limit.add_headers(response)
    left = "2" if shape == "fixed" else "0"  # 4 - 2 this second; a bucket of 2, emptied
    assert response.headers["RateLimit"] == f'"default";r={left};t=1'


def test_a_limit_restored_before_it_halved_is_refused() -> None:
    with pytest.raises(ValueError, match="restore_after"):
        RateLimit(rate=4, burst=0, halve_after=3.0, restore_after=2.0)
    with pytest.raises(ValueError, match="shape"):
        RateLimit(rate=4, burst=0, shape="leaky")  # type: ignore[arg-type]
