"""FluxLens: explore and validate global land flux and soil-moisture datasets."""

__version__ = "0.1.0"
