"""Every option of every command (found by walking the click tree), fed values it must refuse.

Each case must end with exit code 2, exactly one line on stderr that starts with
``nncompare: error:``, no traceback, and nothing written. An option this file knows no
invalid value for fails :func:`test_every_option_has_invalid_values`, so a new option
cannot arrive untested. ``gate`` has its own tests (tests/test_gate.py).
"""

from __future__ import annotations

import json
import os

import click
import pytest

from nncompare.cli import cli, main

SKIPPED_COMMANDS = ("gate",)
BIG = "9" * 25
#: Outputs no record or report can be written to: a FIFO, a device, a name longer than the file system allows.
UNWRITABLE = ["{tmp}/fifo", "/dev/null", "{tmp}/" + "n" * 300]

#: Valid arguments that make each command quick; the bad value is appended after them.
BASE = {
    "run": ["--dataset", "digits", "--epochs", "1", "--hidden", "8", "-q"],
    "sweep": ["--out", "{tmp}/out/s.jsonl", "--dataset", "digits", "--epochs", "1", "--hidden", "8"],
    "paper": [
        "--out",
        "{tmp}/out/paper",
        "--dataset",
        "digits",
        "--engines",
        "local",
        "--max-epochs",
        "1",
        "--hidden",
        "8",
    ],
    "data fetch": ["--split", "test"],
    "data verify": [],
    "data info": [],
    "report": ["{records}"],
    "plot": ["{records}"],
    "explain": ["{records}"],
}

#: Invalid values by option name, where the type alone does not say what is invalid.
BY_NAME = {
    "memory": ["lots", "-3g", "0", "9" * 300],
    "hidden": ["0", "10,x", "", "100000000"],
    "activation": ["softplus"],
    "solver": ["lbfgs"],
    "engines": ["local,hadoop", ""],
    "workers": ["0", "x", BIG],
    "cores": ["0", "x", "4096"],
    "epochs": ["0", "ten", BIG],
    "seed": ["-1", str(2**32), "x"],
    "batch_size": ["0", "x"],
    "sync_every": ["0", "x"],
    "train_samples": ["0", "x"],
    "n_iter_no_change": ["0", "x"],
    "spark_conf": ["novalue", "foo=bar"],
    "out": ["{tmp}/afile/x", "{tmp}/afile", *UNWRITABLE],
    "data_dir": ["{tmp}/afile", "{tmp}/afile/x"],
    "results": ["{tmp}/missing.jsonl", "{tmp}/bad.jsonl", "{tmp}/wrong-types.jsonl"],
}
#: Per command, where the same name means something else.
BY_COMMAND_AND_NAME = {
    ("run", "cluster"): ["tcp://127.0.0.1:1"],  # with the local engine, which takes none
    ("sweep", "cluster"): ["tcp://127.0.0.1:1"],
    ("sweep", "workers"): ["0", "x", f"1,{BIG}"],
    ("sweep", "epochs"): ["0", "ten", BIG],
    ("paper", "clusters"): ["ftp://host:1", "local=tcp://127.0.0.1:1"],
    ("run", "out"): ["{tmp}/afile/x", "{tmp}", *UNWRITABLE],
}
#: Where a value's meaning depends on the command: a folder is a valid --out for report and plot.
NOT_INVALID = {("report", "out"): {"{tmp}"}, ("plot", "out"): {"{tmp}"}, ("paper", "out"): {"{tmp}"}}


def by_type(param: click.Parameter) -> list[str]:
    t = param.type
    if isinstance(t, click.Choice):
        return ["nope"]
    if isinstance(t, click.IntRange):
        return ["0", "x"]
    if isinstance(t, click.FloatRange):
        return ["0", "x", "nan", "inf"]
    if t is click.FLOAT:
        return ["x", "nan", "inf", "-1"]
    return []


def commands():
    def walk(command, path):
        if isinstance(command, click.Group):
            for name, sub in command.commands.items():
                yield from walk(sub, (*path, name))
        elif path[0] not in SKIPPED_COMMANDS:
            yield " ".join(path), command

    return list(walk(cli, ()))


def invalid_values(command: str, param: click.Parameter) -> list[str]:
    values = BY_COMMAND_AND_NAME.get((command, param.name)) or BY_NAME.get(param.name) or by_type(param)
    return [v for v in values if v not in NOT_INVALID.get((command, param.name), set())]


def options_to_try():
    for command, cmd in commands():
        for param in cmd.params:
            if getattr(param, "is_flag", False) or param.name in ("help", "version"):
                continue
            yield command, param


CASES = [(command, param, value) for command, param in options_to_try() for value in invalid_values(command, param)]


def test_every_option_has_invalid_values():
    missing = [f"{command} {param.name}" for command, param in options_to_try() if not invalid_values(command, param)]
    assert not missing, f"no invalid values known for: {missing}"
    assert len(CASES) > 100


@pytest.fixture(scope="module")
def files(tmp_path_factory, request):
    """A valid results file (one real digits run), a file that is not a folder, and two bad results files."""
    from nncompare.job import JobSpec, ModelSpec
    from nncompare.record import append_jsonl
    from nncompare.training import run_job

    tmp = tmp_path_factory.mktemp("inputs")
    record = run_job(JobSpec(dataset="digits", epochs=1, model=ModelSpec(hidden_layer_sizes=(8,))))
    append_jsonl(tmp / "records.jsonl", record)
    (tmp / "afile").write_text("not a folder\n")
    os.mkfifo(tmp / "fifo")  # with no reader: opening it for writing would block for ever
    (tmp / "bad.jsonl").write_bytes(json.dumps(record).encode() + b"\n\xff\xfe not utf-8\n")
    (tmp / "wrong-types.jsonl").write_text(json.dumps({**record, "wall_s": "fast"}) + "\n")
    return tmp


@pytest.mark.parametrize("command, param, value", CASES, ids=[f"{c}-{p.name}-{v[:20]}" for c, p, v in CASES])
def test_invalid_value_is_exit_2_one_line_no_traceback(command, param, value, files, tmp_path, capsys):
    fill = {"tmp": str(files), "records": str(files / "records.jsonl")}
    args = [a.format(**fill) for a in BASE[command]]
    value = value.format(**fill)
    if param.param_type_name == "argument":
        args = [value if a == fill["records"] else a for a in args]
    else:
        args += [param.opts[0], value]
    args = [a.replace(str(files) + "/out", str(tmp_path / "out")) for a in args]
    before = sorted(p.name for p in files.iterdir())
    with pytest.raises(SystemExit) as exit_:
        main([*command.split(), *args])
    err = capsys.readouterr().err
    assert exit_.value.code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("nncompare: error: "), err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists(), "bad input wrote output"
    assert sorted(p.name for p in files.iterdir()) == before
