"""Prometheus metrics of one control-plane process, in a registry of its own.

A registry per `Metrics` (not the global default) lets tests build many apps in one process.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Job start latency spans a process spawn on one box to a pod scheduled on a busy cluster.
_START_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.graphql_operations = Counter(
            "glia_graphql_operations",
            "GraphQL operations executed, by operation name, type and outcome",
            ["operation", "type", "outcome"],
            registry=self.registry,
        )
        self.graphql_duration = Histogram(
            "glia_graphql_operation_duration_seconds",
            "Time to execute a GraphQL query or mutation",
            ["type"],
            registry=self.registry,
        )
        self.http_requests = Counter(
            "glia_http_requests",
            "HTTP requests, by route and status code",
            ["route", "status"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "glia_jobs", "Jobs by status, as stored", ["status"], registry=self.registry
        )
        self.job_start_latency = Histogram(
            "glia_job_start_latency_seconds",
            "Time from a job's submission to its workload running",
            buckets=_START_BUCKETS,
            registry=self.registry,
        )
