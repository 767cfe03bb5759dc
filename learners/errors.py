"""Error types shared by the learners: one type per kind of failure."""


class HistoryFitError(ValueError):
    """A history (or a transition) that does not fit the learner that is shown it: actions,
    observations or episode boundaries outside what the learner can represent, or information it
    needs that the history lacks. The message says what does not fit and how to fix it."""


class CheckpointError(ValueError):
    """A checkpoint that is missing, incomplete, corrupt, or made for another model or run
    config. The message names the file or the field."""
