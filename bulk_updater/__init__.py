"""bulk-updater."""
