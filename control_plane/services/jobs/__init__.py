"""Jobs: submission, the status machine, reading and killing, and reconciliation."""

from control_plane.services.jobs.reconcile import ClusterReconciler
from control_plane.services.jobs.service import JobsService
from control_plane.services.jobs.status import JobStatusMachine, status_channel
from control_plane.services.jobs.submission import JobSubmitter

__all__ = [
    "ClusterReconciler",
    "JobStatusMachine",
    "JobSubmitter",
    "JobsService",
    "status_channel",
]
