"""``qev verify``'s checks of the book commitment and of threshold-mode keys (PROTOCOL 8, 10).

Called from ``keeper.verify``:

- ``check_book_commitment``: the book ``commitBook`` fixed on-chain is the published book
  (root and number of envelopes);
- ``check_threshold`` (threshold mode: the key document says ``key_mode: threshold``): the
  published transcript (``/dkg/transcript``) is recomputed from its signed messages (each
  signed by its keyper), Q, the transcript hash, the group key, the auction public key and
  every public share; each released share (``/dkg/shares``, signed) is checked against its
  public share; every t of them combine to the revealed key, which is the X25519 form of
  the group secret; with an RPC, the chain recorded threshold mode with this committee, the
  transcript hash and the public key, and the revealed key.
- ``fetch_threshold_documents`` / ``read_threshold_documents``: the two extra documents,
  from the service or a ``qev demo --out`` directory.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clearing import threshold as th
from clearing.dkg import BoardState, Committee, DkgShare, board_from_document, check_signer
from clearing.eip712 import Eip712Domain
from clearing.errors import QevError
from clearing.hexcodec import from_hex, parse_address, to_hex
from clearing.sealing import public_key_of

if TYPE_CHECKING:
    from keeper.chain import Chain
    from keeper.verify import VerifyReport

ZERO = "0x" + "00" * 32
#: the threshold documents and their file names in a ``qev demo --out`` directory
THRESHOLD_FILES = {"transcript": "transcript.json", "shares": "shares.json"}
MAX_SUBSETS = 64  # t-subsets of the released shares combined (all of them for small n)


def book_commitment(chain: Chain, auction_id: int) -> tuple[bytes, int, int]:
    """``bookCommitment(T)``: (root, count, committedAt); committedAt 0 if not committed."""
    root, count, at = chain._call(chain.settlement.functions.bookCommitment(auction_id))
    return bytes(root), int(count), int(at)


def check_book_commitment(
    report: VerifyReport, chain: Chain, auction_id: int, book: dict[str, Any]
) -> None:
    """The book committed on-chain (``commitBook``) is the published book: root and count."""
    root, count, at = book_commitment(chain, auction_id)
    report.checks.append("book committed on-chain (commitBook)")
    if not at:
        report.differences.append("book committed on-chain (commitBook): not committed")
        return
    report.expect(
        "on-chain committed book root (commitBook)", to_hex(root), book["bid_book_root"] or ZERO
    )
    report.expect("on-chain committed book count (commitBook)", count, len(book["bids"]))


# --- threshold mode -------------------------------------------------------------------


def is_threshold(docs: dict[str, Any]) -> bool:
    """Whether the auction's key is a threshold key (the key document says so)."""
    key = docs.get("key") or {}
    return key.get("key_mode") == "threshold" or docs.get("transcript") is not None


def fetch_threshold_documents(
    get: Callable[[str], Any], auction_id: int, docs: dict[str, Any]
) -> None:
    """Add ``transcript`` and ``shares`` to ``docs`` for a threshold auction."""
    if is_threshold(docs):
        base = f"/v1/auctions/{auction_id}/dkg"
        docs["transcript"] = get(f"{base}/transcript")
        docs["shares"] = get(f"{base}/shares")


def read_threshold_documents(folder: Path, docs: dict[str, Any]) -> None:
    """Add the threshold documents found in ``folder`` to ``docs``."""
    for name, file in THRESHOLD_FILES.items():
        if (folder / file).exists():
            docs[name] = json.loads((folder / file).read_text())


def write_threshold_documents(folder: Path, docs: dict[str, Any]) -> None:
    """Write the threshold documents of ``docs`` into ``folder`` (``qev demo --out``)."""
    for name, file in THRESHOLD_FILES.items():
        if docs.get(name) is not None:
            (folder / file).write_text(json.dumps(docs[name], indent=2) + "\n")


def _domain(auction: dict[str, Any]) -> Eip712Domain:
    return Eip712Domain(
        auction["eip712"]["name"],
        auction["eip712"]["version"],
        int(auction["chain_id"]),
        parse_address(auction["settlement"]),
    )


def _missing(report: VerifyReport, what: str) -> None:
    report.checks.append(what)
    report.differences.append(f"{what}: missing")


def check_threshold(report: VerifyReport, docs: dict[str, Any], chain: Chain | None) -> None:
    """Every threshold-mode check (see the module docstring) into ``report``."""
    transcript, shares_doc = docs.get("transcript"), docs.get("shares")
    if transcript is None or shares_doc is None:
        _missing(report, "threshold documents (transcript, shares) published")
        return
    auction, key = docs["auction"], docs["key"]
    t = int(auction["auction_id"])
    domain = _domain(auction)
    report.expect("transcript.auction_id", int(transcript["auction_id"]), t)
    report.expect("shares.auction_id", int(shares_doc["auction_id"]), t)
    report.checks.append("every DKG message signed by its keyper")
    try:
        board = board_from_document(transcript, domain)
    except QevError as e:
        report.differences.append(f"every DKG message signed by its keyper: {e}")
        return
    try:
        outcome = board.outcome(domain.chain_id, domain.verifying_contract)
    except th.NotEnoughSharesError as e:
        report.differences.append(f"DKG qualified set: {e}")
        return
    report.expect("transcript.chain_id", transcript.get("chain_id"), domain.chain_id)
    report.expect(
        "qualified dealers (recomputed)", transcript["qualified"], sorted(outcome.qualified)
    )
    report.expect(
        "transcript hash (recomputed)",
        transcript["transcript_hash"],
        to_hex(outcome.transcript_hash),
    )
    report.expect(
        "group key (sum of C_i0 over Q)", transcript["group_key"], to_hex(outcome.group_key)
    )
    report.expect(
        "transcript public key (X25519 form)", transcript["public_key"], to_hex(outcome.public_key)
    )
    report.expect(
        "auction public key = the DKG's", auction["public_key"], to_hex(outcome.public_key)
    )
    report.expect(
        "public shares (recomputed)",
        transcript["public_shares"],
        {str(j): to_hex(p) for j, p in sorted(outcome.public_shares.items())},
    )
    valid = _check_shares(report, shares_doc, board, outcome.public_shares, domain)
    _check_combination(report, valid, board.committee.threshold, from_hex(key["private_key"], 32))
    if chain is not None:
        _check_threshold_chain(
            report, chain, t, committee=board.committee, outcome=outcome, key=key
        )


def _check_shares(
    report: VerifyReport,
    shares_doc: dict[str, Any],
    board: BoardState,
    public_shares: dict[int, bytes],
    domain: Eip712Domain,
) -> dict[int, int]:
    """Each released share: signed by its keyper and ``s_j * B == S_j``; the valid ones."""
    valid: dict[int, int] = {}
    for entry in shares_doc.get("shares") or []:
        try:
            share = DkgShare.from_json(entry)
            check_signer(share, board.committee, domain)
        except QevError as e:
            report.checks.append("released share signatures")
            report.differences.append(f"released share {entry.get('keyper')}: {e}")
            continue
        ok = th.released_share_is_valid(share.share, public_shares[share.keyper])
        report.expect(f"released share {share.keyper}: s_j * B == S_j", ok, True)
        if ok:
            valid[share.keyper] = share.share
    return valid


def _check_combination(
    report: VerifyReport, valid: dict[int, int], t: int, private_key: bytes
) -> None:
    """Every t of the valid shares (up to ``MAX_SUBSETS``) give the revealed key."""
    report.checks.append(f"at least {t} valid released shares")
    if len(valid) < t:
        report.differences.append(f"at least {t} valid released shares: {len(valid)}")
        return
    subsets = itertools.islice(itertools.combinations(sorted(valid), t), MAX_SUBSETS)
    for subset in subsets:
        k = th.x25519_private_key(th.combine({j: valid[j] for j in subset}, t))
        report.expect(
            f"shares {list(subset)} combine to the revealed key", to_hex(k), to_hex(private_key)
        )
    report.expect(
        "X25519(revealed key, 9) = the X25519 form of the group key",
        to_hex(public_key_of(private_key)),
        to_hex(th.x25519_public_key(th.base_mul(th.combine(valid, t)))),
    )


def _check_threshold_chain(
    report: VerifyReport,
    chain: Chain,
    t: int,
    *,
    committee: Committee,
    outcome: Any,
    key: dict[str, Any],
) -> None:
    from keeper.threshold_key import KEY_MODE_THRESHOLD, auction_key_mode, read_committee

    mode, committee_id = auction_key_mode(chain, t)
    report.expect("on-chain key mode", mode, KEY_MODE_THRESHOLD)
    report.expect("on-chain committee of the auction", committee_id, committee.committee_id)
    report.expect(
        "committee = the one registered on-chain", read_committee(chain, committee_id), committee
    )
    state = chain.key_state(t)
    report.expect(
        "on-chain commitment = transcript hash",
        to_hex(state.commitment),
        to_hex(outcome.transcript_hash),
    )
    report.expect(
        "on-chain public key = the DKG's", to_hex(state.public_key), to_hex(outcome.public_key)
    )
    report.expect("on-chain revealed key", to_hex(state.private_key), key["private_key"])


__all__ = [
    "THRESHOLD_FILES",
    "book_commitment",
    "check_book_commitment",
    "check_threshold",
    "fetch_threshold_documents",
    "is_threshold",
    "read_threshold_documents",
    "write_threshold_documents",
]
