"""Utilities shipped with the package (compliance checks for env authors)."""
