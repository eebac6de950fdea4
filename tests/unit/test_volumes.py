"""The volume notation (`glia.volumes`): what parses, what is refused, and why."""

from __future__ import annotations

import pytest

from glia.errors import BadInput
from glia.volumes import Volume, VolumeKind, check_volumes, format_volume, parse_volume


@pytest.mark.parametrize(
    ("text", "kind", "ref", "path", "read_only"),
    [
        ("storage:data:/var/data:ro", VolumeKind.STORAGE, "data", "/var/data", True),
        ("storage:/acme/vision/x:/data", VolumeKind.STORAGE, "/acme/vision/x", "/data", False),
        ("storage://c/acme/vision/x:/data:rw", VolumeKind.STORAGE, "//c/acme/vision/x", "/data",
         False),
        ("disk:scratch:/mnt/d", VolumeKind.DISK, "scratch", "/mnt/d", False),
        ("secret:api-key:/etc/key", VolumeKind.SECRET, "api-key", "/etc/key", True),
        ("secret:api-key:/opt/app/key:ro", VolumeKind.SECRET, "api-key", "/opt/app/key", True),
    ],
)  # fmt: skip
def test_what_parses(text: str, kind: VolumeKind, ref: str, path: str, read_only: bool) -> None:
    volume = parse_volume(text)
    assert (volume.kind, volume.ref, volume.mount_path, volume.read_only) == (
        kind,
        ref,
        path,
        read_only,
    )
    assert parse_volume(format_volume(volume)) == volume


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("bucket:x:/data", "starts with storage:, disk: or secret:"),
        ("storage:/data", "expected storage:REF:PATH"),
        ("storage:x:data", "absolute path"),
        ("storage:x:/", "absolute and normal"),
        ("storage:x:/a/../usr", "absolute and normal"),
        ("storage:x:/usr/local", "inside /usr"),
        ("disk:x:/proc/x", "inside /proc"),
        ("disk:x:/job/work", "inside /job"),
        ("storage:x:/etc/app", "only a secret's file goes under /etc"),
        ("secret:k:/etc/passwd", "only a secret's file goes under /etc"),
        ("secret:k:/opt/k:rw", "read-only"),
        ("storage:x:/a b", "absolute path"),
    ],
)
def test_what_is_refused(text: str, why: str) -> None:
    with pytest.raises(BadInput) as refused:
        parse_volume(text)
    assert why in refused.value.message


def test_two_volumes_at_one_path_are_refused() -> None:
    one = Volume(kind=VolumeKind.DISK, ref="a", mount_path="/mnt/a")
    other = Volume(kind=VolumeKind.STORAGE, ref="b", mount_path="/mnt/a")
    with pytest.raises(ValueError, match="two volumes are mounted at /mnt/a"):
        check_volumes((one, other))
    assert check_volumes((one,)) == (one,)
