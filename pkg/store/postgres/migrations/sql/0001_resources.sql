-- Resources of every type in one table. Text columns use the "C" collation
-- so ORDER BY mesh, name is byte order whatever the database locale, the
-- same order as the memory store.
CREATE SEQUENCE atoll_resource_version;

CREATE TABLE atoll_resources (
    type              text COLLATE "C" NOT NULL,
    mesh              text COLLATE "C" NOT NULL DEFAULT '',
    name              text COLLATE "C" NOT NULL,
    version           bigint NOT NULL,
    spec              jsonb NOT NULL,
    status            jsonb,
    labels            jsonb NOT NULL DEFAULT '{}',
    creation_time     timestamptz NOT NULL,
    modification_time timestamptz NOT NULL,
    PRIMARY KEY (type, mesh, name)
);

-- The primary key serves List by type (all meshes or one) in mesh, name
-- order; this one serves deleting a mesh with its contents.
CREATE INDEX atoll_resources_mesh ON atoll_resources (mesh);
-- Label filters: labels @> '{"k":"v"}'.
CREATE INDEX atoll_resources_labels ON atoll_resources USING gin (labels jsonb_path_ops);

-- Every committed change is announced on the channel atoll_resource_changes
-- with a small JSON payload: k (C/U/D), t (type), m (mesh), n (name) and v
-- (version, absent for D). NOTIFY is transactional: nothing is sent for a
-- rolled-back write, and a transaction's notifications arrive in order.
-- Statement-level triggers announce the rows of one statement in type,
-- mesh, name order (deleting a mesh's contents gives a stable order).
CREATE FUNCTION atoll_notify_resource_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('atoll_resource_changes',
            json_build_object('k', 'D', 't', o.type, 'm', o.mesh, 'n', o.name)::text)
        FROM (SELECT type, mesh, name FROM old_rows ORDER BY type, mesh, name) AS o;
    ELSE
        PERFORM pg_notify('atoll_resource_changes',
            json_build_object('k', CASE TG_OP WHEN 'INSERT' THEN 'C' ELSE 'U' END,
                              't', n.type, 'm', n.mesh, 'n', n.name, 'v', n.version::text)::text)
        FROM (SELECT type, mesh, name, version FROM new_rows ORDER BY type, mesh, name) AS n;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER atoll_resources_notify_insert
    AFTER INSERT ON atoll_resources REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION atoll_notify_resource_change();
CREATE TRIGGER atoll_resources_notify_update
    AFTER UPDATE ON atoll_resources REFERENCING NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION atoll_notify_resource_change();
CREATE TRIGGER atoll_resources_notify_delete
    AFTER DELETE ON atoll_resources REFERENCING OLD TABLE AS old_rows
    FOR EACH STATEMENT EXECUTE FUNCTION atoll_notify_resource_change();
