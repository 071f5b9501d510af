"""classify(): every failure kind maps to a stable retryable or fatal code (no network)."""

from __future__ import annotations

import aiohttp
import pytest
import requests
from eth_abi.abi import encode
from eth_tester.exceptions import TransactionFailed
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError
from web3.exceptions import (
    ContractCustomError,
    ContractLogicError,
    ContractPanicError,
    MethodUnavailable,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    TooManyRequests,
    Web3RPCError,
)

from clearing.errors import QevError
from keeper.artifacts import artifact
from keeper.errors import (
    FatalError,
    KeeperError,
    RetryableError,
    SimulationRevertError,
    classify,
    decode_revert,
)

pytestmark = pytest.mark.usefixtures("no_sockets")

TOKEN_ABI = artifact("MockUSDai")["abi"]
SETTLEMENT_ABI = artifact("QEVSettlement")["abi"]


def rpc_error(code: int, message: str) -> Web3RPCError:
    response = {"jsonrpc": "2.0", "id": 1, "error": {"code": code, "message": message}}
    return Web3RPCError(str(response["error"]), rpc_response=response)  # type: ignore[arg-type]


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


def error_string(text: str) -> str:
    return "0x08c379a0" + encode(["string"], [text]).hex()


def custom(signature: str, types: list[str], values: list[object]) -> str:
    return "0x" + keccak(text=signature)[:4].hex() + encode(types, values).hex()


RETRYABLE = [
    (requests.ConnectionError("refused"), "rpc_unavailable"),
    (requests.ReadTimeout("read timed out"), "rpc_unavailable"),
    (http_error(503), "rpc_unavailable"),
    (http_error(502), "rpc_unavailable"),
    (http_error(429), "rpc_unavailable"),
    (aiohttp.ClientConnectionError("refused"), "rpc_unavailable"),
    (ConnectionRefusedError(111, "Connection refused"), "rpc_unavailable"),
    (ConnectionResetError(104, "reset"), "rpc_unavailable"),
    (TimeoutError("timed out"), "rpc_unavailable"),
    (ProviderConnectionError("down"), "rpc_unavailable"),
    (TooManyRequests("slow down"), "rpc_unavailable"),
    (RequestTimedOut("timeout"), "rpc_unavailable"),
    (TimeExhausted("receipt wait"), "rpc_unavailable"),
    (rpc_error(-32005, "limit exceeded"), "rpc_unavailable"),
    (rpc_error(-32000, "header not found"), "rpc_unavailable"),
    (rpc_error(-32003, "nonce too low"), "nonce_too_low"),
    (rpc_error(-32000, "nonce too low: next nonce 5, tx nonce 4"), "nonce_too_low"),
    (ValueError({"code": -32000, "message": "nonce too low"}), "nonce_too_low"),
    (ValidationError("Invalid transaction nonce: Expected 1, but got 0"), "nonce_too_low"),
    (rpc_error(-32003, "replacement transaction underpriced"), "underpriced"),
    (rpc_error(-32000, "transaction underpriced"), "underpriced"),
    (rpc_error(-32003, "max fee per gas less than block base fee"), "underpriced"),
]

FATAL = [
    (http_error(401), "rpc_rejected"),
    (rpc_error(-32602, "invalid argument 0: hex string without 0x prefix"), "rpc_rejected"),
    (MethodUnavailable("the method eth_feeHistory does not exist"), "rpc_rejected"),
    (rpc_error(-32003, "Insufficient funds for gas * price + value"), "insufficient_funds"),
    (rpc_error(-32000, "insufficient funds for gas * price + value"), "insufficient_funds"),
    (ValidationError("Sender does not have enough balance to cover"), "insufficient_funds"),
    (rpc_error(-32003, "invalid chain id for signer"), "chain_id_mismatch"),
    (
        ContractLogicError("execution reverted: paused", data=error_string("paused")),
        "simulation_reverted",
    ),
    (rpc_error(3, "execution reverted"), "simulation_reverted"),
    (RuntimeError("unexpected"), "fatal"),
]


@pytest.mark.parametrize(("exc", "code"), RETRYABLE, ids=lambda x: type(x).__name__)
def test_retryable_kinds(exc: BaseException, code: str) -> None:
    err = classify(exc)
    assert isinstance(err, RetryableError)
    assert isinstance(err, QevError)
    assert err.code == code


@pytest.mark.parametrize(("exc", "code"), FATAL, ids=lambda x: type(x).__name__)
def test_fatal_kinds(exc: BaseException, code: str) -> None:
    err = classify(exc)
    assert isinstance(err, FatalError)
    assert not isinstance(err, RetryableError)
    assert err.code == code


def test_keeper_errors_pass_through() -> None:
    err = SimulationRevertError("x")
    assert classify(err) is err
    assert issubclass(RetryableError, KeeperError) and issubclass(FatalError, KeeperError)


def test_revert_reason_string_decoded() -> None:
    err = classify(ContractLogicError("execution reverted: paused", data=error_string("paused")))
    assert isinstance(err, SimulationRevertError)
    assert err.reason == "paused"
    assert err.selector == "0x08c379a0"


def test_custom_error_decoded_with_abi() -> None:
    data = custom("AuctionAlreadySettled(uint64)", ["uint64"], [1_767_225_600])
    err = classify(ContractCustomError(data, data=data), SETTLEMENT_ABI)
    assert isinstance(err, SimulationRevertError)
    assert err.error_name == "AuctionAlreadySettled"
    assert err.reason == "AuctionAlreadySettled(1767225600)"
    assert err.selector == data[:10]
    without_abi = classify(ContractCustomError(data, data=data))
    assert isinstance(without_abi, SimulationRevertError)
    assert without_abi.error_name is None
    assert without_abi.reason == f"custom error {data[:10]}"


def test_panic_decoded() -> None:
    data = "0x4e487b71" + encode(["uint256"], [0x11]).hex()
    err = classify(ContractPanicError("Panic error 0x11", data=data))
    assert isinstance(err, SimulationRevertError)
    assert err.reason == "Panic(0x11)"


def test_eth_tester_bytes_revert_decoded() -> None:
    raw = bytes.fromhex(custom("InvalidProof()", [], [])[2:])
    err = classify(TransactionFailed(f"execution reverted: {raw!r}"), SETTLEMENT_ABI)
    assert isinstance(err, SimulationRevertError)
    assert err.error_name == "InvalidProof"


def test_revert_text_wins_over_other_patterns() -> None:
    # a revert whose reason mentions funds is still a revert, not an account problem
    err = classify(ContractLogicError("execution reverted: insufficient funds", data=None))
    assert err.code == "simulation_reverted"


def test_decode_revert_undecodable_payload() -> None:
    err = decode_revert("0x08c379a0deadbeef", TOKEN_ABI)
    assert err.selector == "0x08c379a0"
    assert "custom error" in err.reason
    assert decode_revert("0x", None).reason.startswith("execution reverted")
