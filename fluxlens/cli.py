"""The ``fluxlens`` console command: one subcommand per task, each owned by its layer."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from catalog.errors import FluxLensError

# (module, function): each function adds its subcommands; a subcommand sets ``func(args) -> int``.
COMMANDS = (
    ("data_prep.commands", "add_commands"),
    ("models.commands", "add_commands"),
    ("models.job_commands", "add_job_commands"),
    ("app.commands", "add_commands"),
    ("app.validation_cli", "add_validate_command"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fluxlens", description=__doc__)
    parser.add_argument("--data-dir", help="data directory (default: $FLUXLENS_DATA_DIR or ./fluxlens-data)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress")
    sub = parser.add_subparsers(dest="command", required=True)
    for module_name, function in COMMANDS:
        getattr(importlib.import_module(module_name), function)(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.data_dir:
        import os

        os.environ["FLUXLENS_DATA_DIR"] = args.data_dir
    try:
        return int(args.func(args) or 0)
    except FluxLensError as exc:
        print(f"fluxlens {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
