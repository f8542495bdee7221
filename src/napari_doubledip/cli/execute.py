"""Running a plan: in-process or on dask.distributed, with progress lines; stacks reassembled."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .console import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, first_line, fmt_seconds, say
from .parser import DEFAULT_THREADS
from .plan import Job, Plan, Stack, plan_batch
from .sidecar import provenance, run_record, write_json

__all__ = ["check_output_folder", "clean_stale_parts", "frame_groups", "run_batch"]


def _run_job(job: Job) -> dict[str, Any]:
    """``napari_doubledip.cli.run_job`` as it is now (tests replace it)."""
    from .. import cli

    return cli.run_job(job)


class _Reporter:
    """Overall progress lines and the final summary."""

    def __init__(self, total: int, quiet: bool) -> None:
        self.total = total
        self.quiet = quiet
        self.finished = 0
        self.results: list[dict[str, Any]] = []

    def start(self, job: Job) -> None:
        if not self.quiet:
            say(f"[{self.finished + 1}/{self.total}] {job.name}: running ({job.label})")

    def finish(self, res: dict[str, Any]) -> None:
        self.finished += 1
        self.results.append(res)
        head = f"[{self.finished}/{self.total}]"
        if res["status"] == "done":
            where = ", ".join(Path(p).name for p in res.get("outputs", [])[:3])
            more = "" if len(res.get("outputs", [])) <= 3 else ", ..."
            loss = f", loss {res['loss']:.4g}" if res.get("loss") is not None else ""
            say(
                f"{head} done {res['name']} in {fmt_seconds(res.get('seconds'))} ({res.get('steps_run')} steps,"
                f" {res.get('stop_reason')}{loss}, {res.get('device')}) -> {where}{more}"
            )
        else:
            say(f"{head} FAILED {res['label']}: {first_line(res.get('error'))}")


def frame_groups(jobs: list[Job], local: bool) -> list[list[Job]]:
    """``jobs`` in runs: the frames of a stack that run together (``--batch-frames``), else one by one.

    ``--batch-frames N`` groups up to N consecutive frames of a stack; ``auto`` groups a stack's
    frames when they run here (``local``) on a CUDA GPU, whose memory then decides how many run
    side by side (:func:`~napari_doubledip.api.stream_frames`); elsewhere frames run one by one.
    """
    groups: list[list[Job]] = []
    for job in jobs:
        size = job.batch_frames
        if size == "auto":
            size = len(jobs) if (local and job.stack is not None and _runs_on_cuda(job)) else 1
        last = groups[-1] if groups else None
        if (
            last is not None
            and job.stack is not None
            and last[0].stack == job.stack
            and len(last) < int(size)
        ):
            last.append(job)
        else:
            groups.append([job])
    return groups


def _runs_on_cuda(job: Job) -> bool:
    from ..core.devices import resolve_device

    try:
        return resolve_device(job.options.get("device", "auto")).type == "cuda"
    except ValueError:
        return False


def _run_in_process(jobs: list[Job], reporter: _Reporter) -> None:
    from .. import cli

    torch = sys.modules.get("torch")  # called from Python: leave torch's thread count as it was
    threads_before = torch.get_num_threads() if torch is not None else None
    try:
        for group in frame_groups(jobs, local=True):
            reporter.start(group[0])
            if len(group) == 1:
                reporter.finish(_run_job(group[0]))
                continue
            for res in cli.run_frame_jobs(group):
                reporter.finish(res)
    finally:
        torch = sys.modules.get("torch")
        if threads_before is not None and torch.get_num_threads() != threads_before:
            torch.set_num_threads(threads_before)


#: Seconds to wait for a dask scheduler (``--scheduler``) before giving up.
SCHEDULER_TIMEOUT = 5.0


class SchedulerUnreachable(RuntimeError):
    """``--scheduler`` names an address where no dask scheduler answers."""


def _probe_scheduler(address: str, timeout: float = SCHEDULER_TIMEOUT) -> None:
    """Open (and close) a TCP connection to a ``tcp://host:port`` scheduler address.

    Raises
    ------
    SchedulerUnreachable
        Nothing listens there (or the host is unknown, or it does not answer in ``timeout`` s).
    """
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "tls") or parts.hostname is None:
        return  # other transports (inproc, ucx, ws): let dask try
    try:
        port = parts.port or 8786
    except ValueError as exc:
        raise SchedulerUnreachable(f"cannot reach the Dask scheduler at {address}: {exc}") from None
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SchedulerUnreachable(
            f"cannot reach the Dask scheduler at {address} ({reason}); check that it is running and "
            "the address, or use --workers N for a local cluster"
        ) from None


def _dask_client(args: argparse.Namespace) -> tuple[Any, Any]:
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise SystemExit(
            "error: --workers/--scheduler need dask.distributed: pip install 'napari-doubledip[dask]'"
        ) from exc
    import logging

    if args.scheduler:
        say(f"connecting to dask scheduler {args.scheduler}")
        _probe_scheduler(args.scheduler)
        try:
            return Client(args.scheduler, timeout=f"{SCHEDULER_TIMEOUT}s"), None
        except (OSError, TimeoutError, ValueError) as exc:
            raise SchedulerUnreachable(
                f"cannot reach the Dask scheduler at {args.scheduler} ({first_line(exc) or type(exc).__name__})"
            ) from None
    say(f"starting a local dask cluster of {args.workers} worker processes")
    cluster = LocalCluster(
        n_workers=args.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=None,
        silence_logs=logging.ERROR,
    )
    return Client(cluster), cluster


def _run_on_dask(jobs: list[Job], reporter: _Reporter, client: Any, cluster: Any) -> None:
    from distributed import as_completed

    from .. import cli

    futures = []
    try:
        by_key = {}
        for i, group in enumerate(frame_groups(jobs, local=False)):
            call = cli.run_job if len(group) == 1 else cli.run_frame_jobs
            what = group[0] if len(group) == 1 else group
            fut = client.submit(call, what, key=f"napari-doubledip-{i}-{group[0].name}", pure=False)
            by_key[fut.key] = group
            futures.append(fut)
        if not reporter.quiet:
            say(f"submitted {len(futures)} jobs to {client.scheduler.address}")
        for fut in as_completed(futures):
            group = by_key[fut.key]
            try:
                res = fut.result()
                done = res if isinstance(res, list) else [res]
            except Exception as exc:  # a worker died, the job was lost, ...
                error = f"{type(exc).__name__}: {exc}"
                done = [{"name": j.name, "label": j.label, "status": "failed", "error": error} for j in group]
            for one in done:
                reporter.finish(one)
    except KeyboardInterrupt:
        say("interrupted: cancelling the outstanding jobs ...")
        client.cancel(futures, force=True)
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _assemble(stack: Stack) -> list[str]:
    """Stack the frames' outputs and write the stack's sidecar; return the files written."""
    import numpy as np

    from .._io import write_image

    frame_dir = Path(stack.frame_dir)
    written = []
    for key, path in stack.outputs.items():
        frames = [np.load(frame_dir / f"{t:05d}_{key}.npy") for t in stack.frames]
        written.append(str(write_image(path, np.stack(frames))))
    per_frame = []
    for t in stack.frames:
        rec = json.loads((frame_dir / f"{t:05d}.json").read_text())
        outcome = run_record(rec)
        per_frame.append(
            {
                "frame": t,
                "steps_run": outcome["steps_run"],
                "stop_reason": outcome["stop_reason"],
                "final_losses": outcome["final_losses"],
                "seconds": rec.get("seconds"),
                "device": outcome["device"],
                "seed": outcome["seed"],
                "result": rec.get("result"),
            }
        )
    first = json.loads((frame_dir / f"{stack.frames[0]:05d}.json").read_text())
    sidecar = {
        "task": first["task"],
        "inputs": first["inputs"],
        "frames": stack.frames,
        "n_frames_in_input": stack.n_frames,
        "outputs": {k: Path(v).name for k, v in stack.outputs.items()},
        "parameters": first["parameters"],
        "seed": first["seed"],
        "device": first["device"],
        "per_frame": per_frame,
        **provenance("written"),
        "numerics": first.get("numerics"),
        "seconds": round(sum(p["seconds"] or 0 for p in per_frame), 3),
        "request": stack.request,
    }
    write_json(Path(stack.sidecar), sidecar)
    shutil.rmtree(frame_dir, ignore_errors=True)
    return written


def _assemble_stacks(plan: Plan, results: list[dict[str, Any]], failed: list[tuple[str, str]]) -> list[str]:
    """Stack the per-frame results of every finished stack; return the names assembled."""
    status = {r["name"]: r for r in results}
    done = []
    for name, stack in plan.stacks.items():
        missing = [j for j in stack.jobs if j in status and status[j]["status"] != "done"]
        if missing:
            failed.append((stack.label, f"{len(missing)} frame(s) failed; the stack was not written"))
            continue
        try:
            written = _assemble(stack)
        except Exception as exc:
            failed.append((stack.label, f"could not assemble the stack: {type(exc).__name__}: {exc}"))
            continue
        done.append(name)
        say(f"stack {name}: {len(stack.frames)} frames -> {', '.join(Path(p).name for p in written)}")
    return done


#: A temporary file of an atomic write (``_io.write_image``, ``sidecar.write_json``):
#: ``.<name>.<pid>.part[.<ext>]``.
_PART_FILE = re.compile(r"^\..+\.(\d+)\.part(\.[^.]+)?$")

#: Age (seconds) after which a temporary file whose writer may live on another machine is stale.
STALE_PART_SECONDS = 3600.0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_parts(folder: Path, remote: bool = False) -> list[Path]:
    """Remove the temporary files that killed writes left in ``folder`` (and its frame folders).

    A write goes to ``.<name>.<pid>.part`` and is renamed when complete; a process killed in
    between (SIGKILL, power loss) leaves that file behind. It is stale when its writer is no
    longer running here, or, when writers may run on other machines (``remote``: a
    ``--scheduler`` batch), when it is older than :data:`STALE_PART_SECONDS`.

    Returns
    -------
    list of Path
        The files removed.
    """
    removed = []
    folders = [folder, *(d for d in folder.glob(".*.frames") if d.is_dir())]
    now = time.time()
    for where in folders:
        for path in where.iterdir():
            match = _PART_FILE.match(path.name)
            if match is None or not path.is_file():
                continue
            pid = int(match.group(1))
            try:
                age = now - path.stat().st_mtime
            except OSError:
                continue
            stale = age > STALE_PART_SECONDS if remote else (pid != os.getpid() and not _pid_alive(pid))
            if stale:
                with contextlib.suppress(OSError):
                    path.unlink()
                    removed.append(path)
    return removed


def check_output_folder(out: Path) -> str | None:
    """Why ``--out`` cannot be the output folder (``None``: it can), without creating anything."""
    if out.exists() and not out.is_dir():
        return f"--out {out} is an existing file, not a folder; give a folder (it is created when missing)"
    parent = out
    while not parent.exists():
        if parent.parent == parent:
            break
        parent = parent.parent
    if parent.exists() and not parent.is_dir():
        return f"--out {out} cannot be created: {parent} is a file, not a folder"
    if parent.exists() and not os.access(parent, os.W_OK | os.X_OK):
        return f"--out {out} is not writable (no permission to write in {parent})"
    return None


def _make_output_folder(out: Path) -> str | None:
    """Create ``--out`` and check that a file can be written in it; ``None`` or why not.

    Removes the folders it created when the check fails.
    """
    created = []
    parent = out
    while not parent.exists():
        created.append(parent)
        if parent.parent == parent:
            break
        parent = parent.parent
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".napari-doubledip-write-test.{os.getpid()}.part"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        for folder in created:  # deepest first
            with contextlib.suppress(OSError):
                folder.rmdir()
        return f"--out {out} is not writable: {exc.strerror or exc}"
    return None


def run_batch(args: argparse.Namespace) -> int:
    """Plan, run and summarise one batch subcommand; return the exit status."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if not args.threads:
        args.threads = DEFAULT_THREADS  # the same wherever a job runs: the same numerics
    problem = check_output_folder(args.out)
    if problem:
        say(f"error: {problem}")
        return EXIT_USAGE
    try:
        plan = plan_batch(args)
    except ValueError as exc:
        say(f"error: {exc}")
        return EXIT_USAGE
    for note in plan.notes:
        say(f"note: {note}")
    for item, message in plan.failed:
        say(f"FAILED {item}: {message}")
    if not plan.jobs and not plan.skipped and not plan.stacks:
        say("error: no input images to process")
        return EXIT_USAGE if not plan.failed else EXIT_FAILED
    client = cluster = None
    if plan.jobs and (args.workers or args.scheduler):
        try:
            client, cluster = _dask_client(args)
        except SchedulerUnreachable as exc:
            say(f"error: {exc}")
            return EXIT_USAGE
        except KeyboardInterrupt:
            say("interrupted before any job started")
            return EXIT_INTERRUPTED
    problem = _make_output_folder(args.out)
    if problem:
        say(f"error: {problem}")
        if client is not None:
            client.close()
            if cluster is not None:
                cluster.close()
        return EXIT_USAGE
    removed = clean_stale_parts(args.out, remote=bool(args.scheduler))
    if removed and not args.quiet:
        say(f"removed {len(removed)} unfinished temporary file(s) of an interrupted earlier run")
    if plan.skipped:
        say(f"skipping {len(plan.skipped)} finished result(s) (sidecars match; --overwrite reruns them)")
    reporter = _Reporter(len(plan.jobs), args.quiet)
    interrupted = False
    t0 = time.perf_counter()
    try:
        if plan.jobs:
            if client is not None:
                _run_on_dask(plan.jobs, reporter, client, cluster)
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
        + f" in {fmt_seconds(time.perf_counter() - t0)}; results in {args.out}"
    ]
    lines += [f"  failed: {item}: {first_line(message)}" for item, message in failed]
    if interrupted:
        lines.append("  interrupted: finished results are kept; run the same command again to resume")
    say("\n".join(lines))
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_FAILED if failed else EXIT_OK
