"""The CLI's tenancy helpers: where a command works, the role names its help lists, and the
org and project a context keeps."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli import orgs
from cli.service_accounts import PROJECT_ROLES
from cli.session import listed_project, working_project
from glia.tenancy import CLUSTER_ROLES, ORG_ROLES
from glia.tenancy import PROJECT_ROLES as KERNEL_PROJECT_ROLES
from sdk import CliConfig, load_config, save_config
from sdk.config import Context


def test_role_names_match_the_kernel() -> None:
    assert orgs.ORG_ROLES == tuple(role.value for role in ORG_ROLES)
    assert orgs.PROJECT_ROLES == tuple(role.value for role in KERNEL_PROJECT_ROLES)
    assert orgs.CLUSTER_ROLES == tuple(role.value for role in CLUSTER_ROLES)
    assert PROJECT_ROLES == orgs.PROJECT_ROLES


ALICE = Context(server="http://glia:8080", token="t", username="alice")
IN_VISION = ALICE.replace(org="acme", project="vision")
ROBOT = Context(server="http://glia:8080", token="t", username="alice/ci")


@pytest.mark.parametrize(
    ("context", "given", "works_in", "lists"),
    [
        (ALICE, {}, (None, None), ("alice", "alice")),
        (IN_VISION, {}, ("acme", "vision"), ("acme", "vision")),
        (IN_VISION, {"project": "audit"}, ("acme", "audit"), ("acme", "audit")),
        (IN_VISION, {"org": "alice"}, ("alice", None), ("alice", None)),
        (IN_VISION, {"org": "acme"}, ("acme", "vision"), ("acme", "vision")),
        (ALICE, {"org": "x", "project": "y"}, ("x", "y"), ("x", "y")),
        (ROBOT, {}, (None, None), (None, None)),
        (ALICE.replace(token=None), {}, (None, None), (None, None)),
    ],
)
def test_where_a_command_works(
    context: Context,
    given: dict[str, str],
    works_in: tuple[str | None, str | None],
    lists: tuple[str | None, str | None],
) -> None:
    assert working_project(context, **given) == works_in
    assert listed_project(context, **given) == lists


def test_a_context_keeps_its_org_and_project(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    save_config(CliConfig.single(**IN_VISION.to_dict()), path)
    assert load_config(path).current == IN_VISION
    assert 'org = "acme"' in path.read_text()
