"""Batched chain reads through reader contracts that are never deployed.

``RequestReader``, ``ClaimReader`` and ``QueueReader`` (contracts/src/readers) are sent as
creation code with their arguments in an ``eth_call`` without a ``to``: the constructor does
many reads at the pinned block and returns raw 32-byte words where runtime code would be. This
works on every node and every vault (no helper contract to deploy or trust at an address) and
turns N reads into N / 255 calls, which are then sent ``BATCH_CALLS`` to one JSON-RPC batch.

Three limits shape the batches: a creation may return at most 24,576 bytes (EIP-170), hence
``MAX_WORDS``; its code with the arguments may be at most 49,152 bytes (EIP-3860), which bounds
the ids of one call; and each reader stops early when less than its ``reserve`` of gas is left, so a
node with a low ``eth_call`` gas cap gets a shorter answer and the rest is asked again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from clearing.abi import static_encoder
from clearing.config import scrub, scrub_error
from clearing.errors import ChainReadError
from clearing.hexcodec import parse_address
from keeper.artifacts import artifact

MAX_WORDS = 24_576 // 32  # EIP-170: the most a creation may return
BATCH_CALLS = 32  # eth_calls per JSON-RPC batch request
REQUESTS_PER_CALL = (MAX_WORDS - 1) // 3  # 255: n, then 3 words per request
QUEUE_PER_CALL = (MAX_WORDS - 2) // 3  # 255: n, next, then 3 words per request
MAX_INITCODE = 49_152  # EIP-3860: the most creation code (reader + arguments) a call may send
CLAIMS_PER_CALL = 1_024  # 32 KiB of ids: within MAX_INITCODE with the reader's code
RESERVE_QEV = 150_000  # gas one more qevRedemptionInfo + nonce read can need, with margin
RESERVE_PLAIN = 1_500_000  # redemption(id) walks up to 150 requests back (cold slots)
RESERVE_CLAIM = 60_000
_MASK64 = (1 << 64) - 1


def _result(answer: Any) -> bytes:
    """The return data of one JSON-RPC ``eth_call`` answer, or ``ChainReadError``."""
    if not isinstance(answer, dict) or "error" in answer or "result" not in answer:
        error = answer.get("error") if isinstance(answer, dict) else answer
        message = error.get("message") if isinstance(error, dict) else error
        raise ChainReadError(f"batched read failed: {scrub(str(message))[:200]}")
    return bytes.fromhex(str(answer["result"]).removeprefix("0x"))


def _words(raw: bytes) -> list[int]:
    return [int.from_bytes(raw[i : i + 32], "big") for i in range(0, len(raw) - 31, 32)]


@cache
def _head_encoder(types: tuple[str, ...]) -> Callable[[Sequence[Any]], bytes]:
    return static_encoder(types)


def _creation(
    name: str, types: tuple[str, ...], args: Sequence[Any], ids: Sequence[int] | None = None
) -> str:
    """The reader's creation code with its ABI-encoded arguments: the static ``args`` of
    ``types`` (addresses as 20 bytes), then ``ids`` as a trailing ``uint256[]`` if given.

    Encoded directly from the layout (a test checks it against eth_abi): eth_abi took
    ~0.7 ms for a page of 255 ids, paid on every page the service's cache reads."""
    data = _head_encoder(types)(args)
    if ids is not None:
        try:
            tail = b"".join(i.to_bytes(32, "big") for i in ids)
        except OverflowError:
            raise ValueError("an id does not fit uint256") from None
        offset = 32 * (len(types) + 1)  # the array's offset: right after the head
        data += offset.to_bytes(32, "big") + len(ids).to_bytes(32, "big") + tail
    return str(artifact(name)["bytecode"]) + data.hex()


class ChainReader:
    """Sends reader creations as ``eth_call`` s, many to one JSON-RPC batch when the provider
    takes batches (``calls`` counts the eth_calls, for tests and benchmarks).

    ``gas`` (optional) is sent as each call's gas; without it the node's default applies
    (anvil: the block gas limit; geth: its RPC gas cap). The ``*_per_call`` sizes are
    attributes so tests can page with small ones.
    """

    def __init__(self, w3: Any, *, gas: int | None = None) -> None:
        self.w3 = w3
        self.gas = gas
        self.calls = 0
        self.requests_per_call = REQUESTS_PER_CALL
        self.queue_per_call = QUEUE_PER_CALL
        self.claims_per_call = CLAIMS_PER_CALL
        # a JSON-RPC provider (HTTP): batches, and single calls sent as they are
        self._batches = self._raw = hasattr(w3.provider, "make_batch_request")

    def _params(self, data: str) -> dict[str, Any]:
        return {"data": data} if self.gas is None else {"data": data, "gas": hex(self.gas)}

    def run(self, datas: Sequence[str], block: int | str) -> list[bytes]:
        """The return data of each creation ``data`` at ``block``, in order."""
        tag = block if isinstance(block, str) else hex(block)
        out: list[bytes] = []
        for start in range(0, len(datas), BATCH_CALLS):
            group = datas[start : start + BATCH_CALLS]
            self.calls += len(group)
            out.extend(
                self._batch(group, tag)
                if self._batches and len(group) > 1
                else [self._one(d, block) for d in group]
            )
        return out

    def _one(self, data: str, block: int | str) -> bytes:
        if self._raw:  # a JSON-RPC provider: the answer as sent, without web3's formatting
            tag = block if isinstance(block, str) else hex(block)
            try:
                answer = self.w3.provider.make_request("eth_call", [self._params(data), tag])
            except Exception as e:
                raise ChainReadError(f"batched read failed: {scrub_error(e)}") from e
            return _result(answer)
        try:
            return bytes(self.w3.eth.call(self._params(data), block))  # type: ignore[arg-type]
        except Exception as e:
            raise ChainReadError(f"batched read failed: {scrub_error(e)}") from e

    def _batch(self, group: Sequence[str], tag: str) -> list[bytes]:
        requests = [("eth_call", [self._params(d), tag]) for d in group]
        try:
            answers = self.w3.provider.make_batch_request(requests)
        except Exception as e:
            raise ChainReadError(f"batched read failed: {scrub_error(e)}") from e
        if not isinstance(answers, list):  # the node refused the batch as a whole
            self._batches = False
            return [self._one(d, tag) for d in group]
        return [_result(answer) for answer in answers]

    def _paged(
        self,
        items: Sequence[int],
        per_call: int,
        make: Callable[[Sequence[int]], str],
        decode: Callable[[list[int], Sequence[int]], int],
        block: int | str,
    ) -> None:
        """Read ``items`` in calls of ``per_call``; ``decode(words, asked)`` takes an answer
        and says how many it covered; what an answer left out (gas ran low) is asked again."""
        todo = list(items)
        while todo:
            groups = [todo[i : i + per_call] for i in range(0, len(todo), per_call)]
            rest: list[int] = []
            for asked, raw in zip(groups, self.run([make(g) for g in groups], block), strict=True):
                done = decode(_words(raw), asked)
                if done == 0:
                    raise ChainReadError("batched read: the node's eth_call gas cap is too low")
                rest.extend(asked[done:])
            todo = rest

    # --- the three readers ---------------------------------------------------------

    def requests(
        self,
        vault: str,
        nonces: str | None,
        auction_id: int,
        ids: Sequence[int],
        block: int | str,
        *,
        plain: bool,
    ) -> dict[int, tuple[bytes, int, int, int]]:
        """``{id: (controller, redemption_timestamp, pending_shares, nonce)}`` at ``block``;
        ``plain`` reads ``redemption(id)`` rather than ``qevRedemptionInfo(id)``."""
        out: dict[int, tuple[bytes, int, int, int]] = {}
        reserve = RESERVE_PLAIN if plain else RESERVE_QEV
        nonce_source = parse_address(nonces) if nonces else bytes(20)
        head = (parse_address(vault), nonce_source, auction_id, plain)
        types = ("address", "address", "uint64", "bool", "uint256")

        def make(group: Sequence[int]) -> str:
            return _creation("RequestReader", types, (*head, reserve), group)

        def decode(words: list[int], asked: Sequence[int]) -> int:
            n = words[0]
            for i in range(n):
                head, pending, nonce = words[1 + 3 * i : 4 + 3 * i]
                controller = (head >> 64).to_bytes(20, "big")
                out[asked[i]] = (controller, head & _MASK64, pending, nonce)
            return n

        self._paged(ids, self.requests_per_call, make, decode, block)
        return out

    def claimed(
        self, settlement: str, auction_id: int, ids: Sequence[int], block: int | str
    ) -> dict[int, bool]:
        """``{id: isClaimed(T, id)}`` at ``block``."""
        out: dict[int, bool] = {}
        types = ("address", "uint64", "uint256")
        head = (parse_address(settlement), auction_id, RESERVE_CLAIM)

        def make(group: Sequence[int]) -> str:
            return _creation("ClaimReader", types, head, group)

        def decode(words: list[int], asked: Sequence[int]) -> int:
            n = words[0]
            for i in range(n):
                out[asked[i]] = bool(words[1 + i // 256] >> (i % 256) & 1)
            return n

        self._paged(ids, self.claims_per_call, make, decode, block)
        return out

    def queue_page(
        self, vault: str, start: int, block: int | str, limit: int = QUEUE_PER_CALL
    ) -> tuple[list[tuple[int, bytes, int, int]], int]:
        """Up to ``limit`` requests from ``start`` along the queue as ``(id, controller,
        redemption_timestamp, pending_shares)``, and the id to go on from (0 at the tail)."""
        data = _creation(
            "QueueReader",
            ("address", "uint256", "uint256", "uint256"),
            (parse_address(vault), start, min(limit, self.queue_per_call), RESERVE_PLAIN),
        )
        words = _words(self.run([data], block)[0])
        n, nxt = words[0], words[1]
        page = []
        for i in range(n):
            rid, head, pending = words[2 + 3 * i : 5 + 3 * i]
            page.append((rid, (head >> 64).to_bytes(20, "big"), head & _MASK64, pending))
        if n == 0 and start:
            raise ChainReadError("batched read: the node's eth_call gas cap is too low")
        return page, nxt


__all__ = ["BATCH_CALLS", "CLAIMS_PER_CALL", "MAX_INITCODE", "MAX_WORDS", "ChainReader"]
