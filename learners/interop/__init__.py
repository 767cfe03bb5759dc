"""Learning histories in and out of other RL libraries.

* ``recorder`` -- ``EpsilonGreedyRecorder``: any epsilon-greedy loop (CleanRL-style) recorded
  step by step with its exact action distribution;
* ``sb3``      -- ``DQNHistoryCallback``: a Stable-Baselines3 DQN run recorded (extra ``sb3``);
* ``minari``   -- ``to_minari`` / ``from_minari``: histories as Farama Minari datasets and back
  (extra ``minari``);
* ``unknown_probs`` -- the mark on a history whose teacher probabilities are not known (a
  dataset that logged only actions) and ``require_teacher_probs``, the check that refuses it.

The optional libraries are imported by their own modules only, so ``learners.interop.recorder``
works without either installed.
"""
