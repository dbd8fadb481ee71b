"""HTTP/1.1 over a pool of kept-alive connections: the two requests the client sends, and nothing
else (no redirects, cookies, proxies, compression or upgrades).

Why not aiohttp's `ClientSession`: a request through it costs about 100 µs of CPU on the project's
machine, most of it in setting up what these requests never use (URL and header merging, cookie
jars, traces, a task to write each body), and at `--rate 0` that cost is the job's speed. Here a
request is one `write` of bytes made once per job but for the path and body, and its answer is
parsed by `httptools` (llhttp, Node's parser, in C): about 12 µs of CPU a request (`make bench`,
the throughput measure). What the answer says is judged in `client.py` and `answers.py`.

What is read of an answer is bounded: its head at `MAX_HEAD` bytes, its body at the caller's
`limit` (the rest is never read: the connection is closed instead of drained). A connection is
reused only after an answer that ended where the protocol says it ends, and that did not say
`Connection: close`; any failure, cancellation or doubt closes it.
"""

from .connection import MAX_HEAD, Answer, Headers, TransportError
from .pool import Origin, Pool

__all__ = ["MAX_HEAD", "Answer", "Headers", "Origin", "Pool", "TransportError"]
