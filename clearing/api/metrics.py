"""Prometheus metrics of the service (one registry per app)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class ServiceMetrics:
    """Requests by route and status, latency, bids by outcome, store commit latency."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.requests = Counter(
            "qev_http_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=r,
        )
        self.latency = Histogram(
            "qev_http_request_seconds",
            "HTTP request latency by route",
            ["route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )
        self.bids = Counter(
            "qev_bids",
            "Bid writes by outcome (created, replaced, identical, cancelled) or refusal code",
            ["outcome"],
            registry=r,
        )
        self.commit = Histogram(
            "qev_store_commit_seconds",
            "Time from submit to durable commit of a bid write",
            buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25),
            registry=r,
        )
        self._request_children: dict[tuple[str, int], tuple[Any, Any]] = {}
        self._bid_children: dict[str, Any] = {}

    def observe_request(self, route: str, status: int, seconds: float) -> None:
        """Count one request of ``route`` answered with ``status`` and its latency."""
        key = (route, status)
        children = self._request_children.get(key)
        if children is None:  # label lookups are cached: routes and statuses are few
            children = (self.requests.labels(route, str(status)), self.latency.labels(route))
            self._request_children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def watch_committer(self, committer: Any) -> None:
        """Export a ``GroupCommitter``'s batch and operation counts (mean batch = ops/batches)."""
        self.registry.register(_CommitterCollector(committer))

    def bid_outcome(self, outcome: str) -> None:
        """Count one bid write by outcome or refusal code."""
        child = self._bid_children.get(outcome)
        if child is None:
            child = self._bid_children[outcome] = self.bids.labels(outcome)
        child.inc()


class _CommitterCollector(Collector):
    def __init__(self, committer: Any) -> None:
        self._committer = committer

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "qev_store_commit_batches",
            "Store transactions made by the group committer (one fsync each)",
            value=self._committer.batches,
        )
        yield CounterMetricFamily(
            "qev_store_committed_operations",
            "Bid writes applied by the group committer",
            value=self._committer.operations,
        )


__all__ = ["ServiceMetrics"]
