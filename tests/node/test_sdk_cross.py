"""The JavaScript SDK (js/sdk) against the Python reference, both ways.

JS-sealed envelopes open in Python and pass rule 0; Python-sealed envelopes open in JS;
EIP-712 digests, controller signatures and receipt signatures agree in both directions;
claim calldata equals web3's encoding; the PROTOCOL appendix A vectors hold in JS.
"""

from __future__ import annotations

import random

import pytest
from web3 import Web3

from clearing.bidding import seal_bid
from clearing.eip712 import (
    BID_TYPEHASH,
    CANCEL_BID_TYPEHASH,
    SEALED_BID_TYPEHASH,
    Eip712Domain,
    sealed_bid_struct_hash,
)
from clearing.engine import ValidBid
from clearing.hexcodec import from_hex, to_checksum_address, to_hex
from clearing.merkle import StandardMerkleTree
from clearing.model import ALLOCATION_LEAF_TYPES, Bid, Envelope, cancel_digest
from clearing.receipts import Receipt, ReceiptKind
from clearing.sealing import bid_info, derive_auction_secret, public_key_of
from clearing.signing import Signer, recover_address
from clearing.validation import AuctionContext, RequestSnapshot, validate_envelope
from keeper.artifacts import artifact
from tests.conftest import make_key

pytestmark = pytest.mark.node

T = 1_767_225_600
SETTLEMENT = bytes.fromhex("5fbdb2315678afecb367f032d93f642f64180aa3")
SECRET = derive_auction_secret(bytes(range(32)), T)
PUBLIC = public_key_of(SECRET)
N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
DOMAINS = [
    Eip712Domain("QEVSettlement", "1", 31337, SETTLEMENT),
    Eip712Domain("QEVSettlement", "1", 42161, bytes.fromhex("00" * 19 + "aa")),
    Eip712Domain("QEVRegistry", "1.0", 1, bytes.fromhex("ff" * 20)),
]


def auction_doc(domain: Eip712Domain, auction_id: int = T, public_key: bytes = PUBLIC) -> dict:
    return {
        "auction_id": auction_id,
        "opens_at": auction_id - 2_592_000,
        "closes_at": auction_id,
        "status": "open",
        "public_key": to_hex(public_key),
        "chain_id": domain.chain_id,
        "settlement": to_checksum_address(domain.verifying_contract),
        "eip712": {"name": domain.name, "version": domain.version},
        "receipt_signer": to_checksum_address(Signer(make_key("service")).address),
    }


def bid_json(bid: Bid) -> dict:
    return {
        "auction_id": str(bid.auction_id),
        "redemption_id": str(bid.redemption_id),
        "redemption_shares": str(bid.redemption_shares),
        "basis_point": str(bid.basis_point),
        "nonce": str(bid.nonce),
    }


def random_bids(seed: int, count: int) -> list[Bid]:
    rng = random.Random(seed)
    edges = [(1, 10), (2**256 - 1, 10_000), (10**18, 250), (rng.getrandbits(100), 9_999)]
    out = [
        Bid(T, rid, shares, bp, n)
        for rid, ((shares, bp), n) in enumerate(zip(edges, [0, 1, 7, 2**256 - 1], strict=True))
    ]
    while len(out) < count:
        out.append(
            Bid(
                rng.choice([T, T + 2_592_000, 2**64 - 1]),
                rng.choice([0, 1, rng.getrandbits(256), rng.getrandbits(40)]),
                rng.getrandbits(rng.choice([1, 64, 128, 256])),
                rng.randint(0, 20_000),
                rng.choice([0, 1, rng.getrandbits(256)]),
            )
        )
    return out


def test_type_hashes_and_info_match_the_appendix(sdk):
    info = sdk.run(
        [
            {"op": "typehashes"},
            {
                "op": "info",
                "chain_id": 42161,
                "settlement": "0x" + "00" * 19 + "aa",
                "auction_id": T,
            },
        ]
    )
    assert info[0] == [
        to_hex(BID_TYPEHASH),
        to_hex(SEALED_BID_TYPEHASH),
        to_hex(CANCEL_BID_TYPEHASH),
    ]
    assert info[0][0] == "0x225932c6cfd6f469a643a10bf8ac4d21ad504a4e2bb2e05982fb3bc50697d672"
    appendix = (
        "7165762d6269642d7631"
        "000000000000000000000000000000000000000000000000000000000000a4b1"
        "00000000000000000000000000000000000000aa"
        "000000006955b900"
    )
    assert info[1] == "0x" + appendix == to_hex(bid_info(42161, bytes.fromhex("00" * 19 + "aa"), T))


@pytest.mark.parametrize("domain", DOMAINS, ids=["anvil", "arbitrum", "registry"])
def test_js_sealed_envelopes_open_in_python_and_pass_rule_0(sdk, domain):
    holders = [make_key(f"js-holder-{i}") for i in range(3)]
    bids = [
        Bid(T, 100 + i, (i + 1) * 10**18 + i, bp, nonce)
        for i, (bp, nonce) in enumerate(
            [(10, 0), (10_000, 3), (250, 0), (9_999, 2**256 - 1), (55, 1)]
        )
    ]
    ops = [
        {
            "op": "seal",
            "auction": auction_doc(domain),
            "key": to_hex(holders[i % 3]),
            "bid": bid_json(b),
        }
        for i, b in enumerate(bids)
    ]
    ctx = AuctionContext(T, domain, SECRET)
    opener = ctx.opener()
    for i, (bid, out) in enumerate(zip(bids, sdk.run(ops), strict=True)):
        signer = Signer(holders[i % 3])
        assert out["controller"] == to_checksum_address(signer.address)
        env = Envelope(
            T,
            bid.redemption_id,
            signer.address,
            from_hex(out["ciphertext"]),
            from_hex(out["signature"], 65),
        )
        assert len(env.ciphertext) == 368
        assert to_hex(env.ciphertext_hash) == out["ciphertext_hash"]
        assert recover_address(env.digest(domain), env.signature) == signer.address
        request = RequestSnapshot(bid.redemption_id, signer.address, 10**30, T - 86_400, bid.nonce)
        valid = validate_envelope(env, ctx, opener, {bid.redemption_id: request})
        assert valid == ValidBid(
            bid.redemption_id, signer.address, bid.basis_point, bid.redemption_shares
        )


def test_js_sealing_is_randomised_and_bound_to_the_auction(sdk):
    domain = DOMAINS[0]
    key = make_key("js-holder-0")
    bid = Bid(T, 7, 10**18, 100, 0)
    first, second = sdk.run(
        [{"op": "seal", "auction": auction_doc(domain), "key": to_hex(key), "bid": bid_json(bid)}]
        * 2
    )
    assert first["ciphertext"] != second["ciphertext"]  # a fresh ephemeral key each time
    signer = Signer(key)
    env = Envelope(
        T, 7, signer.address, from_hex(first["ciphertext"]), from_hex(first["signature"])
    )
    request = {7: RequestSnapshot(7, signer.address, 10**20, T, 0)}
    other_domain = Eip712Domain("QEVSettlement", "1", 31337, b"\x01" * 20)
    other = AuctionContext(T, other_domain, SECRET)
    assert validate_envelope(env, other, other.opener(), request).reason == "undecryptable"
    wrong_key = AuctionContext(T, domain, derive_auction_secret(b"\x22" * 32, T))
    assert validate_envelope(env, wrong_key, wrong_key.opener(), request).reason == "undecryptable"


def test_python_sealed_envelopes_open_in_js(sdk):
    ops, expected = [], []
    for i, domain in enumerate(DOMAINS):
        for j, drawn in enumerate(random_bids(10 + i, 4)):
            bid = Bid(
                T, drawn.redemption_id, drawn.redemption_shares, drawn.basis_point, drawn.nonce
            )
            signer = Signer(make_key(f"py-holder-{i}-{j}"))
            env = seal_bid(signer, bid, domain, PUBLIC)
            ops.append(
                {
                    "op": "open",
                    "auction": auction_doc(domain),
                    "chain_id": domain.chain_id,
                    "settlement": to_checksum_address(domain.verifying_contract),
                    "auction_id": T,
                    "private_key": to_hex(SECRET),
                    "ciphertext": to_hex(env.ciphertext),
                    "signature": to_hex(env.signature),
                }
            )
            expected.append((bid, signer.address))
    for (bid, address), out in zip(expected, sdk.run(ops), strict=True):
        assert out["bid"] == {
            "auctionId": str(bid.auction_id),
            "redemptionId": str(bid.redemption_id),
            "redemptionShares": str(bid.redemption_shares),
            "basisPoint": str(bid.basis_point),
            "nonce": str(bid.nonce),
        }
        assert out["bid_signer"] == out["envelope_signer"] == to_checksum_address(address)


def test_eip712_digests_agree(sdk):
    rng = random.Random(5)
    ops, expected = [], []
    for domain in DOMAINS:
        for bid in random_bids(rng.randint(0, 10**6), 12):
            h = rng.randbytes(32)
            ops.append(
                {
                    "op": "digests",
                    "auction": auction_doc(domain),
                    "bid": bid_json(bid),
                    "hash": to_hex(h),
                }
            )
            expected.append(
                {
                    "bid": to_hex(bid.digest(domain)),
                    "sealed": to_hex(
                        domain.digest(sealed_bid_struct_hash(bid.auction_id, bid.redemption_id, h))
                    ),
                    "cancel": to_hex(cancel_digest(domain, bid.auction_id, bid.redemption_id, h)),
                }
            )
    assert sdk.run(ops) == expected


def test_controller_signatures_agree_both_ways(sdk):
    domain = DOMAINS[1]
    rng = random.Random(9)
    keys = [make_key(f"sig-{i}") for i in range(6)]
    ops = []
    cases = []
    for key in keys:
        bid = Bid(
            T, rng.getrandbits(64), rng.getrandbits(90), rng.randint(10, 10_000), rng.getrandbits(8)
        )
        h = rng.randbytes(32)
        ops.append(
            {
                "op": "sign",
                "auction": auction_doc(domain),
                "key": to_hex(key),
                "bid": bid_json(bid),
                "hash": to_hex(h),
            }
        )
        cases.append((key, bid, h))
    js = sdk.run(ops)
    back = []
    for (key, bid, h), out in zip(cases, js, strict=True):
        signer = Signer(key)
        assert out["address"] == to_checksum_address(signer.address)
        digests = {
            "bid": bid.digest(domain),
            "sealed": domain.digest(sealed_bid_struct_hash(T, bid.redemption_id, h)),
            "cancel": cancel_digest(domain, T, bid.redemption_id, h),
        }
        for name, digest in digests.items():
            # JS -> Python: viem's signature recovers in the reference (strict: v 27/28, low s)
            assert recover_address(digest, from_hex(out[name], 65)) == signer.address
            # Python -> JS: the reference's signature recovers in the SDK
            py_sig = signer.sign_digest(digest)
            assert py_sig == from_hex(out[name], 65)  # RFC 6979: both deterministic
            back.append({"op": "recover", "digest": to_hex(digest), "signature": to_hex(py_sig)})
            # a high-s twin is refused by both, and the SDK normalises it back
            r, s, v = py_sig[:32], int.from_bytes(py_sig[32:64], "big"), py_sig[64]
            twin = r + (N - s).to_bytes(32, "big") + bytes([55 - v])
            back.append({"op": "recover", "digest": to_hex(digest), "signature": to_hex(twin)})
            back.append({"op": "normalize", "signature": to_hex(twin)})
            back.append({"op": "normalize", "signature": to_hex(py_sig[:64] + bytes([v - 27]))})
    results = sdk.run(back)
    for i in range(0, len(results), 4):
        assert results[i] == to_checksum_address(
            recover_address(from_hex(back[i]["digest"]), from_hex(back[i]["signature"]))
        )
        assert results[i + 1] == "error:RangeError"
        assert results[i + 2] == back[i]["signature"]
        assert results[i + 3] == back[i]["signature"]


def _receipt_json(r: Receipt) -> dict:
    return {
        "auction_id": r.auction_id,
        "redemption_id": str(r.redemption_id),
        "controller": to_checksum_address(r.controller),
        "ciphertext_hash": to_hex(r.ciphertext_hash),
        "sequence": r.sequence,
        "received_at": r.received_at,
        "kind": int(r.kind),
        "service_signature": to_hex(r.service_signature),
    }


def test_receipt_digests_and_signatures_agree_both_ways(sdk):
    service = Signer(b"\x01" * 32)
    appendix = Receipt(T, 42, b"\x11" * 20, b"\x22" * 32, 7, 1_766_000_000).signed_by(service)
    rng = random.Random(3)
    receipts = [appendix]
    for i in range(8):
        receipts.append(
            Receipt(
                rng.choice([T, T + 2_592_000]),  # JSON integers: below 2**53 (4.1)
                rng.getrandbits(256),
                rng.randbytes(20),
                rng.randbytes(32),
                rng.getrandbits(50),
                rng.getrandbits(32),
                ReceiptKind(i % 2),
            ).signed_by(service)
        )
    ops = []
    for r in receipts:
        expected = {
            "auctionId": str(r.auction_id),
            "redemptionId": str(r.redemption_id),
            "controller": to_checksum_address(r.controller),
            "kind": int(r.kind),
            "ciphertextHash": to_hex(r.ciphertext_hash),
        }
        ops.append(
            {
                "op": "receipt",
                "receipt": _receipt_json(r),
                "expected": expected,
                "signer": to_checksum_address(service.address),
            }
        )
        wrong_kind = {**expected, "kind": 1 - int(r.kind)}
        ops.append(
            {
                "op": "receipt",
                "receipt": _receipt_json(r),
                "expected": wrong_kind,
                "signer": to_checksum_address(service.address),
            }
        )
        other = to_checksum_address(Signer(make_key("rogue")).address)
        ops.append(
            {"op": "receipt", "receipt": _receipt_json(r), "expected": expected, "signer": other}
        )
    js_key = make_key("js-service")
    for r in receipts[1:4]:
        ops.append({"op": "sign_receipt", "key": to_hex(js_key), "receipt": _receipt_json(r)})
    out = sdk.run(ops)
    assert out[0]["digest"] == "0x28d6bf868b32fd6891c704567c05e45f3c8d39218c843a15cc1537e0f85a9788"
    assert appendix.service_signature == from_hex(
        "0x41c7a17c8194d0083e700b6a86377ed7f6659c3040cd35d25a15f1531f7f542e"
        "00a9e87fe523af61aa03521194f093e54d4e11bb073807a79d9b8ef8c3901d971c"
    )
    assert out[0]["signer"] == "0x1a642f0E3c3aF545E7AcBD38b07251B3990914F1"
    for i, r in enumerate(receipts):
        ok, wrong_kind, rogue = out[3 * i : 3 * i + 3]
        assert ok == {
            "digest": to_hex(r.digest()),
            "signer": to_checksum_address(service.address),
            "verified": "ok",
        }
        assert wrong_kind["verified"].startswith("ReceiptMismatchError: expected a kind-")
        assert rogue["verified"].startswith("ReceiptMismatchError: the receipt is signed by")
    js_signer = Signer(js_key).address
    for r, signed in zip(receipts[1:4], out[3 * len(receipts) :], strict=True):
        assert signed["digest"] == to_hex(r.digest())
        resigned = Receipt(
            r.auction_id,
            r.redemption_id,
            r.controller,
            r.ciphertext_hash,
            r.sequence,
            r.received_at,
            r.kind,
            from_hex(signed["signature"], 65),
        )
        assert resigned.signer_address() == js_signer


def test_claim_and_increment_nonce_calldata_match_web3(sdk):
    rng = random.Random(4)
    leaves = [
        (T, rid, rng.randbytes(20), rng.getrandbits(80), rng.getrandbits(60), rng.getrandbits(80))
        for rid in rng.sample(range(1, 10**6), 9)
    ]
    tree = StandardMerkleTree.of(leaves, ALLOCATION_LEAF_TYPES)
    contract = Web3().eth.contract(abi=artifact("QEVSettlement")["abi"])
    ops, expected = [], []
    for i, (a, rid, c, filled, burnt, payout) in enumerate(tree.values):
        proof = [to_hex(p) for p in tree.proof(i)]
        allocation = {
            "auction_id": a,
            "allocation_root": to_hex(tree.root),
            "leaf": {
                "auction_id": a,
                "redemption_id": str(rid),
                "controller": to_checksum_address(c),
                "shares_filled": str(filled),
                "shares_burnt": str(burnt),
                "payout": str(payout),
            },
            "proof": proof,
        }
        ops.append({"op": "claim", "allocation": allocation})
        args = [a, rid, to_checksum_address(c), filled, burnt, payout, proof]
        expected.append(contract.encode_abi("claim", args=args))
    ops.append({"op": "increment_nonce", "auction_id": T, "redemption_id": "12345"})
    out = sdk.run(ops)
    for i, want in enumerate(expected):
        assert out[i]["calldata"] == want
        assert out[i]["verified"] is True
        assert out[i]["leaf"] == to_hex(tree.leaf_hash(i))
    assert out[-1] == contract.encode_abi("incrementNonce", args=[T, 12345])


def test_human_units_and_the_payout_preview(sdk):
    shares = [
        "1",
        "0",
        "12.5",
        "0.000000000000000001",
        "1.",
        "1e18",
        "-1",
        "",
        "1.0000000000000000001",
        " 3 ",
    ]
    discounts = ["2.5", "0.1", "0.09", "100", "100.01", "0", "abc", "1.234", "50", "0.10"]
    rng = random.Random(2)
    previews = [
        (rng.getrandbits(100), rng.randint(10, 10_000), rng.choice([10**18, rng.getrandbits(62)]))
        for _ in range(20)
    ]
    out = sdk.run(
        [
            {
                "op": "units",
                "shares": shares,
                "discounts": discounts,
                "previews": [[str(x), str(b), str(p)] for x, b, p in previews],
            }
        ]
    )[0]
    assert out["shares"] == [
        str(10**18),
        "0",
        str(125 * 10**17),
        "1",
        str(10**18),
        "InputError",
        "InputError",
        "InputError",
        "InputError",
        str(3 * 10**18),
    ]
    assert out["discounts"] == [
        "250",
        "10",
        "InputError",
        "10000",
        "InputError",
        "InputError",
        "InputError",
        "InputError",
        "5000",
        "10",
    ]
    for (x, b, p), (burnt, payout) in zip(previews, out["previews"], strict=True):
        assert int(burnt) == x * b // 10_000
        assert int(payout) == (x - x * b // 10_000) * p // 10**18
