"""Draw the paper from a study's output directory: every figure (PDF for the paper, PNG for the
web) and REPORT.md, with the headline tables generated from summary.csv.

Reads STUDY_DIR/study.json, summary.csv, curves.csv and coverage.csv (results.csv must be present
too) and recomputes nothing. A figure whose data the study lacks is skipped and the report says
why; cells coverage.csv marks missing or cannot are listed in the report, never drawn as zero.
The output is written to PAPER_DIR.partial and renamed to PAPER_DIR only when complete; an
existing PAPER_DIR is replaced only if it is a previous paper (it holds a REPORT.md). The same
study gives byte-identical files.

With --scaling SWEEP_DIR (the output of python -m experiments.scaling) the paper also draws the
continuation ratio against training compute with its fit, and the "how many OOMs" figure, and
REPORT.md gains a section generated from the sweep's fit.json.

example:
  python -m experiments.study --preset smoke --out /tmp/study
  python -m experiments.paper --study /tmp/study --out /tmp/paper
  python -m experiments.scaling --preset smoke --out /tmp/sweep
  python -m experiments.paper --study /tmp/study --scaling /tmp/sweep --out /tmp/paper
"""
from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

import matplotlib
from tqdm import tqdm

from experiments.cli import fail
from experiments.paper.figures import FIGURES
from experiments.paper.style import STYLE, save
from experiments.paper.load import Study, StudyError, load_study
from experiments.paper.report import write_report
from experiments.paper.scaling import Scaling, draw_scaling, load_scaling, report_section

PROG = "python -m experiments.paper"
FORMATS = ("pdf", "png", "svg")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--study", required=True, metavar="STUDY_DIR", help="a study's output directory (python -m experiments.study --out)")
    p.add_argument("--out", required=True, metavar="PAPER_DIR", help="where to write the figures and REPORT.md")
    p.add_argument("--formats", default="pdf,png",
                   help="comma-separated figure formats among pdf, png, svg (default pdf,png; the report shows png if written)")
    p.add_argument("--scaling", metavar="SWEEP_DIR", default=None,
                   help="a scaling sweep's output directory (python -m experiments.scaling --out): adds its two "
                        "figures and a REPORT.md section")
    p.add_argument("--complete", action="store_true",
                   help="refuse (exit 2) a study whose coverage.csv lists a missing cell: for the paper of a finished study")
    return p


def build(study: Study, out: Path, formats: tuple[str, ...], scaling: Scaling | None = None) -> list[str]:
    """Write the paper into ``out`` (which must not exist); returns one line per figure."""
    out.mkdir(parents=True)
    lines, drawn = [], []
    with matplotlib.rc_context(STYLE):
        for f in tqdm(FIGURES, desc="figures", disable=None, leave=False):
            d = f(study)
            if d.figure is not None:
                save(d, out, formats)
                lines.append(f"{d.stem}: {', '.join(formats)}")
            else:
                lines.append(f"{d.stem}: skipped ({d.skipped})")
            drawn.append(d)
    report = write_report(study, drawn, out, formats)
    if scaling is not None:
        with matplotlib.rc_context(STYLE):
            extra, oom_rows = draw_scaling(scaling)
            for d in extra:
                if d.figure is not None:
                    save(d, out, formats)
                    lines.append(f"{d.stem}: {', '.join(formats)}")
                else:
                    lines.append(f"{d.stem}: skipped ({d.skipped})")
        report.write_text(report.read_text() + "\n" + report_section(scaling, extra, formats, oom_rows))
    return lines


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    formats = tuple(dict.fromkeys(f.strip().lower() for f in args.formats.split(",") if f.strip()))
    bad = [f for f in formats if f not in FORMATS]
    if not formats or bad:
        fail(PROG, f"--formats: {', '.join(bad) or 'none given'} not among {', '.join(FORMATS)}")
    study_dir, out = Path(args.study), Path(args.out)
    try:
        study = load_study(study_dir)
        scaling = load_scaling(args.scaling) if args.scaling is not None else None
    except StudyError as e:
        fail(PROG, str(e))
    if args.complete:
        missing = [k for k, c in study.coverage.items() if c.status == "missing"]
        if missing:
            fail(PROG, f"--complete: coverage.csv lists {len(missing)} missing cell(s), e.g. {'/'.join(missing[0])}")
    if out.exists() and not (out.is_dir() and (out / "REPORT.md").is_file()):
        fail(PROG, f"--out {out} exists and is not a paper directory (no REPORT.md); it is never replaced")
    if out.resolve() == study_dir.resolve() or study_dir.resolve() in out.resolve().parents:
        fail(PROG, "--out must lie outside the study directory")
    partial = out.with_name(out.name + ".partial")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if partial.exists():
            shutil.rmtree(partial)  # a previous run's unfinished output: ours by its name
        lines = build(study, partial, formats, scaling)
        if out.exists():
            old = out.with_name(out.name + ".old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(out, old)
            os.replace(partial, out)
            shutil.rmtree(old)
        else:
            os.replace(partial, out)
    except StudyError as e:
        shutil.rmtree(partial, ignore_errors=True)
        fail(PROG, str(e))
    except OSError as e:
        shutil.rmtree(partial, ignore_errors=True)
        fail(PROG, f"cannot write {e.filename or out}: {e.strerror}")
    for line in lines:
        print(line)
    print(f"wrote {out / 'REPORT.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
