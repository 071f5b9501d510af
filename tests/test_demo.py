"""`qev demo` end to end (small): verification passes and the artifacts are the published ones."""

from __future__ import annotations

import json

from clearing.merkle import StandardMerkleTree
from qev.cli import main
from qev.demo import run_demo


def test_demo_month_verifies_and_writes_artifacts(tmp_path):
    result = run_demo(holders=24, out_dir=tmp_path, quiet=True)
    assert result.verified
    s = result.summary
    assert s["key_revealed"] is True
    assert s["usdai_paid"] == s["claimed_on_chain"] > 0  # every winner was paid, to the wei
    assert s["usdai_paid"] + s["leftover_liquidity"] == s["liquidity"]
    assert s["self_checked_claims"] == 3
    # every rule-0 reason an honest intake can let through, and the marginal bid's rule
    assert set(s["excluded"]) == {
        "undecryptable",
        "malformed_plaintext",
        "envelope_mismatch",
        "signer_not_controller",
        "basis_point_out_of_range",
        "zero_shares",
        "stale_nonce",
        "not_matured",
        "no_pending_shares",
    }
    assert s["unfilled"]["below_min_fill"] == 1 and s["partial"] == 0
    names = {p.name for p in tmp_path.iterdir()}
    assert names == {
        "auction.json",
        "book.json",
        "history.json",
        "result.json",
        "key.json",
        "allocation-tree.json",
        "bid-book-tree.json",
    }
    book = json.loads((tmp_path / "book.json").read_text())
    tree = StandardMerkleTree.load(json.loads((tmp_path / "bid-book-tree.json").read_text()))
    assert "0x" + tree.root.hex() == book["bid_book_root"] == s["bid_book_root"]
    alloc = StandardMerkleTree.load(json.loads((tmp_path / "allocation-tree.json").read_text()))
    assert "0x" + alloc.root.hex() == s["allocation_root"]
    # the same directory verifies offline through the CLI
    assert main(["verify", "--dir", str(tmp_path)]) == 0


def test_demo_uniform_has_a_partially_filled_marginal_winner():
    result = run_demo(holders=24, mode="uniform", quiet=True)
    assert result.verified
    s = result.summary
    assert s["partial"] == 1 and "below_min_fill" not in s["unfilled"]
    assert s["usdai_paid"] == s["claimed_on_chain"] > 0
