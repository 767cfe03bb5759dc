"""The practical imitator: an Algorithm-Distillation transformer trained on learning histories.

* ``model``    — the causal transformer (model only, nanoGPT style) and its KV cache;
* ``data``     — tokenization, packed memory-mapped stores, episode windows (AD subsampling);
* ``corpus``   — which histories to record (``DataSpec``), recorded and cached on disk;
* ``train``    — the training loop;
* ``checkpoint``— the exported model and the training checkpoints (save, load, resume);
* ``distributed``— data parallelism through torch.distributed;
* ``agent``    — ``TransformerImitator``: the Imitator protocol, acting in context with a KV cache;
* ``incontext``— batched in-context rollouts on many tasks (evaluation);
* ``presets``  — smoke / default / paper settings per env family.
"""
from learners.errors import HistoryFitError
from learners.transformer.agent import TransformerImitator
from learners.transformer.model import ADTransformer, ModelConfig

__all__ = ["ADTransformer", "ModelConfig", "TransformerImitator", "HistoryFitError"]
