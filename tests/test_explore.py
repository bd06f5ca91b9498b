"""Explorations: proposals trained and judged against the best so far, the block_repeat
rail, budgets, trajectory metrics (live in a sidecar JSON), the TSV, replay."""

import json
from contextlib import nullcontext

import pytest
from conftest import TINY_LAB

import featurelab as fl
from featurelab.trajectory import BudgetSpent, RepeatBlocked

# Quick to train: no snapshots, few steps, only the losses.
FAST = {**TINY_LAB, "optimizer": {"lr": 1e-2, "steps": 20},
        "observables": ["train_loss", "test_loss"], "snapshots": {"schedule": []}}
# The analysed overnight loop's menu: 13 knobs, each with a few values.
MENU_13 = {
    "optimizer.lr": [0.003, 0.03, 0.1], "optimizer.weight_decay": [0.0001, 0.001],
    "optimizer.momentum": [0.5, 0.8], "optimizer.beta2": [0.99, 0.9],
    "optimizer.warmup_steps": [2, 5], "optimizer.schedule": ["cosine"],
    "optimizer.batch_size": [8, 16], "optimizer.name": ["sgd", "adamw"],
    "model.activation": ["tanh", "gelu"], "model.init_scale": [0.5, 2.0],
    "model.widths": [[4, 16, 16, 1], [4, 4, 4, 1]], "data.n_train": [24, 48],
    "seed": [1, 2, 3],
}


def lab_with_base(tmp_path, name="explore"):
    lab = fl.Lab(name, root=tmp_path)
    lab.run(lab.create_experiment(**FAST).id)
    return lab


def test_a_random_exploration_covers_its_menu_without_repeats_and_writes_metrics_live(
        tmp_path):
    lab = lab_with_base(tmp_path)
    menu = {"seed": list(range(1, 121)), "optimizer.lr": [round(0.001 * k, 4)
                                                           for k in range(1, 81)]}
    explorer = lab.explore("exp_0", menu, metric="test_loss", goal="min")
    sidecar = tmp_path / "explore.s0.explore_0.json"
    seen = []
    random = fl.actions.explore.random_proposer(seed=7)

    def proposer(ex):  # reads the sidecar mid-loop, as a monitor would
        if sidecar.exists():
            seen.append(json.loads(sidecar.read_text())["metrics"]["iterations"])
        return random(ex)

    metrics = explorer.run(proposer, iterations=200)
    assert metrics["iterations"] == 200 and seen == list(range(1, 200))
    assert metrics["repeats"] == 0 and metrics["knob_coverage"] == 1.0
    assert metrics["pair_coverage"] == 1.0  # every one of the 200 pairs, once
    assert metrics["keeps"] >= 1 and metrics["best"]["experiment"] != "exp_0"
    assert json.loads(sidecar.read_text())["metrics"] == metrics
    rows = explorer.to_tsv(tmp_path / "results.tsv").read_text().splitlines()
    assert rows[0] == "iteration\tchanges\ttest_loss\tdecision\treason" and len(rows) == 201


def analysed_loop():
    """The analysed loop's pattern: 50 proposals touching 6 of 13 knobs, 14 new
    (knob, value) pairs and 36 repeats of them."""
    new = [("optimizer.lr", 0.003), ("optimizer.lr", 0.03), ("optimizer.lr", 0.1),
           ("optimizer.weight_decay", 0.0001), ("optimizer.weight_decay", 0.001),
           ("model.activation", "tanh"), ("model.activation", "gelu"),
           ("model.init_scale", 0.5), ("model.init_scale", 2.0), ("seed", 1), ("seed", 2),
           ("seed", 3), ("optimizer.momentum", 0.5), ("optimizer.momentum", 0.8)]
    plan = list(new)
    for i in range(36):  # then mostly what the last few iterations saw
        plan.append(new[(i * 5) % len(new)])
    return [({k: v}, "scripted") for k, v in plan]


@pytest.mark.parametrize("rail", [False, True])
def test_the_analysed_loop_gives_its_metrics_and_the_rail_refuses_each_repeat(tmp_path, rail):
    lab = lab_with_base(tmp_path)
    explorer = lab.explore("exp_0", MENU_13, rail=rail)
    plan = iter(analysed_loop())
    metrics = explorer.run(lambda ex: next(plan, None), iterations=50)
    sidecar = json.loads((tmp_path / "explore.s0.explore_0.json").read_text())
    assert sidecar["metrics"] == metrics and len(sidecar["refused"]) == metrics["refused"]
    if not rail:
        assert metrics["iterations"] == 50 and metrics["repeats"] == 36
        assert round(metrics["knob_coverage"], 2) == 0.46  # 6 of 13
        assert metrics["repeat_rate"] == 0.72
        assert metrics["mean_repeat_lag"] > 0
    else:
        assert metrics["iterations"] == 14 and metrics["repeats"] == 0
        assert len(explorer.blocked) == 36 and metrics["refused"] == 36
        assert metrics["attempted_repeat_rate"] == 0.72  # what the rail kept out
        assert all("was already evaluated in iteration" in b for b in explorer.blocked)
    with pytest.raises(RepeatBlocked, match=r"optimizer.lr=0.003 was already evaluated in "
                                            r"iteration 1") if rail else nullcontext():
        explorer.propose({"optimizer.lr": 0.003})
    kept = explorer.propose({"optimizer.lr": 0.003}, reason="again", replicate=True)
    assert kept["repeat_of"] is not None and kept["decision"] in ("keep", "discard")


def test_budgets_stop_the_loop_and_the_log_replays_with_the_same_decisions(tmp_path):
    lab = lab_with_base(tmp_path)
    explorer = lab.explore("exp_0", {"optimizer.lr": [0.003, 0.03, 0.1, 0.3]},
                           budget={"iterations": 3})
    metrics = explorer.run("grid", iterations=10)
    assert metrics["iterations"] == 3
    with pytest.raises(BudgetSpent, match="iterations: 3 of 3 used"):
        explorer.propose({"optimizer.lr": 0.3})
    types = [e.type for e in lab.log]
    assert types[:3] == ["create_experiment", "run", "explore"]
    assert types[3:6] == ["propose", "run", "judge"]
    report = fl.replay(lab.log)
    assert report.ok and report.verified, str(report)
    assert any("explore_0 iteration 3" in c for c in report.compared)
    lab.store.close()
    again = fl.Lab("explore", root=tmp_path)  # restored from the log, nothing retrained
    assert again.explorer("explore_0").metrics() == metrics
    sentences = again.log.sentences()
    assert any(s.startswith("Judged iteration 1 of explore_0: ") for s in sentences)


def test_bad_explorations_and_proposals_are_named(tmp_path):
    lab = lab_with_base(tmp_path)
    with pytest.raises(fl.ConfigError, match="menu: got 'optimizer.speed'"):
        lab.explore("exp_0", {"optimizer.speed": [1]})
    with pytest.raises(fl.ConfigError, match="optimizer.lr"):
        lab.explore("exp_0", {"optimizer.lr": [-1.0]})
    with pytest.raises(fl.ConfigError, match="metric: got 'test_accuracy'"):
        lab.explore("exp_0", {"seed": [1]}, metric="test_accuracy")
    with pytest.raises(fl.ConfigError, match="goal: got 'up'"):
        lab.explore("exp_0", {"seed": [1]}, goal="up")
    explorer = lab.explore("exp_0", {"seed": [1, 2]})
    with pytest.raises(fl.ConfigError, match="changes: got 'optimizer.lr'"):
        explorer.propose({"optimizer.lr": 0.1})
    assert [e.type for e in lab.log][-1] == "explore"  # nothing logged for the refusals


def test_the_command_runs_a_proposer_and_prints_the_metrics(tmp_path):
    import subprocess
    import sys

    lab_with_base(tmp_path, "cli").store.close()
    done = subprocess.run(
        [sys.executable, "-m", "featurelab.cli", "explore", "--lab", "cli", "--root",
         str(tmp_path), "--base", "exp_0", "--menu", '{"seed": [1, 2, 3, 4]}',
         "--iterations", "6", "--proposer", "grid", "--tsv", str(tmp_path / "r.tsv")],
        capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads(done.stdout)
    assert metrics["iterations"] == 4 and metrics["pair_coverage"] == 1.0  # then nothing left
    assert len((tmp_path / "r.tsv").read_text().splitlines()) == 5
    bad = subprocess.run([sys.executable, "-m", "featurelab.cli", "explore", "--lab", "cli",
                          "--root", str(tmp_path), "--exploration", "explore_9"],
                         capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "explore_9" in bad.stderr


def test_the_blog_draft_has_the_exploration_and_its_metrics(tmp_path):
    lab = lab_with_base(tmp_path)
    explorer = lab.explore("exp_0", {"optimizer.lr": [0.003, 0.03, 0.1]}, name="lr")
    explorer.run("grid", iterations=3)
    post = lab.export_blog(tmp_path / "post.md").read_text()
    assert "## Exploration 0, 'lr'" in post
    m = explorer.metrics()
    assert "| knob coverage | 100% (1 of 1 knobs) |" in post
    plateau = m["longest_plateau"]
    assert f"| longest plateau | {plateau} iteration{'' if plateau == 1 else 's'} |" in post
    assert post.count("| grid: optimizer.lr=") == 3
    assert "Started exploring from exp_0" in post and "Judged iteration 3 of explore_0" in post


# -- from an adversarial review ----------------------------------------------------------


def test_an_iteration_is_judged_once(tmp_path):
    lab = lab_with_base(tmp_path)
    explorer = lab.explore("exp_0", {"optimizer.lr": [0.003, 0.03]})
    explorer.propose({"optimizer.lr": 0.03})
    with pytest.raises(fl.FeaturelabError, match="iteration 1 is judged already"):
        lab.judge("explore_0", 1)


def test_the_cells_of_an_exploration_rebuild_it_with_the_same_decisions(tmp_path):
    lab = lab_with_base(tmp_path)
    explorer = lab.explore("exp_0", {"optimizer.lr": [0.003, 0.03, 0.1]})
    explorer.run("grid", iterations=3)
    sources = [cell.source for cell in lab.cells()]
    assert sum("lab.propose(" in s for s in sources) == 3
    assert not any(s.startswith(("lab.judge(", "lab.run('exp_1')")) for s in sources)
    again = fl.Lab(":memory:")
    for source in sources:
        exec(source, {"lab": again})  # the cells, as Restart & Run All runs them
    decisions = [it.decision for it in again.explorations["explore_0"].iterations]
    assert decisions == [it.decision for it in explorer.exploration.iterations]
    assert [e.type for e in again.log].count("judge") == 3


def test_a_base_without_a_run_is_refused_and_no_op_pairs_are_not_proposed(tmp_path):
    lab = fl.Lab("bases", root=tmp_path)
    lab.create_experiment(**FAST)
    with pytest.raises(fl.FeaturelabError, match=r"lab.run\('exp_0'\) first"):
        lab.explore("exp_0", {"seed": [1]})
    lab.run("exp_0")
    explorer = lab.explore("exp_0", {"optimizer.lr": [0.03, 1], "seed": [0, 1, 2]})
    assert explorer.exploration.menu["optimizer.lr"] == [0.03, 1.0]  # as the config has it
    metrics = explorer.run("grid", iterations=10)
    assert metrics["iterations"] == 4 and not explorer.blocked  # seed 0 is the base's
    assert metrics["pair_coverage"] == 1.0
    with pytest.raises(RepeatBlocked, match=r"optimizer.lr=1.0 was already evaluated"):
        explorer.propose({"optimizer.lr": 1})  # an int is the same pair as its float


def test_a_replay_path_cannot_skip_the_budget_and_parts_of_it_are_not_deleted(tmp_path):
    lab = lab_with_base(tmp_path)
    lab.explore("exp_0", {"seed": [1, 2, 3]}, budget={"iterations": 1})
    lab.propose("explore_0", {"seed": 1})
    with pytest.raises(BudgetSpent):
        lab.propose("explore_0", {"seed": 2}, train=False)
    for experiment in ("exp_0", "exp_1"):
        with pytest.raises(fl.FeaturelabError, match="part of explore_0"):
            lab.delete(experiment)


def test_an_unjudged_iteration_is_judged_before_the_loop_goes_on(tmp_path):
    lab = lab_with_base(tmp_path)
    explorer = lab.explore("exp_0", {"seed": [1, 2, 3]})
    lab.propose("explore_0", {"seed": 1}, train=False)  # a kernel stopped right here
    metrics = explorer.run("grid", iterations=2)
    assert [it.decision is not None for it in explorer.exploration.iterations] == [True] * 3
    assert metrics["iterations"] == 3


def test_the_explore_schema_types_goal_and_budget_as_apply_checks_them(tmp_path):
    import jsonschema

    variant = next(v for v in fl.action_schema()["oneOf"] if v["title"] == "explore")
    params = variant["properties"]["params"]
    good = {"base": "exp_0", "menu": {"seed": [1]}, "goal": "max",
            "budget": {"iterations": 5, "seconds": 60}}
    jsonschema.validate(good, params)
    lab = lab_with_base(tmp_path)
    for bad in ({"goal": "up"}, {"budget": {"days": 1}}, {"budget": {"iterations": 0}}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({**good, **bad}, params)
        with pytest.raises(fl.ConfigError):  # and apply refuses the same
            lab.apply({"type": "explore", "params": {**good, **bad}}, actor="agent")
