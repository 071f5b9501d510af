"""commitBook in the keeper's close (PROTOCOL 7.4, both key modes; here the single mode on the
keeper tests' month): the book goes on-chain after the freeze and before any envelope is
opened, a restart does not send it twice, another book already on-chain is fatal."""

from __future__ import annotations

from typing import Any

import pytest

import keeper.jobs as jobs
from clearing.hexcodec import to_hex
from keeper.deploy import transact
from keeper.jobs import KeeperStateError
from keeper.threshold_key import book_commitment
from keeper.verify import verify_documents
from tests.keeper.conftest import Env, _pyevm_month, env, network_blocked  # noqa: F401
from tests.keeper.crash import Crash, die_after_tx
from tests.keeper.month import BOOK, RESULT, STEPS, artifact, published_documents


def _nonces(e: Env) -> tuple[int, int]:
    m = e.month
    get = m.w3.eth.get_transaction_count
    return get(m.urgent_account.address), get(m.house_account.address)


def test_the_book_is_committed_before_any_envelope_is_opened(
    env: Env,  # noqa: F811
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    m = env.month
    store = env.store()
    keeper = m.keeper(store)
    seen: list[tuple[str, bool | None]] = []
    opened = jobs.validate_book_parallel  # where the close opens (decrypts) the envelopes
    snapshot = keeper.chain.snapshot

    def spy_open(*args: Any, **kwargs: Any) -> Any:
        seen.append(("open", book_commitment(m.chain, m.auction_id).committed))
        return opened(*args, **kwargs)

    def spy_snapshot(*args: Any, **kwargs: Any) -> Any:  # public reads: may come before
        seen.append(("snapshot", None))
        return snapshot(*args, **kwargs)

    monkeypatch.setattr(jobs, "validate_book_parallel", spy_open)
    keeper.chain.snapshot = spy_snapshot  # type: ignore[method-assign]
    before = _nonces(env)
    report = keeper.close_auction(m.auction_id)
    assert report.done == STEPS
    assert seen == [("snapshot", None), ("open", True)]  # opened only once committed
    committed = book_commitment(m.chain, m.auction_id)
    book = artifact(store, m.auction_id, BOOK)
    assert to_hex(committed.root) == book["bid_book_root"]
    assert committed.count == len(book["bids"])
    # commitBook went from the urgent lane: commitBook, settle, reveal
    assert _nonces(env) == (before[0] + 3, before[1] + 2)
    (event,) = m.chain.settlement.events.BookCommitted().get_logs(from_block=0)
    (settled,) = m.settled_events()
    assert event["blockNumber"] < settled["blockNumber"]
    # a verifier checks the committed book against the published one
    docs = published_documents(m, store, tmp_path)
    report_ok = verify_documents(docs, m.chain)
    assert report_ok.ok, report_ok.differences
    assert "on-chain committed book root (commitBook)" in report_ok.checks
    forged = {**docs, "book": {**docs["book"], "bids": docs["book"]["bids"][:-1]}}
    got = verify_documents(forged, m.chain).differences
    assert any(d.startswith("on-chain committed book count (commitBook)") for d in got)


def test_killed_after_commit_book_is_mined_restarts_without_a_second(env: Env) -> None:  # noqa: F811
    m = env.month
    first = m.keeper(env.store())
    die_after_tx("urgent", "commitBook")(first)
    before = _nonces(env)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    assert book_commitment(m.chain, m.auction_id).committed
    assert artifact(env.store(), m.auction_id, RESULT) is None  # nothing was opened
    report = m.keeper(env.store()).close_auction(m.auction_id)
    # the book is stored while it is opened: the restart re-derives it from the frozen store
    # (the same root, so commitBook is not sent again)
    assert report.done == ["freeze", "clear", "settle", "claims", "service", "reveal"]
    assert report.skipped == []
    assert _nonces(env) == (before[0] + 3, before[1] + 2)  # one commitBook in all
    assert len(m.chain.settlement.events.BookCommitted().get_logs(from_block=0)) == 1


def test_another_book_on_chain_is_fatal_and_nothing_is_sent(env: Env) -> None:  # noqa: F811
    m = env.month
    other = b"\x77" * 32
    fn = m.chain.settlement.functions.commitBook(m.auction_id, other, 3)
    transact(m.w3, fn, m.urgent_account.address)
    store = env.store()
    before = _nonces(env)
    with pytest.raises(KeeperStateError, match="differs from the book committed on-chain"):
        m.keeper(store).close_auction(m.auction_id)
    assert _nonces(env) == before
    assert artifact(store, m.auction_id, RESULT) is None
    assert not m.chain.is_settled(m.auction_id)
    with pytest.raises(KeeperStateError):  # and on every later tick
        m.keeper(env.store()).close_auction(m.auction_id)
