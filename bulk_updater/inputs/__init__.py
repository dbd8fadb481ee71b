"""Inputs: files and iterables turned into numbered rows, each a `LeadUpdate` or `Invalid`.

- `columns`  the row schema: column names → fields, cells and JSON values → a `LeadUpdate`
- `records`  CSV records and JSON lines out of a text stream, in bounded memory
- `source`   `Source`: a file or standard input, checked as a whole when opened
- `pump`     a thread that reads standard input so the event loop never blocks
- `rows`     any input as numbered rows
"""

from .columns import Invalid, Item
from .rows import Numbered, Rows, numbered
from .source import Format, RowItem, Source

__all__ = ["Format", "Invalid", "Item", "Numbered", "RowItem", "Rows", "Source", "numbered"]
