-- Monthly partitions of the tables that grow with the invoices, so that a closed month can be archived, detached
-- and, after the retention period, dropped without touching the current one (docs/archives.md).
--
-- Each table is partitioned by range of one time column, a month a partition, months in the campaign's time
-- zone (passed by `gateway migrate` as prize.timezone, kept here so that every later partition has the same
-- bounds). `ensure_partitions(n)` creates the current month's and the next n months' partitions; the workers
-- call it every hour (workers/partitions.py), so a month never starts without its partition. A default
-- partition catches a row of a month nobody created: the alert PartitionDefaultRows watches it.
--
-- PostgreSQL requires a partitioned table's unique keys to include the partition column, so `invoices.key` can
-- no longer be the primary key that guarded "exactly once per invoice key". The guard moves to `invoice_keys`, a
-- narrow table that is not partitioned: the sink inserts there first (ON CONFLICT DO NOTHING RETURNING key) and
-- writes the invoice, its events, its feed entry, its ledger line and its outbox record only for the keys it
-- returned, in the same statement. Status lookups find a key's month there. The feed's one "add" per key follows
-- from it (only the sink's new keys and a review's release of a held invoice write one); its one "void" per key
-- from `reversals.key` (a void is written only for a reversal recorded now).
--
-- The existing rows are copied into the partitioned tables in this migration's transaction: on a large database
-- that is a maintenance window (deploy/README.md gives the rate measured).

CREATE TABLE partitioned (
    tbl       text PRIMARY KEY,
    by_column text NOT NULL,
    by_date   boolean NOT NULL,  -- a date column (a campaign day) rather than a timestamptz
    zone      text NOT NULL
);
INSERT INTO partitioned (tbl, by_column, by_date, zone)
SELECT t.tbl, t.col, t.by_date, coalesce(nullif(current_setting('prize.timezone', true), ''), 'Asia/Shanghai')
FROM (VALUES ('invoices', 'accepted_at', false), ('invoice_events', 'at', false), ('feed_entries', 'ready_at', false),
             ('outbox', 'created_at', false), ('accepted_ledger', 'day', true), ('duplicate_uploads', 'at', false),
             ('report_distinct', 'day', true), ('tally_parts', 'day', true)) AS t(tbl, col, by_date);

-- The month (its first day) that a time falls in, in the partitions' time zone.
CREATE FUNCTION partition_month(at timestamptz, zone text) RETURNS date LANGUAGE sql STABLE AS $$
    SELECT date_trunc('month', at AT TIME ZONE zone)::date
$$;

-- One month's partition of a table (parent: the table's name now, which the conversion below renames), unless
-- it exists; true when it was created. Bounds: the month's first instant in the zone, or its first day.
CREATE FUNCTION create_partition(p partitioned, parent text, month date) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    name text := format('%s_p%s', p.tbl, to_char(month, 'YYYY_MM'));
    lo text := month::text;
    hi text := (month + interval '1 month')::date::text;
BEGIN
    IF to_regclass(name) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF NOT p.by_date THEN
        lo := (month::timestamp AT TIME ZONE p.zone)::text;
        hi := ((month + interval '1 month')::timestamp AT TIME ZONE p.zone)::text;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', name, parent, lo, hi);
    RETURN true;
END $$;

-- The current month's partitions and the next `ahead` months', for every partitioned table; returns how many
-- were created. A month whose rows already sit in the default partition cannot get its partition (PostgreSQL
-- refuses): that one is skipped with a warning, the others are made (deploy/RUNBOOK.md, PartitionDefaultRows).
CREATE FUNCTION ensure_partitions(ahead integer) RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    p partitioned;
    made integer := 0;
    month date;
BEGIN
    FOR p IN SELECT * FROM partitioned ORDER BY tbl LOOP
        FOR i IN 0 .. ahead LOOP
            month := (partition_month(now(), p.zone) + make_interval(months => i))::date;
            BEGIN
                IF create_partition(p, p.tbl, month) THEN
                    made := made + 1;
                END IF;
            EXCEPTION WHEN check_violation THEN
                RAISE WARNING '%: rows of % are in the default partition: %', p.tbl, month, SQLERRM;
            END;
        END LOOP;
    END LOOP;
    RETURN made;
END $$;

-- The conversion of one table: a partitioned copy (columns, defaults, checks) with a partition for every month
-- that has rows and the months ahead, and a default partition; its rows copied; the old table dropped. The
-- caller adds the keys, indexes and triggers afterwards (built once over the copied rows, faster than kept up).
CREATE FUNCTION convert_to_partitions(name text, ahead integer) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    p partitioned;
    month date;
    seq text;
BEGIN
    SELECT * INTO STRICT p FROM partitioned WHERE tbl = name;
    EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (%I)',
                   name || '_partitioned', name, p.by_column);
    FOR month IN EXECUTE CASE WHEN p.by_date
        THEN format('SELECT DISTINCT date_trunc(''month'', %I)::date FROM %I', p.by_column, name)
        ELSE format('SELECT DISTINCT partition_month(%I, %L) FROM %I', p.by_column, p.zone, name) END
    LOOP
        PERFORM create_partition(p, name || '_partitioned', month);
    END LOOP;
    FOR i IN 0 .. ahead LOOP
        PERFORM create_partition(p, name || '_partitioned', (partition_month(now(), p.zone)
                                                             + make_interval(months => i))::date);
    END LOOP;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', name || '_default', name || '_partitioned');
    EXECUTE format('INSERT INTO %I SELECT * FROM %I', name || '_partitioned', name);
    -- A serial column's sequence belongs to the old table: keep it (and its position) for the new one.
    IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = name::regclass AND attname = 'id') THEN
        seq := pg_get_serial_sequence(name, 'id');
    END IF;
    IF seq IS NOT NULL THEN
        EXECUTE format('ALTER SEQUENCE %s OWNED BY NONE', seq);
    END IF;
    EXECUTE format('DROP TABLE %I', name);
    EXECUTE format('ALTER TABLE %I RENAME TO %I', name || '_partitioned', name);
    IF seq IS NOT NULL THEN
        EXECUTE format('ALTER SEQUENCE %s OWNED BY %I.id', seq, name);
    END IF;
END $$;

-- The final guard of "exactly once per invoice key", and where each key's month is found.
CREATE TABLE invoice_keys (
    key         text PRIMARY KEY,
    accepted_at timestamptz NOT NULL
);
INSERT INTO invoice_keys (key, accepted_at) SELECT key, accepted_at FROM invoices;
ALTER TABLE reviews DROP CONSTRAINT reviews_key_fkey;
ALTER TABLE reviews ADD CONSTRAINT reviews_key_fkey FOREIGN KEY (key) REFERENCES invoice_keys (key);

SELECT convert_to_partitions('invoices', 2);
ALTER TABLE invoices ADD CONSTRAINT invoices_pkey PRIMARY KEY (key, accepted_at);
CREATE INDEX invoices_committed_at ON invoices (committed_at);
CREATE INDEX invoices_device_recent ON invoices (device_ref, accepted_at);
CREATE INDEX invoices_seller_recent ON invoices (seller_tax_id, accepted_at);
CREATE INDEX invoices_held ON invoices (accepted_at) WHERE status = 'held';
CREATE INDEX invoices_reversed_by_seller ON invoices (seller_tax_id, updated_at) WHERE status = 'reversed';
CREATE INDEX invoices_user ON invoices USING hash (user_ref);

SELECT convert_to_partitions('invoice_events', 2);
ALTER TABLE invoice_events ADD CONSTRAINT invoice_events_pkey PRIMARY KEY (id, at);
CREATE INDEX invoice_events_key ON invoice_events (key, id);
CREATE INDEX invoice_events_channel ON invoice_events (channel, tx, id) WHERE status <> 'accepted';
CREATE TRIGGER invoice_events_notify AFTER INSERT ON invoice_events
    FOR EACH STATEMENT EXECUTE FUNCTION notify_invoice_events();

-- The sealed feed stays immutable: the trigger is cloned onto every partition, present and future.
SELECT convert_to_partitions('feed_entries', 2);
ALTER TABLE feed_entries ADD CONSTRAINT feed_entries_pkey PRIMARY KEY (id, ready_at);
ALTER TABLE feed_entries ADD CONSTRAINT feed_entries_batch_seq_fkey FOREIGN KEY (batch_seq) REFERENCES feed_batches (seq);
CREATE INDEX feed_entries_batch ON feed_entries (batch_seq, id);
CREATE INDEX feed_entries_unsealed ON feed_entries (ready_at, id) WHERE batch_seq IS NULL;
CREATE INDEX feed_entries_key ON feed_entries (key, kind);
CREATE TRIGGER feed_entries_sealed BEFORE UPDATE OR DELETE ON feed_entries
    FOR EACH ROW WHEN (OLD.batch_seq IS NOT NULL) EXECUTE FUNCTION refuse_change();

SELECT convert_to_partitions('outbox', 2);
ALTER TABLE outbox ADD CONSTRAINT outbox_pkey PRIMARY KEY (id, created_at);
CREATE INDEX outbox_pending ON outbox (destination, id) WHERE delivered_at IS NULL AND parked_at IS NULL;
CREATE INDEX outbox_parked ON outbox (destination, id) WHERE delivered_at IS NULL AND parked_at IS NOT NULL;
CREATE INDEX outbox_subject ON outbox (subject, id);

-- (day, key) already holds the partition column: the ledger's key stays as it was.
SELECT convert_to_partitions('accepted_ledger', 2);
ALTER TABLE accepted_ledger ADD CONSTRAINT accepted_ledger_pkey PRIMARY KEY (day, key);

-- A channel's later upload of a key that another channel got in first, once per month (the status shows the
-- first).
SELECT convert_to_partitions('duplicate_uploads', 2);
ALTER TABLE duplicate_uploads ADD CONSTRAINT duplicate_uploads_pkey PRIMARY KEY (key, channel, at);

SELECT convert_to_partitions('report_distinct', 2);
ALTER TABLE report_distinct ADD CONSTRAINT report_distinct_pkey PRIMARY KEY (day, kind, channel, industry, value);

-- A tally part's day is a function of the part (its upload's time), so (request, part, day) is as unique as
-- (request, part) was.
SELECT convert_to_partitions('tally_parts', 2);
ALTER TABLE tally_parts ADD CONSTRAINT tally_parts_pkey PRIMARY KEY (request, part, day);

DROP FUNCTION convert_to_partitions(text, integer);
