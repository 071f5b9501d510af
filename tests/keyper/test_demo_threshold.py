"""``qev demo --key-mode threshold`` end to end (small): a 3-of-5 committee with one cheating
dealer and one keyper offline at release; the published documents add the transcript and
the released shares, and verification (documents, chain, CLI on the folder) passes."""

from __future__ import annotations

import json

from qev.cli import build_parser, main
from qev.demo_threshold import run_threshold_demo


def test_threshold_demo_verifies_and_writes_the_dkg(tmp_path):
    result = run_threshold_demo(holders=24, out_dir=tmp_path, quiet=True)
    assert result.verified
    s = result.summary
    assert s["key_revealed"] is True
    assert s["usdai_paid"] == s["claimed_on_chain"] > 0
    t = s["threshold"]
    assert t["qualified"] == [1, 2, 3, 5]  # dealer 4's answer failed the Feldman check
    assert t["complaints"] == [[2, 4]] or t["complaints"] == [(2, 4)]
    assert t["shares_released"] == [1, 2, 3, 4]  # keyper 5 offline
    names = {p.name for p in tmp_path.iterdir()}
    assert {"transcript.json", "shares.json", "key.json", "book.json"} <= names
    key = json.loads((tmp_path / "key.json").read_text())
    assert key["key_mode"] == "threshold"
    transcript = json.loads((tmp_path / "transcript.json").read_text())
    assert (
        transcript["public_key"]
        == json.loads((tmp_path / "auction.json").read_text())["public_key"]
    )
    assert main(["verify", "--dir", str(tmp_path)]) == 0
    # one released share altered: the folder no longer verifies
    shares = json.loads((tmp_path / "shares.json").read_text())
    shares["shares"][0]["share"] = shares["shares"][1]["share"]
    (tmp_path / "shares.json").write_text(json.dumps(shares))
    assert main(["verify", "--dir", str(tmp_path)]) == 1


def test_demo_takes_the_key_mode():
    args = build_parser().parse_args(["demo", "--key-mode", "threshold", "--holders", "8"])
    assert args.key_mode == "threshold"
    assert build_parser().parse_args(["demo"]).key_mode == "single"
