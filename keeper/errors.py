"""Keeper errors: retryable (a later attempt can succeed) or fatal (it cannot), each with a code.

``classify`` maps whatever web3.py, requests, aiohttp or the node raised into one of them, so
the transaction pipeline and the jobs deal with two kinds of failure only.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Mapping, Sequence
from typing import Any

from eth_abi.abi import decode as abi_decode
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from web3.exceptions import (
    ContractLogicError,
    MethodUnavailable,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
    TooManyRequests,
    Web3RPCError,
)

from clearing.errors import QevError

try:  # transports of web3's providers; both are web3 dependencies
    import requests
except ImportError:  # pragma: no cover
    requests = None  # type: ignore[assignment]
try:
    import aiohttp
except ImportError:  # pragma: no cover
    aiohttp = None  # type: ignore[assignment]


class KeeperError(QevError):
    """A keeper step failed."""

    code = "keeper_error"


# --- retryable -------------------------------------------------------------------


class RetryableError(KeeperError):
    """A failure that a later attempt can fix (the node, the network or a race)."""

    code = "retryable"


class RpcUnavailableError(RetryableError):
    """The RPC endpoint refused the connection, timed out, rate-limited or answered 5xx."""

    code = "rpc_unavailable"


class NonceTooLowError(RetryableError):
    """The nonce was used meanwhile (another sender on this key, or a race with the node)."""

    code = "nonce_too_low"


class UnderpricedError(RetryableError):
    """The node refused the fees: replacement underpriced or below the base fee."""

    code = "underpriced"


class NonceConsumedError(RetryableError):
    """Our nonce was mined by a transaction that is none of ours; re-simulate before resending."""

    code = "nonce_consumed"


# --- fatal -----------------------------------------------------------------------


class FatalError(KeeperError):
    """A failure that retrying as is cannot fix."""

    code = "fatal"


class SimulationRevertError(FatalError):
    """The call reverts (simulation, gas estimation): nothing was sent.

    ``reason`` is the ``Error(string)`` text, the panic text or the custom error's name and
    arguments; ``selector`` is the 4-byte revert selector (``0x08c379a0`` for ``Error``),
    ``error_name`` the custom error's name when the contract ABI knows it, ``data`` the raw
    revert data.
    """

    code = "simulation_reverted"

    def __init__(
        self,
        reason: str,
        /,
        *,
        selector: str | None = None,
        error_name: str | None = None,
        data: str | None = None,
    ) -> None:
        super().__init__(f"reverted: {reason}")
        self.reason = reason
        self.selector = selector
        self.error_name = error_name
        self.data = data


class RevertedOnChainError(FatalError):
    """The transaction was mined with status 0."""

    code = "reverted_onchain"

    def __init__(self, message: str, /, *, tx_hash: str, block_number: int) -> None:
        super().__init__(message)
        self.tx_hash = tx_hash
        self.block_number = block_number


class InsufficientFundsError(FatalError):
    """The account cannot pay gas * max fee + value."""

    code = "insufficient_funds"


class ChainIdMismatchError(FatalError):
    """The node serves another chain than the one configured."""

    code = "chain_id_mismatch"


class DeadlineExceededError(FatalError):
    """Not mined (or not confirmed) before the deadline, after the allowed replacements.

    The nonce may still be mined later: ``tx_hashes`` lists every transaction sent at it.
    """

    code = "deadline_exceeded"

    def __init__(self, message: str, /, *, nonce: int, tx_hashes: tuple[str, ...]) -> None:
        super().__init__(message)
        self.nonce = nonce
        self.tx_hashes = tx_hashes


class RpcRejectedError(FatalError):
    """The node rejected the request for a reason a retry does not change."""

    code = "rpc_rejected"


# --- classification --------------------------------------------------------------

_RETRYABLE_RPC_CODES = {-32005, 429}  # limit exceeded / rate limited
_PATTERNS: tuple[tuple[re.Pattern[str], type[KeeperError]], ...] = tuple(
    (re.compile(p, re.IGNORECASE), cls)
    for p, cls in (
        (r"execution reverted|\brevert", SimulationRevertError),
        (
            r"insufficient funds|insufficient balance for transfer|not have enough balance",
            InsufficientFundsError,
        ),
        (r"chain ?id|chainid", ChainIdMismatchError),
        (
            r"nonce too low|nonce has already been used|oldnonce|already imported"
            r"|invalid transaction nonce",
            NonceTooLowError,
        ),
        (
            r"underpriced|fee cap less than block base fee|max fee per gas less than block base fee"
            r"|fee too low|gas price too low|feecap",
            UnderpricedError,
        ),
        (
            r"timeout|timed out|rate limit|too many requests|busy|temporarily|unavailable"
            r"|header not found|nonce too high|connection|try again|503|502|504",
            RpcUnavailableError,
        ),
    )
)


def _make(cls: type[KeeperError], message: str) -> KeeperError:
    if cls is SimulationRevertError:
        return SimulationRevertError(message)
    return cls(message)


def _from_rpc_error(error: Mapping[str, Any]) -> KeeperError:
    code = error.get("code")
    message = str(error.get("message", ""))
    for pattern, cls in _PATTERNS:
        if pattern.search(message):
            return _make(cls, message)
    if code in _RETRYABLE_RPC_CODES:
        return RpcUnavailableError(message or f"rpc error {code}")
    if code == 3:
        return SimulationRevertError(message or "execution reverted", data=_str(error.get("data")))
    return RpcRejectedError(f"rpc error {code}: {message}")


def _str(data: Any) -> str | None:
    return data if isinstance(data, str) else None


def _http_status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    status = getattr(response, "status_code", None) or getattr(exc, "status", None)
    return status if isinstance(status, int) else None


ERROR_SELECTOR = "0x08c379a0"  # Error(string)
PANIC_SELECTOR = "0x4e487b71"  # Panic(uint256)
_TESTER_BYTES = re.compile(r"^execution reverted: (b(['\"]).*\2)$", re.DOTALL)


def _abi_type(param: Mapping[str, Any]) -> str:
    kind = str(param["type"])
    if kind.startswith("tuple"):
        return "(" + ",".join(_abi_type(c) for c in param.get("components", [])) + ")" + kind[5:]
    return kind


def _show(kind: str, value: Any) -> str:
    if kind == "address":
        return str(to_checksum_address(value))
    return "0x" + value.hex() if isinstance(value, bytes) else str(value)


def decode_revert(
    data: str | bytes | None, abi: Sequence[Mapping[str, Any]] | None = None
) -> SimulationRevertError:
    """A SimulationRevertError from raw revert data, naming custom errors found in ``abi``."""
    raw = (
        bytes.fromhex(data[2:] if data.startswith("0x") else data)
        if isinstance(data, str)
        else data
    )
    if not raw or len(raw) < 4:
        return SimulationRevertError("execution reverted (no data)", data="0x" + (raw or b"").hex())
    hexdata = "0x" + raw.hex()
    selector = hexdata[:10]
    try:
        if selector == ERROR_SELECTOR:
            (text,) = abi_decode(["string"], raw[4:])
            return SimulationRevertError(str(text), selector=selector, data=hexdata)
        if selector == PANIC_SELECTOR:
            (panic,) = abi_decode(["uint256"], raw[4:])
            return SimulationRevertError(f"Panic(0x{panic:02x})", selector=selector, data=hexdata)
        for item in abi or ():
            if item.get("type") != "error":
                continue
            types = [_abi_type(p) for p in item.get("inputs", [])]
            signature = f"{item['name']}({','.join(types)})"
            if "0x" + keccak(text=signature)[:4].hex() == selector:
                args = abi_decode(types, raw[4:])
                shown = ", ".join(_show(t, a) for t, a in zip(types, args, strict=True))
                return SimulationRevertError(
                    f"{item['name']}({shown})",
                    selector=selector,
                    error_name=item["name"],
                    data=hexdata,
                )
    except Exception:  # undecodable payload: report the selector only
        return SimulationRevertError(f"custom error {selector}", selector=selector, data=hexdata)
    return SimulationRevertError(f"custom error {selector}", selector=selector, data=hexdata)


def _revert_from(
    exc: BaseException, abi: Sequence[Mapping[str, Any]] | None
) -> SimulationRevertError:
    data = getattr(exc, "data", None)
    if isinstance(data, Mapping):  # some nodes nest {"data": "0x..."}
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x") and len(data) >= 10:
        return decode_revert(data, abi)
    message = str(getattr(exc, "message", None) or (exc.args[0] if exc.args else "") or exc)
    match = _TESTER_BYTES.match(message)  # eth-tester: "execution reverted: b'\\xe4P...'"
    if match:
        try:
            value = ast.literal_eval(match.group(1))
        except (ValueError, SyntaxError):
            value = None
        if isinstance(value, bytes):
            return decode_revert(value, abi)
    reason = message.removeprefix("execution reverted: ").removeprefix("execution reverted")
    return SimulationRevertError(reason or "execution reverted")


def classify(exc: BaseException, abi: Sequence[Mapping[str, Any]] | None = None) -> KeeperError:  # noqa: PLR0911
    """Map any exception from web3, its transports or the node to a KeeperError.

    Retryable: connection refused/reset, timeouts, HTTP 429/5xx, JSON-RPC rate limits,
    ``nonce too low``, ``replacement transaction underpriced``. Fatal: reverts (decoded:
    ``Error(string)`` text, panic code, or the custom error's name and arguments when ``abi``
    lists it), insufficient funds, chain id errors, other 4xx and other RPC rejections.
    An exception that is already a KeeperError is returned unchanged.
    """
    if isinstance(exc, KeeperError):
        return exc
    if isinstance(exc, ContractLogicError) or type(exc).__name__ == "TransactionFailed":
        return _revert_from(exc, abi)
    if isinstance(exc, TooManyRequests | RequestTimedOut | ProviderConnectionError | TimeExhausted):
        return RpcUnavailableError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, MethodUnavailable):
        return RpcRejectedError(str(exc))
    if isinstance(exc, Web3RPCError):
        response: Any = exc.rpc_response or {}
        error: Any = response.get("error") if isinstance(response, Mapping) else None
        found = _from_rpc_error(error if isinstance(error, Mapping) else {"message": exc.message})
        return _revert_from(exc, abi) if isinstance(found, SimulationRevertError) else found
    if requests is not None and isinstance(exc, requests.HTTPError):
        return _from_http(exc)
    if aiohttp is not None and isinstance(exc, aiohttp.ClientResponseError):
        return _from_http(exc)
    if isinstance(exc, ConnectionError | TimeoutError):
        return RpcUnavailableError(f"{type(exc).__name__}: {exc}")
    if requests is not None and isinstance(exc, requests.RequestException):
        return RpcUnavailableError(f"{type(exc).__name__}: {exc}")
    if aiohttp is not None and isinstance(exc, aiohttp.ClientError):
        return RpcUnavailableError(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ValueError) and exc.args and isinstance(exc.args[0], Mapping):
        return _from_rpc_error(exc.args[0])  # web3 < 7 style: ValueError({'code', 'message'})
    if type(exc).__name__ in {"ValidationError", "ValueError"}:  # eth-tester / py-evm text
        for pattern, cls in _PATTERNS[:5]:
            if pattern.search(str(exc)):
                return _make(cls, str(exc))
    return FatalError(f"{type(exc).__name__}: {exc}")


def _from_http(exc: BaseException) -> KeeperError:
    status = _http_status(exc)
    if status is not None and (status == 429 or status >= 500):
        return RpcUnavailableError(f"HTTP {status}: {exc}")
    return RpcRejectedError(f"HTTP {status}: {exc}")


__all__ = [
    "ChainIdMismatchError",
    "DeadlineExceededError",
    "FatalError",
    "InsufficientFundsError",
    "KeeperError",
    "NonceConsumedError",
    "NonceTooLowError",
    "RetryableError",
    "RevertedOnChainError",
    "RpcRejectedError",
    "RpcUnavailableError",
    "SimulationRevertError",
    "UnderpricedError",
    "classify",
    "decode_revert",
]
