"""`featurelab replay` on logs it cannot verify (issue 13): a bad log exits 2 naming the
file and line, without a traceback; a log with nothing to compare is never "verified"
(exit 3); 0 only when results were compared and match, 1 when they differ."""

from __future__ import annotations

import json

import pytest
from conftest import TINY_LAB as TINY

import featurelab as fl
from featurelab.cli import main
from featurelab.errors import FeaturelabError


@pytest.fixture(scope="module")
def entries():
    """A small session's log: create (line 1), run (2), fit (3), note (4)."""
    lab = fl.Lab(":memory:")
    exp = lab.create_experiment(**TINY)
    lab.run(exp.id)
    lab.fit(exp.id, "train_loss")
    lab.note("done")
    return [e.to_dict() for e in lab.log]


def _write(tmp_path, entries, name="log.jsonl"):
    path = tmp_path / name
    path.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return path


def _replay(capsys, path):
    code = main(["replay", str(path)])  # returns: an exception here is the traceback
    out, err = capsys.readouterr()
    return code, out, err


def _changed(entries, line, change):
    copy = json.loads(json.dumps(entries))
    change(copy[line - 1])
    return copy


BAD = {
    "not JSON": (3, lambda e: None, "not a log entry (not JSON"),
    "not an object": (2, lambda e: None, "not a log entry: a JSON object is expected"),
    "unknown action": (4, lambda e: e.update(type="frobnicate"),
                       "unknown action type 'frobnicate'"),
    "invalid params": (4, lambda e: e["params"].update(text=5), "action 'note': text"),
    "unknown param": (4, lambda e: e["params"].update(colour="red"), "colour"),
    "bad actor": (4, lambda e: e.update(actor="robot"), "actor 'robot'"),
    "result not an object": (2, lambda e: e.update(result="done"), "'result' is \"done\""),
    "series not an object": (2, lambda e: e["result"].update(series=[1]),
                             "(run): cannot be replayed"),
    "fit result without rows": (3, lambda e: e["result"]["table"].pop("rows"),
                                "(fit): cannot be replayed"),
    "unknown experiment": (2, lambda e: e["params"].update(experiment="exp_9"),
                           "(run): experiment: got 'exp_9'"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_log_exits_2_naming_the_file_and_line(entries, tmp_path, capsys, case):
    line, change, says = BAD[case]
    path = _write(tmp_path, _changed(entries, line, change))
    if case.startswith("not "):  # what no json.dumps writes
        lines = path.read_text().splitlines()
        lines[line - 1] = "{not json" if case == "not JSON" else "[1, 2]"
        path.write_text("\n".join(lines) + "\n")
    code, out, err = _replay(capsys, path)
    assert code == 2, out + err
    assert f"{path}, line {line}" in err and says in err, err
    assert "Traceback" not in err


def test_an_action_that_fails_on_replay_names_its_line(entries, tmp_path, capsys):
    path = _write(tmp_path, [entries[0], entries[2], entries[1]])  # the fit before its run
    code, _, err = _replay(capsys, path)
    assert code == 2
    assert f"{path}, line 2 (fit): exp_0 has not been run" in err


def test_a_file_that_is_not_text_exits_2(tmp_path, capsys):
    path = tmp_path / "binary.jsonl"
    path.write_bytes(b"\xff\xfe\x00\x81garbage\n")
    code, _, err = _replay(capsys, path)
    assert code == 2 and f"{path}: not a log: not UTF-8 text" in err


@pytest.mark.parametrize("text", ["", "\n  \n"])
def test_an_empty_log_is_not_verified(tmp_path, capsys, text):
    path = tmp_path / "empty.jsonl"
    path.write_text(text)
    code, out, _ = _replay(capsys, path)
    assert code == 3
    assert "the log has no actions" in out and "verified" in out


def test_a_log_stripped_of_its_results_is_not_verified(entries, tmp_path, capsys):
    path = _write(tmp_path, [{**e, "result": None} for e in entries])
    code, out, _ = _replay(capsys, path)
    assert code == 3
    assert "0 results match" in out and "nothing verified" in out


def test_a_log_with_some_results_stripped_is_not_verified(entries, tmp_path, capsys):
    path = _write(tmp_path, _changed(entries, 2, lambda e: e.pop("result")))
    code, out, _ = _replay(capsys, path)
    assert code == 3  # the fit matched, but the run's series were never compared
    assert "1 results match" in out and f"not verified: {path}, line 2: run records" in out


def test_a_log_without_results_to_compare_is_not_verified(entries, tmp_path, capsys):
    code, out, _ = _replay(capsys, _write(tmp_path, [entries[0], entries[3]]))
    assert code == 3 and "nothing verified" in out


def test_verified_is_0_and_differs_is_1(entries, tmp_path, capsys):
    code, out, _ = _replay(capsys, _write(tmp_path, entries))
    assert code == 0 and "0 differ" in out

    def tamper(e):
        e["result"]["table"]["rows"][0]["r2"] = 0.5

    path = _write(tmp_path, _changed(entries, 3, tamper), "tampered.jsonl")
    code, out, _ = _replay(capsys, path)
    assert code == 1 and f"{path}, line 3: fit_0 of exp_0 train_loss" in out


def test_the_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["replay", "--help"])
    out = capsys.readouterr().out
    for code in ("0  verified", "1  some recorded result differs", "2  the log cannot",
                 "3  nothing or not all was verified"):
        assert code in out, out


def test_the_api_says_what_it_could_not_verify(entries, tmp_path):
    assert not fl.replay([]).verified
    report = fl.replay(_write(tmp_path, [{**e, "result": None} for e in entries]))
    assert report.ok and not report.verified  # nothing differs, and nothing was compared
    path = _write(tmp_path, _changed(entries, 4, lambda e: e.update(type="frobnicate")))
    with pytest.raises(FeaturelabError, match=f"{path}, line 4: unknown action type"):
        fl.replay(path)


def test_no_verify_exits_0_for_a_log_that_replays_but_3_for_an_empty_one(
        entries, tmp_path, capsys):
    stripped = _write(tmp_path, [{**e, "result": None} for e in entries])
    assert main(["replay", "--no-verify", str(stripped)]) == 0
    assert "not verified: replayed without comparing" in capsys.readouterr().out
    (tmp_path / "empty.jsonl").write_text("")
    assert main(["replay", "--no-verify", str(tmp_path / "empty.jsonl")]) == 3


def test_a_run_logged_while_still_running_is_not_verified(entries, tmp_path, capsys):
    def running(e):
        e["result"] = {"run": e["result"]["run"], "status": "running"}

    path = _write(tmp_path, _changed(entries, 2, running))
    code, out, _ = _replay(capsys, path)
    assert code == 3 and f"{path}, line 2: run was still running" in out
