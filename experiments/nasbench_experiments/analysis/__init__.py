"""The dataset analyses of the NAS-Bench-101 paper as vectorized passes over the store's columns.

Each analysis is a pure function of one ``Columns`` value (from a store, or from a server through batched
queries: the same columns, in ascending canonical key, so the same results) and returns a small result type
with arrays and an ``as_dict()`` for JSON. ``nasbench analyze`` runs them and writes a report.

Usage::

    from nasbench_experiments.analysis import columns, budget_correlation, locality
    data = columns.load("nasbench.lmdb")                  # or "grpc://127.0.0.1:50051"
    table = budget_correlation.budget_correlation(data)   # the poster's table
    table.spearman                                        # float64[6 budget pairs, 5 subsets]
    walk = locality.locality(data, walks=500)
    walk.autocorrelation[0]                               # lag 1

Modules: ``columns`` (where the data comes from), ``ranks`` (Spearman with ties, top X%), ``summary``,
``budget_correlation``, ``pareto``, ``locality`` (over ``nasbench.space``'s edit-distance-1 moves, vectorized),
``noise``, ``ops``, ``analyses`` (the analyses by name), ``report`` and ``plots`` (Markdown, JSON, PNG),
``cli`` (``nasbench analyze``).
"""
