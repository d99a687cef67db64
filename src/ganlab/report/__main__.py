"""``python -m ganlab.report SWEEP_DIR [--out DIR] [--wandb]`` (or ``ganlab-report``):
write the sweep's comparison report, ``report.html`` and ``report.md``.

``--wandb`` also builds a W&B Report of the sweep's group: published at once (its URL
printed) when the runs were logged online, else written as a spec,
``<sweep dir>/wandb_report.json``, to publish after ``wandb sync`` with
``python -m ganlab.report --publish SPEC``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from ganlab.errors import UserError, fail


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not the usage block
        fail(f"{message} (see python -m ganlab.report --help)")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m ganlab.report", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sweep_dir", nargs="?", help="a multirun directory (multirun/<date>/<time>)"
    )
    parser.add_argument("--out", help="write the report here (default: the sweep directory)")
    parser.add_argument("--wandb", action="store_true", help="also build a W&B Report")
    parser.add_argument("--publish", metavar="SPEC", help="publish a W&B report spec (JSON)")
    return parser


def _wandb(sweep_dir: str, out: str | None) -> None:
    from ganlab.report.wandb_spec import build_spec, sync_command, write_spec

    spec = build_spec(sweep_dir)
    path = write_spec(spec, out or sweep_dir)
    print(f"W&B report spec: {path}")
    if any(run["offline"] for run in spec["runs"]):
        print(
            f"the runs are offline: upload them with `{sync_command(spec)}`, then publish "
            f"the report with `python -m ganlab.report --publish {path}`"
        )
        return
    from ganlab.report.publish import publish  # wandb-workspaces, torch: only to publish

    print(f"W&B report: {publish(path)}")


def run(args: argparse.Namespace) -> None:
    """Do what the parsed command line asks."""
    if args.publish:
        from ganlab.report.publish import publish

        print(f"published the W&B report: {publish(args.publish)}")
        return
    if args.sweep_dir is None:
        raise UserError("give a sweep directory (python -m ganlab.report SWEEP_DIR)")
    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise UserError(f"--out {args.out} is an existing file: name a folder for the report")
    from ganlab.report import write_report

    html = write_report(args.sweep_dir, args.out)
    print(f"report: {html}\nmarkdown: {html.with_name('report.md')}")
    if args.wandb:
        _wandb(args.sweep_dir, args.out)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m ganlab.report`` and ``ganlab-report``."""
    args = _parser().parse_args(argv)
    try:
        run(args)
    except UserError as err:
        fail(str(err))
    except Exception as err:  # noqa: BLE001 - W&B's network errors: one line, not a trace
        if not args.publish and not args.wandb:
            raise
        where = args.publish or Path(args.out or args.sweep_dir) / "wandb_report.json"
        first = str(err).splitlines()[0] if str(err) else ""
        fail(f"publishing failed ({type(err).__name__}: {first}); the spec is {where}", 1)


if __name__ == "__main__":
    main()
