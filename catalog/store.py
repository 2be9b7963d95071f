"""The write API of the catalog: products and station networks, crash-safe and idempotent.

One import for writers (``data_prep``, ``models``); each concern lives in its own module:
``catalog.products`` (gridded products), ``catalog.stations`` (station networks),
``catalog.commit`` (versioned folders and the crash-safe commit), ``catalog.chunking`` (chunk
policy), ``catalog.provenance`` (checksums and digests), ``catalog.plausibility`` and
``catalog.variables`` (valid ranges), ``catalog.names`` (the name rule).
"""

from catalog.chunking import map_chunks, needs_series, series_chunks
from catalog.commit import clean_stale, recover, temp_dir
from catalog.names import NAME_RE, check_name, valid_name
from catalog.products import MODES, delete_product, normalize, stored_product, write_product
from catalog.provenance import content_digest, input_digest, sha256_file, source_provenance
from catalog.stations import SITE_COLUMNS, stored_network, write_stations

__all__ = [
    "MODES",
    "NAME_RE",
    "SITE_COLUMNS",
    "check_name",
    "clean_stale",
    "content_digest",
    "delete_product",
    "input_digest",
    "map_chunks",
    "needs_series",
    "normalize",
    "recover",
    "series_chunks",
    "sha256_file",
    "source_provenance",
    "stored_network",
    "stored_product",
    "temp_dir",
    "valid_name",
    "write_product",
    "write_stations",
]
