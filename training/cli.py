"""The ``nacond`` command line (typer)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="nacond",
    help="Ionic conductivity and activation energy of Na-ion solid electrolytes: data, training, prediction.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
data_app = typer.Typer(help="Check and summarise a conductivity dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DatasetArg = Annotated[
    Path | None,
    typer.Argument(help="Dataset folder (with data.csv + metadata.json) or CSV file; default: the bundled one."),
]


def _fail(message: str, code: int = 2) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@data_app.command("validate")
def data_validate(
    path: DatasetArg = None,
    warnings: Annotated[bool, typer.Option("--warnings/--no-warnings", help="List warnings too.")] = False,
) -> None:
    """Check schema, formulas, units, provenance, ids, duplicates and checksum; exit 1 on any error."""
    from ml.data import validate_dataset
    from ml.errors import NacondError

    try:
        report = validate_dataset(path)
    except NacondError as exc:
        _fail(str(exc))
    for f in report.errors + (report.warnings if warnings else []):
        typer.echo(str(f))
    typer.echo(f"{report.path}: {report.n_rows} rows, {len(report.errors)} errors, "
               f"{len(report.warnings)} warnings" + ("" if warnings or not report.warnings else
                                                    " (--warnings lists them)"))
    if not report.ok:
        raise typer.Exit(1)


@data_app.command("stats")
def data_stats(
    path: DatasetArg = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Counts per family, structure type, Ea coverage, provenance and temperature band."""
    from ml.data import dataset_stats, load_dataset
    from ml.errors import NacondError

    try:
        stats = dataset_stats(load_dataset(path))
    except NacondError as exc:
        _fail(str(exc))
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    p = stats["provenance"]
    typer.echo(f"rows {stats['rows']}  compositions {stats['compositions']}  with sigma {stats['with_sigma']}  "
               f"with Ea {stats['with_ea']}  sigma at 20-30 C {stats['rt_sigma_rows']}  censored "
               f"{stats['censored']}")
    typer.echo(f"provenance: DOI {p['doi']}  seed_ref {p['seed_ref']}  (DOI or seed_ref {p['doi_or_seed_ref_pct']}%)"
               f"  evidence seen {p['evidence_seen_pct']}%  papers {p['papers']}")
    typer.echo("\nfamily            rows  with_Ea  rt_sigma  compositions")
    for fam, v in sorted(stats["families"].items(), key=lambda kv: -kv[1]["rows"]):
        typer.echo(f"{fam:16s} {v['rows']:5d} {v['with_ea']:8d} {v['rt_sigma']:9d} {v['compositions']:13d}")
    typer.echo(f"families with >= 10 rows: {stats['families_with_10_rows']}")
    typer.echo("\nstructure type                 rows")
    for st, n in stats["structure_types"].items():
        typer.echo(f"{st:30s} {n:5d}")
    typer.echo("\ntemperature band           rows")
    for band, n in stats["temperature_bands"].items():
        typer.echo(f"{band:25s} {n:5d}")
    if stats["qualified"]:
        typer.echo("\nqualified values: " + ", ".join(f"{k} {v}" for k, v in stats["qualified"].items()))


def main() -> None:  # pragma: no cover - console entry for `python -m training.cli`
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
