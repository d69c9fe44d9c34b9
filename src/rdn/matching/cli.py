"""``rdn match``: fit the scorer on past placements, solve a placement problem from files.

Exit status: 0 done; 2 bad input (the message names the file, row and column; nothing is written).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(help="Matching for analysts: fit the scorer on past placements, solve placements from files.",
                  no_args_is_help=True)
out_console = Console()
err = Console(stderr=True)

STAGE_TEXT = {"reading": "Reading the files", "scoring": "Scoring every case at every site",
              "solving": "Solving the placement problem", "writing": "Writing the assignments and the report"}


def _fail(message: str) -> typer.Exit:
    err.print(message, style="red", markup=False, highlight=False, soft_wrap=True)
    return typer.Exit(2)


@app.command("solve")
def solve_command(
    cases: Annotated[Path, typer.Option("--cases", help="cases.csv: case_id, people, need_*, priority, "
                                                        "excluded_countries, tie_site, scorer columns")],
    sites: Annotated[Path, typer.Option("--sites", help="sites.csv: site_id, country, capacity_*, scorer columns")],
    out: Annotated[Path, typer.Option("--out", help="assignments.csv to write: case_id, site_id, score")],
    report: Annotated[Path, typer.Option("--report", help="report.json to write")],
    scores: Annotated[Path | None, typer.Option(
        "--scores", help="Scores instead of the scorer: a .npy matrix (cases x sites) or a .csv/.parquet file of "
                         "case_id, site_id, score")] = None,
    coefficients: Annotated[Path | None, typer.Option(
        "--coefficients", help="The scorer's coefficients file (default: the packaged illustrative one)")] = None,
) -> None:
    """Place cases at sites from files: assignments.csv and report.json.

    Every capacity, exclusion and family tie is respected; the total predicted outcome (weighted by priority) is
    as high as possible. The report holds the objective, the upper bound, the gap and the use of each site and
    country. Bad input: exit status 2, a message naming the file, row and column, nothing written."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from rdn.matching import files
    from rdn.matching.scoring import CoefficientsError, InputError, load_scorer

    if scores is not None and coefficients is not None:
        raise _fail("--scores and --coefficients: give one or the other (scores from a file are not scored)")
    try:
        scorer = load_scorer(coefficients) if coefficients is not None else None
        with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=err,
                      transient=False) as progress:
            tasks: list[int] = []

            def stage(name: str) -> None:
                if tasks:
                    progress.update(tasks[-1], completed=1, total=1)
                text = f"Reading the scores ({scores.name})" if name == "scoring" and scores else STAGE_TEXT[name]
                tasks.append(progress.add_task(text, total=None))

            result = files.solve_files(cases, sites, out=out, report_path=report, scores=scores, scorer=scorer,
                                       progress=stage)
            if tasks:
                progress.update(tasks[-1], completed=1, total=1)
    except (InputError, CoefficientsError) as exc:
        raise _fail(str(exc)) from None
    r = result.report
    out_console.print(
        f"Placed {r['placed']:,} of {r['cases']:,} cases ({r['people']['placed']:,} people) at "
        f"{sum(1 for s in r['sites'].values() if s['cases']):,} sites in "
        f"{sum(1 for c in r['countries'].values() if c['cases']):,} countries; objective {r['objective']:,.2f}, "
        f"upper bound {r['upper_bound']:,.2f}, gap {r['gap']:.3%} ({r['method']}, {r['seconds']:.1f} s). "
        f"Wrote {out} and {report}.", markup=False, highlight=False, soft_wrap=True)


@app.command("fit")
def fit_command(
    outcomes: Annotated[Path, typer.Argument(help="OUTCOMES.csv: one row per placed case with adults, "
                                                  "employed_adults, case columns and site_ columns")],
    out: Annotated[Path, typer.Option("--out", help="The coefficients file to write")] = Path("coefficients.json"),
    test_share: Annotated[float, typer.Option("--test-share", min=0.05, max=0.9,
                                              help="Share of cases held out to measure the model")] = 0.25,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the held-out draw")] = 0,
) -> None:
    """Fit the scorer on past placements: held-out AUC and calibration, a coefficients file.

    OUTCOMES.csv has one row per placed case (adults, employed_adults, the case's columns, the site's columns
    prefixed with site_). The file written is what `rdn match solve --coefficients` loads. Bad input: exit
    status 2, nothing written."""
    from rich.table import Table

    from rdn.matching.fit import fit_file
    from rdn.matching.scoring import FEATURES, InputError

    if not out.resolve().parent.is_dir():
        raise _fail(f"{out}: --out: the folder {out.resolve().parent} does not exist")
    try:
        with err.status("Fitting"):
            report = fit_file(outcomes, out, test_share=test_share, seed=seed)
    except InputError as exc:
        raise _fail(str(exc)) from None
    table = Table(title=f"Coefficients (logit scale), written to {out}")
    for column in ("feature", "coefficient", "center", "what it is"):
        table.add_column(column, justify="right" if column in ("coefficient", "center") else "left")
    table.add_row("intercept", f"{report.coefficients.intercept:+.3f}", "", "baseline at every feature's center")
    for name, c in report.coefficients.features.items():
        note = " (no data: 0)" if name in report.missing else ""
        table.add_row(name, f"{c.value:+.3f}", f"{c.center:g}", FEATURES[name].label + note)
    out_console.print(table)
    calibration = Table(title="Calibration on the held-out cases, by decile of predicted probability")
    for column in ("decile", "cases", "adults", "predicted", "observed"):
        calibration.add_column(column, justify="right")
    for k, d in enumerate(report.calibration, start=1):
        calibration.add_row(str(k), f"{d.cases:,}", f"{d.adults:,}", f"{d.predicted:.1%}", f"{d.observed:.1%}")
    out_console.print(calibration)
    auc = "n/a (one outcome only)" if report.auc is None else f"{report.auc:.3f}"
    brier = "n/a" if report.brier is None else f"{report.brier:.4f}"
    out_console.print(f"{report.cases:,} cases, {report.adults:,} adults, {report.employed:,} employed "
                      f"({report.employed / report.adults:.1%}); held out {report.test_cases:,} cases: AUC {auc}, "
                      f"Brier score {brier}.", markup=False, highlight=False, soft_wrap=True)
