"""An app module whose import fails (exit status 4)."""

raise RuntimeError("this app cannot be imported")
