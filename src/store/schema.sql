-- offboard's shared state in PostgreSQL (docs/postgres.md). Shipped in the binary and applied by
-- `offboard state init`; safe to run again (every statement is idempotent).
--
-- The journal stays the only truth: `events` holds one row per journal event, its `line` the
-- exact canonical JSON line of the local journal.jsonl, `hash`/`prev` its hash chain. Rows are
-- never changed or removed: UPDATE, DELETE and TRUNCATE are refused by triggers (for every role,
-- the owner included) and not granted to the tool's role. A row must extend its departure's chain:
-- seq 0 links to the genesis hash, seq N to the hash of seq N-1, and (departure, seq) is unique,
-- so two writers can never both append event N.

CREATE SCHEMA IF NOT EXISTS offboard;

CREATE TABLE IF NOT EXISTS offboard.departures (
    departure  text PRIMARY KEY CHECK (departure ~ '^[a-z0-9][a-z0-9-]{0,79}$'),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS offboard.events (
    departure  text        NOT NULL REFERENCES offboard.departures (departure),
    seq        bigint      NOT NULL CHECK (seq >= 0),
    ts         text        NOT NULL,
    line       text        NOT NULL,
    hash       text        NOT NULL CHECK (hash ~ '^sha256:[0-9a-f]{64}$'),
    prev       text        NOT NULL CHECK (prev ~ '^sha256:[0-9a-f]{64}$'),
    stored_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (departure, seq)
);

-- Signed evidence revisions: the exact file bytes, their sha256 and the SSHSIG signature. A
-- revision is the one whose sha256 the journal's evidence_written event names (a seal cut off
-- before its event leaves a row no event names; it is never shown as evidence).
CREATE TABLE IF NOT EXISTS offboard.evidence (
    departure  text    NOT NULL REFERENCES offboard.departures (departure),
    revision   integer NOT NULL CHECK (revision >= 1),
    bytes      bytea   NOT NULL,
    sha256     text    NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    signature  text    NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (departure, sha256)
);

-- Who holds a departure (the lock itself is a session advisory lock, released when the holder's
-- connection ends; this row only names the holder for the "busy" message).
CREATE TABLE IF NOT EXISTS offboard.holders (
    departure  text PRIMARY KEY,
    host       text    NOT NULL,
    pid        integer NOT NULL,
    operator   text    NOT NULL,
    since      text    NOT NULL
);

CREATE OR REPLACE FUNCTION offboard.refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'offboard.%: % refused: the journal and its evidence are append-only',
        TG_TABLE_NAME, TG_OP USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE OR REPLACE FUNCTION offboard.check_link() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    before_hash text;
BEGIN
    IF NEW.seq = 0 THEN
        IF NEW.prev <> 'sha256:0000000000000000000000000000000000000000000000000000000000000000' THEN
            RAISE EXCEPTION 'offboard.events: event 0 of % must link to the genesis hash',
                NEW.departure USING ERRCODE = 'check_violation';
        END IF;
    ELSE
        SELECT hash INTO before_hash FROM offboard.events
            WHERE departure = NEW.departure AND seq = NEW.seq - 1;
        IF before_hash IS NULL OR before_hash <> NEW.prev THEN
            RAISE EXCEPTION 'offboard.events: event % of % does not extend its chain',
                NEW.seq, NEW.departure USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

DROP TRIGGER IF EXISTS events_append_only ON offboard.events;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON offboard.events
    FOR EACH ROW EXECUTE FUNCTION offboard.refuse_change();
DROP TRIGGER IF EXISTS events_no_truncate ON offboard.events;
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON offboard.events
    FOR EACH STATEMENT EXECUTE FUNCTION offboard.refuse_change();
DROP TRIGGER IF EXISTS events_extend_chain ON offboard.events;
CREATE TRIGGER events_extend_chain BEFORE INSERT ON offboard.events
    FOR EACH ROW EXECUTE FUNCTION offboard.check_link();
DROP TRIGGER IF EXISTS evidence_append_only ON offboard.evidence;
CREATE TRIGGER evidence_append_only BEFORE UPDATE OR DELETE ON offboard.evidence
    FOR EACH ROW EXECUTE FUNCTION offboard.refuse_change();
DROP TRIGGER IF EXISTS evidence_no_truncate ON offboard.evidence;
CREATE TRIGGER evidence_no_truncate BEFORE TRUNCATE ON offboard.evidence
    FOR EACH STATEMENT EXECUTE FUNCTION offboard.refuse_change();
DROP TRIGGER IF EXISTS departures_append_only ON offboard.departures;
CREATE TRIGGER departures_append_only BEFORE UPDATE OR DELETE ON offboard.departures
    FOR EACH ROW EXECUTE FUNCTION offboard.refuse_change();

-- Roles (NOLOGIN groups: grant them to the login roles people and runners use).
--   offboard_tool     what `offboard` itself needs: append and read; never change or remove.
--   offboard_auditor  read only.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'offboard_tool') THEN
        CREATE ROLE offboard_tool NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'offboard_auditor') THEN
        CREATE ROLE offboard_auditor NOLOGIN;
    END IF;
END;
$$;

REVOKE ALL ON ALL TABLES IN SCHEMA offboard FROM PUBLIC;
GRANT USAGE ON SCHEMA offboard TO offboard_tool, offboard_auditor;
GRANT SELECT, INSERT ON offboard.departures, offboard.events, offboard.evidence TO offboard_tool;
REVOKE UPDATE, DELETE, TRUNCATE ON offboard.departures, offboard.events, offboard.evidence
    FROM offboard_tool;
GRANT SELECT, INSERT, UPDATE, DELETE ON offboard.holders TO offboard_tool;
GRANT SELECT ON offboard.departures, offboard.events, offboard.evidence, offboard.holders
    TO offboard_auditor;
