"""Opt-in Prometheus metrics of this process's remote clients (``api.NASBench`` and ``aio.AsyncNASBench`` over
a server): calls by method and status code, cell lookups answered from the cache or not, and the retries gRPC
made underneath. Only importing this module imports ``prometheus_client`` (``pip install prometheus-client``).

Usage::

    from prometheus_client import start_http_server
    from nasbench import api, client_metrics

    client_metrics.register()        # prometheus_client's default registry, or register(registry)
    start_http_server(8001)          # your optimizer's own metrics endpoint
    nasbench = api.NASBench("grpc://nasbench:50051", token=token)

Every series carries the gRPC ``target`` the client dialled. ``nasbench_client_retries_total`` counts attempts
beyond the first (gRPC's retries of UNAVAILABLE and its transparent retries), read from gRPC's channelz
counters of this process's channels to those targets when scraped; it is absent where channelz is not
available.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from nasbench._backends.transport import STATS
from nasbench.errors import ConfigurationError

try:
    from prometheus_client import REGISTRY, CollectorRegistry
    from prometheus_client.core import CounterMetricFamily
    from prometheus_client.registry import Collector
except ImportError:  # pragma: no cover - exercised where prometheus_client is not installed
    raise ConfigurationError("nasbench.client_metrics needs prometheus_client: pip install prometheus-client") from None

__all__ = ["ClientCollector", "register"]


def register(registry: CollectorRegistry | None = None) -> ClientCollector:
    """Export the counters of every remote client of this process to ``registry`` (default: the global one).

    Returns:
      The collector (``registry.unregister(collector)`` stops the export).
    """
    collector = ClientCollector()
    (REGISTRY if registry is None else registry).register(collector)
    return collector


class ClientCollector(Collector):
    """Reads the clients' counters at each scrape (nothing is counted twice, nothing runs between scrapes)."""

    def __init__(self) -> None:
        self._retries: dict[str, int] = {}  # target -> the largest count seen (channelz forgets closed channels)

    def collect(self) -> Iterator[CounterMetricFamily]:
        calls, lookups = STATS.snapshot()
        labels = ["target", "method", "code"]
        family = CounterMetricFamily("nasbench_client_calls", "Calls by method and status code.", labels=labels)
        for (target, method, code), count in sorted(calls.items()):
            family.add_metric([target, method, code], count)
        yield family
        hits = CounterMetricFamily("nasbench_client_cache_hits", "Lookups answered from the cache.", labels=["target"])
        misses = CounterMetricFamily(
            "nasbench_client_cache_misses", "Cell lookups that asked the server.", labels=["target"]
        )
        for (target, hit), count in sorted(lookups.items()):
            (hits if hit else misses).add_metric([target], count)
        yield hits
        yield misses
        targets = {target for target, _, _ in calls} | {target for target, _ in lookups}
        retries = _retries_by_target(targets)
        if retries is not None:
            family = CounterMetricFamily(
                "nasbench_client_retries", "Call attempts beyond the first (gRPC's retries).", labels=["target"]
            )
            for target in sorted(targets):
                self._retries[target] = max(self._retries.get(target, 0), retries.get(target, 0))
                family.add_metric([target], self._retries[target])
            yield family


def _retries_by_target(targets: set[str]) -> dict[str, int] | None:
    """Attempts minus calls over this process's channels to each target, from gRPC's channelz (None if absent).

    A channel's ``callsStarted`` counts calls; its subchannels' count attempts, retries included. Channels to the
    same target may share subchannels, so each subchannel counts once per target.
    """
    try:
        # channelz's own accessors (grpcio-channelz calls the same); a private module the stubs leave out
        from grpc._cython import cygrpc  # type: ignore[attr-defined]

        channels = _top_channels(cygrpc)
    except Exception:  # channelz disabled or gone from this grpcio: no retries series
        return None
    started: dict[str, int] = {}
    subchannels: dict[str, set[int]] = {}
    for channel in channels:
        target = _ours(channel.get("data", {}).get("target", ""), targets)
        if target is None:
            continue
        started[target] = started.get(target, 0) + int(channel["data"].get("callsStarted", 0))
        subchannels.setdefault(target, set()).update(
            int(ref["subchannelId"]) for ref in channel.get("subchannelRef", [])
        )
    retries = {}
    for target, ids in subchannels.items():
        attempts = 0
        for subchannel_id in ids:
            try:
                data = json.loads(cygrpc.channelz_get_subchannel(subchannel_id))["subchannel"]["data"]
            except Exception:  # gone since the listing
                continue
            attempts += int(data.get("callsStarted", 0))
        retries[target] = max(0, attempts - started[target])
    return retries


def _top_channels(cygrpc: Any) -> list[dict[str, Any]]:
    channels: list[dict[str, Any]] = []
    start = 0
    while True:
        page = json.loads(cygrpc.channelz_get_top_channels(start))
        channels += page.get("channel", [])
        if page.get("end", True) or not page.get("channel"):
            return channels
        start = int(page["channel"][-1]["ref"]["channelId"]) + 1


def _ours(channelz_target: str, targets: set[str]) -> str | None:
    """The client target a channelz target names (gRPC prefixes scheme-less targets with ``dns:///``)."""
    if channelz_target in targets:
        return channelz_target
    bare = channelz_target.removeprefix("dns:///")
    return bare if bare in targets else None
