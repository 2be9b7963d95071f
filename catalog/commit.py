"""Crash-safe commits of versioned stores: at every kill point the catalog names a complete store.

Layout: a product (``area="products"``) or station network (``area="stations"``) named ``name``
lives in ``<data_dir>/<area>/<name>/v<k>/``; ``catalog.yaml`` names the version in use (entry
metadata ``store_dir``, relative to the data directory). A commit:

1. builds the new store in ``<area>/.tmp-<name>-<pid>-<uuid>/`` (no lock held) and fsyncs every
   file and folder of it (step ``built``);
2. takes the catalog lock (``locked``), checks that the product is still the one the write was based
   on, removes left-overs of earlier crashes, renames the store to the next free ``v<k>`` and fsyncs
   the parent (``moved``);
3. rewrites ``catalog.yaml``: temporary file, fsync, ``os.replace``, fsync of the data directory
   (``catalog-written`` is the point between the temporary file and the rename). The rename is the
   commit: before it the catalog names the old version, after it the new one (``committed``);
4. removes the versions the catalog no longer names (``cleaned``).

A process killed anywhere leaves the old or the new version named by the catalog, complete, and at
most some unnamed folders; :func:`recover` (run under the lock at every write) removes those. It
never removes what the catalog names, and removes nothing at all when there is no catalog file
(an unreadable catalog raises). Legacy stores written directly in ``<area>/<name>/`` (before
versions) stay readable and are replaced by ``v1`` at their next write.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

from catalog import faults, intake_catalog
from catalog.errors import InputError, StoreConflictError

AREAS = {"products": "product", "stations": "network"}  # folder -> catalog owner key
STEPS = ("built", "locked", "moved", "catalog-written", "committed", "cleaned")
VERSION_RE = re.compile(r"v(\d+)\Z")
TEMP_RE = re.compile(r"\.(tmp|old)-.+-(\d+)-[0-9a-f]{32}\Z")
ANY_BASE = object()  # commit(base=ANY_BASE): no check of what the catalog names


# ---------------------------------------------------------------- durability


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: Path) -> None:
    """fsync every file, then every folder bottom-up, below and including ``root``."""
    for dirpath, _dirs, files in os.walk(root, topdown=False):
        for f in files:
            fd = os.open(os.path.join(dirpath, f), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fsync_dir(Path(dirpath))


# ---------------------------------------------------------------- temporary folders


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def temp_dir(parent: Path, name: str, what: str = "tmp") -> Path:
    """A fresh path `.<what>-<name>-<pid>-<uuid>` in ``parent`` that :func:`clean_stale` can recognise."""
    return parent / f".{what}-{name}-{os.getpid()}-{uuid.uuid4().hex}"


def clean_stale(parent: Path) -> None:
    """Remove temporary/aside directories left by processes that no longer run."""
    if not parent.is_dir():
        return
    for d in parent.iterdir():
        m = TEMP_RE.match(d.name)
        if m and not _pid_alive(int(m.group(2))):
            shutil.rmtree(d, ignore_errors=True)


# ---------------------------------------------------------------- what the catalog names


def current_store_dir(data_dir: Path, area: str, name: str) -> Path | None:
    """The store folder the catalog names for ``name`` (None when the catalog does not list it)."""
    return named_store_dirs(data_dir, area).get(name)


def named_store_dirs(data_dir: Path, area: str) -> dict[str, Path]:
    """{owner: store folder} for every product or network of the catalog."""
    key = AREAS[area]
    out: dict[str, Path] = {}
    cat = intake_catalog.load(data_dir)
    for entry in cat.entries.values():
        meta = entry.metadata
        owner = meta.get(key)
        if owner is None or owner in out:
            continue
        rel = meta.get("store_dir") or f"{area}/{owner}"  # legacy: the store was <area>/<name>/
        out[owner] = Path(data_dir) / rel
    return out


def _versions(owner_dir: Path) -> list[tuple[int, Path]]:
    if not owner_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in owner_dir.iterdir() if (m := VERSION_RE.match(p.name))]
    return sorted(found)


def _remove_unnamed(owner_dir: Path, current: Path | None) -> list[str]:
    """Remove what ``owner_dir`` holds besides the store ``current``; returns the removed names."""
    removed = []
    if not owner_dir.is_dir():
        return removed
    if current is None:
        shutil.rmtree(owner_dir)
        return [owner_dir.name]
    if current == owner_dir:  # legacy layout in use: only versions can be left-overs
        for _k, p in _versions(owner_dir):
            shutil.rmtree(p)
            removed.append(p.name)
        return removed
    for p in owner_dir.iterdir():
        if p != current:
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
            removed.append(p.name)
    return removed


def recover(data_dir: Path, area: str) -> list[str]:
    """Remove left-overs of killed writes in ``<data_dir>/<area>``; the caller holds the lock.

    Removed: temporary folders of dead processes, versions the catalog does not name, and owner
    folders of products or networks the catalog does not list (a create or delete that was killed).
    Without a catalog file nothing but dead temporary folders is removed.
    """
    parent = Path(data_dir) / area
    clean_stale(parent)
    if not parent.is_dir() or not intake_catalog.catalog_path(data_dir).is_file():
        return []
    named = named_store_dirs(data_dir, area)
    removed = []
    for owner_dir in parent.iterdir():
        if owner_dir.name.startswith(".") or not owner_dir.is_dir():
            continue
        removed += _remove_unnamed(owner_dir, named.get(owner_dir.name))
    return removed


def _owners(data_dir: Path) -> list[str]:
    return [
        f"{area}/{p.name}"
        for area in AREAS
        if (Path(data_dir) / area).is_dir()
        for p in (Path(data_dir) / area).iterdir()
        if not p.name.startswith(".")
    ]


def ensure_catalog(data_dir: Path) -> None:
    """Create an empty catalog in a fresh data directory (the caller holds the lock), so that a
    first write killed half-way leaves something :func:`recover` can judge by. A data directory
    with stores but no catalog file is refused: it was damaged by hand, and guessing could lose data.
    """
    if intake_catalog.catalog_path(data_dir).is_file():
        return
    owners = _owners(data_dir)
    if owners:
        raise InputError(
            f"{intake_catalog.catalog_path(data_dir)} is missing but the data directory holds stores "
            f"({', '.join(owners[:5])}); restore the catalog file from a backup or move those folders "
            "aside. Nothing was changed"
        )
    intake_catalog.write_empty(data_dir)


def tidy(data_dir: Path, area: str) -> list[str]:
    """:func:`ensure_catalog` and :func:`recover` under the catalog lock (start of every write)."""
    with intake_catalog.locked(data_dir):
        ensure_catalog(data_dir)
        return recover(data_dir, area)


# ---------------------------------------------------------------- the commit


def store_dir_text(data_dir: Path, path: Path) -> str:
    """The ``store_dir`` metadata value: ``path`` relative to the data directory, posix."""
    return Path(os.path.relpath(path, data_dir)).as_posix()


def commit(
    data_dir: Path,
    area: str,
    name: str,
    tmp: Path,
    register: Callable[[Path], None],
    *,
    base=ANY_BASE,
) -> Path:
    """Move the finished store ``tmp`` into place as the next version of ``name`` and call
    ``register(version_dir)``, which rewrites the catalog entries (atomically) to name it.

    ``base``: the store folder the write was based on (None for a new product); if the catalog
    names another one by now, :class:`StoreConflictError` and nothing changes. On any exception the
    catalog is unchanged and ``tmp`` holds the store again (the caller removes it).
    """
    data_dir = Path(data_dir)
    faults.point("built")
    fsync_tree(tmp)
    with intake_catalog.locked(data_dir):
        faults.point("locked")
        ensure_catalog(data_dir)
        current = current_store_dir(data_dir, area, name)
        if base is not ANY_BASE and current != base:
            raise StoreConflictError(
                f"{AREAS[area]} {name!r} was changed by another write while this one ran; nothing was "
                "written, run it again"
            )
        recover(data_dir, area)
        owner = data_dir / area / name
        if not owner.is_dir():
            owner.mkdir()
            fsync_dir(owner.parent)
        versions = _versions(owner)
        final = owner / f"v{(versions[-1][0] if versions else 0) + 1}"
        os.rename(tmp, final)
        fsync_dir(owner)
        faults.point("moved")
        try:
            register(final)
        except BaseException:
            os.rename(final, tmp)
            raise
        faults.point("committed")
        _remove_unnamed(owner, final)
        faults.point("cleaned")
    return final


def remove(data_dir: Path, area: str, name: str) -> None:
    """Drop ``name`` from the catalog (the commit), then its folder; unknown name → InputError."""
    data_dir = Path(data_dir)
    with intake_catalog.locked(data_dir):
        if current_store_dir(data_dir, area, name) is None:
            raise InputError(f"cannot delete {AREAS[area]} {name!r}: the catalog does not list it")
        intake_catalog.set_entries(data_dir, AREAS[area], name, {})
        faults.point("committed")
        shutil.rmtree(data_dir / area / name, ignore_errors=True)


def space_error(exc: OSError, data_dir: Path, needed_bytes: float | None, what: str) -> InputError | None:
    """A clear :class:`InputError` for a full disk or a too-long path, else None."""
    if exc.errno == errno.ENOSPC:
        free = shutil.disk_usage(data_dir).free
        need = f"; this write needs up to about {needed_bytes / 2**20:,.0f} MiB" if needed_bytes else ""
        return InputError(
            f"{what}: the disk holding {data_dir} is full ({free / 2**20:,.1f} MiB free{need}); nothing "
            "was changed"
        )
    if exc.errno == errno.ENAMETOOLONG:
        return InputError(
            f"{what}: a path is too long for the filesystem ({exc.filename}); nothing was changed"
        )
    return None
