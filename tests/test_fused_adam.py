import pytest
import torch

from featurelab.engine.fused_adam import FusedAdam


@pytest.mark.parametrize("decoupled", [False, True])
@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_fused_adam_is_bitwise_torch_optims_fused_adam(decoupled, weight_decay):
    torch.manual_seed(0)
    x, y = torch.randn(64, 5), torch.randn(64, 1)
    models = []
    for _ in range(2):
        torch.manual_seed(1)
        models.append(torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(),
                                          torch.nn.Linear(16, 1)))
    cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    reference = cls(models[0].parameters(), lr=1e-2, betas=(0.9, 0.99),
                    weight_decay=weight_decay, fused=True)
    ours = FusedAdam(list(models[1].parameters()), lr=1e-2, betas=(0.9, 0.99),
                     weight_decay=weight_decay, decoupled=decoupled)
    for step in range(50):
        for model, opt in ((models[0], reference), (models[1], ours)):
            opt.zero_grad()
            torch.nn.functional.mse_loss(model(x), y).backward()
            if step == 25:  # a schedule changes lr between steps
                opt.param_groups[0]["lr"] = 3e-3
            opt.step()
    for a, b in zip(models[0].parameters(), models[1].parameters()):
        assert torch.equal(a, b)


def test_a_missing_gradient_is_named():
    p = torch.nn.Parameter(torch.ones(3))
    with pytest.raises(RuntimeError, match=r"parameters \[0\] have no gradient"):
        FusedAdam([p], lr=0.1, betas=(0.9, 0.999)).step()


def test_state_round_trips():
    p = torch.nn.Parameter(torch.ones(3))
    opt = FusedAdam([p], lr=0.1, betas=(0.9, 0.999))
    p.grad = torch.ones(3)
    opt.step()
    clone = FusedAdam([torch.nn.Parameter(torch.ones(3))], lr=0.5, betas=(0.9, 0.999))
    clone.load_state_dict(opt.state_dict())
    assert clone.step_count.item() == 1 and clone.param_groups[0]["lr"] == 0.1
    assert torch.equal(clone.exp_avgs[0], opt.exp_avgs[0])
