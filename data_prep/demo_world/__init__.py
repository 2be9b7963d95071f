"""The FluxLens demo world: a synthetic, physically consistent land surface (pure numpy/xarray).

Everything here is deterministic (fixed seeds) and synthetic; nothing is an observation.

Model, per land cell and day (the same equations at every resolution; fields are defined on a
0.5° reference grid and sampled at the cells or points asked for, so the small, the full and the
fine regional world are the same world):

* **Land** — Natural Earth 1:110m country polygons shipped with ``pyogrio`` (lakes from the
  Natural Earth file shipped with ``cartopy`` when present), rasterised at cell centres; an
  analytic set of continents when the shapefile is not installed.
* **Static fields** — elevation from mountain ridges (distance to polylines) plus smooth noise;
  annual mean temperature from a zonal table with a −6.5 K km⁻¹ lapse rate; seasonal amplitude
  growing with latitude and continentality (distance to the coast); annual precipitation from a
  zonal table, decaying inland, reduced in the rain shadow east of ridges in the westerlies, with
  regional monsoon / dry-interior factors and smooth noise; aridity index P / PET; IGBP land
  cover from temperature and aridity; soil water limits from a texture noise field.
* **Weather** — smooth space-time noise (cubic B-splines on coarse grids, AR(1) in time):
  cloud fraction around a climatology tied to precipitation; ``sw_in`` = top-of-atmosphere daily
  insolation (solar geometry, FAO-56 eq. 21) × (0.76 − 0.52 cloud); ``ta`` = seasonal temperature
  + anomaly; ``precip`` where a storm noise field (correlated with clouds) exceeds a quantile set by
  the wet-day frequency, amounts scaled to the seasonal climatology; ``vpd`` from saturation vapour
  pressure (Magnus) and a relative humidity of cloud and wetness; ``lw_in`` such that the net
  longwave at surface = air temperature is FAO-56's (eq. 39, cloud-corrected); ``ws`` lognormal
  around a windiness climatology.
* **Land surface** (daily loop, state spun up over September–December first) — degree-day
  snowpack; a 0–5 cm bucket (50 mm) for ``ssm`` filled by rain and melt (little infiltration into
  frozen soil), emptied by evaporation, drainage above field capacity and exchange with a slower
  root-zone store; LAI relaxing towards a target set by temperature and root-zone moisture; NDVI
  from LAI (Beer's-law form), lowered under snow.
  Energy: albedo from land cover and snow; surface temperature above air temperature for dry,
  sunny surfaces; ``rn = (1 − α) sw_in + 0.97 (lw_in − σ Ts⁴)``; ``g = (0.04 + 0.10 e^(−LAI/2)) rn``;
  available energy ``A = rn − g``; evaporative fraction ``EF`` from soil-moisture stress (surface
  for bare soil, root zone for vegetation), vegetation cover and temperature; ``le = EF·A``,
  ``h = A − le``. Fluxes are quantised to 1/4 W m⁻² so that ``rn − g == le + h`` holds exactly
  in float32.
* **1 km region** — the coarse ``ssm`` interpolated bilinearly, with a static texture /
  topographic-wetness pattern and rain-cell imprints that dry out in a few days.

Quantising every field to a power-of-two step keeps the values exact and the stores compact.

Modules: ``spec`` (the sizes and the seed), ``grid`` (grids, interpolation weights, quantisation),
``land`` (land mask), ``noise`` (smooth noise), ``static`` (static fields), ``weather`` (daily
forcing), ``surface`` (the land-surface model), ``world`` (the model at points and on a grid),
``region`` (the 1 km region). This package exposes what the demo builder and its sensors use.
"""

from data_prep.demo_world.grid import grid_centres, interpolation_matrix, quantize
from data_prep.demo_world.land import land_mask, natural_earth_paths
from data_prep.demo_world.noise import grid_daily_noise, grid_noise, rng_for
from data_prep.demo_world.region import gssm_region
from data_prep.demo_world.spec import FINE, FULL, GLOBE, SEED, SMALL, DemoSpec
from data_prep.demo_world.static import REFERENCE_RES, StaticFields, reference_static
from data_prep.demo_world.weather import toa_shortwave
from data_prep.demo_world.world import (
    FLUX_VARS,
    FORCING_VARS,
    GridWorld,
    simulate_grid,
    simulate_points,
    world_res,
)

__all__ = [
    "FINE",
    "FLUX_VARS",
    "FORCING_VARS",
    "FULL",
    "GLOBE",
    "REFERENCE_RES",
    "SEED",
    "SMALL",
    "DemoSpec",
    "GridWorld",
    "StaticFields",
    "grid_centres",
    "grid_daily_noise",
    "grid_noise",
    "gssm_region",
    "interpolation_matrix",
    "land_mask",
    "natural_earth_paths",
    "quantize",
    "reference_static",
    "rng_for",
    "simulate_grid",
    "simulate_points",
    "toa_shortwave",
    "world_res",
]
