"""``clearing.exactjson.loads`` parses exactly as the standard library does (orjson where it
keeps every value, ``json`` where a number is wider than 64 bits or orjson refuses), and the
keeper's JSON-RPC provider parses through it."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clearing import exactjson
from keeper.factory import FastJSONHTTPProvider, http_web3

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**300), max_value=2**300)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)


@settings(max_examples=500, deadline=None)
@given(JSON_VALUES, st.booleans())
def test_parses_as_the_standard_library_parses(value: object, spaced: bool) -> None:
    raw = json.dumps(value, separators=(", ", ": ") if spaced else (",", ":")).encode()
    parsed = exactjson.loads(raw)
    assert repr(parsed) == repr(json.loads(raw))  # ints stay ints (orjson would give floats)


@pytest.mark.parametrize(
    ("raw", "value"),
    [
        (b"18446744073709551616", 2**64),
        (b" -9223372036854775809", -(2**63) - 1),
        (b'{"a":[1, 340282366920938463463374607431768211456]}', {"a": [1, 2**128]}),
        (b'{"x": NaN}', None),  # orjson refuses NaN; json takes it
    ],
)
def test_wide_numbers_and_what_orjson_refuses(raw: bytes, value: object) -> None:
    parsed = exactjson.loads(raw)
    if value is None:
        assert parsed["x"] != parsed["x"]  # NaN
    else:
        assert parsed == value


def test_bad_json_raises_value_error() -> None:
    with pytest.raises(ValueError):
        exactjson.loads(b'{"a": ')


def test_the_keepers_provider_parses_a_receipt_sized_answer_exactly() -> None:
    provider = http_web3("http://127.0.0.1:1", 5).provider
    assert isinstance(provider, FastJSONHTTPProvider)
    logs = [
        {"address": "0x" + "ab" * 20, "topics": ["0x" + f"{i:064x}"], "data": "0x" + "00" * 96}
        for i in range(5_000)
    ]
    raw = json.dumps({"jsonrpc": "2.0", "id": 7, "result": {"logs": logs, "n": 2**70}}).encode()
    answer = provider.decode_rpc_response(raw)
    assert answer["result"]["logs"][4_999]["topics"] == ["0x" + f"{4_999:064x}"]
    assert answer["result"]["n"] == 2**70
