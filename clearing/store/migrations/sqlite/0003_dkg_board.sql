-- qev bid store, SQLite schema v3: the keypers' bulletin board (PROTOCOL 10, threshold mode).

-- One row per board message: its kind, its slot (deal: dealer, 0; complaint: keyper, dealer;
-- answer: dealer, keyper; share: keyper, 0), the canonical JSON the board serves and the
-- service time it was accepted. A slot holds one message for ever (the first one stored).
CREATE TABLE dkg_board (
    id          INTEGER PRIMARY KEY,
    auction_id  INTEGER NOT NULL CHECK (auction_id >= 0),
    kind        TEXT    NOT NULL CHECK (kind IN ('deal', 'complaint', 'answer', 'share')),
    slot_a      INTEGER NOT NULL CHECK (slot_a > 0),
    slot_b      INTEGER NOT NULL CHECK (slot_b >= 0),
    body        BLOB    NOT NULL,
    received_at INTEGER NOT NULL,
    UNIQUE (auction_id, kind, slot_a, slot_b)
);
