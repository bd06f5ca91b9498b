"""Models with named hook points.

Hook points are named after the module path, like TransformerLens:
`layers.{i}.pre` is hidden layer i before its nonlinearity, `layers.{i}.post`
after it (0-indexed over hidden layers). `forward(x, capture=...)` returns the
captured activations alongside the output, so no forward hooks are registered
and nothing has to be cleaned up.

Weight points are the parameter names of the 2-D weights: `layers.{i}.weight` for
every linear layer (the readout too, whose rows are the output tokens of the modular
task) and `embed.weight` for embed_mlp's embedding (p, d).
"""

from __future__ import annotations

import itertools
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from featurelab.engine.activations import ACTIVATIONS
from featurelab.engine.config import ExperimentConfig, ModelConfig
from featurelab.errors import ConfigError


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

    def hidden_matrices(self) -> list[str]:
        """The weights that map a hidden space to a hidden space (what Muon
        orthogonalises): not the input layer (tied to the data's coordinates), not the
        readout (tied to the targets)."""
        return [f"layers.{i}.weight" for i in range(1, self.n_hidden)]

    def input_features(self, x: Tensor) -> Tensor:
        return x

    def hook_shapes(self, n_samples: int) -> dict[str, tuple[int, int]]:
        """Every hook point and the shape of its activation for n_samples inputs."""
        return widths_hook_shapes(self.cfg.widths, n_samples)

    def weight_points(self) -> dict[str, Tensor]:
        """Every weight point and its live weight (rows, cols), as PyTorch stores it."""
        layers = cast(list[nn.Linear], list(self.layers))
        return {weight_point(i): layer.weight for i, layer in enumerate(layers)}

    def forward(self, x: Tensor, capture: frozenset[str] = frozenset()
                ) -> tuple[Tensor, dict[str, Tensor]]:
        h = self.input_features(x)  # (B, d_in)
        acts: dict[str, Tensor] = {}
        for i, layer in enumerate(self.layers[:-1]):
            z = layer(h)  # (B, h_i)
            h = self.act.fn(z)  # (B, h_i)
            if (pre := hook_point(i, "pre")) in capture:
                acts[pre] = z.detach()
            if (post := hook_point(i, "post")) in capture:
                acts[post] = h.detach()
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

    def hidden_matrices(self) -> list[str]:
        """Here the first layer maps learned embeddings, not data coordinates, into a
        hidden space: it is hidden too; the embedding (independent lookups) is not."""
        return [f"layers.{i}.weight" for i in range(self.n_hidden)]

    def weight_points(self) -> dict[str, Tensor]:
        return {EMBED_POINT: self.embed.weight, **super().weight_points()}


class OneHotMLP(MLP):
    """Two tokens (a, b) as one-hot vectors, concatenated, into an MLP: the input of the
    quadratic-activation grokking papers (Gromov 2023, "Grokking modular arithmetic").

    widths [2p, hidden..., p]: the first layer's columns are a learned embedding of a
    (the first p) and of b (the last p).
    """

    def __init__(self, cfg: ModelConfig, vocab: int) -> None:
        super().__init__(cfg)
        self.vocab = vocab

    def input_features(self, x: Tensor) -> Tensor:
        return F.one_hot(x, self.vocab).flatten(1).float()  # (B, 2) -> (B, 2, p) -> (B, 2p)

    def hidden_matrices(self) -> list[str]:
        """Not the first layer: on one-hot inputs it is an embedding table (a column per
        token, each trained only by the rows holding its token), which Muon's
        orthogonalisation does not suit; not the readout. Named here, not inherited,
        because for this model it is a choice of its own."""
        return [f"layers.{i}.weight" for i in range(1, self.n_hidden)]


def build_model(cfg: ModelConfig, vocab: int = 0) -> MLP:
    """The model for a config; `vocab` is the number of tokens for embed_mlp and
    onehot_mlp."""
    if cfg.kind == "mlp":
        return MLP(cfg)
    if cfg.kind in ("embed_mlp", "onehot_mlp"):
        if vocab < 1:
            raise ConfigError("model.kind", cfg.kind, "'mlp' unless the data are tokens")
        return EmbedMLP(cfg, vocab) if cfg.kind == "embed_mlp" else OneHotMLP(cfg, vocab)
    raise ConfigError("model.kind", cfg.kind, "'mlp', 'embed_mlp' or 'onehot_mlp'")


HOOK_KINDS = ("pre", "post")  # before and after the nonlinearity
EMBED_POINT = "embed.weight"  # embed_mlp's embedding (p, d), by its parameter name


def weight_point(layer: int) -> str:
    """The weight point of linear layer `layer` (0-indexed, the readout last):
    'layers.1.weight', its parameter name."""
    return f"layers.{layer}.weight"


def parse_weight_point(point: str) -> int | None:
    """'layers.1.weight' -> 1; -1 for the embedding; None for anything else."""
    if point == EMBED_POINT:
        return -1
    parts = point.split(".")
    if len(parts) == 3 and parts[0] == "layers" and parts[1].isdigit() and parts[2] == "weight":
        return int(parts[1])
    return None


def hook_point(layer: int, kind: str) -> str:
    """The one spelling of a hook point: hidden layer `layer` (0-indexed), `kind` "pre"
    or "post" -> 'layers.1.pre', the module path of the layer plus the side."""
    if kind not in HOOK_KINDS:
        raise ValueError(f"hook point kind {kind!r}; one of {HOOK_KINDS}")
    return f"layers.{layer}.{kind}"


def parse_hook_point(point: str) -> tuple[int, str] | None:
    """'layers.1.pre' -> (1, 'pre'); None for anything that is not a hook point."""
    parts = point.split(".")
    if len(parts) == 3 and parts[0] == "layers" and parts[1].isdigit() \
            and parts[2] in HOOK_KINDS:
        return int(parts[1]), parts[2]
    return None


def widths_hook_shapes(widths: tuple[int, ...] | list[int], n_samples: int
                       ) -> dict[str, tuple[int, int]]:
    """Every hook point of an MLP of these widths (input, hidden..., output) and the
    shape of its activation for n_samples inputs."""
    return {hook_point(i, kind): (n_samples, widths[i + 1])
            for i in range(len(widths) - 2) for kind in HOOK_KINDS}


def point_label(point: str, shape: tuple[int, ...]) -> str:
    """'layers.1.pre', (500, 100) -> 'Layer 1 pre (500 x 100)', as the panel shows it;
    'layers.1.weight' -> 'Layer 1 weight (100 x 100)', 'embed.weight' -> 'Embedding
    (97 x 16)'."""
    parsed, layer = parse_hook_point(point), parse_weight_point(point)
    if parsed:
        name = f"Layer {parsed[0]} {parsed[1]}"
    elif layer is not None:
        name = "Embedding" if layer < 0 else f"Layer {layer} weight"
    else:
        name = point
    return f"{name} ({' x '.join(map(str, shape))})"


def weight_shapes(config: ExperimentConfig) -> dict[str, tuple[int, int]]:
    """Weight points of an experiment and their shapes (rows, cols) as PyTorch stores
    them, without building the model (as hook_shapes)."""
    m = config.model
    widths = list(m.widths)
    shapes: dict[str, tuple[int, int]] = {}
    if m.kind == "embed_mlp":
        shapes[EMBED_POINT] = (config.data.p, widths[0])
        widths[0] *= 2  # the two tokens' embeddings, concatenated
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(widths)):
        shapes[weight_point(i)] = (fan_out, fan_in)
    return shapes


def hook_shapes(config: ExperimentConfig) -> dict[str, tuple[int, int]]:
    """Hook points of an experiment and their shapes on its training set, without
    building data or model (the panel's layer picker and validation need them)."""
    d = config.data
    if d.is_classification:
        pairs = d.p * (d.p - 1) if d.op == "/" else d.p * d.p
        n_train = max(1, min(pairs - 1, round(d.train_frac * pairs)))
    else:
        n_train = d.n_train
    return widths_hook_shapes(config.model.widths, n_train)
