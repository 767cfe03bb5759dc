"""Train the Algorithm-Distillation transformer on recorded learning histories.

    python -m experiments.train_transformer --env bandit --preset default --out runs/ad-bandit-s0
    python -m experiments.train_transformer --env darkroom --preset default --seed 1 --out runs/ad-dark-s1
    python -m experiments.train_transformer --env darkroom --preset default --expert --out runs/ed-dark-s0
    python -m experiments.train_transformer --resume --out runs/ad-dark-s1        # after a kill
    torchrun --nproc-per-node 2 -m experiments.train_transformer --env bandit --preset smoke --micro-batches 2 --out runs/ddp
    python -m experiments.train_transformer --env atari --preset default --histories runs/atari/breakout-s{0,2,3} \
        --val-history runs/atari/breakout-s1 --out runs/ad-breakout-s0          # DQN histories of experiments.train_dqn

Steps: (1) the preset's histories are recorded by the project's recorder on the training tasks
of the env's seeded task split (held-out tasks never enter training) and cached under
--cache-dir (reused by later runs; nothing is downloaded); (2) they are packed into memory-mapped
arrays and sampled as windows of whole episodes (every k-th episode for strides k in
--subsample); (3) AdamW with warmup + cosine, gradient clipping, CSV logs (TensorBoard when
installed), checkpoints with the whole state every --checkpoint-every updates; (4) the final
model goes to OUT/model/ (model.safetensors + meta.json), ready for
``TransformerImitator.load(OUT/model)``; the study (``python -m experiments.study``) trains and
evaluates its own transformers per rung the same way.

Atari (--env atari): the histories are DQN learning histories named by --histories (frames stored
once, memory-mapped, never loaded whole; 4-frame stacks rebuilt by index), tokens = frame-stack
embedding + previous action (full 18-action set) + previous reward sign + episode start. With
--encoder frozen_ae (the default) a small conv autoencoder is trained once on the training
histories' frames (OUT/encoder/) and every history's embeddings are cached under --cache-dir;
with nature_cnn the model's CNN trains end to end. No Space Invaders frame enters training
unless --encoder-saw-game marks the run as that variant; the model records the games its
encoder saw. Evaluate with python -m experiments.atari_eval.

Every --flag below overrides the preset (its help lists each preset's value); --data-* flags change which histories are recorded,
--model-* flags the model. --resume continues OUT from its latest checkpoint with the
configuration stored in OUT/config.json and gives the same final weights as an unkilled run.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

PROG = "python -m experiments.train_transformer"


def build_parser() -> argparse.ArgumentParser:
    from experiments.cli import add_config_arguments
    from learners.cache import DEFAULT as CACHE_DEFAULT, ENV_VAR as CACHE_ENV_VAR, cache_root
    from learners.transformer.corpus import DataSpec
    from learners.transformer.model import ModelConfig
    from learners.transformer.atari import ENCODERS
    from learners.transformer.frame_encoder import EncoderConfig
    from learners.transformer.presets import PRESETS
    from learners.transformer.train import TrainConfig

    p = argparse.ArgumentParser(prog=PROG, description=(__doc__ or "").strip().splitlines()[0],
                                epilog=(__doc__ or "").split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    g = p.add_argument_group("run")
    g.add_argument("--env", choices=sorted(PRESETS), default="darkroom", help="env family (default: darkroom)")
    g.add_argument("--preset", choices=["smoke", "default", "paper"], default="default",
                   help="smoke (<1 min), default (<=30 min on 2 CPU cores), paper (hours / GPU) (default: default)")
    g.add_argument("--out", required=True, help="run directory (must not exist unless --resume)")
    g.add_argument("--resume", action="store_true", help="continue OUT from its latest checkpoint (its stored config is used)")
    g.add_argument("--expert", action="store_true", help="expert distillation: train only on each history's final episodes")
    g.add_argument("--cache-dir", default=str(cache_root()),
                   help=f"where recorded histories and packed stores are cached (default: ${CACHE_ENV_VAR} or "
                        f"{CACHE_DEFAULT}; now {cache_root()})")
    g.add_argument("--device", default="cpu", help="torch device: cpu, cuda, cuda:1 ... (default: cpu)")
    g.add_argument("--threads", type=int, default=1,
                   help="torch CPU threads per process (default: 1 — on this shared 2-core machine 1 thread per "
                        "process is faster than 2 for these small matrices; use torchrun for 2 cores)")
    g.add_argument("--workers", type=int, default=1, help="processes recording histories (default: 1)")
    g.add_argument("--no-progress", action="store_true", help="no progress bars")
    a = p.add_argument_group("atari (--env atari)")
    a.add_argument("--histories", nargs="+", metavar="DIR", help="DQN learning histories to train on (experiments.train_dqn)")
    a.add_argument("--val-history", metavar="DIR", help="held-out DQN history for the validation loss (never trained on)")
    a.add_argument("--first-steps", type=int, metavar="N", help="train on each history's first N steps only (Q2 'beyond')")
    a.add_argument("--encoder", choices=ENCODERS, help="frame encoder: frozen_ae (trained once, embeddings cached) or "
                                                       "nature_cnn (end to end) (default: the preset's)")
    a.add_argument("--encoder-from", metavar="RUN", help="reuse the frozen encoder of another run (trained once, its "
                                                          "embeddings cached) instead of training one")
    a.add_argument("--encoder-saw-game", action="store_true",
                   help="the flagged variant: held-out games' frames (Space Invaders) may enter training")
    add_config_arguments(p.add_argument_group("training (override the preset)"), TrainConfig)
    add_config_arguments(p.add_argument_group("model (override the preset)"), ModelConfig, prefix="model-")
    add_config_arguments(p.add_argument_group("data (override the preset)"), DataSpec, prefix="data-")
    add_config_arguments(p.add_argument_group("frozen frame encoder (--env atari; override the preset)"), EncoderConfig,
                         prefix="encoder-")
    _show_preset_values(p, PRESETS)
    return p


_SECTIONS = (("model_", "model"), ("data_", "data"), ("encoder_", "encoder"), ("", "train"))


def _show_preset_values(p: argparse.ArgumentParser, presets: dict[str, Any]) -> None:
    """Replace "(default: <dataclass default>)" in a flag's help by the values the presets give it
    (the dataclass default is what a preset leaves alone)."""
    for act in p._actions:
        for pre, sec in _SECTIONS:
            if act.dest.startswith(pre) and act.help and "(default: " in act.help:
                name = act.dest[len(pre):]
                vals = []
                for env, by_name in presets.items():
                    got = [(k, by_name[k].get(sec, {}).get(name)) for k in by_name]
                    if any(v is not None for _, v in got):
                        vals.append(f"{env} " + " ".join(f"{k}={json.dumps(v) if v is not None else '-'}" for k, v in got))
                if vals:
                    head, _, tail = act.help.partition("(default: ")
                    act.help = f"{head}(presets: {'; '.join(vals)}; '-' = not set, {tail.split(')')[0]})" + tail.split(")", 1)[1]
                break


def resolve(args: argparse.Namespace) -> dict[str, Any]:
    """Preset + env facts + command-line overrides -> {"data", "model", "train", "eval"} dicts."""
    from experiments.cli import UsageError, config_overrides
    from learners.transformer.corpus import DataSpec
    from learners.transformer.model import ModelConfig
    from learners.transformer.presets import EXPERT_LAST_EPISODES, env_model_fields, preset
    from learners.transformer.train import TrainConfig

    if args.env == "atari":
        return resolve_atari(args)
    _refuse_atari_flags(args)
    cfg = preset(args.env, args.preset)
    cfg["data"].update(config_overrides(args, DataSpec, prefix="data-"))
    cfg["train"].update(config_overrides(args, TrainConfig))
    if args.expert and not cfg["train"].get("last_episodes"):
        cfg["train"]["last_episodes"] = EXPERT_LAST_EPISODES[args.env]
        cfg["train"]["subsample"] = [1]
    try:
        data = DataSpec(**cfg["data"])
        cfg["model"].update(env_model_fields(data.env_id, data.split))
    except (ValueError, TypeError) as e:
        raise UsageError(f"data: {e}") from None
    cfg["model"].update(config_overrides(args, ModelConfig, prefix="model-"))
    try:
        model = ModelConfig(**cfg["model"])
        train = TrainConfig(**cfg["train"])
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    return {"env": args.env, "preset": args.preset, "expert": bool(args.expert), "data": data.to_dict(),
            "model": model.to_dict(), "train": dataclasses.asdict(train), "eval": cfg.get("eval", {})}


def _refuse_atari_flags(args: argparse.Namespace) -> None:
    from experiments.cli import UsageError

    for flag in ("histories", "val_history", "first_steps", "encoder", "encoder_from"):
        if getattr(args, flag) is not None:
            raise UsageError(f"--{flag.replace('_', '-')} is for --env atari")


def resolve_atari(args: argparse.Namespace) -> dict[str, Any]:
    """Atari preset + the named histories + overrides -> the run's config."""
    from experiments.cli import UsageError, config_overrides
    from learners.transformer.atari import AtariSpec, model_fields
    from learners.transformer.frame_encoder import EncoderConfig
    from learners.transformer.model import ModelConfig
    from learners.transformer.presets import EXPERT_LAST_EPISODES, preset
    from learners.transformer.train import TrainConfig

    cfg = preset("atari", args.preset)
    if config_overrides(args, __import__("learners.transformer.corpus", fromlist=["DataSpec"]).DataSpec, prefix="data-"):
        raise UsageError("--data-* flags choose toy-env histories; Atari histories are named by --histories")
    spec = dict(cfg["atari"])
    for k in ("histories", "val_history", "first_steps", "encoder", "encoder_from"):
        if getattr(args, k) is not None:
            spec[k] = getattr(args, k)
    if spec.get("encoder_from"):
        spec["encoder_from"] = str(Path(spec["encoder_from"]).resolve())
    spec["encoder_saw_game"] = bool(args.encoder_saw_game)
    spec.setdefault("histories", [])
    spec["histories"] = [str(Path(h).resolve()) for h in spec["histories"]]
    if spec.get("val_history"):
        spec["val_history"] = str(Path(spec["val_history"]).resolve())
    for h in spec["histories"] + ([spec["val_history"]] if spec.get("val_history") else []):
        if not (Path(h) / "manifest.json").exists() and not (h == spec.get("val_history") and (Path(h) / "partial.json").exists()):
            raise UsageError(f"{h} is not a complete history (no manifest.json; only --val-history may be a killed "
                             "recording's .partial)")
    cfg["train"].update(config_overrides(args, TrainConfig))
    if args.expert and not cfg["train"].get("last_episodes"):
        cfg["train"]["last_episodes"] = EXPERT_LAST_EPISODES["atari"]
        cfg["train"]["subsample"] = [1]
    cfg["encoder"].update(config_overrides(args, EncoderConfig, prefix="encoder-"))
    try:
        atari = AtariSpec(**spec)
        enc = EncoderConfig(**cfg["encoder"])
        cfg["model"].update(model_fields(atari.encoder, enc.emb_dim))
        cfg["model"].update(config_overrides(args, ModelConfig, prefix="model-"))
        model = ModelConfig(**cfg["model"])
        train = TrainConfig(**cfg["train"])
    except (ValueError, TypeError) as e:
        raise UsageError(str(e)) from None
    if model.n_actions != 18:
        raise UsageError(f"--model-n-actions {model.n_actions}: Atari models act on the full 18-action set")
    return {"env": "atari", "preset": args.preset, "expert": bool(args.expert), "atari": dataclasses.asdict(atari),
            "encoder": dataclasses.asdict(enc), "model": model.to_dict(), "train": dataclasses.asdict(train),
            "eval": cfg.get("eval", {})}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from experiments.cli import UsageError, fail, write_json_atomic

    if args.threads < 1:
        fail(PROG, f"--threads must be >= 1, got {args.threads}")
    out = Path(args.out)
    try:
        if args.resume:
            cpath = out / "config.json"
            if not cpath.exists():
                raise UsageError(f"--resume: {cpath} not found (nothing to resume)")
            try:
                cfg = json.loads(cpath.read_text())["config"]
            except (json.JSONDecodeError, KeyError) as e:
                raise UsageError(f"--resume: {cpath} is corrupt ({e})") from None
        else:
            if out.exists() and any(out.iterdir()):
                raise UsageError(f"--out {out} already exists (use --resume to continue it, or a new path)")
            cfg = resolve(args)
        if args.device.startswith("cuda"):
            import torch

            if not torch.cuda.is_available():
                raise UsageError(f"--device {args.device}: CUDA is not available on this machine")
    except UsageError as e:
        fail(PROG, str(e))

    import torch

    torch.set_num_threads(args.threads)
    from learners.provenance import run_info
    from learners.transformer.corpus import DataSpec, build_corpus
    from learners.transformer.data import DataError
    from learners.transformer.model import ModelConfig
    from learners.errors import CheckpointError
    from learners.transformer.distributed import init_distributed
    from learners.transformer.train import TrainConfig, train

    dist = init_distributed(args.device)
    device = args.device
    if device.startswith("cuda") and dist.world > 1:
        device = f"cuda:{dist.local_rank}"
        torch.cuda.set_device(device)
    model_cfg = ModelConfig.from_dict(cfg["model"])
    train_cfg = TrainConfig(**cfg["train"])
    cache = Path(args.cache_dir)
    if cfg["env"] == "atari":
        return _main_atari(cfg, args, out, model_cfg, train_cfg, cache, dist, device)
    data = DataSpec(**cfg["data"])
    try:
        if dist.main:
            store = build_corpus(data, cache, which="train", last_episodes=train_cfg.last_episodes or None,
                                 workers=args.workers, progress=not args.no_progress)
            val = build_corpus(data, cache, which="val", workers=args.workers) if data.val_tasks and data.val_seeds else None
        if dist.world > 1:
            import torch.distributed as tdist

            tdist.barrier()
            if not dist.main:
                store = build_corpus(data, cache, which="train", last_episodes=train_cfg.last_episodes or None)
                val = build_corpus(data, cache, which="val") if data.val_tasks and data.val_seeds else None
        if dist.main:
            out.mkdir(parents=True, exist_ok=True)
            if not args.resume:
                write_json_atomic(out / "config.json", run_info(seed=train_cfg.seed, config=cfg))
            print(f"{PROG}: {store.n_histories} training histories ({len(store)} steps), model "
                  f"{cfg['model']['n_layer']}x{cfg['model']['d_model']}, {train_cfg.steps} updates of "
                  f"{train_cfg.batch_size} windows x {model_cfg.context} tokens, {dist.world} process(es), "
                  f"{args.threads} thread(s) each, device {device}", file=sys.stderr)
        res = train(model_cfg, train_cfg, store, out, val_store=val, resume=args.resume, device=device,
                    data_info={**cfg["data"], "last_episodes": train_cfg.last_episodes},
                    progress=not args.no_progress, dist=dist)
    except (CheckpointError, DataError) as e:
        fail(PROG, str(e))
    finally:
        _end_distributed(dist)
    if dist.main:
        _print_result(out, res)
    return 0


def _end_distributed(dist: Any) -> None:
    if dist.world > 1:
        import torch.distributed as tdist

        if tdist.is_initialized():
            tdist.destroy_process_group()


def _print_result(out: Path, res: Any) -> None:
    last = res.log[-1] if res.log else {}
    print(json.dumps({"run": str(out), "step": res.step, "loss": last.get("loss"), "kl_bits": last.get("kl_bits"),
                      "val_kl_bits": last.get("val_kl_bits")}))


def _main_atari(cfg: dict[str, Any], args: argparse.Namespace, out: Path, model_cfg: Any, train_cfg: Any, cache: Path,
                dist: Any, device: str) -> int:
    from experiments.cli import fail, write_json_atomic
    from learners.errors import CheckpointError, HistoryFitError
    from learners.history import HistoryError
    from learners.provenance import run_info
    from learners.transformer.atari import AtariSpec, open_spec, prepare_atari
    from learners.transformer.data import DataError
    from learners.transformer.distributed import barrier
    from learners.transformer.frame_encoder import EncoderConfig
    from learners.transformer.train import train

    spec, enc = AtariSpec(**cfg["atari"]), EncoderConfig(**cfg["encoder"])
    last = train_cfg.last_episodes or None
    try:
        if dist.main:
            open_spec(spec, last_episodes=last)  # refuse unusable histories before OUT is made
            out.mkdir(parents=True, exist_ok=True)
            if not args.resume:
                write_json_atomic(out / "config.json", run_info(seed=train_cfg.seed, config=cfg))
            data = prepare_atari(spec, enc, out, cache, last_episodes=last, progress=not args.no_progress)
        barrier(dist)
        if not dist.main:  # the encoder is on disk now: every rank loads the same one
            data = prepare_atari(spec, enc, out, cache, last_episodes=last)
        if dist.main:
            print(f"{PROG}: {data.store.n_histories} Atari histories ({len(data.store)} steps, games "
                  f"{', '.join(data.info.training_games)}), encoder {data.info.encoder} (saw {', '.join(data.info.encoder_games)}), "
                  f"model {model_cfg.n_layer}x{model_cfg.d_model}, {train_cfg.steps} updates of {train_cfg.batch_size} "
                  f"windows x {model_cfg.context} tokens, device {device}", file=sys.stderr)
        import dataclasses as _dc

        res = train(model_cfg, train_cfg, data.store, out, val_store=data.val_store, resume=args.resume, device=device,
                    data_info={"atari": _dc.asdict(data.info), "spec": cfg["atari"], "encoder": cfg["encoder"],
                               "last_episodes": train_cfg.last_episodes},
                    progress=not args.no_progress, dist=dist)
    except (CheckpointError, DataError, HistoryError, HistoryFitError) as e:
        fail(PROG, " ".join(str(e).split()))
    finally:
        _end_distributed(dist)
    if dist.main:
        _print_result(out, res)
    return 0


if __name__ == "__main__":
    sys.exit(main())
