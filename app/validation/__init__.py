"""Validation of gridded products against station networks (FLUXNET towers, ISMN stations).

- :mod:`app.validation.matching`: pure spatial/temporal matching, anomalies, energy-balance closure
- :mod:`app.validation.series`: station tables and product point series to matched pairs
- :mod:`app.validation.analyses`: analyses run per site (configured in ``validation.yaml``)
- :mod:`app.validation.sources`: reads through :mod:`catalog.api`
- :mod:`app.validation.scoreboard`: every site of a network, in the background, cached on disk
"""
