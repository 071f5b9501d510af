-- qev bid store, SQLite schema v1.
-- redemption_id is a uint256 stored as a 32-byte big-endian BLOB, so that ORDER BY
-- (memcmp on equal-length blobs) is numeric order. auction_id, sequence and times are int64.

CREATE TABLE auction_sequences (
    auction_id    INTEGER PRIMARY KEY,
    last_sequence INTEGER NOT NULL CHECK (last_sequence >= 0)
);

CREATE TABLE bids (
    id               INTEGER PRIMARY KEY,
    auction_id       INTEGER NOT NULL CHECK (auction_id >= 0),
    redemption_id    BLOB    NOT NULL CHECK (length(redemption_id) = 32),
    controller       BLOB    NOT NULL,
    ciphertext       BLOB    NOT NULL,
    ciphertext_hash  BLOB    NOT NULL CHECK (length(ciphertext_hash) = 32),
    signature        BLOB    NOT NULL,
    sequence         INTEGER NOT NULL CHECK (sequence > 0),
    received_at      INTEGER NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('live', 'superseded', 'cancelled')),
    cancel_signature BLOB,
    cancelled_at     INTEGER,
    UNIQUE (auction_id, sequence)
);

-- At most one live envelope per (auction, redemption) pair.
CREATE UNIQUE INDEX bids_one_live ON bids (auction_id, redemption_id) WHERE status = 'live';
CREATE INDEX bids_pair_history ON bids (auction_id, redemption_id, sequence);

CREATE TABLE artifacts (
    auction_id INTEGER NOT NULL,
    name       TEXT    NOT NULL,
    body       BLOB    NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (auction_id, name)
);
