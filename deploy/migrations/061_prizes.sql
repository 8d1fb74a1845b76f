-- The draw's side of the contract (docs/draw.md): the draws the draw service commits to and publishes, the prizes
-- it awards, and the prize ledger (资金台账) every movement of prize money is a row of.

-- A draw, recorded when its seed is committed: the window of sealed batches it draws from, the SHA-256 of its
-- secret, the draw's public key (Ed25519, base64url) and what the feed held at that moment (the commitment
-- came before the window's last batch). The signed result is added once, when the draw is published; nothing
-- else ever changes.
CREATE TABLE draws (
    draw_id       text PRIMARY KEY,
    kind          text NOT NULL CHECK (kind IN ('periodic', 'instant')),
    window_from   timestamptz NOT NULL,
    window_to     timestamptz NOT NULL,
    commitment    text NOT NULL,
    public_key    text NOT NULL,
    randomness    text NOT NULL,
    committed_by  text NOT NULL,
    committed_at  timestamptz NOT NULL DEFAULT now(),
    feed_head_seq bigint NOT NULL,
    result        jsonb,
    published_at  timestamptz
);

CREATE FUNCTION refuse_draw_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.result IS NULL AND NEW.result IS NOT NULL
       AND (NEW.draw_id, NEW.kind, NEW.window_from, NEW.window_to, NEW.commitment, NEW.public_key, NEW.randomness,
            NEW.committed_by, NEW.committed_at, NEW.feed_head_seq)
           IS NOT DISTINCT FROM
           (OLD.draw_id, OLD.kind, OLD.window_from, OLD.window_to, OLD.commitment, OLD.public_key, OLD.randomness,
            OLD.committed_by, OLD.committed_at, OLD.feed_head_seq) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a draw''s commitment and result never change';
END $$;
CREATE TRIGGER draws_fixed BEFORE UPDATE OR DELETE ON draws FOR EACH ROW EXECUTE FUNCTION refuse_draw_change();

-- A prize: one winning entry of a draw. Its status follows its ledger rows: awarded (waiting for the winner's
-- re-verification) -> payable -> paid; withdrawn (reversed before payment), clawback (reversed after), expired
-- (not paid in time). check_at: when the winner is verified again next (campaign reverify = "winners").
CREATE TABLE prizes (
    id          text PRIMARY KEY,
    draw_id     text NOT NULL REFERENCES draws (draw_id),
    tier        text NOT NULL,
    amount_fen  bigint NOT NULL CHECK (amount_fen > 0),
    key         text NOT NULL,
    channel     text NOT NULL,
    person      text NOT NULL,
    batch_seq   bigint NOT NULL,
    status      text NOT NULL CHECK (status IN ('awarded', 'payable', 'paid', 'withdrawn', 'clawback', 'expired')),
    reason      text,
    awarded_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    check_at    timestamptz,
    payment_ref text,
    paid_at     timestamptz,
    updated_at  timestamptz NOT NULL
);
CREATE UNIQUE INDEX prizes_once_a_draw ON prizes (draw_id, key);
CREATE INDEX prizes_key ON prizes (key);
CREATE INDEX prizes_channel ON prizes (channel, id);
CREATE INDEX prizes_to_check ON prizes (check_at, id) WHERE status = 'awarded' AND check_at IS NOT NULL;
CREATE INDEX prizes_payable ON prizes (expires_at) WHERE status = 'payable';

-- The prize ledger: every movement of prize money, with its cause and who caused it. Append-only: rows are
-- added, never changed or removed (the triggers refuse it, TRUNCATE included). Amounts are positive but for
-- "budget", a change of the campaign's budget_fen (either way).
CREATE TABLE prize_ledger (
    id         bigserial PRIMARY KEY,
    at         timestamptz NOT NULL DEFAULT now(),
    movement   text NOT NULL
               CHECK (movement IN ('budget', 'awarded', 'withdrawn', 'paid', 'clawback', 'expired', 'returned')),
    prize_id   text REFERENCES prizes (id),
    tier       text NOT NULL DEFAULT '',
    amount_fen bigint NOT NULL CHECK (amount_fen > 0 OR movement = 'budget'),
    cause      text NOT NULL,
    actor      text NOT NULL,
    CHECK ((prize_id IS NULL) = (movement IN ('budget', 'returned')))
);
CREATE INDEX prize_ledger_prize ON prize_ledger (prize_id, id) WHERE prize_id IS NOT NULL;

CREATE FUNCTION refuse_ledger_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the prize ledger is append-only';
END $$;
CREATE TRIGGER prize_ledger_append_only BEFORE UPDATE OR DELETE ON prize_ledger
    FOR EACH ROW EXECUTE FUNCTION refuse_ledger_change();
CREATE TRIGGER prize_ledger_no_truncate BEFORE TRUNCATE ON prize_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_ledger_change();
