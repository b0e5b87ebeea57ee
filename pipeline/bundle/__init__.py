"""The versioned workload bundle: schema, load/save, fit from a canonical table, ServeGen import."""

from servetrace.bundle.model import SCHEMA_ID, load_bundle, save_bundle, validate_bundle

__all__ = ["SCHEMA_ID", "load_bundle", "save_bundle", "validate_bundle"]
