"""One grouped forward pass for K generators vs a Python loop over K separate nets.

    OMP_WAIT_POLICY=PASSIVE flock /tmp/dd-bench.lock .venv/bin/python benchmarks/bench_batched.py \
        [--seconds 20] [--size 128] [--ks 2,3,4] [--net default] [--threads 2]

One training step = forward + MSE loss + backward + Adam (fused, as the engine uses), float32,
CPU. "grouped" is ``SkipNet(config, C, n_nets=K)``; "loop" is K ``SkipNet(config, C)`` run one
after another with one optimizer over all of them. The two are timed in alternation (blocks of
``--block`` steps, after a warm-up), so load from other processes hits both alike; reported are
median steps/s and the median of the per-round ratios. ``--seconds`` is the timing budget per K.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _step(opt, nets, inputs, target) -> None:
    """One training step of ``nets`` (one grouped net, or K single nets stacked)."""
    import torch

    opt.zero_grad(set_to_none=True)
    if len(nets) == 1:
        out = nets[0](inputs[0])
    else:
        out = torch.stack([n(z)[:, 0] for n, z in zip(nets, inputs, strict=True)], dim=1)
    loss = ((out - target) ** 2).mean()
    loss.backward()
    opt.step()


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="timing budget per K")
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--ks", default="2,3,4")
    parser.add_argument("--net", default="default")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--block", type=int, default=3, help="steps per timed block")
    args, _ = parser.parse_known_args(argv)
    # decompose.py passes its --seconds (meant for a whole Double-DIP run): cap the per-K budget
    budget = min(args.seconds, 60.0)

    import torch

    from napari_doubledip.core.network import SkipNet, resolve_net_config

    torch.set_num_threads(args.threads)
    cfg = resolve_net_config(args.net)
    size = args.size
    rows = []
    for k in [int(v) for v in args.ks.split(",")]:
        torch.manual_seed(0)
        grouped = SkipNet(cfg, 3, n_nets=k)
        loop_nets = [SkipNet(cfg, 3) for _ in range(k)]
        z_g = torch.rand(1, k * cfg.input_depth, size, size) * 0.1
        z_l = [z_g[:, i * cfg.input_depth : (i + 1) * cfg.input_depth] for i in range(k)]
        target = torch.rand(1, k, 3, size, size)
        opt_g = torch.optim.Adam(grouped.parameters(), lr=0.01, fused=True)
        opt_l = torch.optim.Adam([p for n in loop_nets for p in n.parameters()], lr=0.01, fused=True)

        for _ in range(3):  # warm-up: kernel set-up
            _step(opt_g, [grouped], [z_g], target)
            _step(opt_l, loop_nets, z_l, target)
        rates_g, rates_l, ratios = [], [], []
        t_end = time.perf_counter() + budget
        while time.perf_counter() < t_end or len(ratios) < 3:
            t0 = time.perf_counter()
            for _ in range(args.block):
                _step(opt_g, [grouped], [z_g], target)
            t1 = time.perf_counter()
            for _ in range(args.block):
                _step(opt_l, loop_nets, z_l, target)
            t2 = time.perf_counter()
            rates_g.append(args.block / (t1 - t0))
            rates_l.append(args.block / (t2 - t1))
            ratios.append(rates_g[-1] / rates_l[-1])
        rows.append(
            f"| {k} | {statistics.median(rates_g):.2f} | {statistics.median(rates_l):.2f} | "
            f"{statistics.median(ratios):.2f}x | {len(ratios)} |"
        )
        print(rows[-1], flush=True)
    report = "\n".join(
        [
            "### K generators: one grouped pass vs a Python loop over K nets",
            "",
            f"`benchmarks/bench_batched.py --seconds {budget:g} --size {size} --ks {args.ks} --net {args.net} "
            f"--threads {args.threads}`; {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs "
            "(shared), float32, forward + backward + fused Adam, interleaved blocks of "
            f"{args.block} steps, medians.",
            "",
            "| K | grouped steps/s | loop steps/s | speed-up (median of per-round ratios) | rounds |",
            "|---|---|---|---|---|",
            *rows,
        ]
    )
    print(report)
    return report


if __name__ == "__main__":
    main()
