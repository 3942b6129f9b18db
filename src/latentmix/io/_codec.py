"""Values to JSON plus array members, and back, exactly (types, dtypes and bits).

The encoding is specified in :mod:`latentmix.io._model_file`.
"""

from __future__ import annotations

import io
import math
import re
from typing import Any

import numpy as np

from latentmix._exceptions import ModelFileError
from latentmix.io._container import array_to_npy

__all__ = ["ARRAY_KINDS", "Decoder", "Encoder"]

# Numeric, bool and fixed-width string dtypes: all of them load with allow_pickle=False.
ARRAY_KINDS = frozenset("biufcSU")
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_TAGS = frozenset({"$array", "$scalar", "$float", "$tuple", "$dict", "$str_array"})
_UNSAFE_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.-]+")
_KIND_PREFIX = re.compile(r"^[a-z ]+ (?=')")


class Encoder:
    """Turn values into JSON-able data, collecting arrays as ``.npy`` members.

    Parameters
    ----------
    context : str
        Named in error messages, e.g. ``"GaussianMixture"``.
    """

    def __init__(self, context: str) -> None:
        self.context = context
        self.members: dict[str, bytes] = {}

    def encode(self, value: Any, where: str) -> Any:
        """Encode ``value``; ``where`` names it in errors and in its member's name."""
        kind = type(value)
        if value is None or kind in (bool, int, str):
            return value
        if kind is float:
            if math.isfinite(value):
                return value
            return {"$float": "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")}
        if kind is list:
            return [self.encode(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if kind is tuple:
            return {"$tuple": [self.encode(item, f"{where}[{i}]") for i, item in enumerate(value)]}
        if kind is dict:
            for key in value:
                if type(key) is not str:
                    raise TypeError(self._refusal(where, f"a dict with a {type(key).__name__} key"))
            return {
                "$dict": {
                    key: self.encode(item, f"{where}[{key!r}]") for key, item in value.items()
                }
            }
        if kind is np.ndarray:
            if value.dtype == object:
                return self._encode_str_array(value, where)
            self._check_dtype(value.dtype, where)
            return {"$array": self._add_member(value, where)}
        if isinstance(value, np.generic):
            self._check_dtype(value.dtype, where)
            return {"$scalar": self._add_member(np.asarray(value), where)}
        raise TypeError(
            self._refusal(where, f"a value of type {kind.__module__}.{kind.__qualname__}")
        )

    def _encode_str_array(self, value: np.ndarray, where: str) -> dict[str, Any]:
        items = value.ravel(order="C").tolist()
        if not all(type(item) is str for item in items):
            raise TypeError(self._refusal(where, "an object array holding values other than str"))
        return {"$str_array": {"shape": list(value.shape), "values": items}}

    def _check_dtype(self, dtype: np.dtype[Any], where: str) -> None:
        if dtype.kind not in ARRAY_KINDS or dtype.fields is not None:
            raise TypeError(self._refusal(where, f"an array of dtype {dtype}"))

    def _add_member(self, array: np.ndarray, where: str) -> str:
        # "fitted attribute 'means_'" -> "means_": for people listing the archive only.
        hint = _UNSAFE_NAME_CHARS.sub("_", _KIND_PREFIX.sub("", where).replace("'", ""))[:60]
        name = f"arrays/{len(self.members):04d}_{hint}.npy"
        self.members[name] = array_to_npy(array)
        return name

    def _refusal(self, where: str, what: str) -> str:
        return (
            f"cannot save {where} of {self.context}: it is {what}. Model files hold only None, "
            "bool, int, float, str, lists, tuples and str-keyed dicts of those, NumPy arrays "
            "of numeric, bool or string dtype, NumPy scalars, and object arrays of str"
        )


class Decoder:
    """Rebuild values from their JSON form and the file's array members.

    Parameters
    ----------
    members : dict of str to bytes
        The array members of the file.
    source : str
        Names the file in error messages.
    """

    def __init__(self, members: dict[str, bytes], source: str) -> None:
        self.members = members
        self.source = source
        self.used: set[str] = set()

    def decode(self, data: Any, where: str) -> Any:
        """Decode one JSON value; raise ModelFileError naming ``where`` if it is malformed."""
        if data is None or type(data) in (bool, int, float, str):
            return data
        if type(data) is list:
            return [self.decode(item, f"{where}[{i}]") for i, item in enumerate(data)]
        if type(data) is not dict or len(data) != 1 or next(iter(data)) not in _TAGS:
            raise self._malformed(where)
        tag, body = next(iter(data.items()))
        if tag == "$float" and body in _NONFINITE:
            return _NONFINITE[body]
        if tag == "$tuple" and type(body) is list:
            return tuple(self.decode(item, f"{where}[{i}]") for i, item in enumerate(body))
        if tag == "$dict" and type(body) is dict:
            return {key: self.decode(item, f"{where}[{key!r}]") for key, item in body.items()}
        if tag == "$array" and type(body) is str:
            return self.array(body, where)
        if tag == "$scalar" and type(body) is str:
            array = self.array(body, where)
            if array.ndim != 0:
                raise self._malformed(where)
            return array[()]
        if tag == "$str_array" and type(body) is dict:
            return self._decode_str_array(body, where)
        raise self._malformed(where)

    def _decode_str_array(self, body: dict[str, Any], where: str) -> np.ndarray:
        shape, values = body.get("shape"), body.get("values")
        if (
            set(body) != {"shape", "values"}
            or type(shape) is not list
            or not all(type(n) is int and n >= 0 for n in shape)
            or type(values) is not list
            or not all(type(v) is str for v in values)
            or math.prod(shape) != len(values)
        ):
            raise self._malformed(where)
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return array.reshape(shape)

    def array(self, name: str, where: str) -> np.ndarray:
        """Read the array member ``name`` without ever unpickling."""
        payload = self.members.get(name)
        if payload is None:
            raise ModelFileError(f"{self.source}: {where} refers to a missing member {name!r}")
        if name in self.used:
            raise ModelFileError(f"{self.source}: member {name!r} is referenced twice")
        self.used.add(name)
        try:
            array = np.lib.format.read_array(io.BytesIO(payload), allow_pickle=False)
        except Exception as exc:  # untrusted bytes: report any parse failure the same way
            raise ModelFileError(
                f"{self.source}: member {name!r} is not a valid .npy array: {exc}"
            ) from exc
        if array.dtype.kind not in ARRAY_KINDS or array.dtype.fields is not None:
            raise ModelFileError(
                f"{self.source}: member {name!r} has unsupported dtype {array.dtype}"
            )
        return array

    def check_all_used(self) -> None:
        """Raise if the file holds members no value refers to (a sign of a foreign file)."""
        unused = sorted(set(self.members) - self.used)
        if unused:
            raise ModelFileError(f"{self.source} has unexpected members: {', '.join(unused[:5])}")

    def _malformed(self, where: str) -> ModelFileError:
        return ModelFileError(f"{self.source}: {where} is malformed in the metadata")
