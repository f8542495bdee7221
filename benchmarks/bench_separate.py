"""Transparency separation: Double-DIP from two mixtures vs FastICA, and one-image separation.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/bench_separate.py \
        [--seconds 120] [--size 128] [--threads 2] [--skip-single]

Two mixtures (weights 0.7/0.3 and 0.3/0.7 of chelsea and coffee, Gaussian noise sigma 0.02, from
``napari_doubledip.samples.mixtures``): PSNR of both recovered layers against the true layers,
best of the two assignments. FastICA (scikit-learn, 2 components on the pixels of the two
mixtures) gets each source affinely fitted (least squares, per channel) to the reference it is
assigned to, a generous oracle scaling. One-image separation ((t1 + t2) / 2 of brick and grass):
PSNR of the layers, best assignment, also affinely fitted (one image cannot fix the layers'
brightness split), no bar.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from bench_common import psnr  # noqa: E402


def affine_fit(source: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Least-squares ``g * source + o`` per channel, clipped to [0, 1]."""
    out = np.empty_like(reference, dtype=np.float64)
    for c in range(reference.shape[-1]):
        s, r = source[..., c].ravel(), reference[..., c].ravel()
        design = np.stack([s, np.ones_like(s)], 1)
        coef, *_ = np.linalg.lstsq(design, r, rcond=None)
        out[..., c] = (design @ coef).reshape(reference.shape[:-1])
    return np.clip(out, 0, 1)


def best_assignment(
    est: tuple[np.ndarray, np.ndarray], ref: tuple[np.ndarray, np.ndarray], fit: bool = False
) -> tuple[float, float]:
    """PSNR of both layers under the better of the two assignments (optionally affinely fitted)."""
    best = None
    for order in ((0, 1), (1, 0)):
        pair = [est[order[0]], est[order[1]]]
        if fit:
            pair = [affine_fit(p, r) for p, r in zip(pair, ref, strict=True)]
        scores = (psnr(pair[0], ref[0]), psnr(pair[1], ref[1]))
        if best is None or sum(scores) > sum(best):
            best = scores
    return best


def fastica(images: list[np.ndarray], seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    from sklearn.decomposition import FastICA

    x = np.stack([im.reshape(-1) for im in images], axis=1)  # pixels x mixtures
    sources = FastICA(n_components=2, random_state=seed, whiten="unit-variance").fit_transform(x)
    return tuple(sources[:, i].reshape(images[0].shape) for i in range(2))


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=120.0)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-single", action="store_true", help="skip the one-image separation")
    args, _ = parser.parse_known_args(argv)

    import napari_doubledip as dd
    from napari_doubledip import samples

    rows = []
    images, layers = samples.mixtures(size=args.size, seed=args.seed)
    t0 = time.perf_counter()
    ica = fastica(images, args.seed)
    t_ica = time.perf_counter() - t0
    ica_scores = best_assignment(ica, layers, fit=True)
    res = dd.separate(images, max_seconds=args.seconds, device="cpu", threads=args.threads, seed=args.seed)
    dd_scores = best_assignment(res.layers, layers)
    dd_fit = best_assignment(res.layers, layers, fit=True)
    inv = np.linalg.inv(np.array([[0.7, 0.3], [0.3, 0.7]]))
    oracle = (inv[0, 0] * images[0] + inv[0, 1] * images[1], inv[1, 0] * images[0] + inv[1, 1] * images[1])
    oracle_scores = best_assignment(tuple(np.clip(o, 0, 1) for o in oracle), layers)
    p = res.params
    rows.append(
        f"| two mixtures 0.7/0.3, sigma 0.02 | {dd_scores[0]:.2f} / {dd_scores[1]:.2f} "
        f"(mean {np.mean(dd_scores):.2f}; affinely fitted {np.mean(dd_fit):.2f}) | "
        f"{ica_scores[0]:.2f} / {ica_scores[1]:.2f} (mean {np.mean(ica_scores):.2f}, {t_ica:.1f} s) | "
        f"{np.mean(oracle_scores):.2f} | alphas {np.round(res.alphas, 3).tolist()}, {p['steps_run']} steps, "
        f"{p['seconds']:.0f} s, stop: {p['stop_reason']} |"
    )
    single = ""
    if not args.skip_single:
        t1, t2 = samples.photo("brick", args.size), samples.photo("grass", args.size)
        mix = ((t1 + t2) / 2).astype(np.float32)
        r1 = dd.separate(mix, max_seconds=args.seconds, device="cpu", threads=args.threads, seed=args.seed)
        raw = best_assignment(r1.layers, (t1, t2))
        fit = best_assignment(r1.layers, (t1, t2), fit=True)
        base = best_assignment((mix, mix), (t1, t2), fit=True)
        p1 = r1.params
        single = (
            f"| one image (brick + grass) / 2 | raw {raw[0]:.2f} / {raw[1]:.2f}; affinely fitted "
            f"{fit[0]:.2f} / {fit[1]:.2f} | (no peer; the mixture itself, fitted: {base[0]:.2f} / "
            f"{base[1]:.2f}) | – | {p1['steps_run']} steps, {p1['seconds']:.0f} s, stop: {p1['stop_reason']} |"
        )
    report = "\n".join(
        [
            "### Transparency separation",
            "",
            f"`benchmarks/bench_separate.py --seconds {args.seconds:g} --size {args.size} --threads "
            f"{args.threads}`; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs (shared), "
            "device cpu, default settings. PSNR (dB) of layer a / layer b, best assignment.",
            "",
            "| case | Double-DIP | FastICA (affinely fitted to the references) | inverting the true "
            "mixing matrix | notes |",
            "|---|---|---|---|---|",
            *rows,
            *([single] if single else []),
        ]
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
