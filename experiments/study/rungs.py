"""The complexity ladder: each rung is a named, fully specified configuration.

A ``Rung`` fixes the env and its task split (train / validation / test tasks), the teacher (as a
program of the mixture's grammar, so that the teacher is inside the idealized imitator's class
and its exact registered implementation is ``learners.solomonoff.draw.teacher_for``), how long
the recorded histories are, the Q2 truncation points, the mixture's budget and the
transformer's data, model and training settings. Presets (``smoke``, ``default``, ``paper``)
are lists of rungs; ``--help`` of ``python -m experiments.study`` prints the preset's values.

Units: every length is in episodes (a bandit episode is one pull). ``Ts`` are the Q2 truncation
points; the imitator then acts alone until ``k * T``; the teacher's recorded histories must
cover ``k * max(Ts)`` episodes, since the teacher's own continuation past T is the reference.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

#: The standard tabular teacher of the toy rungs (Dark Room, Chain): Q-learning, epsilon 0.1.
Q_TEACHER = "QLearning(init=0, alpha=1/4, gamma=9/10, explore=eps_greedy(1/10))"
#: The bandit teacher: Thompson sampling with a uniform Beta(1, 1) prior.
THOMPSON = "Thompson(alpha=1, beta=1)"
#: A teacher of the same family with coarser parameters (27 bits), so that the smoke preset's
#: small mixture holds it: the smoke study checks the pipeline, not the ladder.
Q_TEACHER_SMOKE = "QLearning(init=0, alpha=1/2, gamma=7/8, explore=eps_greedy(1/8))"
SMOKE_PARTS = {"init": 1, "alpha": 3, "target": 7, "gamma": 9, "explore": 9}
#: RiverSwim needs exploration: epsilon-greedy Q-learning from zero values never learns to swim
#: (its return stays at 0.02 of optimal for 200 episodes), so the chain's teachers explore by
#: optimism (smoke: learns within ~25 episodes) or by a count bonus (learns over ~200 episodes).
CHAIN_TEACHER_SMOKE = "QLearning(init=1, alpha=1/2, gamma=7/8, explore=eps_greedy(1/8))"
CHAIN_SMOKE_PARTS = {"init": 5, "alpha": 3, "target": 7, "gamma": 9, "explore": 9}
CHAIN_TEACHER = "QLearning(init=0, alpha=1/4, gamma=9/10, explore=count_bonus(1))"
#: TD part caps that keep the standard teacher inside the mixture's space (34 bits) at a size
#: a CPU evaluates in seconds per history.
TD_PARTS = {"init": 1, "alpha": 5, "target": 7, "gamma": 9, "explore": 11}


@dataclass
class MixtureSpec:
    """The idealized imitator's budget on a rung (``Mixture.for_env`` arguments)."""

    max_bits: float
    part_budgets: dict | None = None
    kind_budgets: dict | None = None
    #: Behavioural dedup probes (``Mixture`` arguments): fewer/shorter probes build faster
    #: (Thompson programs cost a quadrature per probe step) but may merge programs that
    #: differ only later than the probes look.
    probe_length: int = 600
    probe_count: int = 4


@dataclass
class TransformerSpec:
    """The AD transformer on a rung: its training histories, model, optimisation, acting."""

    model: dict
    train: dict
    train_episodes: int            # episodes per training history (whole learning runs)
    seeds_per_task: int            # training histories per training task
    expert_last: int = 20          # expert distillation: train on each history's final N episodes
    #: How a truncated history conditions the model: "subsampled" keeps the episodes before T at
    #: the model's smallest training stride (what its training windows look like),
    #: "contiguous" the last episodes before T (what a step-by-step observe leaves).
    conditioning: str = "subsampled"
    #: When the context is full it slides back by this fraction of the window to an episode start.
    slide: float = 0.5


@dataclass
class Rung:
    name: str
    label: str
    env_id: str
    split: dict                    # kwargs of envs.tasks.task_split
    n_val: int                     # validation tasks carved from the training side
    n_train: int                   # training tasks used (0 = all left after validation)
    n_test: int                    # held-out test tasks scored
    teacher: str                   # program text (mixture grammar)
    history_episodes: int          # length of every test-task teacher history
    Ts: tuple                      # Q2 truncation points (episodes)
    Ts_beyond: tuple               # Q2-beyond truncation points (a transformer per T)
    k: int = 4
    window_frac: float = 0.25      # returns at T and kT: mean over the last max(3, frac*T) episodes
    q1_episodes: int = 20          # Q1: episodes the conditioned imitator acts for
    q3_episodes: int = 40          # Q3: episodes on the new task
    mixture: MixtureSpec | None = None
    mixture_cannot: str = ""       # why the mixture cannot run here (when mixture is None)
    transformer: TransformerSpec | None = None
    #: Q3 transplant: {"to": name of another rung of the preset}: conditioned here, then that rung's
    #: tasks (another size or kind of env); None: no transplant from this rung.
    transplant: dict | None = None

    def window(self, T: int) -> int:
        return max(3, int(round(self.window_frac * T)))

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self), default=list))

    def key(self) -> str:
        """A hash of everything that determines the rung's data and results."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]

    def check(self) -> None:
        """Refuse a rung whose Q2 runs would outlast the recorded teacher histories."""
        for T in tuple(self.Ts) + tuple(self.Ts_beyond):
            if T < 2:
                raise ValueError(f"rung {self.name}: T={T} must be at least 2 episodes")
            if self.k * T > self.history_episodes:
                raise ValueError(f"rung {self.name}: T={T} needs the teacher's history up to k*T={self.k * T} episodes; "
                                 f"its histories have {self.history_episodes}")
        if self.transformer is not None and self.transformer.conditioning not in ("subsampled", "contiguous"):
            raise ValueError(f"rung {self.name}: conditioning must be subsampled or contiguous")


def _tf(model: dict, train: dict, **kw: Any) -> TransformerSpec:
    base_model = {"n_layer": 2, "n_head": 2, "d_model": 32, "dropout": 0.0, "attn_dropout": 0.0, "embd_dropout": 0.0}
    base_train = {"batch_size": 16, "lr": 2e-3, "min_lr": 2e-4, "warmup_steps": 10, "log_every": 50,
                  "eval_every": 0, "checkpoint_every": 10_000}
    return TransformerSpec(model={**base_model, **model}, train={**base_train, **train}, **kw)


_SMALL_KINDS = {"Constant": 12, "Stochastic": 12, "Cyclic": 12, "Reactive": 12}


def _transplants(rungs: list[Rung], **to: str) -> list[Rung]:
    """Set each named rung's Q3 transplant target (another rung of the same preset)."""
    for r in rungs:
        if r.name in to:
            r.transplant = {"to": to[r.name]}
    return rungs


def _smoke() -> list[Rung]:
    return _transplants([
        Rung("bandit5", "Bernoulli bandit, 5 arms", "hypospace/Bandit-v0",
             {"n_arms": 5, "n_train": 40, "n_test": 4}, n_val=4, n_train=0, n_test=4, teacher=THOMPSON,
             history_episodes=120, Ts=(10, 30), Ts_beyond=(30,), k=4, q1_episodes=20, q3_episodes=60,
             mixture=MixtureSpec(12.0, kind_budgets={"Thompson": 7}),
             transformer=_tf({"obs_encoder": "table", "context": 60},
                             {"steps": 60, "subsample": [1]}, train_episodes=120, seeds_per_task=1, expert_last=20)),
        Rung("darkroom5", "Dark Room 5x5", "hypospace/DarkRoom-v0", {"size": 5}, n_val=3, n_train=8, n_test=3,
             teacher=Q_TEACHER_SMOKE, history_episodes=60, Ts=(5, 15), Ts_beyond=(15,), k=4, q1_episodes=6,
             q3_episodes=12, mixture=MixtureSpec(27.0, SMOKE_PARTS, _SMALL_KINDS),
             transformer=_tf({"obs_encoder": "grid", "context": 80},
                             {"steps": 60, "subsample": [1, 2]}, train_episodes=60, seeds_per_task=1, expert_last=10)),
        Rung("chain6", "RiverSwim chain, 6 states", "hypospace/Chain-v0", {"n": 6}, n_val=1, n_train=0, n_test=2,
             teacher=CHAIN_TEACHER_SMOKE, history_episodes=48, Ts=(4, 8), Ts_beyond=(8,), k=4, q1_episodes=4,
             q3_episodes=12, mixture=MixtureSpec(30.0, CHAIN_SMOKE_PARTS, _SMALL_KINDS),
             transformer=_tf({"obs_encoder": "table", "context": 90},
                             {"steps": 60, "subsample": [1]}, train_episodes=48, seeds_per_task=1, expert_last=8)),
    ], darkroom5="chain6")


def _opt(steps: int, subsample: list[int], batch_size: int = 32) -> dict[str, Any]:
    """The default preset's optimisation: AdamW 1e-3 -> 1e-4 (cosine), 100 warmup updates."""
    return {"steps": steps, "batch_size": batch_size, "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100,
            "subsample": subsample, "checkpoint_every": 200}  # a killed study loses minutes, not a model


def _ladder() -> list[Rung]:
    """Every toy rung at the ``default`` preset's size (``paper`` scales them up)."""
    med = {"n_layer": 4, "n_head": 4, "d_model": 64, "dropout": 0.1, "embd_dropout": 0.1}
    kinds = {"Constant": 22, "Stochastic": 20, "Cyclic": 22, "Reactive": 22}
    return _transplants([
        Rung("bandit5", "Bernoulli bandit, 5 arms", "hypospace/Bandit-v0",
             {"n_arms": 5, "n_train": 2000, "n_test": 20}, n_val=50, n_train=0, n_test=20, teacher=THOMPSON,
             history_episodes=400, Ts=(25, 50, 100), Ts_beyond=(50,), k=4, q1_episodes=50, q3_episodes=100,
             # Thompson programs cost a quadrature per program per step: keep 17 of them.
             mixture=MixtureSpec(16.0, kind_budgets={"Thompson": 9}),
             transformer=_tf({**med, "obs_encoder": "table", "context": 100},
                             _opt(1500, [1], batch_size=64), train_episodes=400, seeds_per_task=1, expert_last=50)),
        Rung("darkroom5", "Dark Room 5x5", "hypospace/DarkRoom-v0", {"size": 5}, n_val=4, n_train=0, n_test=5,
             teacher=Q_TEACHER, history_episodes=200, Ts=(10, 25, 50), Ts_beyond=(25,), k=4, q1_episodes=20,
             q3_episodes=40, mixture=MixtureSpec(34.0, TD_PARTS, kinds),
             transformer=_tf({**med, "obs_encoder": "grid", "context": 200},
                             _opt(1200, [2, 4, 8]), train_episodes=200, seeds_per_task=16, expert_last=20)),
        Rung("darkroom9", "Dark Room 9x9", "hypospace/DarkRoom-v0", {"size": 9}, n_val=12, n_train=0, n_test=16,
             teacher=Q_TEACHER, history_episodes=400, Ts=(25, 50, 100), Ts_beyond=(50,), k=4, q1_episodes=20,
             q3_episodes=40, mixture=MixtureSpec(34.0, TD_PARTS, kinds),
             transformer=_tf({**med, "obs_encoder": "grid", "context": 200},
                             _opt(2000, [8, 16, 32]), train_episodes=300, seeds_per_task=8, expert_last=20)),
        Rung("darkroom13", "Dark Room 13x13", "hypospace/DarkRoom-v0", {"size": 13, "episode_len": 30}, n_val=16,
             n_train=64, n_test=16, teacher=Q_TEACHER, history_episodes=600, Ts=(50, 100, 150), Ts_beyond=(100,), k=4,
             q1_episodes=20, q3_episodes=40, mixture=MixtureSpec(30.0, TD_PARTS, {"Constant": 18, "Stochastic": 16}),
             transformer=_tf({**med, "obs_encoder": "grid", "context": 300},
                             _opt(2000, [8, 16, 32]), train_episodes=600, seeds_per_task=4, expert_last=20)),
        Rung("keytodoor5", "Dark Key-to-Door 5x5", "hypospace/DarkKeyToDoor-v0", {"size": 5, "episode_len": 30,
             "n_train": 200, "n_test": 16}, n_val=16, n_train=64, n_test=16, teacher=Q_TEACHER, history_episodes=600,
             Ts=(50, 100, 150), Ts_beyond=(100,), k=4, q1_episodes=20, q3_episodes=40,
             mixture=MixtureSpec(30.0, TD_PARTS, {"Constant": 18, "Stochastic": 16}),
             transformer=_tf({**med, "obs_encoder": "table", "context": 240},
                             _opt(2000, [8, 16, 32]), train_episodes=600, seeds_per_task=4, expert_last=20)),
        Rung("chain6", "RiverSwim chain, 6 states", "hypospace/Chain-v0", {"n": 6}, n_val=1, n_train=0, n_test=2,
             teacher=CHAIN_TEACHER, history_episodes=400, Ts=(10, 25, 50), Ts_beyond=(25,), k=4, q1_episodes=20,
             q3_episodes=40, mixture=MixtureSpec(34.0, TD_PARTS, kinds),
             transformer=_tf({**med, "obs_encoder": "table", "context": 150},
                             _opt(1200, [2, 4, 8]), train_episodes=400, seeds_per_task=32, expert_last=20)),
    ], darkroom5="darkroom9", darkroom9="darkroom13", darkroom13="keytodoor5")


#: Rungs of the ladder that ``default`` leaves to ``paper``: measured on 2 cores, bandit5, Dark Room
#: 5x5 and 9x9 took 2 h (histories 4 min, bandit5 10 min, 5x5 30 min, 9x9 79 min); one Dark Room
#: 13x13 model took 15 min per worker (6 models, 3x9x9's cells), so with Key-to-Door (the same
#: size) the ladder took ~7 h, not the <= 4 h of ``default``.
PAPER_ONLY = ("darkroom13", "keytodoor5")


def _default() -> tuple[list[Rung], list[Rung]]:
    """The ladder that fits ~2.5 h of 2 cores, and Dark Room 13x13 as Dark Room 9x9's Q3
    transplant target only (its tasks and a fresh teacher on them; no model, no cells)."""
    ladder = _ladder()
    return ([r for r in ladder if r.name not in PAPER_ONLY],
            [r for r in ladder if r.name == "darkroom13"])


def _default_preset() -> Preset:
    rungs, targets = _default()
    return Preset("default", rungs, teacher_seeds=2, train_seeds=3, targets=targets,
                  notes="the toy ladder that fits ~2.5 h of 2 CPU cores (Dark Room 13x13 and Key-to-Door are "
                        "paper's); Q2-beyond at one T per rung")


def _paper() -> list[Rung]:
    rungs = _ladder()
    for r in rungs:
        r.Ts_beyond = tuple(r.Ts)  # the full grid: a transformer per T
        if r.transformer is not None:
            r.transformer.train["steps"] = 4 * int(r.transformer.train["steps"])
            r.transformer.seeds_per_task *= 2
            r.transformer.model["d_model"] = 128
    return rungs


@dataclass
class Preset:
    name: str
    rungs: list[Rung]
    teacher_seeds: int             # independent teacher histories per test task
    train_seeds: int               # transformer training seeds; a cell seed = (teacher seed, train seed)
    bootstrap: int = 10_000        # resamples of the stratified bootstrap
    notes: str = ""
    #: Which tasks the cells score: "test" (the study's result, scored once) or "val" (validation
    #: tasks, for choices such as the conditioning scheme; never reported as a result).
    score_on: str = "test"
    #: Evaluation-only override of every rung's transformer conditioning scheme (None: the rung's).
    #: It leaves the rungs, and so the trained models' cache keys, unchanged.
    conditioning: str | None = None
    #: Rungs that are only Q3 transplant targets here (their tasks and a fresh teacher on them);
    #: not run, not selectable with --rungs.
    targets: list[Rung] = field(default_factory=list)

    def target(self, name: str | None) -> Rung | None:
        """The rung a transplant goes to: one of the preset's rungs or its targets."""
        return next((r for r in [*self.rungs, *self.targets] if r.name == name), None)

    @property
    def seeds(self) -> list[int]:
        return list(range(self.teacher_seeds * self.train_seeds))

    def seed_parts(self, seed: int) -> tuple[int, int]:
        """Cell seed -> (teacher seed, transformer training seed)."""
        return divmod(int(seed), self.train_seeds)


PRESETS = {
    "smoke": lambda: Preset("smoke", _smoke(), teacher_seeds=2, train_seeds=1, bootstrap=1000,
                            notes="every question for both imitators on 3 small rungs, minutes on 2 cores; numbers are "
                                  "a pipeline check, not a result"),
    "default": _default_preset,
    "paper": lambda: Preset("paper", _paper(), teacher_seeds=4, train_seeds=5,
                            notes="sized for a cluster or GPU: Q2-beyond at every T, 4x the training"),
}


def preset(name: str) -> Preset:
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]()


def describe(p: Preset) -> str:
    """The preset's rungs and their settings, one line each (for --help)."""
    lines = [f"preset {p.name}: {len(p.rungs)} rungs, seeds = {p.teacher_seeds} teacher x {p.train_seeds} training; {p.notes}"]
    if p.targets:
        lines.append(f"  (transplant targets only: {', '.join(f'{r.name} {r.label}' for r in p.targets)})")
    for r in p.rungs:
        tf = r.transformer
        lines.append(f"  {r.name:<11} {r.label}: tasks {r.n_train or 'all'} train / {r.n_val} val / {r.n_test} test; "
                     f"teacher {r.teacher}; histories {r.history_episodes} episodes; T {list(r.Ts)} (beyond {list(r.Ts_beyond)}), "
                     f"k {r.k}; Q3 transplant to {r.transplant['to'] if r.transplant else 'none'}; "
                     f"mixture {'%g bits' % r.mixture.max_bits if r.mixture else 'cannot'}; transformer "
                     + (f"{tf.model['n_layer']}x{tf.model['d_model']}, context {tf.model['context']}, "
                        f"{tf.train['steps']} updates, conditioning {tf.conditioning}, slide {tf.slide}" if tf else "cannot"))
    return "\n".join(lines)


def set_transformer(rung: Rung, item: str) -> None:
    """Apply ``KEY=VALUE`` (``model.<field>``, ``train.<field>`` or a TransformerSpec field; VALUE
    JSON, else a string) to the rung's transformer, in place. A rung without one is left alone."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError("expected KEY=VALUE")
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    tf = rung.transformer
    if tf is None:
        return
    part, _, name = key.partition(".")
    if name and part in ("model", "train"):
        from learners.transformer.model import ModelConfig
        from learners.transformer.train import TrainConfig

        known = {f.name for f in dataclasses.fields(ModelConfig if part == "model" else TrainConfig)}
        if name not in known:
            raise ValueError(f"{part} has no field {name!r} (known: {', '.join(sorted(known))})")
        getattr(tf, part)[name] = value
    elif not name and key in {f.name for f in dataclasses.fields(TransformerSpec)} - {"model", "train"}:
        setattr(tf, key, value)
    else:
        raise ValueError(f"unknown key {key!r} (model.<field>, train.<field>, or one of "
                         f"{', '.join(f.name for f in dataclasses.fields(TransformerSpec) if f.name not in ('model', 'train'))})")
    rung.check()


def copy_preset(p: Preset) -> Preset:
    return copy.deepcopy(p)


__all__ = ["Rung", "MixtureSpec", "TransformerSpec", "Preset", "PRESETS", "preset", "describe", "Q_TEACHER", "THOMPSON", "set_transformer"]
