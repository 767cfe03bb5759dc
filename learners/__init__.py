"""Everything that acts or learns: protocols, LearningHistory, teachers and imitators."""
from learners.history import HistoryError, LearningHistory
from learners.history_store import HistoryWriter
from learners.protocols import Agent, Imitator, SampledAgent, Teacher, Transition, sample_action

__all__ = [
    "Agent", "Imitator", "Teacher", "Transition", "SampledAgent", "sample_action",
    "LearningHistory", "HistoryWriter", "HistoryError",
]
