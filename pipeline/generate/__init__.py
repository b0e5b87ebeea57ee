"""Synthetic request traces from a workload bundle (`servetrace generate`)."""

from servetrace.generate.compose import generate_table
from servetrace.generate.options import GenerateOptions

__all__ = ["GenerateOptions", "generate_table"]
