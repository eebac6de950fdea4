"""The sharing page's rows: who a grant comes through, and where a job's URI leads."""

from __future__ import annotations

from sdk import GrantEntry
from web.pages.sharing import grant_rows, job_link, subject_label


def test_a_subject_reads_as_you_a_user_name_or_a_role_uri() -> None:
    assert subject_label("user:alice", "alice") == "you"
    assert subject_label("user:bob", "alice") == "bob"
    assert subject_label("user:alice/ci", "alice") == "alice/ci"
    assert subject_label("role:user/alice/team", "alice") == "role://user/alice/team"


def test_only_a_jobs_own_uri_links_to_its_page() -> None:
    assert job_link("job://default/acme/vision/job-1") == "/jobs/job-1"
    assert job_link("job://default/acme/vision") == ""
    assert job_link("project://acme/vision") == ""
    assert job_link("*") == ""


def test_grant_rows_keep_the_subject_to_revoke_with() -> None:
    entry = GrantEntry(subject="role:user/alice/team", uri="job://c/o/p/job-2", action="read")
    assert grant_rows([entry], "alice") == [
        {
            "uri": "job://c/o/p/job-2",
            "action": "read",
            "subject": "role:user/alice/team",
            "who": "role://user/alice/team",
            "link": "/jobs/job-2",
        }
    ]
