-- The operator console (gateway/console/): staff accounts and their sessions, the append-only audit log of
-- every action taken through the console (and the admin API's reviews), and the complaint ledger (cases).

-- Staff are people who log in to the console; they are not API clients (api_clients) and never sign requests.
CREATE TABLE staff (
    name          text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9._-]{1,63}$'),
    role          text NOT NULL CHECK (role IN ('reviewer', 'support', 'analyst', 'auditor', 'admin')),
    password_hash text NOT NULL,  -- argon2id, as argon2-cffi writes it
    failed_logins integer NOT NULL DEFAULT 0,
    locked_until  timestamptz,
    disabled_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- A session: the SHA-256 of the random id its cookie carries (a copy of this table opens no session).
CREATE TABLE staff_sessions (
    id         text PRIMARY KEY,
    staff      text NOT NULL REFERENCES staff (name),
    source     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff);
CREATE INDEX staff_sessions_last_seen ON staff_sessions (last_seen);

-- Who did what, when, from where: one row per action, never changed or removed (the trigger below refuses).
-- via: console, api (an admin client) or cli (gateway add-staff); source: the caller's address, or the host.
CREATE TABLE audit_log (
    id      bigserial PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now(),
    actor   text NOT NULL,
    role    text NOT NULL,
    via     text NOT NULL CHECK (via IN ('console', 'api', 'cli')),
    source  text NOT NULL,
    action  text NOT NULL,
    subject text NOT NULL DEFAULT '',
    detail  jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_actor ON audit_log (actor, id);
CREATE INDEX audit_log_action ON audit_log (action, id);

-- The complaint ledger (投诉台账): a case on an invoice or on a consumer's question, its notes and changes.
-- A consumer is named by the channel and the keyed hash of the channel's user id (as invoices.user_ref), never
-- by the id itself, a name or an ID number.
CREATE TABLE cases (
    id          bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('invoice', 'question')),
    invoice_key text,
    channel     text,
    user_ref    text,
    summary     text NOT NULL,
    state       text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'waiting', 'closed')),
    assignee    text REFERENCES staff (name),
    due_at      timestamptz NOT NULL,
    opened_by   text NOT NULL,
    opened_at   timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    closed_at   timestamptz,
    CHECK (kind = 'question' OR invoice_key IS NOT NULL)
);
CREATE INDEX cases_open ON cases (opened_at) WHERE state <> 'closed';
CREATE INDEX cases_invoice ON cases (invoice_key) WHERE invoice_key IS NOT NULL;
CREATE INDEX cases_user ON cases (user_ref) WHERE user_ref IS NOT NULL;

-- A case's timeline: notes, and each change of state, assignee or due time, in order; never changed.
CREATE TABLE case_notes (
    id      bigserial PRIMARY KEY,
    case_id bigint NOT NULL REFERENCES cases (id),
    author  text NOT NULL,
    at      timestamptz NOT NULL DEFAULT now(),
    kind    text NOT NULL CHECK (kind IN ('note', 'change')),
    text    text NOT NULL
);
CREATE INDEX case_notes_case ON case_notes (case_id, id);

CREATE FUNCTION refuse_rewrite() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER case_notes_append_only BEFORE UPDATE OR DELETE ON case_notes
    FOR EACH ROW EXECUTE FUNCTION refuse_rewrite();
CREATE TRIGGER case_notes_no_truncate BEFORE TRUNCATE ON case_notes
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_rewrite();
