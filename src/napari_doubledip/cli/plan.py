"""Planning a batch: INPUTS -> jobs (one per image, image group or stack frame) and stacks."""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import registry
from .parser import api_options
from .sidecar import sidecar_matches

__all__ = ["Job", "Plan", "Stack", "plan_batch", "recorded_outputs"]

#: First axes (tifffile's names) of arrays that are one image, not a stack: Y, channels, samples.
NOT_STACK_AXES = "YCS"


@dataclass
class Job:
    """One run: its inputs, options, output files and sidecar (picklable, for dask workers).

    Attributes
    ----------
    task, name, label
        Registered task name, job name (output stem) and what the progress lines call it.
    inputs
        Absolute paths of the input images.
    options
        Keyword options of the API function (run options and the task's).
    outputs
        Output file by sidecar key.
    sidecar, request
        The sidecar's path, and what a rerun compares to skip the job.
    frame, stack
        The frame of a stack this job runs, and that stack's name.
    aux
        The task's second input: a file path (``"mask"``), its inversion flag, or a value.
    threads, progress_every
        Torch CPU threads, and seconds between progress lines (0: none).
    axes
        ``--axes``: the input TIFFs' axes, overriding their metadata (``None``: the file's own).
    region
        ``--region``: ``[y0, y1, x0, x1]`` slice bounds of the part of each image to run on.
    batch_frames
        ``--batch-frames``: how many frames of a stack run side by side (``"auto"`` or a number).
    """

    task: str
    name: str
    label: str
    inputs: list[str]
    options: dict[str, Any]
    outputs: dict[str, str]
    sidecar: str
    request: dict[str, Any]
    frame: int | None = None
    stack: str | None = None
    aux: dict[str, Any] = field(default_factory=dict)
    threads: int | None = None
    progress_every: float = 0.0
    axes: str | None = None
    region: list[int | None] | None = None
    batch_frames: int | str = "auto"

    def __getitem__(self, key: str) -> Any:
        """``job["name"]``: attribute access under its old dict spelling."""
        return getattr(self, key)


@dataclass
class Stack:
    """A TIFF stack run frame by frame: its frame jobs, and the stacked outputs they fill."""

    label: str
    frames: list[int]
    n_frames: int
    outputs: dict[str, str]
    sidecar: str
    request: dict[str, Any]
    frame_dir: str
    input: str
    jobs: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """What a batch will do.

    Jobs to run, stacks to assemble, inputs already failed or skipped, and notes for the user
    (e.g. files read one way that could be meant another).
    """

    jobs: list[Job] = field(default_factory=list)
    stacks: dict[str, Stack] = field(default_factory=dict)
    failed: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def _unique_stems(files: list[Path]) -> dict[Path, str]:
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
    """The auxiliary file (mask, hints) for ``image``.

    ``spec`` itself if it is a file, else the file of a folder or glob whose name matches the
    image's (``img``, ``img_<what>``, ``<what>_img``).

    Raises
    ------
    ValueError
        Nothing matches.
    """
    from .._io import IMAGE_SUFFIXES

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
    from .._io import file_digest

    return {"name": path.name, "sha1": file_digest(path)}


def _stack_frames(path: Path, axes: str | None = None) -> int | None:
    """Number of frames if ``path`` is a TIFF stack (first axis not Y), else ``None``.

    ``axes`` (``--axes``) overrides the file's own. Asked for frames (this is only called with
    ``--frames``), a TIFF whose first axis tifffile reads as colour samples without ImageJ/OME
    metadata to say so is refused: it may as well be a stack of frames.

    Raises
    ------
    ValueError
        The file cannot be read, ``axes`` does not fit it, or its axes are ambiguous.
    """
    from .._io import TIFF_SUFFIXES, read_image, tiff_axes_ambiguous

    if path.suffix.lower() not in TIFF_SUFFIXES:
        return None
    import tifffile

    if axes is not None:
        array, axes = read_image(path, axes)
        shape = array.shape
    else:
        try:
            with tifffile.TiffFile(path) as tif:
                series = tif.series[0]
                axes, shape = series.axes, series.shape
            ambiguous = tiff_axes_ambiguous(path)
        except Exception as exc:
            raise ValueError(f"cannot read {path.name} as an image: {type(exc).__name__}: {exc}") from exc
        if ambiguous:
            raise ValueError(
                f"{path.name} has shape {tuple(shape)} and no ImageJ/OME metadata; tifffile reads it as "
                f"one planar colour image (axes {axes}), so --frames does not apply. If its first axis is "
                f"frames, add --axes T{axes[1:]}; if it is colour, drop --frames"
            )
    if len(shape) >= 3 and axes[0] not in NOT_STACK_AXES:
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


def _ext_for(path: Path) -> str:
    from .._io import TIFF_SUFFIXES

    return ".tif" if path.suffix.lower() in TIFF_SUFFIXES else ".png"


def output_files(
    entry: registry.TaskEntry,
    name: str,
    out: Path,
    members: list[Path],
    stems: dict[Path, str],
    ext: str | None = None,
) -> dict[str, str]:
    """The files a job writes, by sidecar key: ``<name><file><ext>``, or per input ``<stem><file><ext>``.

    ``ext`` forces one extension (stacks: ``.tif``); else the first input's (float maps: ``.tif``,
    ``png`` outputs: ``.png``).
    """
    files: dict[str, str] = {}
    for o in entry.files:
        if o.per_input:
            for k, f in enumerate(members):
                files[o.key.format(i=k)] = str(out / f"{stems[f]}{o.file}{ext or _ext_for(f)}")
        else:
            suffix = ext or (".tif" if o.tiff else ".png" if o.png else _ext_for(members[0]))
            files[o.file_key or o.key] = str(out / f"{name}{o.file}{suffix}")
    return files


class _Planner:
    """The state of one :func:`plan_batch`: the task, its options, the files found."""

    def __init__(self, args: argparse.Namespace) -> None:
        from .._io import expand_inputs

        self.args = args
        self.entry = registry.get(args.task)
        self.plan = Plan()
        self.out: Path = args.out.resolve()  # absolute paths: dask workers may run in another folder
        results = recorded_outputs(self.out)
        for item in args.inputs:
            if Path(item).is_dir():
                results += recorded_outputs(Path(item), recursive=True)
        files, problems = expand_inputs(args.inputs, exclude=self.out, exclude_files=results)
        self.plan.failed.extend(problems)
        self.opts = api_options(args)
        self.axes: str | None = getattr(args, "axes", None)
        self._device_kind: str | None | bool = False  # not asked yet
        # what decides the numerics is part of the request: a rerun with other settings recomputes
        numerics = {"threads": args.threads, "precision": getattr(args, "precision", "auto")}
        self.batch_frames = getattr(args, "batch_frames", "auto")
        if self.batch_frames != "auto":  # frames side by side share a grouped net: other numerics
            numerics["batch_frames"] = self.batch_frames
        self.common = {"options": dict(self.opts), "task": args.task, "numerics": numerics}
        if self.axes is not None:
            self.common["axes"] = self.axes
        self.region = getattr(args, "region", None)
        if self.region is not None:
            self.common["region"] = self.region
        self.aux = self.entry.aux
        self.aux_spec = getattr(args, self.aux.name, None) if self.aux and self.aux.kind != "value" else None
        # auxiliary files matched by name; files used as masks/hints are not inputs themselves
        self.matched: dict[Path, Path | Exception] = {}
        if self.aux_spec and self.aux.per_image:
            for f in files:
                try:
                    self.matched[f] = _match_by_name(self.aux_spec, f, self.aux.name)
                except ValueError as exc:
                    self.matched[f] = exc
            used = {a.resolve() for a in self.matched.values() if isinstance(a, Path)}
            files = [f for f in files if f.resolve() not in used]
        self.files = files
        self.stems = _unique_stems(files)

    def device_kind(self) -> str | None:
        """The kind of device (``"cpu"``, ``"cuda"``, ``"mps"``) the jobs will run on, if known here.

        Unknown (``None``) with ``--scheduler``: the workers are other machines. Imports torch,
        so it is asked only when a finished result could be skipped.
        """
        if self._device_kind is False:
            if getattr(self.args, "scheduler", None):
                self._device_kind = None
            else:
                from ..core.devices import resolve_device

                try:
                    self._device_kind = resolve_device(self.args.device).type
                except ValueError:
                    self._device_kind = None
        return self._device_kind  # type: ignore[return-value]

    def add(self, job: Job) -> None:
        job.threads = self.args.threads
        job.axes = self.axes
        job.region = self.region
        job.batch_frames = self.batch_frames
        job.progress_every = 0.0 if self.args.quiet else self.args.progress_every
        if not self.args.overwrite and sidecar_matches(
            Path(job.sidecar), job.request, list(job.outputs.values()), device_kind=self.device_kind
        ):
            self.plan.skipped.append(job.name)
        else:
            self.plan.jobs.append(job)

    def aux_of(self, members: list[Path], record: list[Any]) -> dict[str, Any]:
        """The job's ``aux`` (appending the aux file's record to ``record``)."""
        aux, args = self.aux, self.args
        extra: dict[str, Any] = {}
        if aux is None:
            return extra
        if aux.kind == "value":
            extra[aux.name] = getattr(args, aux.name)
        elif self.aux_spec:
            path = self.matched[members[0]] if aux.per_image else Path(self.aux_spec)
            if isinstance(path, Exception):
                raise path
            extra[aux.name] = str(path.resolve())
            record.append({aux.name: _file_record(path)})
        if aux.invertible:
            extra[f"invert_{aux.name}"] = bool(getattr(args, f"invert_{aux.name}"))
        return extra

    def request(self, record: list[Any], extra: dict[str, Any]) -> dict[str, Any]:
        """What a rerun compares: the options, the inputs' digests, the aux values (not its path)."""
        name = self.aux.name if self.aux is not None and self.aux.kind != "value" else None
        return {**self.common, "inputs": record, **{k: v for k, v in extra.items() if k != name}}

    @staticmethod
    def _ambiguous(f: Path) -> bool:
        from .._io import TIFF_SUFFIXES, tiff_axes_ambiguous

        if f.suffix.lower() not in TIFF_SUFFIXES:
            return False
        try:
            return tiff_axes_ambiguous(f)
        except Exception:  # unreadable: the job reports it
            return False

    def single(self, f: Path) -> None:
        """The job(s) of one image: one job, or one per frame of a stack."""
        task, out = self.args.task, self.out
        name = f"{self.stems[f]}_{task}"
        frames_arg = getattr(self.args, "frames", False)
        try:
            record = [_file_record(f)]
            extra = self.aux_of([f], record)
            n_frames = _stack_frames(f, self.axes) if frames_arg is not False else None
        except (OSError, ValueError) as exc:
            self.plan.failed.append((f.name, str(exc)))
            return
        if frames_arg is False and self.axes is None and self._ambiguous(f):
            self.plan.notes.append(
                f"{f.name} has no ImageJ/OME metadata and is read as one planar colour image; if its "
                "first axis is frames, add --frames all --axes TYX"
            )
        request = self.request(record, extra)
        base = {"task": task, "inputs": [str(f.resolve())], "options": self.opts, "aux": extra}
        if n_frames is None:
            outputs = output_files(self.entry, name, out, [f], self.stems)
            self.add(
                Job(
                    **base,
                    name=name,
                    label=f.name,
                    outputs=outputs,
                    sidecar=str(out / f"{name}.json"),
                    request=request,
                )
            )
            return
        try:
            chosen = _select_frames(n_frames, frames_arg)
        except ValueError as exc:
            self.plan.failed.append((f.name, str(exc)))
            return
        stack_outputs = output_files(self.entry, name, out, [f], self.stems, ext=".tif")
        stack_request = {**request, "frames": chosen}
        stack_sidecar = out / f"{name}.json"
        if not self.args.overwrite and sidecar_matches(
            stack_sidecar, stack_request, list(stack_outputs.values()), device_kind=self.device_kind
        ):
            self.plan.skipped.append(f"{name} ({len(chosen)} frames)")
            return
        frame_dir = out / f".{name}.frames"
        stack = Stack(
            f.name, chosen, n_frames, stack_outputs, str(stack_sidecar), stack_request, str(frame_dir), str(f)
        )
        self.plan.stacks[name] = stack
        for t in chosen:
            job = Job(
                **base,
                name=f"{name}[{t}]",
                label=f"{f.name}[{t}]",
                frame=t,
                stack=name,
                outputs={k: str(frame_dir / f"{t:05d}_{k}.npy") for k in stack_outputs},
                sidecar=str(frame_dir / f"{t:05d}.json"),
                request={**request, "frame": t},
            )
            stack.jobs.append(job.name)
            self.add(job)

    def groups(self) -> None:
        """One job per group of images (all INPUTS, or one group per folder)."""
        files, task, out = self.files, self.args.task, self.out
        if self.args.group_by == "folder":
            by_folder: dict[str, list[Path]] = {}
            for f in files:
                by_folder.setdefault(str(f.parent), []).append(f)
            named = [(Path(k).resolve().name or "group", v) for k, v in by_folder.items()]
        else:
            named = [(self.stems[files[0]], files)] if files else []
        seen: dict[str, int] = {}
        for gname, members in named:
            seen[gname] = seen.get(gname, 0) + 1
            unique = gname if seen[gname] == 1 else f"{gname}_{seen[gname]}"
            name = f"{unique}_{task}"
            try:
                record = [_file_record(f) for f in members]
                extra = self.aux_of(members, record)
            except (OSError, ValueError) as exc:
                self.plan.failed.append((name, str(exc)))
                continue
            self.add(
                Job(
                    task=task,
                    name=name,
                    label=f"{name} ({len(members)} images)",
                    inputs=[str(f.resolve()) for f in members],
                    options=self.opts,
                    aux=extra,
                    outputs=output_files(self.entry, name, out, members, self.stems),
                    sidecar=str(out / f"{name}.json"),
                    request=self.request(record, extra),
                )
            )


def plan_batch(args: argparse.Namespace) -> Plan:
    """Expand INPUTS into jobs; skip the ones whose sidecars match (unless ``--overwrite``)."""
    planner = _Planner(args)
    if planner.entry.inputs.group:
        planner.groups()
    else:
        for f in planner.files:
            planner.single(f)
    return planner.plan
