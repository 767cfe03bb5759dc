"""The paper CLI on a synthetic study that follows the study's output format: every figure is a
valid PNG/PDF, every number in REPORT.md's tables is its summary.csv row, cells not measured are
never drawn, the output is byte-for-byte reproducible, and bad input exits 2 with one line."""
from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from experiments.paper import figures
from experiments.paper.load import load_study
from experiments.paper.report import NOT_APPLICABLE, TABLE_TAG_RE, fmt
from experiments.paper.synthetic import write_synthetic_study

REPO = Path(__file__).resolve().parents[1]
PROG = "python -m experiments.paper"
STEMS = ("fig1_teacher_learning", "fig2_q1_tracking", "fig3_q2_continuation_curves", "fig4_q2_continuation_ratio",
         "fig5_q3_new_task", "fig6_mixture_beliefs", "fig7_complexity_axis")


def run_paper(*args: str, hash_seed: str = "0") -> subprocess.CompletedProcess:
    # a fresh process per run with its own hash seed: set iteration order must not reach the bytes
    env = os.environ | {"PYTHONHASHSEED": hash_seed}
    return subprocess.run([sys.executable, "-m", "experiments.paper", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory) -> Path:
    return write_synthetic_study(tmp_path_factory.mktemp("paper") / "study")


@pytest.fixture(scope="module")
def paper(study_dir) -> tuple[Path, dict[str, bytes], dict[str, bytes]]:
    """The paper drawn twice into the same directory (the second run replaces the first), in two
    processes with different hash seeds: (directory, first run's bytes, second run's bytes)."""
    out = study_dir.parent / "paper"
    r = run_paper("--study", str(study_dir), "--out", str(out), hash_seed="1")
    assert r.returncode == 0, r.stderr
    first = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    r = run_paper("--study", str(study_dir), "--out", str(out), hash_seed="2")
    assert r.returncode == 0, r.stderr
    second = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    return out, first, second


def test_every_figure_is_a_valid_png_and_pdf_written_by_matplotlib(paper):
    out, _, _ = paper
    assert not out.with_name(out.name + ".partial").exists() and not out.with_name(out.name + ".old").exists()
    for stem in STEMS:
        png, pdf = (out / f"{stem}.png").read_bytes(), (out / f"{stem}.pdf").read_bytes()
        assert png.startswith(b"\x89PNG\r\n\x1a\n")
        image = matplotlib.image.imread(out / f"{stem}.png")
        assert image.shape[1] == round(figures.WIDTH * figures.STYLE["savefig.dpi"])  # the paper's full width
        assert image.shape[0] > 200 and image[..., :3].std() > 0.05  # something is drawn, not a blank page
        assert b"tEXt" not in png and b"tIME" not in png  # no software tag, no timestamp
        assert pdf.startswith(b"%PDF-") and pdf.rstrip().endswith(b"%%EOF")
        assert b"Matplotlib" in pdf and b"CreationDate" not in pdf and b"ModDate" not in pdf


def test_same_study_gives_identical_bytes(paper):
    _, first, second = paper
    assert sorted(first) == sorted([f"{s}.{e}" for s in STEMS for e in ("pdf", "png")] + ["REPORT.md"])
    for name in first:
        assert first[name] == second[name], f"{name} differs between two runs on the same study"


def _summary_rows(study_dir: Path) -> dict[tuple, dict[str, str]]:
    with open(study_dir / "summary.csv", newline="") as f:
        return {(r["rung"], r["imitator"], r["question"], r["variant"], r["metric"],
                 None if r["T"] == "" else float(r["T"])): r for r in csv.DictReader(f)}


def _coverage_rows(study_dir: Path) -> dict[tuple, str]:
    with open(study_dir / "coverage.csv", newline="") as f:
        return {(r["rung"], r["imitator"], r["question"], r["variant"]): r["status"] for r in csv.DictReader(f)}


def _tables(report: str):
    """(fixed key columns, header, rows) of every table tagged with its summary.csv key."""
    lines = report.splitlines()
    for i, line in enumerate(lines):
        m = TABLE_TAG_RE.match(line)
        if not m:
            continue
        fixed = dict(kv.split("=", 1) for kv in m.group(1).split())
        j = i + 1
        while not lines[j].startswith("|"):
            j += 1
        header = [c.strip() for c in lines[j].strip("|").split("|")]
        rows = []
        for row in lines[j + 2:]:
            if not row.startswith("|"):
                break
            rows.append([c.strip() for c in row.strip().strip("|").split(" | ")])
        yield fixed, header, rows


INTERVAL = re.compile(r"^(\S+) \[(\S+), (\S+)\]$")


def test_every_table_number_is_its_summary_row(paper, study_dir):
    out, _, _ = paper
    summary, coverage = _summary_rows(study_dir), _coverage_rows(study_dir)
    seen, checked, not_measured = set(), 0, set()
    for fixed, header, rows in _tables((out / "REPORT.md").read_text()):
        keys = [c for c in header if c in ("rung", "question", "variant", "metric", "T")]
        for row in rows:
            assert len(row) == len(header)
            cells = dict(zip(header, row))
            k = {c: cells[c] for c in keys} | fixed
            T = None if k["T"] == "" else float(k["T"])
            for imitator in header[len(keys):]:
                key = (k["rung"], imitator, k["question"], k["variant"], k["metric"], T)
                cell = cells[imitator]
                m = INTERVAL.match(cell)
                if m:
                    s = summary[key]
                    for printed, col in zip(m.groups(), ("mean", "ci_low", "ci_high")):
                        checked += 1
                        if printed == "n/a":  # a value the study left undefined (empty in summary.csv)
                            assert s[col] == "", (key, col, s[col])
                            continue
                        assert printed == fmt(float(s[col])), (key, col, printed, s[col])
                        assert float(printed) == pytest.approx(float(s[col]), rel=1e-3, abs=1e-3)
                    seen.add(key)
                else:
                    assert key not in summary, f"{key} has a summary row but the table says {cell!r}"
                    status = coverage.get(key[:4], "done")
                    assert cell == (status if status != "done" else NOT_APPLICABLE)
                    if status != "done":
                        not_measured.add((key[:4], status))
    assert set(summary) <= seen, f"summary rows missing from the tables: {sorted(set(summary) - seen, key=str)[:3]}"
    assert checked == 3 * len(summary) + 3 * sum(k[2] == "Q2" and k[4] == "continuation_ratio" and k[1] in figures.IMITATORS
                                                 for k in summary)  # the headline table repeats those rows
    # the fixture's impossible and unmeasured cells are marked as such
    assert (("darkroom9", "mixture", "Q2", "within"), "cannot") in not_measured
    assert (("darkroom5", "transformer", "Q3", "transplant"), "missing") in not_measured
    # a cell measured for one seed only: its mean shown, its interval n/a
    row = next(r for r in (out / "REPORT.md").read_text().splitlines() if r.startswith("| within | continuation_ratio | 10 |"))
    assert "[n/a, n/a]" in row


def test_report_captions_and_unmeasured_cells(paper):
    out, _, _ = paper
    report = (out / "REPORT.md").read_text()
    for i, stem in enumerate(STEMS, start=1):
        assert f"![Figure {i}" in report and f"({stem}.png)" in report
    captions = [line for line in report.splitlines() if line.startswith("*Figure ")]
    assert len(captions) == len(STEMS)
    for c in captions:  # seeds, command and commit of the data in every caption
        assert "Seeds: 0, 1, 2." in c and "`python -m experiments.paper.synthetic (seed 0)`" in c and "`0000000synthetic`" in c
    assert "95%" in captions[0] and "bootstrap" in captions[3]
    section = report.split("## Cells not measured", 1)[1]
    assert "| Q3 | transplant | missing | Dark Room 5x5: transformer | cell not run |" in section
    assert "| Q2 | within | cannot | Dark Room 9x9: mixture |" in section
    assert "~3e12 hypothesis-steps per predicted action" in section


def test_cells_not_measured_are_not_drawn(study_dir):
    study = load_study(study_dir)
    d = figures.fig_q3_new_task(study)
    axes = {ax.get_title().split("\n")[0]: ax for ax in d.figure.axes if ax.get_title()}
    panel = axes["Dark Room 5x5 — transplant"]
    labels = [line.get_label() for line in panel.get_lines()]
    assert figures.label("transformer") not in labels and figures.label("mixture") in labels
    assert "not measured: transformer missing" in " ".join(panel.get_title().split())
    # the mixture cannot run on the largest rung: no mixture line anywhere on it, in any figure
    for f in figures.FIGURES:
        drawn = f(study)
        for ax in drawn.figure.axes:
            if ax.get_title().startswith("Dark Room 9x9"):
                assert not any(line.get_color() == figures.colour("mixture") for line in ax.get_lines()), f.__name__
    assert figures.Absent("darkroom9", "mixture", "Q2", "within", "cannot", "hypothesis space exceeds the mixture's "
                          "budget at this size") in figures.fig_q2_headline(study).absent


def test_a_figure_whose_data_is_absent_is_skipped_and_said(tmp_path, study_dir):
    study = tmp_path / "study"
    shutil.copytree(study_dir, study)
    with open(study_dir / "curves.csv", newline="") as f:
        rows = [r for r in csv.reader(f)]
    with open(study / "curves.csv", "w", newline="") as f:  # no teacher_class_mass curves
        csv.writer(f).writerows(r for r in rows if r[4] != "teacher_class_mass")
    r = run_paper("--study", str(study), "--out", str(tmp_path / "paper"), "--formats", "png")
    assert r.returncode == 0, r.stderr
    report = (tmp_path / "paper" / "REPORT.md").read_text()
    assert "### Figure 6. The mixture's beliefs about the teacher\n\nNot drawn: the study has no teacher_class_mass" in report
    assert not (tmp_path / "paper" / "fig6_mixture_beliefs.png").exists()
    assert (tmp_path / "paper" / "fig4_q2_continuation_ratio.png").exists()
    assert not (tmp_path / "paper" / "fig4_q2_continuation_ratio.pdf").exists()


def test_seed_band_brackets_the_mean_and_needs_two_seeds():
    x = np.arange(5.0)
    by_seed = {0: (x, x * 0 + 1.0), 1: (x, x * 0 + 3.0), 2: (x[:3], np.array([2.0, 2.0, 2.0]))}
    xs, mean, lo, hi = figures.seed_band(by_seed)
    assert list(xs) == list(x)
    assert np.allclose(mean, [2, 2, 2, 2, 2])
    assert np.all(lo <= mean) and np.all(mean <= hi) and np.all(lo >= 1) and np.all(hi <= 3)
    _, _, lo1, _ = figures.seed_band({0: (x, x)})
    assert np.all(np.isnan(lo1))  # one seed: no band


def test_an_infinite_value_is_written_read_and_marked_not_banded():
    """A deterministic control's infinite KL is a measurement: written as inf (not a gap), read
    back, given no band, and drawn as a marker at the top of the panel."""
    import warnings

    from experiments.study.results import _fmt

    assert (_fmt(float("inf")), _fmt(float("-inf")), _fmt(float("nan")), _fmt(0.5)) == ("inf", "-inf", "", "0.5")
    x = np.arange(4.0)
    by_seed = {0: (x, np.array([np.inf, 1.0, 0.5, 0.0])), 1: (x, np.array([np.inf, np.inf, 0.7, 0.0]))}
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _, mean, lo, hi = figures.seed_band(by_seed)
        assert np.isposinf(mean[:2]).all() and np.isnan(lo[:2]).all() and np.isfinite(lo[2:]).all()
        fig, ax = figures.new_figure(1, 1)
        figures._plot_curve(ax[0, 0], by_seed, "teacher_frozen")
    markers = [ln for ln in ax[0, 0].lines if ln.get_marker() == "^"]
    assert len(markers) == 1 and list(markers[0].get_xdata()) == [0.0, 1.0]


def _bad(study: Path, out: Path, *extra: str) -> str:
    r = run_paper("--study", str(study), "--out", str(out), *extra)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{PROG}: error: "), r.stderr
    assert not out.exists() or (out / "keep").exists()
    assert not out.with_name(out.name + ".partial").exists()
    return lines[0]


def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, study_dir):
    out = tmp_path / "paper"
    assert "not a directory" in _bad(tmp_path / "nowhere", out)
    (tmp_path / "empty").mkdir()
    assert "no study.json" in _bad(tmp_path / "empty", out)

    def broken(name: str) -> Path:
        d = tmp_path / name
        shutil.copytree(study_dir, d)
        return d

    d = broken("no_summary")
    (d / "summary.csv").unlink()
    assert "summary.csv is missing" in _bad(d, out)
    d = broken("no_column")
    text = (d / "curves.csv").read_text().replace("rung,imitator,question,variant,curve,T,seed,x,y", "rung,imitator,question,variant,curve,T,seed,x,value", 1)
    (d / "curves.csv").write_text(text)
    assert "curves.csv lacks column(s) y" in _bad(d, out)
    d = broken("bad_number")
    lines = (d / "summary.csv").read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[6], "lots", 1)
    (d / "summary.csv").write_text("\n".join(lines) + "\n")
    assert "summary.csv line 4: 'lots' is not a number" in _bad(d, out)
    d = broken("not_a_study")
    (d / "study.json").write_text('{"format": "something else"}')
    assert "not a study" in _bad(d, out)
    # a complete paper is refused while a cell is missing
    assert "missing cell" in _bad(study_dir, out, "--complete")
    # an existing directory that is not a paper is never replaced
    out.mkdir()
    (out / "keep").write_text("mine")
    assert "is not a paper directory" in _bad(study_dir, out)
    assert (out / "keep").read_text() == "mine"


def test_help_explains():
    r = run_paper("--help")
    assert r.returncode == 0 and "--study" in r.stdout and "REPORT.md" in r.stdout


def test_table_numbers_keep_three_digits_and_zero_stays_zero():
    assert [fmt(x) for x in (0.0, -0.0, 0.5125, -57.7091, 0.004631, 1.5e-05, float("nan"))] == \
        ["0.000", "0.000", "0.512", "-57.709", "0.00463", "1.50e-05", "n/a"]


# ---- the scaling sweep (--scaling) -------------------------------------------------------------
SCALING_STEMS = ("figS1_scaling_continuation", "figS2_how_many_ooms")


@pytest.fixture(scope="module")
def scaling_paper(study_dir) -> tuple[Path, Path, dict[str, bytes], dict[str, bytes]]:
    """A synthetic sweep drawn with the study twice (two hash seeds): (paper, sweep, first, second)."""
    from experiments.paper.synthetic_scaling import write_synthetic_scaling

    sweep = write_synthetic_scaling(study_dir.parent / "sweep")
    out = study_dir.parent / "paper_scaling"
    runs = []
    for seed in ("3", "4"):
        r = run_paper("--study", str(study_dir), "--scaling", str(sweep), "--out", str(out), hash_seed=seed)
        assert r.returncode == 0, r.stderr
        runs.append({p.name: p.read_bytes() for p in sorted(out.iterdir())})
    return out, sweep, runs[0], runs[1]


def test_scaling_figures_are_drawn_and_deterministic(scaling_paper, paper):
    out, _, first, second = scaling_paper
    for stem in SCALING_STEMS:
        assert first[f"{stem}.png"].startswith(b"\x89PNG\r\n\x1a\n") and first[f"{stem}.pdf"].startswith(b"%PDF")
        assert matplotlib.image.imread(out / f"{stem}.png").std() > 0.01
    assert first == second
    # the study's own figures are untouched by --scaling, and a paper without it has no scaling part
    plain = paper[1]
    for name, data in plain.items():
        if name != "REPORT.md":
            assert first[name] == data, name
    assert not any(n.startswith("figS") for n in plain)
    assert "## Scaling" not in plain["REPORT.md"].decode()
    assert first["REPORT.md"].decode().startswith(plain["REPORT.md"].decode())


def test_scaling_section_numbers_are_fit_json_numbers(scaling_paper):
    import json

    from experiments.paper.scaling import METRIC_LABELS

    out, sweep, _, _ = scaling_paper
    fit = json.loads((sweep / "fit.json").read_text())
    section = (out / "REPORT.md").read_text().split("## Scaling", 1)[1]
    rows = {tuple(c.strip() for c in line.strip("|").split("|")[:2]): [c.strip() for c in line.strip("|").split("|")]
            for line in section.splitlines() if line.startswith("| rising") or line.startswith("| flat")}
    for rung, metrics in fit["fits"].items():
        for metric, f in metrics.items():
            row = rows[(rung, METRIC_LABELS[metric])]
            assert row[2] == f"{f['slope']:+.3f} [{f['slope_ci'][0]:+.3f}, {f['slope_ci'][1]:+.3f}]"
            assert row[3] == f"{f['intercept']:+.3f}"
            for cell, c in zip(row[4:6], f.get("crossings", [])):
                if c["warranted"]:
                    lo, hi = c["log10_compute_ci"]
                    assert cell == f"10^{c['log10_compute']:.1f} [10^{lo:.1f}, 10^{hi:.1f}]"
                else:
                    assert cell.startswith("not ")
    rising = fit["fits"]["rising"]["Q2_beyond_continuation_ratio"]["crossings"][1]
    assert rising["warranted"] and f"0.9 at 10^{rising['log10_compute']:.1f} FLOPs" in section
    assert "On flat," in section and "the measurements support no extrapolation" in section
    # the OOM paragraph is theory.compute's table, and the 3-5 question is in the figure's caption
    from theory import compute as TC

    for r in TC.oom_table():
        assert f"{r['name']}: {r['ooms_low']:+.1f} to {r['ooms_high']:+.1f} OOMs over the teacher" in section
    assert "3–5 OOM question" in section
    assert "![Figure S1" in section and "![Figure S2" in section


def test_a_bad_scaling_directory_exits_2_with_one_line(tmp_path, study_dir):
    out = tmp_path / "paper"
    assert "--scaling" in _bad(study_dir, out, "--scaling", str(tmp_path / "nowhere"))
    (tmp_path / "sweep").mkdir()
    assert "no fit.json" in _bad(study_dir, out, "--scaling", str(tmp_path / "sweep"))
    (tmp_path / "sweep" / "fit.json").write_text('{"format": "hypospace.study/1"}')
    (tmp_path / "sweep" / "scaling.csv").write_text("rung,params\n")
    assert "not a scaling sweep" in _bad(study_dir, out, "--scaling", str(tmp_path / "sweep"))
