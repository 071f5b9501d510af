"""`qev` command: version, help, and the built-in example's published roots re-derived."""

from __future__ import annotations

import json

from clearing.engine import ClearingParams, clear
from clearing.hexcodec import to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES, BID_BOOK_LEAF_TYPES
from clearing.validation import AuctionContext, validate_book
from qev import __version__
from qev.cli import main
from qev.example import AUCTION_ID, PRICE, build_example, close_example


def test_version_and_help(capsys):
    assert main(["version"]) == 0
    assert capsys.readouterr().out.strip() == f"qev {__version__}"
    assert main([]) == 0
    assert "example" in capsys.readouterr().out


def test_example_prints_json(capsys):
    assert main(["example", "--holders", "20", "--json", "--mode", "uniform"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mode"] == "uniform" and out["live_envelopes"] == 20
    assert int(out["total_payout"]) + int(out["leftover_liquidity"]) == int(out["liquidity"])


def test_example_roots_and_totals_rederive_from_its_inputs():
    ex = build_example(20)  # sealing is randomised (HPKE), so re-derive from this very book
    result, _, out = close_example(ex)
    book = StandardMerkleTree.of([e.book_leaf() for e in ex.envelopes], BID_BOOK_LEAF_TYPES)
    assert out["bid_book_root"] == to_hex(book.root)
    valid, excluded = validate_book(
        ex.envelopes, AuctionContext(AUCTION_ID, ex.domain, ex.secret), ex.requests
    )
    assert {e.reason.value for e in excluded} == {"undecryptable", "stale_nonce", "not_matured"}
    liquidity = int(out["liquidity"])
    again = clear(AUCTION_ID, valid, ClearingParams(PRICE, liquidity))
    tree = StandardMerkleTree.of(again.leaf_values(), ALLOCATION_LEAF_TYPES)
    assert out["allocation_root"] == to_hex(tree.root)
    assert again.filled == result.filled and again.payout == result.payout
    assert int(out["total_payout"]) == sum(again.payout) <= liquidity
    assert out["winners"] == again.winners > 0


def test_example_refuses_zero_holders(capsys):
    assert main(["example", "--holders", "0"]) == 2
