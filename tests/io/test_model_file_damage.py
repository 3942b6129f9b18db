"""load refuses every damaged, foreign or too-new file with a ModelFileError naming the problem."""

from __future__ import annotations

import io
import json
import re
import sys
import zipfile

import numpy as np
import pytest
from sklearn.base import BaseEstimator

from latentmix.io import (
    MODEL_CLASSES,
    ModelFileError,
    _container,
    _model_file,
    load,
    read_metadata,
    save,
)


class Tiny(BaseEstimator):
    def __init__(self, k=2, *, tol=1e-3):
        self.k = k
        self.tol = tol

    def fit(self, X=None, y=None):
        self.means_ = np.arange(4.0).reshape(2, 2)
        self.n_iter_ = 3
        self.feature_names_in_ = np.array(["a", "b"], dtype=object)
        return self


@pytest.fixture(autouse=True)
def _allow_tiny(monkeypatch):
    monkeypatch.setitem(MODEL_CLASSES, "Tiny", f"{Tiny.__module__}:{Tiny.__qualname__}")


@pytest.fixture
def good(tmp_path) -> bytes:
    return save(Tiny().fit(), tmp_path / "good.lmx").read_bytes()


def _metadata(data: bytes) -> dict:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return json.loads(archive.read("metadata.json"))


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {n: archive.read(n) for n in archive.namelist() if n != "metadata.json"}


def _repack(data: bytes, metadata: dict, members: dict[str, bytes] | None = None) -> bytes:
    """A file with a valid frame and checksum around edited contents (a crafted file)."""
    members = _members(data) if members is None else members
    return _container.pack(json.dumps(metadata).encode(), members)


def _load_bytes(tmp_path, data: bytes):
    path = tmp_path / "damaged.lmx"
    path.write_bytes(data)
    return load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"does not exist"):
        load(tmp_path / "nope.lmx")


def test_directory(tmp_path):
    with pytest.raises(ModelFileError, match=r"is a directory"):
        load(tmp_path)


def test_empty_file(tmp_path):
    with pytest.raises(ModelFileError, match=r"empty"):
        _load_bytes(tmp_path, b"")


def test_truncated_at_every_byte_boundary(tmp_path, good):
    path = tmp_path / "truncated.lmx"
    for size in range(len(good)):
        path.write_bytes(good[:size])
        with pytest.raises(ModelFileError, match=r"empty|truncated|corrupted|checksum"):
            load(path)


def test_a_bit_flip_in_any_byte_is_detected(tmp_path, good):
    path = tmp_path / "flipped.lmx"
    rng = np.random.default_rng(20240601)
    # Every byte once (cycling through the bit positions), then 200 random (byte, bit) pairs.
    positions = [(i, i % 8) for i in range(len(good))]
    positions += zip(rng.integers(0, len(good), 200).tolist(), rng.integers(0, 8, 200).tolist())
    for index, bit in positions:
        damaged = bytearray(good)
        damaged[index] ^= 1 << bit
        path.write_bytes(bytes(damaged))
        with pytest.raises(ModelFileError):
            load(path)


def test_checksum_mismatch_is_named(tmp_path, good):
    damaged = bytearray(good)
    damaged[len(good) // 2] ^= 0x10
    with pytest.raises(ModelFileError, match=r"corrupted: its SHA-256 checksum does not match"):
        _load_bytes(tmp_path, bytes(damaged))


def test_trailing_garbage_is_refused(tmp_path, good):
    with pytest.raises(ModelFileError):
        _load_bytes(tmp_path, good + b"\n")


def _plain_npz() -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, means_=np.zeros(3))
    return buffer.getvalue()


def _npy() -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def _zip_with_metadata_but_no_checksum() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("metadata.json", json.dumps({"format": "latentmix-model"}))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"a,b,c\n1,2,3\n", "not a latentmix model file: it is not a zip archive"),
        (b'{"format": "latentmix-model"}', "not a zip archive"),
        (_npy(), "not a zip archive"),
        (b"\x80\x04\x95pickle", "not a zip archive"),
        (_plain_npz(), "without the latentmix checksum record.*numpy.savez"),
        (_zip_with_metadata_but_no_checksum(), "without the latentmix checksum record"),
        (b"PK", "truncated"),
    ],
    ids=["csv", "json", "npy", "pickle", "npz", "zip-no-checksum", "two-bytes"],
)
def test_foreign_files(tmp_path, content, match):
    with pytest.raises(ModelFileError, match=match):
        _load_bytes(tmp_path, content)


def test_newer_format_version_says_upgrade(tmp_path, good):
    metadata = _metadata(good) | {"format_version": 2, "library_version": "9.1"}
    newer = _repack(good, metadata)
    expected = "written by latentmix 9.1 with format 2; this is format 1 .*: upgrade latentmix"
    with pytest.raises(ModelFileError, match=expected):
        _load_bytes(tmp_path, newer)
    with pytest.raises(ModelFileError, match=r"upgrade latentmix"):
        read_metadata(tmp_path / "damaged.lmx")


def test_dumps_can_write_a_newer_version_for_tests(tmp_path):
    newer = _model_file.dumps(Tiny().fit(), format_version=7)
    with pytest.raises(ModelFileError, match=r"format 7; this is format 1"):
        _load_bytes(tmp_path, newer)


@pytest.mark.parametrize("name", ["Unknown", "os:system", "subprocess.Popen", "__builtins__"])
def test_unknown_class_is_refused_and_nothing_is_imported(tmp_path, good, name):
    modules_before = set(sys.modules)
    with pytest.raises(ModelFileError, match=re.escape(f"unknown class {name!r}")):
        _load_bytes(tmp_path, _repack(good, _metadata(good) | {"class": name}))
    # read_metadata never imports either: it reports the class name as stored.
    assert read_metadata(tmp_path / "damaged.lmx")["class"] == name
    assert set(sys.modules) == modules_before


def test_allowlisted_name_with_mismatched_parameters(tmp_path, good):
    metadata = _metadata(good)
    metadata["params"]["not_a_parameter"] = 1
    with pytest.raises(ModelFileError, match=r"saved parameters do not fit Tiny"):
        _load_bytes(tmp_path, _repack(good, metadata))


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.pop("format"),
        lambda m: m.update(format="something-else"),
        lambda m: m.update(format_version="1"),
        lambda m: m.update(format_version=True),
        lambda m: m.update(format_version=0),
        lambda m: m.pop("library_version"),
        lambda m: m.update({"class": 3}),
        lambda m: m.update(fitted="yes"),
        lambda m: m.update(state="pickle"),
        lambda m: m.update(params=[1]),
        lambda m: m.pop("params"),
        lambda m: m.update(attributes=None),
        lambda m: m["params"].update(k={"$eval": "1"}),
        lambda m: m["params"].update(k={"$array": "arrays/missing.npy"}),
        lambda m: m["params"].update(k={"$float": "NaN!"}),
        lambda m: m["params"].update(k={"$tuple": 1}),
        lambda m: m["params"].update(k={"$array": 1, "$tuple": []}),
        lambda m: m["attributes"].update(feature_names_in_={"$str_array": {"values": [1]}}),
        lambda m: m["attributes"].update(means_={"$scalar": m["attributes"]["means_"]["$array"]}),
        lambda m: m["attributes"].update(n_iter_=m["attributes"]["means_"]),  # referenced twice
    ],
)
def test_malformed_metadata_with_a_valid_checksum(tmp_path, good, edit):
    metadata = _metadata(good)
    edit(metadata)
    with pytest.raises(
        ModelFileError, match=r"malformed|not a latentmix model file|referenced twice"
    ):
        _load_bytes(tmp_path, _repack(good, metadata))


def test_metadata_that_is_not_json(tmp_path, good):
    crafted = _container.pack(b"\xff not json", _members(good))
    with pytest.raises(ModelFileError, match=r"not valid JSON"):
        _load_bytes(tmp_path, crafted)


def test_unexpected_or_unsafe_members(tmp_path, good):
    members = _members(good) | {"extra.bin": b"x"}
    with pytest.raises(ModelFileError, match=r"unexpected members: extra.bin"):
        _load_bytes(tmp_path, _repack(good, _metadata(good), members))

    # An object-dtype .npy member would need pickle: refused, never unpickled.
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    metadata = _metadata(good)
    name = metadata["attributes"]["means_"]["$array"]
    members = _members(good) | {name: buffer.getvalue()}
    with pytest.raises(ModelFileError, match=r"not a valid .npy array"):
        _load_bytes(tmp_path, _repack(good, metadata, members))

    members = _members(good) | {name: b"\x93NUMPY garbage"}
    with pytest.raises(ModelFileError, match=r"not a valid .npy array"):
        _load_bytes(tmp_path, _repack(good, metadata, members))


def test_read_metadata_reports_the_same_problems(tmp_path, good):
    with pytest.raises(ModelFileError, match=r"does not exist"):
        read_metadata(tmp_path / "missing.lmx")
    path = tmp_path / "t.lmx"
    path.write_bytes(good[:-1])
    with pytest.raises(ModelFileError):
        read_metadata(path)
