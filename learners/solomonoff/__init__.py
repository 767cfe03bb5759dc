"""The idealized imitator: a bounded Solomonoff-style mixture over agent programs."""
