-- The archives made of each month (gateway/archive.py, docs/archives.md): where each was written and the SHA-256
-- of its signed manifest, so that `gateway archive detach` finds a month's archive, checks it again, and only
-- then detaches the month's partitions; and `gateway archive drop` drops them once the retention period is over.
CREATE TABLE archives (
    id              bigserial PRIMARY KEY,
    month           date NOT NULL,              -- the month's first day (campaign time zone)
    kind            text NOT NULL CHECK (kind IN ('closed', 'snapshot')),
    path            text NOT NULL,
    manifest_sha256 text NOT NULL,
    made_at         timestamptz NOT NULL,
    made_by         text NOT NULL,
    detached_at     timestamptz,
    dropped_at      timestamptz
);
CREATE INDEX archives_month ON archives (month, id);
