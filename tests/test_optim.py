import io
import math

import pytest
import torch

from featurelab.engine.config import OPTIMIZERS as CONFIG_OPTIMIZERS
from featurelab.engine.config import OptimizerConfig
from featurelab.engine.optim import (
    OPTIMIZERS,
    Muon,
    MuonWithAdamW,
    build_optimizer,
    get_builder,
    split_muon_params,
    zeropower_via_newtonschulz5,
)
from featurelab.errors import ConfigError

LRS = {"sgd": 0.05, "adam": 1e-2, "adamw": 1e-2, "muon": 1e-2}
IMPLEMENTATIONS = {
    "sgd": "sgd-foreach",
    "adam": "adam-fused",
    "adamw": "adamw-fused",
    "muon": "muon-ns5+adamw-fused",
}


def make_mlp(seed: int = 0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(4, 16), torch.nn.Tanh(),
        torch.nn.Linear(16, 16), torch.nn.Tanh(),
        torch.nn.Linear(16, 1),
    )


def make_data() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(123)
    x = torch.randn(64, 4, generator=g)
    y = torch.sin(x.sum(dim=1, keepdim=True)) + 0.5 * x[:, :1] * x[:, 1:2]
    return x, y


def train(name: str, steps: int, seed: int = 0, **cfg_kw) -> tuple[torch.nn.Module, list[float]]:
    model = make_mlp(seed)
    x, y = make_data()
    cfg = OptimizerConfig(name=name, lr=LRS[name], steps=steps, **cfg_kw)
    bundle = build_optimizer(list(model.named_parameters()), cfg)
    losses = []
    for step in range(steps):
        bundle.set_step(step)
        bundle.optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        bundle.optimizer.step()
        losses.append(loss.item())
    return model, losses


def test_registry_matches_config():
    assert set(OPTIMIZERS) == set(CONFIG_OPTIMIZERS)


def test_unknown_name_raises_config_error():
    with pytest.raises(ConfigError) as info:
        get_builder("lion")
    assert info.value.field == "optimizer.name"


@pytest.mark.parametrize("name", CONFIG_OPTIMIZERS)
def test_each_optimizer_reduces_loss(name):
    _, losses = train(name, steps=200)
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.5 * losses[0], (name, losses[0], losses[-1])


@pytest.mark.parametrize("name", CONFIG_OPTIMIZERS)
def test_implementation_strings(name):
    model = make_mlp()
    bundle = build_optimizer(list(model.named_parameters()), OptimizerConfig(name=name))
    assert bundle.implementation == IMPLEMENTATIONS[name]


@pytest.mark.parametrize("name", CONFIG_OPTIMIZERS)
def test_determinism_bitwise(name):
    a, _ = train(name, steps=50, seed=7, weight_decay=0.01)
    b, _ = train(name, steps=50, seed=7, weight_decay=0.01)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), (name, na)


def test_warmup_then_cosine_values():
    cfg = OptimizerConfig(lr=0.1, steps=101, warmup_steps=10, schedule="cosine")
    bundle = build_optimizer(list(make_mlp().named_parameters()), cfg)
    assert bundle.lr_at(0) == pytest.approx(0.01)
    assert bundle.lr_at(4) == pytest.approx(0.05)
    assert bundle.lr_at(9) == pytest.approx(0.1)
    assert bundle.lr_at(10) == pytest.approx(0.1)  # cosine starts at the peak
    assert bundle.lr_at(55) == pytest.approx(0.05)  # halfway through the decay
    assert bundle.lr_at(100) == pytest.approx(0.0, abs=1e-12)
    assert bundle.lr_at(500) == pytest.approx(0.0, abs=1e-12)


def test_constant_schedule_values():
    cfg = OptimizerConfig(lr=0.3, steps=100, warmup_steps=4)
    bundle = build_optimizer(list(make_mlp().named_parameters()), cfg)
    assert [bundle.lr_at(s) for s in range(5)] == pytest.approx([0.075, 0.15, 0.225, 0.3, 0.3])
    assert bundle.lr_at(99) == pytest.approx(0.3)
    no_warmup = build_optimizer(list(make_mlp().named_parameters()),
                                OptimizerConfig(lr=0.3, steps=100, schedule="cosine"))
    assert no_warmup.lr_at(0) == pytest.approx(0.3)
    assert no_warmup.lr_at(99) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("name", CONFIG_OPTIMIZERS)
def test_set_step_writes_param_groups(name):
    cfg = OptimizerConfig(name=name, lr=0.2, steps=21, warmup_steps=4, schedule="cosine")
    bundle = build_optimizer(list(make_mlp().named_parameters()), cfg)
    # built ready for step 0
    assert all(g["lr"] == pytest.approx(0.05) for g in bundle.optimizer.param_groups)
    for step in (2, 12, 20):
        lr = bundle.set_step(step)
        assert lr == bundle.lr_at(step)
        assert all(g["lr"] == lr for g in bundle.optimizer.param_groups)
    if name == "muon":
        opt = bundle.optimizer
        assert len(opt.param_groups) == 2
        children = [opt.muon, opt.adamw]
        assert all(c.param_groups[0]["lr"] == bundle.lr_at(20) for c in children)


def test_muon_split_hidden_only():
    model = make_mlp()
    bundle = build_optimizer(list(model.named_parameters()), OptimizerConfig(name="muon"))
    opt = bundle.optimizer
    assert isinstance(opt, MuonWithAdamW)
    assert isinstance(opt.muon, Muon)
    assert isinstance(opt.adamw, torch.optim.AdamW)
    muon_params = opt.muon.param_groups[0]["params"]
    assert len(muon_params) == 1 and muon_params[0] is model[2].weight
    adamw_ids = {id(p) for p in opt.adamw.param_groups[0]["params"]}
    expected = {id(p) for n, p in model.named_parameters() if n != "2.weight"}
    assert adamw_ids == expected


def test_muon_split_skips_embeddings_and_vectors():
    names = ["embed.weight", "layers.0.weight", "layers.0.bias", "layers.1.weight",
             "layers.2.weight", "layers.3.weight", "readout.weight", "readout.bias"]
    shapes = [(97, 8), (16, 16), (16,), (16, 16), (16, 16), (16, 16), (97, 16), (97,)]
    named = [(n, torch.nn.Parameter(torch.zeros(s))) for n, s in zip(names, shapes, strict=True)]
    muon, rest = split_muon_params(named)
    assert [n for n, _ in muon] == ["layers.1.weight", "layers.2.weight", "layers.3.weight"]
    assert [n for n, _ in rest] == ["embed.weight", "layers.0.weight", "layers.0.bias",
                                    "readout.weight", "readout.bias"]


def test_muon_without_hidden_matrices_uses_adamw_only():
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
    bundle = build_optimizer(list(model.named_parameters()), OptimizerConfig(name="muon"))
    assert bundle.optimizer.muon is None
    assert bundle.implementation == "muon-ns5+adamw-fused"
    x, y = make_data()
    torch.nn.functional.mse_loss(model(x), y).backward()
    bundle.optimizer.step()


@pytest.mark.parametrize("shape", [(16, 32), (32, 16)])
def test_newton_schulz_is_approximately_orthogonal(shape):
    g = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    x = zeropower_via_newtonschulz5(g)
    assert x.shape == g.shape and x.dtype == torch.float32
    s = torch.linalg.svdvals(x)
    assert s.min() > 0.5 and s.max() < 1.5, s


def test_muon_weight_decay_shrinks_zero_grad_weights():
    p = torch.nn.Parameter(torch.randn(16, 16, generator=torch.Generator().manual_seed(1)))
    before = p.detach().clone()
    opt = Muon([p], lr=0.1, momentum=0.9, weight_decay=0.5)
    p.grad = torch.zeros_like(p)
    opt.step()
    torch.testing.assert_close(p.detach(), before * (1 - 0.1 * 0.5))


def test_muon_bundle_weight_decay_is_decoupled_everywhere():
    model = make_mlp()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = OptimizerConfig(name="muon", lr=0.1, weight_decay=0.5)
    bundle = build_optimizer(list(model.named_parameters()), cfg)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    bundle.set_step(0)
    bundle.optimizer.step()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.detach(), before[n] * 0.95)


def test_muon_state_dict_round_trip():
    x, y = make_data()

    def step(model, opt):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    cfg = OptimizerConfig(name="muon", lr=1e-2)
    a = make_mlp(3)
    opt_a = build_optimizer(list(a.named_parameters()), cfg).optimizer
    for _ in range(5):
        step(a, opt_a)
    assert len(opt_a.state) == 6  # merged view over both children
    b = make_mlp(99)
    b.load_state_dict(a.state_dict())
    opt_b = build_optimizer(list(b.named_parameters()), cfg).optimizer
    # Through bytes, as a checkpoint would be: torch's load_state_dict shares tensors.
    buf = io.BytesIO()
    torch.save(opt_a.state_dict(), buf)
    buf.seek(0)
    opt_b.load_state_dict(torch.load(buf))
    # After loading, param_groups must still reach the children (set_step relies on it).
    for g in opt_b.param_groups:
        g["lr"] = 0.02
    for child in (opt_b.muon, opt_b.adamw):
        assert child.param_groups[0]["lr"] == 0.02
        child.param_groups[0]["lr"] = 1e-2
    for _ in range(5):
        step(a, opt_a)
        step(b, opt_b)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(pa, pb)


def test_muon_wrapper_refuses_new_groups():
    opt = build_optimizer(list(make_mlp().named_parameters()),
                          OptimizerConfig(name="muon")).optimizer
    with pytest.raises(NotImplementedError):
        opt.add_param_group({"params": [torch.nn.Parameter(torch.zeros(2))]})


def test_empty_params_rejected():
    with pytest.raises(ValueError):
        build_optimizer([], OptimizerConfig())


# -- Muon's split by role, named by each model ---------------------------------------------


@pytest.mark.parametrize("kind, widths, vocab, hidden", [
    ("mlp", (4, 16, 16, 16, 1), 0, ["layers.1.weight", "layers.2.weight"]),
    ("mlp", (4, 16, 1), 0, []),  # one hidden layer: input and readout only
    # embed_mlp: the embedding is registered after the layers; parameter order would make
    # it the "readout" and put the real readout on Muon
    ("embed_mlp", (8, 32, 11), 11, ["layers.0.weight"]),
    ("embed_mlp", (8, 32, 32, 11), 11, ["layers.0.weight", "layers.1.weight"]),
    # onehot_mlp: its first layer is an embedding table of one-hot tokens, not hidden
    ("onehot_mlp", (22, 32, 11), 11, []),
    ("onehot_mlp", (22, 32, 32, 11), 11, ["layers.1.weight"]),
])
def test_each_model_names_the_matrices_muon_trains(kind, widths, vocab, hidden):
    from featurelab.engine.config import ModelConfig
    from featurelab.engine.models import build_model

    model = build_model(ModelConfig(kind=kind, widths=widths), vocab=vocab)
    assert model.hidden_matrices() == hidden
    bundle = build_optimizer(list(model.named_parameters()), OptimizerConfig(name="muon"),
                             model.hidden_matrices())
    names = {id(p): n for n, p in model.named_parameters()}
    on_muon = [names[id(p)] for p in bundle.optimizer.muon.param_groups[0]["params"]] \
        if bundle.optimizer.muon else []
    on_adamw = {names[id(p)] for p in bundle.optimizer.adamw.param_groups[0]["params"]}
    assert on_muon == hidden
    readout = f"layers.{len(model.layers) - 1}.weight"
    assert readout in on_adamw and "layers.0.bias" in on_adamw
    if kind == "embed_mlp":
        assert "embed.weight" in on_adamw
    if kind == "onehot_mlp":
        assert "layers.0.weight" in on_adamw


def test_muons_adamw_group_has_its_own_learning_rate_on_the_same_schedule():
    from featurelab.engine.config import ModelConfig
    from featurelab.engine.models import build_model

    model = build_model(ModelConfig(kind="embed_mlp", widths=(8, 32, 11)), vocab=11)
    cfg = OptimizerConfig(name="muon", lr=0.02, adamw_lr=0.001, steps=100, warmup_steps=10,
                          schedule="cosine")
    bundle = build_optimizer(list(model.named_parameters()), cfg, model.hidden_matrices())
    for step in (0, 5, 50, 99):
        lr = bundle.set_step(step)
        assert bundle.optimizer.muon.param_groups[0]["lr"] == pytest.approx(lr)
        assert bundle.optimizer.adamw.param_groups[0]["lr"] == pytest.approx(lr * 0.05)
    same = build_optimizer(list(model.named_parameters()), OptimizerConfig(name="muon", lr=0.02),
                           model.hidden_matrices())
    assert same.optimizer.adamw.param_groups[0]["lr"] == 0.02  # 0: the same as lr
    assert "adamw_lr=0.001" in cfg.label
