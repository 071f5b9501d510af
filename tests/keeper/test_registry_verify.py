"""``qev verify`` for the registry target: an honest month verifies against the chain (the bids
posted are exactly the valid sealed bids in rule-2 order; burns, new ids, fees and the queue
order as the draft's rules give), and tampered documents are caught."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import pytest

from keeper.targets.registry_verify import verify_registry_documents

from .conftest import PyEvmMonth
from .month import RegistryMonth, published_registry_documents


@dataclass
class Published:
    month: RegistryMonth
    docs: dict[str, Any]


@pytest.fixture(scope="module")
def published(
    _pyevm_registry_month: PyEvmMonth, tmp_path_factory: pytest.TempPathFactory
) -> Published:
    """One closed registry month and its documents as the service publishes them (the chain
    stays at the closed state for this module's tests)."""
    m: RegistryMonth = _pyevm_registry_month.month  # type: ignore[assignment]
    _pyevm_registry_month.tester.revert_to_snapshot(_pyevm_registry_month.snapshot)
    tmp = tmp_path_factory.mktemp("registry-verify")
    store = m.open_store(tmp / "qev.db")
    m.keeper(store).close_auction(m.auction_id)
    docs = published_registry_documents(m, store, tmp)
    store.close()
    return Published(m, docs)


def differences(report: Any) -> list[str]:
    return list(report.differences)


def test_honest_registry_month_verifies_against_the_chain(published: Published) -> None:
    m, docs = published.month, published.docs
    assert docs["allocation-tree"] is None
    assert docs["result"]["target"] == "registry"
    offline = verify_registry_documents(docs)
    assert offline.ok, offline.differences
    report = verify_registry_documents(docs, m.chain)
    assert report.ok, report.differences
    checks = " | ".join(report.checks)
    for what in (
        "bids on the registry = valid sealed bids in rule-2 order",
        "reorder call 3: fee on the call's sum",
        "queue after the reorder: the moved ids first, in bid order",
        "request snapshot (registry nonces) at the published block",
        "on-chain committed book (root, count)",
        "the vault's registry",
    ):
        assert what in checks, what
    assert len(report.checks) > 60


def test_a_valid_bid_left_out_of_the_published_plan(published: Published) -> None:
    docs = copy.deepcopy(published.docs)
    dropped = docs["result"]["bids"].pop(3)
    got = differences(verify_registry_documents(docs, published.month.chain))
    assert any(d.startswith("bids to post") for d in got), got
    assert dropped["redemption_id"] in " ".join(got) or got


def test_a_bid_the_book_does_not_have_is_on_the_registry(published: Published) -> None:
    """Drop a valid envelope from the book (and rebuild its root consistently): the registry
    holds a bid that is not among the book's valid sealed bids."""
    from clearing.documents import book_tree, envelopes_of, root_of

    docs = copy.deepcopy(published.docs)
    rid = docs["result"]["bids"][2]["redemption_id"]
    docs["book"]["bids"] = [b for b in docs["book"]["bids"] if b["redemption_id"] != rid]
    root = root_of(book_tree(envelopes_of(docs["book"])))
    docs["book"]["bid_book_root"] = docs["result"]["bid_book_root"] = root
    docs["result"]["bids"] = [b for b in docs["result"]["bids"] if b["redemption_id"] != rid]
    got = differences(verify_registry_documents(docs, published.month.chain))
    assert any(f"(redemption {rid}) is not a valid sealed bid" in d for d in got), got
    assert any("committed book" in d for d in got), got


def test_an_exclusion_reason_changed(published: Published) -> None:
    docs = copy.deepcopy(published.docs)
    docs["result"]["excluded"][0]["reason"] = "stale_nonce"
    got = differences(verify_registry_documents(docs))
    assert any(d.startswith("exclusions") for d in got), got


def test_a_registry_nonce_changed_in_the_snapshot(published: Published) -> None:
    """A request's published nonce differs from the registry's: rule 0 flips, and the chain says
    otherwise."""
    docs = copy.deepcopy(published.docs)
    rid = docs["result"]["bids"][0]["redemption_id"]
    docs["result"]["requests"][rid]["nonce"] = "1"
    got = differences(verify_registry_documents(docs, published.month.chain))
    assert any(d.startswith("request snapshot") for d in got), got
    assert any(d.startswith("exclusions") for d in got), got


def test_the_published_reorder_changed(published: Published) -> None:
    docs = copy.deepcopy(published.docs)
    docs["result"]["reorder"]["moved"][1]["shares_burnt"] = "1"
    docs["result"]["reorder"]["fee_shares"] = "0"
    got = differences(verify_registry_documents(docs, published.month.chain))
    assert any(d.startswith("published reorder") for d in got), got
    assert any(d.startswith("published fee") for d in got), got


def test_documents_of_another_domain(published: Published) -> None:
    """An auction document naming the settlement contract as the verifying contract: every
    signature and the rule-0 re-run disagree."""
    docs = copy.deepcopy(published.docs)
    docs["auction"]["settlement"] = published.month.deployment.settlement
    got = differences(verify_registry_documents(docs))
    assert any("result.registry" in d for d in got), got
    assert any("SealedBid signature" in d for d in got), got


def test_verify_documents_dispatches_on_the_target(published: Published, tmp_path: Any) -> None:
    """``qev verify``'s entry point reads the ``--dir`` layout and checks a registry result by
    the registry's rules (the anvil test runs the CLI with an RPC)."""
    import json

    from keeper.verify import DOCUMENT_FILES, verify_documents

    from .month import write_documents

    folder = write_documents(tmp_path / "published", published.docs)
    docs = {
        k: json.loads((folder / f).read_text()) if (folder / f).exists() else None
        for k, f in DOCUMENT_FILES.items()
    }
    report = verify_documents(docs, published.month.chain)
    assert report.ok, report.differences
    assert "bids on the registry = valid sealed bids in rule-2 order" in report.checks
