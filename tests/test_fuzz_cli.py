"""Property-based fuzzing of the scripts' command lines.

Each script's ``main(argv)`` is called in-process with generated argument lists: its own flags
with bad numbers, negative counts, odd unicode, paths with '..', unknown flags, and sometimes a
plausible command line to start from. The outcome must be exit 0 only for --help, otherwise
``SystemExit(2)`` with one error line on stderr (argparse's usage block may precede it, as the
house rule allows for bad flags) and no traceback; nothing is written outside the case's
temporary directory (every mkdir / open-for-write / rename / delete is checked).

Cheap by construction: the function each script calls to start real work (recording, training,
the study, drawing the paper, identification) is replaced by one that raises ``_WouldRun``;
inputs that get that far passed validation and are counted as "valid", not run.

A small sample runs by default; ``pytest -m slow tests/test_fuzz_cli.py -s`` runs >= 10^4
cases and prints the counts per script.
"""
from __future__ import annotations

import builtins
import contextlib
import io
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import experiments.mixture_identify as mixture_identify
import experiments.paper.__main__ as paper
import experiments.record as record
import experiments.study.__main__ as study
import experiments.teachers_report as teachers_report
import experiments.train_dqn as train_dqn
import experiments.train_transformer as train_transformer
import learners.transformer.corpus as tf_corpus
import learners.transformer.train as tf_train

COUNTS: Counter = Counter()
FAST = 60  # cases per script in the default suite
SLOW = 1700  # cases per script in the slow run (6 scripts: >= 10^4)


class _WouldRun(Exception):
    """Raised in place of a script's real work: the input passed validation."""


def _would_run(*a: Any, **kw: Any) -> Any:
    raise _WouldRun


SCRIPTS: dict[str, tuple[Callable[[list[str]], int], str, Callable[[], Any], list[list[str]]]] = {
    # name: (main, prog, parser for the flag list, plausible command lines to start from)
    "study": (study.main, study.PROG, study.build_parser,
              [["--preset", "smoke", "--out", "o"], ["--preset", "smoke", "--out", "o", "--rungs", "bandit5"]]),
    "record": (record.main, record.PROG, lambda: record.build_parser("q_learning"),
               [["--env", "hypospace/DarkRoom-v0", "--teacher", "q_learning", "--episodes", "3", "--out", "o"],
                ["--env", "hypospace/Bandit-v0", "--teacher", "ucb1", "--steps", "3", "--out", "o", "--task", "test:0"],
                ["--resume", "o"]]),
    "train_dqn": (train_dqn.main, train_dqn.PROG, train_dqn.build_parser,
                  [["--env", "hypospace/DarkRoom-v0", "--steps", "5", "--out", "o"], ["--resume", "o"]]),
    "train_transformer": (train_transformer.main, train_transformer.PROG, train_transformer.build_parser,
                          [["--env", "bandit", "--preset", "smoke", "--out", "o"], ["--resume", "--out", "o"]]),
    "paper": (paper.main, paper.PROG, paper.parser, [["--study", "s", "--out", "p"]]),
    "teachers_report": (teachers_report.main, teachers_report.PROG, teachers_report.build_parser,
                        [["--episodes", "100", "--pulls", "200"], ["--parts", "bandit", "--out", "o.json"]]),
    "mixture_identify": (mixture_identify.main, "python -m experiments.mixture_identify", mixture_identify.parser,
                         [["--env", "bandit", "--out", "o.json"], ["--env", "darkroom", "--size", "3", "--out", "o.json"]]),
}
FLAGS = {name: sorted({o for a in s[2]()._actions for o in a.option_strings if o not in ("-h", "--help")})
         for name, s in SCRIPTS.items()}

BAD_NUMBERS = ["-1", "0", "-0", "-5", "1e309", "nan", "inf", "-inf", "0x10", "1_000", "٣", "１", "9" * 40, "", " ", "1.5",
               "-1e-9", "2147483648", "-9223372036854775809"]
ODD_TEXT = ["ü", "\u202e", "日本", "a\udcffb", "\t", "--", "-", "\x7f", "=", "a=b", "[1,2]", "{", '{"a": 1}', "train:",
            "test:-1", "test:99999", "x:0", "ALE/Nope-v5", "hypospace/Nope-v0", "Q4", "bandit5", "mixture", "ray", "cuda:7"]
# At most three '..' from a cwd four levels below the case's temporary root: every path stays inside it.
PATHS = ["..", "../x", "../../y/z", "a/../../b", "out/..", "./o", "o", "s", "p", "../../../w", "a/b/c/d", "dir/",
         "o/model", "o.partial", "f\u00e9/\u2603"]
UNKNOWN = ["--nope", "-x", "--out=", "--env=", "---", "--ENV", "--steps=-3", "--seed=1e3", "-hx"]
HELP = ["--help", "-h", "--he"]


def _is_help(tok: str) -> bool:
    return tok == "-h" or (len(tok) >= 3 and "--help".startswith(tok))


@st.composite
def argv_for(draw, name: str) -> list[str]:
    value = st.sampled_from(BAD_NUMBERS + ODD_TEXT + PATHS) | st.text(max_size=6)
    token = st.one_of(st.sampled_from(FLAGS[name]), st.sampled_from(FLAGS[name]).map(lambda f: f + "="),
                      st.sampled_from(UNKNOWN), value)
    pairs = st.tuples(st.sampled_from(FLAGS[name]), value).map(list)
    body = draw(st.lists(st.one_of(token.map(lambda t: [t]), pairs), max_size=5))
    base = draw(st.sampled_from([[]] + SCRIPTS[name][3]))
    argv = list(base)
    for piece in body:
        i = draw(st.integers(0, len(argv)))
        argv[i:i] = piece
    if draw(st.integers(0, 19)) == 0:
        argv.insert(draw(st.integers(0, len(argv))), draw(st.sampled_from(HELP)))
    return [a for a in argv if "\x00" not in a]  # a NUL cannot be in a real argv


class _Guard:
    """Refuses (AssertionError) any filesystem write outside ``root``."""

    def __init__(self, root: Path):
        self.root = root.resolve()
        self.writes: list[str] = []

    def check(self, path: Any) -> None:
        if isinstance(path, int):
            return
        p = Path(os.fsdecode(path))
        real = (p if p.is_absolute() else Path.cwd() / p).resolve()
        self.writes.append(str(real))
        assert real == self.root or real.is_relative_to(self.root), f"write outside the temporary directory: {real}"


def _install_guard(mp: pytest.MonkeyPatch, guard: _Guard) -> None:
    real_open, real_mkdir, real_replace, real_rename = builtins.open, os.mkdir, os.replace, os.rename
    real_os_open, real_unlink, real_rmdir, real_rmtree = os.open, os.unlink, os.rmdir, shutil.rmtree

    def g_open(file, mode="r", *a, **kw):
        if any(c in mode for c in "wax+"):
            guard.check(file)
        return real_open(file, mode, *a, **kw)

    def g_os_open(path, flags, *a, **kw):
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC):
            guard.check(path)
        return real_os_open(path, flags, *a, **kw)

    def g_mkdir(path, *a, **kw):
        guard.check(path)
        return real_mkdir(path, *a, **kw)

    def g_two(real):
        def f(src, dst, *a, **kw):
            guard.check(src)
            guard.check(dst)
            return real(src, dst, *a, **kw)
        return f

    def g_one(real):
        def f(path, *a, **kw):
            guard.check(path)
            return real(path, *a, **kw)
        return f

    mp.setattr(builtins, "open", g_open)
    mp.setattr(io, "open", g_open)
    mp.setattr(os, "open", g_os_open)
    mp.setattr(os, "mkdir", g_mkdir)
    mp.setattr(os, "replace", g_two(real_replace))
    mp.setattr(os, "rename", g_two(real_rename))
    mp.setattr(os, "unlink", g_one(real_unlink))
    mp.setattr(os, "remove", g_one(real_unlink))
    mp.setattr(os, "rmdir", g_one(real_rmdir))
    mp.setattr(shutil, "rmtree", g_one(real_rmtree))


def _stub_work(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(study, "run_study", _would_run)
    mp.setattr(record, "_run", _would_run)
    mp.setattr(train_dqn, "_run", _would_run)
    mp.setattr(tf_corpus, "build_corpus", _would_run)
    mp.setattr(tf_train, "train", _would_run)
    mp.setattr(paper, "build", _would_run)
    mp.setattr(mixture_identify, "run", _would_run)
    mp.setattr(teachers_report, "measure", _would_run)
    # main() of train_transformer sets torch's thread count from --threads before its work starts.
    mp.setattr(torch, "set_num_threads", lambda n: None)


def _check(name: str, argv: list[str]) -> None:
    main, prog = SCRIPTS[name][0], SCRIPTS[name][1]
    COUNTS[name] += 1
    root = Path(tempfile.mkdtemp(prefix="fzcli"))
    cwd = root / "a" / "b" / "c" / "d"
    cwd.mkdir(parents=True)
    err, out = io.StringIO(), io.StringIO()
    code: Any = "returned"
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.chdir(cwd)
            mp.setenv("HYPOSPACE_CACHE", str(root / "cache"))
            _stub_work(mp)
            _install_guard(mp, _Guard(root))
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                try:
                    main(list(argv))
                except SystemExit as e:
                    code = e.code
                except _WouldRun:
                    code = "valid"
        if code == "valid":
            # Passed validation: real work would start here; not run in a fuzz case.
            COUNTS[name + " (valid, not run)"] += 1
            return
        if code == 0:
            assert any(_is_help(a) for a in argv), f"{name} {argv}: exit 0 without --help"
            COUNTS[name + " (help)"] += 1
            return
        text = err.getvalue()
        # split on "\n" only: an echoed argument may hold \x85 or \u2028, which splitlines() breaks at
        lines = text.rstrip("\n").split("\n")
        assert code == 2, f"{name} {argv}: exit {code!r}, stderr {text[-500:]!r}"
        assert "Traceback" not in text, f"{name} {argv}: {text}"
        errors = [i for i, line in enumerate(lines) if line.startswith(f"{prog}: error: ")]
        # one error, last; an argument holding a newline is echoed as is and may continue it
        echoed_newline = any("\n" in a or "\r" in a for a in argv)
        assert len(errors) == 1 and (errors[0] == len(lines) - 1 or echoed_newline), \
            f"{name} {argv}: stderr is not one error line: {text[-800:]!r}"
        assert errors[0] == 0 or lines[0].startswith("usage: "), f"{name} {argv}: {text[-800:]!r}"
        COUNTS[name + " (refused)"] += 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _settings(n: int) -> settings:
    # No example database: it would be written below the working directory (the repository).
    return settings(max_examples=n, deadline=None, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large])


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_cli_fuzz(name):
    @_settings(FAST)
    @given(argv=argv_for(name))
    def run(argv):
        _check(name, argv)

    run()


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_help_exits_0(name):
    for h in HELP:
        _check(name, [h])
    assert COUNTS[name + " (help)"] >= len(HELP)


@pytest.mark.slow
def test_cli_fuzz_many():
    """>= 10^4 command lines over the six scripts; prints the counts per script."""
    COUNTS.clear()
    for name in sorted(SCRIPTS):
        @_settings(SLOW)
        @given(argv=argv_for(name))
        def run(argv):
            _check(name, argv)

        run()
    print("\nfuzz cases by script:", dict(sorted(COUNTS.items())))
    assert sum(v for k, v in COUNTS.items() if "(" not in k) >= 10_000


def test_guard_refuses_a_write_outside(tmp_path):
    """The write check above is live: a write beside the case's directory is refused."""
    inside = tmp_path / "case"
    inside.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        _install_guard(mp, _Guard(inside))
        with open(inside / "ok", "w") as f:
            f.write("x")
        with pytest.raises(AssertionError, match="outside"):
            open(tmp_path / "escape", "w")
        with pytest.raises(AssertionError, match="outside"):
            os.mkdir(inside / ".." / "escape_dir")
    assert not (tmp_path / "escape").exists() and not (tmp_path / "escape_dir").exists()
