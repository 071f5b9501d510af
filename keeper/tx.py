"""The keeper's transaction pipeline (DESIGN 7 "Transactions").

``TxSender.send`` does, in order: simulate (``eth_call`` from the account at ``pending``; a
revert raises :class:`SimulationRevertError` and nothing is sent), estimate gas plus a margin,
EIP-1559 fees from ``eth_feeHistory``, pick the nonce, sign locally, send the raw transaction,
wait with a deadline, replace at the same nonce with both fees bumped when stuck, wait for
``confirmations``, and re-check the receipt's block after them (a reorg that dropped or moved
the transaction is handled by re-sending the same signed bytes and waiting again).

One sender per account, one transaction in flight at a time (``send`` holds a lock); urgent
and housekeeping work use separate accounts (DESIGN 7). The private key stays inside the
``LocalAccount``: only signed bytes go to the node, and nothing here logs key material.

Logging (logger ``qev.keeper.tx``, stdlib only): every record carries the caller's context
set with :func:`log_context` (the loop sets ``auction_id`` and ``duty``) plus its own fields
as ``extra``. While a transaction waits, "waiting for confirmations" is logged at INFO once
at send and then every ``progress_every`` seconds (by the injectable clock), with
``tx_hash``, ``nonce``, ``lane``, ``confirmations`` (have), ``needed`` and ``waited_s``.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from eth_account.signers.local import LocalAccount
from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from hexbytes import HexBytes
from web3 import HTTPProvider, Web3
from web3.exceptions import BlockNotFound, TransactionNotFound, Web3RPCError
from web3.types import RPCEndpoint

from keeper.errors import (
    ChainIdMismatchError,
    DeadlineExceededError,
    FatalError,
    InsufficientFundsError,
    KeeperError,
    NonceConsumedError,
    NonceTooLowError,
    RetryableError,
    RevertedOnChainError,
    RpcRejectedError,
    RpcUnavailableError,
    UnderpricedError,
    classify,
)
from keeper.fees import BPS, FeePolicy, Fees, bump, fees_from_history

log = logging.getLogger("qev.keeper.tx")

MIN_FEE_BUMP_BPS = 1250  # DESIGN 7: >= 12.5% (geth needs 10% on both fee fields)
PROGRESS_EVERY = 10.0  # seconds between two "waiting for confirmations" records
SCALED_GAS_MARGIN_BPS = 2500  # send_many(sizes=...): on top of the estimate's own margin
_KNOWN = ("already known", "known transaction", "alreadyknown")

# --- log context ---------------------------------------------------------------------

_CONTEXT: ContextVar[Mapping[str, object]] = ContextVar(
    "qev_keeper_log_context", default=MappingProxyType({})
)


@contextmanager
def log_context(**fields: object) -> Iterator[None]:
    """Add ``fields`` (e.g. ``auction_id``, ``duty``) to every keeper record logged inside."""
    token = _CONTEXT.set(MappingProxyType({**_CONTEXT.get(), **fields}))
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def log_fields(**fields: object) -> dict[str, object]:
    """The current log context with ``fields`` on top: an ``extra`` for a logging call."""
    return {**_CONTEXT.get(), **fields}


class LogContextFilter(logging.Filter):
    """Copies the :func:`log_context` fields onto each record that does not set them itself.

    Attached to the keeper's loggers (``qev.keeper.tx`` here, ``qev.keeper`` by the loop), so
    records logged by code that knows nothing of the context still carry it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in _CONTEXT.get().items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


log.addFilter(LogContextFilter())


@dataclass(frozen=True)
class TxRequest:
    """A raw call: ``to``, calldata, value; ``abi`` (optional) names custom revert errors."""

    to: str
    data: bytes = b""
    value: int = 0
    abi: Sequence[Mapping[str, Any]] | None = None


@dataclass(frozen=True)
class TxReceiptInfo:
    """The outcome of a confirmed, successful transaction."""

    label: str
    tx_hash: str
    nonce: int
    block_number: int
    block_hash: str
    gas_used: int
    effective_gas_price: int
    replacements: int  # replacement transactions broadcast at this nonce
    reorgs: int  # times the inclusion was lost or moved and re-established
    sent_hashes: tuple[str, ...]  # every hash broadcast at this nonce, first to last
    raw_transaction: bytes = field(repr=False)  # the mined signed bytes (public data)


@dataclass
class _Sent:
    tx_hash: str
    raw: bytes
    fees: Fees
    request: TxRequest
    label: str = ""


@dataclass
class _Flight:
    """Everything sent at one nonce."""

    nonce: int
    label: str
    request: TxRequest
    gas: int
    first_sent_at: float  # sender's clock: the first broadcast at this nonce (pending age)
    sent: list[_Sent] = field(default_factory=list)
    floor: Fees | None = None  # the next broadcast must beat this (highest fees tried)
    unaffordable: bool = False  # a bump failed for lack of funds: only re-broadcast now
    waiting_since: float = 0.0  # sender's clock: when this send started waiting
    progress_at: float = 0.0  # sender's clock: the last "waiting for confirmations" record

    def hashes(self) -> tuple[str, ...]:
        return tuple(s.tx_hash for s in self.sent)

    def top(self) -> Fees:
        fees = [s.fees for s in self.sent] + ([self.floor] if self.floor else [])
        out = fees[0]
        for f in fees[1:]:
            out = out.at_least(f)
        return out


def _hex(value: bytes | str) -> str:
    return value.lower() if isinstance(value, str) else "0x" + bytes(value).hex()


def as_request(call: Any, value: int = 0) -> TxRequest:
    """A TxRequest from a ContractFunction, a TxRequest or a ``(to, data, value)`` tuple."""
    if isinstance(call, TxRequest):
        return call
    if isinstance(call, tuple):
        to, data, val = call
        raw = bytes.fromhex(data.removeprefix("0x")) if isinstance(data, str) else bytes(data)
        return TxRequest(to, raw, int(val))
    encode = getattr(call, "_encode_transaction_data", None)  # web3 ContractFunction
    if encode is None or not getattr(call, "address", None):
        raise TypeError(f"cannot send {call!r}: need a bound ContractFunction or (to, data, value)")
    data_hex: str = encode()
    return TxRequest(call.address, bytes.fromhex(data_hex[2:]), value, call.contract_abi)


class TxSender:
    """Sends transactions from one local account, safely (see the module docstring).

    ``confirmations`` follows the web3/ethers convention: 1 means included, N means the
    including block plus N - 1 blocks on top. ``stuck_after`` (seconds without inclusion since
    the last broadcast) triggers a same-nonce replacement with both fees raised by at least
    ``fee_bump_bps``; at most ``max_replacements`` of them. ``deadline`` bounds one ``send``
    (inclusion and confirmations; a reorg grants a fresh one). ``clock``/``sleep`` are injectable.
    ``lane`` names the sender in its log records; ``progress_every`` is the interval of the
    "waiting for confirmations" records.
    """

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        *,
        chain_id: int,
        confirmations: int = 1,
        gas_margin_bps: int = 2000,
        fee_bump_bps: int = MIN_FEE_BUMP_BPS,
        stuck_after: float = 30.0,
        deadline: float = 600.0,
        max_replacements: int = 5,
        fee_policy: FeePolicy | None = None,
        max_priority_fee_cap: int | None = None,
        max_fee_cap: int | None = None,
        max_gas: int | None = None,
        poll_interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        lane: str | None = None,
        progress_every: float = PROGRESS_EVERY,
    ) -> None:
        if fee_bump_bps < MIN_FEE_BUMP_BPS:
            raise ValueError(f"fee_bump_bps must be >= {MIN_FEE_BUMP_BPS} (12.5%)")
        if confirmations < 1:
            raise ValueError("confirmations must be >= 1")
        policy = fee_policy or FeePolicy()
        if max_priority_fee_cap is not None:
            policy = dataclasses.replace(
                policy,
                max_priority_fee_cap=max_priority_fee_cap,
                min_priority_fee=min(policy.min_priority_fee, max_priority_fee_cap),
            )
        if max_fee_cap is not None:
            policy = dataclasses.replace(policy, max_fee_cap=max_fee_cap)
        self.w3 = w3
        self._account = account
        self.chain_id = chain_id
        self.confirmations = confirmations
        self.gas_margin_bps = gas_margin_bps
        self.fee_bump_bps = fee_bump_bps
        self.stuck_after = stuck_after
        self.deadline = deadline
        self.max_replacements = max_replacements
        self.fee_policy = policy
        self.max_gas = max_gas
        self.poll_interval = poll_interval
        self._clock = clock
        self._sleep = sleep
        self.lane = lane
        self.progress_every = progress_every
        self._lock = threading.RLock()
        self._chain_checked = False
        self._in_flight: dict[int, _Flight] = {}
        # receipts parsed from the raw JSON-RPC answer over HTTP (see _light_receipt)
        self._light_receipts = isinstance(getattr(w3, "provider", None), HTTPProvider)

    def __repr__(self) -> str:
        return f"TxSender(address={self.address}, chain_id={self.chain_id})"

    @property
    def address(self) -> str:
        """The sending account's checksum address."""
        return str(self._account.address)

    @property
    def in_flight(self) -> dict[int, tuple[str, ...]]:
        """Nonces sent but not confirmed (e.g. after a deadline), with their hashes."""
        return {n: f.hashes() for n, f in self._in_flight.items()}

    def oldest_pending_age(self) -> float:
        """Seconds since the first broadcast at the oldest nonce not yet confirmed (0.0: none).

        Covers the send being waited for right now and any nonce left behind by a deadline.
        Reads without the send lock (a metrics scrape runs while ``send`` waits); the copy of
        the values is atomic under the GIL.
        """
        flights = list(self._in_flight.values())
        if not flights:
            return 0.0
        return max(0.0, self._clock() - min(f.first_sent_at for f in flights))

    # --- public steps ------------------------------------------------------------

    def simulate(self, call: Any, *, value: int = 0, block: str | int = "pending") -> bytes:
        """``eth_call`` from this account; returns the output or raises SimulationRevertError."""
        req = as_request(call, value)
        try:
            return bytes(self.w3.eth.call(self._params(req), block))  # type: ignore[arg-type]
        except Exception as e:
            raise classify(e, req.abi) from e

    def estimate_gas(self, call: Any, *, value: int = 0) -> int:
        """Gas estimate plus ``gas_margin_bps`` (capped at ``max_gas``); reverts are fatal.

        Estimated at the node's default block (not every node takes a block argument here).
        """
        req = as_request(call, value)
        try:
            estimate = int(self.w3.eth.estimate_gas(self._params(req)))  # type: ignore[arg-type]
        except Exception as e:
            raise classify(e, req.abi) from e
        gas = -(-estimate * (BPS + self.gas_margin_bps) // BPS)
        return min(gas, self.max_gas) if self.max_gas else gas

    def suggest_fees(self) -> Fees:
        """Fees from ``eth_feeHistory``; without it, the latest base fee and the node's tip."""
        policy = self.fee_policy
        try:
            history = self.w3.eth.fee_history(
                policy.history_blocks, "latest", [policy.reward_percentile]
            )
            fees = fees_from_history(history, policy)
            if fees is not None:
                return fees
        except Exception as e:
            if isinstance(classify(e), RpcUnavailableError):
                raise classify(e) from e
            log.debug("eth_feeHistory unavailable (%s); falling back", e)
        try:
            block = self.w3.eth.get_block("latest")
            base = block.get("baseFeePerGas")
            if base is None:
                raise RpcRejectedError("the node reports no base fee (no EIP-1559)")
            try:
                tip = int(self.w3.eth.max_priority_fee)
            except Exception as e:
                if isinstance(classify(e), RpcUnavailableError):
                    raise
                tip = policy.min_priority_fee
            return policy.apply(int(base), tip)
        except Exception as e:
            raise classify(e) from e

    def send(self, call: Any, *, label: str = "", value: int = 0) -> TxReceiptInfo:
        """Simulate, price, sign, send, wait, replace if stuck, confirm; see the module doc.

        Raises SimulationRevertError (nothing sent), RevertedOnChainError (status 0),
        DeadlineExceededError (the nonce stays remembered: the next ``send`` reuses it with
        higher fees, simulating at ``latest``, so at most one of the two lands), other
        FatalErrors, or RetryableErrors (NonceConsumedError when the nonce was mined by a
        transaction other than this call's: re-simulate).
        """
        with self._lock:
            try:
                return self._send(as_request(call, value), label)
            except KeeperError:
                raise
            except Exception as e:
                raise classify(e) from e

    def send_many(
        self,
        calls: Sequence[tuple[Any, str]],
        *,
        depth: int = 8,
        sizes: Sequence[int] | None = None,
        estimate_every: int = 32,
    ) -> list[TxReceiptInfo]:
        """Send calls ``(call, label)`` with up to ``depth`` in flight at
        consecutive nonces; returns their receipts in order, each confirmed and then, once the
        last is confirmed, re-checked (a reorg that dropped one re-sends its signed bytes).

        For calls that stay valid whatever the earlier ones leave behind, run in nonce order
        (claims of different leaves; service calls that each take shares from the queue's
        head): each is estimated against the node's view with the earlier ones possibly still
        pending, and a revert there raises ``SimulationRevertError`` after the calls already
        sent are confirmed. Any other failure also waits for what was sent before raising, so
        no nonce is left behind to be replaced by an unrelated call. Fees are priced once per
        window.

        ``sizes`` (optional, one per call: e.g. the leaves a claim transaction carries) says
        the calls cost gas in proportion to their size: only every ``estimate_every``-th call
        is estimated (with its revert check), the others get the largest gas per unit seen so
        far times their size, plus ``SCALED_GAS_MARGIN_BPS``. On a node whose estimate runs
        the call several times this saves most of the execution work; a call that still runs
        out of gas is mined reverted and raises ``RevertedOnChainError``.
        """
        if sizes is not None and len(sizes) != len(calls):
            raise ValueError("sizes must give one size per call")
        with self._lock:
            try:
                requests = [(as_request(c), label) for c, label in calls]
                infos = self._send_many(requests, depth, sizes, max(estimate_every, 1))
                return [self.recheck(info) for info in infos]
            except KeeperError:
                raise
            except Exception as e:
                raise classify(e) from e

    def _send_many(
        self,
        calls: Sequence[tuple[TxRequest, str]],
        depth: int,
        sizes: Sequence[int] | None,
        estimate_every: int,
    ) -> list[TxReceiptInfo]:
        self._check_chain()
        out: list[TxReceiptInfo] = []
        window: list[tuple[_Flight, float]] = []
        nonce: int | None = None
        fees: Fees | None = None
        per_unit = 0  # the largest estimated gas per unit of size so far
        try:
            for k, (req, label) in enumerate(calls):
                if nonce is None and self._in_flight:
                    # a nonce left by an earlier deadline: replace it on the safe serial path
                    out.append(self._send(req, label))
                    continue
                if nonce is None:
                    nonce = int(self.w3.eth.get_transaction_count(self.address, "pending"))  # type: ignore[arg-type]
                fresh_window = k % max(depth, 1) == 0
                if sizes is None or k % estimate_every == 0 or per_unit == 0:
                    gas = self.estimate_gas(req)  # a revert raises here: nothing sent for it
                    if sizes is not None and sizes[k] > 0:
                        per_unit = max(per_unit, -(-gas // sizes[k]))
                else:
                    gas = -(-per_unit * sizes[k] * (BPS + SCALED_GAS_MARGIN_BPS) // BPS)
                    gas = min(gas, self.max_gas) if self.max_gas else gas
                if fees is None or fresh_window:
                    fees = self.suggest_fees()
                window.append(self._dispatch(req, label, nonce, gas, fees))
                nonce += 1
                if len(window) >= depth:
                    out.append(self._land(*window.pop(0)))
        except BaseException:
            for flight, deadline_at in window:  # never leave a sent nonce behind
                try:
                    out.append(self._land(flight, deadline_at))
                except Exception as e:  # the first error is the one raised
                    log.warning("%s: %s", flight.label or "tx", e, extra=self._fields())
            raise
        out.extend(self._land(flight, deadline_at) for flight, deadline_at in window)
        return out

    def _dispatch(
        self, req: TxRequest, label: str, nonce: int, gas: int, fees: Fees
    ) -> tuple[_Flight, float]:
        """Sign and broadcast at ``nonce``; the flight and its deadline."""
        now = self._clock()
        flight = _Flight(nonce, label, req, gas, now)
        sent = self._sign(req, nonce, gas, fees, label)
        self._in_flight[nonce] = flight
        try:
            self._broadcast(sent)
        except RetryableError:
            flight.sent.append(sent)  # it may have reached the node: waited for like the rest
            raise
        except Exception:
            del self._in_flight[nonce]
            raise
        flight.sent.append(sent)
        flight.waiting_since = self._clock()
        self._progress(flight, sent.tx_hash, 0, force=True)
        return flight, flight.waiting_since + self.deadline

    def _land(self, flight: _Flight, deadline_at: float) -> TxReceiptInfo:
        """Wait for a dispatched flight to be mined and confirmed."""
        receipt, winner = self._wait_mined(flight, deadline_at)
        return self._confirm(flight, receipt, winner, deadline_at, reorgs=0)

    def send_with_retry(
        self,
        call: Any,
        *,
        label: str = "",
        value: int = 0,
        attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> TxReceiptInfo:
        """``send``, retrying RetryableErrors with capped exponential backoff.

        Every attempt starts again with the simulation. So if an earlier attempt's
        transaction was mined after all (or another keeper did the step), the retry raises
        the contract's revert (e.g. ``AuctionAlreadySettled``) as a SimulationRevertError:
        callers treat that revert as "already done" after re-reading the chain. FatalErrors
        are not retried; the last RetryableError is raised when the attempts run out.
        """
        delay = backoff
        for attempt in range(1, attempts + 1):
            try:
                return self.send(call, label=label, value=value)
            except RetryableError as e:
                if attempt == attempts:
                    raise
                log.warning(
                    "%s: attempt %d/%d failed (%s: %s); retrying in %.2fs",
                    label or "tx",
                    attempt,
                    attempts,
                    e.code,
                    e,
                    delay,
                    extra=self._fields(label=label, attempt=attempt, code=e.code),
                )
                self._sleep(delay)
                delay = min(delay * 2, max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    def recheck(self, info: TxReceiptInfo) -> TxReceiptInfo:
        """Re-verify a confirmed transaction after the fact (e.g. before a dependent step).

        If its block is no longer canonical, the same signed bytes are re-broadcast and the
        transaction is waited for and confirmed again; returns the current inclusion.
        """
        with self._lock:
            try:
                if self._hash_at(info.block_number) == info.block_hash:
                    return info  # its block is still the chain's (a block hash commits to its txs)
                receipt = self._receipt(info.tx_hash)
                if (
                    receipt is not None
                    and _hex(receipt["blockHash"]) == info.block_hash
                    and self._canonical(receipt)
                ):
                    return info
                tx = TypedTransaction.from_bytes(HexBytes(info.raw_transaction)).as_dict()
                req = TxRequest(_hex(tx["to"]), bytes(tx["data"]), int(tx["value"]))
                fees = Fees(int(tx["maxFeePerGas"]), int(tx["maxPriorityFeePerGas"]))
                now = self._clock()
                flight = _Flight(info.nonce, info.label, req, int(tx["gas"]), now)
                flight.sent.append(_Sent(info.tx_hash, info.raw_transaction, fees, req, info.label))
                flight.waiting_since = flight.progress_at = now
                self._in_flight[info.nonce] = flight
                deadline_at = now + self.deadline
                if receipt is None:
                    receipt, winner = self._reinclude(flight, flight.sent[0], deadline_at)
                else:
                    winner = flight.sent[0]
                return self._confirm(flight, receipt, winner, deadline_at, reorgs=info.reorgs + 1)
            except KeeperError:
                raise
            except Exception as e:
                raise classify(e) from e

    # --- pipeline ------------------------------------------------------------------

    def _send(self, req: TxRequest, label: str) -> TxReceiptInfo:
        self._check_chain()
        nonce, previous = self._pick_nonce()
        # Replacing a transaction we gave up on: simulate on the mined state, not on a
        # pending state that already contains it.
        block = "latest" if previous is not None else "pending"
        self.simulate(req, block=block)
        gas = self.estimate_gas(req)
        fees = self.suggest_fees()
        if previous is not None:
            floor = bump(previous.top(), self.fee_bump_bps, self.fee_policy)
            if floor is None:
                raise UnderpricedError(
                    f"nonce {nonce} holds a transaction whose fees cannot be bumped within the caps"
                )
            fees = fees.at_least(floor)
        first_sent_at = previous.first_sent_at if previous is not None else self._clock()
        flight = _Flight(nonce, label, req, gas, first_sent_at)
        if previous is not None:
            flight.sent = list(previous.sent)  # any of them may still be mined
        sent = self._sign(req, nonce, gas, fees, label)
        self._in_flight[nonce] = flight  # before broadcasting: a timeout may hide a success
        log.info(
            "%s: sending %s nonce=%d gas=%d maxFee=%d tip=%d",
            label or "tx",
            sent.tx_hash,
            nonce,
            gas,
            fees.max_fee_per_gas,
            fees.max_priority_fee_per_gas,
            extra=self._fields(label=label, tx_hash=sent.tx_hash, nonce=nonce, gas=gas),
        )
        try:
            self._broadcast(sent)
        except (NonceTooLowError, FatalError):
            if previous is None:
                del self._in_flight[nonce]
            raise
        except UnderpricedError:
            flight.floor = fees
            raise
        except RetryableError:
            flight.sent.append(sent)  # it may have reached the node
            raise
        flight.sent.append(sent)
        flight.waiting_since = self._clock()
        self._progress(flight, sent.tx_hash, 0, force=True)
        deadline_at = flight.waiting_since + self.deadline
        receipt, winner = self._wait_mined(flight, deadline_at)
        return self._confirm(flight, receipt, winner, deadline_at, reorgs=0)

    def _check_chain(self) -> None:
        if self._chain_checked:
            return
        actual = int(self.w3.eth.chain_id)
        if actual != self.chain_id:
            raise ChainIdMismatchError(f"node chain id {actual}, expected {self.chain_id}")
        self._chain_checked = True

    def _pick_nonce(self) -> tuple[int, _Flight | None]:
        latest = int(self.w3.eth.get_transaction_count(self.address, "latest"))  # type: ignore[arg-type]
        for n in [n for n in self._in_flight if n < latest]:
            del self._in_flight[n]  # mined meanwhile (ours or not): the simulation tells
        if self._in_flight:
            n = min(self._in_flight)
            return n, self._in_flight[n]
        return int(self.w3.eth.get_transaction_count(self.address, "pending")), None  # type: ignore[arg-type]

    def _params(self, req: TxRequest) -> dict[str, Any]:
        return {
            "from": self.address,
            "to": to_checksum_address(req.to),
            "data": "0x" + req.data.hex(),
            "value": req.value,
        }

    def _sign(self, req: TxRequest, nonce: int, gas: int, fees: Fees, label: str) -> _Sent:
        tx: dict[str, Any] = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": to_checksum_address(req.to),
            "value": req.value,
            "data": req.data,
            "gas": gas,
            "maxFeePerGas": fees.max_fee_per_gas,
            "maxPriorityFeePerGas": fees.max_priority_fee_per_gas,
        }
        signed = self._account.sign_transaction(tx)
        return _Sent(_hex(signed.hash), bytes(signed.raw_transaction), fees, req, label)

    def _broadcast(self, sent: _Sent) -> None:
        try:
            self.w3.eth.send_raw_transaction(sent.raw)
        except Exception as e:
            if any(k in str(e).lower() for k in _KNOWN):
                return  # the node has it already: fine
            raise classify(e) from e

    def _receipt(self, tx_hash: str) -> Any | None:
        if self._light_receipts:
            return self._light_receipt(tx_hash)
        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        except Exception as e:
            raise classify(e) from e

    def _light_receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """The receipt fields the pipeline uses, straight from the JSON-RPC answer.

        web3's formatting of a receipt walks every log (a checksum per address, an
        AttributeDict per level): ~120 ms for a claim transaction with 600 logs, most of a
        month's claim time (benchmarks/month). Over HTTP the raw answer is parsed instead.
        """
        try:
            response = self.w3.provider.make_request(
                RPCEndpoint("eth_getTransactionReceipt"), [tx_hash]
            )
        except Exception as e:
            raise classify(e) from e
        if response.get("error") is not None:
            error = response["error"]
            message = error.get("message", "") if isinstance(error, Mapping) else str(error)
            raise classify(Web3RPCError(str(message), rpc_response=response))
        raw = response.get("result")
        if raw is None:
            return None

        def number(key: str) -> int | None:
            value = raw.get(key)
            return (
                None if value is None else int(value, 16) if isinstance(value, str) else int(value)
            )

        return {
            "blockHash": raw.get("blockHash"),
            "blockNumber": number("blockNumber"),
            "status": number("status"),
            "gasUsed": number("gasUsed"),
            "effectiveGasPrice": number("effectiveGasPrice"),
        }

    def _find_receipt(self, flight: _Flight) -> tuple[Any, _Sent] | None:
        for sent in reversed(flight.sent):
            receipt = self._receipt(sent.tx_hash)
            if receipt is not None and receipt.get("blockHash") is not None:
                return receipt, sent
        return None

    def _canonical(self, receipt: Any) -> bool:
        return self._hash_at(int(receipt["blockNumber"])) == _hex(receipt["blockHash"])

    def _hash_at(self, number: int) -> str | None:
        """The canonical block hash at ``number`` (None past the head)."""
        try:
            return _hex(self.w3.eth.get_block(number)["hash"])
        except BlockNotFound:
            return None

    def _wait_mined(self, flight: _Flight, deadline_at: float) -> tuple[Any, _Sent]:
        """Poll every hash sent at the nonce; replace when stuck; any one mined wins."""
        last_broadcast = self._clock()
        while True:
            try:
                latest = int(self.w3.eth.get_transaction_count(self.address, "latest"))  # type: ignore[arg-type]
                found = self._find_receipt(flight)
                if found is not None:
                    return found
                if latest > flight.nonce:
                    if self._clock() - last_broadcast >= self.stuck_after:
                        raise NonceConsumedError(
                            f"nonce {flight.nonce} was mined by none of {flight.hashes()}"
                        )
                elif self._clock() - last_broadcast >= self.stuck_after:
                    self._replace(flight)
                    last_broadcast = self._clock()
            except RpcUnavailableError as e:
                log.warning(
                    "%s: polling failed (%s); still waiting",
                    flight.label or "tx",
                    e,
                    extra=self._fields(label=flight.label, nonce=flight.nonce),
                )
            self._progress(flight, flight.sent[-1].tx_hash, 0)
            if self._clock() >= deadline_at:
                raise DeadlineExceededError(
                    f"{flight.label or 'tx'}: nonce {flight.nonce} not mined before the deadline"
                    f" ({len(flight.sent)} broadcast)",
                    nonce=flight.nonce,
                    tx_hashes=flight.hashes(),
                )
            self._sleep(self.poll_interval)

    def _replace(self, flight: _Flight) -> None:
        """Broadcast a same-nonce replacement with both fees bumped (or re-broadcast)."""
        label = flight.label or "tx"
        if len(flight.sent) > self.max_replacements or flight.unaffordable:
            self._rebroadcast(flight.sent[-1])
            return
        bumped = bump(flight.top(), self.fee_bump_bps, self.fee_policy)
        if bumped is None:
            log.warning(
                "%s: fee caps reached; re-broadcasting instead of bumping",
                label,
                extra=self._fields(label=flight.label, nonce=flight.nonce),
            )
            self._rebroadcast(flight.sent[-1])
            return
        try:
            fees = bumped.at_least(self.suggest_fees())
        except RetryableError:
            fees = bumped
        sent = self._sign(flight.request, flight.nonce, flight.gas, fees, flight.label)
        try:
            self._broadcast(sent)
        except UnderpricedError as e:
            log.warning(
                "%s: replacement refused (%s); will bump again",
                label,
                e,
                extra=self._fields(label=flight.label, nonce=flight.nonce),
            )
            flight.floor = fees
            return
        except NonceTooLowError:
            return  # something was mined at the nonce: the next poll finds out what
        except InsufficientFundsError as e:
            log.warning(
                "%s: cannot afford the bump (%s); waiting on what was sent",
                label,
                e,
                extra=self._fields(label=flight.label, nonce=flight.nonce),
            )
            flight.unaffordable = True  # the transactions already sent stay valid
            return
        log.info(
            "%s: stuck, replaced nonce=%d with %s maxFee=%d tip=%d",
            label,
            flight.nonce,
            sent.tx_hash,
            fees.max_fee_per_gas,
            fees.max_priority_fee_per_gas,
            extra=self._fields(label=flight.label, tx_hash=sent.tx_hash, nonce=flight.nonce),
        )
        flight.sent.append(sent)

    def _rebroadcast(self, sent: _Sent) -> None:
        try:
            self._broadcast(sent)
        except KeeperError as e:  # best effort: the wait loop decides what happens next
            log.debug("re-broadcast of %s: %s", sent.tx_hash, e)

    def _reinclude(self, flight: _Flight, winner: _Sent, deadline_at: float) -> tuple[Any, _Sent]:
        """After a reorg dropped the transaction: re-send the same signed bytes and wait."""
        found = self._find_receipt(flight)
        if found is not None:
            return found
        self._rebroadcast(winner)  # idempotent: same nonce, same bytes, same hash
        return self._wait_mined(flight, deadline_at)

    def _confirm(
        self, flight: _Flight, receipt: Any, winner: _Sent, deadline_at: float, *, reorgs: int
    ) -> TxReceiptInfo:
        """Wait for the confirmations, then check the receipt's block is still canonical."""
        label = flight.label or "tx"
        while True:
            have = 0
            try:
                head = int(self.w3.eth.block_number)
                have = max(0, head - int(receipt["blockNumber"]) + 1)
                if have >= self.confirmations:
                    if self._canonical(receipt):  # still in its block: no second receipt read
                        return self._finish(flight, receipt, winner, reorgs)
                    fresh = self._receipt(winner.tx_hash)
                    if fresh is None or fresh.get("blockHash") is None:
                        reorgs += 1
                        log.warning(
                            "%s: %s dropped by a reorg; re-sending",
                            label,
                            winner.tx_hash,
                            extra=self._fields(
                                label=flight.label, tx_hash=winner.tx_hash, nonce=flight.nonce
                            ),
                        )
                        deadline_at = max(deadline_at, self._clock() + self.deadline)
                        receipt, winner = self._reinclude(flight, winner, deadline_at)
                        continue
                    if _hex(fresh["blockHash"]) != _hex(receipt["blockHash"]):
                        reorgs += 1
                        log.warning(
                            "%s: %s moved by a reorg",
                            label,
                            winner.tx_hash,
                            extra=self._fields(
                                label=flight.label, tx_hash=winner.tx_hash, nonce=flight.nonce
                            ),
                        )
                        receipt = fresh
                        continue
                    if self._canonical(fresh):
                        return self._finish(flight, fresh, winner, reorgs)
            except RpcUnavailableError as e:
                log.warning(
                    "%s: polling failed (%s); still confirming",
                    label,
                    e,
                    extra=self._fields(label=flight.label, nonce=flight.nonce),
                )
            self._progress(flight, winner.tx_hash, min(have, self.confirmations))
            if self._clock() >= deadline_at:
                raise DeadlineExceededError(
                    f"{label}: {winner.tx_hash} not confirmed before the deadline",
                    nonce=flight.nonce,
                    tx_hashes=flight.hashes(),
                )
            self._sleep(self.poll_interval)

    def _finish(self, flight: _Flight, receipt: Any, winner: _Sent, reorgs: int) -> TxReceiptInfo:
        self._in_flight.pop(flight.nonce, None)
        block_number = int(receipt["blockNumber"])
        if winner.request != flight.request:  # an earlier, abandoned transaction won the nonce
            raise NonceConsumedError(
                f"nonce {flight.nonce} was mined by the abandoned {winner.label or 'tx'} "
                f"{winner.tx_hash}; re-simulate"
            )
        if int(receipt["status"]) != 1:
            raise RevertedOnChainError(
                f"{flight.label or 'tx'}: {winner.tx_hash} reverted in block {block_number}",
                tx_hash=winner.tx_hash,
                block_number=block_number,
            )
        info = TxReceiptInfo(
            label=flight.label,
            tx_hash=winner.tx_hash,
            nonce=flight.nonce,
            block_number=block_number,
            block_hash=_hex(receipt["blockHash"]),
            gas_used=int(receipt["gasUsed"]),
            effective_gas_price=int(receipt.get("effectiveGasPrice") or 0),
            replacements=len(flight.sent) - 1,
            reorgs=reorgs,
            sent_hashes=flight.hashes(),
            raw_transaction=winner.raw,
        )
        log.info(
            "%s: confirmed %s block=%d gasUsed=%d",
            info.label or "tx",
            info.tx_hash,
            block_number,
            info.gas_used,
            extra=self._fields(
                label=info.label,
                tx_hash=info.tx_hash,
                nonce=info.nonce,
                block=block_number,
                gas_used=info.gas_used,
                confirmations=self.confirmations,
            ),
        )
        return info

    # --- logging -----------------------------------------------------------------

    def _fields(self, **fields: object) -> dict[str, object]:
        """``extra`` for a record: the log context, the lane (if known), then ``fields``."""
        lane = {} if self.lane is None else {"lane": self.lane}
        return log_fields(**lane, **fields)

    def _progress(self, flight: _Flight, tx_hash: str, have: int, *, force: bool = False) -> None:
        """Log "waiting for confirmations" if forced or ``progress_every`` has passed."""
        now = self._clock()
        if not force and now - flight.progress_at < self.progress_every:
            return
        flight.progress_at = now
        waited = max(0.0, now - flight.waiting_since)
        log.info(
            "waiting for confirmations %d/%d after %.0f s: %s %s nonce=%d",
            have,
            self.confirmations,
            waited,
            flight.label or "tx",
            tx_hash,
            flight.nonce,
            extra=self._fields(
                label=flight.label,
                tx_hash=tx_hash,
                nonce=flight.nonce,
                confirmations=have,
                needed=self.confirmations,
                waited_s=round(waited, 3),
            ),
        )


__all__ = [
    "MIN_FEE_BUMP_BPS",
    "PROGRESS_EVERY",
    "SCALED_GAS_MARGIN_BPS",
    "LogContextFilter",
    "TxReceiptInfo",
    "TxRequest",
    "TxSender",
    "as_request",
    "log_context",
    "log_fields",
]
