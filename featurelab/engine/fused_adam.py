"""Adam and AdamW on the fused CPU kernel, without torch.optim's per-step bookkeeping.

`torch.optim.Adam(fused=True)` spends ~150 us a step in Python (hooks, regrouping
tensors by device, one step counter per parameter) around a ~25 us kernel. For
the small models of a lab bench that is a quarter of a training step. This
class calls the same kernel, `torch._fused_adam_` / `torch._fused_adamw_`, with
the lists built once and one shared step counter, so its updates are bitwise
those of torch.optim (a test checks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor


class FusedAdam:
    """The subset of the torch.optim.Optimizer interface the trainer uses."""

    def __init__(self, params: Sequence[Tensor], lr: float, betas: tuple[float, float],
                 weight_decay: float = 0.0, eps: float = 1e-8, decoupled: bool = False) -> None:
        self.params = list(params)
        self.param_groups = [{"params": self.params, "lr": lr}]
        self.betas = betas
        self.weight_decay = weight_decay
        self.eps = eps
        self.kernel = torch._fused_adamw_ if decoupled else torch._fused_adam_
        self.exp_avgs = [torch.zeros_like(p) for p in self.params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in self.params]
        self.step_count = torch.zeros((), dtype=torch.float32)  # torch.optim's dtype for it

    @torch.no_grad()
    def step(self) -> None:
        grads = [p.grad for p in self.params if p.grad is not None]
        if len(grads) != len(self.params):
            missing = [i for i, p in enumerate(self.params) if p.grad is None]
            raise RuntimeError(f"parameters {missing} have no gradient")
        self.step_count.add_(1)
        self.kernel(self.params, grads, self.exp_avgs, self.exp_avg_sqs, [],
                    [self.step_count] * len(self.params), amsgrad=False,
                    lr=self.param_groups[0]["lr"], beta1=self.betas[0], beta2=self.betas[1],
                    weight_decay=self.weight_decay, eps=self.eps, maximize=False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    def state_dict(self) -> dict[str, Any]:
        return {"step": self.step_count.clone(), "exp_avgs": [t.clone() for t in self.exp_avgs],
                "exp_avg_sqs": [t.clone() for t in self.exp_avg_sqs],
                "lr": self.param_groups[0]["lr"]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count.copy_(state["step"])
        for mine, theirs in zip(self.exp_avgs + self.exp_avg_sqs,
                                state["exp_avgs"] + state["exp_avg_sqs"]):
            mine.copy_(theirs)
        self.param_groups[0]["lr"] = state["lr"]
