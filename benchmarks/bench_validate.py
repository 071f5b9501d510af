"""(d) Open + validate 100,000 sealed bids on both cores: <= 6 s, single-process figure beside.

Each envelope: HPKE open, strict plaintext decode, EIP-712 ``Bid`` digest, signer recovery
and the rule-0 checks against a request snapshot (``validate_book_parallel`` on 2 workers vs
``validate_book`` in one process). About 1% of the envelopes are invalid on purpose (0.5%
garbled ciphertext, 0.5% inner bid signed by the wrong key); the exclusion counts per reason
must come out exactly.

Sealing 100k bids costs ~16 s of CPU, so the book is generated on 2 processes and cached
under ``$TMPDIR/qev-bench-cache`` keyed by size and seed; reruns load it in about a second.
"""

from __future__ import annotations

import multiprocessing
import pickle
import random
import time
from collections import Counter
from typing import Any

from benchmarks.common import (
    AUCTION_ID,
    CHAIN_ID,
    CONTROLLERS,
    SEED,
    SETTLEMENT,
    Row,
    amount,
    bench_args,
    best_of,
    cache_dir,
    emit,
    log,
    unique_ids,
)
from clearing.bidding import seal_bid
from clearing.eip712 import Eip712Domain
from clearing.model import Bid, Envelope, SignedBid
from clearing.parallel import validate_book_parallel
from clearing.sealing import bid_info, derive_auction_secret, public_key_of, seal
from clearing.signing import Signer
from clearing.validation import AuctionContext, ExclusionReason, RequestSnapshot, validate_book

NAME = "validate_100k"
CACHE_FORMAT = 1
OK, GARBLED, WRONG_SIGNER = 0, 1, 2
DOMAIN = Eip712Domain("QEVSettlement", "1", CHAIN_ID, SETTLEMENT)

# The generation plan, inherited by forked sealing workers.
_PLAN: dict[str, Any] = {}


def master_secret(seed: int) -> bytes:
    return random.Random(seed).randbytes(32)


def make_plan(n: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed + 2)
    secrets = [rng.randbytes(32) for _ in range(CONTROLLERS)]
    ids = unique_ids(rng, n)
    who = [rng.randrange(CONTROLLERS) for _ in range(n)]
    shares = [amount(rng) for _ in range(n)]
    # pending shares: usually the full request, sometimes less than the bid names (rule 1)
    pending = [s if rng.random() < 0.8 else s // 2 + 1 for s in shares]
    rates = [rng.randint(10, 10_000) for _ in range(n)]
    kinds = [OK] * n
    for i in rng.sample(range(n), max(2, n // 100)):
        kinds[i] = GARBLED if rng.random() < 0.5 else WRONG_SIGNER
    return {
        "secrets": secrets,
        "ids": ids,
        "who": who,
        "shares": shares,
        "pending": pending,
        "rates": rates,
        "kinds": kinds,
    }


def _seal_range(start: int, end: int) -> list[tuple[int, int, bytes, bytes, bytes]]:
    p = _PLAN
    signers = [Signer(s) for s in p["secrets"]]
    public_key = _PLAN["public_key"]
    info = bid_info(DOMAIN.chain_id, DOMAIN.verifying_contract, AUCTION_ID)
    out = []
    for i in range(start, end):
        signer = signers[p["who"][i]]
        bid = Bid(AUCTION_ID, p["ids"][i], p["shares"][i], p["rates"][i], 0)
        kind = p["kinds"][i]
        if kind == WRONG_SIGNER:
            wrong = signers[(p["who"][i] + 1) % len(signers)]
            signed = SignedBid(bid, wrong.sign_digest(bid.digest(DOMAIN)))
            ct = seal(signed.encode(), public_key, info)
            unsigned = Envelope(AUCTION_ID, bid.redemption_id, signer.address, ct, b"")
            env = Envelope(
                AUCTION_ID,
                bid.redemption_id,
                signer.address,
                ct,
                signer.sign_digest(unsigned.digest(DOMAIN)),
            )
        else:
            env = seal_bid(signer, bid, DOMAIN, public_key)
            if kind == GARBLED:
                garbled = bytearray(env.ciphertext)
                garbled[100] ^= 0x5A  # inside the AEAD-sealed part: the tag check fails
                env = Envelope(
                    env.auction_id, env.redemption_id, env.controller, bytes(garbled), env.signature
                )
        out.append(
            (env.auction_id, env.redemption_id, env.controller, env.ciphertext, env.signature)
        )
    return out


def generate(n: int, seed: int, workers: int) -> dict[str, Any]:
    plan = make_plan(n, seed)
    plan["public_key"] = public_key_of(derive_auction_secret(master_secret(seed), AUCTION_ID))
    _PLAN.update(plan)
    step = 2_000
    chunks = [(i, min(i + step, n)) for i in range(0, n, step)]
    t0 = time.perf_counter()
    try:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            envelopes = [e for part in pool.starmap(_seal_range, chunks) for e in part]
    finally:
        _PLAN.clear()
    log(f"sealed {n:,} bids on {workers} processes in {time.perf_counter() - t0:.1f} s")
    addresses = [Signer(s).address for s in plan["secrets"]]
    requests = [
        (rid, addresses[plan["who"][i]], plan["pending"][i], AUCTION_ID - 86_400 * (i % 30), 0)
        for i, rid in enumerate(plan["ids"])
    ]
    kinds = Counter(plan["kinds"])
    return {
        "format": CACHE_FORMAT,
        "n": n,
        "seed": seed,
        "envelopes": envelopes,
        "requests": requests,
        "expected": {
            "valid": kinds[OK],
            ExclusionReason.UNDECRYPTABLE.value: kinds[GARBLED],
            ExclusionReason.SIGNER_NOT_CONTROLLER.value: kinds[WRONG_SIGNER],
        },
    }


def load_book(n: int, seed: int, workers: int) -> dict[str, Any]:
    path = cache_dir() / f"book-v{CACHE_FORMAT}-n{n}-seed{seed}.pickle"
    if path.exists():
        try:
            book: dict[str, Any] = pickle.loads(path.read_bytes())
            if book.get("format") == CACHE_FORMAT and book["n"] == n and book["seed"] == seed:
                log(f"loaded cached book {path}")
                return book
        except Exception as e:  # a corrupt cache is regenerated
            log(f"ignoring unreadable cache {path}: {e}")
    log(f"sealing {n:,} bids (cached afterwards in {path})")
    book = generate(n, seed, workers)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(book, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(path)
    return book


def main() -> None:
    args = bench_args(__doc__ or NAME)
    n = args.size or (1_000 if args.quick else 100_000)
    repeat = args.repeat or (1 if args.quick else 3)
    book = load_book(n, SEED, args.workers)
    envelopes = [Envelope(*e) for e in book["envelopes"]]
    requests = {r[0]: RequestSnapshot(*r) for r in book["requests"]}
    ctx = AuctionContext(AUCTION_ID, DOMAIN, derive_auction_secret(master_secret(SEED), AUCTION_ID))

    t_par, runs_par, (valid_p, excl_p) = best_of(
        lambda: validate_book_parallel(envelopes, ctx, requests, args.workers),
        repeat,
        f"validate_book_parallel {args.workers} workers",
    )
    t_ser, runs_ser, (valid_s, excl_s) = best_of(
        lambda: validate_book(envelopes, ctx, requests),
        max(1, min(repeat, 2)),
        "validate_book (1 process)",
    )
    if valid_p != valid_s or excl_p != excl_s:
        raise SystemExit("MISMATCH: parallel and single-process validation differ")
    got = {"valid": len(valid_s), **Counter(e.reason.value for e in excl_s)}
    if got != book["expected"]:
        raise SystemExit(f"MISMATCH: expected {book['expected']}, got {got}")
    excluded = ", ".join(f"{k} {v}" for k, v in sorted(got.items()) if k != "valid")
    log(f"{len(valid_s):,} valid; excluded: {excluded}")
    rows = [
        Row(
            NAME,
            f"open+validate {n:,} sealed bids, {args.workers} workers",
            t_par,
            "s",
            target=6.0,
            baseline=f"1 process {t_ser:.2f} s",
            note=f"{len(valid_s):,} valid; excluded {excluded}",
            runs=runs_par,
        ),
        Row(
            NAME,
            "  open+validate, 1 process (validate_book)",
            t_ser,
            "s",
            note=f"{n / t_ser:,.0f} bids/s; {args.workers} workers {n / t_par:,.0f} bids/s",
            runs=runs_ser,
        ),
    ]
    emit(rows, args.out)


if __name__ == "__main__":
    main()
