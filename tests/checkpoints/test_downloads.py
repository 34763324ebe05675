"""Downloads: nothing shorter or longer than the remote file is accepted."""

import hashlib
import os

import pytest
from conftest import ReleaseServer

from keras_xlnet.checkpoints.downloads import DownloadError
from keras_xlnet.checkpoints.downloads import download

BODY = os.urandom(300_000)


@pytest.fixture
def server():
    server = ReleaseServer({"file.bin": BODY})
    yield server
    server.shutdown()


def test_unannounced_size_cut_short_is_refused_then_resumed(server, tmp_path):
    """Without Content-Length a dropped connection looks like the end of
    the file: the server is asked whether more follows."""
    server.omit_length = True
    server.cut_after = 100_000
    destination = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="file goes on; call again"):
        download(server.url("file.bin"), destination)
    assert not destination.exists()
    assert os.path.getsize(f"{destination}.part") == 100_000
    download(server.url("file.bin"), destination)
    assert destination.read_bytes() == BODY
    assert server.requests[-2:] == [
        ("file.bin", "bytes=100000-"),
        ("file.bin", "bytes=300000-"),  # Confirmed: nothing follows.
    ]


def test_unannounced_size_without_ranges_needs_a_checksum(server, tmp_path):
    server.omit_length = True
    server.ignore_ranges = True
    destination = tmp_path / "file.bin"
    with pytest.raises(DownloadError, match="cannot be verified as complete"):
        download(server.url("file.bin"), destination)
    assert not destination.exists()
    sha256 = hashlib.sha256(BODY).hexdigest()
    download(server.url("file.bin"), destination, sha256)
    assert destination.read_bytes() == BODY


def test_partial_file_longer_than_the_remote_one_is_discarded(server, tmp_path):
    destination = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(os.urandom(len(BODY) + 10))
    download(server.url("file.bin"), destination)
    assert destination.read_bytes() == BODY
    assert server.requests == [
        ("file.bin", f"bytes={len(BODY) + 10}-"),  # HTTP 416.
        ("file.bin", None),
    ]


def test_partial_file_of_the_full_size_is_complete(server, tmp_path):
    destination = tmp_path / "file.bin"
    (tmp_path / "file.bin.part").write_bytes(BODY)
    download(server.url("file.bin"), destination)
    assert destination.read_bytes() == BODY
    assert server.requests == [("file.bin", f"bytes={len(BODY)}-")]
