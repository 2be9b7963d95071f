"""``fluxlens demo``: build the synthetic demo world (:func:`data_prep.demo.build_demo`) and train
the demo emulator on its towers (:mod:`models.training`), so that a fresh data directory serves
every tab, the Models and Jobs tabs included. Composed here, in the layer that may import both:
``data_prep`` and ``models`` do not import each other. The training starts as soon as the towers and
the cubes it samples are in the catalog, while the raw-file products are still being written."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable

from catalog import settings

log = logging.getLogger(__name__)

DEMO_MODEL_ROUNDS = {False: 200, True: 60}  # boosting rounds of the demo emulator (full, small world)


def add_commands(subparsers) -> None:
    p = subparsers.add_parser(
        "demo",
        help="build the synthetic demo world into the data directory and train its demo emulator",
        description="Build the synthetic demo world into the data directory (replacing its demo "
        "products and networks), then train and register an emulator on the demo towers (not for "
        "--fine). `fluxlens serve` needs a data directory with a catalog: this makes one.",
    )
    size = p.add_mutually_exclusive_group()
    size.add_argument("--small", action="store_true", help="a small, fast demo world")
    size.add_argument(
        "--fine",
        action="store_true",
        help="regional 0.1 deg cubes (500 x 500 px, July) and stations only, for job benchmarks "
        "(no emulator is trained)",
    )
    p.set_defaults(func=run_demo)


def train_demo_model(*, small: bool = False) -> str:
    """Train and register an emulator on the demo towers of the data directory, so the Models and Jobs
    tabs work on a fresh demo world (a smaller model than ``fluxlens train``'s default)."""
    from models import training

    t0 = time.perf_counter()
    version = training.train(
        training.TrainSettings(
            sites_source="fluxnet_demo", n_folds=3, num_boost_round=DEMO_MODEL_ROUNDS[small]
        )
    )
    log.info("demo emulator %s trained in %.1f s", version, time.perf_counter() - t0)
    return version


def progress_printer(prefix: str = "fluxlens demo") -> Callable[[str], None]:
    """A ``report(text)`` that prints each step on stderr with the time since it was made."""
    t0 = time.perf_counter()

    def report(text: str) -> None:
        print(f"{prefix}: [{time.perf_counter() - t0:6.1f} s] {text}", file=sys.stderr, flush=True)

    return report


def run_demo(args: argparse.Namespace) -> int:
    from data_prep import demo, demo_world
    from data_prep.commands import run_catalog

    report = progress_printer()
    report(f"building the demo world into {settings.data_dir()}")
    spec = demo_world.FINE if args.fine else None
    trained: list[tuple[str, float]] = []

    def train() -> None:  # on the build's stations thread, beside the raw-file products
        report("training the demo emulator on the demo towers (fluxnet_demo, 3-fold CV, SHAP)")
        t0 = time.perf_counter()
        version = train_demo_model(small=args.small)
        trained.append((version, time.perf_counter() - t0))
        report(f"demo emulator trained in {trained[0][1]:.1f} s")

    demo.build_demo(
        settings.data_dir(),
        small=args.small,
        spec=spec,
        report=report,
        after_stations=None if args.fine else train,
    )
    if trained:
        ((version, seconds),) = trained
        report(f"demo world built and emulator {version} trained in {seconds:.1f} s")
        print(f"demo emulator {version} trained on fluxnet_demo in {seconds:.1f} s")
    return run_catalog(args)
