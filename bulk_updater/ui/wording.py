"""The page's words for the command line's: a message that names a flag says what to do on the page.

The engine's messages say what to do in `bulk-updater run` (`pass --tags-separator ','`), and
keep saying it there. The page translates them at its edge, wherever it shows one: a file it
cannot read, an answer it refuses, an invalid row, the job's error and summary, and the report
and rejects its jobs write (`BulkUpdater.run(reword=...)`). A choice the page offers is named by
its label (`Tags separated by`, `Encoding`, `Header row`, `Sheet`, a column's `Field`). What only
a command's option or the environment sets is said as that command, in backticks, since the page
cannot change it.
"""

from __future__ import annotations

import re
from typing import Final

from ..proxy import SETTING_VARIABLE as PROXY_VARIABLE

_UNKNOWN_HELP: Final = (
    r'say what they are with --map "HEADER=FIELD" \(FIELD: id, email, a lead field, '
    r"customFields\.NAME, or - to drop it\), or leave them out with --ignore-unknown-columns"
)
_DROPPED: Final = "`dropped (not sent)`"  # the Field select's option that leaves a column out

#: Each rewrite, in order: a flag's longer phrases before the flag alone.
_REWRITES: Final[tuple[tuple[re.Pattern[str], str], ...]] = tuple(
    (re.compile(pattern), page)
    for pattern, page in (
        # The columns step: the tags separator, and what a column means.
        (r"pass --tags-separator '(.)'", r"choose `\1` under Tags separated by"),
        (
            r'lead ids under another name: --map "HEADER=id"',
            "lead ids under another name: choose id as that column's Field",
        ),
        (
            r'\(or drop one with --map "(.*?)=-"\)',
            rf"(or drop one: {_DROPPED} as the Field of `\1`)",
        ),
        (_UNKNOWN_HELP, f"choose what each one is as its Field ({_DROPPED} leaves it out)"),
        (r'say what the column is with --map "(.*?)=FIELD"', r"choose what `\1` is as its Field"),
        (r'drop the ids: --map "(.*?)=-"', rf"drop the ids: {_DROPPED} as the Field of `\1`"),
        (r"--map (.+)=(\S+?): ", r"the column `\1` as `\2`: "),
        (r", or - to drop the column", f", or {_DROPPED} to drop the column"),
        # The file step: how the file is read.
        (
            r"\(or pass --encoding for UTF-16 without a BOM\)",
            "(or choose utf-16 under Encoding, for UTF-16 without a BOM)",
        ),
        (r"pass --encoding ([\w.-]+)", r"choose \1 under Encoding"),
        (r"\(Excel's: --encoding ([\w.-]+)\)", r"(Excel's: \1 under Encoding)"),
        (r"check --encoding", "choose another Encoding"),
        (r"drop --encoding [\w.-]+", "choose utf-8 under Encoding"),
        (r"unhide (it|them) or pass --hidden-rows send", r"unhide \1 in the workbook"),
        (r", as --hidden-rows send asks", ""),
        (r"--encoding (\S+): (.*?)\(try ", r"Encoding \1: \2(choose "),
        (r"pass --header-row N \(N: the header's line\)", "give the header's line as Header row"),
        (r"pass --header-row (\d+) \(in a job: header-row = \d+\)", r"give \1 as Header row"),
        (r"pass --header-row (\d+)", r"give \1 as Header row"),
        (r"--header-row \d+ must be", "the Header row must be"),
        (r"\(--header-row (\d+)\)", r"(Header row \1)"),
        (r"--header-row (-?\d+): ", r"Header row \1: "),
        (r"; --sheet one of ", "; choose under Sheet one of "),
        (r"pass --sheet NAME \(one of them\)", "choose one of them under Sheet"),
        (r'pass --sheet (?:"(.*)"|(\S+))', r"choose `\1\2` under Sheet"),
        # The job: the key, Resume, and what only a command's options set.
        (
            r"check SENDKIT_API_KEY \(and --workspace-id for a platform key\)",
            "check the API key (and the Workspace id, for a platform key)",
        ),
        (r"rerun later with --resume", "Resume later"),
        (r"rerun with --resume", "Resume"),
        (r"resume the report \(--resume\)", "Resume"),
        (r"--resume can read it", "Resume can read it"),
        (r"check --base-url", "check the address given to `bulk-updater ui --base-url`"),
        (r"the API at --base-url", "the API the page sends to"),
        (r"--give-up-after ([\d.]+)", r"the \1s a job may be held"),
        (r"for --max-pause ([\d.]+)", r"for \1"),
        (r"\(--match (id|email)\)", r"(matching by \1)"),
        (r"pass --allow-not-found", "run it with `bulk-updater run --allow-not-found`"),
        (r"pass --delimiter ('.'|tab)", r"run it with `bulk-updater run --delimiter \1`"),
        (r"with --proxy\)", f"in {PROXY_VARIABLE})"),
        (r"--redis-clock (local|redis)", r"`bulk-updater run --redis-clock \1`"),
        (r"--leads takes", "`bulk-updater ui --sandbox-leads` takes"),
    )
)


def page_words(message: str) -> str:
    """`message` in the page's words: each flag it names is the page's choice that does the
    same, or said as the command whose option it is when the page has none."""
    for pattern, page in _REWRITES:
        message = pattern.sub(page, message)
    return message
