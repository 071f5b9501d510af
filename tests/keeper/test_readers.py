"""Batched reads (keeper.readers) give what one read per request gives, at the pinned block.

Each answer is compared with the contracts' own views read one at a time: every request of
the month (and ids past the counter), its nonce, the queue walk, ``isClaimed`` of every leaf
after a claim. Small page sizes and a low gas cap make the readers page and resume.
"""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account

from clearing.calendar import REDEMPTION_WINDOW
from clearing.errors import ChainReadError
from keeper.artifacts import artifact
from keeper.chain import Chain
from keeper.deploy import transact
from keeper.readers import (
    CLAIMS_PER_CALL,
    MAX_INITCODE,
    MAX_WORDS,
    REQUESTS_PER_CALL,
    ChainReader,
)
from keeper.senders import make_sender

from .conftest import Env
from .month import key


def _one_by_one(chain: Chain, auction_id: int, ids: list[int], block: int) -> dict[int, Any]:
    out = {}
    for rid in ids:
        controller, ts, pending = chain.vault.functions.qevRedemptionInfo(rid).call(
            block_identifier=block
        )
        nonce = chain.settlement.functions.nonce(auction_id, rid).call(block_identifier=block)
        out[rid] = (bytes.fromhex(controller[2:]), int(ts), int(pending), int(nonce))
    return out


def _requests(chain: Chain, auction_id: int, ids: list[int], block: int) -> dict[int, Any]:
    snap = chain.snapshot_requests(auction_id, ids, block)
    return {
        rid: (s.controller, s.redemption_timestamp, s.pending_shares, s.nonce)
        for rid, s in snap.items()
    }


@pytest.fixture
def ids(env: Env) -> list[int]:
    """Every request of the month, and two ids the vault never gave out."""
    index = env.month.chain.queue_info().index
    return [*range(1, index + 1), index + 5, 10**30]


def test_requests_match_the_views_one_by_one(env: Env, ids: list[int]) -> None:
    m = env.month
    block = m.w3.eth.block_number
    # a nonce moved on-chain: the batched read must see it
    rid = m.rids[4]  # holder 4 (funded for gas by the month) moves its next auction's nonce
    t = m.auction_id + REDEMPTION_WINDOW
    holder = make_sender(m.w3, Account.from_key(key("holder-4")), poll_interval=0.01)
    holder.send(m.chain.settlement.functions.incrementNonce(t, rid), label="nonce")
    after = m.w3.eth.block_number
    expected_before = _one_by_one(m.chain, t, ids, block)
    expected_after = _one_by_one(m.chain, t, ids, after)
    assert expected_after[rid][3] == expected_before[rid][3] + 1  # the nonce did move

    chain = Chain(m.w3, m.deployment.vault, m.deployment.settlement)
    chain.reader.requests_per_call = 4  # many pages, and pages within one JSON-RPC batch
    assert _requests(chain, t, ids, block) == expected_before
    assert _requests(chain, t, ids, after) == expected_after
    assert expected_before[10**30] == (bytes(20), 0, 0, 0)  # a missing request reads as zeros
    assert chain.reader.calls == 2 * -(-len(ids) // 4)


def test_plain_vault_reads_redemption_id_and_gives_the_same(env: Env, ids: list[int]) -> None:
    m = env.month
    block = m.w3.eth.block_number
    expected = _one_by_one(m.chain, m.auction_id, ids, block)
    transact(m.w3, m.chain.vault.functions.hideModelViews(True), m.admin)
    chain = Chain(m.w3, m.deployment.vault, m.deployment.settlement)
    assert not chain.has_view("qevRedemptionInfo")
    assert _requests(chain, m.auction_id, ids, block) == expected


def test_a_low_gas_cap_gives_short_answers_that_are_asked_again(env: Env, ids: list[int]) -> None:
    m = env.month
    block = m.w3.eth.block_number
    chain = Chain(m.w3, m.deployment.vault, m.deployment.settlement)
    chain.reader.gas = 400_000  # room for a few reads past the reserve, not for all
    assert _requests(chain, m.auction_id, ids, block) == _one_by_one(
        m.chain, m.auction_id, ids, block
    )
    assert chain.reader.calls > len(ids) // 20  # it did resume, many times
    chain.reader.gas = 100_000  # under the reserve: nothing can be read
    with pytest.raises(ChainReadError, match="gas cap is too low"):
        chain.snapshot_requests(m.auction_id, ids, block)


def test_a_full_page_fits_the_creation_return_limit(env: Env) -> None:
    """255 requests per call stay within EIP-170's 24,576 bytes (the node enforces it)."""
    m = env.month
    assert 1 + 3 * REQUESTS_PER_CALL <= MAX_WORDS
    reader = ChainReader(m.w3)
    start = 10**12  # ids the vault never gave out: zeros, cheap to read
    read = reader.requests(
        m.chain.vault.address,
        m.chain.settlement.address,
        m.auction_id,
        list(range(start, start + REQUESTS_PER_CALL)),
        "latest",
        plain=False,
    )
    assert len(read) == REQUESTS_PER_CALL and reader.calls == 1


def test_a_full_page_of_claims_fits_the_initcode_limit(env: Env) -> None:
    """1,024 ids per ClaimReader call stay within EIP-3860's 49,152 bytes of creation code."""
    m = env.month
    reader = ChainReader(m.w3)
    ids = list(range(10**12, 10**12 + CLAIMS_PER_CALL))
    assert (
        len(artifact("ClaimReader")["bytecode"]) // 2 + 32 * (CLAIMS_PER_CALL + 5) <= MAX_INITCODE
    )
    assert (
        len(artifact("RequestReader")["bytecode"]) // 2 + 32 * (REQUESTS_PER_CALL + 7)
        <= MAX_INITCODE
    )
    claimed = reader.claimed(m.chain.settlement.address, m.auction_id, ids, "latest")
    assert claimed == dict.fromkeys(ids, False) and reader.calls == 1


def test_queue_pages_walk_the_same_queue(env: Env) -> None:
    m = env.month
    expected = []
    head = m.chain.queue_info().head
    rid = head
    while rid:
        (_, nxt, pending, _, _, controller, ts), _ = m.chain.vault.functions.redemption(rid).call()
        expected.append((rid, bytes.fromhex(controller[2:]), int(pending), int(ts)))
        rid = int(nxt)
    assert len(expected) >= 10
    chain = Chain(m.w3, m.deployment.vault, m.deployment.settlement)
    chain.reader.queue_per_call = 3
    walked = [
        (r.redemption_id, r.controller, r.pending_shares, r.redemption_timestamp)
        for r in chain.queue()
    ]
    assert walked == expected
    assert chain.reader.calls == -(-len(expected) // 3)
    assert [r.redemption_id for r in chain.queue(limit=5)] == [e[0] for e in expected[:5]]


def test_claimed_bitmap_matches_is_claimed(env: Env) -> None:
    m = env.month
    keeper = m.keeper(env.store())
    keeper.cfg.claim_batch = 2  # claim transactions of two leaves: a block per transaction
    from clearing.merkle import StandardMerkleTree
    from clearing.store import artifacts as art

    report = keeper.close_auction(m.auction_id)
    assert "claims" in report.done
    store = env.stores[-1]
    tree = StandardMerkleTree.load(art.get_json(store, m.auction_id, art.ALLOCATION_TREE))
    settled_at = int(art.get_json(store, m.auction_id, art.SETTLEMENT)["block"])
    leaves = [int(v[1]) for v in tree.values]
    assert len(leaves) > 4
    chain = Chain(m.w3, m.deployment.vault, m.deployment.settlement)
    chain.reader.claims_per_call = 3
    ids = [*leaves, 10**20]
    for block in (settled_at, settled_at + 1, settled_at + 2, "latest"):
        claimed = chain.claimed(m.auction_id, ids, block)
        expected = {
            rid: m.chain.settlement.functions.isClaimed(m.auction_id, rid).call(
                block_identifier=block
            )
            for rid in ids
        }
        assert claimed == expected
    assert sum(chain.claimed(m.auction_id, ids, settled_at + 1).values()) == 2  # one batch
    assert all(chain.claimed(m.auction_id, leaves).values())
