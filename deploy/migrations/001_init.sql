-- The vertical slice's schema: callers, invoices with their status history, and the sealed feed.

CREATE TABLE api_clients (
    client_id  text PRIMARY KEY,
    secret     text NOT NULL,
    role       text NOT NULL CHECK (role IN ('channel', 'draw', 'admin')),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- One row per invoice key, ever: the primary key is the final guard of "exactly once".
-- No personal data: person, user and device are keyed hashes.
CREATE TABLE invoices (
    key           text PRIMARY KEY,
    channel       text NOT NULL,
    number        text NOT NULL,
    code          text NOT NULL,
    issue_date    date NOT NULL,
    amount_fen    bigint NOT NULL,
    seller_tax_id text NOT NULL,
    seller_name   text NOT NULL,
    category      text NOT NULL,
    person        text NOT NULL,
    user_ref      text NOT NULL,
    device_ref    text NOT NULL,
    status        text NOT NULL,
    reason        text,
    accepted_at   timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL,
    batch_seq     bigint
);

CREATE TABLE invoice_events (
    id      bigserial PRIMARY KEY,
    key     text NOT NULL,
    channel text NOT NULL,
    status  text NOT NULL,
    reason  text,
    at      timestamptz NOT NULL
);
CREATE INDEX invoice_events_key ON invoice_events (key, id);

-- A later upload of an accepted key by another channel: that channel may see "duplicate".
CREATE TABLE duplicate_uploads (
    key     text NOT NULL,
    channel text NOT NULL,
    at      timestamptz NOT NULL,
    PRIMARY KEY (key, channel)
);

CREATE TABLE feed_batches (
    seq         bigint PRIMARY KEY,
    sealed_at   timestamptz NOT NULL,
    count       integer NOT NULL,
    prev_sha256 text NOT NULL,
    sha256      text NOT NULL
);

-- body is the entry's canonical JSON, stored as hashed and served as stored.
CREATE TABLE feed_entries (
    id        bigserial PRIMARY KEY,
    key       text NOT NULL,
    kind      text NOT NULL CHECK (kind IN ('add', 'void')),
    body      text NOT NULL,
    batch_seq bigint REFERENCES feed_batches (seq)
);
CREATE UNIQUE INDEX feed_entries_one_add ON feed_entries (key) WHERE kind = 'add';
CREATE INDEX feed_entries_unsealed ON feed_entries (id) WHERE batch_seq IS NULL;
CREATE INDEX feed_entries_batch ON feed_entries (batch_seq, id);

-- A sealed batch never changes, nor do the entries sealed into it.
CREATE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sealed feed data cannot change';
END $$;
CREATE TRIGGER feed_batches_sealed BEFORE UPDATE OR DELETE ON feed_batches
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER feed_entries_sealed BEFORE UPDATE OR DELETE ON feed_entries
    FOR EACH ROW WHEN (OLD.batch_seq IS NOT NULL) EXECUTE FUNCTION refuse_change();
