"""How fast a sweep member could be on this machine: the floor under benchmarks/sweep.py.

    python benchmarks/floor.py [--seeds 16] [--steps 2000]

Times, at one intra-op thread (a worker's), the matrix products of one training step of
the reference experiment (10-100-100-1, 500 training rows, the 200 test rows riding
along the forward pass for test_loss) and the elementwise ops and reductions a step
cannot do without (ReLU and its backward, bias sums, the loss, Adam, two active_rates,
the weight norms), each the best of several loops. Their sum is the least a step can
cost with recording, flushes, snapshots and Python free. From it: the least time for
`--seeds` members on this machine's cores, and the most speed-up over the same number
of naive loops (nn.Sequential + torch.optim.Adam at torch's default threads, timed here)
that any implementation of the same arithmetic could show. The issue's 4x target needs
this bound above 4.
"""

from __future__ import annotations

import argparse
import os
import sys
import timeit
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from engine import naive_loop, reference_config

from featurelab.engine.fused_adam import FusedAdam


def best(fn: Callable[[], object], loops: int = 200, rounds: int = 5) -> float:
    """Seconds of one call: the best round's mean, after a warm-up round."""
    return min(timeit.repeat(fn, number=loops, repeat=rounds + 1)[1:]) / loops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    args = parser.parse_args()
    default = torch.get_num_threads()
    torch.set_num_threads(1)
    rows, test, d, h = 500, 200, 10, 100
    g = torch.Generator().manual_seed(0)

    def t(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g)

    x, z, w1, w2, w3 = t(rows + test, d), t(rows + test, h), t(h, d), t(h, h), t(1, h)
    b, g1, gh = t(h), t(rows, 1), t(rows, h)
    products: list[tuple[str, Callable[[], object] | tuple[Callable[[], object], ...], int]] = [
        # (what, call or calls, multiply-adds)
        ("forward 700x10 -> 100", lambda: torch.addmm(b, x, w1.t()), (rows + test) * d * h),
        ("forward 700x100 -> 100", lambda: torch.addmm(b, z, w2.t()), (rows + test) * h * h),
        ("forward 700x100 -> 1", lambda: z @ w3.t(), (rows + test) * h),
        # as MKL is slow at (100, 10) results, the faster of two forms of one product
        ("weight gradient 100x10", (lambda: gh.t() @ x[:rows],
                                    lambda: (x[:rows].t() @ gh).t()), rows * d * h),
        ("weight gradient 100x100", lambda: gh.t() @ z[:rows], rows * h * h),
        ("weight gradient 1x100", lambda: g1.t() @ z[:rows], rows * h),
        ("input gradient 100 <- 100", lambda: gh @ w2, rows * h * h),
        ("input gradient 100 <- 1", lambda: g1 @ w3, rows * h),
    ]
    params = [w1, b, w2, b.clone(), w3, t(1)]
    for p in params:
        p.grad = torch.randn_like(p)
    adam = FusedAdam(params, lr=1e-3, betas=(0.9, 0.999))  # the kernel, as the trainer calls it
    elementwise = [  # (what, call, times a step)
        ("relu 700x100", lambda: torch.relu(z), 2),
        ("relu backward 500x100", lambda: torch.ops.aten.threshold_backward(gh, z[:rows], 0), 2),
        ("bias gradient sum", lambda: gh.sum(0), 3),
        ("loss and its gradient", lambda: ((g1 - g1).square().mean(), g1 * 0.004), 1),
        ("active_rate 500x100", lambda: z[:rows].clamp(0, 1).ceil_().mean(0), 2),
        ("weight norms", lambda: torch._foreach_norm(params), 1),
        ("adam (the fused kernel)", adam.step, 1),
    ]
    print(f"torch {torch.__version__}, {os.cpu_count()} cores; one thread")
    flops = seconds = 0.0
    for what, call, macs in products:
        s = min(best(c) for c in call) if isinstance(call, tuple) else best(call)
        flops, seconds = flops + 2 * macs, seconds + s
        print(f"  {what:28s} {s * 1e6:7.1f} us  {2 * macs / s / 1e9:5.1f} GFLOP/s")
    print(f"  products: {flops / 1e6:.1f} MFLOP a step in {seconds * 1e3:.3f} ms "
          f"({flops / seconds / 1e9:.1f} GFLOP/s)")
    rest = 0.0
    for what, call, count in elementwise:
        s = best(call)
        rest += count * s
        print(f"  {what:28s} {s * 1e6:7.1f} us x {count}")
    step = seconds + rest
    member = step * args.steps
    cores = os.cpu_count() or 1
    least = -(-args.seeds // cores) * member  # whole members per core
    torch.set_num_threads(default)
    config = reference_config(args.steps)
    naive = min(naive_loop(config) for _ in range(2))
    print(f"a step at least {step * 1e3:.3f} ms: a {args.steps}-step member at least "
          f"{member:.2f} s; {args.seeds} members on {cores} cores at least {least:.1f} s")
    print(f"naive loop ({default} threads): {naive:.2f} s, {args.seeds} of them "
          f"{args.seeds * naive:.1f} s")
    print(f"the most speed-up any implementation of this arithmetic could show: "
          f"{args.seeds * naive / least:.2f}x (workers' start and recording not counted)")


if __name__ == "__main__":
    main()
