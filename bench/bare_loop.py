"""The baseline: what a hand-written aiohttp script sending the same PATCHes would do.

    python bench/bare_loop.py INPUT.csv --base-url http://127.0.0.1:PORT --out result.json

One `ClientSession`, `--concurrency` tasks pulling rows from one shared iterator over the CSV,
one `PATCH /v1/leads/{id}` per row with the same headers and the same JSON bytes as bulk-updater
(keys in the same order, compact separators); the default asyncio loop and the standard `json`
module. No validation, retries or report. Timed from the first request to the last answer.
The API key comes from SENDKIT_API_KEY, as for bulk-updater.

`--rate R` starts one request every 1/R s (an `asyncio.sleep` to each start's time, nothing
more): the floor under the CPU of a paced job, what aiohttp alone costs at that rate; with
`--uvloop`, on the loop the engine runs on by default.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import csv
import json
import os
import sys
import time
from collections.abc import Iterator
from importlib.metadata import PackageNotFoundError, version
from typing import Any
from urllib.parse import quote

import aiohttp

# The order bulk-updater puts the fields of a body in, so that the bytes are the same.
TEXT_FIELDS = (
    "firstName",
    "lastName",
    "companyName",
    "jobTitle",
    "phone",
    "linkedinUrl",
    "city",
    "state",
    "country",
)
CUSTOM = "customFields."


def requests_of(path: str) -> Iterator[tuple[str, bytes]]:
    """(quoted id, body bytes) for every row of the CSV, read lazily."""
    with open(path, encoding="utf-8-sig", newline="") as file:
        for record in csv.DictReader(file):
            body: dict[str, Any] = {}
            for name in TEXT_FIELDS:
                if record.get(name):
                    body[name] = record[name]
            if record.get("tags"):
                body["tags"] = [t.strip() for t in record["tags"].split(";") if t.strip()]
            custom = {k[len(CUSTOM) :]: v for k, v in record.items() if k.startswith(CUSTOM) and v}
            if custom:
                body["customFields"] = custom
            data = json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode()
            yield quote(record["id"], safe=""), data


async def run(
    path: str, base_url: str, concurrency: int, headers: dict[str, str], rate: float = 0
) -> dict[str, Any]:
    prefix = base_url.rstrip("/") + "/v1/leads/"
    work = requests_of(path)
    statuses: collections.Counter[int] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    marks: list[float] = []
    loop = asyncio.get_running_loop()
    next_start = loop.time()  # when paced

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal next_start
        for lead_id, data in work:  # one shared iterator: each row goes to one task
            if rate:
                start, next_start = next_start, max(next_start, loop.time()) + 1 / rate
                if (wait := start - loop.time()) > 0:
                    await asyncio.sleep(wait)
            if not marks:
                marks.append(time.perf_counter())
            try:
                async with session.patch(prefix + lead_id, data=data) as response:
                    await response.read()
                    statuses[response.status] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                errors[type(exc).__name__] += 1

    connector = aiohttp.TCPConnector(limit=concurrency)
    # bulk-updater asks for no compression (`Accept-Encoding: identity`): the same here.
    async with aiohttp.ClientSession(headers=headers, connector=connector) as session:
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        finished = time.perf_counter()
    duration = finished - marks[0] if marks else 0.0
    requests = sum(statuses.values()) + sum(errors.values())
    return {
        "requests": requests,
        "duration_s": round(duration, 4),
        "rate": round(requests / duration, 2) if duration > 0 else 0.0,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": dict(errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("input")
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--rate", type=float, default=0, help="requests/s (default: no limit)")
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop")
    parser.add_argument("--out", help="write the result as JSON here (default: stdout)")
    args = parser.parse_args(argv)
    key = os.environ.get("SENDKIT_API_KEY", "")
    if not key:
        print("bare_loop: set SENDKIT_API_KEY", file=sys.stderr)
        return 2
    try:
        agent = f"bulk-updater/{version('bulk-updater')}"
    except PackageNotFoundError:
        agent = "bulk-updater/0"
    headers = {
        "X-Api-Key": key,
        "Content-Type": "application/json",
        "User-Agent": agent,
        "Accept": "application/json",
        "Accept-Encoding": "identity",
    }
    job = run(args.input, args.base_url, args.concurrency, headers, args.rate)
    if args.uvloop:
        import uvloop

        result = uvloop.run(job)
    else:
        result = asyncio.run(job)
    text = json.dumps(result)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as file:
            file.write(text + "\n")
    else:
        print(text)
    return 0 if not result["errors"] and set(result["statuses"]) == {"200"} else 1


if __name__ == "__main__":
    sys.exit(main())
