"""`bulk-updater ui`: a guided local page in front of the same engine, for people who do not use a
terminal.

| module | owns |
| --- | --- |
| `server.py` | `UiServer`: listening on 127.0.0.1, the private folder, the sandbox it may start |
| `browser.py` | what the browser is given: the opener file, or the address for a snap or Flatpak |
| `guard.py` | which requests are answered: `Host`, one-time token and cookie, same origin |
| `routes.py` | the page's files, its state and event stream, one POST per action |
| `session.py` | the page's state, held by the server, from the file to the job's end |
| `notify.py` | the page's version: each change wakes the event streams |
| `workspace.py` | the private 0700 folder: uploads streamed to disk, each job's files |
| `detect.py` | how a file is read (encoding, delimiter, sheet, header row) and its first rows |
| `mapping.py` | what each header means, how found; the mapping and tags separator remembered |
| `check.py` | the dry run of the whole file, invalid rows fixed in place |
| `running.py` | the job through `BulkUpdater.run`: progress, holds counted down, stop, resume |
| `kept.py` | the one job that outlives the server when it did not finish |
| `resend.py` | the rows not updated, read back and sent again once fixed |
| `history.py` | the jobs before the current one: their report and rejects, still downloadable |
| `copies.py` | the copies sent: fixed rows in the input's kind, a workbook's cells typed |
| `wording.py` | the page's words for the engine's flags: what to do on the page |

The page's own files (`static/`) are plain HTML, CSS and JavaScript: no build step, nothing
fetched from elsewhere.
"""

from .running import Connection
from .server import UiServer

__all__ = ["Connection", "UiServer"]
