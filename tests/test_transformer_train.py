"""Training the AD transformer: it learns in context, kill/resume is exact, DDP equals one process,
bad checkpoints and data are refused with clear errors, the CLI exits 2 on bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from learners.transformer.corpus import DataSpec, build_corpus
from learners.history import LearningHistory
from learners.transformer.data import DataError, PackedStore, pack_histories
from learners.transformer.model import ModelConfig
from learners.transformer.presets import env_model_fields, preset
from learners.errors import CheckpointError
from learners.logger import read_metrics
from learners.transformer.checkpoint import latest_checkpoint, load_model_weights, model_from_checkpoint
from learners.transformer.train import TrainConfig, train

REPO = Path(__file__).resolve().parents[1]


# These models are tiny: one thread is faster than two, and much faster on a loaded machine.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("adcache")


@pytest.fixture(scope="module")
def smoke(cache):
    """The Dark Room smoke preset's data (recorded once for the module)."""
    P = preset("darkroom", "smoke")
    spec = DataSpec(**P["data"])
    model = ModelConfig(**{**P["model"], **env_model_fields(spec.env_id, spec.split),
                           "dropout": 0.1, "attn_dropout": 0.1, "embd_dropout": 0.1})
    return spec, model, P["train"], build_corpus(spec, cache), build_corpus(spec, cache, which="val")


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run_dir / "model" / "model.safetensors"))


def test_kill_and_resume_gives_the_same_weights(smoke, tmp_path):
    spec, mcfg, tdict, store, val = smoke
    tc = TrainConfig(**{**tdict, "steps": 14, "checkpoint_every": 4, "eval_every": 7})
    full = train(mcfg, tc, store, tmp_path / "full", val_store=val, progress=False, data_info=spec.to_dict())
    killed = train(mcfg, tc, store, tmp_path / "killed", val_store=val, progress=False, data_info=spec.to_dict(), stop_after=10)
    assert killed.step == 10 and not (tmp_path / "killed" / "model").exists()
    assert latest_checkpoint(tmp_path / "killed").name == "step_00000008"
    resumed = train(mcfg, tc, store, tmp_path / "killed", val_store=val, progress=False, data_info=spec.to_dict(), resume=True)
    assert resumed.step == 14
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "killed")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # The resumed run's log is the unkilled run's log (but for its timings).
    a, b = read_metrics(tmp_path / "full" / "log.csv"), read_metrics(tmp_path / "killed" / "log.csv")
    for name in ("losses/loss", "losses/kl_bits", "losses/val_kl_bits", "charts/tokens"):
        assert np.array_equal(a[name][0], b[name][0]) and np.array_equal(a[name][1], b[name][1]), name
    steps = list(b["losses/loss"][0])
    assert steps == sorted(set(steps))  # the rows the killed run wrote past its checkpoint were dropped


def test_bad_checkpoints_are_refused_clearly(smoke, tmp_path):
    spec, mcfg, tdict, store, _ = smoke
    tc = TrainConfig(**{**tdict, "steps": 4, "checkpoint_every": 2})
    train(mcfg, tc, store, tmp_path / "run", progress=False, data_info=spec.to_dict())
    model, _ = model_from_checkpoint(tmp_path / "run" / "model")
    # Another model config.
    from learners.transformer.model import ADTransformer

    other = ADTransformer(ModelConfig(**{**mcfg.to_dict(), "d_model": 64}))
    with pytest.raises(CheckpointError, match="another model config.*d_model"):
        load_model_weights(other, tmp_path / "run" / "model")
    # Resuming with another config names the field.
    with pytest.raises(CheckpointError, match="another train config.*lr"):
        train(mcfg, TrainConfig(**{**tdict, "steps": 6, "checkpoint_every": 2, "lr": 0.5}), store, tmp_path / "run",
              progress=False, data_info=spec.to_dict(), resume=True)
    # A corrupt file (one flipped byte).
    ck = latest_checkpoint(tmp_path / "run")
    p = ck / "model.safetensors"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="corrupt"):
        train(mcfg, TrainConfig(**{**tdict, "steps": 6, "checkpoint_every": 2}), store, tmp_path / "run",
              progress=False, data_info=spec.to_dict(), resume=True)
    (tmp_path / "run" / "model" / "meta.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="corrupt"):
        model_from_checkpoint(tmp_path / "run" / "model")
    with pytest.raises(CheckpointError, match="nothing to resume"):
        train(mcfg, tc, store, tmp_path / "empty", progress=False, resume=True)


def test_data_that_does_not_fit_the_model_is_refused(smoke, tmp_path):
    spec, mcfg, tdict, store, _ = smoke
    with pytest.raises(DataError, match="actions"):
        train(ModelConfig(**{**mcfg.to_dict(), "n_actions": 4}), TrainConfig(**tdict), store, tmp_path / "x", progress=False)
    with pytest.raises(DataError, match="observations"):
        train(ModelConfig(**{**mcfg.to_dict(), "obs_encoder": "table", "obs_n": 50}), TrainConfig(**tdict), store,
              tmp_path / "y", progress=False)



def test_histories_without_teacher_probabilities_train_only_on_actions(tmp_path):
    """A history imported with only its actions (placeholder teacher_probs) is packed with that
    mark; a KL-to-teacher loss refuses it, the cross-entropy on the actions trains on it."""
    rng = np.random.default_rng(0)
    T = 200
    a = rng.integers(0, 3, T)
    h = LearningHistory.from_arrays(obs=np.zeros(T, np.int64), action=a, reward=rng.random(T),
                                    teacher_probs=np.eye(3)[a], terminated=np.ones(T, bool), truncated=np.zeros(T, bool),
                                    metadata={"teacher_probs_known": False})
    store = PackedStore.open(pack_histories([h], tmp_path / "packed"))
    assert store.manifest["teacher_probs_known"] is False
    mcfg = ModelConfig(n_actions=3, obs_encoder="table", obs_n=1, context=20, n_layer=1, n_head=1, d_model=8,
                       dropout=0.0, attn_dropout=0.0, embd_dropout=0.0)
    base = {"steps": 2, "batch_size": 2, "warmup_steps": 0, "eval_every": 0, "checkpoint_every": 10}
    with pytest.raises(DataError, match="placeholders.*loss 'ce'"):
        train(mcfg, TrainConfig(**base, loss="kl"), store, tmp_path / "kl", progress=False)
    assert train(mcfg, TrainConfig(**base, loss="ce"), store, tmp_path / "ce", progress=False).step == 2

def test_it_learns_to_improve_in_context_on_held_out_bandits(cache, tmp_path):
    """Noise-injected bandit histories (uniform -> best arm over 16 pulls): the trained model's
    in-context regret on held-out bandits falls within the run and ends far below uniform."""
    spec = DataSpec(env_id="hypospace/Bandit-v0", split={"n_arms": 3, "n_train": 300, "n_test": 30}, source="noisy_optimal",
                    seeds_per_task=1, episodes=40, noise_episodes=16, noise_final=0.0, val_tasks=0)
    store = build_corpus(spec, cache)
    mcfg = ModelConfig(n_actions=3, obs_encoder="table", obs_n=1, grid_shape=(1, 1), context=40, n_layer=2, n_head=2,
                       d_model=32, dropout=0.0, attn_dropout=0.0, embd_dropout=0.0)
    tc = TrainConfig(steps=250, batch_size=32, lr=3e-3, warmup_steps=20, log_every=50, eval_every=0, checkpoint_every=1000)
    res = train(mcfg, tc, store, tmp_path / "b", progress=False)
    from envs.tasks import task_split
    from learners.transformer.incontext import incontext_rollouts

    tasks = task_split(spec.env_id, seed=0, **spec.split).test
    r = incontext_rollouts(res.model, spec.env_id, tasks, [0, 1], 40)
    means = np.repeat(np.array([t["means"] for t in tasks]), 2, axis=0)
    regret = means.max(1)[:, None] - np.take_along_axis(means, r.actions, 1)
    uniform = float((means.max(1) - means.mean(1)).mean())
    first, last = regret[:, :5].mean(), regret[:, -10:].mean()
    assert first > 0.6 * uniform          # starts near random ...
    assert last < 0.35 * uniform          # ... and ends near the best arm, by in-context learning alone
    assert res.log[-1]["kl_bits"] < res.log[0]["kl_bits"]


def _cli(*args: str, env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    e = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=timeout, env=e)


def _main(capsys, *argv: str) -> tuple[int, str, str]:
    from experiments.train_transformer import main

    try:
        code = main(list(argv))
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_help_and_bad_input_exit_2(tmp_path, capsys):
    code, out, _ = _main(capsys, "--help")
    assert code == 0 and "--subsample" in out and "--model-d-model" in out and "--data-seeds-per-task" in out
    (tmp_path / "exists").mkdir()
    (tmp_path / "exists" / "f").write_text("x")
    code, _, err = _main(capsys, "--preset", "smoke", "--out", str(tmp_path / "exists"))
    assert code == 2 and "already exists" in err and len(err.strip().splitlines()) == 1
    code, _, err = _main(capsys, "--preset", "smoke", "--out", str(tmp_path / "n"), "--subsample", "[0]")
    assert code == 2 and "subsample" in err
    code, _, err = _main(capsys, "--preset", "smoke", "--out", str(tmp_path / "n"), "--model-n-head", "3")
    assert code == 2 and "n_head" in err
    code, _, err = _main(capsys, "--resume", "--out", str(tmp_path / "nothing"))
    assert code == 2 and "nothing to resume" in err
    assert not (tmp_path / "n").exists()


def test_ddp_two_processes_match_one_process(cache, tmp_path):
    """torchrun with 2 gloo processes = 1 process with the same global batch and micro-batches."""
    common = ["--env", "darkroom", "--preset", "smoke", "--cache-dir", str(cache), "--no-progress", "--steps", "12",
              "--micro-batches", "2", "--log-every", "1", "--model-dropout", "0.1", "--model-attn-dropout", "0.1"]
    one = _cli("experiments.train_transformer", *common, "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    two = _cli("torch.distributed.run", "--nproc-per-node", "2", "--master-port", str(29500 + os.getpid() % 1000),
               "-m", "experiments.train_transformer", *common, "--out", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr
    names = ("charts/learning_rate", "losses/loss", "losses/kl_bits")
    load = lambda p: np.array([read_metrics(p / "log.csv")[n][1] for n in names])  # noqa: E731
    a, b = load(tmp_path / "one"), load(tmp_path / "two")
    assert a.shape == b.shape == (3, 12)
    assert np.allclose(a, b, rtol=1e-5, atol=1e-7)
    wa, wb = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    assert all(torch.allclose(wa[k], wb[k], atol=1e-6) for k in wa)
    cfg = json.loads((tmp_path / "two" / "config.json").read_text())
    assert cfg["config"]["train"]["micro_batches"] == 2


@pytest.mark.slow
def test_cli_sigkill_then_resume_gives_the_same_weights(cache, tmp_path):
    """A real kill (SIGKILL mid-run) of the CLI, then --resume: same weights as an unkilled run."""
    import signal
    import time

    common = ["-m", "experiments.train_transformer", "--env", "darkroom", "--preset", "smoke", "--cache-dir", str(cache),
              "--no-progress", "--steps", "400", "--checkpoint-every", "40", "--model-dropout", "0.1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    full = subprocess.run([sys.executable, *common, "--out", str(tmp_path / "full")], cwd=REPO, env=env, capture_output=True, text=True)
    assert full.returncode == 0, full.stderr
    p = subprocess.Popen([sys.executable, *common, "--out", str(tmp_path / "k")], cwd=REPO, env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not (tmp_path / "k" / "checkpoints" / "step_00000080").exists():
        time.sleep(0.05)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert not (tmp_path / "k" / "model").exists()  # killed before the end
    r = subprocess.run([sys.executable, "-m", "experiments.train_transformer", "--resume", "--out", str(tmp_path / "k"),
                        "--cache-dir", str(cache), "--no-progress"], cwd=REPO, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "k")
    assert all(torch.equal(a[k], b[k]) for k in a)
