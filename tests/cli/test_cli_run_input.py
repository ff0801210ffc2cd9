"""What `dlc run` takes in: the spec read once (so `-` for standard input works and the run folder
keeps exactly the text that trained), advice in the terms of the command line, and a platform that
is not there named in one line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from dlc.cli import EXIT_ERRORS, EXIT_OK, main

SPEC = ("data iris val=0.2\ninput 4\ndense 3 softmax\nloss categorical_crossentropy\n"
        "optimizer adam lr=0.01\nepochs 1\nmetrics accuracy\n")


class _Stdin:
    """Standard input as bytes, read once: a second read gets nothing, as from a pipe."""

    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


def test_a_spec_on_standard_input_runs_and_is_kept_as_given(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", _Stdin(SPEC.encode()))
    run = tmp_path / "run"
    assert main(["run", "-", "--out", str(run), "-q"]) == EXIT_OK
    assert (run / "spec.dl").read_text(encoding="utf-8") == SPEC
    assert "run folder:" in capsys.readouterr().out


def test_repeat_check_of_a_spec_on_standard_input_trains_the_same_text(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", _Stdin(SPEC.encode()))
    assert main(["run", "-", "--out", str(tmp_path / "run"), "-q", "--repeat-check"]) == EXIT_OK
    assert "repeat check: a second run gave the identical history" in capsys.readouterr().out


def test_the_spec_file_is_read_once(tmp_path, monkeypatch, capsys):
    """The file changes after dlc read it: what trains, and what the run folder keeps, is what was read."""
    spec = tmp_path / "once.dl"
    spec.write_text(SPEC)
    opened = []
    real_open = open

    def counting_open(name, *args, **kwargs):
        if str(name) == str(spec):
            opened.append(name)
        return real_open(name, *args, **kwargs)

    monkeypatch.setattr("builtins.open", counting_open)
    real_read_bytes = Path.read_bytes

    def counting_read_bytes(self):  # only the spec's reads: a library JAX imports may read its own files
        if str(self) == str(spec):
            opened.append(self)
        return real_read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counting_read_bytes)
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q"]) == EXIT_OK
    assert len(opened) == 1


def test_the_spec_is_parsed_once_even_to_train_it_twice(tmp_path, monkeypatch, capsys):
    """`--repeat-check` trains the program the command checked a second time; it parses nothing again."""
    import dlc.api

    parsed = []
    real_parse = dlc.api.parse
    monkeypatch.setattr(dlc.api, "parse", lambda *args: (parsed.append(args), real_parse(*args))[1])
    monkeypatch.setattr(sys, "stdin", _Stdin(SPEC.encode()))
    assert main(["run", "-", "--out", str(tmp_path / "run"), "-q", "--repeat-check"]) == EXIT_OK
    assert "repeat check: a second run gave the identical history" in capsys.readouterr().out
    assert len(parsed) == 1


def test_a_spec_without_data_gets_advice_for_the_command_line(tmp_path, capsys):
    spec = tmp_path / "nodata.dl"
    spec.write_text(SPEC.replace("data iris val=0.2\n", ""))
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q"]) == EXIT_ERRORS
    err = capsys.readouterr().err
    assert "has no `data` statement" in err and "add one, e.g. `data digits`" in err
    assert "pass x and y" not in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_a_spec_with_errors_on_standard_input_shows_them(monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", _Stdin(SPEC.replace("softmax", "sofmax").encode()))
    assert main(["run", "-", "-q"]) == EXIT_ERRORS
    err = capsys.readouterr().err
    assert "<stdin>:3:9: error[E203]: unknown activation `sofmax`" in err and " 3 | dense 3 sofmax" in err


def test_a_platform_that_is_not_there_is_one_line(tmp_path):
    spec = tmp_path / "spec.dl"
    spec.write_text(SPEC)
    env = {**os.environ, "JAX_PLATFORMS": "cuda"}
    for args in (["run", str(spec), "--out", str(tmp_path / "run"), "-q"],):
        done = subprocess.run([sys.executable, "-m", "dlc.cli", *args], capture_output=True, text=True, env=env,
                              timeout=300)
        assert done.returncode == EXIT_ERRORS
        assert done.stderr.strip().splitlines() == [
            "dlc: error: JAX_PLATFORMS=cuda asks for a platform JAX cannot start here (no such platform is "
            "installed or present); unset JAX_PLATFORMS to use what this machine has"]
    assert not (tmp_path / "run").exists()


def test_more_devices_than_there_are_is_one_line(tmp_path, capsys):
    spec = tmp_path / "spec.dl"
    spec.write_text(SPEC)
    assert main(["run", str(spec), "--out", str(tmp_path / "run"), "-q", "--devices", "64"]) == EXIT_ERRORS
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("dlc: error: asked for 64 devices, but JAX sees")
