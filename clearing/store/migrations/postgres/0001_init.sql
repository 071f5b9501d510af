-- qev bid store, PostgreSQL schema v1 (created inside the store's schema via search_path).
-- redemption_id is a uint256 as NUMERIC(78,0): ORDER BY is numeric.

CREATE TABLE auction_sequences (
    auction_id    BIGINT PRIMARY KEY CHECK (auction_id >= 0),
    last_sequence BIGINT NOT NULL CHECK (last_sequence >= 0)
);

CREATE TABLE bids (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    auction_id       BIGINT        NOT NULL CHECK (auction_id >= 0),
    redemption_id    NUMERIC(78,0) NOT NULL CHECK (
        redemption_id >= 0
        AND redemption_id < 115792089237316195423570985008687907853269984665640564039457584007913129639936
    ),
    controller       BYTEA         NOT NULL,
    ciphertext       BYTEA         NOT NULL,
    ciphertext_hash  BYTEA         NOT NULL CHECK (octet_length(ciphertext_hash) = 32),
    signature        BYTEA         NOT NULL,
    sequence         BIGINT        NOT NULL CHECK (sequence > 0),
    received_at      BIGINT        NOT NULL,
    status           TEXT          NOT NULL CHECK (status IN ('live', 'superseded', 'cancelled')),
    cancel_signature BYTEA,
    cancelled_at     BIGINT,
    UNIQUE (auction_id, sequence)
);

-- At most one live envelope per (auction, redemption) pair, whatever the replicas do.
CREATE UNIQUE INDEX bids_one_live ON bids (auction_id, redemption_id) WHERE status = 'live';
CREATE INDEX bids_pair_history ON bids (auction_id, redemption_id, sequence);

CREATE TABLE artifacts (
    auction_id BIGINT NOT NULL,
    name       TEXT   NOT NULL,
    body       BYTEA  NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (auction_id, name)
);
