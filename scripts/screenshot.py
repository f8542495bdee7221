"""Make docs/screenshot.png: a task's GUI demo in napari, caught mid-run.

Needs a display; on a headless machine run it under Xvfb::

    xvfb-run -a .venv/bin/python scripts/screenshot.py [--task denoise] [--min-step 300]

It opens the demo (sample + docked widget, Run clicked), lets the run go on until it has reached
``--min-step`` steps (or ``--timeout`` seconds), grabs the whole window, stops the run and
writes a PNG (colour-quantised if it would exceed ``--max-kb``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ROOT = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="denoise", help="demo task (denoise, inpaint, segment, ...)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshot.png")
    parser.add_argument(
        "--min-step", type=int, default=300, help="grab once the run has done this many steps"
    )
    parser.add_argument("--timeout", type=float, default=120.0, help="grab after this many seconds anyway")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=760)
    parser.add_argument("--grid", action=argparse.BooleanOptionalAction, default=True, help="grid view")
    parser.add_argument("--max-kb", type=int, default=450)
    return parser.parse_args()


def wait(app, seconds: float) -> None:
    """Process Qt events for ``seconds``."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def main() -> None:
    args = parse_args()
    import napari
    from PIL import Image
    from qtpy.QtWidgets import QApplication

    from napari_doubledip._qt.demo import open_demo

    viewer = napari.Viewer(title="napari-doubledip", show=True)
    viewer.window.resize(args.width, args.height)
    app = QApplication.instance()
    viewer, widget = open_demo(args.task, run=True, viewer=viewer)
    viewer.grid.enabled = args.grid
    viewer.reset_view()
    start = time.perf_counter()
    while time.perf_counter() - start < args.timeout and widget.is_running:
        wait(app, 0.1)
        snapshot = widget.state.last_snapshot if widget.state is not None else None
        if snapshot is not None and snapshot.step >= args.min_step:
            break
    wait(app, 0.5)
    pixels = viewer.screenshot(canvas_only=False, flash=False)
    widget.stop()
    while widget.is_running:
        wait(app, 0.1)
    image = Image.fromarray(pixels[..., :3])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    image.save(args.out, optimize=True)
    if args.out.stat().st_size > args.max_kb * 1024:
        image.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(args.out, optimize=True)
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KB, {image.width}x{image.height})")
    viewer.close()


if __name__ == "__main__":
    main()
