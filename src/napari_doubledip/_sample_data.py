"""napari sample data (File ▸ Open Sample ▸ napari-doubledip): one sample per task, no downloads.

Each registered task's sample is a function of this module named by its key (the manifest's
``napari_doubledip._sample_data:noisy_photo``), returning napari ``LayerData`` tuples
``(data, kwargs, layer_type)`` built from :mod:`napari_doubledip.samples`. This module imports
neither torch nor napari.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from . import registry
from .registry import SAMPLE_SIZE

__all__ = ["SAMPLE_SIZE", "sample_function"]

LayerData = tuple[Any, dict[str, Any], str]


def sample_function(key: str) -> Callable[[], list[LayerData]]:
    """The napari sample function of the task whose sample is ``key``."""
    for entry in registry.entries():
        sample = entry.sample
        if sample is not None and sample.key == key:

            def layers(sample: registry.Sample = sample) -> list[LayerData]:
                return sample.layers(SAMPLE_SIZE)

            layers.__name__ = layers.__qualname__ = key
            layers.__doc__ = f"{sample.display_name}: {entry.title}'s sample input."
            return layers
    raise KeyError(key)


def __getattr__(name: str) -> Any:
    try:
        return sample_function(name)
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
