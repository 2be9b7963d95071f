"""The IGBP land-cover classes (MODIS MCD12Q1 scheme, Friedl et al. 2010) as FLUXNET names them,
with the codes stored in ``igbp`` rasters. One vocabulary for readers, models and the dashboard."""

# abbreviation -> code, in code order
IGBP_CODES: dict[str, int] = {
    "ENF": 1,
    "EBF": 2,
    "DNF": 3,
    "DBF": 4,
    "MF": 5,
    "CSH": 6,
    "OSH": 7,
    "WSA": 8,
    "SAV": 9,
    "GRA": 10,
    "WET": 11,
    "CRO": 12,
    "URB": 13,
    "CVM": 14,
    "SNO": 15,
    "BSV": 16,
    "WAT": 17,
}
# code -> abbreviation
IGBP_NAMES: dict[int, str] = {code: name for name, code in IGBP_CODES.items()}
# code -> long name
IGBP_LONG_NAMES: dict[int, str] = {
    1: "evergreen needleleaf forest",
    2: "evergreen broadleaf forest",
    3: "deciduous needleleaf forest",
    4: "deciduous broadleaf forest",
    5: "mixed forest",
    6: "closed shrubland",
    7: "open shrubland",
    8: "woody savanna",
    9: "savanna",
    10: "grassland",
    11: "permanent wetland",
    12: "cropland",
    13: "urban and built-up",
    14: "cropland/natural vegetation mosaic",
    15: "snow and ice",
    16: "barren",
    17: "water bodies",
}
