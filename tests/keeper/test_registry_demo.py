"""``qev demo --target registry`` end to end (small): the keeper drives the draft's registry,
the verification passes, and the written directory verifies offline through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

from qev.cli import main
from qev.demo import run_demo


def test_registry_demo_verifies_and_writes_the_documents(tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_demo(holders=24, out_dir=out, quiet=True, target="registry")
    assert result.verified
    s = result.summary
    assert s["target"] == "registry" and s["key_revealed"] is True
    assert s["posted"] == s["reordered"] == s["valid_bids"] > 0
    assert len(s["post_batches"]) >= 1 and len(s["reorder_batches"]) >= 1
    assert s["new_requests"] > 0 and s["shares_burnt"] > 0
    assert 0 < s["fee_shares"] <= s["shares_burnt"] // 100  # 1% of each call's sum
    assert set(s["excluded"]) >= {
        "signer_not_controller",
        "basis_point_out_of_range",
        "zero_shares",
        "stale_nonce",
        "not_matured",
        "no_pending_shares",
    }
    names = {p.name for p in out.iterdir()}
    assert names == {
        "auction.json",
        "book.json",
        "history.json",
        "result.json",
        "key.json",
        "bid-book-tree.json",
    }
    published = json.loads((out / "result.json").read_text())
    assert published["target"] == "registry"
    assert len(published["bids"]) == s["valid_bids"]
    # the same directory verifies offline through the CLI (documents, signatures, rule 0, plan)
    assert main(["verify", "--dir", str(out)]) == 0


def test_cli_demo_takes_a_target() -> None:
    import argparse

    from qev.commands.demo import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    args = parser.parse_args(["demo", "--target", "registry", "--holders", "30"])
    assert (args.target, args.holders) == ("registry", 30)
    assert parser.parse_args(["demo"]).target == "merkle"
