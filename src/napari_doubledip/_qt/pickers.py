"""Layer pickers that follow the viewer: magicgui's combo box, and an ordered check list magicgui lacks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from magicgui.backends._qtpy.widgets import QBaseValueWidget
from magicgui.widgets import ComboBox
from magicgui.widgets.bases import ValueWidget
from qtpy.QtCore import Qt, Signal
from qtpy.QtWidgets import (
    QHBoxLayout,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

__all__ = ["LayerCheckList", "LayerWatcher", "layer_choice", "layer_list", "refresh_choice"]


class LayerWatcher:
    """Calls ``changed()`` whenever layers are added, removed, moved or renamed.

    Parameters
    ----------
    viewer
        The napari viewer.
    changed
        Called with no argument after any change.
    removed
        Called with the layer first when a layer is removed (``None``: nothing).
    """

    def __init__(
        self, viewer: Any, changed: Callable[[], Any], removed: Callable[[Any], Any] | None = None
    ) -> None:
        self.viewer = viewer
        self.changed = changed
        self.removed = removed
        self._named: list[Any] = []
        self.connected = True
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
        self.changed()

    def _on_removed(self, event: Any) -> None:
        layer = event.value
        layer.events.name.disconnect(self._on_changed)
        self._named = [x for x in self._named if x != layer]
        if self.removed is not None:
            self.removed(layer)
        self.changed()

    def _on_changed(self, event: Any = None) -> None:
        self.changed()

    def disconnect(self) -> None:
        """Stop following the viewer (safe to call twice)."""
        if not self.connected:
            return
        self.connected = False
        events = self.viewer.layers.events
        events.inserted.disconnect(self._on_inserted)
        events.removed.disconnect(self._on_removed)
        events.moved.disconnect(self._on_changed)
        for layer in self._named:
            layer.events.name.disconnect(self._on_changed)
        self._named = []


def _always(layer: Any) -> bool:
    return True


def layer_choice(
    viewer: Any,
    types: tuple[type, ...],
    *,
    label: str,
    tooltip: str = "",
    nullable: bool = False,
    accept: Callable[[Any], bool] = _always,
) -> ComboBox:
    """A magicgui combo box of the viewer's layers of some types, as napari builds its layer choices.

    napari's own layer choice finds its viewer among the widget's Qt ancestors, which a dock
    widget has only once docked; this one is given its viewer, and lists only what ``accept``
    takes (e.g. not the task's own outputs). Call :func:`refresh_choice` when the layers change.

    Parameters
    ----------
    viewer
        The napari viewer.
    types
        Layer classes listed.
    label, tooltip
        The form's label and the tooltip.
    nullable
        Offer "no layer" (``None``) first.
    accept
        Further filter: list a layer only when ``accept(layer)``.

    Returns
    -------
    The combo box; its ``value`` is the chosen layer (or ``None``).
    """

    def choices(_widget: Any) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in viewer.layers if isinstance(layer, types) and accept(layer)]

    return ComboBox(choices=choices, nullable=nullable, label=label, tooltip=tooltip or None)


def refresh_choice(combo: ComboBox, default: Any = None) -> None:
    """Re-list a :func:`layer_choice` in the viewer's order and names, keeping the chosen layer if it is there.

    Parameters
    ----------
    combo
        The combo box.
    default
        What to choose when the chosen item is gone (``None``: what the combo box falls back to).
    """
    current = combo.value
    with combo.changed.blocked():
        combo.native.clear()  # magicgui keys items by name: a renamed layer would move to the end
        combo.reset_choices()
        if current is not None and any(layer is current for layer in combo.choices):
            combo.value = current
        elif default is not None:
            combo.value = default
    if combo.value is not current:
        combo.changed.emit(combo.value)


class LayerCheckList(QWidget):
    """An ordered list of the viewer's image layers with check boxes and Up / Down buttons.

    magicgui has no ordered multiple choice; :func:`layer_list` wraps this one as a magicgui
    value widget. It lists nothing until :meth:`follow` gives it a viewer.
    """

    #: Emitted with the ticked layers (in order) when they change.
    changed = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.viewer: Any = None
        self.types: tuple[type, ...] = ()
        self.accept: Callable[[Any], bool] = _always
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
        self.list.itemChanged.connect(lambda _item: self._emit())

    def follow(self, viewer: Any, types: tuple[type, ...], accept: Callable[[Any], bool] = _always) -> None:
        """List ``viewer``'s layers of ``types`` that ``accept`` takes, all ticked to begin with."""
        self.viewer, self.types, self.accept = viewer, types, accept
        self.refresh(check_new=True)

    def _emit(self) -> None:
        self.changed.emit(self.value())

    def _items(self) -> list[QListWidgetItem]:
        return [self.list.item(i) for i in range(self.list.count())]

    def refresh(self, check_new: bool = False) -> None:
        """Follow the viewer: drop removed layers, rename, append new layers (unticked)."""
        listed = [] if self.viewer is None else self.viewer.layers
        layers = [layer for layer in listed if isinstance(layer, self.types) and self.accept(layer)]
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
        self._emit()

    def _move(self, delta: int) -> None:
        row = self.list.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.list.count():
            return
        item = self.list.takeItem(row)
        self.list.insertItem(target, item)
        self.list.setCurrentRow(target)
        self._emit()

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
        self._emit()


class _LayerListBackend(QBaseValueWidget):
    """magicgui's Qt backend protocol for :class:`LayerCheckList` (value: the ticked layers)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(LayerCheckList, "value", "set_value", "changed", **kwargs)


def layer_list(
    viewer: Any,
    types: tuple[type, ...],
    *,
    label: str,
    tooltip: str = "",
    accept: Callable[[Any], bool] = _always,
) -> ValueWidget:
    """A magicgui value widget over an ordered :class:`LayerCheckList` of the viewer's layers.

    The parameters are those of :func:`layer_choice` (there is no "no layer" here: none ticked).

    Returns
    -------
    The widget; its ``value`` is the list of ticked layers in list order, its ``native`` the list.
    """
    widget = ValueWidget(widget_type=_LayerListBackend, label=label, tooltip=tooltip or None)
    widget.native.follow(viewer, types, accept)
    return widget
