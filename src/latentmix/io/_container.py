"""The outer frame of a model file: a zip archive whose comment is a SHA-256 of everything else.

This frame never changes between format versions, so that any latentmix can tell a
corrupted file from a newer one before reading a single metadata field. See
:mod:`latentmix.io._model_file` for the full specification.
"""

from __future__ import annotations

import hashlib
import io
import re
import struct
import zipfile
from collections.abc import Mapping

import numpy as np

from latentmix._exceptions import ModelFileError

__all__ = ["METADATA_MEMBER", "array_to_npy", "pack", "unpack"]

METADATA_MEMBER = "metadata.json"

_ZIP_MAGIC = b"PK\x03\x04"
_EOCD_MAGIC = b"PK\x05\x06"
_EOCD_SIZE = 22  # the end-of-central-directory record, without its comment
_CHECKSUM_PREFIX = b"latentmix-sha256:"
_CHECKSUM_LEN = len(_CHECKSUM_PREFIX) + 64
_CHECKSUM_RE = re.compile(rb"latentmix-sha256:[0-9a-f]{64}")
# A fixed timestamp makes the bytes of a file depend on the model only.
_DATE_TIME = (1980, 1, 1, 0, 0, 0)


def array_to_npy(array: np.ndarray) -> bytes:
    """Serialise one array in the ``.npy`` format, refusing anything that needs pickle."""
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def pack(metadata: bytes, members: Mapping[str, bytes]) -> bytes:
    """Build the bytes of a model file from the metadata JSON and the ``.npy`` members.

    Parameters
    ----------
    metadata : bytes
        UTF-8 JSON, stored as the member ``metadata.json``.
    members : mapping of str to bytes
        Array members (``.npy`` bytes) by member name.

    Returns
    -------
    data : bytes
        The complete file: a zip archive whose comment is ``latentmix-sha256:<hex>``,
        the SHA-256 of every byte before the comment.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, payload in [(METADATA_MEMBER, metadata), *members.items()]:
            info = zipfile.ZipInfo(name, date_time=_DATE_TIME)
            info.external_attr = 0o644 << 16
            archive.writestr(info, payload)
        # A placeholder of the final length, so that the record's comment-length field,
        # which the checksum covers, is already right.
        archive.comment = b"\0" * _CHECKSUM_LEN
    body = buffer.getvalue()[:-_CHECKSUM_LEN]
    return body + _CHECKSUM_PREFIX + hashlib.sha256(body).hexdigest().encode("ascii")


def _has_checksum_record(data: bytes) -> bool:
    if len(data) < _EOCD_SIZE + _CHECKSUM_LEN:
        return False
    eocd = data[-_CHECKSUM_LEN - _EOCD_SIZE : -_CHECKSUM_LEN]
    (comment_length,) = struct.unpack("<H", eocd[-2:])
    return (
        eocd.startswith(_EOCD_MAGIC)
        and comment_length == _CHECKSUM_LEN
        and _CHECKSUM_RE.fullmatch(data[-_CHECKSUM_LEN:]) is not None
    )


def _describe_foreign_zip(data: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
    except Exception:  # untrusted bytes: any failure to parse means "damaged"
        return (
            "it is truncated or corrupted: the end of the archive and its latentmix "
            "checksum record are missing or damaged"
        )
    shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
    return (
        f"it is a zip archive (members: {shown or 'none'}) without the latentmix checksum "
        "record, or its end is corrupted; a plain .npz from numpy.savez is not a model file"
    )


def unpack(data: bytes, source: str) -> tuple[bytes, dict[str, bytes]]:
    """Check the frame and the checksum, then return the metadata and the other members.

    Parameters
    ----------
    data : bytes
        The whole file.
    source : str
        How to name the file in error messages.

    Returns
    -------
    metadata : bytes
        The raw ``metadata.json`` member.
    members : dict of str to bytes
        Every other member, by name.

    Raises
    ------
    ModelFileError
        If the file is empty, not a zip archive, truncated, or fails the checksum.
    """
    if not data:
        raise ModelFileError(f"{source} is empty (0 bytes): it is not a latentmix model file")
    if not data.startswith(_ZIP_MAGIC):
        if _ZIP_MAGIC.startswith(data):
            raise ModelFileError(f"{source} is truncated ({len(data)} bytes)")
        raise ModelFileError(
            f"{source} is not a latentmix model file: it is not a zip archive "
            f"(it starts with {data[:8]!r})"
        )
    if not _has_checksum_record(data):
        if _CHECKSUM_PREFIX in data[-_CHECKSUM_LEN - _EOCD_SIZE :]:
            raise ModelFileError(
                f"{source} is truncated or corrupted: its latentmix checksum record is incomplete"
            )
        raise ModelFileError(
            f"{source} is not a valid latentmix model file: " + _describe_foreign_zip(data)
        )
    body, record = data[:-_CHECKSUM_LEN], data[-_CHECKSUM_LEN:]
    expected = record[len(_CHECKSUM_PREFIX) :].decode("ascii")
    actual = hashlib.sha256(body).hexdigest()
    if actual != expected:
        raise ModelFileError(
            f"{source} is corrupted: its SHA-256 checksum does not match its contents "
            f"(recorded {expected[:12]}..., computed {actual[:12]}...)"
        )
    # The checksum proves a latentmix writer made these bytes; a parse failure past this
    # point means a crafted file, still reported as a ModelFileError.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if len(set(names)) != len(names):
                raise ModelFileError(f"{source} has duplicate members")
            contents = {name: archive.read(name) for name in names}
    except ModelFileError:
        raise
    except Exception as exc:  # untrusted bytes: report any parse failure the same way
        raise ModelFileError(f"{source} is not a readable zip archive: {exc}") from exc
    if METADATA_MEMBER not in contents:
        raise ModelFileError(f"{source} has no {METADATA_MEMBER} member")
    metadata = contents.pop(METADATA_MEMBER)
    return metadata, contents
