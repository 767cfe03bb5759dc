"""Property-based fuzzing of the readers of files and text: the history loader, the mixture's
program parser and the Minari importer (and the dataset ids its exporter accepts).

Every bad input must end in one error of the reader's own type whose message names the file or
field (or, for program text, the position) -- never another exception, a hang, a load that
silently differs from what was saved, or a write outside the directory. A small sample runs by
default; ``pytest -m slow tests/test_fuzz_readers.py -s`` runs >= 10^4 cases and prints the
counts per target.

Bugs the fuzzing found are kept as minimal reproducers in ``test_found_*`` at the end, beside
the strategies that now cover their input class.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from learners import HistoryError, LearningHistory
from learners.files import sha256_file
from learners.solomonoff import Grammar, ProgramParseError, parse_program, program_source

COUNTS: Counter = Counter()
FAST = {"history": 120, "parser": 150, "minari": 60, "minari_id": 30}
SLOW = {"history": 4000, "parser": 4000, "minari": 2000, "minari_id": 300}


def fuzz(check, cases: int, /, *fixed, **strategies) -> None:
    """``check(*fixed, **drawn)`` on ``cases`` draws from ``strategies``, the same ones every run.
    No example database: it would be written below the working directory (the repository)."""
    given(**strategies)(settings(max_examples=cases, deadline=None, database=None, derandomize=True, suppress_health_check=[
        HealthCheck.too_slow, HealthCheck.filter_too_much])(lambda **drawn: check(*fixed, **drawn)))()


# =============================================================================================
# The history loader
# =============================================================================================
def _base_history() -> LearningHistory:
    rng = np.random.default_rng(0)
    T, A = 30, 3
    p = rng.dirichlet(np.ones(A), T)
    return LearningHistory.from_arrays(
        obs=rng.integers(0, 5, T), action=np.array([rng.choice(A, p=r) for r in p]), reward=rng.normal(size=T),
        terminated=np.arange(T) % 10 == 9, truncated=np.zeros(T, bool), teacher_probs=p,
        teacher_values=rng.normal(size=(T, A)), final_obs={9: 4, 19: 0, 29: 2},
        snapshots={0: {"w": np.ones(3)}, 20: {"w": np.arange(3.0)}}, metadata={"env_id": "X-v0", "seed": 1})


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz_base") / "h"
    _base_history().save(d)
    return d, LearningHistory.load(d)


FILES = ["manifest.json", "obs.npy", "action.npy", "reward.npy", "terminated.npy", "truncated.npy", "episode.npy",
         "teacher_probs.npy", "teacher_values.npy", "segment.npy", "final_obs_step.npy", "final_obs.npy",
         "snapshots/step_000000000000.safetensors", "snapshots/step_000000000020.safetensors"]
COLUMNS = ["obs", "action", "reward", "terminated", "truncated", "episode", "teacher_probs", "teacher_values",
           "segment", "final_obs_step", "final_obs"]
DTYPES = ["<i8", "<i4", "<f8", "<f4", "|b1", "|u1", "<u8", ">i8", "<f2", "<c16"]
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=False),
                      st.text(max_size=12))
# Depth stays small here; "deep" mutations below nest the whole manifest up to 10^5 levels.
json_value = st.recursive(json_leaf, lambda c: st.one_of(st.lists(c, max_size=3), st.dictionaries(st.text(max_size=6), c, max_size=3)),
                          max_leaves=6)

# Manifest fields a mutation may overwrite with any JSON value (() is the manifest itself).
MANIFEST_PATHS = ([(), ("format",), ("version",), ("n_steps",), ("n_actions",), ("metadata",), ("files",), ("snapshots",)]
                  + [("files", c) for c in COLUMNS]
                  + [("files", c, k) for c in COLUMNS for k in ("file", "shape", "dtype", "sha256")]
                  + [("snapshots", i) for i in (0, 1)]
                  + [("snapshots", i, k) for i in (0, 1) for k in ("step", "file", "sha256")])
# Values that point out of the directory, or are not dtypes / names at all.
HOSTILE = ["../outside.npy", "OUTSIDE", "snapshots/../../outside.npy", "..", ".", "", "snapshots", "a\x00b",
           "zz", "O", "|O", "<U3", "V8", "[('a', '<i8')]", 5, 1.5, True, -1, 2**63, "x", [], {}]

mutation = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(FILES), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.sampled_from(FILES), st.floats(0, 1), st.integers(1, 255)),
    st.tuples(st.just("edit"), st.sampled_from(MANIFEST_PATHS), st.one_of(json_value, st.sampled_from(HOSTILE))),
    # A file replaced by a symlink: to a copy outside the directory, to another file inside it,
    # to a directory, or to itself (a loop).
    st.tuples(st.just("symlink"), st.sampled_from(FILES), st.sampled_from(["outside", "inside", "dir", "loop"])),
    # The manifest nested 1..10^5 levels deep, as a list or an object.
    st.tuples(st.just("deep"), st.integers(1, 100_000), st.booleans()),
    st.tuples(st.just("dtype"), st.sampled_from(COLUMNS), st.sampled_from(DTYPES)),
    st.tuples(st.just("drop"), st.sampled_from(FILES + ["snapshots"])),
    # Replace a column by another array and make the manifest agree (a consistent lie about
    # content): validation must catch what the checksums cannot.
    st.tuples(st.just("swap"), st.sampled_from(COLUMNS), st.sampled_from(DTYPES[:7]), st.integers(-1, 1), st.integers(0, 2**32 - 1)),
)


def _set(obj, path, value):
    for k in path[:-1]:
        obj = obj[k]
    obj[path[-1]] = value


def _mutate(d: Path, m: tuple) -> None:
    kind = m[0]
    if kind in ("truncate", "flip"):
        p = d / m[1]
        data = p.read_bytes()
        i = min(int(m[2] * len(data)), max(len(data) - 1, 0))
        if kind == "truncate":
            p.write_bytes(data[:i])
        elif data:
            p.write_bytes(data[:i] + bytes([data[i] ^ m[3]]) + data[i + 1:])
    elif kind == "drop":
        p = d / m[1]
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    elif kind == "symlink":
        p, target = d / m[1], m[2]
        outside = d.parent / "outside.npy"
        if target == "outside":
            shutil.copy(p, outside)
        p.unlink()
        os.symlink({"outside": outside, "inside": d / "reward.npy", "dir": d / "snapshots", "loop": p}[target], p)
    elif kind == "deep":
        n, obj = m[1], m[2]
        (d / "manifest.json").write_text(('{"a":' * n + "1" + "}" * n) if obj else ("[" * n + "]" * n))
    else:
        man = json.loads((d / "manifest.json").read_text())
        if kind == "edit":
            value = m[2]
            if value == "OUTSIDE":   # an absolute path
                value = str(d.parent / "outside.npy")
            if isinstance(value, str) and "outside" in value:   # a valid column there, to be refused
                shutil.copy(d / "action.npy", d.parent / "outside.npy")
            if m[1]:
                _set(man, m[1], value)
            else:
                man = value
        elif kind == "dtype":
            man["files"][m[1]]["dtype"] = m[2]
        else:  # swap
            _, col, dt, dshape, seed = m
            old = np.load(d / f"{col}.npy")
            rng = np.random.default_rng(seed)
            shape = (max(old.shape[0] + dshape, 0), *old.shape[1:])
            new = (rng.normal(size=shape) * 3).astype(dt) if np.dtype(dt).kind == "f" else rng.integers(0, 3, shape).astype(dt)
            np.save(d / f"{col}.npy", new)
            man["files"][col].update(shape=list(new.shape), dtype=new.dtype.str, sha256=sha256_file(d / f"{col}.npy"))
        (d / "manifest.json").write_text(json.dumps(man))


def _names_a_file_or_field(msg: str, d: Path) -> bool:
    names = FILES + COLUMNS + ["manifest", "snapshots", str(d), "files", "format", "version"]
    return any(n in msg for n in names)


def _same(a: LearningHistory, b: LearningHistory) -> bool:
    ca, cb = a.columns(), b.columns()
    if ca.keys() != cb.keys():
        return False
    if a.snapshot_steps != b.snapshot_steps:
        return False
    if not all(ca[c].dtype == cb[c].dtype and np.array_equal(np.asarray(ca[c]), np.asarray(cb[c])) for c in ca):
        return False
    return all(all(np.array_equal(v, b.weights_at(s)[k]) for k, v in a.weights_at(s).items()) for s in a.snapshot_steps)


def _reads_outside(m: tuple) -> bool:
    """Whether loading after mutation ``m`` would mean reading a file outside the directory."""
    if m[0] == "symlink":
        return m[2] == "outside"
    return m[0] == "edit" and isinstance(m[2], str) and "outside" in m[2].lower()


def check_history_mutation(saved, m: tuple) -> None:
    base_dir, base = saved
    COUNTS["history"] += 1
    COUNTS[f"history.{m[0]}"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "h"
        shutil.copytree(base_dir, d)
        _mutate(d, m)
        before = sorted(os.listdir(tmp))
        try:
            h = LearningHistory.load(d)
            ok = True
        except HistoryError as e:
            assert _names_a_file_or_field(str(e), d), f"{m}: error names no file or field: {e}"
            ok = False
        except Exception as e:  # noqa: BLE001 - the property: nothing but HistoryError escapes
            pytest.fail(f"mutation {m!r}: {type(e).__name__}: {e}")
        assert sorted(os.listdir(tmp)) == before, f"{m}: the loader wrote beside the directory"
        if ok:
            assert not _reads_outside(m), f"mutation {m!r}: a file outside the directory was read"
            if m[0] == "swap":
                h.validate()   # a consistent replacement may be a valid history; it must validate
            else:
                # Anything else that loads must be what was saved (edits of unused fields, no-op flips).
                try:
                    # Every snapshot on disk must be listed (the writer leaves no stray ones), so
                    # a shortened list is refused and anything that loads has all the saved ones.
                    same = _same(h, base)
                except HistoryError as e:   # a snapshot read on demand fails with a clear error: fine
                    assert _names_a_file_or_field(str(e), d)
                    return
                assert same, f"mutation {m!r} loaded silently with different content"


def test_fuzz_history_loader(saved):
    fuzz(check_history_mutation, FAST["history"], saved, m=mutation)


# =============================================================================================
# The mixture's program parser
# =============================================================================================
TOKENS = ["QLearning", "SARSA", "ExpectedSARSA", "TD", "UCB1", "Thompson", "Constant", "Cyclic", "Reactive",
          "Stochastic", "init", "alpha", "gamma", "target", "explore", "eps_greedy", "softmax", "greedy",
          "count_bonus", "r", "max", "exp", "next", "g", "n", "(", ")", "[", "]", "=", ",", "+", "-", "*", "/",
          "0", "1", "2", "7", "1/2", "1/n", "3/4", " ", "default", "k", "table", "x", "é", "\x00", "1e9", "99999999999999999999"]
program_text = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(TOKENS), max_size=60).map("".join),
    # Targets nested far deeper than any real program, by parentheses or by long sums.
    st.builds(lambda n, k: "TD(init=0, alpha=1/2, target=" + {"paren": "(" * n + "r" + ")" * n, "sum": "r" + "+r" * n,
                                                                 "both": "(r+" * n + "r" + ")" * n}[k] + ", explore=greedy)",
              st.integers(0, 3000), st.sampled_from(["paren", "sum", "both"])),
    # Well-formed programs with one token changed: the parser's deeper paths.
    st.tuples(st.sampled_from([
        "QLearning(init=0, alpha=1/2, gamma=1/2, explore=softmax(1/2))",
        "SARSA(init=1, alpha=1/n, gamma=3/4, explore=eps_greedy(1/4))",
        "TD(init=0, alpha=1/4, target=r + g*max, gamma=1/2, explore=greedy)",
        "Constant(2)", "Cyclic([0, 1, 2])", "Stochastic([1/2, 1/4, 1/4, 0, 0])",
    ]), st.integers(0, 80), st.sampled_from(TOKENS)).map(lambda t: t[0][:t[1]] + t[2] + t[0][t[1] + 1:]),
)
GRAMMAR = Grammar(16, 5)


def check_program_text(text: str) -> None:
    COUNTS["parser"] += 1
    try:
        p = parse_program(text)
    except ProgramParseError as e:
        assert str(e), f"{text!r}: empty error message"
        return
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"parse_program({text!r}): {type(e).__name__}: {e}")
    src = program_source(p)
    assert parse_program(src) == p, f"{text!r} parsed to {src!r}, which parses differently"
    try:
        GRAMMAR.parse(text)
    except ValueError as e:   # ProgramParseError or "not in this grammar": both name the problem
        assert str(e)
    except Exception as e:  # noqa: BLE001
        pytest.fail(f"Grammar.parse({text!r}): {type(e).__name__}: {e}")


def test_fuzz_program_parser():
    fuzz(check_program_text, FAST["parser"], text=program_text)


# =============================================================================================
# The Minari importer
# =============================================================================================
@pytest.fixture(scope="module")
def minari_saved(saved, tmp_path_factory):
    pytest.importorskip("minari", reason="minari not installed (pip install -e '.[minari]')")
    pytest.importorskip("h5py", reason="minari's HDF5 storage needs h5py (pip install -e '.[minari]')")
    from learners.interop.minari import to_minari

    root = tmp_path_factory.mktemp("fuzz_minari")
    return to_minari(saved[1], "fuzz-v0", root=root), saved[1]


M_FILES = ["data/metadata.json", "data/main_data.hdf5", "hypospace_snapshots/step_000000000000.safetensors"]
M_PATHS = ([("observation_space",), ("action_space",), ("data_format",), ("total_episodes",), ("total_steps",),
            ("env_spec",), ("hypospace",), ("description",)]
           + [("hypospace", k) for k in ("format", "version", "n_steps", "n_actions", "n_episodes", "dtypes", "obs_shape",
                                         "has_teacher_values", "snapshots", "metadata", "data_sha256", "teacher_probs_known")]
           + [("hypospace", "dtypes", c) for c in COLUMNS]
           + [("hypospace", "snapshots", 0, k) for k in ("step", "file", "sha256")])
SPACES = ['{"type": "Discrete", "dtype": "int64", "start": 0, "n": 3}', '{"type": "Box"}', "not json", "[]",
          '{"type": "Dict", "subspaces": {}}', '{"type": "Discrete", "dtype": "int64", "start": 5, "n": 2}']
m_mutation = st.one_of(
    st.tuples(st.just("truncate"), st.sampled_from(M_FILES), st.floats(0, 1), st.booleans()),
    st.tuples(st.just("flip"), st.sampled_from(M_FILES), st.floats(0, 1), st.integers(1, 255), st.booleans()),
    st.tuples(st.just("edit"), st.sampled_from(M_PATHS), st.one_of(json_value, st.sampled_from(SPACES),
                                                                    st.sampled_from(["../../x", "/etc/passwd", "hypospace_snapshots/../../x"]))),
    st.tuples(st.just("symlink"), st.sampled_from(M_FILES)),
    st.tuples(st.just("drop"), st.sampled_from(M_FILES + ["data", "hypospace_snapshots"])),
)


def check_minari_mutation(minari_saved, m: tuple) -> None:
    from learners.interop.minari import from_minari

    base_dir, base = minari_saved
    COUNTS["minari"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "ds"
        shutil.copytree(base_dir, d)
        kind, verify = m[0], True
        if kind in ("truncate", "flip"):
            p = d / m[1]
            data = p.read_bytes()
            i = min(int(m[2] * len(data)), max(len(data) - 1, 0))
            p.write_bytes(data[:i] if kind == "truncate" else data[:i] + bytes([data[i] ^ m[3]]) + data[i + 1:])
            verify = m[-1]    # without the checksum, h5py itself meets the damage
        elif kind == "edit":
            mp = d / "data/metadata.json"
            meta = json.loads(mp.read_text())
            try:
                _set(meta, m[1], m[2])
            except (IndexError, KeyError, TypeError):
                pass
            mp.write_text(json.dumps(meta))
        elif kind == "symlink":
            outside = Path(tmp) / "outside"
            shutil.copy(d / m[1], outside)
            (d / m[1]).unlink()
            os.symlink(outside, d / m[1])
        else:
            p = d / m[1]
            shutil.rmtree(p) if p.is_dir() else p.unlink()
        before = sorted(os.listdir(tmp))
        try:
            h = from_minari(d, verify=verify)
            ok = True
        except HistoryError as e:
            assert str(d) in str(e) or "dataset id" in str(e), f"{m}: error names no file: {e}"
            ok = False
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"mutation {m!r}: {type(e).__name__}: {e}")
        assert sorted(os.listdir(tmp)) == before, f"{m}: the importer wrote beside the dataset"
        if ok:
            assert kind != "symlink", f"{m}: a file leading out of the dataset was read"
            if verify or kind == "edit":
                assert _same(h, base) and h.metadata == base.metadata, f"mutation {m!r} imported silently with different content"
            else:
                h.validate()   # an HDF5 file edited past its checksum imports only as a valid history


def test_fuzz_minari_importer(minari_saved):
    fuzz(check_minari_mutation, FAST["minari"], minari_saved, m=m_mutation)


dataset_id = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(["a", "ns", "..", ".", "", "/", "-v0", "-v", "x", "\\", "~", "$HOME", " ", "é", "\x00"]),
             max_size=8).map("".join),
)


def check_minari_export_id(minari_saved, ident: str) -> None:
    """Whatever the dataset id, the export writes below its root or refuses with a HistoryError."""
    from learners.interop.minari import from_minari, to_minari

    COUNTS["minari_id"] += 1
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        try:
            d = to_minari(minari_saved[1], ident, root=root)
        except HistoryError as e:
            assert "dataset id" in str(e), f"{ident!r}: {e}"
            assert os.listdir(tmp) == ["root"] and os.listdir(root) == [], f"{ident!r}: refused but wrote"
            return
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"to_minari(id={ident!r}): {type(e).__name__}: {e}")
        assert os.listdir(tmp) == ["root"], f"{ident!r}: wrote beside the root"
        assert root.resolve() in d.resolve().parents
        assert _same(from_minari(ident, root=root), minari_saved[1])


def test_fuzz_minari_dataset_ids(minari_saved):
    fuzz(check_minari_export_id, FAST["minari_id"], minari_saved, ident=dataset_id)


# =============================================================================================
# >= 10^4 cases
# =============================================================================================
@pytest.mark.slow
def test_fuzz_readers_many_cases(saved, minari_saved):
    before = Counter(COUNTS)
    fuzz(check_history_mutation, SLOW["history"], saved, m=mutation)
    fuzz(check_program_text, SLOW["parser"], text=program_text)
    fuzz(check_minari_mutation, SLOW["minari"], minari_saved, m=m_mutation)
    fuzz(check_minari_export_id, SLOW["minari_id"], minari_saved, ident=dataset_id)
    ran = {k: COUNTS[k] - before[k] for k in SLOW}
    kinds = {k.split(".")[1]: COUNTS[k] - before[k] for k in sorted(COUNTS) if k.startswith("history.")}
    print(f"\nfuzz cases run per target: {ran} (total {sum(ran.values())}); history mutations by kind: {kinds}")
    assert sum(ran.values()) >= 10_000


# =============================================================================================
# Bugs the fuzzing found (minimal reproducers; each must end in one HistoryError naming the file
# and the field, or a ProgramParseError)
# =============================================================================================
def _copy(saved, tmp_path) -> Path:
    d = tmp_path / "h"
    shutil.copytree(saved[0], d)
    return d


def _edit_manifest(d: Path, fn) -> None:
    man = json.loads((d / "manifest.json").read_text())
    fn(man)
    (d / "manifest.json").write_text(json.dumps(man))


def _refused(d: Path, *names: str) -> str:
    with pytest.raises(HistoryError) as e:
        LearningHistory.load(d)
    for n in names:
        assert n in str(e.value), f"{n!r} not named in: {e.value}"
    return str(e.value)


@pytest.mark.parametrize("text", ["[]", "5", '"manifest"', "null"])
def test_found_manifest_not_an_object(saved, tmp_path, text):
    d = _copy(saved, tmp_path)
    (d / "manifest.json").write_text(text)
    _refused(d, "manifest.json", "expected an object")


@pytest.mark.parametrize("dtype", ["zz", 5, None, [["a", "<i8"]], "|O"])
def test_found_manifest_dtype_not_a_dtype(saved, tmp_path, dtype):
    d = _copy(saved, tmp_path)
    _edit_manifest(d, lambda m: m["files"]["action"].__setitem__("dtype", dtype))
    _refused(d, "files.action")


@pytest.mark.parametrize("edit, field", [
    (lambda s: s[0].pop("file"), "snapshots[0].file"),
    (lambda s: s.__setitem__(0, "step_000000000000.safetensors"), "snapshots[0]"),
    (lambda s: s[1].__setitem__("step", "x"), "snapshots[1].step"),
    (lambda s: s[1].__setitem__("step", 0), "snapshots[1].step"),   # a step listed twice
    (lambda s: s[0].__setitem__("step", 5), "snapshots[0].step"),   # weights served at the wrong step
    (lambda s: s[0].__setitem__("step", 2**63), "snapshots[0].step"),
    (lambda s: (s[0].__setitem__("file", s[1]["file"]), s[0].__setitem__("sha256", s[1]["sha256"])), "snapshots[0].file"),
    (lambda s: s[0].__setitem__("file", "../manifest.json"), "snapshots[0].file"),
    (lambda s: s[0].__setitem__("sha256", None), "snapshots[0].sha256"),
])
def test_found_manifest_snapshot_entry_malformed(saved, tmp_path, edit, field):
    d = _copy(saved, tmp_path)
    _edit_manifest(d, lambda m: edit(m["snapshots"]))
    _refused(d, "manifest.json", field)


@pytest.mark.parametrize("name", ["action.npy", "manifest.json", "snapshots/step_000000000020.safetensors"])
def test_found_symlink_out_of_the_directory(saved, tmp_path, name):
    d = _copy(saved, tmp_path)
    outside = tmp_path / "outside"
    shutil.copy(d / name, outside)
    (d / name).unlink()
    os.symlink(outside, d / name)
    _refused(d, name, "out of the history directory")


@pytest.mark.parametrize("name", ["reward.npy", "manifest.json"])
def test_found_not_a_regular_file(saved, tmp_path, name):
    """A FIFO would block the read forever, a directory fails in the middle of it: both are refused."""
    d = _copy(saved, tmp_path)
    (d / name).unlink()
    os.mkfifo(d / name)
    _refused(d, name, "not a regular file")


def test_symlink_inside_the_directory_loads(saved, tmp_path):
    """Only leaving the directory is refused: a history reached through a symlinked directory,
    or with a column linked to a file inside it, loads as saved."""
    d = _copy(saved, tmp_path)
    shutil.move(d / "action.npy", d / "action_data.npy")
    os.symlink("action_data.npy", d / "action.npy")
    os.symlink(d, tmp_path / "link")
    assert _same(LearningHistory.load(tmp_path / "link"), saved[1])


@pytest.mark.parametrize("where", ["../outside.npy", "absolute", "snapshots/../../outside.npy"])
def test_found_manifest_path_outside_the_directory(saved, tmp_path, where):
    d = _copy(saved, tmp_path)
    shutil.copy(d / "action.npy", tmp_path / "outside.npy")
    path = str(tmp_path / "outside.npy") if where == "absolute" else where
    _edit_manifest(d, lambda m: m["files"]["action"].__setitem__("file", path))
    _refused(d, "manifest.json", "files.action.file", "out of the history directory")


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000])
def test_found_manifest_deeply_nested(saved, tmp_path, text):
    d = _copy(saved, tmp_path)
    (d / "manifest.json").write_text(text)
    _refused(d, "manifest.json", "too deeply nested")


def test_found_parser_deep_nesting():
    with pytest.raises(ProgramParseError, match="deeper than 100 levels"):
        parse_program("TD(init=0, alpha=1/2, target=" + "(" * 497 + "r" + ")" * 497 + ", explore=greedy)")
    with pytest.raises(ProgramParseError, match="deeper than 100 levels"):
        parse_program("TD(init=0, alpha=1/2, target=r" + "+r" * 5000 + ", explore=greedy)")
    # Nesting up to the limit still parses, to the same program as without the parentheses.
    deep = parse_program("TD(init=0, alpha=1/2, target=" + "(" * 99 + "r + g*max Q(s')" + ")" * 99 + ", gamma=1/2, explore=greedy)")
    assert deep == parse_program("TD(init=0, alpha=1/2, target=r + g*max Q(s'), gamma=1/2, explore=greedy)")


@pytest.mark.parametrize("i, char", [(248, "{"), (248, "("), (248, "["), (11, '"'), (10, "(")])
def test_found_npy_header_bracket(saved, tmp_path, i, char):
    d = _copy(saved, tmp_path)
    data = bytearray((d / "obs.npy").read_bytes())
    data[i] = ord(char)     # inside the header: its space padding, its opening brace or a quote
    (d / "obs.npy").write_bytes(bytes(data))
    _refused(d, "obs.npy")


@pytest.mark.parametrize("damage", ["remove", "truncate"])
def test_snapshot_damaged_after_loading(saved, tmp_path, damage):
    """A snapshot is read on demand: removed or cut short after the load, it is a HistoryError too."""
    d = _copy(saved, tmp_path)
    h = LearningHistory.load(d, verify=False)
    p = d / "snapshots/step_000000000020.safetensors"
    p.unlink() if damage == "remove" else p.write_bytes(p.read_bytes()[:10])
    with pytest.raises(HistoryError, match="step_000000000020.safetensors"):
        h.weights_at(20)


@pytest.mark.parametrize("field, value, expect", [
    ("n_steps", 31, "'n_steps' is 31"), ("n_steps", "30", "'n_steps'"), ("n_steps", None, "'n_steps'"),
    ("n_actions", 4, "'n_actions' is 4"), ("n_actions", True, "'n_actions'"),
    ("metadata", ["env_id", "X-v0"], "'metadata'"), ("metadata", None, "'metadata'"),
])
def test_found_manifest_summary_checked(saved, tmp_path, field, value, expect):
    d = _copy(saved, tmp_path)
    _edit_manifest(d, lambda m: m.__setitem__(field, value))
    _refused(d, "manifest.json", expect)
