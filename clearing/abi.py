"""Solidity ABI encoding and strict decoding (``abi.encode``), for the tuples qev uses.

Supports the static types ``uintN``, ``intN``, ``address``, ``bool`` and ``bytesN``, plus the
dynamic ``bytes`` and ``string`` at the top level of a tuple (what the sealed-bid plaintext
needs). Python values: ``int`` for integers, ``bool``, 20-byte ``bytes`` for addresses and
``bytes`` for byte strings. Decoding is strict: wrong padding, out-of-range values,
non-canonical offsets, truncation and trailing bytes are all refused.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from clearing.errors import AbiDecodeError, AbiEncodeError

WORD = 32
_ZERO12 = bytes(12)
_TYPE_RE = re.compile(r"^(uint|int|bytes)(\d*)$")


@dataclass(frozen=True, slots=True)
class AbiType:
    """One parsed ABI type name."""

    name: str
    kind: str  # "uint", "int", "address", "bool", "fixed_bytes", "bytes", "string"
    size: int  # bits for integers, length for fixed bytes, 0 otherwise

    @property
    def dynamic(self) -> bool:
        """Whether the type is encoded in the tail (``bytes``/``string``)."""
        return self.kind in ("bytes", "string")


@cache
def parse_type(name: str) -> AbiType:
    """Parse a canonical ABI type name such as ``uint64``, ``address`` or ``bytes32``."""
    if name in ("address", "bool", "string", "bytes"):
        return AbiType(name, name, 0)
    m = _TYPE_RE.match(name)
    if m is None or not m.group(2):
        raise AbiEncodeError(f"unsupported ABI type {name!r}")
    base, size = m.group(1), int(m.group(2))
    if base == "bytes":
        if not 1 <= size <= 32:
            raise AbiEncodeError(f"unsupported ABI type {name!r}")
        return AbiType(name, "fixed_bytes", size)
    if size % 8 or not 8 <= size <= 256:
        raise AbiEncodeError(f"unsupported ABI type {name!r}")
    return AbiType(name, base, size)


def _uint_encoder(bits: int) -> Callable[[Any], bytes]:
    bound = 1 << bits

    def enc(v: Any) -> bytes:
        if type(v) is not int or not 0 <= v < bound:
            raise AbiEncodeError(f"value {v!r} does not fit uint{bits}")
        return v.to_bytes(WORD, "big")

    return enc


def _int_encoder(bits: int) -> Callable[[Any], bytes]:
    lo, hi = -(1 << (bits - 1)), 1 << (bits - 1)

    def enc(v: Any) -> bytes:
        if type(v) is not int or not lo <= v < hi:
            raise AbiEncodeError(f"value {v!r} does not fit int{bits}")
        return v.to_bytes(WORD, "big", signed=True)

    return enc


def _address_encoder(v: Any) -> bytes:
    if type(v) is not bytes or len(v) != 20:
        raise AbiEncodeError(f"address must be 20 bytes, got {v!r}")
    return _ZERO12 + v


def _bool_encoder(v: Any) -> bytes:
    if type(v) is not bool:
        raise AbiEncodeError(f"bool expected, got {v!r}")
    return (1 if v else 0).to_bytes(WORD, "big")


def _fixed_bytes_encoder(size: int) -> Callable[[Any], bytes]:
    pad = bytes(WORD - size)

    def enc(v: Any) -> bytes:
        if type(v) is not bytes or len(v) != size:
            raise AbiEncodeError(f"bytes{size} must be exactly {size} bytes, got {v!r}")
        return v + pad

    return enc


@cache
def word_encoder(name: str) -> Callable[[Any], bytes]:
    """Return the function that encodes one value of static type ``name`` to its 32-byte word."""
    t = parse_type(name)
    if t.kind == "uint":
        return _uint_encoder(t.size)
    if t.kind == "int":
        return _int_encoder(t.size)
    if t.kind == "address":
        return _address_encoder
    if t.kind == "bool":
        return _bool_encoder
    if t.kind == "fixed_bytes":
        return _fixed_bytes_encoder(t.size)
    raise AbiEncodeError(f"{name} is not a static type")


def _decode_word(t: AbiType, w: bytes) -> Any:
    if t.kind == "uint":
        v = int.from_bytes(w, "big")
        if v >> t.size:
            raise AbiDecodeError(f"value out of range for {t.name}")
        return v
    if t.kind == "int":
        v = int.from_bytes(w, "big", signed=True)
        if not -(1 << (t.size - 1)) <= v < 1 << (t.size - 1):
            raise AbiDecodeError(f"value out of range for {t.name}")
        return v
    if t.kind == "address":
        if w[:12] != _ZERO12:
            raise AbiDecodeError("address word has dirty high bytes")
        return w[12:]
    if t.kind == "bool":
        v = int.from_bytes(w, "big")
        if v > 1:
            raise AbiDecodeError("bool word is neither 0 nor 1")
        return v == 1
    if t.kind == "fixed_bytes":
        if any(w[t.size :]):
            raise AbiDecodeError(f"{t.name} word has dirty low bytes")
        return w[: t.size]
    raise AbiDecodeError(f"{t.name} is not a static type")  # pragma: no cover


def _padded_len(n: int) -> int:
    return (n + WORD - 1) // WORD * WORD


def encode(types: Sequence[str], values: Sequence[Any]) -> bytes:
    """ABI-encode ``values`` as the tuple ``types`` (Solidity ``abi.encode``)."""
    if len(types) != len(values):
        raise AbiEncodeError(f"{len(types)} types but {len(values)} values")
    parsed = [parse_type(t) for t in types]
    head: list[bytes] = []
    tail: list[bytes] = []
    offset = WORD * len(parsed)
    for t, v in zip(parsed, values, strict=True):
        if not t.dynamic:
            head.append(word_encoder(t.name)(v))
            continue
        if t.kind == "string":
            if type(v) is not str:
                raise AbiEncodeError(f"string expected, got {v!r}")
            raw = v.encode()
        else:
            if type(v) is not bytes:
                raise AbiEncodeError(f"bytes expected, got {v!r}")
            raw = v
        head.append(offset.to_bytes(WORD, "big"))
        chunk = len(raw).to_bytes(WORD, "big") + raw + bytes(_padded_len(len(raw)) - len(raw))
        tail.append(chunk)
        offset += len(chunk)
    return b"".join(head) + b"".join(tail)


def decode(types: Sequence[str], data: bytes) -> tuple[Any, ...]:
    """Strictly decode ``data`` as the tuple ``types``; the canonical encoding only."""
    parsed = [parse_type(t) for t in types]
    head_len = WORD * len(parsed)
    if len(data) < head_len:
        raise AbiDecodeError(f"data is {len(data)} bytes, the head alone needs {head_len}")
    out: list[Any] = []
    expected_offset = head_len
    for i, t in enumerate(parsed):
        w = data[i * WORD : (i + 1) * WORD]
        if not t.dynamic:
            out.append(_decode_word(t, w))
            continue
        offset = int.from_bytes(w, "big")
        if offset != expected_offset:
            raise AbiDecodeError(f"non-canonical offset {offset} for {t.name} at field {i}")
        if len(data) < offset + WORD:
            raise AbiDecodeError(f"truncated length word for field {i}")
        length = int.from_bytes(data[offset : offset + WORD], "big")
        end = offset + WORD + length
        padded_end = offset + WORD + _padded_len(length)
        if padded_end > len(data):
            raise AbiDecodeError(f"truncated {t.name} for field {i}")
        if any(data[end:padded_end]):
            raise AbiDecodeError(f"dirty padding after {t.name} for field {i}")
        raw = data[offset + WORD : end]
        if t.kind == "string":
            try:
                out.append(raw.decode("utf-8", errors="strict"))
            except UnicodeDecodeError as e:
                raise AbiDecodeError(f"invalid UTF-8 in field {i}") from e
        else:
            out.append(raw)
        expected_offset = padded_end
    if expected_offset != len(data):
        raise AbiDecodeError(f"{len(data) - expected_offset} trailing bytes")
    return tuple(out)


def _field_source(i: int, t: AbiType) -> tuple[str, str]:
    """Return (check, word expression) source snippets for field ``i`` of static type ``t``."""
    v = f"v{i}"
    if t.kind == "uint":
        return f"type({v}) is not int or {v} < 0 or {v} >> {t.size}", f"{v}.to_bytes(32, 'big')"
    if t.kind == "address":
        return f"type({v}) is not bytes or len({v}) != 20", f"_Z12, {v}"
    if t.kind == "int":
        lo, hi = -(1 << (t.size - 1)), 1 << (t.size - 1)
        return (
            f"type({v}) is not int or not {lo} <= {v} < {hi}",
            f"{v}.to_bytes(32, 'big', signed=True)",
        )
    if t.kind == "bool":
        return f"type({v}) is not bool", f"(b'\\x00' * 31 + (b'\\x01' if {v} else b'\\x00'))"
    if t.kind == "fixed_bytes":
        return (
            f"type({v}) is not bytes or len({v}) != {t.size}",
            f"{v}, _Z[{t.size}:]",
        )
    raise AbiEncodeError(f"{t.name} is not a static type")


@cache
def static_encoder(types: tuple[str, ...]) -> Callable[[Sequence[Any]], bytes]:
    """Return a fast encoder for a tuple of static types (the Merkle-leaf hot path).

    The encoder is generated once per type tuple from the parsed (whitelisted) types, the way
    ``dataclasses`` generates ``__init__``: one unpack, one range check per field and one join,
    about twice as fast as a loop over per-field encoders.
    """
    parsed = [parse_type(t) for t in types]
    if not parsed or any(t.dynamic for t in parsed):
        raise AbiEncodeError(f"static_encoder needs a non-empty tuple of static types: {types}")
    names = ", ".join(f"v{i}" for i in range(len(parsed)))
    checks, words = zip(*(_field_source(i, t) for i, t in enumerate(parsed)), strict=True)
    lines = ["def enc(values):", f"    if len(values) != {len(parsed)}:"]
    lines.append(f"        raise _Err('expected {len(parsed)} values, got %d' % len(values))")
    lines.append(f"    ({names},) = values")
    for i, check in enumerate(checks):
        lines.append(f"    if {check}:")
        lines.append(f"        raise _Err('field {i} does not fit {parsed[i].name}: %r' % (v{i},))")
    lines.append(f"    return b''.join(({', '.join(words)},))")
    namespace: dict[str, Any] = {"_Z12": _ZERO12, "_Z": bytes(WORD), "_Err": AbiEncodeError}
    exec(compile("\n".join(lines), f"<abi encoder {','.join(types)}>", "exec"), namespace)  # noqa: S102
    fn: Callable[[Sequence[Any]], bytes] = namespace["enc"]
    return fn


__all__ = ["WORD", "AbiType", "decode", "encode", "parse_type", "static_encoder", "word_encoder"]
