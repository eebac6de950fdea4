"""The vocabulary of access: resource URIs, ranked actions and subjects.

A grant ``(subject, uri, action)`` allows the action and every lower one (``list < read <
write < manage``) on the URI and everything beneath it, segment by segment:
``job://c/o/alice`` covers ``job://c/o/alice/1`` but not ``job://c/o/alice2``; a scheme root
``job://`` covers every job, and the grant URI ``*`` covers every URI. Subjects are
``kind:name`` (``user:alice``, ``role:admin``).

Every side speaks this: the control plane checks grants with it, clients format the URIs they
grant on. The checks themselves live in ``control_plane.services.acl``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import IntEnum

from glia.errors import BadInput

ALL_URIS = "*"
MAX_URI_LENGTH = 400  # acl_rules.v1
MAX_SUBJECT_LENGTH = 255  # acl_rules.v0

_SCHEME = re.compile(r"[a-z][a-z0-9+.-]*")
# No whitespace, control characters, separators or wildcard-looking characters in a segment.
_SEGMENT = re.compile(r"[^\s/*?#\\\x00-\x1f\x7f]+")
_SUBJECT = re.compile(r"[a-z][a-z0-9_-]*:[^\s\x00-\x1f\x7f]+")


# -- actions ------------------------------------------------------------------------------


class Action(IntEnum):
    """Ranked actions: a grant of one covers every lower one."""

    LIST = 1
    READ = 2
    WRITE = 3
    MANAGE = 4

    @classmethod
    def parse(cls, value: str | Action) -> Action:
        """``"read"`` -> ``Action.READ``; `BadInput` for anything that is not an action."""
        if isinstance(value, Action):
            return value
        action = _ACTIONS_BY_NAME.get(value) if isinstance(value, str) else None
        if action is None:
            raise BadInput(
                f"unknown action {value!r}: expected one of list, read, write, manage",
                fields={"action": "not an action"},
            )
        return action

    @property
    def label(self) -> str:
        """The stored and displayed name: ``Action.READ.label == "read"``."""
        return self.name.lower()

    def __str__(self) -> str:
        return self.label


_ACTIONS_BY_NAME: dict[str, Action] = {action.name.lower(): action for action in Action}


# -- URIs ---------------------------------------------------------------------------------


def parse_uri(uri: str) -> tuple[str, tuple[str, ...]]:
    """Split and validate a resource URI.

    ``parse_uri("job://c1/org/proj/42") == ("job", ("c1", "org", "proj", "42"))``;
    ``parse_uri("job://") == ("job", ())`` (a scheme root). Raises `BadInput` on an empty
    segment (``a//b``, a trailing ``/``), ``.`` or ``..``, whitespace, control characters,
    ``* ? # \\``, or a URI longer than `MAX_URI_LENGTH`.
    """
    if not isinstance(uri, str) or len(uri) > MAX_URI_LENGTH:
        raise BadInput(f"invalid resource URI {uri!r}", fields={"uri": "not a resource URI"})
    scheme, sep, rest = uri.partition("://")
    if not sep or not _SCHEME.fullmatch(scheme):
        raise BadInput(
            f"invalid resource URI {uri!r}: expected scheme://segment/…",
            fields={"uri": "expected scheme://segment/…"},
        )
    if not rest:
        return scheme, ()
    segments = tuple(rest.split("/"))
    for segment in segments:
        if segment in (".", "..") or not _SEGMENT.fullmatch(segment):
            raise BadInput(
                f"invalid resource URI {uri!r}: bad segment {segment!r}",
                fields={"uri": f"bad segment {segment!r}"},
            )
    return scheme, segments


def parse_grant_uri(uri: str) -> tuple[str, tuple[str, ...]] | None:
    """Like `parse_uri`, and also accepts `ALL_URIS` (``*``), for which it returns None."""
    return None if uri == ALL_URIS else parse_uri(uri)


def check_scheme(scheme: str) -> str:
    """``scheme`` if it can start a resource URI (``job``, ``storage``); else `BadInput`."""
    if not isinstance(scheme, str) or not _SCHEME.fullmatch(scheme):
        raise BadInput(f"invalid URI scheme {scheme!r}", fields={"scheme": "not a URI scheme"})
    return scheme


def format_uri(scheme: str, segments: Sequence[str]) -> str:
    return f"{scheme}://" + "/".join(segments)


def uri_covers(grant_uri: str, uri: str) -> bool:
    """Whether a grant on ``grant_uri`` applies to ``uri``: the same URI or one beneath it,
    compared segment by segment; ``*`` covers every URI. `BadInput` on a malformed URI."""
    grant = parse_grant_uri(grant_uri)
    scheme, segments = parse_uri(uri)
    if grant is None:
        return True
    grant_scheme, grant_segments = grant
    return grant_scheme == scheme and segments[: len(grant_segments)] == grant_segments


def action_covers(granted: str | Action, requested: str | Action) -> bool:
    return Action.parse(granted) >= Action.parse(requested)


def user_subject(name: str) -> str:
    """``user_subject("alice") == "user:alice"``"""
    return validate_subject(f"user:{name}")


def role_subject(name: str) -> str:
    """``role_subject("admin") == "role:admin"``"""
    return validate_subject(f"role:{name}")


def validate_subject(subject: str) -> str:
    if (
        not isinstance(subject, str)
        or len(subject) > MAX_SUBJECT_LENGTH
        or not _SUBJECT.fullmatch(subject)
    ):
        raise BadInput(
            f"invalid subject {subject!r}: expected kind:name, like user:alice",
            fields={"subject": "expected kind:name"},
        )
    return subject
