"""``qev bid``: a holder's sealed bid: submit, cancel, status, proof, claim (docs/HOLDERS.md).

Every subcommand pins the service to the chain (receipt signer, auction key, chain id and
settlement read on-chain: a chain is required), writes what it does to the local journal
(``qev.journal``) and prints human units (``--json``: every amount in wei as well).
``submit`` checks the bid against the request on-chain and reads the nonce there before
anything is sealed or sent. Errors are one line (``qev.cli``): usage and key files exit 2,
the RPC 3, the service 4, a bid or state the command refuses 5.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from clearing.config import ChainSettings, ConfigError
from clearing.errors import ChainReadError, QevError
from qev.commands.common import settings_of
from qev.units import (
    burnt_of,
    check_basis_point,
    format_discount,
    parse_amount,
    parse_discount,
    payout_of,
    shares_text,
    usdai_text,
)

#: Discounts above this need ``--allow-large-discount`` (a typo such as --bp 1500 for 1.5%).
LARGE_DISCOUNT_BP = 1_000
AFTER_CLEARING = ("cleared", "submitted", "settled", "revealed")


class ClaimError(QevError):
    """A claim that cannot be made (not settled, no allocation, not this holder's)."""

    code = "claim"


def bidder_key(args: argparse.Namespace) -> bytes:
    """The holder's key: ``--key-file`` or ``QEV_BIDDER_KEY_FILE`` (keystore or 0600 hex file),
    else ``QEV_BIDDER_KEY`` (hex)."""
    from clearing.keyfiles import KeyFileError, read_account_key

    path = getattr(args, "key_file", None) or os.environ.get("QEV_BIDDER_KEY_FILE")
    if path:
        return read_account_key(
            Path(path), settings_of(args, ChainSettings).passphrase(), "bidder key"
        )
    raw = os.environ.get("QEV_BIDDER_KEY", "")
    if not raw:
        raise ConfigError(
            "set QEV_BIDDER_KEY_FILE (a keystore or hex key file), --key-file or QEV_BIDDER_KEY"
        )
    try:
        key = bytes.fromhex(raw.removeprefix("0x"))
    except ValueError:
        raise KeyFileError("QEV_BIDDER_KEY is not hex") from None
    if len(key) != 32:
        raise KeyFileError("QEV_BIDDER_KEY does not hold 32 bytes")
    return key


class HolderChain:
    """``keeper.chain.Chain`` as a holder reads it (``qev.sdk.HolderChainView``)."""

    def __init__(self, chain: Any) -> None:
        self.chain = chain
        self._chain_id: int | None = None

    def receipt_signer(self) -> bytes:
        """``receiptSigner()`` of the settlement contract."""
        return bytes(self.chain.receipt_signer())

    def key_state(self, auction_id: int) -> Any:
        """``auctionKey(T)``."""
        return self.chain.key_state(auction_id)

    def chain_id(self) -> int:
        """The chain id (read once)."""
        if self._chain_id is None:
            self._chain_id = int(self.chain.chain_id())
        return self._chain_id

    def request(self, redemption_id: int) -> Any:
        """The request as the vault has it now."""
        return self.chain.request(redemption_id)

    def auction_nonce(self, contract: bytes, auction_id: int, redemption_id: int) -> int:
        """``nonce(T, redemptionId)`` of the EIP-712 verifying contract (PROTOCOL 3.2)."""
        from clearing.hexcodec import parse_address, to_checksum_address
        from keeper.artifacts import artifact

        settlement = self.chain.settlement
        if contract == parse_address(settlement.address):
            fn = settlement.functions.nonce(auction_id, redemption_id)
        else:  # the registry target: the nonce lives on the registry (PROTOCOL 7.3)
            registry = self.chain.w3.eth.contract(
                address=to_checksum_address(contract), abi=artifact("QEVRegistry")["abi"]
            )
            fn = registry.functions.nonce(auction_id, redemption_id)
        return int(_read(fn))


def _read(fn: Any) -> Any:
    from clearing.config import scrub_error

    try:
        return fn.call()
    except Exception as exc:
        raise ChainReadError(f"{fn.fn_name} failed: {scrub_error(exc)}") from exc


@dataclass
class Context:
    """One invocation: the key, the chain, the client, the journal."""

    args: argparse.Namespace
    key: bytes
    settings: ChainSettings
    chain: Any  # keeper.chain.Chain
    holder: HolderChain
    client: Any  # qev.sdk.BidderClient
    journal: Any  # qev.journal.Journal
    service: str

    @property
    def me(self) -> str:
        from clearing.hexcodec import to_checksum_address

        return to_checksum_address(self.client.signer.address)

    @property
    def settlement(self) -> str:
        return str(self.chain.settlement.address)

    def pair(self, auction_id: int, redemption_id: int) -> dict[str, Any]:
        """The fields that name a pair in the journal."""
        return {
            "service": self.service,
            "chain_id": self.holder.chain_id(),
            "settlement": self.settlement,
            "auction_id": auction_id,
            "redemption_id": str(redemption_id),
            "controller": self.me,
        }

    def records(self, auction_id: int, redemption_id: int) -> list[dict[str, Any]]:
        """The journal's records of the pair."""
        return list(
            self.journal.of_pair(
                chain_id=self.holder.chain_id(),
                settlement=self.settlement,
                auction_id=auction_id,
                redemption_id=redemption_id,
                controller=self.me,
            )
        )

    def earlier_auction(self, redemption_id: int, before: int) -> int | None:
        """The latest auction before ``before`` the journal has a bid for."""
        found: int | None = self.journal.latest_auction(
            chain_id=self.holder.chain_id(),
            settlement=self.settlement,
            redemption_id=redemption_id,
            controller=self.me,
            before=before,
        )
        return found

    def verifying_contract(self) -> bytes:
        """The EIP-712 verifying contract the auction must name: the settlement contract, or
        the registry for the ``registry`` target (configured, else the vault's)."""
        from clearing.hexcodec import parse_address

        if self.settings.target == "registry":
            from keeper.factory import registry_address

            return parse_address(registry_address(self.settings, self.chain))
        return parse_address(self.settlement)


# --- the subcommands -----------------------------------------------------------------


def _current(ctx: Context) -> int:
    return int(ctx.client.auction()["auction_id"])


def _auction_for(ctx: Context, action: str) -> int:  # noqa: PLR0911 - one return per rule
    """``--auction``, else the current auction; ``status``, ``proof`` and ``claim`` fall back
    to the latest earlier auction of the journal when the current one has no bid of theirs
    (``claim`` and ``proof`` need a cleared auction, which the current one never is)."""
    if ctx.args.auction is not None:
        return int(ctx.args.auction)
    current = _current(ctx)
    if action in ("submit", "cancel"):
        return current
    earlier = ctx.earlier_auction(ctx.args.redemption_id, current)
    if earlier is None:
        return current
    if action in ("claim", "proof"):
        return earlier
    if ctx.records(current, ctx.args.redemption_id):
        return current
    if ctx.client.verified_status(current, ctx.args.redemption_id) is not None:
        return current
    return earlier


def _discount(args: argparse.Namespace) -> int:
    if args.bp is not None and args.discount is not None:
        raise ConfigError("give the discount once: --discount 1.5% or --bp 150")
    if args.bp is None and args.discount is None:
        raise ConfigError("qev bid submit needs a discount: --discount 1.5% or --bp 150")
    bp = int(args.bp) if args.bp is not None else parse_discount(args.discount)
    check_basis_point(bp)
    if bp > LARGE_DISCOUNT_BP and not args.allow_large_discount:
        raise ConfigError(
            f"a discount of {format_discount(bp)} ({bp} bp) gives up {format_discount(bp)} of "
            f"the filled shares: pass --allow-large-discount if you mean it"
        )
    return bp


def _shares(args: argparse.Namespace) -> int | None:
    """Wei, or None for ``all``."""
    if args.shares is None:
        raise ConfigError("qev bid submit needs --shares (e.g. --shares 12.5, or --shares all)")
    if args.shares.strip().lower() == "all":
        return None
    shares = parse_amount(args.shares)
    if shares == 0:
        raise ConfigError("--shares must be more than 0: a bid for 0 shares is excluded")
    return shares


def _submit(ctx: Context) -> dict[str, Any]:
    from clearing.hexcodec import to_hex
    from qev.sdk import BidRefusedError

    args, client = ctx.args, ctx.client
    shares, bp = _shares(args), _discount(args)
    ctx.journal.check_writable()
    auction_id = _auction_for(ctx, "submit")
    auction = client.auction(auction_id)
    client.check_auction(auction, verifying_contract=ctx.verifying_contract())
    rid = args.redemption_id
    if shares is None:  # all: every pending share, read now
        shares = int(ctx.holder.request(rid).pending_shares)
        if shares == 0:
            raise BidRefusedError(f"redemption {rid} has no pending shares left")
    bid, request = client.prepare_bid(auction, rid, shares, bp)
    records = ctx.records(auction_id, rid)
    existing = client.verified_status(auction_id, rid)
    replaces = None
    if existing is not None and existing.get("status") == "live":
        replaces = existing["receipt"]["ciphertext_hash"]
        if not args.replace:
            known = ctx.journal.sealed(records, replaces)
            what = f": {_bid_text(known)}" if known else ""
            raise BidRefusedError(
                f"redemption {rid} already has a live bid in auction {auction_id} (envelope "
                f"{replaces}, sequence {existing['receipt']['sequence']}{what}); pass --replace "
                "to replace it"
            )
    envelope = client.seal(auction, bid)
    ciphertext_hash = to_hex(envelope.ciphertext_hash)
    pair = ctx.pair(auction_id, rid)
    ctx.journal.append(
        "submit",
        **pair,
        shares=str(bid.redemption_shares),
        basis_point=bid.basis_point,
        nonce=str(bid.nonce),
        ciphertext_hash=ciphertext_hash,
        ciphertext=to_hex(envelope.ciphertext),
        signature=to_hex(envelope.signature),
        replaces=replaces,
    )
    done = _sent(ctx, pair, "submit", ciphertext_hash, lambda: client.submit_envelope(envelope))
    receipt = done.receipt
    ctx.journal.append(
        "receipt",
        **pair,
        kind=0,
        created=done.created,
        **_receipt_fields(receipt),
    )
    price = int(ctx.chain.share_price())
    return {
        "action": "submit",
        "created": done.created,
        "replaced": replaces if done.created else None,
        "auction_id": auction_id,
        "redemption_id": str(rid),
        "controller": ctx.me,
        "shares": str(bid.redemption_shares),
        "pending_shares": str(request.pending_shares),
        "basis_point": bid.basis_point,
        "nonce": str(bid.nonce),
        "share_price": str(price),
        "payout_if_filled": str(payout_of(bid.redemption_shares, bid.basis_point, price)),
        "ciphertext_hash": ciphertext_hash,
        "sequence": receipt.sequence,
        "received_at": receipt.received_at,
        "service": to_hex(receipt.signer_address()),
        "journal": str(ctx.journal.path),
    }


def _sent(ctx: Context, pair: dict[str, Any], what: str, ciphertext_hash: str, call: Any) -> Any:
    """Run the service call; a failure is journalled (``failed``) and re-raised."""
    try:
        return call()
    except Exception as exc:
        from qev.cli import error_line

        ctx.journal.append(
            "failed", **pair, of=what, ciphertext_hash=ciphertext_hash, error=error_line(exc)
        )
        raise


def _receipt_fields(receipt: Any) -> dict[str, Any]:
    from clearing.hexcodec import to_checksum_address, to_hex

    return {
        "ciphertext_hash": to_hex(receipt.ciphertext_hash),
        "sequence": receipt.sequence,
        "received_at": receipt.received_at,
        "service_signature": to_hex(receipt.service_signature),
        "service_signer": to_checksum_address(receipt.signer_address()),
    }


def _cancel(ctx: Context) -> dict[str, Any]:
    from clearing.hexcodec import from_hex, to_hex
    from qev.sdk import BidRefusedError, ServiceProblemError

    args, client = ctx.args, ctx.client
    ctx.journal.check_writable()
    auction_id = _auction_for(ctx, "cancel")
    auction = client.auction(auction_id)
    client.check_auction(auction, verifying_contract=ctx.verifying_contract())
    rid = args.redemption_id
    if auction.get("status") != "open":
        raise BidRefusedError(
            f"auction {auction_id} is {auction.get('status')}: a bid can no longer be cancelled"
        )
    pair = ctx.pair(auction_id, rid)
    records = ctx.records(auction_id, rid)
    target: bytes | None
    if args.ciphertext_hash:
        target, source = from_hex(args.ciphertext_hash, 32), "--ciphertext-hash"
    else:
        live = ctx.journal.live(records)
        if live is not None:
            target, source = from_hex(live["ciphertext_hash"], 32), "journal"
        else:
            target, source = client.live_envelope(auction_id, rid), "service"
    if target is None:
        raise BidRefusedError(
            f"no live bid of {ctx.me} for redemption {rid} in auction {auction_id}: "
            "nothing to cancel"
        )

    def send(envelope: bytes, found_in: str) -> Any:
        ciphertext_hash = to_hex(envelope)
        ctx.journal.append("cancel", **pair, ciphertext_hash=ciphertext_hash, source=found_in)
        return _sent(
            ctx, pair, "cancel", ciphertext_hash, lambda: client.cancel(auction_id, rid, envelope)
        )

    try:
        receipt = send(target, source)
    except ServiceProblemError as exc:
        # the journal is behind (the bid was replaced or cancelled elsewhere): ask the service
        if source != "journal" or exc.code not in ("stale_cancel", "not_found"):
            raise
        found = client.live_envelope(auction_id, rid)
        if found is None or found == target:
            raise BidRefusedError(
                f"no live bid of {ctx.me} for redemption {rid} in auction {auction_id} (the "
                f"journal's envelope {to_hex(target)} is no longer live): nothing to cancel"
            ) from None
        source = "service"
        receipt = send(found, source)
    ctx.journal.append("receipt", **pair, kind=1, created=None, **_receipt_fields(receipt))
    known = ctx.journal.sealed(records, to_hex(receipt.ciphertext_hash))
    return {
        "action": "cancel",
        "cancelled": True,
        "auction_id": auction_id,
        "redemption_id": str(rid),
        "controller": ctx.me,
        "ciphertext_hash": to_hex(receipt.ciphertext_hash),
        "found_in": source,
        "bid": _bid_json(known),
        "sequence": receipt.sequence,
        "received_at": receipt.received_at,
        "service": to_hex(receipt.signer_address()),
        "journal": str(ctx.journal.path),
    }


def _status(ctx: Context) -> dict[str, Any]:
    from qev.sdk import ServiceProblemError

    args, client = ctx.args, ctx.client
    rid = args.redemption_id
    auction_id = _auction_for(ctx, "status")
    auction = client.auction(auction_id)
    client.check_auction(auction, verifying_contract=ctx.verifying_contract())
    body = client.verified_status(auction_id, rid)
    records = ctx.records(auction_id, rid)
    out: dict[str, Any] = {
        "action": "status",
        "auction_id": auction_id,
        "auction_status": auction.get("status"),
        "redemption_id": str(rid),
        "controller": ctx.me,
        "state": "none",
        "reason": None,
        "detail": None,
        "service_status": None,
        "bid": None,
        "receipt": None,
        "outcome": None,
        "claimed": None,
        "claim_tx": None,
        "warnings": [],
    }
    warnings: list[str] = out["warnings"]
    if body is None:
        live = ctx.journal.live(records)
        if live is not None:
            warnings.append(
                f"the journal has a live bid (envelope {live['ciphertext_hash']}) that the "
                "service does not know"
            )
        return out
    receipt = body["receipt"]
    ciphertext_hash = receipt["ciphertext_hash"]
    out.update(service_status=body.get("status"), receipt=receipt)
    sealed = ctx.journal.sealed(records, ciphertext_hash)
    out["bid"] = _bid_json(sealed)
    if sealed is None:
        warnings.append(
            "this envelope is not in the journal: its shares, discount and nonce are unknown "
            "here (sealed elsewhere?)"
        )
    if body.get("status") == "cancelled":
        out["state"] = "cancelled"
        return out
    out["state"] = "live"
    if auction.get("status") in AFTER_CLEARING:
        outcome = body.get("outcome")
        if outcome:
            out["outcome"] = outcome
            won = outcome.get("status") in ("filled", "partial")
            out["state"] = "won" if won else "lost"
            out["reason"] = outcome.get("reason")
            if won:
                _claim_state(ctx, auction_id, rid, out)
        else:
            try:
                result = client.result(auction_id)
            except ServiceProblemError as exc:
                if exc.code != "not_cleared":
                    raise
                result = None
            excluded = [
                e
                for e in (result or {}).get("excluded", [])
                if e.get("ciphertext_hash") == ciphertext_hash
            ]
            if excluded:
                out.update(state="excluded", reason=excluded[0]["reason"])
                out["detail"] = excluded[0].get("detail")
            elif result is not None:
                warnings.append("the published result has neither an outcome nor an exclusion")
        return out
    # open, or closed and not yet cleared: what the chain says now about the bid's chances
    _live_checks(ctx, auction, rid, sealed, warnings)
    return out


def _live_checks(
    ctx: Context,
    auction: dict[str, Any],
    rid: int,
    sealed: dict[str, Any] | None,
    warnings: list[str],
) -> None:
    from clearing.hexcodec import parse_address, to_checksum_address

    request = ctx.holder.request(rid)
    if sealed is not None:
        contract = parse_address(auction["settlement"])
        nonce = ctx.holder.auction_nonce(contract, int(auction["auction_id"]), rid)
        if str(nonce) != str(sealed.get("nonce")):
            warnings.append(
                f"cancelled on-chain: the nonce is now {nonce}, the bid was signed with nonce "
                f"{sealed.get('nonce')}: it will be excluded (stale_nonce) unless you bid again"
            )
        if int(sealed.get("shares", 0)) > request.pending_shares:
            warnings.append(
                f"only {shares_text(request.pending_shares)} are pending now: the bid is capped "
                "to that"
            )
    if request.controller != ctx.client.signer.address:
        warnings.append(
            f"the request is now controlled by {to_checksum_address(request.controller)}: the "
            "bid will be excluded (not_controller)"
        )
    elif request.pending_shares == 0:
        warnings.append("the request has no pending shares left: the bid will be excluded")


def _claim_state(ctx: Context, auction_id: int, rid: int, out: dict[str, Any]) -> None:
    if not ctx.chain.is_settled(auction_id):
        return
    out["claimed"] = bool(ctx.chain.is_claimed(auction_id, rid))
    if out["claimed"]:
        out["claim_tx"] = _claim_tx(ctx, auction_id, rid)


def _claim_tx(ctx: Context, auction_id: int, rid: int) -> str | None:
    """The transaction that claimed the leaf (``AllocationClaimed``), if the logs tell."""
    from_block = 0
    with contextlib.suppress(Exception):  # the result's snapshot block only narrows the search
        from_block = int(ctx.client.result(auction_id)["snapshot"]["block"])
    try:
        logs = ctx.chain.settlement.events.AllocationClaimed().get_logs(
            from_block=from_block,
            argument_filters={"auctionId": auction_id, "redemptionId": rid},
        )
    except Exception:  # a node that limits log ranges: unknown, not an error
        return None
    return "0x" + bytes(logs[-1]["transactionHash"]).hex() if logs else None


def _checked_allocation(ctx: Context, auction_id: int, rid: int) -> tuple[dict[str, Any], bool]:
    """The allocation (proof verified against the published root) and whether that root is
    the one settled on-chain (False before settlement; a different root is refused)."""
    from clearing.hexcodec import from_hex, to_hex
    from qev.sdk import ReceiptMismatchError

    body = ctx.client.allocation(auction_id, rid)
    if not ctx.chain.is_settled(auction_id):
        return body, False
    onchain = ctx.chain.settled(auction_id).allocation_root
    if from_hex(body["allocation_root"], 32) != onchain:
        raise ReceiptMismatchError(
            f"the service's allocation root {body['allocation_root']} is not the root settled "
            f"on-chain {to_hex(onchain)}"
        )
    return body, True


def _proof(ctx: Context) -> dict[str, Any]:
    auction_id = _auction_for(ctx, "proof")
    body, settled = _checked_allocation(ctx, auction_id, ctx.args.redemption_id)
    return {"action": "proof", **body, "settled_root_matches": settled}


def _claim(ctx: Context) -> dict[str, Any]:
    from clearing.hexcodec import parse_address
    from qev.sdk import ServiceProblemError

    rid = ctx.args.redemption_id
    ctx.journal.check_writable()
    auction_id = _auction_for(ctx, "claim")
    if not ctx.chain.is_settled(auction_id):
        hint = "" if ctx.args.auction is not None else " (an earlier auction: pass --auction T)"
        raise ClaimError(
            f"auction {auction_id} is not settled on-chain yet: nothing to claim{hint}"
        )
    pair = ctx.pair(auction_id, rid)
    try:
        body, _ = _checked_allocation(ctx, auction_id, rid)
    except ServiceProblemError as exc:
        if exc.code == "not_found":
            raise ClaimError(
                f"redemption {rid} has no allocation in auction {auction_id} (see `qev bid status`)"
            ) from None
        raise
    leaf = body["leaf"]
    out: dict[str, Any] = {
        "action": "claim",
        "auction_id": auction_id,
        "redemption_id": str(rid),
        "controller": leaf["controller"],
        "shares_filled": leaf["shares_filled"],
        "shares_burnt": leaf["shares_burnt"],
        "payout": leaf["payout"],
    }
    if ctx.chain.is_claimed(auction_id, rid):
        tx = _claim_tx(ctx, auction_id, rid)
        ctx.journal.append("claim", **pair, tx=tx, pushed=True, payout=leaf["payout"])
        return {**out, "already_claimed": True, "tx": tx}
    if parse_address(leaf["controller"]) != ctx.client.signer.address:
        raise ClaimError(
            f"the allocation of redemption {rid} belongs to {leaf['controller']}, not to this "
            f"key ({ctx.me})"
        )
    fn = ctx.chain.settlement.functions.claim(
        auction_id,
        rid,
        leaf["controller"],
        int(leaf["shares_filled"]),
        int(leaf["shares_burnt"]),
        int(leaf["payout"]),
        body["proof"],
    )
    tx = _send(ctx, fn)
    ctx.journal.append("claim", **pair, tx=tx, pushed=False, payout=leaf["payout"])
    return {**out, "already_claimed": False, "tx": tx}


def _send(ctx: Context, fn: Any) -> str:
    """Simulate, sign with the holder's key, send and wait for ``fn``; the tx hash."""
    from eth_account import Account

    from keeper.errors import classify

    account = Account.from_key(ctx.key)
    w3 = ctx.chain.w3
    latest, _ = ctx.chain.latest_block()
    ctx.chain.simulate(fn, account.address, latest)  # a revert stops here, decoded
    try:
        tx = fn.build_transaction(
            {
                "from": account.address,
                "nonce": w3.eth.get_transaction_count(account.address, "pending"),
                "chainId": ctx.holder.chain_id(),
            }
        )
        tx_hash = w3.eth.send_raw_transaction(account.sign_transaction(tx).raw_transaction)
        receipt = w3.eth.wait_for_transaction_receipt(tx_hash, timeout=ctx.args.tx_timeout)
    except Exception as exc:
        raise classify(exc, fn.contract_abi) from exc
    text = "0x" + bytes(receipt["transactionHash"]).hex()
    if receipt["status"] != 1:
        raise ClaimError(f"the claim transaction {text} reverted")
    return text


# --- output ------------------------------------------------------------------------


def _bid_json(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "shares": record.get("shares"),
        "basis_point": record.get("basis_point"),
        "nonce": record.get("nonce"),
        "sealed_at": record.get("at"),
    }


def _bid_text(record: dict[str, Any] | None) -> str:
    if record is None:
        return "unknown (not in this journal)"
    bp = int(record.get("basis_point", 0))
    return (
        f"{shares_text(int(record.get('shares', 0)))} at a {format_discount(bp)} discount "
        f"({bp} bp), nonce {record.get('nonce')}"
    )


def _when(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def render(out: dict[str, Any]) -> str:
    """``out`` for a person: amounts in sUSDai/USDai and percent."""
    action = out["action"]
    lines: list[str] = []
    where = f"redemption {out['redemption_id']}, auction {out['auction_id']}"
    if action == "submit":
        shares, bp = int(out["shares"]), int(out["basis_point"])
        head = "bid accepted" if out["created"] else "bid already live (identical, not resent)"
        if out["replaced"]:
            head = f"bid accepted, replacing your live bid {out['replaced']}"
        lines += [
            f"{head}: {where}",
            f"  shares     {shares_text(shares)} of {shares_text(int(out['pending_shares']))}"
            " pending",
            f"  discount   {format_discount(bp)} ({bp} bp): at most "
            f"{shares_text(burnt_of(shares, bp))} given up",
            f"  if filled  about {usdai_text(int(out['payout_if_filled']))} at today's share "
            f"price {usdai_text(int(out['share_price']))} per sUSDai",
            f"  nonce      {out['nonce']} (read on-chain)",
            f"  receipt    sequence {out['sequence']} at {_when(out['received_at'])}, signed by "
            f"the on-chain receipt signer {out['service']}",
            f"  envelope   {out['ciphertext_hash']}",
            f"  journal    {out['journal']}",
        ]
    elif action == "cancel":
        lines += [
            f"bid cancelled: {where}",
            f"  bid        {_bid_text(out['bid']) if out['bid'] else 'unknown (not in journal)'}",
            f"  envelope   {out['ciphertext_hash']} (found in the {out['found_in']})",
            f"  receipt    cancel sequence {out['sequence']} at {_when(out['received_at'])}",
            f"  journal    {out['journal']}",
        ]
    elif action == "status":
        lines += _render_status(out, where)
    elif action == "proof":
        leaf = out["leaf"]
        lines += [
            f"allocation: {where}",
            f"  filled     {shares_text(int(leaf['shares_filled']))}, burnt "
            f"{shares_text(int(leaf['shares_burnt']))}",
            f"  payout     {usdai_text(int(leaf['payout']))} to {leaf['controller']}",
            f"  proof      {len(out['proof'])} nodes, verifies against {out['allocation_root']}"
            + (
                " (the root settled on-chain)"
                if out["settled_root_matches"]
                else " (not settled on-chain yet)"
            ),
        ]
    else:
        payout = usdai_text(int(out["payout"]))
        if out["already_claimed"]:
            tx = out["tx"] or "(transaction not found in the logs)"
            lines.append(f"already claimed: {where}: {payout} paid in {tx}")
        else:
            lines.append(f"claimed: {where}: {payout} paid to {out['controller']} in {out['tx']}")
        lines.append(
            f"  filled     {shares_text(int(out['shares_filled']))}, burnt "
            f"{shares_text(int(out['shares_burnt']))}"
        )
    return "\n".join(lines)


def _render_status(out: dict[str, Any], where: str) -> list[str]:
    state = out["state"]
    reason = f" ({out['reason']})" if out["reason"] else ""
    lines = [f"{where} ({out['auction_status']}): {state}{reason}"]
    if state == "none":
        lines.append("  no bid of yours at the service")
    if out["bid"] is not None or out["receipt"] is not None:
        lines.append(f"  your bid   {_bid_text(out['bid'])}")
    if out["receipt"] is not None:
        r = out["receipt"]
        lines.append(
            f"  receipt    sequence {r['sequence']} at {_when(int(r['received_at']))}, envelope "
            f"{r['ciphertext_hash']}"
        )
    outcome = out["outcome"]
    if outcome:
        lines.append(
            f"  outcome    {outcome['status']}: filled {shares_text(int(outcome['shares_filled']))}"
            f", burnt {shares_text(int(outcome['shares_burnt']))}, payout "
            f"{usdai_text(int(outcome['payout']))}"
        )
    if out["detail"]:
        lines.append(f"  detail     {out['detail']}")
    if out["claimed"] is True:
        lines.append(f"  claimed    yes{' in ' + out['claim_tx'] if out['claim_tx'] else ''}")
    elif out["claimed"] is False:
        lines.append("  claimed    not yet: `qev bid claim` sends your claim")
    lines += [f"  warning    {w}" for w in out["warnings"]]
    return lines


# --- wiring ------------------------------------------------------------------------


def _context(args: argparse.Namespace) -> Context:
    from clearing.keyfiles import KeyFileError
    from clearing.signing import Signer
    from qev.journal import Journal, journal_path
    from qev.sdk import BidderClient

    service = (args.service or os.environ.get("QEV_SERVICE_URL") or "").rstrip("/")
    if not service:
        raise ConfigError("qev bid needs the service's URL: --service URL or QEV_SERVICE_URL")
    key = bidder_key(args)
    try:
        signer = Signer(key)
    except QevError:
        raise KeyFileError("the bidder key is not a valid secp256k1 private key") from None
    settings = settings_of(
        args, ChainSettings, rpc_url=args.rpc, vault=args.vault, settlement=args.settlement
    )
    chain = _connect(settings, args.rpc_timeout)  # no chain, no bid: one line, exit 2 or 3
    holder = HolderChain(chain)
    client = BidderClient(service, signer, chain=holder, timeout=args.timeout)
    journal = Journal(Path(args.journal) if args.journal else journal_path())
    return Context(args, key, settings, chain, holder, client, journal, service)


def _connect(settings: ChainSettings, timeout: float) -> Any:
    """``keeper.chain.Chain`` checked against the settings (chain id, code, genesis); a down
    RPC fails in about a second (two quick retries), not after the keeper's long backoff."""
    import requests
    from web3 import Web3
    from web3.providers.rpc.utils import ExceptionRetryConfiguration

    from keeper.factory import connect_chain

    settings.require("rpc_url", "vault", "settlement")
    retry = ExceptionRetryConfiguration(
        errors=(ConnectionError, requests.HTTPError, requests.Timeout),
        retries=2,
        backoff_factor=0.1,
    )
    provider = Web3.HTTPProvider(
        settings.rpc(), request_kwargs={"timeout": timeout}, exception_retry_configuration=retry
    )
    return connect_chain(settings, Web3(provider))


def _run(args: argparse.Namespace) -> int:
    ctx = _context(args)
    try:
        out = {
            "submit": _submit,
            "cancel": _cancel,
            "status": _status,
            "proof": _proof,
            "claim": _claim,
        }[args.action](ctx)
    finally:
        ctx.client.close()
    print(json.dumps(out, indent=2) if args.json else render(out))
    return 0


def register(sub: Any) -> None:
    """Add ``qev bid``."""
    p = sub.add_parser(
        "bid",
        help="a holder's sealed bid: submit, cancel, status, proof, claim (docs/HOLDERS.md)",
        description="A holder's sealed bid. The key comes from --key-file, QEV_BIDDER_KEY_FILE "
        "(keystore or 0600 hex file) or QEV_BIDDER_KEY; the chain (rpc_url, vault, settlement) "
        "from the config file, the deployment file or QEV_*: qev bid refuses to work without "
        "it. Every submit, cancel, receipt and claim is written to the journal "
        "(QEV_JOURNAL_FILE, default ~/.local/share/qev/journal.jsonl). --auction defaults to "
        "the current auction (status, proof and claim: the latest earlier auction of the "
        "journal when the current one has no bid of yours).",
    )
    p.add_argument("action", choices=["submit", "cancel", "status", "proof", "claim"])
    p.add_argument("--service", default=None, help="service base URL (or QEV_SERVICE_URL)")
    p.add_argument("--redemption-id", type=int, required=True)
    p.add_argument("--auction", type=int, default=None, help="auction id (default: current)")
    p.add_argument(
        "--shares", default=None, help="sUSDai to offer: 12.5, 12500000000000000000wei or all"
    )
    p.add_argument("--discount", default=None, help="shares given up: 1.5%% or 150bp")
    p.add_argument("--bp", type=int, default=None, help="the discount in basis points (10..10000)")
    p.add_argument(
        "--allow-large-discount",
        action="store_true",
        help=f"allow a discount above {format_discount(LARGE_DISCOUNT_BP)}".replace("%", "%%"),
    )
    p.add_argument(
        "--replace", action="store_true", help="replace the live bid of this request (submit)"
    )
    p.add_argument(
        "--ciphertext-hash", default=None, help="cancel this envelope (default: the live one)"
    )
    p.add_argument("--key-file", default=None, help="the holder's key (or QEV_BIDDER_KEY_FILE)")
    p.add_argument("--journal", default=None, help="journal file (or QEV_JOURNAL_FILE)")
    p.add_argument("--rpc", default=None, help="chain RPC URL (or rpc_url in the config)")
    p.add_argument("--vault", default=None)
    p.add_argument("--settlement", default=None)
    p.add_argument("--json", action="store_true", help="JSON with every amount in wei")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per service request")
    p.add_argument("--rpc-timeout", type=float, default=30.0, help="seconds per RPC call")
    p.add_argument(
        "--tx-timeout", type=float, default=300.0, help="seconds to wait for the claim tx"
    )
    p.set_defaults(func=_run)


__all__ = ["HolderChain", "bidder_key", "register", "render"]
