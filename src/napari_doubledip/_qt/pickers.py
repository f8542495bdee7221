"""Layer pickers that follow the viewer: a combo box and an ordered check list."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["LayerCheckList", "LayerCombo", "LayerWatcher"]


class LayerWatcher:
    """Calls ``callback()`` whenever layers are added, removed, moved or renamed."""

    def __init__(self, viewer: Any, callback: Any) -> None:
        self.viewer = viewer
        self.callback = callback
        self._named: list[Any] = []
        events = viewer.layers.events
        events.inserted.connect(self._on_inserted)
        events.removed.connect(self._on_removed)
        events.moved.connect(self._on_changed)
        for layer in viewer.layers:
            self._watch(layer)

    def _watch(self, layer: Any) -> None:
        layer.events.name.connect(self._on_changed)
        self._named.append(layer)

    def _on_inserted(self, event: Any) -> None:
        self._watch(event.value)
        self.callback()

    def _on_removed(self, event: Any) -> None:
        layer = event.value
        layer.events.name.disconnect(self._on_changed)
        self._named = [x for x in self._named if x != layer]
        self.callback()

    def _on_changed(self, event: Any = None) -> None:
        self.callback()

    def disconnect(self) -> None:
        """Stop following the viewer."""
        events = self.viewer.layers.events
        events.inserted.disconnect(self._on_inserted)
        events.removed.disconnect(self._on_removed)
        events.moved.disconnect(self._on_changed)
        for layer in self._named:
            layer.events.name.disconnect(self._on_changed)
        self._named = []


def _always(layer: Any) -> bool:
    return True


class LayerCombo(QComboBox):
    """A combo box of the viewer's layers of some types, kept up to date.

    Parameters
    ----------
    viewer
        The napari viewer.
    types
        Layer classes listed.
    optional
        Add a first "(none)" entry.
    accept
        Further filter: list a layer only when ``accept(layer)``.
    """

    changed = Signal()

    def __init__(
        self,
        viewer: Any,
        types: tuple[type, ...],
        optional: bool = False,
        accept: Callable[[Any], bool] = _always,
        parent=None,
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.types = types
        self.accept = accept
        self.optional = optional
        self._layers: list[Any] = []
        self.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.refresh()

    def value(self) -> Any | None:
        """The chosen layer (``None`` when none)."""
        i = self.currentIndex() - (1 if self.optional else 0)
        return self._layers[i] if 0 <= i < len(self._layers) else None

    def set_value(self, layer: Any | None) -> None:
        """Choose ``layer`` (``None``: the "(none)" entry, or nothing)."""
        offset = 1 if self.optional else 0
        for i, candidate in enumerate(self._layers):
            if layer is not None and candidate == layer:
                self.setCurrentIndex(i + offset)
                return
        self.setCurrentIndex(0 if self.optional else -1)

    def refresh(self) -> None:
        """Re-list the layers, keeping the chosen one when it still exists."""
        current = self.value()
        self._layers = [
            layer for layer in self.viewer.layers if isinstance(layer, self.types) and self.accept(layer)
        ]
        self.blockSignals(True)
        self.clear()
        if self.optional:
            self.addItem("(none)")
        for layer in self._layers:
            self.addItem(layer.name)
        self.blockSignals(False)
        if current is not None and current in self._layers:
            self.set_value(current)
        elif self._layers and not self.optional:
            self.setCurrentIndex(0)
        else:
            self.setCurrentIndex(0 if self.optional else -1)
        self.changed.emit()

    def layers(self) -> list[Any]:
        """The layers listed, in order."""
        return list(self._layers)


class LayerCheckList(QWidget):
    """An ordered list of the viewer's image layers with check boxes and Up / Down buttons."""

    changed = Signal()

    def __init__(
        self, viewer: Any, types: tuple[type, ...], accept: Callable[[Any], bool] = _always, parent=None
    ) -> None:
        super().__init__(parent)
        self.viewer = viewer
        self.types = types
        self.accept = accept
        self.list = QListWidget()
        self.list.setMaximumHeight(110)
        self.list.setToolTip("Tick the images to use; their order is the order of the list")
        self.up = QPushButton("Up")
        self.down = QPushButton("Down")
        self.up.clicked.connect(lambda: self._move(-1))
        self.down.clicked.connect(lambda: self._move(+1))
        buttons = QVBoxLayout()
        buttons.addWidget(self.up)
        buttons.addWidget(self.down)
        buttons.addStretch(1)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self.list.itemChanged.connect(lambda _item: self.changed.emit())
        self.refresh(check_new=True)

    def _items(self) -> list[QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    def refresh(self, check_new: bool = False) -> None:
        """Follow the viewer: drop removed layers, rename, append new layers (unticked)."""
        layers = [
            layer for layer in self.viewer.layers if isinstance(layer, self.types) and self.accept(layer)
        ]
        self.list.blockSignals(True)
        kept = []
        for item in self._items():
            layer = item.data(Qt.ItemDataRole.UserRole)
            if layer in layers:
                item.setText(layer.name)
                kept.append(layer)
            else:
                self.list.takeItem(self.list.row(item))
        for layer in layers:
            if layer not in kept:
                item = QListWidgetItem(layer.name)
                item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
                item.setCheckState(Qt.CheckState.Checked if check_new else Qt.CheckState.Unchecked)
                item.setData(Qt.ItemDataRole.UserRole, layer)
                self.list.addItem(item)
        self.list.blockSignals(False)
        self.changed.emit()

    def _move(self, delta: int) -> None:
        row = self.list.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.list.count():
            return
        item = self.list.takeItem(row)
        self.list.insertItem(target, item)
        self.list.setCurrentRow(target)
        self.changed.emit()

    def layers(self) -> list[Any]:
        """All listed layers, in order."""
        return [item.data(Qt.ItemDataRole.UserRole) for item in self._items()]

    def value(self) -> list[Any]:
        """The ticked layers, in list order."""
        return [
            item.data(Qt.ItemDataRole.UserRole)
            for item in self._items()
            if item.checkState() == Qt.CheckState.Checked
        ]

    def set_value(self, layers: list[Any]) -> None:
        """Tick exactly ``layers``, and put them first, in this order."""
        self.list.blockSignals(True)
        for target, layer in enumerate(layers):
            for row, item in enumerate(self._items()):
                if item.data(Qt.ItemDataRole.UserRole) == layer:
                    self.list.insertItem(target, self.list.takeItem(row))
                    break
        wanted = list(layers)
        for item in self._items():
            checked = item.data(Qt.ItemDataRole.UserRole) in wanted
            item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self.changed.emit()
