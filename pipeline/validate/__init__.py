"""Fidelity of a synthetic trace to its source: fidelity.json and an HTML page."""

from servetrace.validate.fidelity import SCHEMA, fidelity
from servetrace.validate.run import validate_traces
from servetrace.validate.settings import FidelitySettings

__all__ = ["SCHEMA", "FidelitySettings", "fidelity", "validate_traces"]
