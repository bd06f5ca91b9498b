import itertools
import linecache
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

from featurelab import ExperimentConfig
from featurelab.signatures import SECRET_ENV

# The tests sign with a secret of their own (inherited by the workers, kernels and
# servers they start), never the user's: a test that plays "another user" swaps it.
os.environ[SECRET_ENV] = str(Path(tempfile.mkdtemp(prefix="featurelab-secret-")) / "secret")


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


# A lab experiment that trains in a fraction of a second, with snapshots every 10 steps.
TINY_LAB = {
    "model": {"widths": [4, 8, 8, 1]},
    "data": {"dim": 4, "freq": 2.0, "n_train": 32, "n_test": 16},
    "optimizer": {"lr": 1e-2, "steps": 120},
    "observables": ["train_loss", "test_loss", "weight_l2_norm", "hidden_activations",
                    "active_rate"],
    "snapshots": {"schedule": [[0, 10]]},
}


def compute_nonlinear_rate(tensor, dim, keepdim=False):
    t = tensor.float()
    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)


REFERENCE_SOURCE = '''def compute_nonlinear_rate(tensor, dim, keepdim=False):
    t = tensor.float()
    return ((t > 0) * (t < 1)).float().mean(dim=dim, keepdim=keepdim)
'''


@pytest.fixture(scope="session")
def reference_lab(tmp_path_factory):
    """The reference session of DESIGN.md, through the public API (two 2000-step runs)."""
    import featurelab as fl

    lab = fl.Lab("feature-learning-1", root=tmp_path_factory.mktemp("labs"))
    lab.create_experiment(
        model={"kind": "mlp", "widths": [10, 100, 100, 1], "activation": "relu"},
        data={"task": "sin2", "dim": 10, "freq": 10, "n_train": 500, "n_test": 200},
        optimizer={"name": "adam", "lr": 1e-3, "steps": 2000},
        loss="mse",
        observables=["train_loss", "test_loss", "weight_l2_norm", "hidden_activations"],
        seed=0,
    )
    lab.select("exp_0")
    lab.run("exp_0")
    lab.view_results(["exp_0"])
    lab.open_chart("hidden_activations")
    lab.enlarge_chart("hidden_activations")
    lab.choose_layer("hidden_activations", "layers.1.pre")
    lab.choose_method("hidden_activations", "neuron_stats")
    lab.add_neuron_stat("active_rate", layer="layers.1.pre")
    lab.define_statistic("nonlinear_rate", source=REFERENCE_SOURCE, on="active_rate")
    lab.create_experiment(based_on="exp_0", observables_add=["nonlinear_rate"])
    lab.select("exp_0", "exp_1")
    lab.run("exp_1")
    lab.view_results(["exp_1"])
    lab.open_chart("nonlinear_rate")
    lab.choose_layer("nonlinear_rate", "layers.1.pre")
    lab.zoom("nonlinear_rate", x_range=(0, 100))
    lab.fit("exp_1", "nonlinear_rate", layer="layers.1.pre", x_range=(0, 100))
    lab.show_fits("nonlinear_rate", visible=False)
    return lab


_cell_numbers = itertools.count()


def exec_cell(code: str, namespace: dict[str, Any]) -> None:
    """Runs code as IPython runs a cell: its source is in linecache under a unique name,
    so inspect.getsource works on the functions it defines (the decorator form of
    define_statistic needs it)."""
    filename = f"<cell-{next(_cell_numbers)}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)
    exec(compile(code, filename, "exec"), namespace)


def kernel_series(config, threads: int = 1) -> dict:
    """The series of a config trained here at `threads` (the workers' one thread): what a
    sweep member trained elsewhere must equal bitwise."""
    import torch

    from featurelab import Trainer
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        trainer = Trainer(config)
        trainer.run()
        return trainer.result().arrays
    finally:
        torch.set_num_threads(before)
