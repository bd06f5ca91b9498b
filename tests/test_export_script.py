"""The standalone script: it reruns the session in a fresh interpreter and prints the
same fit tables."""

import ast
import subprocess
import sys

from conftest import TINY_LAB as TINY

import featurelab as fl


def expected_output(lab) -> str:
    out = []
    for fit in lab.fits.values():
        layer = f" ({fit.layer})" if fit.layer else ""
        out += [f"{fit.id}: {fit.metric}{layer} of {fit.experiment}", str(fit.table), ""]
    return "\n".join(out) + "\n"


def run_script(path, cwd):
    done = subprocess.run([sys.executable, str(path)], capture_output=True, text=True,
                          cwd=cwd, timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_reference_script_prints_the_same_fit_table_in_a_fresh_interpreter(
        reference_lab, tmp_path):
    path = reference_lab.export_script(tmp_path / "session.py")
    source = path.read_text()
    assert source.count("lab.run(") == 2 and "@lab.statistic('nonlinear_rate'" in source
    assert "# Zoomed the nonlinear_rate chart to steps 0-100." in source
    printed = run_script(path, tmp_path)
    assert printed == expected_output(reference_lab)
    assert printed.splitlines()[3].startswith("Sigmoid ")
    assert not (tmp_path / ".featurelab").exists()  # a fresh in-memory lab, nothing written


def test_every_string_stays_a_string_and_side_effects_stay_comments(tmp_path):
    lab = fl.Lab(":memory:")
    evil = "x'); import os; os.system('echo hacked') #\n\"\"\"\nprint('hacked')"
    lab.create_experiment(**TINY, name=evil)
    lab.note(evil)
    lab.run("exp_0")
    lab.export_log(tmp_path / "log.jsonl")
    lab.fit("exp_0", "train_loss", x_range=(0, 60), families=["exponential", "linear"])
    source = lab.export_script(tmp_path / "s.py").read_text()
    tree = ast.parse(source)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
             and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)]
    assert [c.func.attr for c in calls if c.func.value.id == "lab"] == \
        ["create_experiment", "note", "run", "fit"]  # export_log is a comment
    assert "# lab.export_log(" in source and "(not rerun: it writes a file)" in source
    (tmp_path / "log.jsonl").unlink()
    printed = run_script(tmp_path / "s.py", tmp_path)
    assert "hacked" not in printed
    assert printed == expected_output(lab)
    assert not (tmp_path / "log.jsonl").exists()
