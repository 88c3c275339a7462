-- The durable copy of each session: read on a memcached miss or outage and used to refill memcached.
CREATE TABLE session_shared.sessions (
    id          text        PRIMARY KEY,
    data        bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_access timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
-- The purge walks expired rows by their last access and by their age.
CREATE INDEX sessions_last_access_idx ON session_shared.sessions (last_access);
CREATE INDEX sessions_created_at_idx ON session_shared.sessions (created_at);
