"""Fidelity of a synthetic trace to its source: fidelity.json and an HTML page."""

from servetrace.validation.fidelity import SCHEMA, fidelity
from servetrace.validation.run import validate_traces
from servetrace.settings import FidelitySettings

__all__ = ["SCHEMA", "FidelitySettings", "fidelity", "validate_traces"]
