"""Validation of gridded products against station networks (FLUXNET towers, ISMN stations).

- :mod:`validation.matching`: pure spatial/temporal matching, anomalies, energy-balance closure
- :mod:`validation.series`: station tables and product point series to matched pairs
- :mod:`validation.analyses`: analyses run per site (configured in ``validation.yaml``)
- :mod:`validation.sources`: reads through :mod:`catalog.api`
- :mod:`validation.scoreboard`: every site of a network, in the background, cached on disk
"""
