"""Synthetic sample districts with planted fire-safety hazards and their ground truth (firelane sample)."""

from gis.sample.build import SCALES, Sample, generate
from gis.sample.io import ledger_rows, load_sample, write_sample

__all__ = ["SCALES", "Sample", "generate", "ledger_rows", "load_sample", "write_sample"]
