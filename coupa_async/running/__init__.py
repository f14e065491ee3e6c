"""Running: the Downloader (library entry), one run over an input table, progress, metrics."""
