"""Entry point for ``python -m unitcorn``."""

from unitcorn.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
