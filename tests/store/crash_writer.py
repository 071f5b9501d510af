"""Durability test helper: write bids through SqliteBidStore forever, acknowledging each.

Run as ``python -m tests.store.crash_writer DB RUN`` (``RUN`` keeps tags unique across
runs). After every ``apply`` returns it prints one line per operation and flushes:
``P auction redemption sequence hash`` for a stored put, ``C auction redemption hash
cancel_sequence`` for a cancel. Only printed lines count as acknowledged.
"""

from __future__ import annotations

import random
import sys

from clearing.store.base import CancelResult, Operation, PutResult
from clearing.store.sqlite import SqliteBidStore
from tests.store.conftest import cancel_op, put_op

AUCTIONS = (1_767_225_600, 1_769_817_600)


def main(path: str, run: str) -> None:
    store = SqliteBidStore(path)
    store.migrate()
    rng = random.Random(run)
    live: dict[tuple[int, int], bytes] = {}
    out = sys.stdout
    out.write("ready\n")
    out.flush()
    counter = 0
    while True:
        ops: list[Operation] = []
        for _ in range(rng.randint(1, 48)):
            pair = (
                rng.choice(AUCTIONS),
                rng.choice((rng.randrange(64), 2**200 + rng.randrange(8))),
            )
            counter += 1
            if pair in live and rng.random() < 0.2:
                ops.append(cancel_op(*pair, live[pair]))
            else:
                ops.append(put_op(*pair, f"bid-{run}-{counter}", received_at=counter))
        results = store.apply(ops)
        lines = []
        for result in results:
            if isinstance(result, PutResult):
                bid = result.bid
                live[(bid.auction_id, bid.redemption_id)] = bid.ciphertext_hash
                lines.append(
                    f"P {bid.auction_id} {bid.redemption_id} {bid.sequence} "
                    f"{bid.ciphertext_hash.hex()}\n"
                )
            elif isinstance(result, CancelResult):
                bid = result.bid
                del live[(bid.auction_id, bid.redemption_id)]
                lines.append(
                    f"C {bid.auction_id} {bid.redemption_id} {bid.ciphertext_hash.hex()}"
                    f" {bid.cancel_sequence}\n"
                )
        out.write("".join(lines))
        out.flush()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
