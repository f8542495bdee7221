"""The engine: torch only, no Qt or napari imports."""
