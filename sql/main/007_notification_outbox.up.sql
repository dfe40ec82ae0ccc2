-- Line main, version 7: a notification outbox table (used by River's SQLite
-- driver; created but unused on PostgreSQL), removal of the unused client
-- tables, and two new column defaults.

CREATE TABLE {{schema}}river_notification (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    payload text NOT NULL,
    topic text NOT NULL,
    -- length(), not char_length(): same result, different catalog text.
    CONSTRAINT topic_length CHECK (length(topic) > 0 AND length(topic) < 128)
);

CREATE INDEX river_notification_created_at_idx
    ON {{schema}}river_notification (created_at);
CREATE INDEX river_notification_topic_id_idx
    ON {{schema}}river_notification (topic, id);

-- (River's version 7 also converts JSON columns to jsonb on SQLite; on
-- PostgreSQL they have been jsonb from the start.)

DROP TABLE {{schema}}river_client_queue;
DROP TABLE {{schema}}river_client;

ALTER TABLE {{schema}}river_job ALTER COLUMN max_attempts SET DEFAULT 25;

-- CURRENT_TIMESTAMP, not now(): the same value, but the catalog keeps the
-- spelling.
ALTER TABLE {{schema}}river_queue
    ALTER COLUMN updated_at SET DEFAULT CURRENT_TIMESTAMP;
