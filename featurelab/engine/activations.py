"""The activation functions an MLP can use: the one registry of them (config validation
reads its names, models build from it)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor


@dataclass(frozen=True)
class Activation:
    fn: Callable[[Tensor], Tensor]
    # (dL/da, z, a) -> dL/dz for the hand-written training step. aten's own backward
    # kernels: one op each and bitwise what autograd computes.
    backward: Callable[[Tensor, Tensor, Tensor], Tensor]


_aten = torch.ops.aten
ACTIVATIONS: dict[str, Activation] = {
    "relu": Activation(torch.relu, lambda g, z, a: _aten.threshold_backward(g, z, 0.0)),
    "gelu": Activation(F.gelu, lambda g, z, a: _aten.gelu_backward(g, z)),
    "tanh": Activation(torch.tanh, lambda g, z, a: _aten.tanh_backward(g, a)),
    "silu": Activation(F.silu, lambda g, z, a: _aten.silu_backward(g, z)),
    "square": Activation(torch.square, lambda g, z, a: g * z * 2.0),
    "identity": Activation(lambda z: z, lambda g, z, a: g),
}
