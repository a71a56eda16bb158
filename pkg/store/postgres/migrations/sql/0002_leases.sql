-- Leader leases: one row per lease name. The holder renews expires_at
-- before it passes; anyone may take a lease whose expires_at has passed.
-- Times come from the database clock, so instances' clocks need not agree.
-- term grows every time the holder changes: a fencing token.
CREATE TABLE atoll_leases (
    name        text PRIMARY KEY,
    holder      text NOT NULL,
    term        bigint NOT NULL,
    acquired_at timestamptz NOT NULL,
    renewed_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL
);
