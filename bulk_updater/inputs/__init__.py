"""Inputs: files and iterables turned into numbered rows, each a `LeadUpdate` or `Invalid`.

- `schema`    which column name means which field: the matching rules and the user's map
- `columns`   a table's header checked once
- `record_keys` a JSON or dict record's keys, one by one
- `suggest`   what a refused header suggests: fields close in spelling, id and email by values
- `values`    how a cell or JSON value becomes a field's value; problems in plain words
- `tags`      a tags cell as a list: a JSON array, a quoted list, or split by the separator
- `items`     what a record becomes (`LeadUpdate`, `ByEmail`, `Invalid`, `Hidden`) and its `Row`
- `records`   CSV records and JSON lines out of a text stream, in bounded memory
- `tables`    CSV as a table: the delimiter, the header (`read_head`), each record's cells
- `jsonrows`  JSON lines as rows: each line parsed, numbered
- `encoding`  a file's encoding, checked in the pass that fingerprints it
- `xlsx`      the rows of a workbook as the text a person sees, and its header row
- `sheet`     a sheet's XML and its shared strings, parsed in bounded memory
- `cells`     a workbook's cell as the text shown, and the number or boolean it holds
- `numbers`   a number as its number format shows it
- `source`    `Source`: a file or standard input, checked as a whole when opened
- `opening`   which input a path names: the file or standard input opened, its format
- `pump`      a thread that reads standard input so the event loop never blocks
- `rows`      any input as numbered rows
"""

from .columns import Invalid, Item, Row
from .items import Hidden
from .opening import Format
from .record_keys import KeyPlan
from .rows import Numbered, Record, Rows, check_rows, numbered
from .schema import ColumnMap
from .source import Source

__all__ = [
    "ColumnMap",
    "Format",
    "Hidden",
    "Invalid",
    "Item",
    "KeyPlan",
    "Numbered",
    "Record",
    "Row",
    "Rows",
    "Source",
    "check_rows",
    "numbered",
]
