-- qev bid store, PostgreSQL schema v2 (DESIGN revision 2).

-- A cancel consumes the auction's next sequence number, like a bid: its receipt's sequence.
-- NULL for live and superseded rows, and for rows cancelled before this version.
ALTER TABLE bids ADD COLUMN cancel_sequence BIGINT CHECK (cancel_sequence > 0);
-- Bid and cancel sequences come from one counter; cancels are unique among themselves too.
CREATE UNIQUE INDEX bids_cancel_sequence ON bids (auction_id, cancel_sequence)
    WHERE cancel_sequence IS NOT NULL;

-- No resurrection: a batch looks up only its (pair, ciphertext hash) combinations. Not
-- unique: databases written by older versions may hold one envelope several times.
CREATE INDEX bids_pair_hash ON bids (auction_id, redemption_id, ciphertext_hash);

-- The freeze fence: set once, on the counter row every batch of the auction locks first,
-- so a freeze and the auction's batches are serialized (after it no write moves
-- last_sequence).
ALTER TABLE auction_sequences ADD COLUMN frozen_at BIGINT CHECK (frozen_at >= 0);
