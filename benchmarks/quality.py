"""DIP denoising and inpainting quality against classical peers, at a fixed CPU time budget.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/quality.py \
        [--size 128] [--images astronaut,coffee,chelsea,camera] [--seconds 120] \
        [--tasks denoise,inpaint50,inpaint80] [--json out.json] [--set key=value ...]

Denoising: Gaussian noise sigma = 25/255 (clipped to [0, 1]) against ``denoise_nl_means``
(sigma from ``estimate_sigma``, fast mode, 5x5 patches, 13x13 search window, h = 0.8 sigma, the
scikit-image example's settings) and BM3D (``bm3d`` package, told the true sigma). Inpainting:
50% and 80% of pixels missing at random against ``inpaint_biharmonic``. PSNR over the whole image
(RGB in [0, 1]; "camera" is run as a gray image). DIP runs with the API's defaults plus
``max_seconds``; ``--set`` overrides any option (e.g. ``--set net=dip-classic --set lr=0.01``).
Also recorded: the best PSNR the run's snapshots reached (an oracle, shows what stopping costs)
and the steps run. Prints a markdown table; ``--json`` saves every number.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import parse_sets, psnr  # noqa: E402

SIGMA = 25 / 255
IMAGES = ("astronaut", "coffee", "chelsea", "camera")


def load(name: str, size: int) -> np.ndarray:
    from napari_doubledip.samples import photo

    return photo(name, size, rgb=name != "camera")


def channel_axis(image: np.ndarray) -> int | None:
    return -1 if image.ndim == 3 else None


def run_nlm(noisy: np.ndarray) -> tuple[np.ndarray, float]:
    from skimage.restoration import denoise_nl_means, estimate_sigma

    t0 = time.perf_counter()
    ax = channel_axis(noisy)
    sigma = float(np.mean(estimate_sigma(noisy, channel_axis=ax)))
    out = denoise_nl_means(
        noisy, h=0.8 * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=ax
    )
    return out, time.perf_counter() - t0


def run_bm3d(noisy: np.ndarray) -> tuple[np.ndarray, float]:
    import bm3d

    t0 = time.perf_counter()
    out = bm3d.bm3d_rgb(noisy, SIGMA) if noisy.ndim == 3 else bm3d.bm3d(noisy, SIGMA)
    return np.clip(out, 0, 1), time.perf_counter() - t0


def run_biharmonic(damaged: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, float]:
    from skimage.restoration import inpaint_biharmonic

    t0 = time.perf_counter()
    out = inpaint_biharmonic(damaged, mask, channel_axis=channel_axis(damaged))
    return np.clip(out, 0, 1), time.perf_counter() - t0


def run_dip(kind: str, clean: np.ndarray, inputs: tuple, seconds: float, options: dict) -> dict:
    """One DIP run; follows PSNR on the snapshots (every ~2 s) to record the best reached."""
    import napari_doubledip as dd

    trace: list[tuple[float, int, float]] = []

    def watch(snap) -> None:
        trace.append((snap.elapsed, snap.step, psnr(snap.outputs["image"], clean)))

    opts = {"max_seconds": seconds, "seed": 0, "device": "cpu", "min_interval": 2.0, **options}
    t0 = time.perf_counter()
    fn = dd.denoise if kind == "denoise" else dd.inpaint
    result = fn(*inputs, callback=watch, **opts)
    wall = time.perf_counter() - t0
    best = max(trace, key=lambda t: t[2])
    return {
        "psnr": psnr(result.image, clean),
        "seconds": wall,
        "steps": result.params["steps_run"],
        "stop": result.params["stop_reason"],
        "best_psnr": best[2],
        "best_at_s": best[0],
        "precision": result.params["precision"],
        "threads": result.params["threads"],
        "trace": trace,
    }


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--images", default=",".join(IMAGES))
    parser.add_argument("--seconds", type=float, default=120.0, help="DIP time budget per run")
    parser.add_argument("--tasks", default="denoise,inpaint50,inpaint80")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument("--set", action="append", default=[], help="extra DIP option key=value")
    args = parser.parse_args(argv)
    import torch

    options = parse_sets(args.set)
    if args.threads:
        options["threads"] = args.threads
    rows: list[dict] = []
    for name in args.images.split(","):
        clean = load(name, args.size)
        for task in args.tasks.split(","):
            rng = np.random.default_rng(0)
            row = {"image": name, "task": task}
            if task == "denoise":
                noisy = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 1).astype(np.float32)
                row["input"] = psnr(noisy, clean)
                nlm, row["nlm_s"] = run_nlm(noisy)
                row["nlm"] = psnr(nlm, clean)
                if not args.no_bm3d:
                    b, row["bm3d_s"] = run_bm3d(noisy)
                    row["bm3d"] = psnr(b, clean)
                row["dip"] = run_dip("denoise", clean, (noisy,), args.seconds, options)
            else:
                fraction = int(task.removeprefix("inpaint")) / 100
                mask = rng.random(clean.shape[:2]) < fraction
                damaged = clean.copy()
                damaged[mask] = 0
                row["input"] = psnr(damaged, clean)
                bih, row["biharmonic_s"] = run_biharmonic(damaged, mask)
                row["biharmonic"] = psnr(bih, clean)
                row["dip"] = run_dip("inpaint", clean, (damaged, mask), args.seconds, options)
            rows.append(row)
            d = row["dip"]
            peer = row.get("nlm", row.get("biharmonic"))
            print(
                f"# {name} {task}: DIP {d['psnr']:.2f} dB (best {d['best_psnr']:.2f} at {d['best_at_s']:.0f} s, "
                f"{d['steps']} steps, {d['stop']}, {d['seconds']:.0f} s) vs peer {peer:.2f}",
                file=sys.stderr,
                flush=True,
            )
    report = render(rows, args, options, torch)
    print(report)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "args": vars(args)}, fh, indent=1)
    return report


def render(rows: list[dict], args, options: dict, torch) -> str:
    lines = [
        f"### DIP quality at {args.size}² (budget {args.seconds:g} s per run, options {options or 'defaults'})",
        "",
        f"Machine: {platform.machine()} {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}; "
        "PSNR in dB, times in s.",
        "",
    ]
    for task in args.tasks.split(","):
        sub = [r for r in rows if r["task"] == task]
        if not sub:
            continue
        if task == "denoise":
            head = "| image | noisy | NLM (s) | BM3D (s) | DIP (s, steps, stop) | DIP best seen (at s) |"
            peer_key = "nlm"
        else:
            head = f"| image {task[7:]}% missing | input | biharmonic (s) | DIP (s, steps, stop) | DIP best seen (at s) |"
            peer_key = "biharmonic"
        lines += [f"**{task}**", "", head, "|" + "---|" * (head.count("|") - 1)]
        for r in sub:
            d = r["dip"]
            cells = [r["image"], f"{r['input']:.2f}", f"{r[peer_key]:.2f} ({r[peer_key + '_s']:.1f})"]
            if task == "denoise":
                cells.append(f"{r['bm3d']:.2f} ({r['bm3d_s']:.1f})" if "bm3d" in r else "–")
            cells.append(f"**{d['psnr']:.2f}** ({d['seconds']:.0f}, {d['steps']}, {d['stop']})")
            cells.append(f"{d['best_psnr']:.2f} ({d['best_at_s']:.0f})")
            lines.append("| " + " | ".join(cells) + " |")
        mean_peer = np.mean([r[peer_key] for r in sub])
        mean_dip = np.mean([r["dip"]["psnr"] for r in sub])
        extra = ""
        if task == "denoise" and all("bm3d" in r for r in sub):
            extra = f" | {np.mean([r['bm3d'] for r in sub]):.2f}"
        lines.append(
            f"| **mean** | {np.mean([r['input'] for r in sub]):.2f} | {mean_peer:.2f}"
            + extra
            + f" | **{mean_dip:.2f}** ({mean_dip - mean_peer:+.2f} vs peer) | |"
        )
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
