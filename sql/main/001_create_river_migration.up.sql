-- Line main, version 1: the bookkeeping table.
--
-- River's first layout of river_migration: a surrogate id and one row per
-- applied version. Version 5 replaces it with a table keyed by
-- (line, version); the runner writes version rows 1..4 into this shape.
--
-- {{schema}} is replaced by the quoted target schema and a dot ("name".), or
-- by nothing when no schema was given (objects land in current_schema()).

CREATE TABLE {{schema}}river_migration (
    id bigserial PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now(),
    version bigint NOT NULL,
    CONSTRAINT version CHECK (version >= 1)
);

-- Left unnamed on purpose: PostgreSQL calls it river_migration_version_idx,
-- which is the name River's databases carry.
CREATE UNIQUE INDEX ON {{schema}}river_migration (version);
