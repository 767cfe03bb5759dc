"""Carrying a mixture's beliefs into another space's grammar (the Q3 transplant)."""
from __future__ import annotations

import numpy as np
import pytest

from experiments.study.data import RungData
from experiments.study.imitators import mixture_for
from experiments.study.rungs import preset
from learners.solomonoff.transplant import transplant_beliefs


@pytest.fixture(scope="module")
def watched(tmp_path_factory):
    """A 5x5 Dark Room mixture that watched a Q-learning teacher, and a fresh 6-state chain mixture."""
    mp = pytest.MonkeyPatch()
    mp.setenv("HYPOSPACE_CACHE", str(tmp_path_factory.mktemp("cache")))
    p = preset("smoke")
    room, chain = p.rungs[1], p.rungs[2]
    task, history = RungData(room, 1).train_history(0)
    src = mixture_for(room, task)
    src.predict_history(history)
    tgt = mixture_for(chain, RungData(chain, 1).split.test[0])
    yield src, tgt
    mp.undo()


def test_beliefs_about_the_algorithm_travel_to_another_space(watched):
    src, fresh = watched
    tgt = fresh.clone()
    prior_before = [lp.copy() for lp in tgt.log_prior]
    report = transplant_beliefs(src, tgt, cover=0.9)  # each program looked up costs a fingerprint
    best = src.top(3)
    # The watched teacher's algorithm (TD programs, written the same in every space) keeps its mass.
    assert report["carried_mass"] >= 0.9
    for row in best:
        assert tgt.class_mass(row["source"]) == pytest.approx(row["mass"], rel=1e-6, abs=1e-9)
        assert fresh.class_mass(row["source"]) < 0.1 * row["mass"]  # far above what the prior gave it
    post = tgt.posterior()
    assert post.sum() == pytest.approx(1.0) and post.min() > 0.0  # no program of the target ruled out
    assert all(np.array_equal(a, b) for a, b in zip(tgt.log_prior, prior_before))


def test_nothing_to_carry_leaves_the_prior(watched):
    _, fresh = watched
    tgt, blank = fresh.clone(), fresh.clone()
    report = transplant_beliefs(blank, tgt, top=10)  # a source that watched nothing: its posterior is its prior
    assert 0.0 < report["carried_mass"] < 1.0
    np.testing.assert_allclose(tgt.posterior(), blank.posterior(), rtol=1e-6, atol=1e-12)
