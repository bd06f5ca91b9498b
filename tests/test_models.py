"""Tests for featurelab.engine.models and featurelab.engine.steps: hook points, capture, and the
hand-written fused MLP step against autograd."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from featurelab.engine.config import ACTIVATIONS as CONFIG_ACTIVATIONS
from featurelab.engine.config import ModelConfig
from featurelab.engine.models import ACTIVATIONS, MLP, EmbedMLP, build_model, point_label
from featurelab.engine.steps import AutogradStep, FusedMLPStep, choose_step
from featurelab.errors import ConfigError

WIDTHS = (5, 7, 6, 1)


def make_mlp(widths=WIDTHS, activation="relu", bias=True, seed=0, init_scale=1.0,
             dtype=torch.float64) -> MLP:
    torch.manual_seed(seed)
    cfg = ModelConfig(widths=widths, activation=activation, bias=bias, init_scale=init_scale)
    return build_model(cfg).to(dtype)


def all_points(model: MLP) -> frozenset[str]:
    return frozenset(model.hook_shapes(1))


# --- hook points and capture ---------------------------------------------------------------

def test_activation_tables_agree():
    assert set(ACTIVATIONS) == set(CONFIG_ACTIVATIONS)


def test_hook_shapes_names_and_shapes():
    model = make_mlp()
    assert model.n_hidden == 2
    shapes = model.hook_shapes(32)
    assert list(shapes) == ["layers.0.pre", "layers.0.post", "layers.1.pre", "layers.1.post"]
    assert shapes == {"layers.0.pre": (32, 7), "layers.0.post": (32, 7),
                      "layers.1.pre": (32, 6), "layers.1.post": (32, 6)}


def test_hook_shapes_without_hidden_layers():
    model = make_mlp(widths=(4, 3))
    assert model.n_hidden == 0
    assert model.hook_shapes(10) == {}


def test_layers_match_widths():
    model = make_mlp(bias=False)
    assert [(m.in_features, m.out_features) for m in model.layers] == [(5, 7), (7, 6), (6, 1)]
    assert all(m.bias is None for m in model.layers)
    assert len(list(make_mlp().parameters())) == 6


@pytest.mark.parametrize("capture", [
    frozenset(),
    frozenset({"layers.0.pre"}),
    frozenset({"layers.1.post"}),
    frozenset({"layers.0.post", "layers.1.pre"}),
    frozenset({"layers.0.pre", "layers.0.post", "layers.1.pre", "layers.1.post"}),
])
def test_forward_captures_exactly_the_requested_points(capture):
    model = make_mlp()
    x = torch.randn(9, 5, dtype=torch.float64)
    out, acts = model(x, capture)
    assert out.shape == (9, 1)
    assert set(acts) == set(capture)
    shapes = model.hook_shapes(9)
    for name, act in acts.items():
        assert act.shape == shapes[name]
        assert not act.requires_grad
    out_plain, acts_plain = model(x)
    assert acts_plain == {}
    torch.testing.assert_close(out, out_plain)


def test_captured_values_are_the_layer_activations():
    model = make_mlp(activation="tanh")
    x = torch.randn(9, 5, dtype=torch.float64)
    out, acts = model(x, all_points(model))
    l0, l1, l2 = model.layers
    z0 = l0(x)
    z1 = l1(torch.tanh(z0))
    torch.testing.assert_close(acts["layers.0.pre"], z0)
    torch.testing.assert_close(acts["layers.0.post"], torch.tanh(z0))
    torch.testing.assert_close(acts["layers.1.pre"], z1)
    torch.testing.assert_close(acts["layers.1.post"], torch.tanh(z1))
    torch.testing.assert_close(out, l2(torch.tanh(z1)))


@pytest.mark.parametrize(("point", "shape", "label"), [
    ("layers.1.pre", (500, 100), "Layer 1 pre (500 x 100)"),
    ("layers.0.post", (32, 7), "Layer 0 post (32 x 7)"),
    ("output", (8, 1), "output (8 x 1)"),
])
def test_point_label(point, shape, label):
    assert point_label(point, shape) == label


def test_init_scale_multiplies_parameters():
    base = make_mlp(seed=3)
    scaled = make_mlp(seed=3, init_scale=2.5)
    for p, q in zip(base.parameters(), scaled.parameters()):
        torch.testing.assert_close(q, 2.5 * p)


# --- EmbedMLP ------------------------------------------------------------------------------

def test_embed_mlp_on_tokens():
    p = 7
    torch.manual_seed(0)
    cfg = ModelConfig(kind="embed_mlp", widths=(4, 16, p))
    model = build_model(cfg, vocab=p)
    assert isinstance(model, EmbedMLP) and model.cfg is cfg
    assert model.embed.weight.shape == (p, 4)
    assert model.layers[0].in_features == 8  # two tokens, each embedded in 4 dims
    x = torch.tensor([[0, 1], [3, 6], [6, 6]])
    out, acts = model(x, frozenset({"layers.0.pre", "layers.0.post"}))
    assert out.shape == (3, p)
    assert model.hook_shapes(3) == {"layers.0.pre": (3, 16), "layers.0.post": (3, 16)}
    assert {k: tuple(v.shape) for k, v in acts.items()} == model.hook_shapes(3)
    feats = model.input_features(x)
    e = model.embed.weight
    torch.testing.assert_close(feats, torch.cat([e[x[:, 0]], e[x[:, 1]]], dim=1))
    torch.testing.assert_close(acts["layers.0.pre"], model.layers[0](feats).detach())


def test_embed_mlp_init_scale_scales_embedding():
    cfg = ModelConfig(kind="embed_mlp", widths=(4, 16, 7))
    torch.manual_seed(0)
    base = build_model(cfg, vocab=7)
    torch.manual_seed(0)
    scaled = build_model(ModelConfig(kind="embed_mlp", widths=(4, 16, 7), init_scale=3.0),
                         vocab=7)
    for (name, p), (_, q) in zip(base.named_parameters(), scaled.named_parameters()):
        torch.testing.assert_close(q, 3.0 * p, msg=name)


def test_embed_mlp_needs_a_vocabulary():
    with pytest.raises(ConfigError) as info:
        build_model(ModelConfig(kind="embed_mlp", widths=(4, 16, 7)))
    assert info.value.field == "model.kind"


# --- fused step against autograd -----------------------------------------------------------

@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_activation_grad_matches_autograd(name):
    act = ACTIVATIONS[name]
    z = torch.linspace(-3, 3, 61, dtype=torch.float64).requires_grad_()
    a = act.fn(z)
    (expected,) = torch.autograd.grad(a.sum(), z)
    g = torch.ones_like(z)
    got = act.backward(g, z.detach(), a.detach())
    torch.testing.assert_close(got.to(z.dtype), expected)


def run_step(step_cls, model, x, y, capture):
    step = step_cls(model, "mse", capture)
    out = step(x, y, len(x))
    grads = {name: p.grad.clone() for name, p in model.named_parameters()}
    return out, grads


@pytest.mark.parametrize("widths", [WIDTHS, (5, 7, 3), (4, 3), (3, 8, 8, 8, 2)],
                         ids=lambda w: "-".join(map(str, w)))
@pytest.mark.parametrize("bias", [True, False], ids=["bias", "nobias"])
@pytest.mark.parametrize("activation", list(ACTIVATIONS))
def test_fused_step_matches_autograd(activation, bias, widths):
    model = make_mlp(widths, activation, bias)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(11, widths[0], generator=gen, dtype=torch.float64)
    y = torch.randn(11, widths[-1], generator=gen, dtype=torch.float64)
    capture = all_points(model)

    fused, fused_grads = run_step(FusedMLPStep, model, x, y, capture)
    auto, auto_grads = run_step(AutogradStep, model, x, y, capture)

    torch.testing.assert_close(fused.loss, auto.loss)
    torch.testing.assert_close(fused.loss, F.mse_loss(model(x)[0], y).detach())
    assert fused.loss.shape == () and not fused.loss.requires_grad
    torch.testing.assert_close(fused.output, auto.output)
    assert set(fused_grads) == set(auto_grads) == {n for n, _ in model.named_parameters()}
    for name in auto_grads:
        assert fused_grads[name].shape == auto_grads[name].shape
        torch.testing.assert_close(fused_grads[name], auto_grads[name], msg=name)
    assert set(fused.acts) == set(auto.acts) == capture
    for name in capture:
        torch.testing.assert_close(fused.acts[name], auto.acts[name], msg=name)
        assert not fused.acts[name].requires_grad


@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_fused_step_matches_autograd_float32(activation):
    model = make_mlp(activation=activation, dtype=torch.float32)
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(64, 5, generator=gen)
    y = torch.randn(64, 1, generator=gen)
    fused, fused_grads = run_step(FusedMLPStep, model, x, y, frozenset())
    auto, auto_grads = run_step(AutogradStep, model, x, y, frozenset())
    assert fused.acts == {} and auto.acts == {}
    torch.testing.assert_close(fused.loss, auto.loss)
    for name in auto_grads:
        torch.testing.assert_close(fused_grads[name], auto_grads[name], msg=name)


@pytest.mark.parametrize("step_cls", [FusedMLPStep, AutogradStep])
def test_step_overwrites_gradients(step_cls):
    model = make_mlp()
    x = torch.randn(8, 5, dtype=torch.float64)
    y = torch.randn(8, 1, dtype=torch.float64)
    step = step_cls(model, "mse", frozenset())
    step(x, y, len(x))
    first = [p.grad.clone() for p in model.parameters()]
    step(x, y, len(x))  # a second call must not accumulate into .grad
    for g, p in zip(first, model.parameters()):
        torch.testing.assert_close(p.grad, g)


def test_fused_step_captures_only_requested_points():
    model = make_mlp()
    x = torch.randn(8, 5, dtype=torch.float64)
    y = torch.randn(8, 1, dtype=torch.float64)
    out = FusedMLPStep(model, "mse", frozenset({"layers.1.post"}))(x, y, len(x))
    assert set(out.acts) == {"layers.1.post"}
    assert out.acts["layers.1.post"].shape == (8, 6)


def test_autograd_step_cross_entropy_on_embed_mlp():
    p = 7
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="embed_mlp", widths=(4, 16, p)), vocab=p)
    x = torch.tensor([[0, 1], [3, 6], [6, 6], [2, 5]])
    y = (x[:, 0] + x[:, 1]) % p
    out = AutogradStep(model, "cross_entropy", frozenset({"layers.0.post"}))(x, y, len(x))
    torch.testing.assert_close(out.loss, F.cross_entropy(model(x)[0], y).detach())
    assert out.output.shape == (4, p)
    assert set(out.acts) == {"layers.0.post"}
    assert all(p.grad is not None for p in model.parameters())
    assert model.embed.weight.grad.abs().sum() > 0


# --- choose_step ---------------------------------------------------------------------------

def test_choose_step():
    mlp = make_mlp()
    embed = build_model(ModelConfig(kind="embed_mlp", widths=(4, 16, 7)), vocab=7)
    cases = [
        (mlp, "mse", True, FusedMLPStep, "fused_mlp"),
        (mlp, "mse", False, AutogradStep, "autograd"),
        (mlp, "cross_entropy", True, AutogradStep, "autograd"),
        (embed, "cross_entropy", True, AutogradStep, "autograd"),
        (embed, "mse", True, AutogradStep, "autograd"),  # EmbedMLP is an MLP subclass
    ]
    for model, loss, fused, cls, name in cases:
        step = choose_step(model, loss, frozenset(), fused=fused)
        assert type(step) is cls, (type(model).__name__, loss, fused)
        assert step.name == name


@pytest.mark.parametrize("step_cls", [FusedMLPStep, AutogradStep])
def test_rows_past_n_train_are_evaluated_not_trained(step_cls):
    model = make_mlp()
    x = torch.randn(12, 5, dtype=torch.float64)
    y = torch.randn(8, 1, dtype=torch.float64)
    both = step_cls(model, "mse", frozenset({"layers.0.pre"}))(x, y, 8)
    grads = [p.grad.clone() for p in model.parameters()]
    alone = step_cls(model, "mse", frozenset({"layers.0.pre"}))(x[:8], y, 8)
    torch.testing.assert_close(both.loss, alone.loss)
    for g, p in zip(grads, model.parameters()):
        torch.testing.assert_close(g, p.grad)
    assert both.acts["layers.0.pre"].shape[0] == 8 and alone.eval_output is None
    torch.testing.assert_close(both.eval_output, model(x[8:])[0].detach())
