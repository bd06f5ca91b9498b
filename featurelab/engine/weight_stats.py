"""Built-in statistics of weight matrices (registered in featurelab.engine.stats).

A weight W (rows, cols), as PyTorch stores it, reaches a statistic as a stack of steps
of its transpose: (K, cols, rows). Axis 1 then runs along one row, so a reduction over
it gives one value per row, the same layout as activations (K, samples, neurons): per
neuron for a layer (its incoming weights), per token for the embedding (its vector).

The Fourier spectrum is the picture of grokking on modular arithmetic: a network that
generalises keeps a few frequencies k of the embedding, E[a] ~ cos(2 pi k a / p + phi),
and drops the rest (Nanda et al. 2023, "Progress measures for grokking via mechanistic
interpretability"); the inverse participation ratio of that spectrum is the one number
Doshi et al. ("To grok or not to grok", 2024) follow for it.
"""

from __future__ import annotations

import torch
from torch import Tensor


def weight_stack(weight: Tensor) -> Tensor:
    """A live weight (rows, cols) as one step of the layout above: (1, cols, rows), a
    view (no copy; user code gets a clone, featurelab.engine.stats.call_statistic)."""
    return weight.detach().t().unsqueeze(0)


def row_norm(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    return t.float().norm(dim=dim, keepdim=keepdim)


def fourier_power(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    """(K, d, p) -> (K, p // 2 + 1): the share of the rows' power at each frequency
    k = 0 .. p // 2 over the token (last) axis, summed over axis `dim`; each row sums
    to 1."""
    spectrum = torch.fft.rfft(t.float(), dim=-1)  # (K, d, p // 2 + 1), complex
    power = spectrum.abs().square().sum(dim=dim, keepdim=keepdim)  # (K, p // 2 + 1)
    # rfft keeps one of each pair k, p - k, which hold the same power for real weights:
    # doubled, a frequency's share is its share of sum_a E[a]^2 (Parseval), as the
    # cos + sin pair of Nanda et al.'s Fourier basis counts it. Not 0, nor p/2 (even p).
    p = t.shape[-1]
    power[..., 1:(p + 1) // 2] *= 2
    total = power.sum(dim=-1, keepdim=True).clamp_min(torch.finfo(power.dtype).tiny)
    return power / total


def inverse_participation(t: Tensor, dim: int, keepdim: bool = False) -> Tensor:
    """sum_k P_k^2 of a distribution P over axis `dim` (it sums to 1)."""
    return t.float().square().sum(dim=dim, keepdim=keepdim)
