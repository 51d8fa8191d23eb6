"""Features for the reference field: each series resampled to 32 points per channel, its
first difference to 16, plus summary statistics (mean, spread, quantiles, extremes and where they are, slope, roughness)."""

from harness.competitions._common import series_reference_features as load_features

__all__ = ["load_features"]
