-- Webhooks: a channel may have its change feed (GET /v1/events) pushed to a URL of its own. Each event of its
-- invoices becomes an outbox record for the destination "webhook:<channel>" in the transaction that writes the
-- event (a statement trigger over the new rows: one INSERT per statement, nothing when no channel has a webhook),
-- and the export process's relay for that destination delivers it (workers/relay.py, workers/webhook.py).
CREATE TABLE webhooks (
    channel    text PRIMARY KEY REFERENCES api_clients (client_id) ON DELETE CASCADE,
    url        text NOT NULL CHECK (url ~ '^https?://'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION invoice_events_to_webhooks() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO outbox (destination, subject, kind, record)
    SELECT 'webhook:' || n.channel, n.key, 'event',
           jsonb_strip_nulls(jsonb_build_object(
               'cursor', n.tx::text || '-' || n.id, 'key', n.key, 'status', n.status, 'reason', n.reason,
               'batch_seq', n.batch_seq, 'at', iso_ms(n.at)))
    FROM new_events n JOIN webhooks w ON w.channel = n.channel
    WHERE n.status <> 'accepted'
    ORDER BY n.id;
    RETURN NULL;
END $$;
CREATE TRIGGER invoice_events_webhooks AFTER INSERT ON invoice_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION invoice_events_to_webhooks();
