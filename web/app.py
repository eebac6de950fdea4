"""The Reflex app: its pages, each loaded through its state's `open` (which signs in first)."""

from __future__ import annotations

import reflex as rx

from web.pages.admin import AdminState, admin
from web.pages.blobs import BlobsState, blobs
from web.pages.clusters import ClustersAdminState, clusters_admin
from web.pages.disks import DisksState, disks
from web.pages.explorer import explorer
from web.pages.job import JobState, job
from web.pages.jobs import JobsState, jobs
from web.pages.login import login
from web.pages.orgs import OrgsState, OrgState, org, orgs
from web.pages.projects import ProjectState, project
from web.pages.run import RunState, run
from web.pages.secrets import SecretsState, secrets
from web.pages.service_accounts import ServiceAccountsState, service_accounts
from web.pages.sharing import SharingState, sharing
from web.pages.storage import StorageState, storage
from web.session import SessionState

STYLE = {
    ".log-stderr": {"color": "var(--red-11)"},
    ".log-system": {"color": "var(--amber-11)", "font_style": "italic"},
}

app = rx.App(style=STYLE)
app.add_page(login, route="/login", title="Sign in · Glia")
app.add_page(lambda: rx.center(rx.spinner()), route="/", on_load=rx.redirect("/jobs"), title="Glia")
app.add_page(jobs, route="/jobs", on_load=JobsState.open, title="Jobs · Glia")
app.add_page(run, route="/run", on_load=RunState.open, title="Run a job · Glia")
app.add_page(job, route="/jobs/[job_id]", on_load=JobState.open, title="Job · Glia")
app.add_page(orgs, route="/orgs", on_load=OrgsState.open, title="Orgs · Glia")
app.add_page(org, route="/orgs/[org_name]", on_load=OrgState.open, title="Org · Glia")
app.add_page(
    project,
    route="/orgs/[org_name]/[project_name]",
    on_load=ProjectState.open,
    title="Project · Glia",
)
app.add_page(sharing, route="/sharing", on_load=SharingState.open, title="Sharing · Glia")
app.add_page(
    service_accounts,
    route="/service-accounts",
    on_load=ServiceAccountsState.open,
    title="Service accounts · Glia",
)
app.add_page(storage, route="/storage", on_load=StorageState.open, title="Storage · Glia")
app.add_page(blobs, route="/buckets", on_load=BlobsState.open, title="Buckets · Glia")
app.add_page(disks, route="/disks", on_load=DisksState.open, title="Disks · Glia")
app.add_page(secrets, route="/secrets", on_load=SecretsState.open, title="Secrets · Glia")
app.add_page(admin, route="/admin", on_load=AdminState.open, title="Admin · Glia")
app.add_page(
    clusters_admin,
    route="/admin/clusters",
    on_load=ClustersAdminState.open,
    title="Clusters · Glia",
)
app.add_page(
    explorer, route="/explorer", on_load=SessionState.require_login, title="API explorer · Glia"
)
