"""A tiny live plot of the total loss (log scale), painted with QPainter."""

from __future__ import annotations

import math

from qtpy.QtCore import QPointF, Qt
from qtpy.QtGui import QColor, QPainter, QPen, QPolygonF
from qtpy.QtWidgets import QSizePolicy, QWidget

__all__ = ["LossPlot"]


class LossPlot(QWidget):
    """A polyline of the loss against snapshot number; log10 scale when every value is positive."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.values: list[float] = []
        self.setMinimumHeight(56)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("Total loss of the run (log scale)")

    def clear(self) -> None:
        """Forget all values."""
        self.values = []
        self.update()

    def add(self, value: float) -> None:
        """Append one loss value (non-finite values are skipped)."""
        if math.isfinite(value):
            self.values.append(float(value))
            self.update()

    def _scaled(self) -> tuple[list[float], bool]:
        log = bool(self.values) and min(self.values) > 0
        return ([math.log10(v) for v in self.values] if log else list(self.values)), log

    def paintEvent(self, event) -> None:  # noqa: N802 - Qt API
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        rect = self.rect().adjusted(2, 2, -2, -2)
        painter.setPen(QPen(QColor(128, 128, 128, 120), 1))
        painter.drawRect(rect)
        values, log = self._scaled()
        if len(values) >= 2:
            lo, hi = min(values), max(values)
            span = hi - lo if hi > lo else 1.0
            n = len(values) - 1
            points = QPolygonF(
                [
                    QPointF(
                        rect.left() + rect.width() * i / n,
                        rect.bottom() - rect.height() * (v - lo) / span,
                    )
                    for i, v in enumerate(values)
                ]
            )
            painter.setPen(QPen(QColor(80, 170, 255), 1.5))
            painter.drawPolyline(points)
        if self.values:
            painter.setPen(QColor(200, 200, 200))
            text = f"loss {self.values[-1]:.4g}" + (" (log scale)" if log else "")
            painter.drawText(
                rect.adjusted(4, 2, -4, -2), Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop, text
            )
        painter.end()
