"""The study: every imitator and control through the same three questions, on the same held-out
histories, up the complexity ladder (``python -m experiments.study --help``).

* ``rungs``     — the ladder: named rung configurations and the smoke / default / paper presets;
* ``data``      — a rung's tasks (train / validation / test), random streams, cached histories;
* ``imitators`` — the mixture per rung and the transformers per (variant, T, seed), cached;
* ``questions`` — Q1, Q2, Q3 and the teacher's own curve, one definition each;
* ``cells``     — which imitator answers which question (or why it cannot), one record per cell;
* ``stats``     — the one interval method (stratified bootstrap, scipy) and the IQM;
* ``results``   — results / summary / curves / coverage tables and the printed summary;
* ``executor``  — a local process pool or Ray tasks, same jobs, same results;
* ``run``       — the stages of a study.
"""
