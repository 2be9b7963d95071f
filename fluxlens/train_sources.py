"""``fluxlens train`` across the layers: models read towers only through the catalog, so a FLUXNET
folder given as ``--sites-source`` is ingested as a station network first (``data_prep``), and the
``--sites`` list is read here; then :func:`models.commands.cmd_train` trains on the network."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from catalog import api, settings
from catalog.errors import InputError


def network_name(folder: Path) -> str:
    """The network name a folder is ingested under by default: its name, lower case, characters
    other than letters, digits, ``_`` and ``-`` replaced by ``_``."""
    return re.sub(r"[^a-z0-9_-]+", "_", folder.name.lower()).strip("_") or "fluxnet"


def source_folder(source: str) -> Path | None:
    """The folder ``source`` names: a path, or a folder under the shared sample data
    (:func:`catalog.settings.shared_data_dir`); None if it names neither."""
    if Path(source).is_dir():
        return Path(source)
    shared = settings.shared_data_dir() / source
    return shared if shared.is_dir() else None


def network_of(source: str, *, name: str | None = None) -> str:
    """The station network to train on for ``--sites-source``: a network of the catalog as it is;
    a folder of FLUXNET files ingested as network ``name`` (default :func:`network_name`). The same
    files ingested again change nothing; other files under an existing name are refused."""
    if name is None and source in api.list_networks():
        return source
    folder = source_folder(source)
    if folder is None:
        networks = ", ".join(api.list_networks()) or "none"
        raise InputError(
            f"sites source {source!r} is neither a folder, a station network of the catalog ({networks}) "
            f"nor a folder under {settings.shared_data_dir()}"
        )
    from data_prep.ingest import ingest_fluxnet

    network = name or network_name(folder)
    ingest_fluxnet([folder], name=network, mode="create")
    return network


FLUX_COLUMNS = ("LE", "H")  # a network with these columns can train an LE/H emulator


def flux_networks() -> list[str]:
    """The catalog's station networks that observe LE and H."""
    out = []
    for network in api.list_networks():
        columns = set(api.network_info(network).get("variables") or [])
        if set(FLUX_COLUMNS) <= columns:
            out.append(network)
    return out


def default_source() -> str:
    """``--sites-source`` when none is given: the catalog's one flux network (``fluxnet_demo`` after
    ``fluxlens demo``); ``InputError`` saying what to pass when there is none or several."""
    networks = flux_networks()
    if len(networks) == 1:
        return networks[0]
    if networks:
        raise InputError(
            f"the catalog has several flux networks ({', '.join(networks)}): choose one with --sites-source"
        )
    raise InputError(
        f"the catalog in {settings.data_dir()} has no station network with LE and H to train on: pass "
        "--sites-source with a folder of FLUXNET files (or the name of one under "
        f"{settings.shared_data_dir()}, e.g. fluxnet2015_monthly), or build the demo first (fluxlens demo)"
    )


def cmd_train(args: argparse.Namespace) -> int:
    from data_prep.site_lists import read_sites_file, site_records
    from models import commands

    if args.sites_source is None:
        args.sites_source = default_source()
        print(f"fluxlens train: training on station network {args.sites_source} (choose another with "
              "--sites-source)", file=sys.stderr, flush=True)  # fmt: skip
    if args.ingest_as or (
        args.sites_source not in api.list_networks() and source_folder(args.sites_source) is not None
    ):
        args.sites_source = network_of(args.sites_source, name=args.ingest_as)
    # anything else goes to the trainer as it is: it checks the settings first, then names the source
    if args.sites:
        args.site_list = site_records(read_sites_file(args.sites))
    return commands.cmd_train(args)


def add_to_train(subparsers) -> None:
    """Give ``fluxlens train`` (defined by :mod:`models.commands`) the folder ingest."""
    train = subparsers.choices["train"]
    train.add_argument(
        "--ingest-as",
        metavar="NAME",
        help="network name for a FLUXNET folder given as --sites-source (default: the folder's name)",
    )
    train.set_defaults(func=cmd_train)
