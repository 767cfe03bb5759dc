"""The paper, regenerated from a study's results: every figure (PDF and PNG) and REPORT.md with
the headline tables, drawn from the study's CSVs and study.json without recomputing anything.

    python -m experiments.paper --study STUDY_DIR --out PAPER_DIR
"""
