"""The scaling sweep: the AD transformer at several training-compute levels, through the study.

* ``presets`` -- compute levels (depth x width x updates) and the rungs they run on;
* ``fit``     -- each metric against log10 training compute, bootstrap intervals, extrapolation;
* ``run``     -- one study per level (``experiments.study.run.run_study``), gathered into
                 ``scaling.csv`` and ``fit.json`` beside the mixture's and the teacher's compute.
"""
