"""Studies and analyses over NAS-Bench-101: what users run with the service (docs/compare.md, docs/analysis.md).

- ``search``: search-space encodings (cells; the benchmark's NASCifar10A/B/C) and seeded optimizers that only
  see the drop-in ``api.NASBench`` (local store or server).
- ``studies``: the optimizer comparison: runs as tasks (local processes or Ray), bookkeeping of simulated time
  and regret, one tidy table, the report and its plots (``nasbench compare``).
- ``analysis``: vectorized passes over the dataset's columns (budget correlation, Pareto frontier, locality,
  noise, ops), as Python functions and as ``nasbench analyze``.
"""
