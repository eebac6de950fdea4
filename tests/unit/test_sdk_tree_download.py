"""A whole tree's download (`StorageResource.download_tree`) writes what the server sends
below its target and nowhere else: a member named out of it, or one that is not a file, is
refused before anything of it is written."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from glia.errors import BadInput
from glia.storage import ARCHIVE_END, PIECE_BYTES, PIECE_FILES, ArchivePiece
from sdk.storage import _pack, _unpack


class _Answer(io.BytesIO):
    """The server's answer as `_unpack` reads it."""

    blank = False


def _archive(*members: tuple[str, bytes | None]) -> _Answer:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
                archive.addfile(info)
            else:
                info.size = len(data)
                archive.addfile(info, io.BytesIO(data))
    return _Answer(buffer.getvalue())


def test_files_land_below_the_target(tmp_path: Path) -> None:
    answer = _archive(("a.txt", b"a"), ("sub/deeper/b.bin", b"bb"))
    assert _unpack(answer, tmp_path / "tree", None) == (2, 3)
    assert (tmp_path / "tree" / "sub" / "deeper" / "b.bin").read_bytes() == b"bb"


@pytest.mark.parametrize("name", ["../escaped", "/tmp/absolute", "sub/../../escaped", "a\x01b"])
def test_a_member_named_out_of_the_target_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(BadInput):
        _unpack(_archive((name, b"x")), tmp_path / "tree", None)
    assert not (tmp_path / "escaped").exists()
    assert sorted(tmp_path.rglob("*")) in ([], [tmp_path / "tree"])


def test_a_link_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput):
        _unpack(_archive(("link", None)), tmp_path / "tree", None)
    assert not (tmp_path / "tree" / "link").exists()


def test_a_file_gets_the_exact_mtime_of_its_record(tmp_path: Path) -> None:
    piece = ArchivePiece()
    piece.add_file("sub/a.txt", b"abc", 1_700_000_000.375)
    assert _unpack(_Answer(piece.take() + ARCHIVE_END), tmp_path, None) == (1, 3)
    # The member's own header holds whole seconds; the piece's record the exact time.
    assert (tmp_path / "sub" / "a.txt").stat().st_mtime == 1_700_000_000.375


def test_a_file_that_does_not_match_its_recorded_checksum_is_not_kept(tmp_path: Path) -> None:
    piece = ArchivePiece()
    piece.add_file("a.txt", b"abc", 1_700_000_000)
    damaged = piece.take().replace(b"abc", b"abd")
    with pytest.raises(BadInput, match="damaged"):
        _unpack(_Answer(damaged + ARCHIVE_END), tmp_path, None)
    assert sorted(tmp_path.iterdir()) == []


def test_an_upload_piece_ends_at_its_file_count_or_its_size(tmp_path: Path) -> None:
    small = [tmp_path / f"s{index}" for index in range(PIECE_FILES + 5)]
    for path in small:
        path.write_bytes(b"x")
    files = [(path, path.name) for path in small]
    piece, index, size = _pack(files, 0)
    assert (index, size) == (PIECE_FILES, PIECE_FILES)
    unpacked = _unpack(_Answer(piece + ARCHIVE_END), tmp_path / "out", None)
    assert unpacked == (PIECE_FILES, PIECE_FILES)
    assert _pack(files, index)[1:] == (PIECE_FILES + 5, 5)

    big = [tmp_path / f"b{index}" for index in range(3)]
    for path in big:
        path.write_bytes(b"\0" * (PIECE_BYTES // 2))
    files = [(path, path.name) for path in big]
    # The piece that reached the size takes no more: two halves, then the third alone.
    assert _pack(files, 0)[1:] == (2, PIECE_BYTES)
    assert _pack(files, 2)[1:] == (3, PIECE_BYTES // 2)
