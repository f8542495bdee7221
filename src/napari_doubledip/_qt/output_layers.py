"""The output layers of a task's dock widget: found again on a re-run, else created; filled by snapshots.

Everything here runs on the main thread (the worker's signals are delivered there). Creating a
napari layer takes tens to hundreds of milliseconds (its vispy visual), so a run's new layers are
created one per event-loop turn after Run, not all inside the Run button's handler.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..registry import Output, TaskEntry
from .run_model import OUTPUT_TAG, RESULT_KEY, OutputTarget, RunPlan, RunState, frame_shape, leading_shape

__all__ = ["OutputLayers"]


class OutputLayers:
    """Creates, finds, updates and tags the output layers of one task's runs in one viewer.

    An output layer carries ``metadata[OUTPUT_TAG] = {"task", "source", "key"}``; a re-run on
    the same source finds it by that tag and replaces its data rather than adding a layer.

    Parameters
    ----------
    viewer
        The napari viewer.
    spec
        The task's registry entry (its outputs).
    """

    def __init__(self, viewer: Any, spec: TaskEntry) -> None:
        self.viewer = viewer
        self.spec = spec

    def is_own(self, layer: Any) -> bool:
        """Whether ``layer`` is an output of this task (those of other tasks may be chained)."""
        tag = layer.metadata.get(OUTPUT_TAG)
        return isinstance(tag, dict) and tag.get("task") == self.spec.name

    def _find(self, tag: dict[str, str]) -> Any | None:
        for layer in self.viewer.layers:
            if layer.metadata.get(OUTPUT_TAG) == tag:
                return layer
        return None

    def targets(self, plan: RunPlan) -> list[OutputTarget]:
        """The output layers of a run: found again (re-run), or to be created by :meth:`create_pending`."""
        from napari.layers import Image, Labels

        targets = []
        for output in self.spec.outputs:
            pairs = (
                [(output.key.format(i=i), src) for i, src in enumerate(plan.sources)]
                if output.per_input
                else [(output.key, plan.sources[0])]
            )
            for key, source in pairs:
                tag = {"task": self.spec.name, "source": source.name, "key": output.key}
                layer_type = Labels if output.kind == "labels" else Image
                ndim = source.ndim if plan.all_frames else 2
                layer = self._find(tag)
                if layer is None or not isinstance(layer, layer_type) or layer.ndim != ndim:
                    targets.append(OutputTarget(output, key, None, source, pending=True, replaces=layer))
                    continue
                layer.metadata.pop(RESULT_KEY, None)
                layer.scale, layer.translate = self.geometry(plan, source, ndim)
                targets.append(OutputTarget(output, key, layer, source))
        return targets

    def create_pending(self, state: RunState, limit: int | None = None) -> bool:
        """Create up to ``limit`` (``None``: all) of a run's pending layers; return whether any are left.

        A new layer holds the latest snapshot's data, or zeros until the first snapshot; a layer
        of the same output but another kind or dimensions is replaced in place.
        """
        pending = [target for target in state.targets if target.pending]
        for target in pending[:limit]:
            tag = {"task": self.spec.name, "source": target.source.name, "key": target.spec.key}
            old = target.replaces
            position = None
            if old is not None and old in self.viewer.layers:
                position = list(self.viewer.layers).index(old)
                self.viewer.layers.remove(old)
            target.layer = self._add(state.plan, target.source, target.spec, tag)
            if position is not None:
                self.viewer.layers.move(len(self.viewer.layers) - 1, position)
            target.pending, target.replaces, target.created = False, None, True
            if target.latest is not None:
                target.layer.data = target.latest
                target.stale, target.updated = False, True
        return len(pending) > (len(pending) if limit is None else limit)

    @staticmethod
    def geometry(plan: RunPlan, source: Any, ndim: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """The scale and translation of an output layer of ``ndim`` dimensions over ``source``.

        Those of the source, with a run on a region moved to the region's corner.
        """
        scale = tuple(float(s) for s in source.scale)[-ndim:]
        translate = [float(t) for t in source.translate][-ndim:]
        if plan.region is not None:
            translate[-2] += plan.region.y0 * scale[-2]
            translate[-1] += plan.region.x0 * scale[-1]
        return scale, tuple(translate)

    @staticmethod
    def cancel_pending(state: RunState) -> None:
        """Create none of a run's pending layers (the run failed before they were needed)."""
        for target in state.targets:
            target.pending = False

    def _add(self, plan: RunPlan, source: Any, output: Output, tag: dict) -> Any:
        """A new output layer holding zeros until the first snapshot, with the source's geometry."""
        n = source.ndim if plan.all_frames else 2
        lead = leading_shape(source) if plan.all_frames else ()
        frame = frame_shape(source)
        if plan.region is not None:
            frame = plan.region.shape + frame[2:]
        scale, translate = self.geometry(plan, source, n)
        geometry = {
            "name": f"{source.name} · {output.suffix}",
            "scale": scale,
            "translate": translate,
            "metadata": {OUTPUT_TAG: tag},
            "visible": output.visible,
        }
        if output.kind == "labels":
            return self.viewer.add_labels(np.zeros(lead + frame[:2], np.uint8), **geometry)
        if output.kind == "mask":
            return self.viewer.add_image(
                np.zeros(lead + frame[:2], np.float32),
                contrast_limits=(0.0, 1.0),
                colormap=output.colormap,
                blending="additive",
                **geometry,
            )
        if output.kind == "rgba":  # a colour with its own opacity: what lies below shows through
            return self.viewer.add_image(
                np.zeros(lead + frame[:2] + (4,), np.float32),
                rgb=True,
                contrast_limits=(0.0, 1.0),
                **geometry,
            )
        rgb = bool(source.rgb)
        return self.viewer.add_image(
            np.zeros(lead + frame, source.dtype),
            rgb=rgb,
            contrast_limits=tuple(source.contrast_limits),
            colormap=None if rgb else source.colormap,
            **geometry,
        )

    @staticmethod
    def stage(state: RunState, position: int, snapshot: Any) -> None:
        """Take a snapshot's outputs (frame ``position``) as the run's output layers' next data.

        Nothing is drawn here: :meth:`present` puts the staged data into the layers (a later
        snapshot staged before then replaces it; a stack keeps every frame's latest values).
        Outputs of a layer still to be created are kept for it (``latest``).
        """
        for target in state.targets:
            value = snapshot.outputs.get(target.key)
            if value is None or (target.layer is None and not target.pending):
                continue
            target.latest = target.frame_array(state.plan, position, value)
            target.stale = True

    @staticmethod
    def present(state: RunState, limit: int | None = None, budget: float | None = None) -> bool:
        """Put the staged data into up to ``limit`` (``None``: all) layers; return whether any are left.

        Setting a layer's data makes napari redo its slice, thumbnail and texture (tens of ms
        for a large image, a few for a small one), and each event-loop turn that changed a
        layer ends with a repaint of the canvas (under Xvfb's software OpenGL 15-40 ms by
        itself): while a run goes on (``budget`` given) the widget sets layers until ``budget``
        seconds have gone (at least one layer), so that small layers share one repaint and large
        ones get a turn each. Hidden layers wait meanwhile (nobody sees them; they keep their
        staged data and get it in the first round after they are shown, or when the run ends,
        ``budget=None``).
        """
        stale = [t for t in state.targets if t.stale and t.layer is not None and t.latest is not None]
        if budget is not None:
            stale = [t for t in stale if t.layer.visible]
        start = time.perf_counter()
        done = 0
        for target in stale[:limit]:
            if done and budget is not None and time.perf_counter() - start >= budget:
                break
            target.layer.data = target.latest
            target.stale, target.updated = False, True
            done += 1
        return len(stale) > done

    @staticmethod
    def tag(state: RunState, info: dict[str, Any]) -> None:
        """Record a finished run's parameters in each of its output layers."""
        for target in state.targets:
            if target.layer is not None:
                target.layer.metadata[RESULT_KEY] = info

    def drop_empty(self, state: RunState) -> None:
        """Remove the layers a failed run created but never filled, and create no more."""
        self.cancel_pending(state)
        for target in state.targets:
            if target.created and not target.updated and target.layer in self.viewer.layers:
                self.viewer.layers.remove(target.layer)
                target.layer = None

    @staticmethod
    def forget(state: RunState, layer: Any) -> bool:
        """Stop updating ``layer`` (removed by the user); return whether it was an output of the run."""
        found = False
        for target in state.targets:
            if target.layer is not None and target.layer == layer:
                target.layer = None
                found = True
        return found
