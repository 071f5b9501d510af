"""Keeper integrity on py-evm (DESIGN 3 and 7, rev 2): the key is checked before anything,
the book is frozen only once both clocks reached T, and a result the chain no longer allows
is abandoned and re-cleared instead of blocking the auction forever."""

from __future__ import annotations

from pathlib import Path

import pytest

from clearing.hexcodec import to_hex
from clearing.keyfiles import KeyFileError, create_key, read_key
from keeper.deploy import transact
from keeper.jobs import KeeperStateError
from keeper.verify import verify_documents

from .conftest import Env
from .crash import Crash, die_before
from .month import BOOK, KEY, RESULT, STEPS, artifact, published_documents


def _nonces(env: Env) -> tuple[int, int]:
    m = env.month
    get = m.w3.eth.get_transaction_count
    return get(m.urgent_account.address), get(m.house_account.address)


def test_wrong_master_secret_stops_before_anything_is_frozen_or_sent(env: Env) -> None:
    """Finding 2: a keeper with another master secret settled an empty auction."""
    m = env.month
    store = env.store()
    keeper = m.keeper(store)
    keeper.cfg.master_secret = b"\x42" * 32
    before = _nonces(env)
    with pytest.raises(KeeperStateError, match="does not give the key committed on-chain"):
        keeper.close_auction(m.auction_id)
    assert store.frozen(m.auction_id) is None
    assert artifact(store, m.auction_id, BOOK) is None
    assert not m.chain.is_settled(m.auction_id)
    assert _nonces(env) == before  # no transaction from either lane
    # the right secret then closes the month normally
    assert m.keeper(store).close_auction(m.auction_id).done == STEPS


def test_a_missing_master_secret_file_is_an_error_and_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "master.key"
    with pytest.raises(KeyFileError, match="does not exist"):
        read_key(path, "master secret")
    assert not path.exists()
    create_key(path, "master secret")
    assert path.stat().st_mode & 0o777 == 0o600
    assert len(read_key(path)) == 32
    with pytest.raises(KeyFileError, match="already exists"):
        create_key(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        read_key(path)


def test_freeze_waits_for_the_service_clock(env: Env) -> None:
    """DESIGN 2: chain time past T is not enough while the service still takes bids."""
    m = env.month
    store = env.store()
    keeper = m.keeper(store)
    keeper.service_clock = lambda: m.auction_id - 1
    with pytest.raises(KeeperStateError, match="service clock"):
        keeper.close_auction(m.auction_id)
    assert store.frozen(m.auction_id) is None
    keeper.service_clock = lambda: m.auction_id
    assert keeper.close_auction(m.auction_id).done == STEPS
    frozen = store.frozen(m.auction_id)
    assert frozen is not None and frozen.frozen_at == m.auction_id


def test_a_result_that_can_no_longer_settle_is_abandoned_and_recleared(
    env: Env, tmp_path: Path
) -> None:
    """Finding 6: after a NAV cut every tick failed with PayoutExceedsValue, forever."""
    m = env.month
    store = env.store()
    first = m.keeper(store)
    die_before("_settle")(first)
    with pytest.raises(Crash):
        first.close_auction(m.auction_id)
    cleared = artifact(store, m.auction_id, RESULT)
    assert cleared["abandoned"] == [] and int(cleared["total_payout"]) > 0
    # the NAV falls 20% before the keeper comes back: the cleared payouts are now too high
    vault = m.chain.vault
    external = int(vault.functions.externalAssets().call())
    transact(m.w3, vault.functions.setExternalAssets(external * 80 // 100), m.admin)
    report = m.keeper(store).close_auction(m.auction_id)
    assert report.done == ["settle", "claims", "service", "reveal"]
    result = artifact(store, m.auction_id, RESULT)
    [record] = result["abandoned"]
    assert record["snapshot_block"] == cleared["snapshot"]["block"]
    assert record["allocation_root"] == cleared["allocation_root"]
    assert "PayoutExceedsValue" in record["error"]
    assert result["snapshot"]["block"] == record["retry_block"] > record["snapshot_block"]
    assert int(result["price"]) < int(cleared["price"])
    settled = m.chain.settled(m.auction_id)
    assert to_hex(settled.allocation_root) == result["allocation_root"]
    assert to_hex(settled.allocation_root) != cleared["allocation_root"]
    assert str(settled.total_payout) == result["total_payout"]
    assert m.chain.key_state(m.auction_id).revealed
    assert artifact(store, m.auction_id, KEY) is not None

    # an outsider accepts the later snapshot only through the abandoned record ...
    docs = published_documents(m, store, tmp_path)
    report_ok = verify_documents(docs, m.chain)
    assert report_ok.ok, report_ok.differences
    assert f"abandoned[0] re-simulated at block {record['retry_block']}" in report_ok.checks
    # ... whose settle must really revert at its retry block
    forged = dict(docs)
    forged["result"] = {
        **docs["result"],
        "abandoned": [{**record, "retry_block": record["snapshot_block"]}],
    }
    got = [d.split(":", 1)[0] for d in verify_documents(forged, m.chain).differences]
    assert "abandoned[0]" in got
    # and without the record, the later snapshot is refused
    hidden = {**docs, "result": {**docs["result"], "abandoned": []}}
    got = [d.split(":", 1)[0] for d in verify_documents(hidden, m.chain).differences]
    assert got == ["snapshot block (first block >= T, or the last retry)"]
