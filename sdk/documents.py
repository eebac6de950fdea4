"""Every GraphQL document the SDK sends, in one place.

Selections are generated from the kernel models the SDK returns (`selection`), so a field
added to a model is requested without touching this file, and `DOCUMENTS` is validated
against the committed schema (graph/schema.graphql) by a test: a schema change that breaks
the SDK fails CI.
"""

from __future__ import annotations

from glia.auth import User
from glia.clusters import Cluster
from glia.jobs import Job
from glia.model import Model, model_in
from glia.monitoring import LogLine, LogText


def selection(model: type[Model]) -> str:
    """Every field of ``model`` by its API name, nested models expanded.

    ``selection(Resources) == "cpu memoryMb gpu"``
    """
    parts = []
    for name, field in model.model_fields.items():
        api_name = field.alias or name
        nested = model_in(field.annotation)
        parts.append(f"{api_name} {{ {selection(nested)} }}" if nested else api_name)
    return " ".join(parts)


_USER = selection(User)
_CLUSTER = selection(Cluster)
_JOB = selection(Job)

LOGIN = f"""mutation Login($username: String!, $password: String!) {{
    login(username: $username, password: $password) {{ token user {{ {_USER} }} }}
}}"""
LOGOUT = "mutation Logout { logout }"
ME = f"query Me {{ me {{ {_USER} }} }}"
CREATE_USER = f"""mutation CreateUser($input: CreateUserInput!) {{
    createUser(input: $input) {{ user {{ {_USER} }} password }}
}}"""

CLUSTERS = f"query Clusters {{ clusters {{ {_CLUSTER} }} }}"
CLUSTER = f"query Cluster($name: String!) {{ cluster(name: $name) {{ {_CLUSTER} }} }}"

SUBMIT_JOB = f"""mutation SubmitJob($input: SubmitJobInput!) {{
    submitJob(input: $input) {{ {_JOB} }}
}}"""
JOBS = f"""query Jobs($filter: JobFilter, $first: Int, $after: String) {{
    jobs(filter: $filter, first: $first, after: $after) {{
        edges {{ cursor node {{ {_JOB} }} }}
        pageInfo {{ hasNextPage endCursor }}
        totalCount
    }}
}}"""
JOB = f"query Job($id: String!) {{ job(id: $id) {{ {_JOB} }} }}"
JOB_LOG_URL = "query JobLogUrl($id: String!) { job(id: $id) { id logUrl } }"
KILL_JOB = f"mutation KillJob($id: String!) {{ killJob(id: $id) {{ {_JOB} }} }}"
JOB_STATUS = f"subscription JobStatus($id: String!) {{ jobStatus(id: $id) {{ {_JOB} }} }}"
JOB_LOGS = f"""subscription JobLogs($id: String!, $since: DateTime, $follow: Boolean!) {{
    jobLogs(id: $id, since: $since, follow: $follow) {{ lines {{ {selection(LogLine)} }} }}
}}"""
JOB_LOG_TEXT = f"""subscription JobLogText($id: String!, $since: DateTime, $follow: Boolean!) {{
    jobLogs(id: $id, since: $since, follow: $follow) {{ {selection(LogText)} }}
}}"""

DOCUMENTS: dict[str, str] = {
    name: value
    for name, value in globals().items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}
