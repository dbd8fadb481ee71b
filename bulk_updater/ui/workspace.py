"""The server's private folder: uploads and the files written from them, readable by the user
alone (0700), removed when the server stops.

An upload is streamed to disk as it arrives, in chunks, so a 1 GB file never sits in memory (nor in
the browser, which sends the file straight from disk). Its name on disk is ours (`upload-N.EXT`):
the browser's file name is shown, never used as a path.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

from ..errors import InputError

#: The formats the page reads, by the ending of the file's name.
EXTENSIONS: Final = (".csv", ".tsv", ".txt", ".jsonl", ".ndjson", ".xlsx", ".xlsm")


class Workspace:
    """A 0700 temporary folder; `close()` removes it and everything in it."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bulk-updater-ui-"))
        os.chmod(self.root, 0o700)  # mkdtemp makes it so; said here because it matters
        self._count = 0

    def _next(self, stem: str, suffix: str = "") -> Path:
        self._count += 1
        return self.root / f"{stem}-{self._count}{suffix}"

    async def save_upload(self, name: str, chunks: AsyncIterator[bytes]) -> Path:
        """Write an upload to the folder as it arrives; the path it got."""
        suffix = Path(name).suffix.lower()
        if suffix not in EXTENSIONS:
            raise InputError(
                f"{name}: the page reads CSV (.csv, .tsv, .txt), JSON lines (.jsonl) and "
                ".xlsx files; export the file as one of them"
            )
        path = self._next("upload", suffix)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "wb") as file:
                async for chunk in chunks:
                    file.write(chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def write_private(self, name: str, text: str) -> Path:
        """A file of the server's own (no upload's name), readable by the user alone (0600)."""
        path = self.root / name
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(text)
        return path

    def scratch(self, suffix: str) -> Path:
        """A path for a file the server writes (fixed rows), in the folder."""
        return self._next("rows", suffix)

    def folder(self, stem: str) -> Path:
        """A new folder in the folder (an earlier job's files), the user's alone too."""
        path = self._next(stem)
        path.mkdir(mode=0o700)
        return path

    def discard(self, path: Path) -> None:
        """Remove a file of the folder that is no longer needed (a file replaced by another)."""
        if path.parent == self.root:
            path.unlink(missing_ok=True)

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)
