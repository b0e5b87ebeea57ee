"""The distribution families' names: one vocabulary for stages, bundle, generate, validate and
exports, importable without the numerical libraries (reading a bundle needs only these)."""

from __future__ import annotations

IAT_FAMILIES = ("exponential", "gamma", "weibull", "lognormal")
LENGTH_FAMILIES = ("lognormal", "pareto_lognormal", "exponential", "zipf", "gamma")
N_PARAMS = {"exponential": 1, "gamma": 2, "weibull": 2, "lognormal": 2, "zipf": 1, "pareto_lognormal": 5}


# Family names everywhere (stages, bundle, generate, validate) are these lowercase ones; v1 bundles
# written before and ServeGen's ArrivalPat spell the renewal families with a capital.
LEGACY_NAMES = {"Gamma": "gamma", "Weibull": "weibull", "Exponential": "exponential"}
SERVEGEN_NAMES = {"gamma": "Gamma", "weibull": "Weibull"}  # ServeGen's ArrivalPat, for its trace CSVs


def canonical(name: str | None) -> str | None:
    """A family name in this module's vocabulary (maps the capitalized names of v1 bundles)."""
    return LEGACY_NAMES.get(name, name) if name is not None else None
