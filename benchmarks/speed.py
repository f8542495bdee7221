"""Engine step rate against a plain eager PyTorch DIP, conv GFLOP/s, and time-to-quality.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/speed.py \
        [--sizes 128,256] [--rounds 8] [--ttq-seconds 900] [--skip-ttq] [--json out.json]

Step rate: the engine (``optimise`` on a denoising task, the ``"dip-classic"`` net, the engine's
default precision policy) against the same network written here the plain way (``nn.Sequential``
of ReflectionPad2d/Conv2d/BatchNorm2d/LeakyReLU, a concat module, ``nn.Upsample``; float32,
default memory format, ``torch.optim.Adam`` defaults, the same loss, input noise and output EMA),
plus the engine forced to float32. Each variant first runs until its step times settle (the
median of the last 5 steps within 5% of the 5 before), then the variants alternate in blocks of
steps and medians of the per-step times are quoted, so the shared machine's noise hits all of
them alike. The engine yields a snapshot (numpy outputs) after every step here, more often than
its default 0.3 s rate, so its numbers are if anything pessimistic. Conv GFLOP/s: convolution FLOPs of one step
(``torch.utils.flop_counter.FlopCounterMode``, forward + backward) divided by the median step
time; compared with a float32 matrix product measured here and with the nominal peak.

Time-to-quality: seconds until the EMA output on astronaut 128² (sigma 25/255) reaches the PSNR
of ``denoise_nl_means`` (settings as in quality.py), for the engine's defaults and for the DIP
paper's settings ("dip-classic", lr 0.01, reg noise 1/30, EMA 0.99). Early stopping is off so the
crossing is measured, not a stopping decision.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time

import numpy as np

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from torch import nn  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))


# ---------------------------------------------------------------------------- the eager reference
class Concat(nn.Module):
    def __init__(self, *mods: nn.Module) -> None:
        super().__init__()
        self.mods = nn.ModuleList(mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([m(x) for m in self.mods], dim=1)


def conv(c_in: int, c_out: int, k: int, stride: int = 1) -> list[nn.Module]:
    pad = (k - 1) // 2
    return ([nn.ReflectionPad2d(pad)] if pad else []) + [nn.Conv2d(c_in, c_out, k, stride)]


def bn_act(c: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(c), nn.LeakyReLU(0.2, inplace=True)]


def eager_skip(cfg, out_channels: int) -> nn.Module:
    """The DIP repository's ``skip()`` network, written out with ordinary modules."""
    levels = len(cfg.channels_down)

    def level(i: int, c_in: int) -> nn.Module:
        cd, cu, cs = cfg.channels_down[i], cfg.channels_up[i], cfg.channels_skip[i]
        fd, fu = cfg.filter_size_down, cfg.filter_size_up
        deeper = [
            *conv(c_in, cd, fd, 2),
            *bn_act(cd),
            *conv(cd, cd, fd),
            *bn_act(cd),
        ]
        c_deep = cd
        if i < levels - 1:
            deeper.append(level(i + 1, cd))
            c_deep = cfg.channels_up[i + 1]
        deeper.append(nn.Upsample(scale_factor=2, mode=cfg.upsample_mode))
        branch = nn.Sequential(*deeper)
        if cs:
            skip = nn.Sequential(*conv(c_in, cs, cfg.filter_size_skip), *bn_act(cs))
            body = [Concat(skip, branch)]
        else:
            body = [branch]
        body += [nn.BatchNorm2d(cs + c_deep), *conv(cs + c_deep, cu, fu), *bn_act(cu)]
        if cfg.need_1x1_up:
            body += [*conv(cu, cu, 1), *bn_act(cu)]
        return nn.Sequential(*body)

    return nn.Sequential(level(0, cfg.input_depth), *conv(cfg.channels_up[0], out_channels, 1), nn.Sigmoid())


class EagerRun:
    """Plain DIP denoising steps: noise input + reg noise, MSE, Adam, EMA of the output."""

    def __init__(self, cfg, target: torch.Tensor, lr: float = 0.01, reg_noise: float = 1 / 30) -> None:
        torch.manual_seed(0)
        self.net = eager_skip(cfg, target.shape[1])
        self.z = torch.rand(1, cfg.input_depth, *target.shape[-2:]) * 0.1
        self.target = target
        self.reg_noise = reg_noise
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.ema = None

    def step(self) -> None:
        self.opt.zero_grad()
        out = self.net(self.z + self.reg_noise * torch.randn_like(self.z))
        loss = ((out - self.target) ** 2).mean()
        loss.backward()
        self.opt.step()
        with torch.no_grad():
            self.ema = out.detach().clone() if self.ema is None else self.ema.mul_(0.99).add_(out, alpha=0.01)
        loss.item()


class EngineRun:
    """The engine's own loop, advanced a block of steps at a time."""

    def __init__(self, image: np.ndarray, net: str, every: int = 1, **loop) -> None:
        from napari_doubledip.core.loop import optimise
        from napari_doubledip.core.tasks.denoise import DenoiseTask

        self.task = DenoiseTask(image, net=net)
        self.every = every
        self.stream = optimise(
            self.task,
            steps=10**9,
            early_stop=False,
            device="cpu",
            snapshot_every=every,
            min_interval=0,
            **loop,
        )
        self.step = 0

    def steps(self, n: int) -> list[float]:
        """Run about ``n`` steps (whole snapshots); the mean step time of each snapshot interval.

        The loop yields a snapshot (outputs converted to numpy) every ``every`` steps, so the
        snapshot cost is included, at a rate at least as high as the default 0.3 s interval.
        """
        times = []
        for _ in range(max(1, n // self.every)):
            t0 = time.perf_counter()
            snap = next(self.stream)
            dt = time.perf_counter() - t0
            times += [dt / (snap.step - self.step)] * (snap.step - self.step)
            self.step = snap.step
        return times


def settle(step_fn, max_steps: int = 60) -> int:
    """Step until the median of the last 5 step times is within 5% of the 5 before."""
    times: list[float] = []
    for _ in range(max_steps):
        t0 = time.perf_counter()
        step_fn()
        times.append(time.perf_counter() - t0)
        if len(times) >= 10:
            a, b = statistics.median(times[-10:-5]), statistics.median(times[-5:])
            if abs(a - b) <= 0.05 * b:
                break
    return len(times)


def conv_flops(cfg, size: int, channels: int = 3) -> tuple[int, int]:
    """(convolution FLOPs, all counted FLOPs) of one forward + backward of the eager net."""
    from torch.utils.flop_counter import FlopCounterMode

    net = eager_skip(cfg, channels)
    z = torch.rand(1, cfg.input_depth, size, size)
    counter = FlopCounterMode(display=False)
    with counter:
        out = net(z)
        out.square().mean().backward()
    counts = counter.get_flop_counts()["Global"]
    conv_total = sum(v for k, v in counts.items() if "convolution" in str(k))
    return conv_total, sum(counts.values())


def matmul_gflops(n: int = 2048, dtype=torch.float32, reps: int = 5) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def step_rates(size: int, rounds: int, block: int) -> dict:
    from napari_doubledip.core.network import PRESETS
    from napari_doubledip.samples import photo

    cfg = PRESETS["dip-classic"]
    image = photo("astronaut", size)
    target = torch.from_numpy(image.transpose(2, 0, 1).copy())[None]
    eager = EagerRun(cfg, target)
    engine = EngineRun(image, "dip-classic")
    engine32 = EngineRun(image, "dip-classic", precision="float32")
    variants = {
        "eager fp32": lambda n: _timed(eager.step, n),
        "engine (default precision)": engine.steps,
        "engine float32": engine32.steps,
    }
    warm = {name: settle(lambda f=fn: f(1)) for name, fn in variants.items()}
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, fn in variants.items():
            times[name] += fn(block)
    med = {name: statistics.median(t) for name, t in times.items()}
    flops, all_flops = conv_flops(cfg, size)
    return {
        "size": size,
        "warmup_steps": warm,
        "median_s": med,
        "steps_per_s": {k: 1 / v for k, v in med.items()},
        "speedup_vs_eager": {k: med["eager fp32"] / v for k, v in med.items()},
        "conv_gflop_per_step": flops / 1e9,
        "all_gflop_per_step": all_flops / 1e9,
        "conv_gflops": {k: flops / v / 1e9 for k, v in med.items()},
        "n_steps": {k: len(v) for k, v in times.items()},
        "precision_default": _precision_of(),
    }


def _precision_of() -> str:
    from napari_doubledip.core.loop import _autocast_dtype

    dt = _autocast_dtype("auto", torch.device("cpu"))
    return "float32" if dt is None else str(dt).replace("torch.", "")


def _timed(fn, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def default_rate(size: int, seconds: float = 20.0) -> dict:
    """Steps/s of the default denoising settings (whole loop, early stop off), after warm-up."""
    from napari_doubledip.samples import photo

    run = EngineRun(photo("astronaut", size), "default", every=5)
    warm = settle(lambda: run.steps(1))
    t = []
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        t += run.steps(5)
    return {"size": size, "warmup_steps": warm, "median_s": statistics.median(t), "steps": len(t)}


def time_to_quality(seconds: float) -> dict:
    from quality import SIGMA, psnr, run_nlm

    import napari_doubledip as dd
    from napari_doubledip.samples import photo

    clean = photo("astronaut", 128)
    noisy = np.clip(clean + np.random.default_rng(0).normal(0, SIGMA, clean.shape), 0, 1).astype(np.float32)
    nlm, _ = run_nlm(noisy)
    goal = psnr(nlm, clean)
    out = {"nlm_psnr": goal}
    settings = {
        "default": {},
        "paper": {"net": "dip-classic", "lr": 0.01, "reg_noise": 1 / 30, "ema": 0.99},
    }
    for name, opts in settings.items():
        hit: dict = {}
        trace = []

        def watch(snap, hit=hit, trace=trace):
            p = psnr(snap.outputs["image"], clean)
            trace.append((round(snap.elapsed, 2), snap.step, round(p, 3)))
            if p >= goal and not hit:
                hit.update(seconds=snap.elapsed, step=snap.step, psnr=p)
                return False
            return None

        r = dd.denoise(
            noisy,
            max_seconds=seconds,
            early_stop=False,
            device="cpu",
            min_interval=0.5,
            callback=watch,
            **opts,
        )
        out[name] = {
            "reached": bool(hit),
            **hit,
            "last": trace[-1],
            "precision": r.params["precision"],
            "trace": trace[:: max(1, len(trace) // 60)],
        }
        print(f"# time-to-quality {name}: {out[name]}", file=sys.stderr, flush=True)
    return out


def precision_check(nets: list[str], steps: int, every: int = 50) -> dict:
    """PSNR of the EMA output against the clean image every ``every`` steps, float32 vs bfloat16.

    Same seed, same steps: a quality-neutral reduced precision tracks the float32 curve.
    Denoising (astronaut, sigma 25/255) and inpainting (coffee, 50% missing), 128².
    """
    from quality import SIGMA, psnr

    import napari_doubledip as dd
    from napari_doubledip.samples import photo

    rng = np.random.default_rng(0)
    clean_a = photo("astronaut", 128)
    noisy = np.clip(clean_a + rng.normal(0, SIGMA, clean_a.shape), 0, 1).astype(np.float32)
    clean_c = photo("coffee", 128)
    mask = rng.random(clean_c.shape[:2]) < 0.5
    cases = {"denoise": (dd.denoise, (noisy,), clean_a), "inpaint50": (dd.inpaint, (clean_c, mask), clean_c)}
    out: dict = {}
    for net in nets:
        for case, (fn, inputs, clean) in cases.items():
            for precision in ("float32", "bfloat16"):
                curve: list[tuple[int, float]] = []

                def watch(snap, curve=curve, clean=clean):
                    curve.append((snap.step, round(psnr(snap.outputs["image"], clean), 3)))

                t0 = time.perf_counter()
                fn(
                    *inputs,
                    net=net,
                    steps=steps,
                    early_stop=False,
                    device="cpu",
                    precision=precision,
                    snapshot_every=every,
                    min_interval=0,
                    callback=watch,
                )
                key = f"{net} {case} {precision}"
                out[key] = {"curve": curve, "seconds": time.perf_counter() - t0}
                print(f"# {key}: {out[key]}", file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="128,256")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--block", type=int, default=3)
    parser.add_argument("--ttq-seconds", type=float, default=900.0)
    parser.add_argument("--skip-ttq", action="store_true")
    parser.add_argument("--json", default=None)
    parser.add_argument(
        "--precision-check",
        default=None,
        metavar="NETS",
        help="only compare float32 and bfloat16 PSNR-vs-steps for these nets (comma-separated)",
    )
    parser.add_argument("--check-steps", type=int, default=600)
    args = parser.parse_args(argv)
    if args.precision_check:
        res = precision_check(args.precision_check.split(","), args.check_steps)
        if args.json:
            with open(args.json, "w") as fh:
                json.dump(res, fh, indent=1)
        return
    report: dict = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "matmul_fp32_gflops": matmul_gflops(),
        "matmul_bf16_gflops": matmul_gflops(dtype=torch.bfloat16),
    }
    print(f"# {report}", file=sys.stderr, flush=True)
    report["classic"] = []
    for size in (int(s) for s in args.sizes.split(",")):
        rounds = args.rounds if size <= 128 else max(3, args.rounds // 2)
        block = args.block if size <= 128 else 2
        r = step_rates(size, rounds, block)
        report["classic"].append(r)
        print(f"# dip-classic {size}: {json.dumps(r)}", file=sys.stderr, flush=True)
        d = default_rate(size)
        report.setdefault("default", []).append(d)
        print(f"# default {size}: {d} -> {1 / d['median_s']:.1f} steps/s", file=sys.stderr, flush=True)
    if not args.skip_ttq:
        report["ttq"] = time_to_quality(args.ttq_seconds)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(report, fh, indent=1)
    print(json.dumps({k: v for k, v in report.items() if k != "ttq"}, indent=1))


if __name__ == "__main__":
    main()
