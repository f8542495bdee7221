"""``python -m napari_doubledip``: the command line (see :mod:`napari_doubledip.cli`)."""

from __future__ import annotations

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
