"""The JavaScript SDK's client (js/sdk ``QevClient``) against a real service, run in Node.

Bid (201), identical resubmission (200, the stored receipt), replacement, the replayed old
envelope refused ``stale_envelope``, cancel (kind-1 receipt), a second cancel refused; a key
that is not the chain's refused before sealing, receipts from another signer refused, the
service down reported as unreachable. What the SDK sent opens with the auction key and passes
rule 0 in Python.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from clearing.engine import ValidBid
from clearing.hexcodec import from_hex, to_checksum_address, to_hex
from clearing.model import Envelope
from clearing.sealing import derive_auction_secret
from clearing.validation import AuctionContext, RequestSnapshot, validate_envelope
from tests.integration.conftest import AUCTION
from tests.node.sdk_support import bundle, node
from tests.web.conftest import E18

pytestmark = pytest.mark.node


def test_sdk_client_against_the_service(web_app, tmp_path: Path):
    svc = web_app()
    doc = httpx.get(f"{svc.url}/v1/auctions/current").json()
    script = bundle(Path(__file__).with_name("sdk_service_driver.ts"), tmp_path / "driver.mjs")
    payload = {
        "url": svc.url,
        "key": to_hex(svc.holder_key),
        "redemption_id": "7",
        "chain_id": doc["chain_id"],
        "onchain_public_key": doc["public_key"],
        "receipt_signer": doc["receipt_signer"],
        "nonce": "0",
    }
    proc = subprocess.run(
        [node(), str(script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["first"]["created"] is True
    assert out["identical"] == {"created": False, "same": True}
    assert out["second"]["created"] is True
    assert out["second"]["receipt"]["sequence"] > out["first"]["receipt"]["sequence"]
    assert out["replayed"] == "problem:409:stale_envelope"
    assert out["status_live"] == "live"
    assert out["cancel"]["kind"] == 1
    assert out["cancel"]["ciphertext_hash"] == out["second"]["receipt"]["ciphertext_hash"]
    assert out["status_cancelled"] == "cancelled"
    assert out["cancel_again"] == "problem:404:not_found"
    assert out["wrong_key"] == "AuctionKeyMismatchError"
    assert out["wrong_signer"] == "ReceiptMismatchError"
    assert out["pinned_rogue"] == "ReceiptMismatchError"
    assert out["unreachable"] == "ServiceUnreachableError"

    # what the SDK sent is a valid sealed bid for the reference implementation
    master = svc.master_key_file.read_text().strip()
    secret = derive_auction_secret(bytes.fromhex(master), AUCTION)
    ctx = AuctionContext(AUCTION, svc.app.state.service.d.domain, secret)
    for name, shares, bp in (("first", 5 * E18, 250), ("second", 6 * E18, 300)):
        env = Envelope(
            AUCTION,
            7,
            svc.holder.address,
            from_hex(out[name]["ciphertext"]),
            from_hex(out[name]["signature"], 65),
        )
        assert to_checksum_address(svc.holder.address) == out[name]["receipt"]["controller"]
        request = {7: RequestSnapshot(7, svc.holder.address, 100 * E18, AUCTION - 86_400, 0)}
        valid = validate_envelope(env, ctx, ctx.opener(), request)
        assert valid == ValidBid(7, svc.holder.address, bp, shares)
