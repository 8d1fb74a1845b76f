-- Secret rotation without downtime (`gateway rotate-secret CLIENT`, gateway/clients.py): during a rotation a client
-- holds two secrets, the new one and the old one until old_secret_expires_at, so it can switch whenever it likes
-- within the window. Replacing a secret outright (`gateway add-client`) clears the old one.
ALTER TABLE api_clients ADD COLUMN old_secret text;
ALTER TABLE api_clients ADD COLUMN old_secret_expires_at timestamptz;

-- Every gateway reloads its copy of the table as soon as it changes (gateway/feedwatch.py), not at its next
-- periodic refresh: a new secret works, and a revoked one stops, within a moment.
CREATE OR REPLACE FUNCTION notify_api_clients() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('api_clients', '');
    RETURN NULL;
END $$;
CREATE OR REPLACE TRIGGER api_clients_notify AFTER INSERT OR UPDATE OR DELETE ON api_clients
    FOR EACH STATEMENT EXECUTE FUNCTION notify_api_clients();

-- The person key (GATEWAY_PERSON_SECRET) a campaign started with, by a fingerprint that reveals nothing of it
-- (core/person_key.py): the person hashes behind the caps, the feed and the risk rules depend on it, so every
-- gateway and worker refuses to start with another key while the campaign's data exists.
CREATE TABLE person_keys (
    campaign    text PRIMARY KEY,
    fingerprint text NOT NULL,
    since       timestamptz NOT NULL DEFAULT now()
);
