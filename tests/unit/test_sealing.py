"""HPKE sealing: the RFC 9180 vector, interop with pyhpke both ways, and every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from pyhpke import AEADId, CipherSuite, KDFId, KEMId, KEMKey, KEMKeyPair

from clearing.errors import BadKeyError, CiphertextTooShortError, DecryptionError
from clearing.sealing import (
    SUITE,
    Opener,
    bid_info,
    derive_auction_secret,
    open_sealed,
    public_key_of,
    seal,
)
from tests.conftest import AUCTION_ID, SETTLEMENT

VECTOR = json.loads((Path(__file__).parent.parent / "vectors" / "rfc9180_a2_base.json").read_text())
PYHPKE = CipherSuite.new(
    KEMId.DHKEM_X25519_HKDF_SHA256, KDFId.HKDF_SHA256, AEADId.CHACHA20_POLY1305
)


def _h(name: str) -> bytes:
    return bytes.fromhex(VECTOR[name])


def _pyhpke_private(raw: bytes) -> KEMKey:
    return KEMKey.from_pyca_cryptography_key(X25519PrivateKey.from_private_bytes(raw))


def _pyhpke_public(raw: bytes) -> KEMKey:
    return KEMKey.from_pyca_cryptography_key(X25519PublicKey.from_public_bytes(raw))


def test_vector_is_the_design_suite():
    assert (VECTOR["mode"], VECTOR["kem_id"], VECTOR["kdf_id"], VECTOR["aead_id"]) == (0, 32, 1, 3)


def test_rfc9180_vector_keys_and_first_encryption():
    assert public_key_of(_h("skRm")) == _h("pkRm")
    assert public_key_of(_h("skEm")) == _h("pkEm") == _h("enc")
    first = VECTOR["encryptions"][0]
    assert first["nonce"] == VECTOR["base_nonce"]  # sequence 0: the single-shot API's message
    ciphertext = _h("enc") + bytes.fromhex(first["ct"])
    sk = X25519PrivateKey.from_private_bytes(_h("skRm"))
    # cryptography's own (private) AAD entry point; the public API fixes AAD to empty.
    plaintext = rust_openssl.hpke._decrypt_with_aad(
        SUITE, ciphertext, sk, _h("info"), bytes.fromhex(first["aad"])
    )
    assert plaintext == bytes.fromhex(first["pt"])


def test_rfc9180_vector_with_empty_aad_through_our_opener():
    """pyhpke, given the vector's ephemeral key, reproduces enc; our Opener opens it."""
    eks = KEMKeyPair(_pyhpke_private(_h("skEm")), _pyhpke_public(_h("pkEm")))
    enc, sender = PYHPKE.create_sender_context(_pyhpke_public(_h("pkRm")), _h("info"), eks=eks)
    assert enc == _h("enc")
    first = VECTOR["encryptions"][0]
    assert sender.seal(bytes.fromhex(first["pt"]), bytes.fromhex(first["aad"])) == bytes.fromhex(
        first["ct"]
    )
    _, sender2 = PYHPKE.create_sender_context(_pyhpke_public(_h("pkRm")), _h("info"), eks=eks)
    sealed = sender2.seal(b"qev plaintext", b"")
    assert Opener(_h("skRm"), _h("info")).open(enc + sealed) == b"qev plaintext"


def test_ours_to_pyhpke_and_back(auction_secret, auction_public_key):
    info = bid_info(31337, SETTLEMENT, AUCTION_ID)
    message = b"\x07" * 320
    ours = seal(message, auction_public_key, info)
    assert len(ours) == 32 + 320 + 16
    recipient = PYHPKE.create_recipient_context(ours[:32], _pyhpke_private(auction_secret), info)
    assert recipient.open(ours[32:], b"") == message
    enc, sender = PYHPKE.create_sender_context(_pyhpke_public(auction_public_key), info)
    theirs = enc + sender.seal(message, b"")
    assert open_sealed(theirs, auction_secret, info) == message


def test_info_layout():
    info = bid_info(42161, SETTLEMENT, AUCTION_ID)
    assert info[:10] == b"qev-bid-v1"
    assert int.from_bytes(info[10:42], "big") == 42161
    assert info[42:62] == SETTLEMENT
    assert int.from_bytes(info[62:70], "big") == AUCTION_ID
    assert len(info) == 70


def test_auction_key_derivation_is_hkdf_sha256():
    from cryptography.hazmat.primitives import hashes, hmac

    master = bytes(range(32))
    prk_mac = hmac.HMAC(b"\x00" * 32, hashes.SHA256())  # RFC 5869: empty salt = 32 zero bytes
    prk_mac.update(master)
    prk = prk_mac.finalize()
    okm_mac = hmac.HMAC(prk, hashes.SHA256())
    okm_mac.update(b"qev-auction-key-v1" + AUCTION_ID.to_bytes(8, "big") + b"\x01")
    assert derive_auction_secret(master, AUCTION_ID) == okm_mac.finalize()
    assert derive_auction_secret(master, AUCTION_ID) != derive_auction_secret(
        master, AUCTION_ID + 1
    )
    with pytest.raises(BadKeyError):
        derive_auction_secret(b"short", AUCTION_ID)


@pytest.fixture
def sealed(auction_public_key):
    return seal(b"\x01" * 320, auction_public_key, bid_info(31337, SETTLEMENT, AUCTION_ID))


def test_opens_with_the_right_key_and_info(sealed, auction_secret):
    assert Opener(auction_secret, bid_info(31337, SETTLEMENT, AUCTION_ID)).open(sealed) == (
        b"\x01" * 320
    )


@pytest.mark.parametrize("length", [0, 1, 32, 47])
def test_truncated_below_enc_and_tag(sealed, auction_secret, length):
    with pytest.raises(CiphertextTooShortError):
        open_sealed(sealed[:length], auction_secret, bid_info(31337, SETTLEMENT, AUCTION_ID))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda c: c[:-1], id="truncated-tag"),
        pytest.param(lambda c: c[:100], id="truncated-body"),
        pytest.param(lambda c: c + b"\x00", id="extended"),
        pytest.param(lambda c: bytes([c[0] ^ 1]) + c[1:], id="garbled-enc"),
        pytest.param(lambda c: c[:40] + bytes([c[40] ^ 0x80]) + c[41:], id="garbled-body"),
        pytest.param(lambda c: c[:-1] + bytes([c[-1] ^ 1]), id="garbled-tag"),
        pytest.param(lambda c: bytes(len(c)), id="zeros"),
    ],
)
def test_garbled_ciphertext(sealed, auction_secret, mutate):
    with pytest.raises(DecryptionError):
        open_sealed(mutate(sealed), auction_secret, bid_info(31337, SETTLEMENT, AUCTION_ID))


@pytest.mark.parametrize(
    "info",
    [
        bid_info(1, SETTLEMENT, AUCTION_ID),  # other chain
        bid_info(31337, b"\x01" * 20, AUCTION_ID),  # other contract
        bid_info(31337, SETTLEMENT, AUCTION_ID + 2_592_000),  # other auction
    ],
)
def test_wrong_info_is_refused(sealed, auction_secret, info):
    with pytest.raises(DecryptionError):
        open_sealed(sealed, auction_secret, info)


def test_wrong_key_is_refused(sealed):
    other = derive_auction_secret(b"\x22" * 32, AUCTION_ID)
    with pytest.raises(DecryptionError):
        open_sealed(sealed, other, bid_info(31337, SETTLEMENT, AUCTION_ID))


def test_bad_key_lengths():
    with pytest.raises(BadKeyError):
        seal(b"x", b"\x01" * 31, b"")
    with pytest.raises(BadKeyError):
        Opener(b"\x01" * 33, b"")
