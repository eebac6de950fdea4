"""Prometheus metrics of one control-plane process, in a registry of its own.

A registry per `Metrics` (not the global default) lets tests build many apps in one process.
"""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Job start latency spans a process spawn on one box to a pod scheduled on a busy cluster.
_START_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


# Label values come from clients (operation names): a bounded set, or /metrics grows forever.
_OPERATION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
MAX_OPERATION_NAMES = 200


class Metrics:
    def __init__(self) -> None:
        self._operation_names: set[str] = set()
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

    def operation_label(self, name: str | None) -> str:
        """The label for an operation name: the name itself for the first
        `MAX_OPERATION_NAMES` well-formed names seen, `other` for any further one."""
        if name is None:
            return "anonymous"
        if name in self._operation_names:
            return name
        if len(self._operation_names) < MAX_OPERATION_NAMES and _OPERATION_NAME.fullmatch(name):
            self._operation_names.add(name)
            return name
        return "other"
