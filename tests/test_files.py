"""Bounded reads of regular files: devices, FIFOs, directories, missing and oversized files refused."""

from __future__ import annotations

import os

import pytest

from dashboard.files import FileReadError, read_regular_file


def test_reads_a_regular_file_up_to_the_limit(tmp_path):
    path = tmp_path / "key.pem"
    path.write_bytes(b"x" * 100)
    assert read_regular_file(path, limit=100, what="key file") == b"x" * 100


def test_refuses_a_file_over_the_limit(tmp_path):
    path = tmp_path / "key.pem"
    path.write_bytes(b"x" * 101)
    with pytest.raises(FileReadError, match=f"key file {path}: larger than the 100-byte limit"):
        read_regular_file(path, limit=100, what="key file")


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/null"])
def test_refuses_devices(path):
    with pytest.raises(FileReadError, match=f"policy {path}: not a regular file"):
        read_regular_file(path, limit=10, what="policy")


def test_refuses_a_fifo_without_blocking(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(FileReadError, match="not a regular file"):
        read_regular_file(fifo, limit=10, what="policy")


def test_refuses_a_directory_and_names_a_missing_file(tmp_path):
    with pytest.raises(FileReadError, match="not a regular file"):
        read_regular_file(tmp_path, limit=10, what="policy")
    with pytest.raises(FileReadError, match=f"policy {tmp_path / 'absent'}: not found"):
        read_regular_file(tmp_path / "absent", limit=10, what="policy")


def test_unreadable_file_names_the_problem(tmp_path):
    path = tmp_path / "secret.pem"
    path.write_bytes(b"x")
    path.chmod(0)
    if os.access(path, os.R_OK):
        pytest.skip("running as a user that reads every file")
    with pytest.raises(FileReadError, match=f"key file {path}: cannot read: Permission denied"):
        read_regular_file(path, limit=10, what="key file")
