"""Prometheus metrics of the service (one registry per app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram


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


__all__ = ["ServiceMetrics"]
