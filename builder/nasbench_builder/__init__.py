"""Builds NAS-Bench-101 stores from the original TFRecord files, and writes synthetic datasets."""
