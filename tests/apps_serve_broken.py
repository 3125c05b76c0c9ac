"""An app module whose import fails: ``bridge serve`` must say so in one line."""

raise RuntimeError("broken at import")
