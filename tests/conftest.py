import pytest

from featurelab import ExperimentConfig


@pytest.fixture
def tiny():
    """A small regression config that trains in well under a second."""

    def make(**changes):
        base = ExperimentConfig(
            model={"widths": [4, 16, 12, 1]},
            data={"dim": 4, "freq": 2.0, "n_train": 64, "n_test": 32},
            optimizer={"lr": 1e-2, "steps": 60},
            observables=["train_loss", "test_loss", "weight_l2_norm", "hidden_activations",
                         "active_rate", "nonlinear_fraction"],
            snapshots={"schedule": [[0, 1], [10, 5]]},
        )
        return base.replace(**changes)

    return make
