"""The optimizer comparison: runner, bookkeeping (simulated time, incumbent, regret), results table, report."""
