"""Quality per second at real sizes: DIP against NLM / BM3D / biharmonic on crops of full-size photos.

    OMP_WAIT_POLICY=PASSIVE .venv/bin/python benchmarks/scaling.py \
        [--sizes 128,256,512,1024] [--tasks denoise,inpaint50,inpaint80] [--seconds 300] \
        [--budgets 30,60,120,300] [--images auto] [--json out.json] [--plot out.png] [--set key=value ...]

Inputs are centre crops (never resized) of the full-size ``skimage.data`` photos that are at
least that large: astronaut, camera (gray) and coffee up to 512 (coffee: 400), retina at 1024.
Denoising: Gaussian noise sigma = 25/255, clipped to [0, 1], seed 0; peers NLM (scikit-image,
fast mode, 5x5 patches, 13x13 window, h = 0.8 sigma with ``estimate_sigma``, as in
``quality.py``) and BM3D (``bm3d`` package, told the true sigma; skipped where it is not
installed), and "NLM oracle": the best NLM over its strength and patch size, picked with the
clean image (in NLM's favour). Inpainting: 50% / 80% of the pixels missing at random, peer ``inpaint_biharmonic``.

One DIP run per input with the API's defaults (``--set`` overrides) and ``max_seconds`` = the
largest budget. Its live snapshots show what a Stop at that moment returns, so the PSNR of the
last snapshot at or before each budget is the result of a run given that budget (a run that
stops early keeps its result for the larger budgets). Also: steps run, steps/s, peak resident
memory of the process (``ru_maxrss``, so runs go from small to large), and a PSNR-vs-time
plot per size.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import parse_sets, psnr  # noqa: E402
from quality import run_biharmonic, run_bm3d, run_nlm  # noqa: E402

SIGMA = 25 / 255
#: photos per size (each at least that large in both directions)
IMAGES = {
    128: ("astronaut", "camera", "coffee"),
    256: ("astronaut", "camera", "coffee"),
    512: ("astronaut", "camera", "retina"),
    1024: ("retina",),
}


def crop(name: str, size: int) -> np.ndarray:
    """Centre ``size`` x ``size`` crop of a full-size ``skimage.data`` photo, unit range (camera: gray)."""
    from skimage import data

    image = getattr(data, name)()
    h, w = image.shape[:2]
    if min(h, w) < size:
        raise ValueError(f"{name} is {h}x{w}: no {size}^2 crop")
    top, left = (h - size) // 2, (w - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size] / 255.0, dtype=np.float32)


def load_file(path: str) -> np.ndarray:
    """An image file at its own size, unit range (RGB or gray; alpha dropped)."""
    import imageio.v3 as iio

    image = np.asarray(iio.imread(path))
    if image.ndim == 3:
        image = image[..., :3]
    return np.ascontiguousarray(image / float(np.iinfo(image.dtype).max), dtype=np.float32)


def make_input(task: str, clean: np.ndarray) -> tuple[tuple, np.ndarray]:
    """The corrupted input (args of the API call) and what the peer starts from."""
    rng = np.random.default_rng(0)
    if task == "denoise":
        noisy = np.clip(clean + rng.normal(0, SIGMA, clean.shape), 0, 1).astype(np.float32)
        return (noisy,), noisy
    fraction = {"inpaint50": 0.5, "inpaint80": 0.8}[task]
    mask = rng.random(clean.shape[:2]) < fraction
    damaged = np.where(mask[..., None] if clean.ndim == 3 else mask, 0.0, clean).astype(np.float32)
    return (damaged, mask), damaged


def run_nlm_oracle(noisy: np.ndarray, clean: np.ndarray) -> tuple[float, str]:
    """The best PSNR non-local means reaches on this input over its strength and patch size.

    An oracle in NLM's favour (it is told the clean image to pick its settings): h in
    {0.5, 0.6, 0.7, 0.8, 1.0} sigma, 5x5 patches in a 13x13 window or 7x7 in 19x19.
    """
    from skimage.restoration import denoise_nl_means, estimate_sigma

    ax = -1 if noisy.ndim == 3 else None
    sigma = float(np.mean(estimate_sigma(noisy, channel_axis=ax)))
    best = (-np.inf, "")
    for h in (0.5, 0.6, 0.7, 0.8, 1.0):
        for patch, distance in ((5, 6), (7, 9)):
            out = denoise_nl_means(
                noisy,
                h=h * sigma,
                sigma=sigma,
                fast_mode=True,
                patch_size=patch,
                patch_distance=distance,
                channel_axis=ax,
            )
            best = max(best, (psnr(out, clean), f"h={h}, {patch}x{patch}"))
    return best


def run_dip(task: str, inputs: tuple, clean: np.ndarray, seconds: float, options: dict) -> dict:
    import napari_doubledip as dd

    trace: list[tuple[float, int, float]] = []

    def watch(snap) -> None:
        trace.append((snap.elapsed, snap.step, psnr(snap.outputs["image"], clean)))

    fn = dd.denoise if task == "denoise" else dd.inpaint
    opts = {"max_seconds": seconds, "seed": 0, "device": "cpu", "min_interval": 1.0, **options}
    t0 = time.perf_counter()
    result = fn(*inputs, callback=watch, **opts)
    wall = time.perf_counter() - t0
    return {
        "psnr": psnr(result.image, clean),
        "seconds": wall,
        "steps": result.params["steps_run"],
        "steps_per_s": result.params["steps_run"] / wall,
        "stop": result.params["stop_reason"],
        "best_step": result.params.get("best_step"),
        "trace": trace,
    }


def at_budget(trace: list[tuple[float, int, float]], budget: float) -> float | None:
    """PSNR of the last snapshot at or before ``budget`` seconds (``None``: none yet)."""
    seen = [p for t, _, p in trace if t <= budget + 0.5]
    return seen[-1] if seen else None


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = sorted({r["size"] for r in rows})
    fig, axes = plt.subplots(1, len(sizes), figsize=(4.2 * len(sizes), 3.6), squeeze=False)
    for ax, size in zip(axes[0], sizes, strict=True):
        for r in (r for r in rows if r["size"] == size):
            t = [p[0] for p in r["dip"]["trace"]]
            v = [p[2] - r["peer"] for p in r["dip"]["trace"]]
            ax.plot(t, v, label=f"{r['task']} {r['image']}")
        ax.axhline(0, color="k", lw=0.8)
        ax.set_title(f"{size}$^2$: DIP minus peer (NLM / biharmonic)")
        ax.set_xlabel("seconds")
        ax.set_ylabel("dB")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256,512,1024")
    parser.add_argument("--tasks", default="denoise,inpaint50,inpaint80")
    parser.add_argument("--budgets", default="30,60,120,300")
    parser.add_argument(
        "--seconds", type=float, default=None, help="DIP run length (default: largest budget)"
    )
    parser.add_argument("--images", default="auto", help="comma-separated names, or auto (IMAGES per size)")
    parser.add_argument(
        "--files", nargs="*", default=None, help="image files run at their own size instead (size column: 0)"
    )
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument(
        "--no-oracle", action="store_true", help="skip the NLM column tuned on the clean image"
    )
    parser.add_argument("--json", default=None)
    parser.add_argument("--plot", default=None)
    parser.add_argument("--set", action="append", default=[], help="extra DIP option key=value")
    parser.add_argument("--replot", default=None, help="only draw --plot from this --json file")
    args = parser.parse_args(argv)
    if args.replot:
        with open(args.replot) as fh:
            plot(json.load(fh)["rows"], args.plot)
        return ""
    import torch

    budgets = [float(b) for b in args.budgets.split(",")]
    seconds = args.seconds or max(budgets)
    options = parse_sets(args.set)
    rows: list[dict] = []
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load_start = os.getloadavg()[0]
    if args.files:
        inputs_by_size = {0: [(os.path.basename(f), load_file(f)) for f in args.files]}
    else:
        inputs_by_size = {
            size: [
                (name, crop(name, size))
                for name in (IMAGES[size] if args.images == "auto" else args.images.split(","))
            ]
            for size in (int(s) for s in args.sizes.split(","))
        }
    for size, named in inputs_by_size.items():
        for name, clean in named:
            for task in args.tasks.split(","):
                inputs, _ = make_input(task, clean)
                row: dict = {"size": size, "image": name, "task": task, "input": psnr(inputs[0], clean)}
                if task == "denoise":
                    out, t = run_nlm(inputs[0])
                    row["peer"], row["peer_s"] = psnr(out, clean), t
                    if not args.no_oracle:
                        row["nlm_oracle"], row["nlm_oracle_settings"] = run_nlm_oracle(inputs[0], clean)
                    if not args.no_bm3d:
                        try:
                            out, t = run_bm3d(inputs[0])
                            row["bm3d"], row["bm3d_s"] = psnr(out, clean), t
                        except ImportError:
                            pass
                else:
                    out, t = run_biharmonic(*inputs)
                    row["peer"], row["peer_s"] = psnr(out, clean), t
                row["dip"] = run_dip(task, inputs, clean, seconds, options)
                row["at"] = {str(int(b)): at_budget(row["dip"]["trace"], b) for b in budgets}
                row["peak_rss_mb"] = peak_rss_mb()
                rows.append(row)
                d = row["dip"]
                print(
                    f"{size} {name} {task}: input {row['input']:.2f} peer {row['peer']:.2f} "
                    f"bm3d {row.get('bm3d', float('nan')):.2f} dip {d['psnr']:.2f} "
                    f"({d['steps']} steps, {d['steps_per_s']:.2f}/s, {d['stop']}) at "
                    + " ".join(f"{k}s:{v:.2f}" if v is not None else f"{k}s:-" for k, v in row["at"].items()),
                    file=sys.stderr,
                    flush=True,
                )
    load_end = os.getloadavg()[0]
    header = ["size", "image", "task", "input", "peer (s)", "NLM oracle", "BM3D (s)"]
    header += [f"DIP {int(b)} s" for b in budgets]
    header += ["first output s", "steps (steps/s)", "stop", "peak RSS MB"]
    lines = [
        f"scaling.py, {started}, {platform.node()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, load {load_start:.2f} -> {load_end:.2f}, options {options}",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
    ]
    for r in rows:
        d = r["dip"]
        bm3d = f"{r['bm3d']:.2f} ({r['bm3d_s']:.1f})" if "bm3d" in r else "–"
        cells = [
            str(r["size"]),
            r["image"],
            r["task"],
            f"{r['input']:.2f}",
            f"{r['peer']:.2f} ({r['peer_s']:.1f})",
            f"{r['nlm_oracle']:.2f}" if "nlm_oracle" in r else "–",
            bm3d,
        ]
        for b in budgets:
            v = r["at"][str(int(b))]
            cells.append("–" if v is None else (f"**{v:.2f}**" if v > r["peer"] + 0.005 else f"{v:.2f}"))
        cells += [f"{d['trace'][0][0]:.1f}" if d["trace"] else "–"]
        cells += [f"{d['steps']} ({d['steps_per_s']:.2f})", str(d["stop"]), f"{r['peak_rss_mb']:.0f}"]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                {"command": sys.argv, "started": started, "load": [load_start, load_end], "rows": rows}, fh
            )
    if args.plot:
        plot(rows, args.plot)
    return table


if __name__ == "__main__":
    main()
