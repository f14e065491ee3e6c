"""Keeping results: the output folder's layout, the journal, PO results, the status view."""
