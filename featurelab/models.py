"""Models with named hook points.

Hook points are named after the module path, like TransformerLens:
`layers.{i}.pre` is hidden layer i before its nonlinearity, `layers.{i}.post`
after it (0-indexed over hidden layers). `forward(x, capture=...)` returns the
captured activations alongside the output, so no forward hooks are registered
and nothing has to be cleaned up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from featurelab.config import ExperimentConfig, ModelConfig
from featurelab.errors import ConfigError


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


class MLP(nn.Module):
    """widths [d_in, h_0, ..., h_{H-1}, d_out]: H hidden layers, each with pre/post points."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.act = ACTIVATIONS[cfg.activation]
        w = cfg.widths
        # layers.0 .. layers.{H-1} are hidden; layers.H is the linear readout.
        self.layers = nn.ModuleList(
            nn.Linear(w[i], w[i + 1], bias=cfg.bias) for i in range(len(w) - 1)
        )
        if cfg.init_scale != 1.0:
            with torch.no_grad():
                for p in self.parameters():
                    p.mul_(cfg.init_scale)

    @property
    def n_hidden(self) -> int:
        return len(self.layers) - 1

    def input_features(self, x: Tensor) -> Tensor:
        return x

    def hook_shapes(self, n_samples: int) -> dict[str, tuple[int, int]]:
        """Every hook point and the shape of its activation for n_samples inputs."""
        shapes = {}
        for i in range(self.n_hidden):
            width = self.cfg.widths[i + 1]
            shapes[f"layers.{i}.pre"] = (n_samples, width)
            shapes[f"layers.{i}.post"] = (n_samples, width)
        return shapes

    def forward(self, x: Tensor, capture: frozenset[str] = frozenset()
                ) -> tuple[Tensor, dict[str, Tensor]]:
        h = self.input_features(x)  # (B, d_in)
        acts: dict[str, Tensor] = {}
        for i, layer in enumerate(self.layers[:-1]):
            z = layer(h)  # (B, h_i)
            h = self.act.fn(z)  # (B, h_i)
            if f"layers.{i}.pre" in capture:
                acts[f"layers.{i}.pre"] = z.detach()
            if f"layers.{i}.post" in capture:
                acts[f"layers.{i}.post"] = h.detach()
        return self.layers[-1](h), acts  # (B, d_out)


class EmbedMLP(MLP):
    """Two tokens (a, b), each embedded in widths[0] dims, concatenated, then an MLP.

    For modular arithmetic: widths [d_embed, hidden..., p]; the first hidden layer
    sees 2 * d_embed inputs.
    """

    def __init__(self, cfg: ModelConfig, vocab: int) -> None:
        d = cfg.widths[0]
        super().__init__(ModelConfig(kind="mlp", widths=(2 * d, *cfg.widths[1:]),
                                     activation=cfg.activation, bias=cfg.bias,
                                     init_scale=cfg.init_scale))
        self.cfg = cfg
        self.embed = nn.Embedding(vocab, d)
        if cfg.init_scale != 1.0:
            with torch.no_grad():
                self.embed.weight.mul_(cfg.init_scale)

    def input_features(self, x: Tensor) -> Tensor:
        return self.embed(x).flatten(1)  # (B, 2) -> (B, 2, d) -> (B, 2d)


def build_model(cfg: ModelConfig, vocab: int = 0) -> MLP:
    """The model for a config; `vocab` is the number of tokens for embed_mlp."""
    if cfg.kind == "mlp":
        return MLP(cfg)
    if cfg.kind == "embed_mlp":
        if vocab < 1:
            raise ConfigError("model.kind", cfg.kind, "'mlp' unless the data are tokens")
        return EmbedMLP(cfg, vocab)
    raise ConfigError("model.kind", cfg.kind, "'mlp' or 'embed_mlp'")


def point_label(point: str, shape: tuple[int, ...]) -> str:
    """'layers.1.pre', (500, 100) -> 'Layer 1 pre (500 x 100)', as the panel shows it."""
    parts = point.split(".")
    name = f"Layer {parts[1]} {parts[2]}" if len(parts) == 3 else point
    return f"{name} ({' x '.join(map(str, shape))})"


def hook_shapes(config: ExperimentConfig) -> dict[str, tuple[int, int]]:
    """Hook points of an experiment and their shapes on its training set, without
    building data or model (the panel's layer picker and validation need them)."""
    d = config.data
    if d.is_classification:
        pairs = d.p * (d.p - 1) if d.op == "/" else d.p * d.p
        n_train = max(1, min(pairs - 1, round(d.train_frac * pairs)))
    else:
        n_train = d.n_train
    widths = config.model.widths
    shapes = {}
    for i in range(len(widths) - 2):
        for kind in ("pre", "post"):
            shapes[f"layers.{i}.{kind}"] = (n_train, widths[i + 1])
    return shapes
