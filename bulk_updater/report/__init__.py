"""The report: what each row became, written as rows finish and read back by `--resume`.

- `writer`  `ReportWriter`: the file, one line per outcome
- `line`    one line of it: the columns, an outcome as a CSV row or a JSON record
- `meta`    its lock (hidden, beside it, while a run writes it) and what `--resume` checks (kept
  in the user's state folder)
- `formulas` CSV cells a spreadsheet shows as text, never runs as a formula
- `earlier` an earlier report read back: each row's last status (`FinishedRows`)
- `sort`    the final rewrite in input order
- `rejects` `--rejects`: the rows not updated, as read, ready to fix and feed back
- `sheet_rejects` a workbook's `--rejects`: a workbook, its cells' numbers and booleans kept
"""

from .earlier import FinishedRows, read_statuses
from .line import COLUMNS
from .rejects import RejectsWriter
from .sort import sort_report
from .writer import ReportWriter, check_report_path, companions, default_report_path

__all__ = [
    "COLUMNS",
    "FinishedRows",
    "RejectsWriter",
    "ReportWriter",
    "check_report_path",
    "companions",
    "default_report_path",
    "read_statuses",
    "sort_report",
]
