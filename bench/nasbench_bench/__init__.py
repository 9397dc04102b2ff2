"""Benchmarks of nasbench-server, each measured side by side with its baseline in one run."""
