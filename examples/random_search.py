"""Random search with the drop-in API, several processes against one shared deployment.

    python examples/random_search.py --address grpc://127.0.0.1:50051 --processes 4 --queries 500

Each process samples cells, queries them at 108 epochs (the original random repeat, seeded per process) and
reports its best validation accuracy and its simulated training time. Point --address at several servers
(``h1:p1,h2:p2``) or at a DNS name with several records (``dns:///nasbench:50051``) to spread the load.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from pathlib import Path

from nasbench import api


def search(args: tuple[str, int, int, str | None]) -> tuple[int, float, float]:
    address, seed, queries, token = args
    nasbench = api.NASBench(address, seed=seed, token=token)
    best = 0.0
    for spec in nasbench.sample(queries, seed=seed):
        best = max(best, nasbench.query(spec)["validation_accuracy"])
    time_spent, _ = nasbench.get_budget_counters()
    return seed, best, time_spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--address", default=os.environ.get("NASBENCH_ADDRESS", "grpc://127.0.0.1:50051"))
    parser.add_argument("--processes", type=int, default=4)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--token-file", type=Path, default=os.environ.get("NASBENCH_TOKEN_FILE"))
    args = parser.parse_args()
    token = args.token_file.read_text().strip() if args.token_file else os.environ.get("NASBENCH_TOKEN")
    jobs = [(args.address, seed, args.queries, token) for seed in range(args.processes)]
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        for seed, best, time_spent in pool.map(search, jobs):
            print(f"process {seed}: best validation accuracy {best:.4f} after {time_spent / 3600:.1f} h of training")


if __name__ == "__main__":
    main()
