"""Every GraphQL document the SDK sends, in one place.

Selections are generated from the kernel models the SDK returns (`selection`), so a field
added to a model is requested without touching this file, and `DOCUMENTS` is validated
against the committed schema (graph/schema.graphql) by a test: a schema change that breaks
the SDK fails CI.
"""

from __future__ import annotations

from glia.auth import Token, User
from glia.clusters import Cluster, ClusterConfig, Preset
from glia.disks import Disk
from glia.jobs import Job
from glia.model import Model, model_in
from glia.monitoring import LogLine, LogText
from glia.quotas import Quota
from glia.secrets import Secret, SecretsRotation
from glia.storage import DiskUsage, FileStatus, StorageUsage
from glia.telemetry import TelemetryHistory, TelemetrySample
from glia.tenancy import GrantEntry, Member, Org, Project, Role, ServiceAccount


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
_ORG = selection(Org)
_PROJECT = selection(Project)
_MEMBER = selection(Member)
_GRANT = selection(GrantEntry)
_ROLE = selection(Role)
_SERVICE_ACCOUNT = selection(ServiceAccount)

_PAGE_INFO = "pageInfo { hasNextPage hasPreviousPage startCursor endCursor } totalCount"
_PAGE_ARGUMENTS = "$first: Int, $after: String, $last: Int, $before: String"
_PAGE = "first: $first, after: $after, last: $last, before: $before"

LOGIN = f"""mutation Login($input: LoginInput!) {{
    login(input: $input) {{ token user {{ {_USER} }} }}
}}"""
LOGOUT = "mutation Logout { logout { tokenId } }"
ME = f"query Me {{ me {{ {_USER} }} }}"
CREATE_USER = f"""mutation CreateUser($input: CreateUserInput!) {{
    createUser(input: $input) {{ user {{ {_USER} }} password }}
}}"""
CHANGE_PASSWORD = f"""mutation ChangePassword($input: ChangePasswordInput!) {{
    changePassword(input: $input) {{ user {{ {_USER} }} }}
}}"""
TOKENS = f"query Tokens {{ tokens {{ {selection(Token)} }} }}"
REVOKE_TOKEN = """mutation RevokeToken($input: RevokeTokenInput!) {
    revokeToken(input: $input) { tokenId }
}"""

USERS = f"""query Users({_PAGE_ARGUMENTS}) {{
    users({_PAGE}) {{ edges {{ cursor node {{ {_USER} }} }} {_PAGE_INFO} }}
}}"""
USER = f"query User($name: String!) {{ user(name: $name) {{ {_USER} }} }}"
UPDATE_USER = f"""mutation UpdateUser($input: UpdateUserInput!) {{
    updateUser(input: $input) {{ user {{ {_USER} }} }}
}}"""
DELETE_USER = f"""mutation DeleteUser($input: DeleteUserInput!) {{
    deleteUser(input: $input) {{ user {{ {_USER} }} stoppedJobs }}
}}"""
RESET_PASSWORD = f"""mutation ResetPassword($input: ResetPasswordInput!) {{
    resetPassword(input: $input) {{ user {{ {_USER} }} password }}
}}"""

CLUSTERS = f"query Clusters {{ clusters {{ {_CLUSTER} }} }}"
CLUSTER = f"query Cluster($name: String!) {{ cluster(name: $name) {{ {_CLUSTER} }} }}"
_PRESET = selection(Preset)
ADD_PRESET = f"""mutation AddPreset($input: PresetInput!) {{
    addPreset(input: $input) {{ preset {{ {_PRESET} }} }}
}}"""
UPDATE_PRESET = f"""mutation UpdatePreset($input: PresetInput!) {{
    updatePreset(input: $input) {{ preset {{ {_PRESET} }} }}
}}"""
REMOVE_PRESET = f"""mutation RemovePreset($input: RemovePresetInput!) {{
    removePreset(input: $input) {{ preset {{ {_PRESET} }} }}
}}"""
UPDATE_CLUSTER_SETTINGS = f"""mutation UpdateClusterSettings($input: UpdateClusterSettingsInput!) {{
    updateClusterSettings(input: $input) {{ cluster {{ {_CLUSTER} }} }}
}}"""
_CLUSTER_CONFIG = selection(ClusterConfig)
CLUSTER_CONFIGS = f"query ClusterConfigs {{ clusterConfigs {{ {_CLUSTER_CONFIG} }} }}"
CLUSTER_CONFIG = f"""query ClusterConfig($name: String!) {{
    clusterConfig(name: $name) {{ {_CLUSTER_CONFIG} }}
}}"""
ADD_CLUSTER = f"""mutation AddCluster($input: AddClusterInput!) {{
    addCluster(input: $input) {{ cluster {{ {_CLUSTER_CONFIG} }} gatewaySecret }}
}}"""
UPDATE_CLUSTER = f"""mutation UpdateCluster($input: UpdateClusterInput!) {{
    updateCluster(input: $input) {{ cluster {{ {_CLUSTER_CONFIG} }} }}
}}"""
REMOVE_CLUSTER = f"""mutation RemoveCluster($name: String!) {{
    removeCluster(name: $name) {{ cluster {{ {_CLUSTER_CONFIG} }} stoppedJobs }}
}}"""
BUMP_JOB_LIFE_SPAN = f"""mutation BumpJobLifeSpan($input: BumpJobLifeSpanInput!) {{
    bumpJobLifeSpan(input: $input) {{ job {{ {_JOB} }} }}
}}"""

SUBMIT_JOB = f"""mutation SubmitJob($input: SubmitJobInput!) {{
    submitJob(input: $input) {{ job {{ {_JOB} }} }}
}}"""
JOBS = f"""query Jobs($filter: JobFilter, $orderBy: JobOrder, {_PAGE_ARGUMENTS}) {{
    jobs(filter: $filter, orderBy: $orderBy, {_PAGE}) {{
        edges {{ cursor node {{ {_JOB} }} }}
        {_PAGE_INFO}
    }}
}}"""
JOB = f"query Job($id: ID) {{ job(id: $id) {{ {_JOB} }} }}"
JOB_BY_NAME = f"query JobByName($name: String) {{ job(name: $name) {{ {_JOB} }} }}"
JOB_LOG_URL = "query JobLogUrl($id: ID) { job(id: $id) { id logUrl } }"
JOB_STREAM_URLS = (
    "query JobStreamUrls($id: ID) { job(id: $id) { id execUrl attachUrl portForwardUrl } }"
)
KILL_JOB = f"""mutation KillJob($input: KillJobInput!) {{
    killJob(input: $input) {{ alreadyFinished job {{ {_JOB} }} }}
}}"""
JOB_CHANGES = f"subscription JobChanges {{ jobChanges {{ {_JOB} }} }}"
JOB_STATUS = f"subscription JobStatus($id: ID!) {{ jobStatus(id: $id) {{ {_JOB} }} }}"
_LOG_ARGUMENTS = "$id: ID!, $since: DateTime, $offset: BigInt, $tail: Int, $follow: Boolean!"
_LOG_ARGS = "id: $id, since: $since, offset: $offset, tail: $tail, follow: $follow"
JOB_LOGS = f"""subscription JobLogs({_LOG_ARGUMENTS}) {{
    jobLogs({_LOG_ARGS}) {{ offset lines {{ {selection(LogLine)} }} }}
}}"""
JOB_LOG_TEXT = f"""subscription JobLogText({_LOG_ARGUMENTS}) {{
    jobLogs({_LOG_ARGS}) {{ {selection(LogText)} }}
}}"""

ORGS = f"""query Orgs({_PAGE_ARGUMENTS}) {{
    orgs({_PAGE}) {{ edges {{ cursor node {{ {_ORG} }} }} {_PAGE_INFO} }}
}}"""
ORG = f"query Org($name: String!) {{ org(name: $name) {{ {_ORG} }} }}"
ORG_MEMBERS = f"query OrgMembers($org: String!) {{ orgMembers(org: $org) {{ {_MEMBER} }} }}"
CREATE_ORG = f"""mutation CreateOrg($input: CreateOrgInput!) {{
    createOrg(input: $input) {{ org {{ {_ORG} }} }}
}}"""
DELETE_ORG = f"""mutation DeleteOrg($input: DeleteOrgInput!) {{
    deleteOrg(input: $input) {{ org {{ {_ORG} }} }}
}}"""
ADD_ORG_CLUSTER = f"""mutation AddOrgCluster($input: OrgClusterInput!) {{
    addOrgCluster(input: $input) {{ org {{ {_ORG} }} }}
}}"""
REMOVE_ORG_CLUSTER = f"""mutation RemoveOrgCluster($input: OrgClusterInput!) {{
    removeOrgCluster(input: $input) {{ org {{ {_ORG} }} }}
}}"""
SET_ORG_MEMBER = f"""mutation SetOrgMember($input: SetOrgMemberInput!) {{
    setOrgMember(input: $input) {{ member {{ {_MEMBER} }} }}
}}"""
REMOVE_ORG_MEMBER = f"""mutation RemoveOrgMember($input: RemoveOrgMemberInput!) {{
    removeOrgMember(input: $input) {{ member {{ {_MEMBER} }} }}
}}"""

PROJECTS = f"""query Projects($org: String, {_PAGE_ARGUMENTS}) {{
    projects(org: $org, {_PAGE}) {{ edges {{ cursor node {{ {_PROJECT} }} }} {_PAGE_INFO} }}
}}"""
PROJECT = f"""query Project($org: String!, $name: String!) {{
    project(org: $org, name: $name) {{ {_PROJECT} }}
}}"""
PROJECT_MEMBERS = f"""query ProjectMembers($org: String!, $project: String!) {{
    projectMembers(org: $org, project: $project) {{ {_MEMBER} }}
}}"""
CREATE_PROJECT = f"""mutation CreateProject($input: CreateProjectInput!) {{
    createProject(input: $input) {{ project {{ {_PROJECT} }} }}
}}"""
UPDATE_PROJECT = f"""mutation UpdateProject($input: UpdateProjectInput!) {{
    updateProject(input: $input) {{ project {{ {_PROJECT} }} }}
}}"""
DELETE_PROJECT = f"""mutation DeleteProject($input: DeleteProjectInput!) {{
    deleteProject(input: $input) {{ project {{ {_PROJECT} }} }}
}}"""
SET_PROJECT_MEMBER = f"""mutation SetProjectMember($input: SetProjectMemberInput!) {{
    setProjectMember(input: $input) {{ member {{ {_MEMBER} }} }}
}}"""
REMOVE_PROJECT_MEMBER = f"""mutation RemoveProjectMember($input: RemoveProjectMemberInput!) {{
    removeProjectMember(input: $input) {{ member {{ {_MEMBER} }} }}
}}"""

CLUSTER_USERS = f"""query ClusterUsers($cluster: String!) {{
    clusterUsers(cluster: $cluster) {{ {_MEMBER} }}
}}"""
SET_CLUSTER_USER = f"""mutation SetClusterUser($input: SetClusterUserInput!) {{
    setClusterUser(input: $input) {{ member {{ {_MEMBER} }} }}
}}"""
REMOVE_CLUSTER_USER = f"""mutation RemoveClusterUser($input: RemoveClusterUserInput!) {{
    removeClusterUser(input: $input) {{ member {{ {_MEMBER} }} }}
}}"""

GRANT = f"""mutation Grant($input: GrantInput!) {{
    grant(input: $input) {{ grant {{ {_GRANT} }} warnings }}
}}"""
REVOKE = f"""mutation Revoke($input: RevokeInput!) {{
    revoke(input: $input) {{ grant {{ {_GRANT} }} }}
}}"""
PERMISSIONS = f"""query Permissions($subject: String) {{
    permissions(subject: $subject) {{ {_GRANT} }}
}}"""
SHARED = f"query Shared($subject: String) {{ shared(subject: $subject) {{ {_GRANT} }} }}"
ROLES = f"query Roles($subject: String) {{ roles(subject: $subject) {{ {_ROLE} }} }}"
ROLE_MEMBERS = f"""query RoleMembers($role: String!) {{
    roleMembers(role: $role) {{ {_GRANT} }}
}}"""
CREATE_ROLE = f"""mutation CreateRole($input: RoleInput!) {{
    createRole(input: $input) {{ role {{ {_ROLE} }} }}
}}"""
DELETE_ROLE = f"""mutation DeleteRole($input: RoleInput!) {{
    deleteRole(input: $input) {{ role {{ {_ROLE} }} }}
}}"""

SERVICE_ACCOUNTS = f"query ServiceAccounts {{ serviceAccounts {{ {_SERVICE_ACCOUNT} }} }}"
SERVICE_ACCOUNT = f"""query ServiceAccount($name: String!) {{
    serviceAccount(name: $name) {{ {_SERVICE_ACCOUNT} }}
}}"""
CREATE_SERVICE_ACCOUNT = f"""mutation CreateServiceAccount($input: CreateServiceAccountInput!) {{
    createServiceAccount(input: $input) {{ serviceAccount {{ {_SERVICE_ACCOUNT} }} token }}
}}"""
DELETE_SERVICE_ACCOUNT = f"""mutation DeleteServiceAccount($input: DeleteServiceAccountInput!) {{
    deleteServiceAccount(input: $input) {{ serviceAccount {{ {_SERVICE_ACCOUNT} }} }}
}}"""

_STORAGE_ENTRY = selection(FileStatus)

STORAGE_ENTRY = (
    f"query StorageEntry($uri: String!) {{ storageEntry(uri: $uri) {{ {_STORAGE_ENTRY} }} }}"
)
STORAGE_ENTRIES = f"""query StorageEntries($uri: String!, $first: Int, $after: String) {{
    storageEntries(uri: $uri, first: $first, after: $after) {{
        edges {{ cursor node {{ {_STORAGE_ENTRY} }} }} {_PAGE_INFO}
    }}
}}"""
STORAGE_GLOB = f"""query StorageGlob($uri: String!, $pattern: String!) {{
    storageGlob(uri: $uri, pattern: $pattern) {{ matches {{ {_STORAGE_ENTRY} }} truncated }}
}}"""
STORAGE_USAGE = f"""query StorageUsage($uri: String!) {{
    storageUsage(uri: $uri) {{ {selection(StorageUsage)} }}
}}"""
STORAGE_DISK = f"""query StorageDisk($uri: String!) {{
    storageDisk(uri: $uri) {{ {selection(DiskUsage)} }}
}}"""
STORAGE_UPLOAD_OFFSET = (
    "query StorageUploadOffset($uri: String!) { storageUploadOffset(uri: $uri) }"
)
SYNC_STORAGE_DIRECTORY = """mutation SyncStorageDirectory($input: SyncStorageDirectoryInput!) {
    syncStorageDirectory(input: $input) { upload removed }
}"""
MAKE_STORAGE_DIRECTORY = f"""mutation MakeStorageDirectory($input: MakeStorageDirectoryInput!) {{
    makeStorageDirectory(input: $input) {{ entry {{ {_STORAGE_ENTRY} }} }}
}}"""
REMOVE_STORAGE_ENTRY = """mutation RemoveStorageEntry($input: RemoveStorageEntryInput!) {
    removeStorageEntry(input: $input) { removed }
}"""
MOVE_STORAGE_ENTRY = f"""mutation MoveStorageEntry($input: StorageTransferInput!) {{
    moveStorageEntry(input: $input) {{ entry {{ {_STORAGE_ENTRY} }} }}
}}"""
COPY_STORAGE_ENTRY = f"""mutation CopyStorageEntry($input: StorageTransferInput!) {{
    copyStorageEntry(input: $input) {{ entry {{ {_STORAGE_ENTRY} }} }}
}}"""

_DISK = selection(Disk)
DISKS = f"""query Disks($cluster: String, $org: String, $project: String) {{
    disks(cluster: $cluster, org: $org, project: $project) {{ {_DISK} }}
}}"""
DISK = f"""query Disk($disk: String!, $cluster: String, $org: String, $project: String) {{
    disk(disk: $disk, cluster: $cluster, org: $org, project: $project) {{ {_DISK} }}
}}"""
CREATE_DISK = f"""mutation CreateDisk($input: CreateDiskInput!) {{
    createDisk(input: $input) {{ disk {{ {_DISK} }} }}
}}"""
DELETE_DISK = f"""mutation DeleteDisk($input: DeleteDiskInput!) {{
    deleteDisk(input: $input) {{ disk {{ {_DISK} }} }}
}}"""

_QUOTA = selection(Quota)
MY_QUOTAS = f"""query MyQuotas($org: String, $cluster: String) {{
    myQuotas(org: $org, cluster: $cluster) {{ {_QUOTA} }}
}}"""
QUOTA = f"""query Quota($target: QuotaTargetInput!) {{ quota(target: $target) {{ {_QUOTA} }} }}"""
SET_QUOTA = f"""mutation SetQuota($input: SetQuotaInput!) {{
    setQuota(input: $input) {{ quota {{ {_QUOTA} }} }}
}}"""
ADD_CREDITS = f"""mutation AddCredits($input: AddCreditsInput!) {{
    addCredits(input: $input) {{ quota {{ {_QUOTA} }} }}
}}"""

JOB_TELEMETRY = f"""subscription JobTelemetry($id: ID!) {{
    jobTelemetry(id: $id) {{ {selection(TelemetrySample)} }}
}}"""
JOB_TELEMETRY_HISTORY = f"""query JobTelemetryHistory(
    $id: ID!, $since: DateTime, $until: DateTime, $step: Int
) {{
    jobTelemetryHistory(id: $id, since: $since, until: $until, step: $step) {{
        {selection(TelemetryHistory)}
    }}
}}"""
_SECRET = selection(Secret)
SECRETS = f"""query Secrets($cluster: String, $org: String, $project: String, {_PAGE_ARGUMENTS}) {{
    secrets(cluster: $cluster, org: $org, project: $project, {_PAGE}) {{
        edges {{ cursor node {{ {_SECRET} }} }} {_PAGE_INFO}
    }}
}}"""
DELETE_SECRET = f"""mutation DeleteSecret($input: DeleteSecretInput!) {{
    deleteSecret(input: $input) {{ secret {{ {_SECRET} }} }}
}}"""
ROTATE_SECRETS_KEY = f"""mutation RotateSecretsKey {{
    rotateSecretsKey {{ rotation {{ {selection(SecretsRotation)} }} }}
}}"""

DOCUMENTS: dict[str, str] = {
    name: value
    for name, value in globals().items()
    if name.isupper() and not name.startswith("_") and isinstance(value, str)
}
