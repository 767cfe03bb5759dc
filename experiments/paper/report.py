"""REPORT.md: the figures in order with their captions, then the headline tables generated from
summary.csv (every number comes from a summary row; none is typed here), then the cells the study
did not measure. The text depends only on the study's files, so it is byte-for-byte reproducible."""
from __future__ import annotations

import math
import re
from pathlib import Path

from experiments.paper.style import IMITATORS, MEANINGS, Absent, Drawn, fmt_T, in_order, label
from experiments.paper.load import Interval, Study

QUESTION_ORDER = ("teacher", "Q1", "Q2", "Q3")
QUESTION_TITLES = {
    "teacher": "The teacher's own learning",
    "Q1": "Q1 — now: does the imitator act like the teacher at the end of its history?",
    "Q2": "Q2 — keep improving: frozen at T, does it go on improving like the teacher?",
    "Q3": "Q3 — transplant: on a new task, does it start badly and improve like a fresh teacher?",
}
VARIANT_ORDER = ("learning", "now", "within", "beyond", "heldout", "transplant")
METRIC_ORDER = ("return_final", "kl_bits_late", "log_loss_bits_late", "agreement_late", "return_now",
                "continuation_ratio", "tracking_gap", "return_T", "return_kT", "auc_ratio", "return_first", "return_last")
KEY_COLUMNS = ("rung", "question", "variant", "metric", "T")
# Every table is preceded by this comment naming the summary.csv columns its heading fixes, so a
# reader (or a test) can find each number's row: <!-- summary.csv: question=Q2 rung=darkroom9 -->
TABLE_TAG = "<!-- summary.csv: {} -->"
TABLE_TAG_RE = re.compile(r"^<!-- summary\.csv: (.*) -->$")
NOT_APPLICABLE = "—"


def fmt(x: float) -> str:
    """One number as the tables print it: 3 decimals; 5 below 0.01, so small KLs keep 3 digits;
    scientific notation only below 1e-4."""
    if x is None or not math.isfinite(x):
        return "n/a"
    if x == 0 or abs(x) >= 0.01:
        return f"{abs(x) if x == 0 else x:.3f}"
    return f"{x:.2e}" if abs(x) < 1e-4 else f"{x:.5f}"


def fmt_interval(v: Interval) -> str:
    return f"{fmt(v.mean)} [{fmt(v.ci_low)}, {fmt(v.ci_high)}]"


def _rank(value, order) -> tuple:
    return (order.index(value), "") if value in order else (len(order), str(value))


def _columns(study: Study, question: str, rung: str) -> list[str]:
    names = {k[1] for k in study.summary if k[2] == question and k[0] == rung}
    names |= {k[1] for k in study.coverage if k[2] == question and k[0] == rung}
    imitators = [n for n in IMITATORS if n in names]
    return imitators + [n for n in in_order(names) if n not in imitators]


def _cell(study: Study, rung, imitator, question, variant, metric, T) -> str:
    v = study.summary.get((rung, imitator, question, variant, metric, T))
    if v is not None:
        return fmt_interval(v)
    c = study.not_done(rung, imitator, question, variant)
    return c.status if c is not None else NOT_APPLICABLE


def _n_note(vals: list[Interval]) -> str:
    ns = sorted({v.n for v in vals})
    if not ns:
        return ""
    return f"n (seeds behind each interval) = {ns[0]}" if len(ns) == 1 else f"n (seeds behind each interval) from {ns[0]} to {ns[-1]}"


def table(study: Study, fixed: dict[str, str], rows: list[tuple], columns: list[str], row_columns: tuple[str, ...]) -> list[str]:
    """A markdown table of intervals: one row per key in ``rows`` (values for ``row_columns``),
    one column per imitator/control; ``fixed`` holds the key columns the heading fixes."""
    out = [TABLE_TAG.format(" ".join(f"{k}={v}" for k, v in fixed.items())), "",
           "| " + " | ".join(row_columns + tuple(columns)) + " |",
           "|" + "---|" * len(row_columns) + "---:|" * len(columns)]
    for row in rows:
        key = dict(zip(row_columns, row)) | fixed
        T = key["T"]
        cells = [fmt_T(v) if c == "T" else str(v) for c, v in zip(row_columns, row)]
        cells += [_cell(study, key["rung"], name, key["question"], key["variant"], key["metric"], T) for name in columns]
        out.append("| " + " | ".join(cells) + " |")
    return out


def _question_tables(study: Study) -> list[str]:
    lines = []
    questions = [q for q in QUESTION_ORDER if any(k[2] == q for k in study.summary)]
    questions += sorted({k[2] for k in study.summary} - set(questions))
    for q in questions:
        lines += [f"### {QUESTION_TITLES.get(q, q)}", ""]
        for rung in study.rung_names:
            keys = sorted({(k[3], k[4], k[5]) for k in study.summary if k[2] == q and k[0] == rung},
                          key=lambda r: (_rank(r[0], VARIANT_ORDER), _rank(r[1], METRIC_ORDER), -1 if r[2] is None else r[2]))
            if not keys:
                continue
            cols = _columns(study, q, rung)
            lines += [f"#### {q} · {study.label(rung)} (`{rung}`)", ""]
            lines += table(study, {"question": q, "rung": rung}, keys, cols, ("variant", "metric", "T"))
            n = _n_note([v for k, v in study.summary.items() if k[2] == q and k[0] == rung])
            lines += ["", n + "." if n else "", ""]
    return lines


def _headline_table(study: Study) -> list[str]:
    """The continuation ratio of both imitators, every rung and T: the project's headline number."""
    rows = sorted({(k[0], k[3], k[5]) for k in study.summary
                   if k[1] in IMITATORS and k[2] == "Q2" and k[4] == "continuation_ratio"},
                  key=lambda r: (study.rung_names.index(r[0]), _rank(r[1], VARIANT_ORDER), -1 if r[2] is None else r[2]))
    if not rows:
        return []
    lines = ["## Headline: the continuation ratio", "",
             "(R_imitator(kT) − R_teacher(T)) / (R_teacher(kT) − R_teacher(T)) for each imitator acting alone from "
             "the truncation point T: 1 = it kept improving like the teacher, 0 = it stayed where its history "
             "ended. Mean [95% interval] from summary.csv.", ""]
    lines += table(study, {"question": "Q2", "metric": "continuation_ratio"}, rows, list(IMITATORS), ("rung", "variant", "T"))
    undefined = []
    for rung, _, T in rows:
        g = study.summary.get((rung, "teacher_continued", "Q2", "within", "teacher_gain", T))
        if g is not None and not (math.isfinite(g.ci_low) and g.ci_low > 0) and (rung, T) not in undefined:
            undefined.append((rung, T))
    if undefined:
        where = ", ".join(f"`{r}` at T = {fmt_T(T)}" for r, T in undefined)
        lines += ["", f"Undefined in practice: {where}. There the teacher's own gain from T to kT (the ratio's "
                  "denominator, `teacher_gain`) has a 95% interval that reaches 0, so the ratio divides by noise."]
    return lines + [""]


def _coverage(study: Study) -> list[str]:
    """The cells coverage.csv marks missing or cannot, one row per shared reason (a reason that
    holds on every rung is said once)."""
    groups: dict[tuple, dict[str, list[str]]] = {}
    for (rung, imitator, q, variant), c in study.coverage.items():
        if c.status != "done":
            groups.setdefault((q, variant, c.status, c.reason, c.cost_estimate), {}).setdefault(rung, []).append(imitator)
    lines = ["## Cells not measured", ""]
    if not groups:
        return lines + ["Every cell of the study was measured (coverage.csv lists none missing or impossible).", ""]
    lines += ["From coverage.csv. *cannot*: the imitator cannot run there (the reason and cost say why); *missing*: "
              "not measured (yet). These cells are absent from every figure (never drawn as zero) and marked so in "
              "the tables.", "", "| question | variant | status | cells (rung: imitators) | reason | cost estimate |",
              "|---|---|---|---|---|---|"]
    esc = lambda s: s.replace("|", "\\|") or NOT_APPLICABLE  # noqa: E731
    for (q, variant, status, reason, cost), by_rung in sorted(
            groups.items(), key=lambda g: (_rank(g[0][0], QUESTION_ORDER), _rank(g[0][1], VARIANT_ORDER), g[0][2:])):
        cells = "; ".join(f"{study.label(r)}: {', '.join(in_order(by_rung[r]))}" for r in study.rung_names if r in by_rung)
        lines.append(f"| {q} | {variant} | {status} | {esc(cells)} | {esc(reason)} | {esc(cost)} |")
    return lines + [""]


def _absent_text(study: Study, absent: list[Absent]) -> str:
    """A figure's unmeasured cells, grouped by status and reason (a reason shared by many cells is said once)."""
    groups: dict[tuple, dict[tuple, list[str]]] = {}
    for a in dict.fromkeys(absent):
        status = f"partly {a.status}, drawn from the seeds measured" if a.partly else a.status
        where = groups.setdefault((status, a.reason), {}).setdefault((a.rung, a.question, a.variant), [])
        if a.name not in where:
            where.append(a.name)
    parts = []
    for (status, reason), cells in groups.items():
        listed = "; ".join(f"{study.label(r)}, {q} {v}: {', '.join(label(n) for n in in_order(names))}"
                           for (r, q, v), names in cells.items())
        parts.append(f"{status}{f' ({reason})' if reason else ''} — {listed}")
    return "; ".join(parts) if len(parts) == 1 else " | ".join(parts)


def data_line(study: Study) -> str:
    """Seeds, command and commit of the study, said once per caption."""
    p = study.provenance
    return (f"Seeds: {', '.join(map(str, study.seeds))}. Data: `{p.get('command', 'unknown command')}` at commit "
            f"`{p.get('commit', 'unknown')}`.")


def write_report(study: Study, drawn: list[Drawn], directory: Path, formats: tuple[str, ...]) -> Path:
    p = study.provenance
    show = "png" if "png" in formats else formats[0]
    lines = ["# hypospace — results", "",
             f"Figures and tables of the study `{study.meta.get('preset', '?')}`, drawn by `python -m experiments.paper` "
             "from its results files (nothing recomputed).", "",
             f"- command: `{p.get('command', 'unknown')}`",
             f"- commit: `{p.get('commit', 'unknown')}`",
             f"- seeds: {', '.join(map(str, study.seeds))}",
             "- rungs: " + ", ".join(f"{study.label(r)} (`{r}`)" for r in study.rung_names),
             f"- imitators: {', '.join(study.meta.get('imitators', []))}; questions: {', '.join(study.meta.get('questions', []))}"]
    versions = p.get("versions") or {}
    if versions:
        lines.append("- versions: " + ", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    lines += ["- regenerate: `python -m experiments.paper --study STUDY_DIR --out PAPER_DIR`", ""]
    lines += _headline_table(study)
    lines += ["## Figures", ""]
    for i, d in enumerate(drawn, start=1):
        lines += [f"### Figure {i}. {d.title}", ""]
        if d.figure is None:
            lines += [f"Not drawn: {d.skipped}.", ""]
            continue
        lines += [f"![Figure {i}: {d.title}]({d.stem}.{show})", "",
                  f"*Figure {i}.* {d.caption} {data_line(study)}"]
        if d.absent:
            lines += ["", "Not measured, so not drawn: " + _absent_text(study, d.absent) + "."]
        unshown = [study.label(r) for r in study.rung_names if r not in d.rungs]
        if unshown:
            lines += ["", f"No data for this figure on: {', '.join(unshown)} (see *Cells not measured*)."]
        lines += ["", "Files: " + ", ".join(f"[{d.stem}.{f}]({d.stem}.{f})" for f in formats), ""]
    lines += ["## Tables", "",
              "Each cell is the mean [95% interval] of summary.csv's row for that rung, imitator or control, question, "
              "variant, metric and T (percentile intervals, stratified bootstrap over seeds with test tasks as strata). "
              f"*cannot* / *missing*: the cell was not measured (see below); {NOT_APPLICABLE}: the metric does not apply "
              "to that imitator or control; n/a: a value the study could not define (no interval from a single seed, "
              "a ratio over a zero denominator). Returns are fractions of the task's optimal return; KL and log-loss are "
              f"bits per step. {data_line(study)}", ""]
    names = in_order({k[1] for k in study.summary})
    lines += [f"- `{n}`: {MEANINGS[n]}" for n in names if n in MEANINGS] + [""]
    lines += _question_tables(study)
    lines += _coverage(study)
    text = "\n".join(lines).rstrip("\n") + "\n"
    text = re.sub(r"\n{3,}", "\n\n", text)
    out = directory / "REPORT.md"
    out.write_text(text)
    return out


__all__ = ["write_report", "fmt", "fmt_interval", "TABLE_TAG_RE", "NOT_APPLICABLE", "data_line"]
