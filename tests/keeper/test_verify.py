"""``qev verify``: an honest month verifies against the chain; every tampering is caught with
the specific difference it makes. The documents are fetched from the real service app (in
process, no socket) after the keeper's close on py-evm."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from clearing.hexcodec import to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES
from keeper.verify import VerifyReport, verify_documents
from qev.cli import main

from .conftest import PyEvmMonth
from .month import STEPS, Month, published_documents, write_documents


@dataclass
class Published:
    month: Month
    docs: dict[str, Any]

    def tampered(self) -> dict[str, Any]:
        return copy.deepcopy(self.docs)


@pytest.fixture(scope="module")
def published(
    _pyevm_month: PyEvmMonth, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Published]:
    """One closed month and its documents as the service publishes them."""
    m = _pyevm_month.month
    _pyevm_month.tester.revert_to_snapshot(_pyevm_month.snapshot)
    tmp = tmp_path_factory.mktemp("verify")
    store = m.open_store(tmp / "qev.db")
    assert m.keeper(store).close_auction(m.auction_id).done == STEPS
    docs = published_documents(m, store, tmp)
    yield Published(m, docs)
    store.close()


def differences(report: VerifyReport) -> list[str]:
    """The names of the checks that failed (the text before the colon)."""
    return [d.split(":", 1)[0] for d in report.differences]


def winner(docs: dict[str, Any], rank: int = 0) -> str:
    """The redemption id (str) of the winner at ``rank``."""
    return next(r for r, o in docs["result"]["outcomes"].items() if o["rank"] == rank)


def test_honest_month_verifies_against_the_chain(published: Published) -> None:
    m, docs = published.month, published.docs
    report = verify_documents(docs, m.chain)
    assert report.ok, report.differences
    assert report.auction_id == m.auction_id
    # every outcome, both trees, every on-chain root and total, and the snapshot were checked
    assert len(report.checks) >= 25 + len(docs["result"]["outcomes"])
    for check in (
        "book root (rebuilt from envelopes)",
        "allocation root (re-cleared)",
        "allocation tree dump root",
        "on-chain key commitment",
        "on-chain allocation root",
        "on-chain bid-book root",
        "on-chain total_payout",
        "request snapshot at the published block",
        "share price at the snapshot block",
    ):
        assert check in report.checks
    settled = m.chain.settled(m.auction_id)
    assert docs["result"]["allocation_root"] == to_hex(settled.allocation_root)
    assert docs["book"]["bid_book_root"] == to_hex(settled.bid_book_root)
    assert docs["key"]["private_key"] == to_hex(m.secret)
    assert docs["auction"]["public_key"] == docs["key"]["public_key"]


def test_book_with_a_bid_dropped(published: Published) -> None:
    docs = published.tampered()
    rid = winner(docs)
    docs["book"]["bids"] = [b for b in docs["book"]["bids"] if b["redemption_id"] != rid]
    got = differences(verify_documents(docs))
    assert got[:2] == ["book root (rebuilt from envelopes)", "result.bid_book_root"]
    # the top winner is gone: the others move up, the totals and the allocation change
    assert "result.total_shares" in got
    assert "result.total_burnt" in got
    assert "allocation root (re-cleared)" in got


def test_book_with_a_ciphertext_changed(published: Published) -> None:
    docs = published.tampered()
    rid = winner(docs)
    bid = next(b for b in docs["book"]["bids"] if b["redemption_id"] == rid)
    ct = bytearray.fromhex(bid["ciphertext"][2:])
    ct[40] ^= 0x01
    bid["ciphertext"] = "0x" + ct.hex()
    got = differences(verify_documents(docs))
    assert got[:4] == [
        "book root (rebuilt from envelopes)",
        "result.bid_book_root",
        f"SealedBid signature of redemption {rid}",  # it signs the ciphertext's hash
        "exclusions (redemption, reason)",  # the changed envelope no longer opens
    ]
    report = verify_documents(docs)
    assert f"({int(rid)}, 'undecryptable')" in report.differences[3]


def test_book_consistently_rebuilt_still_differs_from_the_result_and_the_chain(
    published: Published,
) -> None:
    """A forger who drops a bid and also rewrites the book's own root is still caught."""
    from clearing.documents import book_document, envelopes_of

    docs = published.tampered()
    keep = [b for b in docs["book"]["bids"] if b["redemption_id"] != winner(docs, 1)]
    docs["book"]["bids"] = keep
    envelopes = envelopes_of(docs["book"])
    rebuilt = book_document(
        published.month.auction_id,
        envelopes,
        [b["sequence"] for b in keep],
        [b["received_at"] for b in keep],
    )
    docs["book"] = rebuilt
    got = differences(verify_documents(docs, published.month.chain))
    assert "book root (rebuilt from envelopes)" not in got
    assert "result.bid_book_root" in got
    assert "on-chain bid-book root" in got


def test_another_key(published: Published) -> None:
    from clearing.sealing import derive_auction_secret

    docs = published.tampered()
    other = derive_auction_secret(b"\x33" * 32, published.month.auction_id)
    docs["key"]["private_key"] = to_hex(other)
    report = verify_documents(docs, published.month.chain)
    got = differences(report)
    assert got[0] == "public key = X25519(revealed key)"
    assert "exclusions (redemption, reason)" in got  # nothing opens with it
    assert "on-chain key commitment" in got
    assert "on-chain public key" in got
    excluded = report.differences[got.index("exclusions (redemption, reason)")]
    recomputed = excluded.split("recomputed", 1)[1]
    assert recomputed.count("'undecryptable'") == len(docs["book"]["bids"]) == 15


def test_result_with_one_payout_changed(published: Published) -> None:
    docs = published.tampered()
    rid = winner(docs, 2)
    o = docs["result"]["outcomes"][rid]
    o["payout"] = str(int(o["payout"]) + 1)  # one wei
    report = verify_documents(docs, published.month.chain)
    assert differences(report) == [f"outcome of redemption {rid}"]
    assert str(int(o["payout"]) - 1) in report.differences[0]


def test_result_with_an_exclusion_reason_changed(published: Published) -> None:
    docs = published.tampered()
    e = next(x for x in docs["result"]["excluded"] if x["reason"] == "stale_nonce")
    e["reason"] = "not_matured"
    assert differences(verify_documents(docs, published.month.chain)) == [
        "exclusions (redemption, reason)"
    ]


def test_result_with_total_payout_changed(published: Published) -> None:
    docs = published.tampered()
    docs["result"]["total_payout"] = str(int(docs["result"]["total_payout"]) - 1)
    assert differences(verify_documents(docs)) == ["result.total_payout"]
    assert differences(verify_documents(docs, published.month.chain)) == [
        "result.total_payout",
        "on-chain total_payout",
    ]


def test_result_with_allocation_root_changed(published: Published) -> None:
    docs = published.tampered()
    docs["result"]["allocation_root"] = "0x" + "ab" * 32
    assert differences(verify_documents(docs, published.month.chain)) == [
        "allocation root (re-cleared)"
    ]


def test_result_with_a_snapshot_request_inflated(published: Published) -> None:
    """Inflating a request's pending shares in the published snapshot is caught on-chain."""
    docs = published.tampered()
    rid = winner(docs, 5)  # the marginal winner
    req = docs["result"]["requests"][rid]
    req["pending_shares"] = str(int(req["pending_shares"]) + 10**18)
    assert verify_documents(docs).ok  # self-consistent: the size was not the binding limit
    assert differences(verify_documents(docs, published.month.chain)) == [
        "request snapshot at the published block"
    ]


def test_result_with_the_price_changed(published: Published) -> None:
    docs = published.tampered()
    docs["result"]["price"] = str(int(docs["result"]["price"]) + 1)
    got = differences(verify_documents(docs, published.month.chain))
    assert "share price at the snapshot block" in got
    assert "allocation root (re-cleared)" in got


def test_allocation_tree_rebuilt_with_a_changed_payout(published: Published) -> None:
    docs = published.tampered()
    tree = StandardMerkleTree.load(docs["allocation-tree"])
    values = [list(v) for v in tree.values]
    values[0][5] += 1
    docs["allocation-tree"] = StandardMerkleTree.of(values, ALLOCATION_LEAF_TYPES).dump()
    assert differences(verify_documents(docs)) == ["allocation tree dump root"]


def test_allocation_tree_with_two_values_swapped(published: Published) -> None:
    docs = published.tampered()
    entries = docs["allocation-tree"]["values"]
    entries[0]["value"], entries[1]["value"] = entries[1]["value"], entries[0]["value"]
    got = differences(verify_documents(docs))
    assert got == ["allocation tree dump"]


def test_result_with_an_outcome_invented(published: Published) -> None:
    docs = published.tampered()
    rid = docs["result"]["excluded"][0]["redemption_id"]
    docs["result"]["outcomes"][rid] = dict(docs["result"]["outcomes"][winner(docs)])
    assert differences(verify_documents(docs)) == ["outcomes (redemption ids)"]


def test_cli_verify_dir(
    published: Published, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    m = published.month
    honest = write_documents(tmp_path / "honest", published.docs)
    assert main(["verify", "--dir", str(honest)]) == 0
    out = capsys.readouterr().out
    assert f"auction {m.auction_id}:" in out and "verified" in out and "DIFFERENT" not in out

    docs = published.tampered()
    docs["result"]["total_payout"] = str(int(docs["result"]["total_payout"]) + 7)
    bad = write_documents(tmp_path / "tampered", docs)
    assert main(["verify", "--dir", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "DIFFERENT  result.total_payout" in out
    assert "FAILED" in out

    docs = published.tampered()
    docs["book"]["bids"].pop()
    assert main(["verify", "--dir", str(write_documents(tmp_path / "book", docs))]) == 1
    assert "DIFFERENT  book root (rebuilt from envelopes)" in capsys.readouterr().out

    docs = published.tampered()
    docs["key"]["private_key"] = "0x" + "11" * 32
    assert main(["verify", "--dir", str(write_documents(tmp_path / "key", docs))]) == 1
    assert "DIFFERENT  public key = X25519(revealed key)" in capsys.readouterr().out


# --- rev 2: the snapshot is tied to the chain, every signature is checked ----------------


def test_snapshot_one_block_later(published: Published) -> None:
    """Finding 3: a later snapshot (where an on-chain cancel already counts) is refused."""
    m = published.month
    docs = published.tampered()
    snap = docs["result"]["snapshot"]
    later = snap["block"] + 1
    _, block_hash, timestamp = m.chain.block_info(later)
    docs["result"]["snapshot"] = {
        "block": later,
        "block_hash": to_hex(block_hash),
        "timestamp": timestamp,
    }
    got = differences(verify_documents(docs, m.chain))
    assert "snapshot block (first block >= T, or the last retry)" in got
    assert "snapshot block hash" not in got  # the forger kept block and hash consistent


def test_snapshot_block_hash_forged(published: Published) -> None:
    docs = published.tampered()
    docs["result"]["snapshot"]["block_hash"] = "0x" + "12" * 32
    assert differences(verify_documents(docs, published.month.chain)) == ["snapshot block hash"]


def test_envelope_dropped_is_caught_on_chain_even_with_receipts_intact(
    published: Published,
) -> None:
    docs = published.tampered()
    dropped = docs["book"]["bids"].pop(0)
    got = differences(verify_documents(docs, published.month.chain))
    assert "book root (rebuilt from envelopes)" in got
    assert "on-chain bid-book root" in got
    assert not any(dropped["ciphertext_hash"] in d for d in got)


def test_receipt_signed_by_another_key(published: Published) -> None:
    from clearing.documents import entry_receipt
    from clearing.signing import Signer
    from tests.conftest import make_key

    docs = published.tampered()
    entry = docs["book"]["bids"][3]
    forged = entry_receipt(published.month.auction_id, entry).signed_by(
        Signer(make_key("not-the-service"))
    )
    entry["service_signature"] = to_hex(forged.service_signature)
    rid = entry["redemption_id"]
    assert differences(verify_documents(docs)) == [f"receipt of redemption {rid}"]


def test_receipt_signer_not_the_one_on_chain(published: Published) -> None:
    """A service that publishes its own signer everywhere is caught by receiptSigner()."""
    from clearing.documents import signed_book
    from clearing.hexcodec import to_checksum_address
    from clearing.signing import Signer
    from tests.conftest import make_key

    docs = published.tampered()
    other = Signer(make_key("rogue-service"))
    docs["book"] = signed_book({**docs["book"], "bids": docs["book"]["bids"]}, other)
    docs["auction"]["receipt_signer"] = to_checksum_address(other.address)
    docs["history"]["receipt_signer"] = docs["auction"]["receipt_signer"]
    for e in docs["history"]["envelopes"]:  # re-signed, so only the chain can tell
        from clearing.documents import entry_receipt

        e["service_signature"] = to_hex(
            entry_receipt(published.month.auction_id, e).signed_by(other).service_signature
        )
        if e["cancel"] is not None:
            e["cancel"]["service_signature"] = "0x" + "00" * 65
    got = differences(verify_documents(docs, published.month.chain))
    assert "receipt signer (on-chain receiptSigner())" in got
    assert not any(d.startswith("receipt of redemption") for d in got)


def test_zeroed_sealed_bid_signature(published: Published) -> None:
    """Finding 3: the book's SealedBid signatures are checked (zeroed ones passed before)."""
    docs = published.tampered()
    entry = docs["book"]["bids"][2]
    entry["signature"] = "0x" + "00" * 65
    rid = entry["redemption_id"]
    got = differences(verify_documents(docs))
    assert got == [f"SealedBid signature of redemption {rid}"]


def test_book_signatures_checked_on_worker_processes_give_the_same_differences(
    published: Published, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The book's signers are recovered in forked workers (chunks of a small book here):
    the same tampered entries are caught as in one process."""
    import keeper.verify
    from clearing.parallel import map_ranges

    docs = published.tampered()
    bids = docs["book"]["bids"]
    bids[0]["signature"] = "0x" + "00" * 65
    bids[-1]["service_signature"] = bids[-2]["service_signature"]
    expected = [
        f"SealedBid signature of redemption {bids[0]['redemption_id']}",
        f"receipt of redemption {bids[-1]['redemption_id']}",
    ]
    assert differences(verify_documents(docs)) == expected
    forked: list[int] = []

    def on_workers(fn: Any, n: int, shared: dict[str, Any]) -> list[Any]:
        forked.append(n)
        return map_ranges(fn, n, shared, workers=2, min_parallel=1)

    monkeypatch.setattr(keeper.verify, "map_ranges", on_workers)
    assert differences(verify_documents(docs)) == expected
    assert forked == [len(bids)]


def test_history_is_checked(published: Published) -> None:
    docs = published.tampered()
    history = docs["history"]["envelopes"]
    kinds = {e["status"] for e in history}
    assert kinds == {"superseded", "cancelled"}  # the month has both
    cancelled = next(e for e in history if e["status"] == "cancelled")
    cancelled["cancel"]["signature"] = "0x" + "00" * 65
    got = differences(verify_documents(docs))
    assert got == [f"history envelope {cancelled['ciphertext_hash']}"]
    docs = published.tampered()
    docs["history"] = None
    assert differences(verify_documents(docs)) == ["book history published"]
