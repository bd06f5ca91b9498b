"""Optimizers and learning-rate schedules, built from an OptimizerConfig.

`build_optimizer` returns an `OptimizerBundle`: the torch optimizer, the schedule
(`lr_at`, `set_step`) and `implementation`, a short name of the exact update code.
Runs record `implementation` because bitwise reproducibility needs the same code
path, not just the same hyperparameters (fused and foreach kernels round differently).

Implementations (one per config.OPTIMIZERS name):
  sgd    "sgd-foreach"            SGD with momentum, L2 weight decay
  adam   "adam-fused"             Adam, L2 weight decay
  adamw  "adamw-fused"            AdamW, decoupled weight decay
  muon   "muon-ns5+adamw-fused"   Muon on hidden matrices, AdamW on the rest
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor
from torch.nn import Parameter
from torch.optim import Optimizer

from featurelab.engine.fused_adam import FusedAdam
from featurelab.errors import ConfigError

if TYPE_CHECKING:  # a type only: config validates names against OPTIMIZERS below
    from featurelab.engine.config import OptimizerConfig

NamedParams = list[tuple[str, Parameter]]
Builder = Callable[[NamedParams, "OptimizerConfig"], tuple[Optimizer, str]]

# Keller Jordan's quintic: trades exact convergence to 1 for singular values in ~[0.5, 1.5]
# after few steps, which is all the update needs.
NS_COEFFS = (3.4445, -4.7750, 2.0315)
NS_STEPS = 5


@dataclass(frozen=True)
class OptimizerBundle:
    optimizer: Optimizer
    cfg: OptimizerConfig
    implementation: str

    def lr_at(self, step: int) -> float:
        return lr_at(self.cfg, step)

    def set_step(self, step: int) -> float:
        """Write the scheduled lr for `step` into every param group (times the group's
        `lr_scale`: Muon's AdamW group may have a learning rate of its own); return it."""
        lr = self.lr_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr


def lr_at(cfg: OptimizerConfig, step: int) -> float:
    """Linear warmup to cfg.lr, then constant or cosine decay reaching 0 at step steps-1."""
    warmup = cfg.warmup_steps
    if step < warmup:
        return cfg.lr * (step + 1) / warmup
    if cfg.schedule == "constant":
        return cfg.lr
    span = cfg.steps - 1 - warmup
    if span <= 0:
        # No step is left to decay over; holding the peak beats training at lr 0.
        return cfg.lr
    t = min(1.0, (step - warmup) / span)
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * t))


def zeropower_via_newtonschulz5(g: Tensor, steps: int = NS_STEPS) -> Tensor:
    """Approximately orthogonalise a matrix (U S V^T -> ~U V^T) with the quintic NS iteration."""
    a, b, c = NS_COEFFS
    # float32, not the original bfloat16: CPU bf16 matmuls are slow and less reproducible.
    x = g.to(torch.float32)
    transposed = x.size(-2) > x.size(-1)
    if transposed:
        x = x.mT  # keeps x @ x.mT the smaller Gram matrix
    # Scaling to Frobenius norm <= 1 puts every singular value inside NS's basin.
    x = x / (x.norm(dim=(-2, -1), keepdim=True) + 1e-7)
    for _ in range(steps):
        s = x @ x.mT
        x = a * x + (b * s + c * s @ s) @ x
    if transposed:
        x = x.mT
    return x.to(g.dtype)


class Muon(Optimizer):
    """Muon: Nesterov momentum, orthogonalised by Newton-Schulz, for 2-D weights only."""

    def __init__(self, params: Iterable[Parameter], lr: float = 0.02, momentum: float = 0.95,
                 weight_decay: float = 0.0, nesterov: bool = True,
                 ns_steps: int = NS_STEPS) -> None:
        defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                    "nesterov": nesterov, "ns_steps": ns_steps}
        super().__init__(params, defaults)
        for group in self.param_groups:
            for p in group["params"]:
                if p.ndim != 2:
                    raise ValueError(f"Muon takes 2-D weights only; got shape {tuple(p.shape)}")

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, beta, wd = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(g)
                buf = state["momentum_buffer"]
                buf.lerp_(g, 1 - beta)
                update = g.lerp(buf, beta) if group["nesterov"] else buf
                update = zeropower_via_newtonschulz5(update, group["ns_steps"])
                if wd:
                    p.mul_(1 - lr * wd)
                # An orthogonalised update has RMS 1/sqrt(max(rows, cols)); the factor makes it
                # 1/sqrt(cols) (fan-in) for tall and wide matrices alike.
                scale = max(1.0, p.size(-2) / p.size(-1)) ** 0.5
                p.add_(update, alpha=-lr * scale)
        return loss


class _MergedState(Mapping):
    # A read-only view: a ChainMap over the children's defaultdicts would insert
    # empty entries into the wrong child on every lookup miss.
    def __init__(self, states: list[Mapping]) -> None:
        self._states = states

    def __getitem__(self, key: Any) -> Any:
        for s in self._states:
            if key in s:
                return s[key]
        raise KeyError(key)

    def __iter__(self) -> Iterator[Any]:
        for s in self._states:
            yield from s

    def __len__(self) -> int:
        return sum(len(s) for s in self._states)


class MuonWithAdamW(Optimizer):
    """One optimizer object over Muon (hidden matrices) and AdamW (everything else).

    param_groups are the children's own group dicts, so writing a group's lr (as
    OptimizerBundle.set_step does) reaches the child that uses it.
    """

    def __init__(self, muon: Muon | None, adamw: torch.optim.AdamW) -> None:
        self.children = [o for o in (muon, adamw) if o is not None]
        self.muon, self.adamw = muon, adamw
        params = [p for o in self.children for g in o.param_groups for p in g["params"]]
        super().__init__(params, {})
        self._built = True
        self._link_children()

    def _link_children(self) -> None:
        # Optimizer.load_state_dict replaces a child's param_groups and state objects,
        # so the links are remade after every load.
        self.param_groups = [g for o in self.children for g in o.param_groups]
        self.state = _MergedState([o.state for o in self.children])  # type: ignore[assignment]

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for o in self.children:
            o.step()
        return loss

    def zero_grad(self, set_to_none: bool = True) -> None:
        for o in self.children:
            o.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        return {"muon": self.muon.state_dict() if self.muon else None,
                "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if (state_dict.get("muon") is None) != (self.muon is None):
            raise ValueError("state_dict and optimizer disagree on whether Muon has params")
        if self.muon is not None:
            self.muon.load_state_dict(state_dict["muon"])
        self.adamw.load_state_dict(state_dict["adamw"])
        self._link_children()

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        # Optimizer.__init__ adds the initial groups through here; later additions would
        # land in neither child and silently never step.
        if getattr(self, "_built", False):
            raise NotImplementedError("add groups to MuonWithAdamW.muon or .adamw instead")
        super().add_param_group(param_group)


def split_muon_params(named_params: NamedParams, hidden_names: Collection[str] | None = None
                      ) -> tuple[NamedParams, NamedParams]:
    """(Muon params, AdamW params): Muon gets the hidden 2-D weights, AdamW the rest.

    Orthogonalising the update treats a matrix as a map between hidden spaces whose
    directions all matter equally; that fits hidden layers but not the input layer
    (tied to the data's coordinates), the readout (tied to the targets) or embeddings
    (rows are independent lookups). The original Muon recipe uses AdamW for those.
    A featurelab model names its hidden matrices (`hidden_names`: MLP.hidden_matrices),
    because parameter order cannot tell the roles apart (an embedding registered after
    the layers is not the readout); without names, for any other module, the first and
    last 2-D weights that are not embeddings are taken as input and readout.
    """
    if hidden_names is not None:
        names = set(hidden_names)
        unknown = names - {n for n, _ in named_params}
        if unknown:
            raise ValueError(f"split_muon_params: no parameters named {sorted(unknown)}")
        return ([(n, p) for n, p in named_params if n in names],
                [(n, p) for n, p in named_params if n not in names])
    matrices = [i for i, (name, p) in enumerate(named_params) if p.ndim == 2]
    non_embed = [i for i in matrices if "embed" not in named_params[i][0]]
    excluded = set()
    if non_embed:
        excluded.add(non_embed[0])  # input layer
        excluded.add(non_embed[-1])  # readout
    hidden = set(non_embed) - excluded
    muon = [named_params[i] for i in range(len(named_params)) if i in hidden]
    rest = [named_params[i] for i in range(len(named_params)) if i not in hidden]
    return muon, rest


def _params(named_params: NamedParams) -> list[Parameter]:
    return [p for _, p in named_params]


def _build_sgd(named_params: NamedParams, cfg: OptimizerConfig) -> tuple[Optimizer, str]:
    # Not fused: at one thread it is no faster for small MLPs, and with several OpenMP
    # threads on a busy CPU its parallel kernel stalls (~1000x slower on a loaded 2-core box).
    opt = torch.optim.SGD(_params(named_params), lr=cfg.lr, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay, foreach=True)
    return opt, "sgd-foreach"


def _build_adam(named_params: NamedParams, cfg: OptimizerConfig) -> tuple[Optimizer, str]:
    # The fused CPU kernel is ~2.5x faster than foreach for small MLPs, and FusedAdam
    # drops torch.optim's Python overhead around it; the speed target needs both.
    opt = FusedAdam(_params(named_params), lr=cfg.lr, betas=(cfg.momentum, cfg.beta2),
                    weight_decay=cfg.weight_decay)
    return opt, "adam-fused"  # type: ignore[return-value]


def _build_adamw(named_params: NamedParams, cfg: OptimizerConfig) -> tuple[Optimizer, str]:
    opt = FusedAdam(_params(named_params), lr=cfg.lr, betas=(cfg.momentum, cfg.beta2),
                    weight_decay=cfg.weight_decay, decoupled=True)
    return opt, "adamw-fused"  # type: ignore[return-value]


def _build_muon(named_params: NamedParams, cfg: OptimizerConfig,
                hidden_names: Collection[str] | None = None) -> tuple[Optimizer, str]:
    hidden, rest = split_muon_params(named_params, hidden_names)
    # torch refuses an empty parameter list; a model without hidden matrices runs pure AdamW
    # through the same wrapper, so the implementation string stays the same.
    muon = Muon(_params(hidden), lr=cfg.lr, momentum=cfg.momentum,
                weight_decay=cfg.weight_decay) if hidden else None
    adamw = torch.optim.AdamW(_params(rest), lr=cfg.lr, betas=(cfg.momentum, cfg.beta2),
                              weight_decay=cfg.weight_decay, fused=True)
    # The two groups want different step sizes (Muon's update is orthonormal, AdamW's is
    # per coordinate): adamw_lr gives the AdamW group its own peak, on the same schedule.
    adamw.param_groups[0]["lr_scale"] = cfg.adamw_lr / cfg.lr if cfg.adamw_lr else 1.0
    return MuonWithAdamW(muon, adamw), f"muon-ns{NS_STEPS}+adamw-fused"


OPTIMIZERS: dict[str, Builder] = {
    "sgd": _build_sgd,
    "adam": _build_adam,
    "adamw": _build_adamw,
    "muon": _build_muon,
}


def get_builder(name: str) -> Builder:
    try:
        return OPTIMIZERS[name]
    except (KeyError, TypeError):
        raise ConfigError("optimizer.name", name,
                          "one of " + ", ".join(map(repr, OPTIMIZERS))) from None


def build_optimizer(named_params: Iterable[tuple[str, Parameter]],
                    cfg: OptimizerConfig, hidden_names: Collection[str] | None = None
                    ) -> OptimizerBundle:
    """The optimizer for `named_params` (in model order) with lrs set for step 0;
    `hidden_names`: the model's hidden matrices (what Muon orthogonalises)."""
    named = list(named_params)
    if not named:
        raise ValueError("build_optimizer: got no parameters to optimise")
    builder = get_builder(cfg.name)
    optimizer, implementation = (_build_muon(named, cfg, hidden_names)
                                 if builder is _build_muon else builder(named, cfg))
    bundle = OptimizerBundle(optimizer, cfg, implementation)
    bundle.set_step(0)
    return bundle
