"""`python -m bulk_updater` is the `bulk-updater` command."""

from .launch import main

main()
