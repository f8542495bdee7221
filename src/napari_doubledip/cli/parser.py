"""The ``napari-doubledip`` argument parser: one subcommand per registered task, plus ``demo``.

The flags of a task come from its registry entry: its second input (``--mask``, ``--hints``,
``--airlight``, ...) and the options its options dataclass marks as shown, under their own names.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import registry
from ..core.options import NET_PRESETS, OptionInfo

__all__ = [
    "DEFAULT_THREADS",
    "api_options",
    "build_parser",
    "parse_batch_frames",
    "parse_frames",
    "parse_region",
]


def parse_batch_frames(text: str) -> int | str:
    """Parse ``--batch-frames``: ``"auto"`` or a positive whole number."""
    if text == "auto":
        return text
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(
            f"--batch-frames takes 'auto' or a positive whole number, got {text!r}"
        )
    return value


def parse_frames(text: str) -> slice | int | None:
    """Parse ``--frames``: ``"all"`` (``None``), ``"N"`` (one frame) or ``"A:B"`` (a Python slice).

    Raises
    ------
    argparse.ArgumentTypeError
        On anything else.
    """
    text = text.strip()
    if text == "all":
        return None
    try:
        if ":" in text:
            parts = [int(p) if p.strip() else None for p in text.split(":")]
            if len(parts) > 3:
                raise ValueError
            return slice(*parts)
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--frames takes 'all', a frame index N or a range A:B, got {text!r}"
        ) from None


def parse_region(text: str) -> list[int | None]:
    """Parse ``--region Y0:Y1,X0:X1`` (pixel rows and columns, Python slice bounds) to ``[y0, y1, x0, x1]``.

    A bound may be left out (``:256,100:`` is rows 0-255 from column 100 on); negative bounds count
    from the end, as in Python.

    Raises
    ------
    argparse.ArgumentTypeError
        On anything else.
    """
    parts = text.replace(" ", "").split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        bounds: list[int | None] = []
        for part in parts:
            ends = part.split(":")
            if len(ends) != 2:
                raise ValueError
            bounds += [int(e) if e else None for e in ends]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--region takes rows and columns as Y0:Y1,X0:X1 (e.g. 0:512,256:768), got {text!r}"
        ) from None
    return bounds


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {value}")
    return value


#: Torch CPU threads per job unless ``--threads`` says otherwise: the same in-process and on every
#: dask worker, because the thread count changes the numerics (and the optimisation amplifies
#: that: up to 25 grey levels apart between 1 and 2 threads).
DEFAULT_THREADS = 1

#: Largest ``--seed`` (the API's limit).
MAX_SEED = 2**32 - 1


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"expected a whole number from 0 to {MAX_SEED}, got {value}")
    return value


def _axes(text: str) -> str:
    """``--axes``: tifffile axis letters of the input files, e.g. ``TYX``, ``TYXS``, ``YXS``."""
    axes = text.strip().upper()
    ok = (
        len(set(axes)) == len(axes)
        and axes.isalpha()
        and "YX" in axes
        and (axes.endswith("YX") or axes.endswith("YXS") or axes.endswith("YXC"))
        and len(axes) <= 5
    )
    if not ok:
        raise argparse.ArgumentTypeError(
            f"--axes takes the file's axis letters ending in YX, YXS or YXC (e.g. TYX for a stack of "
            f"gray frames, TYXS for colour frames, SYX for a planar colour image), got {text!r}"
        )
    return axes


def _common_options(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("optimisation")
    run.add_argument("--steps", type=_positive_int, help="step cap (neither cap: the task's default)")
    run.add_argument("--max-seconds", type=_positive_float, help="time cap per job, in seconds")
    run.add_argument(
        "--seed",
        type=_seed,
        default=0,
        help=f"random seed, 0 to {MAX_SEED} (default 0): same seed, same result",
    )
    run.add_argument("--net", help=f"network: {', '.join(NET_PRESETS)} (default: the task's own)")
    run.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps")
    run.add_argument("--no-early-stop", action="store_true", help="always run to the step/time cap")
    run.add_argument(
        "--threads",
        type=_positive_int,
        help=f"torch CPU threads per job (default {DEFAULT_THREADS}, in-process and on every worker alike: "
        "the thread count changes the numerics, so the same count gives the same images anywhere)",
    )
    run.add_argument(
        "--precision",
        choices=("auto", "float32", "bfloat16"),
        default="auto",
        help="auto (bfloat16 on GPUs, and on CPUs with native bfloat16 for nets of 1M+ parameters; "
        "float32 elsewhere), float32, bfloat16",
    )


def _batch_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("inputs", nargs="+", metavar="INPUTS", help="image files, folders or glob patterns")
    parser.add_argument("--out", "-o", required=True, type=Path, help="output folder (created)")
    parser.add_argument("--overwrite", action="store_true", help="rerun jobs whose results already exist")
    parser.add_argument("--quiet", "-q", action="store_true", help="no per-job progress lines")
    parser.add_argument(
        "--progress-every",
        type=_positive_float,
        default=5.0,
        metavar="S",
        help="seconds between progress lines of a running job (default 5)",
    )
    scale = parser.add_argument_group("scale-out (dask.distributed)").add_mutually_exclusive_group()
    scale.add_argument(
        "--workers", type=_positive_int, help="start a local dask cluster of N worker processes"
    )
    scale.add_argument(
        "--scheduler", metavar="ADDR", help="submit to a running dask scheduler, e.g. tcp://host:8786"
    )


def _box(text: str) -> list[float]:
    from ..registry._common import parse_box

    try:
        return parse_box(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _option_flag(group: Any, info: OptionInfo) -> None:
    """The CLI flag of a shown option: its name with dashes, plus its older spellings."""
    kwargs: dict[str, Any] = {
        "dest": info.name,
        "default": None,
        "help": f"{info.help} (default {info.default})",
    }
    if isinstance(info.default, bool):
        kwargs["action"] = argparse.BooleanOptionalAction
    elif info.choices:
        kwargs["choices"] = info.choices
    elif isinstance(info.default, int | float):
        kwargs["type"] = type(info.default)
    group.add_argument(info.flag, *info.cli_aliases, **kwargs)


def _task_options(p: argparse.ArgumentParser, entry: registry.TaskEntry) -> None:
    own = p.add_argument_group(f"{entry.name} options")
    if not entry.inputs.group:
        own.add_argument(
            "--frames",
            type=parse_frames,
            default=False,
            metavar="all|N|A:B",
            help="run frames of (T,Y,X[,C]) stacks as separate jobs and reassemble the stack (TIFF)",
        )
        own.add_argument(
            "--batch-frames",
            type=parse_batch_frames,
            default="auto",
            metavar="auto|N",
            help="with --frames, run up to N frames of a stack side by side on one grouped net; auto: on a"
            " CUDA GPU as many as its memory holds, one at a time on a CPU (denoise, inpaint; default auto)",
        )
        own.add_argument(
            "--region",
            type=parse_region,
            default=None,
            metavar="Y0:Y1,X0:X1",
            help="run on these rows and columns only (a quick look at a large image before the whole "
            "of it); the outputs are that region, and its mask or hints are cropped alike",
        )
    own.add_argument(
        "--axes",
        type=_axes,
        default=None,
        help="axes of the input TIFFs when their metadata does not say (e.g. TYX: a stack of gray "
        "frames, not a planar RGB image); ImageJ/OME metadata is used otherwise",
    )
    aux = entry.aux
    if aux is not None:
        if aux.kind == "value":
            own.add_argument(f"--{aux.name}", type=aux.parse, default=None, help=aux.cli_help)
        else:
            own.add_argument(f"--{aux.name}", required=aux.required, help=aux.cli_help)
        if aux.box is not None:
            own.add_argument(
                "--" + aux.box.replace("_", "-"),
                dest=aux.box,
                type=_box,
                default=None,
                metavar="Y0,X0,Y1,X1",
                help="a rectangle around the object in pixels (rows Y0 to Y1, columns X0 to X1): "
                "everything outside it is background (with or without --hints)",
            )
        if aux.invertible:
            own.add_argument(
                f"--invert-{aux.name}",
                action="store_true",
                help=f"nonzero {aux.name} pixels are the known ones",
            )
    if entry.inputs.group:
        own.add_argument(
            "--group-by",
            choices=("none", "folder"),
            default="none",
            help="none: all INPUTS form one group (default); folder: one group per folder",
        )
    for info in entry.shown_options:
        _option_flag(own, info)


def _epilog() -> str:
    lines = [line for entry in registry.entries() if entry.example for line in entry.example.splitlines()]
    lines.append("napari-doubledip demo --out results/demo")
    return (
        "examples:\n"
        + "".join(f"  {line}\n" for line in lines)
        + "\nEach result is written with a JSON sidecar (parameters, seed, steps, losses, device, versions,\n"
        "time); a rerun skips results whose sidecar matches (--overwrite reruns them).\n"
    )


def build_parser() -> argparse.ArgumentParser:
    """The ``napari-doubledip`` argument parser (one subcommand per task, plus ``demo``)."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="napari-doubledip",
        description="Deep Image Prior and Double-DIP from the command line.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"napari-doubledip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    for entry in registry.entries():
        p = sub.add_parser(entry.name, help=entry.help, description=entry.help.capitalize() + ".")
        _batch_options(p)
        _common_options(p)
        p.set_defaults(task=entry.name)
        _task_options(p, entry)

    names = [entry.name for entry in registry.entries() if entry.demo is not None]
    demo = sub.add_parser(
        "demo",
        help="run a task on a bundled sample (headless, or in napari with --gui)",
        description="Run a task on a bundled sample photo; print PSNR before/after and write the files.",
    )
    demo.add_argument("--out", "-o", type=Path, default=Path("results/demo"), help="output folder")
    demo.add_argument("--task", choices=names, default=names[0], help=f"which task (default {names[0]})")
    demo.add_argument(
        "--gui", action="store_true", help="open napari (falls back to headless without a display)"
    )
    demo.add_argument("--size", type=_positive_int, default=128, help="sample size in pixels (default 128)")
    demo.add_argument("--quiet", "-q", action="store_true", help="no progress lines")
    _common_options(demo)
    demo.set_defaults(max_seconds=60.0, command="demo")
    for action in demo._actions:
        if action.dest == "max_seconds":
            action.help = "time cap in seconds (default 60)"
        elif action.dest == "out":
            action.help = "output folder (default results/demo)"
    return parser


def api_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options for the API function: the run's, the net, and the task's options given."""
    opts: dict[str, Any] = {
        "steps": args.steps,
        "max_seconds": args.max_seconds,
        "seed": args.seed,
        "device": args.device,
        "early_stop": not args.no_early_stop,
    }
    if getattr(args, "precision", "auto") != "auto":
        opts["precision"] = args.precision
    if args.net:
        opts["net"] = args.net
    task = getattr(args, "task", None)
    if task is not None:
        entry = registry.get(task)
        for info in entry.shown_options:
            value = getattr(args, info.name, None)
            if value is not None:
                opts[info.name] = value
        box = entry.aux.box if entry.aux is not None else None
        if box is not None and getattr(args, box, None) is not None:
            opts[box] = getattr(args, box)
    return opts
