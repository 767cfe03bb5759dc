"""Learning histories as Farama Minari datasets and back (``pip install -e '.[minari]'``).

    from learners.interop.minari import to_minari, from_minari
    to_minari(history, "hypospace/darkroom/q-learning-v0")       # one Minari episode per teacher episode
    h = from_minari("hypospace/darkroom/q-learning-v0")          # identical columns and metadata
    h = from_minari("/data/minari/D4RL/door/human-v2")           # someone else's: actions only

Where datasets live: ``root=`` if given, else ``$MINARI_DATASETS_PATH`` if set, else the
project cache ``learners.cache.cache_dir("minari")`` -- never ``~/.minari``. Nothing here
downloads.

Layout of an exported dataset (Minari 0.5, HDF5 storage, lossless: no JPEG encoding):

* episode ``e`` of the history is Minari episode ``e``: ``observations`` are the ``N`` observations
  acted on plus the one that followed the last step (the recorded final observation, or a copy
  of the last one when the history did not record it -- ``infos["final_obs_recorded"]`` says
  which); ``actions``, ``rewards``, ``terminations``, ``truncations`` as recorded;
* ``infos`` has ``N + 1`` rows aligned with ``observations`` (the convention of Minari's
  ``DataCollector``): row ``t`` holds the exact ``teacher_probs`` (and ``teacher_values``) of the
  action taken at observation ``t``, its ``segment`` and global ``step``; the last row, after the
  last action, has ``has_action`` False and zero probabilities;
* the dataset's ``metadata.json`` has a ``hypospace`` block: the history's metadata (teacher
  config, seeds, env id and kwargs, provenance), its column dtypes, and the weight snapshots,
  which stay in the project's format (safetensors) in ``hypospace_snapshots/`` beside ``data/``,
  each referenced by relative path and sha256.

A dataset made elsewhere (no ``hypospace`` block) imports with ``teacher_probs`` marked unknown
(``learners.interop.unknown_probs``): protocols that need the teacher's distribution refuse it.
An episode that ends with neither termination nor truncation (a cut-off log) is marked
truncated, and the metadata lists those episodes. The reader refuses, with a ``HistoryError``
naming the file, anything that does not hold together: a symlink leading out of the dataset,
a snapshot path outside it, a checksum that does not match, a block that disagrees with the
episodes; it never builds an environment from a dataset's ``env_spec``.
"""
from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterator, Mapping

import gymnasium as gym
import minari
import numpy as np
from minari.data_collector import EpisodeBuffer
from minari.dataset.minari_dataset import parse_dataset_id
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from learners import HistoryError, LearningHistory
from learners.cache import cache_dir
from learners.files import json_value, sha256_file, to_jsonable
from learners.interop.unknown_probs import KNOWN_KEY, PLACEHOLDER, PLACEHOLDER_KEY, placeholder_probs, teacher_probs_known
from learners.provenance import run_info

ENV_VAR = "MINARI_DATASETS_PATH"
BLOCK = "hypospace"
BLOCK_FORMAT = "hypospace.LearningHistory/minari"
BLOCK_VERSION = 1
SNAPSHOT_DIR = "hypospace_snapshots"
DATA_DIR = "data"
METADATA_FILE = "metadata.json"
MAIN_FILE = "main_data.hdf5"
#: Steps per batch of episodes handed to Minari (bounds the memory of an export).
CHUNK_STEPS = 1 << 16
#: What a corrupt or hostile dataset can make Minari / h5py raise while reading.
_READ_ERRORS = (OSError, ValueError, KeyError, TypeError, AssertionError, IndexError, AttributeError, RuntimeError,
                json.JSONDecodeError, UnicodeDecodeError, RecursionError, NotImplementedError)


def minari_root(root: str | os.PathLike | None = None) -> Path:
    """Where datasets are read and written: ``root``, ``$MINARI_DATASETS_PATH`` or the project cache."""
    if root is not None:
        return Path(root)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else cache_dir("minari")


@contextlib.contextmanager
def _datasets_path(path: Path) -> Iterator[None]:
    """Point Minari at ``path`` for the duration (it reads the variable on every call)."""
    old = os.environ.get(ENV_VAR)
    os.environ[ENV_VAR] = str(path)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(ENV_VAR, None)
        else:
            os.environ[ENV_VAR] = old


def _block_digest(block: Mapping[str, Any]) -> str:
    """sha256 of the block's canonical JSON without its own digest (metadata.json has no other check)."""
    body = json.dumps({k: v for k, v in block.items() if k != "block_sha256"}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


def _check_dataset_id(dataset_id: str) -> None:
    if not isinstance(dataset_id, str) or not dataset_id:
        raise HistoryError(f"dataset id {dataset_id!r}: expected a non-empty string")
    parts = dataset_id.split("/")
    if dataset_id.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\\" in dataset_id:
        raise HistoryError(f"dataset id {dataset_id!r}: must be relative names separated by '/' (no '..')")
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError, AssertionError):
        raise HistoryError(f"dataset id {dataset_id!r}: expected (namespace/)name-v<version>, e.g. 'hypospace/darkroom-v0'") from None


# =============================================================================================
# Export
# =============================================================================================
def _spaces(history: LearningHistory, env_id: str | None, env_kwargs: Mapping[str, Any]) -> tuple[gym.Space, gym.Space, Any]:
    """(observation space, action space, env spec or None): the registered env's when it can be
    made, else spaces read off the history."""
    obs = np.asarray(history.obs[:0])
    if env_id is not None and env_id in gym.registry:
        try:
            spec = dataclasses.replace(gym.spec(env_id), kwargs={**gym.spec(env_id).kwargs, **dict(env_kwargs)})
            env = gym.make(spec)
            try:
                ospace, aspace = env.observation_space, env.action_space
            finally:
                env.close()
            spec.to_json()  # kwargs Minari cannot store: keep the id in our block only
            if (isinstance(aspace, gym.spaces.Discrete) and int(aspace.n) == history.n_actions and int(aspace.start) == 0
                    and tuple(ospace.shape or ()) == obs.shape[1:]):
                return ospace, aspace, spec
        except Exception:  # any env that cannot be built here: fall back to the history's own shapes
            pass
    if obs.ndim == 1 and obs.dtype.kind in "iu":
        hi = int(max(np.max(history.obs, initial=0), np.max(history.final_obs, initial=0) if history.final_obs is not None else 0))
        ospace = gym.spaces.Discrete(hi + 1)
    elif obs.dtype.kind in "iu":
        info = np.iinfo(obs.dtype)
        ospace = gym.spaces.Box(info.min, info.max, obs.shape[1:], obs.dtype)
    else:
        ospace = gym.spaces.Box(-np.inf, np.inf, obs.shape[1:], obs.dtype if obs.dtype.kind == "f" else np.float64)
    return ospace, gym.spaces.Discrete(history.n_actions), None


def _episode_buffers(history: LearningHistory, lo_ep: int, hi_ep: int, starts: np.ndarray) -> list[EpisodeBuffer]:
    T, A = len(history), history.n_actions
    fsteps = np.asarray(history.final_obs_step)
    out = []
    for e in range(lo_ep, hi_ep):
        a, b = int(starts[e]), int(starts[e + 1]) if e + 1 < len(starts) else T
        obs = np.asarray(history.obs[a:b])
        i = int(np.searchsorted(fsteps, b - 1))
        recorded = i < len(fsteps) and fsteps[i] == b - 1
        last = np.asarray(history.final_obs[i]) if recorded else obs[-1]
        n = b - a
        probs = np.zeros((n + 1, A), history.teacher_probs.dtype)
        probs[:n] = history.teacher_probs[a:b]
        infos: dict[str, np.ndarray] = {
            "teacher_probs": probs,
            "segment": np.r_[np.asarray(history.segment[a:b]), history.segment[b - 1]].astype(np.int64),
            "step": np.arange(a, b + 1, dtype=np.int64),
            "has_action": np.r_[np.ones(n, bool), False],
            "final_obs_recorded": np.r_[np.zeros(n, bool), recorded],
        }
        if history.teacher_values is not None:
            vals = np.zeros((n + 1, A), history.teacher_values.dtype)
            vals[:n] = history.teacher_values[a:b]
            infos["teacher_values"] = vals
        out.append(EpisodeBuffer(
            id=e, observations=np.concatenate([obs, np.asarray(last, obs.dtype)[None]]),
            actions=np.asarray(history.action[a:b]), rewards=np.asarray(history.reward[a:b]),
            terminations=np.asarray(history.terminated[a:b]), truncations=np.asarray(history.truncated[a:b]),
            infos=infos))
    return out


def to_minari(history: LearningHistory, dataset_id: str, *, root: str | os.PathLike | None = None,
              author: str | None = None, description: str | None = None, overwrite: bool = False) -> Path:
    """Write ``history`` as the Minari dataset ``dataset_id``; returns its directory.

    Written under a temporary name beside it and renamed when complete, so a failed export leaves
    nothing a reader would take for a dataset."""
    history.validate()
    _check_dataset_id(dataset_id)
    T = len(history)
    if T == 0:
        raise HistoryError("to_minari: the history has no steps (a Minari dataset needs an episode)")
    done = np.flatnonzero(history.done)
    ep = np.asarray(history.episode)
    inner = done[(done < T - 1)]
    if len(inner) and np.any(ep[inner + 1] == ep[inner]):
        bad = int(inner[ep[inner + 1] == ep[inner]][0])
        raise HistoryError(f"to_minari: step {bad} ends an episode (terminated/truncated) but episode {ep[bad]} goes on; "
                           "Minari episodes end at their last step")
    root_p = minari_root(root)
    final = root_p / dataset_id
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists (overwrite=True replaces it)")
    meta = dict(history.metadata)
    env_id = meta.get("env_id")
    env_kwargs = meta.get("env_kwargs") or {}
    ospace, aspace, spec = _spaces(history, env_id if isinstance(env_id, str) else None,
                                   env_kwargs if isinstance(env_kwargs, Mapping) else {})
    root_p.mkdir(parents=True, exist_ok=True)
    tmp_root = Path(tempfile.mkdtemp(prefix=".tmp-export-", dir=root_p))
    try:
        starts = history.episode_starts()
        teacher = meta.get("teacher") if isinstance(meta.get("teacher"), Mapping) else {}
        block = {
            "format": BLOCK_FORMAT, "version": BLOCK_VERSION,
            "n_steps": T, "n_actions": history.n_actions, "n_episodes": history.n_episodes,
            "obs_shape": list(history.obs.shape[1:]),
            "dtypes": {c: np.asarray(v[:0]).dtype.str for c, v in history.columns().items()},
            "has_teacher_values": history.teacher_values is not None,
            KNOWN_KEY: teacher_probs_known(history),
            "env_id": env_id, "env_kwargs": to_jsonable(env_kwargs),
            "teacher": to_jsonable(teacher), "seed": to_jsonable(meta.get("seed")),
            "snapshots": [],
            "metadata": to_jsonable(meta),
            "exported_by": run_info(config={"dataset_id": dataset_id}),
        }
        block["exported_by"]["versions"]["minari"] = minari.__version__
        # Episode ranges in chunks of about CHUNK_STEPS steps: a long history never sits in memory whole.
        bounds = [0]
        ends = np.r_[starts[1:], T]
        while bounds[-1] < len(starts):
            lo = bounds[-1]
            hi = int(np.searchsorted(ends, starts[lo] + CHUNK_STEPS, side="right"))
            bounds.append(max(hi, lo + 1))
        with _datasets_path(tmp_root), warnings.catch_warnings():
            # Minari's advice to fill author / code_permalink / eval_env: the block carries the provenance.
            warnings.filterwarnings("ignore", message=r".*is set to None", category=UserWarning)
            warnings.filterwarnings("ignore", message=r"env_spec is None", category=UserWarning)
            ds = minari.create_dataset_from_buffers(
                dataset_id, _episode_buffers(history, bounds[0], bounds[1], starts), env=spec,
                observation_space=ospace, action_space=aspace,
                algorithm_name=str(teacher.get("teacher", "unknown")), author=author,
                description=description or f"hypospace learning history ({T} steps, {history.n_episodes} episodes)",
                data_format="hdf5", jpeg_encoding=False)
            for lo, hi in zip(bounds[1:-1], bounds[2:]):
                ds.storage.update_episodes(_episode_buffers(history, lo, hi, starts))
            # Minari creates the dataset directory (and refuses one that exists): snapshots go in after.
            tmp_dir = tmp_root / dataset_id
            (tmp_dir / SNAPSHOT_DIR).mkdir()
            for s in history.snapshot_steps:
                name = f"{SNAPSHOT_DIR}/step_{int(s):012d}.safetensors"
                save_file({k: np.ascontiguousarray(np.asarray(v)) for k, v in history.weights_at(s).items()}, str(tmp_dir / name))
                block["snapshots"].append({"step": int(s), "file": name, "sha256": sha256_file(tmp_dir / name)})
            # HDF5 keeps no checksums of its own: a flipped byte would otherwise import silently.
            block["data_sha256"] = sha256_file(tmp_dir / DATA_DIR / MAIN_FILE)
            block = json.loads(json.dumps(block, default=json_value))   # the digest is of what is read back
            block["block_sha256"] = _block_digest(block)
            ds.storage.update_metadata({BLOCK: block})
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():   # the old dataset goes aside (removed with the temporary root) before the new one lands
            os.rename(final, tmp_root / ".replaced")
        os.rename(tmp_dir, final)
        return final
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


# =============================================================================================
# Import
# =============================================================================================
def _resolve(source: str | os.PathLike, root: str | os.PathLike | None) -> tuple[Path, str]:
    """(dataset directory, how it was named) for a path or a dataset id."""
    p = Path(source)
    if p.is_dir():
        if (p / METADATA_FILE).is_file() and p.name == DATA_DIR:
            return p.parent, str(p)
        return p, str(p)
    if isinstance(source, str) and not os.path.isabs(source):
        _check_dataset_id(source)
        d = minari_root(root) / source
        if d.is_dir():
            return d, source
    raise HistoryError(f"{source}: no such Minari dataset (a dataset directory, or an id under {minari_root(root)})")


def _inside(path: Path, top: Path, what: str) -> Path:
    """``path`` resolved (symlinks followed), refused unless it stays inside ``top``."""
    real, top_real = path.resolve(), top.resolve()
    if real != top_real and top_real not in real.parents:
        raise HistoryError(f"{path}: {what} resolves to {real}, outside the dataset {top}")
    return real


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        raise HistoryError(f"{path}: not readable JSON ({type(e).__name__}: {e})") from None
    if not isinstance(meta, dict):
        raise HistoryError(f"{path}: expected a JSON object, got {type(meta).__name__}")
    return meta


def _episodes(data: Path) -> tuple[Any, list[dict[str, Any]]]:
    """Minari's view of the dataset and every episode's arrays; any failure names the file."""
    main = data / MAIN_FILE if (data / MAIN_FILE).exists() else data
    try:
        ds = minari.MinariDataset(data)
        eps = list(ds.storage.get_episodes(range(ds.total_episodes)))
    except ImportError as e:   # an arrow dataset without pyarrow installed
        raise HistoryError(f"{data}: reading it needs a package that is not installed ({e})") from None
    except _READ_ERRORS as e:
        raise HistoryError(f"{main}: Minari cannot read it ({type(e).__name__}: {e})") from None
    return ds, eps


def _as_array(x: Any, where: str) -> np.ndarray:
    if isinstance(x, (dict, tuple, list)) and not isinstance(x, np.ndarray):
        raise HistoryError(f"{where}: a {type(x).__name__} space; a LearningHistory needs array observations and actions")
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise HistoryError(f"{where}: dtype {a.dtype} is not numeric")
    return a


def from_minari(source: str | os.PathLike, *, root: str | os.PathLike | None = None, verify: bool = True) -> LearningHistory:
    """Read a Minari dataset (a directory, or an id under ``minari_root(root)``) as a history.

    ``verify``: check the sha256 an exported dataset records of its episode file and of its
    ``hypospace`` block (snapshots are always checked); a dataset edited since (even by Minari's
    own tools) is then refused."""
    top, name = _resolve(source, root)
    data = top / DATA_DIR
    mpath = data / METADATA_FILE
    for p, what in ((data, "the data directory"), (mpath, METADATA_FILE)):
        if not p.exists():
            raise HistoryError(f"{p}: missing ({name} is not a Minari dataset)")
        _inside(p, top, what)
    raw = _read_json(mpath)
    if not isinstance(raw.get("observation_space"), str) or not isinstance(raw.get("action_space"), str):
        # Minari would otherwise build the environment named by env_spec to learn its spaces.
        raise HistoryError(f"{mpath}: fields 'observation_space' and 'action_space' missing; "
                           "refusing to build the environment from 'env_spec' to infer them")
    fmt = raw.get("data_format")
    if fmt not in ("hdf5", "arrow"):
        raise HistoryError(f"{mpath}: field 'data_format' is {fmt!r}, expected 'hdf5' or 'arrow'")
    if fmt == "hdf5" and not (data / MAIN_FILE).exists():
        raise HistoryError(f"{data / MAIN_FILE}: missing ({name} is not a Minari dataset)")
    for dirpath, dirnames, filenames in os.walk(data):   # every file Minari may open stays inside
        for f in dirnames + filenames:
            _inside(Path(dirpath) / f, top, "a data file")
    if verify and BLOCK in raw:
        digest = raw[BLOCK].get("data_sha256") if isinstance(raw[BLOCK], dict) else None
        if not isinstance(digest, str):
            raise HistoryError(f"{mpath}: field '{BLOCK}.data_sha256' missing")
        if raw[BLOCK].get("block_sha256") != _block_digest(raw[BLOCK]):
            raise HistoryError(f"{mpath}: field '{BLOCK}' does not match its 'block_sha256' (edited since export)")
        if sha256_file(data / MAIN_FILE) != digest:
            raise HistoryError(f"{data / MAIN_FILE}: sha256 does not match '{BLOCK}.data_sha256' (modified since export)")
    ds, eps = _episodes(data)
    aspace = ds.action_space
    if not isinstance(aspace, gym.spaces.Discrete):
        raise HistoryError(f"{mpath}: action space {aspace}; a LearningHistory needs Discrete actions")
    if BLOCK in raw:
        return _from_block(raw, mpath, top, eps)
    return _from_foreign(raw, mpath, top, name, eps, aspace)


def _episode_columns(ep: dict[str, Any], where: str) -> tuple[np.ndarray, ...]:
    obs = _as_array(ep["observations"], f"{where} observations")
    act = _as_array(ep["actions"], f"{where} actions")
    rew = _as_array(ep["rewards"], f"{where} rewards")
    term = _as_array(ep["terminations"], f"{where} terminations")
    trunc = _as_array(ep["truncations"], f"{where} truncations")
    n = len(rew)
    for nm, a, want in (("observations", obs, n + 1), ("actions", act, n), ("terminations", term, n), ("truncations", trunc, n)):
        if a.ndim < 1 or a.shape[0] != want:
            raise HistoryError(f"{where} {nm}: {a.shape[0] if a.ndim else 'scalar'} rows, expected {want} ({n} rewards)")
    if act.ndim != 1 or rew.ndim != 1 or term.ndim != 1 or trunc.ndim != 1:
        raise HistoryError(f"{where}: actions, rewards, terminations, truncations must be 1-d")
    return obs, act, rew, term, trunc


def _check_block(block: Any, mpath: Path) -> dict[str, Any]:
    if not isinstance(block, dict):
        raise HistoryError(f"{mpath}: field '{BLOCK}' is not an object")
    if block.get("format") != BLOCK_FORMAT or block.get("version") != BLOCK_VERSION:
        raise HistoryError(f"{mpath}: field '{BLOCK}' is format {block.get('format')!r} version {block.get('version')!r}; "
                           f"this code reads {BLOCK_FORMAT!r} version {BLOCK_VERSION}")
    kinds = {"n_steps": int, "n_actions": int, "n_episodes": int, "dtypes": dict, "has_teacher_values": bool,
             "snapshots": list, "metadata": dict, "obs_shape": list}
    for k, t in kinds.items():
        if not isinstance(block.get(k), t) or (t is int and isinstance(block.get(k), bool)):
            raise HistoryError(f"{mpath}: field '{BLOCK}.{k}' missing or not {t.__name__}")
    cols = ["obs", "action", "reward", "terminated", "truncated", "episode", "teacher_probs", "segment"]
    dts = {}
    for c in cols + (["teacher_values"] if block["has_teacher_values"] else []):
        v = block["dtypes"].get(c)
        try:
            if not isinstance(v, str):
                raise TypeError
            dts[c] = np.dtype(v)
        except (TypeError, ValueError, SyntaxError):
            raise HistoryError(f"{mpath}: field '{BLOCK}.dtypes.{c}' is {v!r}, not a dtype") from None
        if dts[c].kind not in "biuf":
            raise HistoryError(f"{mpath}: field '{BLOCK}.dtypes.{c}' is {dts[c]}, not numeric")
    return dts


def _cast(a: np.ndarray, dtype: np.dtype, where: str) -> np.ndarray:
    """``a`` as ``dtype``, refused unless every value survives the cast (a lying block cannot
    silently round or wrap the data)."""
    with np.errstate(all="ignore"):
        b = a.astype(dtype, copy=False)
        same = b.shape == a.shape and np.array_equal(b.astype(a.dtype), a, equal_nan=a.dtype.kind == "f")
    if not same:
        raise HistoryError(f"{where}: values of dtype {a.dtype} do not fit the recorded dtype {dtype}")
    return b


def _info(infos: Any, key: str, rows: int, where: str) -> np.ndarray:
    if not isinstance(infos, dict) or key not in infos:
        raise HistoryError(f"{where}: infos lack '{key}'")
    a = np.asarray(infos[key])
    if a.ndim < 1 or a.shape[0] != rows or a.dtype.kind not in "biuf":
        raise HistoryError(f"{where}: infos['{key}'] is {a.dtype}{list(a.shape)}, expected {rows} numeric rows")
    return a


def _from_block(raw: dict[str, Any], mpath: Path, top: Path, eps: list[dict[str, Any]]) -> LearningHistory:
    block = raw[BLOCK]
    dts = _check_block(block, mpath)
    A = block["n_actions"]
    if len(eps) != block["n_episodes"]:
        raise HistoryError(f"{mpath}: field '{BLOCK}.n_episodes' is {block['n_episodes']}, the dataset has {len(eps)} episodes")
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "action", "reward", "terminated", "truncated", "episode",
                                                          "teacher_probs", "segment", "teacher_values")}
    fsteps, fobs = [], []
    t = 0
    for e, ep in enumerate(eps):
        where = f"{mpath.parent / MAIN_FILE}: episode {e}"
        obs, act, rew, term, trunc = _episode_columns(ep, where)
        n = len(rew)
        if n == 0:
            raise HistoryError(f"{where}: no steps (an exported history has none empty)")
        infos = ep.get("infos")
        step = _info(infos, "step", n + 1, where)
        if not np.array_equal(step, np.arange(t, t + n + 1)):
            raise HistoryError(f"{where}: infos['step'] is not {t}..{t + n}: episodes missing, reordered or edited")
        probs = _info(infos, "teacher_probs", n + 1, where)
        if probs.shape[1:] != (A,):
            raise HistoryError(f"{where}: infos['teacher_probs'] has shape {probs.shape}, expected [{n + 1}, {A}]")
        rec = _info(infos, "final_obs_recorded", n + 1, where)
        cols["obs"].append(obs[:n])
        cols["action"].append(act)
        cols["reward"].append(rew)
        cols["terminated"].append(term)
        cols["truncated"].append(trunc)
        cols["episode"].append(np.full(n, e, np.int64))
        cols["teacher_probs"].append(probs[:n])
        cols["segment"].append(_info(infos, "segment", n + 1, where)[:n])
        if block["has_teacher_values"]:
            vals = _info(infos, "teacher_values", n + 1, where)
            if vals.shape[1:] != (A,):
                raise HistoryError(f"{where}: infos['teacher_values'] has shape {vals.shape}, expected [{n + 1}, {A}]")
            cols["teacher_values"].append(vals[:n])
        if bool(rec[-1]):
            fsteps.append(t + n - 1)
            fobs.append(obs[n])
        t += n
    if t != block["n_steps"]:
        raise HistoryError(f"{mpath}: field '{BLOCK}.n_steps' is {block['n_steps']}, the episodes hold {t} steps")
    arr = {k: np.concatenate(v) for k, v in cols.items() if v}
    arr = {k: (_cast(v, dts[k], f"{mpath}: column '{k}'") if k in dts else v) for k, v in arr.items()}
    obs_all = arr["obs"]
    if list(obs_all.shape[1:]) != block["obs_shape"]:
        raise HistoryError(f"{mpath}: observations have shape {list(obs_all.shape[1:])}, '{BLOCK}.obs_shape' says {block['obs_shape']}")
    fo = np.stack(fobs) if fobs else np.zeros((0, *obs_all.shape[1:]), obs_all.dtype)
    final = (np.array(fsteps, np.int64), _cast(fo, dts["obs"], f"{mpath}: final observations"))
    snapshots = _read_snapshots(block["snapshots"], mpath, top, t)
    return _validated(mpath.parent / MAIN_FILE,
        obs=arr["obs"], action=arr["action"], reward=arr["reward"], terminated=arr["terminated"].astype(bool),
        truncated=arr["truncated"].astype(bool), episode=arr["episode"], teacher_probs=arr["teacher_probs"],
        teacher_values=arr.get("teacher_values"), segment=arr["segment"], final_obs=final, snapshots=snapshots,
        metadata=block["metadata"])


def _validated(main: Path, **columns: Any) -> LearningHistory:
    """``LearningHistory.from_arrays`` whose validation errors name the dataset file they came from."""
    try:
        return LearningHistory.from_arrays(**columns)
    except HistoryError as e:
        raise HistoryError(f"{main}: {e}") from None


def _read_snapshots(entries: list[Any], mpath: Path, top: Path, T: int) -> dict[int, dict[str, np.ndarray]]:
    out: dict[int, dict[str, np.ndarray]] = {}
    for i, s in enumerate(entries):
        if not (isinstance(s, dict) and isinstance(s.get("file"), str) and isinstance(s.get("sha256"), str)
                and isinstance(s.get("step"), int) and not isinstance(s.get("step"), bool)):
            raise HistoryError(f"{mpath}: field '{BLOCK}.snapshots[{i}]' needs step (int), file and sha256 (strings)")
        if not 0 <= s["step"] <= T or s["step"] in out:
            raise HistoryError(f"{mpath}: field '{BLOCK}.snapshots[{i}].step' is {s['step']}: outside 0..{T} or repeated")
        rel = Path(s["file"])
        if rel.is_absolute() or ".." in rel.parts or not rel.parts or rel.parts[0] != SNAPSHOT_DIR:
            raise HistoryError(f"{mpath}: snapshot file {s['file']!r} is not a path inside {SNAPSHOT_DIR}/")
        p = top / rel
        if not p.is_file():
            raise HistoryError(f"{p}: missing (listed in '{BLOCK}.snapshots')")
        _inside(p, top, "snapshot file")
        if sha256_file(p) != s["sha256"]:
            raise HistoryError(f"{p}: sha256 does not match '{BLOCK}.snapshots'")
        try:
            out[s["step"]] = load_file(str(p))
        except (SafetensorError, OSError, ValueError) as e:
            raise HistoryError(f"{p}: not a readable safetensors file ({e})") from None
    return out


def _from_foreign(raw: dict[str, Any], mpath: Path, top: Path, name: str, eps: list[dict[str, Any]],
                  aspace: gym.spaces.Discrete) -> LearningHistory:
    start, A = int(aspace.start), int(aspace.n)
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "action", "reward", "terminated", "truncated", "episode")}
    fsteps, fobs, forced, empty = [], [], [], []
    t = e_out = 0
    for e, ep in enumerate(eps):
        where = f"{mpath.parent / MAIN_FILE}: episode {e}"
        obs, act, rew, term, trunc = _episode_columns(ep, where)
        n = len(rew)
        if n == 0:
            empty.append(e)
            continue
        if act.dtype.kind not in "iu" and not np.all(act == np.round(act)):
            raise HistoryError(f"{where} actions: not integers")
        a = act.astype(np.int64) - start
        if a.min() < 0 or a.max() >= A:
            raise HistoryError(f"{where} actions: outside the action space {aspace}")
        term, trunc = term.astype(bool), trunc.astype(bool).copy()
        if not (term[-1] or trunc[-1]):
            trunc[-1] = True   # a cut-off log: the episode ended here without a terminal state
            forced.append(e)
        if np.any((term | trunc)[:-1]):
            raise HistoryError(f"{where}: ends (terminated/truncated) at step {int(np.flatnonzero((term | trunc)[:-1])[0])} "
                               "before its last step")
        for k, v in (("obs", obs[:n]), ("action", a), ("reward", rew.astype(np.float64)), ("terminated", term),
                     ("truncated", trunc), ("episode", np.full(n, e_out, np.int64))):
            parts[k].append(v)
        fsteps.append(t + n - 1)
        fobs.append(obs[n])
        t += n
        e_out += 1
    if t == 0:
        raise HistoryError(f"{mpath.parent / MAIN_FILE}: no steps in any episode")
    arr = {k: np.concatenate(v) for k, v in parts.items()}
    meta_keys = ("dataset_id", "algorithm_name", "author", "code_permalink", "minari_version", "description")
    env_id = None
    if isinstance(raw.get("env_spec"), str):
        try:
            env_id = json.loads(raw["env_spec"]).get("id")
        except (json.JSONDecodeError, AttributeError):
            env_id = None
    metadata = {
        "env_id": env_id,
        "teacher": {"teacher": str(raw.get("algorithm_name") or "unknown")},
        KNOWN_KEY: False,
        PLACEHOLDER_KEY: PLACEHOLDER,
        "source": {"format": "minari", "path": str(top), **{k: to_jsonable(raw.get(k)) for k in meta_keys if k in raw}},
        "minari_import": {"forced_truncation_episodes": forced, "skipped_empty_episodes": empty,
                          "action_start": start},
    }
    try:
        obs_all = arr["obs"]
        final = (np.array(fsteps, np.int64), np.stack(fobs).astype(obs_all.dtype))
    except ValueError as e:
        raise HistoryError(f"{mpath.parent / MAIN_FILE}: observations of different shapes across episodes ({e})") from None
    return _validated(mpath.parent / MAIN_FILE,
        obs=obs_all, action=arr["action"], reward=arr["reward"], terminated=arr["terminated"],
        truncated=arr["truncated"], episode=arr["episode"], teacher_probs=placeholder_probs(arr["action"], A),
        final_obs=final, metadata=metadata)


__all__ = ["to_minari", "from_minari", "minari_root", "ENV_VAR", "BLOCK"]
