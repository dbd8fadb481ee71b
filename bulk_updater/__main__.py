"""`python -m bulk_updater` is the `bulk-updater` command."""

from .cli import main

main()
