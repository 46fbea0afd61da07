"""Prometheus metrics in a registry owned by one app instance (no global state)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.routing import BaseRoute, Match


def route_label(scope: dict[str, Any], routes: Sequence[BaseRoute]) -> str:
    """The route template a request matched (a bounded label set: never the raw path).

    FastAPI puts its own routes in ``scope["route"]``; plain Starlette routes that FastAPI
    adds itself (``/openapi.json``) are not put there, so they are looked up here.
    """
    route = scope.get("route")
    if route is None:
        route = next((r for r in routes if r.matches(scope)[0] is Match.FULL), None)
    return str(getattr(route, "path", "unmatched"))


class _JobsCollector(Collector):
    """``sigscore_jobs{state}`` read from the job store at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]]) -> None:
        self.counts = counts

    def collect(self) -> Iterator[GaugeMetricFamily]:
        g = GaugeMetricFamily("sigscore_jobs", "Jobs by state", labels=["state"])
        try:
            for state, n in self.counts().items():
                g.add_metric([state], n)
        except Exception:  # store unreachable: readyz says so; metrics stay up
            pass
        yield g


class Metrics:
    def __init__(self, job_counts: Callable[[], dict[str, int]]) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "sigscore_http_requests",
            "HTTP requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "sigscore_http_request_duration_seconds",
            "HTTP request latency",
            ["method", "route"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.upload_bytes = Counter(
            "sigscore_upload_bytes", "Bytes received in uploads", registry=self.registry
        )
        self.registry.register(_JobsCollector(job_counts))
