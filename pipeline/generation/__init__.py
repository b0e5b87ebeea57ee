"""Synthetic request traces from a workload bundle (`servetrace generate`)."""

from servetrace.generation.compose import generate_table
from servetrace.generation.options import GenerateOptions

__all__ = ["GenerateOptions", "generate_table"]
