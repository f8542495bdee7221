"""Command line: batch runs of every task over files, folders and stacks, and the headless demo.

``napari-doubledip TASK INPUTS... --out DIR`` (or ``python -m napari_doubledip ...``) runs one job
per image (image group for ``separate``/``watermark``, frame with ``--frames``), in-process or on
dask.distributed (``--workers N``, ``--scheduler ADDR``), and writes each result next to a JSON
sidecar that makes reruns skip finished work.

This module imports neither torch nor Qt at start (``--help`` stays fast); the engine is imported
inside the jobs.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["TASKS", "build_parser", "main", "parse_frames", "run_job"]

#: Subcommands that run an optimisation task.
TASKS = ("denoise", "inpaint", "segment", "separate", "watermark", "dehaze")
#: Tasks with one job per image (``--frames`` applies); the others take groups of images.
SINGLE_IMAGE_TASKS = ("denoise", "inpaint", "segment", "dehaze")
GROUP_TASKS = ("separate", "watermark")

#: Exit statuses.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

_HELP = {
    "denoise": "remove noise from each image",
    "inpaint": "fill the missing pixels of each image (--mask)",
    "segment": "split each image into foreground, background and a mask (optional --hints)",
    "separate": "split mixtures of the same two transparent layers into those layers (one group)",
    "watermark": "remove a watermark shared by a group of images",
    "dehaze": "remove haze from each image",
}

_EPILOG = """\
examples:
  napari-doubledip denoise photos/ --out clean/ --max-seconds 60
  napari-doubledip inpaint scans/*.png --mask masks/ --out filled/
  napari-doubledip denoise movie.tif --frames all --out out/ --workers 4
  napari-doubledip watermark shots/ --out out/ --group-by folder --scheduler tcp://host:8786
  napari-doubledip demo --out results/demo

Each result is written with a JSON sidecar (parameters, seed, steps, losses, device, versions,
time); a rerun skips results whose sidecar matches (--overwrite reruns them).
"""


# --------------------------------------------------------------------------------------------
# Argument parsing


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


def _airlight(text: str) -> list[float] | None:
    if text.strip().lower() in ("auto", ""):
        return None
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--airlight takes 'auto', one value or one per channel (e.g. 0.9,0.9,0.95), got {text!r}"
        ) from None
    return values


def _common_options(parser: argparse.ArgumentParser) -> None:
    run = parser.add_argument_group("optimisation")
    run.add_argument("--steps", type=_positive_int, help="step cap (neither cap: the task's default)")
    run.add_argument("--max-seconds", type=_positive_float, help="time cap per job, in seconds")
    run.add_argument("--seed", type=int, default=0, help="random seed (default 0): same seed, same result")
    run.add_argument("--net", help="network: default, dip-classic, doubledip (default: the task's own)")
    run.add_argument("--device", default="auto", help="auto (CUDA, MPS, CPU), cpu, cuda, cuda:N, mps")
    run.add_argument("--no-early-stop", action="store_true", help="always run to the step/time cap")
    run.add_argument(
        "--threads",
        type=_positive_int,
        help="torch CPU threads per job (default: all cores in-process, cores/N with --workers N)",
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


def build_parser() -> argparse.ArgumentParser:
    """The ``napari-doubledip`` argument parser (one subcommand per task, plus ``demo``)."""
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="napari-doubledip",
        description="Deep Image Prior and Double-DIP from the command line.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"napari-doubledip {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    for task in TASKS:
        p = sub.add_parser(task, help=_HELP[task], description=_HELP[task].capitalize() + ".")
        _batch_options(p)
        _common_options(p)
        p.set_defaults(task=task)
        own = p.add_argument_group(f"{task} options")
        if task in SINGLE_IMAGE_TASKS:
            own.add_argument(
                "--frames",
                type=parse_frames,
                default=False,
                metavar="all|N|A:B",
                help="run frames of (T,Y,X[,C]) stacks as separate jobs and reassemble the stack (TIFF)",
            )
        if task == "inpaint":
            own.add_argument(
                "--mask",
                required=True,
                help="mask file for all inputs, or a folder/glob of masks matched by name "
                "(img.png <- img.png, img_mask.png, mask_img.png); nonzero = missing pixel",
            )
            own.add_argument(
                "--invert-mask", action="store_true", help="nonzero mask pixels are the known ones"
            )
        if task == "segment":
            own.add_argument(
                "--hints",
                help="hint label image (0 unknown, 1 foreground, 2 background) for all inputs, or a "
                "folder/glob matched by name (img.png <- img_hints.png); default: unsupervised",
            )
            own.add_argument(
                "--edge",
                choices=("auto", "background", "free"),
                help="background: unpainted pixels on the image's edge are background (an object "
                "inside the frame); auto (default): so when only foreground is painted; free: never",
            )
        if task in GROUP_TASKS:
            own.add_argument(
                "--group-by",
                choices=("none", "folder"),
                default="none",
                help="none: all INPUTS form one group (default); folder: one group per folder",
            )
        if task == "watermark":
            own.add_argument("--hint", help="(Y,X) image, nonzero where the watermark may be")
            own.add_argument(
                "--colour",
                "--color",
                dest="colour",
                choices=("white", "black", "learn"),
                help="the watermark's colour (default: the task's own)",
            )
            own.add_argument(
                "--start-opacity",
                type=float,
                help="where the mask starts (default 0.1, for faint see-through marks; about 0.5 "
                "for nearly opaque ones)",
            )
        if task == "dehaze":
            own.add_argument(
                "--airlight",
                type=_airlight,
                default=None,
                help="haze colour in the image's range: auto (default), one value, or one per channel",
            )

    demo = sub.add_parser(
        "demo",
        help="run a task on a bundled sample (headless, or in napari with --gui)",
        description="Run a task on a bundled sample photo; print PSNR before/after and write the files.",
    )
    demo.add_argument("--out", "-o", type=Path, default=Path("results/demo"), help="output folder")
    demo.add_argument("--task", choices=TASKS, default="denoise", help="which task (default denoise)")
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


# --------------------------------------------------------------------------------------------
# Small helpers


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _first_line(text: Any) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


def _fmt_seconds(s: float | None) -> str:
    if s is None:
        return "?"
    s = float(s)
    if s < 60:
        return f"{s:.0f}s" if s >= 10 else f"{s:.1f}s"
    m, s = divmod(int(round(s)), 60)
    if m < 60:
        return f"{m}m{s:02d}s"
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m"


def _jsonable(obj: Any) -> Any:
    """``obj`` with numpy scalars/arrays, paths, tuples and sets turned into JSON types."""
    import numpy as np

    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set | frozenset):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj != obj:  # NaN
        return None
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "__dict__"):
        return _jsonable(vars(obj))
    return repr(obj)


def versions() -> dict[str, str]:
    """Versions of the package, torch, numpy and Python (torch only if already imported or importable)."""
    import numpy as np

    from . import __version__

    out = {"napari_doubledip": __version__, "numpy": np.__version__, "python": platform.python_version()}
    try:
        import torch

        out["torch"] = torch.__version__
    except ImportError:  # pragma: no cover - torch is a dependency
        out["torch"] = "missing"
    return out


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write JSON atomically (the sidecar marks a finished result, so it goes last and whole)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(_jsonable(data), indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)


def _normalise(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (for comparing requests)."""
    return json.loads(json.dumps(_jsonable(obj)))


def sidecar_matches(sidecar: Path, request: dict[str, Any], outputs: Sequence[str | Path]) -> bool:
    """Whether ``sidecar`` records a finished run of ``request`` and all ``outputs`` exist."""
    try:
        recorded = json.loads(Path(sidecar).read_text())
    except (OSError, ValueError):
        return False
    if not isinstance(recorded, dict) or recorded.get("request") != _normalise(request):
        return False
    return all(Path(p).is_file() for p in outputs)


# --------------------------------------------------------------------------------------------
# Planning: inputs -> jobs


def recorded_outputs(folder: Path, recursive: bool = False) -> list[Path]:
    """The result files that the sidecars in ``folder`` record (never taken as inputs)."""
    found = []
    sidecars = Path(folder).rglob("*.json") if recursive else Path(folder).glob("*.json")
    for sidecar in sorted(sidecars):
        try:
            recorded = json.loads(sidecar.read_text())
        except (OSError, ValueError):
            continue
        outputs = recorded.get("outputs") if isinstance(recorded, dict) and "request" in recorded else None
        if isinstance(outputs, dict):
            found += [sidecar.parent / str(name) for name in outputs.values()]
    return found


def _unique_stems(files: Sequence[Path]) -> dict[Path, str]:
    """A distinct output stem per file: its stem, prefixed by parent folders where stems collide."""
    stems = {f: f.stem for f in files}
    depth = 1
    while True:
        seen: dict[str, list[Path]] = {}
        for f, s in stems.items():
            seen.setdefault(s, []).append(f)
        clashes = [fs for fs in seen.values() if len(fs) > 1]
        if not clashes or depth > 8:
            break
        for fs in clashes:
            for f in fs:
                parents = [p.name for p in f.resolve().parents][:depth][::-1]
                stems[f] = "_".join([*parents, f.stem]) if parents else f.stem
        depth += 1
    # last resort: number what still clashes
    counts: dict[str, int] = {}
    for f in files:
        s = stems[f]
        counts[s] = counts.get(s, 0) + 1
        if counts[s] > 1:
            stems[f] = f"{s}_{counts[s]}"
    return stems


def _match_by_name(spec: str, image: Path, what: str) -> Path:
    """The auxiliary file (mask, hints) for ``image``: ``spec`` itself if it is a file, else the
    file of a folder or glob whose name matches the image's (``img``, ``img_<what>``, ``<what>_img``).

    Raises
    ------
    ValueError
        Nothing matches.
    """
    from ._io import IMAGE_SUFFIXES

    path = Path(spec)
    if path.is_file():
        return path
    if path.is_dir():
        candidates = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        import glob

        candidates = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
        if not candidates:
            raise ValueError(f"--{what} {spec!r}: no such file, folder or matching file")
    stem = image.stem
    wanted = [stem] + [f"{stem}{sep}{what}" for sep in "_-."] + [f"{what}{sep}{stem}" for sep in "_-."]
    if what.endswith("s"):
        wanted += [f"{stem}{sep}{what[:-1]}" for sep in "_-."]
    for name in wanted:
        for c in candidates:
            if c.stem == name and c.resolve() != image.resolve():
                return c
    raise ValueError(f"no {what} file for {image.name} in {spec} (looked for {', '.join(wanted[:3])}, ...)")


def _file_record(path: Path) -> dict[str, str]:
    from ._io import file_digest

    return {"name": path.name, "sha1": file_digest(path)}


def _api_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword options for the api function (common ones plus the task's own)."""
    opts: dict[str, Any] = {
        "steps": args.steps,
        "max_seconds": args.max_seconds,
        "seed": args.seed,
        "device": args.device,
        "early_stop": not args.no_early_stop,
    }
    if args.net:
        opts["net"] = args.net
    task = getattr(args, "task", None)
    if task == "watermark" and args.colour:
        opts["watermark"] = args.colour
    if task == "watermark" and args.start_opacity is not None:
        opts["mask_init"] = args.start_opacity
    if task == "segment" and args.edge:
        opts["edge"] = args.edge
    return opts


def _stack_frames(path: Path) -> int | None:
    """Number of frames if ``path`` is a TIFF stack (first axis not Y), else ``None``."""
    from ._io import TIFF_SUFFIXES

    if path.suffix.lower() not in TIFF_SUFFIXES:
        return None
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes, shape = series.axes, series.shape
    except Exception as exc:
        raise ValueError(f"cannot read {path.name} as an image: {type(exc).__name__}: {exc}") from exc
    if len(shape) >= 3 and axes[0] not in _NOT_STACK_AXES:
        return int(shape[0])
    return None


def _select_frames(n: int, frames: slice | int | None) -> list[int]:
    if frames is None:
        return list(range(n))
    if isinstance(frames, int):
        index = frames + n if frames < 0 else frames
        if not 0 <= index < n:
            raise ValueError(f"frame {frames} is out of range: the stack has {n} frames (0..{n - 1})")
        return [index]
    chosen = list(range(n))[frames]
    if not chosen:
        raise ValueError(f"--frames {frames.start}:{frames.stop} selects no frame of a {n}-frame stack")
    return chosen


def _outputs_for(task: str, name: str, out: Path, ext: str, label_ext: str) -> dict[str, str]:
    if task in ("denoise", "inpaint"):
        keys = {"image": f"{name}{ext}"}
    elif task == "dehaze":
        keys = {"image": f"{name}{ext}", "transmission": f"{name}_transmission.tif"}
    elif task == "segment":
        keys = {
            "foreground": f"{name}_foreground{ext}",
            "background": f"{name}_background{ext}",
            "mask": f"{name}_mask{label_ext}",
            "soft_mask": f"{name}_soft_mask.tif",
        }
    elif task == "separate":
        keys = {"layer_a": f"{name}_layer_a{ext}", "layer_b": f"{name}_layer_b{ext}"}
    else:  # pragma: no cover - watermark is planned separately
        raise ValueError(task)
    return {k: str(out / v) for k, v in keys.items()}


def _ext_for(path: Path) -> str:
    from ._io import TIFF_SUFFIXES

    return ".tif" if path.suffix.lower() in TIFF_SUFFIXES else ".png"


class Plan:
    """What a batch will do: jobs to run, stacks to assemble, inputs already failed or skipped."""

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.stacks: dict[str, dict[str, Any]] = {}
        self.failed: list[tuple[str, str]] = []
        self.skipped: list[str] = []


def plan_batch(args: argparse.Namespace) -> Plan:
    """Expand INPUTS into jobs; skip the ones whose sidecars match (unless ``--overwrite``)."""
    from ._io import expand_inputs

    plan = Plan()
    out: Path = args.out.resolve()  # absolute paths: dask workers may run in another folder
    results = recorded_outputs(out)
    for item in args.inputs:
        if Path(item).is_dir():
            results += recorded_outputs(Path(item), recursive=True)
    files, problems = expand_inputs(args.inputs, exclude=out, exclude_files=results)
    plan.failed.extend(problems)
    task = args.task
    opts = _api_options(args)
    common = {"options": dict(opts), "task": task}
    progress_every = 0.0 if args.quiet else args.progress_every
    threads = args.threads

    # auxiliary files matched by name; files used as masks/hints are not inputs themselves
    aux_name = {"inpaint": "mask", "segment": "hints"}.get(task)
    aux_spec = getattr(args, aux_name, None) if aux_name else None
    aux: dict[Path, Path] = {}
    if aux_spec:
        for f in files:
            try:
                aux[f] = _match_by_name(aux_spec, f, aux_name)
            except ValueError as exc:
                aux[f] = exc  # type: ignore[assignment]
        used = {a.resolve() for a in aux.values() if isinstance(a, Path)}
        files = [f for f in files if f.resolve() not in used]
    stems = _unique_stems(files)

    def add_job(job: dict[str, Any]) -> None:
        job.update(threads=threads, progress_every=progress_every)
        outputs = list(job["outputs"].values())
        if not args.overwrite and sidecar_matches(Path(job["sidecar"]), job["request"], outputs):
            plan.skipped.append(job["name"])
        else:
            plan.jobs.append(job)

    if task in SINGLE_IMAGE_TASKS:
        frames_arg = getattr(args, "frames", False)
        for f in files:
            name = f"{stems[f]}_{task}"
            extra: dict[str, Any] = {}
            try:
                record = [_file_record(f)]
                if aux_spec:
                    if isinstance(aux[f], Exception):
                        raise aux[f]
                    extra[aux_name] = str(aux[f].resolve())
                    record.append({aux_name: _file_record(aux[f])})
                if task == "inpaint":
                    extra["invert_mask"] = bool(args.invert_mask)
                if task == "dehaze":
                    extra["airlight"] = args.airlight
                n_frames = _stack_frames(f) if frames_arg is not False else None
            except (OSError, ValueError) as exc:
                plan.failed.append((f.name, str(exc)))
                continue
            request = {**common, "inputs": record, **{k: v for k, v in extra.items() if k != aux_name}}
            base = {"task": task, "inputs": [str(f.resolve())], "options": opts, **extra}
            if n_frames is None:
                ext = _ext_for(f)
                outputs = _outputs_for(task, name, out, ext, ext)
                add_job(
                    {
                        **base,
                        "name": name,
                        "label": f.name,
                        "frame": None,
                        "outputs": outputs,
                        "sidecar": str(out / f"{name}.json"),
                        "request": request,
                    }
                )
                continue
            try:
                chosen = _select_frames(n_frames, frames_arg)
            except ValueError as exc:
                plan.failed.append((f.name, str(exc)))
                continue
            stack_outputs = _outputs_for(task, name, out, ".tif", ".tif")
            stack_request = {**request, "frames": chosen}
            stack_sidecar = out / f"{name}.json"
            if not args.overwrite and sidecar_matches(stack_sidecar, stack_request, stack_outputs.values()):
                plan.skipped.append(f"{name} ({len(chosen)} frames)")
                continue
            frame_dir = out / f".{name}.frames"
            plan.stacks[name] = {
                "label": f.name,
                "frames": chosen,
                "n_frames": n_frames,
                "outputs": stack_outputs,
                "sidecar": str(stack_sidecar),
                "request": stack_request,
                "frame_dir": str(frame_dir),
                "input": str(f),
                "jobs": [],
            }
            for t in chosen:
                fname = f"{name}[{t}]"
                job = {
                    **base,
                    "name": fname,
                    "label": f"{f.name}[{t}]",
                    "frame": t,
                    "stack": name,
                    "outputs": {k: str(frame_dir / f"{t:05d}_{k}.npy") for k in stack_outputs},
                    "sidecar": str(frame_dir / f"{t:05d}.json"),
                    "request": {**request, "frame": t},
                }
                plan.stacks[name]["jobs"].append(fname)
                add_job(job)
        return plan

    # group tasks
    if args.group_by == "folder":
        groups: dict[str, list[Path]] = {}
        for f in files:
            groups.setdefault(str(f.parent), []).append(f)
        named = [(Path(k).resolve().name or "group", v) for k, v in groups.items()]
    else:
        named = [(stems[files[0]], files)] if files else []
    seen_names: dict[str, int] = {}
    for gname, members in named:
        seen_names[gname] = seen_names.get(gname, 0) + 1
        unique = gname if seen_names[gname] == 1 else f"{gname}_{seen_names[gname]}"
        name = f"{unique}_{task}"
        try:
            record = [_file_record(f) for f in members]
            extra = {}
            if task == "watermark" and args.hint:
                extra["hint"] = str(Path(args.hint).resolve())
                record.append({"hint": _file_record(Path(args.hint))})
        except (OSError, ValueError) as exc:
            plan.failed.append((name, str(exc)))
            continue
        ext = _ext_for(members[0])
        if task == "separate":
            outputs = _outputs_for(task, name, out, ext, ext)
        else:
            outputs = {
                f"clean_{k}": str(out / f"{stems[f]}_clean{_ext_for(f)}") for k, f in enumerate(members)
            }
            outputs["watermark"] = str(out / f"{name}{ext}")
            outputs["mask"] = str(out / f"{name}_mask.tif")
        add_job(
            {
                "task": task,
                "inputs": [str(f.resolve()) for f in members],
                "options": opts,
                **extra,
                "name": name,
                "label": f"{name} ({len(members)} images)",
                "frame": None,
                "outputs": outputs,
                "sidecar": str(out / f"{name}.json"),
                "request": {**common, "inputs": record},
            }
        )
    return plan


# --------------------------------------------------------------------------------------------
# One job (runs in-process or on a dask worker)


class _JobProgress:
    """Throttled progress lines of one running job on stderr."""

    def __init__(self, name: str, every: float) -> None:
        self.name = name
        self.every = every
        self.last = time.monotonic()

    def __call__(self, snap: Any) -> None:
        if self.every <= 0 or snap.done:
            return
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        cap = f"/{snap.total}" if snap.total else ""
        loss = snap.losses.get("total")
        loss_text = f", loss {loss:.5g}" if loss is not None else ""
        eta = f", eta {_fmt_seconds(snap.eta)}" if snap.step >= 10 else ""  # set-up skews early guesses
        _say(
            f"    {self.name}: step {snap.step}{cap} ({snap.progress:.0%}), {_fmt_seconds(snap.elapsed)}"
            f" elapsed{eta}{loss_text}"
        )


#: First axes (tifffile's names) of arrays that are one image, not a stack: Y, channels, samples.
_NOT_STACK_AXES = "YCS"


def _is_stack(arr: Any, axes: str) -> bool:
    """Whether an array read with ``axes`` is a stack of frames (first axis T, Z, Q, I, ...)."""
    return arr.ndim >= 3 and axes[0] not in _NOT_STACK_AXES


def _read_binary(path: str, shape: tuple[int, ...], what: str, frame: int | None = None) -> Any:
    """A mask file as bool ``(Y, X)`` of the image's ``shape`` (nonzero, or above half the maximum)."""
    import numpy as np

    from ._io import read_image
    from .core.conversion import mask_plane

    arr, axes = read_image(path)
    if frame is not None and _is_stack(arr, axes):
        arr = arr[frame]
    if arr.ndim == 3:
        arr = mask_plane(arr)  # the alpha of an RGBA file whose alpha varies, else its colour
    values = arr.astype(np.float64)
    peak = values.max() if values.size else 0
    mask = values > peak / 2 if peak > 1 else values > 0
    if mask.shape != tuple(shape[:2]):
        raise ValueError(
            f"{what} {Path(path).name} is {mask.shape[0]}x{mask.shape[1]} but the image is {shape[0]}x{shape[1]}"
        )
    return mask


def _read_hints(path: str, shape: tuple[int, ...], frame: int | None = None) -> Any:
    from ._io import read_image

    arr, axes = read_image(path)
    if frame is not None and _is_stack(arr, axes):
        arr = arr[frame]
    if arr.ndim == 3:
        arr = arr[..., 0]
    if arr.shape != tuple(shape[:2]):
        raise ValueError(
            f"hints {Path(path).name} is {arr.shape[0]}x{arr.shape[1]} but the image is {shape[0]}x{shape[1]}"
        )
    return arr


def _read_input(path: str, frame: int | None) -> Any:
    from ._io import read_image

    arr, axes = read_image(path)
    is_stack = _is_stack(arr, axes)
    if axes[0] in "CS" and arr.ndim == 3:  # channels first -> channels last
        import numpy as np

        arr = np.moveaxis(arr, 0, -1)
    if frame is not None:
        if not is_stack:
            raise ValueError(f"{Path(path).name} is not a stack (axes {axes}, shape {arr.shape})")
        return arr[frame]
    if is_stack:
        raise ValueError(
            f"{Path(path).name} is a stack of {arr.shape[0]} frames (axes {axes}, shape {arr.shape}): "
            "add --frames all (or N, or A:B) to run its frames as separate jobs"
        )
    return arr


def _worker_device(device: str) -> str:
    """``device``, except that ``"auto"`` on a dask worker of a multi-GPU machine picks GPU
    ``worker index % GPU count`` (so a LocalCluster spreads its workers over the GPUs)."""
    if device != "auto":
        return device
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return device
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if n <= 1:
        return device
    try:
        index = int(worker.name)
    except (TypeError, ValueError):
        return device
    return f"cuda:{index % n}"


def _result_outputs(task: str, result: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(arrays by output key, extra JSON values) of a task result."""
    import numpy as np

    if task in ("denoise", "inpaint"):
        return {"image": result.image}, {}
    if task == "dehaze":
        return {"image": result.image, "transmission": result.transmission}, {"airlight": result.airlight}
    if task == "segment":
        return (
            {
                "foreground": result.layers[0],
                "background": result.layers[1],
                "mask": (np.asarray(result.labels) > 0).astype(np.uint8) * 255,
                "soft_mask": np.asarray(result.mask, np.float32),
            },
            {},
        )
    if task == "separate":
        return {"layer_a": result.layers[0], "layer_b": result.layers[1]}, {"alphas": result.alphas}
    if task == "watermark":
        arrays = {f"clean_{k}": img for k, img in enumerate(result.images)}
        arrays["watermark"] = result.watermark
        arrays["mask"] = np.asarray(result.mask, np.float32)
        return arrays, {"colour": result.colour, "offsets": result.offsets}
    raise ValueError(f"unknown task {task!r}")  # pragma: no cover


def _call_task(job: dict[str, Any], callback: Callable[[Any], Any]) -> Any:
    """Read the job's inputs and run its api function; return the result."""
    from . import api

    task, frame = job["task"], job.get("frame")
    opts = dict(job["options"])
    opts["device"] = _worker_device(opts.get("device", "auto"))
    if job.get("threads"):
        opts["threads"] = job["threads"]
    opts.setdefault("min_interval", 1.0)
    if task in SINGLE_IMAGE_TASKS:
        image = _read_input(job["inputs"][0], frame)
        if task == "denoise":
            return api.denoise(image, callback=callback, **opts)
        if task == "inpaint":
            mask = _read_binary(job["mask"], image.shape, "mask", frame)
            if job.get("invert_mask"):
                mask = ~mask
            return api.inpaint(image, mask, callback=callback, **opts)
        if task == "segment":
            hints = _read_hints(job["hints"], image.shape, frame) if job.get("hints") else None
            return api.segment(image, hints, callback=callback, **opts)
        return api.dehaze(image, job.get("airlight"), callback=callback, **opts)
    images = [_read_input(p, None) for p in job["inputs"]]
    if task == "separate":
        return api.separate(images if len(images) > 1 else images[0], callback=callback, **opts)
    first = images[0]
    hint = _read_binary(job["hint"], first.shape, "hint") if job.get("hint") else None
    return api.remove_watermark(images, hint, callback=callback, **opts)


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """Run one planned job: read its inputs, optimise, write its outputs and then its sidecar.

    Errors are returned (``status="failed"``, ``error``), not raised, so that a batch goes on;
    ``KeyboardInterrupt`` is raised. Works in-process and on dask workers (plain dict in and out).
    """
    from ._io import write_image

    started = _dt.datetime.now(_dt.timezone.utc)
    t0 = time.perf_counter()
    summary: dict[str, Any] = {
        "name": job["name"],
        "label": job.get("label", job["name"]),
        "status": "failed",
    }
    try:
        result = _call_task(job, _JobProgress(job["name"], job.get("progress_every", 0.0)))
        arrays, extra = _result_outputs(job["task"], result)
        written = []
        for key, path in job["outputs"].items():
            written.append(str(write_image(path, arrays[key])))
        params = dict(result.params)
        seconds = time.perf_counter() - t0
        sidecar = {
            "task": job["task"],
            "inputs": job["inputs"],
            "frame": job.get("frame"),
            "outputs": {k: Path(v).name for k, v in job["outputs"].items()},
            "parameters": {
                **job["options"],
                **{k: job[k] for k in ("mask", "hints", "hint", "invert_mask", "airlight") if k in job},
            },
            "seed": params.get("seed", job["options"].get("seed")),
            "steps_run": params.get("steps_run"),
            "stop_reason": params.get("stop_reason"),
            "final_losses": params.get("final_losses"),
            "device": params.get("device"),
            "result": extra,
            "run_params": params,
            "versions": versions(),
            "host": platform.node(),
            "started": started.isoformat(timespec="seconds"),
            "seconds": round(seconds, 3),
            "request": job["request"],
        }
        _write_json(Path(job["sidecar"]), sidecar)
        summary.update(
            status="done",
            seconds=seconds,
            steps_run=params.get("steps_run"),
            stop_reason=params.get("stop_reason"),
            loss=(params.get("final_losses") or {}).get("total"),
            device=params.get("device"),
            outputs=written,
        )
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # reported by name; the batch goes on
        summary.update(error=f"{type(exc).__name__}: {exc}", seconds=time.perf_counter() - t0)
    return summary


# --------------------------------------------------------------------------------------------
# Running a plan


class _Reporter:
    """Overall progress lines and the final summary."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.quiet = quiet
        self.finished = 0
        self.results: list[dict[str, Any]] = []

    def start(self, job: dict[str, Any]) -> None:
        if not self.quiet:
            _say(f"[{self.finished + 1}/{self.total}] {job['name']}: running ({job.get('label', '')})")

    def finish(self, res: dict[str, Any]) -> None:
        self.finished += 1
        self.results.append(res)
        head = f"[{self.finished}/{self.total}]"
        if res["status"] == "done":
            where = ", ".join(Path(p).name for p in res.get("outputs", [])[:3])
            more = "" if len(res.get("outputs", [])) <= 3 else ", ..."
            loss = f", loss {res['loss']:.4g}" if res.get("loss") is not None else ""
            _say(
                f"{head} done {res['name']} in {_fmt_seconds(res.get('seconds'))} ({res.get('steps_run')} steps,"
                f" {res.get('stop_reason')}{loss}, {res.get('device')}) -> {where}{more}"
            )
        else:
            _say(f"{head} FAILED {res['label']}: {_first_line(res.get('error'))}")


def _run_in_process(jobs: list[dict[str, Any]], reporter: _Reporter) -> None:
    torch = sys.modules.get("torch")  # called from Python: leave torch's thread count as it was
    threads_before = torch.get_num_threads() if torch is not None else None
    try:
        for job in jobs:
            reporter.start(job)
            reporter.finish(run_job(job))
    finally:
        if threads_before is not None and torch.get_num_threads() != threads_before:
            torch.set_num_threads(threads_before)


def _dask_client(args: argparse.Namespace) -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise SystemExit(
            "error: --workers/--scheduler need dask.distributed: pip install 'napari-doubledip[dask]'"
        ) from exc
    import logging

    if args.scheduler:
        _say(f"connecting to dask scheduler {args.scheduler}")
        return Client(args.scheduler, timeout="30s"), None
    _say(f"starting a local dask cluster of {args.workers} worker processes")
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return Client(cluster), cluster


def _run_on_dask(jobs: list[dict[str, Any]], reporter: _Reporter, args: argparse.Namespace) -> None:
    from distributed import as_completed

    client, cluster = _dask_client(args)
    futures = []
    try:
        by_key = {}
        for i, job in enumerate(jobs):
            fut = client.submit(run_job, job, key=f"napari-doubledip-{i}-{job['name']}", pure=False)
            by_key[fut.key] = job
            futures.append(fut)
        if not reporter.quiet:
            _say(f"submitted {len(futures)} jobs to {client.scheduler.address}")
        for fut in as_completed(futures):
            job = by_key[fut.key]
            try:
                res = fut.result()
            except Exception as exc:  # a worker died, the job was lost, ...
                res = {"name": job["name"], "label": job.get("label", job["name"]), "status": "failed"}
                res["error"] = f"{type(exc).__name__}: {exc}"
            reporter.finish(res)
    except KeyboardInterrupt:
        _say("interrupted: cancelling the outstanding jobs ...")
        client.cancel(futures, force=True)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _assemble_stacks(
    plan: Plan, results: list[dict[str, Any]], reporter_failed: list[tuple[str, str]]
) -> list[str]:
    """Stack the per-frame results of every finished stack; return the names assembled."""
    import numpy as np

    from ._io import write_image

    status = {r["name"]: r for r in results}
    done = []
    for name, stack in plan.stacks.items():
        missing = [j for j in stack["jobs"] if j in status and status[j]["status"] != "done"]
        if missing:
            reporter_failed.append(
                (stack["label"], f"{len(missing)} frame(s) failed; the stack was not written")
            )
            continue
        frame_dir = Path(stack["frame_dir"])
        try:
            written = []
            for key, path in stack["outputs"].items():
                frames = [np.load(frame_dir / f"{t:05d}_{key}.npy") for t in stack["frames"]]
                written.append(str(write_image(path, np.stack(frames))))
            per_frame = []
            for t in stack["frames"]:
                rec = json.loads((frame_dir / f"{t:05d}.json").read_text())
                per_frame.append(
                    {
                        "frame": t,
                        "steps_run": rec.get("steps_run"),
                        "stop_reason": rec.get("stop_reason"),
                        "final_losses": rec.get("final_losses"),
                        "seconds": rec.get("seconds"),
                        "device": rec.get("device"),
                        "seed": rec.get("seed"),
                        "result": rec.get("result"),
                    }
                )
            first = json.loads((frame_dir / f"{stack['frames'][0]:05d}.json").read_text())
            sidecar = {
                "task": first["task"],
                "inputs": first["inputs"],
                "frames": stack["frames"],
                "n_frames_in_input": stack["n_frames"],
                "outputs": {k: Path(v).name for k, v in stack["outputs"].items()},
                "parameters": first["parameters"],
                "seed": first["seed"],
                "device": first["device"],
                "per_frame": per_frame,
                "versions": versions(),
                "host": platform.node(),
                "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
                "seconds": round(sum(p["seconds"] or 0 for p in per_frame), 3),
                "request": stack["request"],
            }
            _write_json(Path(stack["sidecar"]), sidecar)
            shutil.rmtree(frame_dir, ignore_errors=True)
            done.append(name)
            _say(f"stack {name}: {len(stack['frames'])} frames -> {', '.join(Path(p).name for p in written)}")
        except Exception as exc:
            reporter_failed.append(
                (stack["label"], f"could not assemble the stack: {type(exc).__name__}: {exc}")
            )
    return done


def run_batch(args: argparse.Namespace) -> int:
    """Plan, run and summarise one batch subcommand; return the exit status."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.workers and not args.threads:
        args.threads = max(1, (os.cpu_count() or 1) // args.workers)
    try:
        plan = plan_batch(args)
    except ValueError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    for item, message in plan.failed:
        _say(f"FAILED {item}: {message}")
    if not plan.jobs and not plan.skipped and not plan.stacks:
        _say("error: no input images to process")
        return EXIT_USAGE if not plan.failed else EXIT_FAILED
    args.out.mkdir(parents=True, exist_ok=True)
    if plan.skipped:
        _say(f"skipping {len(plan.skipped)} finished result(s) (sidecars match; --overwrite reruns them)")
    reporter = _Reporter(len(plan.jobs), args.quiet)
    interrupted = False
    t0 = time.perf_counter()
    try:
        if plan.jobs:
            if args.workers or args.scheduler:
                _run_on_dask(plan.jobs, reporter, args)
            else:
                _run_in_process(plan.jobs, reporter)
    except KeyboardInterrupt:
        interrupted = True
    failed = list(plan.failed)
    failed += [(r["label"], r.get("error", "")) for r in reporter.results if r["status"] != "done"]
    stacks_done = [] if interrupted else _assemble_stacks(plan, reporter.results, failed)
    n_done = sum(r["status"] == "done" for r in reporter.results)
    lines = [
        f"summary: {n_done} done, {len(plan.skipped)} skipped (already finished), {len(failed)} failed"
        + (f", {len(stacks_done)} stack(s) assembled" if plan.stacks else "")
        + f" in {_fmt_seconds(time.perf_counter() - t0)}; results in {args.out}"
    ]
    lines += [f"  failed: {item}: {_first_line(message)}" for item, message in failed]
    if interrupted:
        lines.append("  interrupted: finished results are kept; run the same command again to resume")
    _say("\n".join(lines))
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK


# --------------------------------------------------------------------------------------------
# Demo


def _psnr(a: Any, b: Any) -> float:
    import numpy as np

    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return float("inf") if mse == 0 else float(10 * np.log10(1.0 / mse))


def _has_display() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _demo_gui(args: argparse.Namespace) -> int | None:
    """Open napari with the demo; ``None`` when that is not possible (caller runs headless)."""
    if not _has_display():
        _say("demo --gui: no display found (DISPLAY/WAYLAND_DISPLAY unset); running headless instead")
        return None
    try:
        from ._qt.demo import launch_demo
    except ImportError as exc:
        _say(f"demo --gui: napari/Qt is not available ({exc}); running headless instead")
        return None
    import inspect

    kwargs: dict[str, Any] = {"task": args.task, "run": True}
    accepted = inspect.signature(launch_demo).parameters
    for name in ("max_seconds", "steps", "seed", "device"):
        value = getattr(args, name, None)
        if name in accepted and value is not None:
            kwargs[name] = value
    launch_demo(**kwargs)
    return EXIT_OK


def _demo_inputs(task: str, size: int) -> dict[str, Any]:
    """Sample inputs, ground truth and the api call for one task's demo."""
    from . import samples

    if task == "denoise":
        noisy, clean = samples.noisy_photo(size=size)
        return {"inputs": {"input": noisy}, "truth": {"clean": clean}, "args": (noisy,)}
    if task == "inpaint":
        damaged, mask, clean = samples.photo_with_missing_pixels(size=size)
        return {
            "inputs": {"input": damaged, "mask": mask},
            "truth": {"clean": clean},
            "args": (damaged, mask),
        }
    if task == "segment":
        image, true_mask, hints = samples.segmentation_composite(size=size)
        return {
            "inputs": {"input": image, "hints": hints},
            "truth": {"true_mask": true_mask},
            "args": (image, hints),
        }
    if task == "separate":
        images, (a, b) = samples.mixtures(size=size)
        return {
            "inputs": {f"input_{k}": im for k, im in enumerate(images)},
            "truth": {"true_layer_a": a, "true_layer_b": b},
            "args": (images,),
        }
    if task == "watermark":
        images, alpha_mask, clean = samples.watermarked_photos(size=size)
        return {
            "inputs": {f"input_{k}": im for k, im in enumerate(images)},
            "truth": {**{f"clean_{k}": c for k, c in enumerate(clean)}, "true_watermark_alpha": alpha_mask},
            "args": (images,),
        }
    if task == "dehaze":
        hazy, clean, transmission, airlight = samples.hazy_photo(size=size)
        return {
            "inputs": {"input": hazy},
            "truth": {"clean": clean, "true_transmission": transmission},
            "args": (hazy,),
        }
    raise ValueError(task)  # pragma: no cover


def _demo_metrics(
    task: str, sample: dict[str, Any], result: Any
) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(result arrays to write, metrics, lines to print)."""
    import numpy as np

    inputs, truth = sample["inputs"], sample["truth"]
    if task in ("denoise", "inpaint", "dehaze"):
        before, after = _psnr(inputs["input"], truth["clean"]), _psnr(result.image, truth["clean"])
        arrays = {"result": result.image}
        if task == "dehaze":
            arrays["transmission"] = result.transmission
        metrics = {"psnr_input_db": before, "psnr_result_db": after}
        return (
            arrays,
            metrics,
            [f"PSNR against the clean photo: {before:.2f} dB (input) -> {after:.2f} dB (result)"],
        )
    if task == "segment":
        labels = np.asarray(result.labels) > 0
        true = truth["true_mask"]
        iou = float((labels & true).sum() / max(1, (labels | true).sum()))
        arrays = {
            "foreground": result.layers[0],
            "background": result.layers[1],
            "mask": labels.astype(np.uint8) * 255,
        }
        return arrays, {"iou": iou}, [f"foreground mask IoU against the true silhouette: {iou:.3f}"]
    if task == "separate":
        a, b = truth["true_layer_a"], truth["true_layer_b"]
        la, lb = result.layers
        straight = (_psnr(la, a) + _psnr(lb, b)) / 2
        swapped = (_psnr(la, b) + _psnr(lb, a)) / 2
        pa, pb = (_psnr(la, a), _psnr(lb, b)) if straight >= swapped else (_psnr(lb, a), _psnr(la, b))
        before = float(np.mean([max(_psnr(im, a), _psnr(im, b)) for im in inputs.values()]))
        arrays = {"layer_a": la, "layer_b": lb}
        metrics = {"psnr_inputs_best_db": before, "psnr_layer_a_db": pa, "psnr_layer_b_db": pb}
        return (
            arrays,
            metrics,
            [
                f"PSNR against the true layers: {before:.2f} dB (best input) -> {pa:.2f} / {pb:.2f} dB (layers)"
            ],
        )
    # watermark
    k = len(result.images)
    before = float(np.mean([_psnr(inputs[f"input_{i}"], truth[f"clean_{i}"]) for i in range(k)]))
    after = float(np.mean([_psnr(result.images[i], truth[f"clean_{i}"]) for i in range(k)]))
    arrays = {f"result_{i}": im for i, im in enumerate(result.images)}
    arrays["watermark_mask"] = np.asarray(result.mask, np.float32)
    metrics = {"psnr_input_db": before, "psnr_result_db": after}
    return (
        arrays,
        metrics,
        [f"PSNR against the clean photos (mean of {k}): {before:.2f} dB -> {after:.2f} dB"],
    )


def run_demo(args: argparse.Namespace) -> int:
    """The ``demo`` subcommand: a task on a bundled sample, headless (or in napari with ``--gui``)."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.gui:
        status = _demo_gui(args)
        if status is not None:
            return status
    from . import api
    from ._io import write_image

    task, out = args.task, Path(args.out)
    _say(
        f"demo: {task} on a {args.size}x{args.size} sample photo (time cap {_fmt_seconds(args.max_seconds)})"
    )
    sample = _demo_inputs(task, args.size)
    fn = {
        "denoise": api.denoise,
        "inpaint": api.inpaint,
        "segment": api.segment,
        "separate": api.separate,
        "watermark": api.remove_watermark,
        "dehaze": api.dehaze,
    }[task]
    opts: dict[str, Any] = {
        "steps": args.steps,
        "max_seconds": args.max_seconds,
        "seed": args.seed,
        "device": args.device,
        "early_stop": not args.no_early_stop,
        "min_interval": 1.0,
    }
    if args.net:
        opts["net"] = args.net
    if args.threads:
        opts["threads"] = args.threads
    started = _dt.datetime.now(_dt.timezone.utc)
    progress = _JobProgress(task, 0.0 if args.quiet else 5.0)
    try:
        result = fn(*sample["args"], callback=progress, **opts)
    except KeyboardInterrupt:
        _say("interrupted")
        return EXIT_INTERRUPTED
    arrays, metrics, lines = _demo_metrics(task, sample, result)
    files: dict[str, str] = {}
    for group in (sample["inputs"], arrays, sample["truth"]):
        for key, arr in group.items():
            suffix = (
                ".tif"
                if key in ("transmission", "true_transmission", "watermark_mask", "true_watermark_alpha")
                else ".png"
            )
            if key in ("mask", "true_mask") and arr.dtype == bool:
                arr = arr.astype("uint8") * 255
            if key == "hints":
                arr = (arr.astype("uint16") * 127).clip(0, 255).astype("uint8")
            files[key] = str(write_image(out / f"{key}{suffix}", arr))
    params = dict(result.params)
    sidecar = {
        "demo": task,
        "sample_size": args.size,
        "files": {k: Path(v).name for k, v in files.items()},
        "metrics": metrics,
        "parameters": {k: v for k, v in opts.items() if k != "min_interval"},
        "seed": params.get("seed"),
        "steps_run": params.get("steps_run"),
        "stop_reason": params.get("stop_reason"),
        "final_losses": params.get("final_losses"),
        "device": params.get("device"),
        "run_params": params,
        "versions": versions(),
        "started": started.isoformat(timespec="seconds"),
        "seconds": params.get("seconds"),
    }
    _write_json(out / "demo.json", sidecar)
    print(
        f"{task}: {params.get('steps_run')} steps in {_fmt_seconds(params.get('seconds'))} on "
        f"{params.get('device')} (stopped by: {params.get('stop_reason')})"
    )
    for line in lines:
        print(line)
    print(f"files in {out}/: " + ", ".join(Path(p).name for p in files.values()) + ", demo.json")
    return EXIT_OK


# --------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``napari-doubledip`` and ``python -m napari_doubledip``; returns the exit status."""
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        return run_demo(args)
    return run_batch(args)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
