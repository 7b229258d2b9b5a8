-- 008: the alias directory (Raast ID) — who holds which alias (a Pakistani
-- mobile number or a CNIC), for which of its accounts and in whose name, and
-- the history of every change.
--
-- One alias points to one account at a time (the primary key). A participant
-- changes only its own aliases; another's moves to it by a port that the
-- owner releases (alias_release, or alias_deregister while the port waits)
-- or that expires (alias_expire_ports, called by the switch). The switch
-- checks the alias's form (switch/alias.c normalises it) and the strings;
-- the constraints below say the same again, so nothing else can write what
-- the switch would refuse.
--
-- The switch holds the directory in memory (loaded at start, changed after
-- each function below answered) and reaches the tables only through these
-- SECURITY DEFINER functions; the reader reads both tables. alias_audit is
-- append-only: one row per change, with the actor, the holder before and
-- after, and the account and name after.
--
-- Every function answers one row: what happened (outcome) and the alias's
-- state afterwards (participant NULL when it is gone):
--   ok          done (register: also the same registration again)
--   pending     a port waits for its release or expiry
--   moved       the alias moved to the port's participant (previous: from)
--   unknown     no such alias                                   (BE23)
--   taken       registered by another participant               (DUPL)
--   mine        registered by the caller with another account   (DUPL)
--   not_owner   another participant's alias                     (AG01)
--   own         a port of the caller's own alias                (AG01)
--   port_other  a port for another participant already waits    (AG01)
--   no_port     a release with no port waiting                  (AG01)
--
-- Runs as sikka_owner (deploy/migrate.sh).

CREATE TABLE aliases (
    alias              text COLLATE "C" PRIMARY KEY
                       CHECK (alias ~ '^(923[0-9]{9}|[0-9]{13})$'),
    alias_type         text NOT NULL CHECK (alias_type IN ('mobile', 'cnic')),
    participant        text COLLATE "C" NOT NULL REFERENCES participants (code),
    account            text COLLATE "C" NOT NULL
                       CHECK (octet_length(account) BETWEEN 1 AND 34 AND account !~ '[[:cntrl:]]'),
    holder_name        text NOT NULL
                       CHECK (char_length(holder_name) BETWEEN 1 AND 140
                              AND holder_name !~ '[[:cntrl:]]' AND btrim(holder_name) <> ''),
    registered_at      timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    -- a port waiting: to whom, which account and name it will hold, until when
    port_to            text COLLATE "C" REFERENCES participants (code),
    port_account       text COLLATE "C"
                       CHECK (octet_length(port_account) BETWEEN 1 AND 34
                              AND port_account !~ '[[:cntrl:]]'),
    port_name          text CHECK (char_length(port_name) BETWEEN 1 AND 140
                                   AND port_name !~ '[[:cntrl:]]' AND btrim(port_name) <> ''),
    port_requested_at  timestamptz,
    port_expires_at    timestamptz,
    CHECK ((alias_type = 'mobile') = (length(alias) = 12)),
    CHECK (port_to IS NULL OR port_to <> participant),
    CHECK ((port_to IS NULL) = (port_account IS NULL) AND (port_to IS NULL) = (port_name IS NULL)
           AND (port_to IS NULL) = (port_requested_at IS NULL)
           AND (port_to IS NULL) = (port_expires_at IS NULL))
);
-- the operators' list by participant (GET /api/v1/aliases?participant=)
CREATE INDEX aliases_participant ON aliases (participant, alias);
-- the ports due (alias_expire_ports)
CREATE INDEX aliases_port_due ON aliases (port_expires_at) WHERE port_to IS NOT NULL;

CREATE TABLE alias_audit (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    alias        text COLLATE "C" NOT NULL,
    action       text NOT NULL CHECK (action IN ('register', 'update', 'deregister',
                                                 'port_requested', 'port_released',
                                                 'port_expired')),
    actor        text COLLATE "C",  -- the participant that asked; NULL: the expiry
    previous     text COLLATE "C",  -- holder before (NULL: none)
    participant  text COLLATE "C",  -- holder after (NULL: none)
    account      text,              -- account after (a port request: the port's)
    holder_name  text
);
CREATE INDEX alias_audit_alias ON alias_audit (alias, id);
CREATE TRIGGER alias_audit_append_only BEFORE UPDATE OR DELETE ON alias_audit
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER alias_audit_no_truncate BEFORE TRUNCATE ON alias_audit
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The answer row of every function below: the outcome and the alias's state.
CREATE FUNCTION alias_answer(p_alias text, p_outcome text, p_previous text)
RETURNS TABLE (outcome text, participant text, account text, holder_name text, port_to text,
               port_expires_ms bigint, previous text)
LANGUAGE sql SET search_path = public, pg_temp AS $$
    SELECT p_outcome, a.participant, a.account, a.holder_name, a.port_to,
           (extract(epoch FROM a.port_expires_at) * 1000)::bigint, p_previous
      FROM (SELECT 1) one LEFT JOIN aliases a ON a.alias = p_alias;
$$;

-- Moves a locked alias to its waiting port and audits why.
CREATE FUNCTION alias_move(p_alias text, p_action text, p_actor text)
RETURNS text
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    was text;
    r aliases%ROWTYPE;
BEGIN
    SELECT participant INTO was FROM aliases WHERE alias = p_alias;
    UPDATE aliases
       SET participant = port_to, account = port_account, holder_name = port_name,
           port_to = NULL, port_account = NULL, port_name = NULL, port_requested_at = NULL,
           port_expires_at = NULL, updated_at = now()
     WHERE alias = p_alias AND port_to IS NOT NULL
    RETURNING * INTO r;
    INSERT INTO alias_audit (alias, action, actor, previous, participant, account, holder_name)
    VALUES (p_alias, p_action, p_actor, was, r.participant, r.account, r.holder_name);
    RETURN was;
END
$$;

CREATE FUNCTION alias_register(p_alias text, p_type text, p_participant text, p_account text,
                               p_name text)
RETURNS TABLE (outcome text, participant text, account text, holder_name text, port_to text,
               port_expires_ms bigint, previous text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r aliases%ROWTYPE;
BEGIN
    INSERT INTO aliases (alias, alias_type, participant, account, holder_name)
    VALUES (p_alias, p_type, p_participant, p_account, p_name)
    ON CONFLICT (alias) DO NOTHING;
    IF FOUND THEN
        INSERT INTO alias_audit (alias, action, actor, participant, account, holder_name)
        VALUES (p_alias, 'register', p_participant, p_participant, p_account, p_name);
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'ok', NULL);
        RETURN;
    END IF;
    SELECT * INTO r FROM aliases a WHERE a.alias = p_alias;
    RETURN QUERY SELECT * FROM alias_answer(p_alias,
        CASE WHEN r.participant <> p_participant THEN 'taken'
             WHEN r.account = p_account AND r.holder_name = p_name THEN 'ok'
             ELSE 'mine' END, NULL);
END
$$;

CREATE FUNCTION alias_update(p_alias text, p_participant text, p_account text, p_name text)
RETURNS TABLE (outcome text, participant text, account text, holder_name text, port_to text,
               port_expires_ms bigint, previous text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r aliases%ROWTYPE;
BEGIN
    SELECT * INTO r FROM aliases a WHERE a.alias = p_alias FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'unknown', NULL);
        RETURN;
    END IF;
    IF r.participant <> p_participant THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'not_owner', NULL);
        RETURN;
    END IF;
    UPDATE aliases a SET account = p_account, holder_name = p_name, updated_at = now()
     WHERE a.alias = p_alias;
    INSERT INTO alias_audit (alias, action, actor, previous, participant, account, holder_name)
    VALUES (p_alias, 'update', p_participant, p_participant, p_participant, p_account, p_name);
    RETURN QUERY SELECT * FROM alias_answer(p_alias, 'ok', NULL);
END
$$;

-- The owner removes its alias; with a port waiting, that is its consent:
-- the alias moves.
CREATE FUNCTION alias_deregister(p_alias text, p_participant text)
RETURNS TABLE (outcome text, participant text, account text, holder_name text, port_to text,
               port_expires_ms bigint, previous text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r aliases%ROWTYPE;
    was text;
BEGIN
    SELECT * INTO r FROM aliases a WHERE a.alias = p_alias FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'unknown', NULL);
        RETURN;
    END IF;
    IF r.participant <> p_participant THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'not_owner', NULL);
        RETURN;
    END IF;
    IF r.port_to IS NOT NULL THEN
        was := alias_move(p_alias, 'port_released', p_participant);
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'moved', was);
        RETURN;
    END IF;
    DELETE FROM aliases a WHERE a.alias = p_alias;
    INSERT INTO alias_audit (alias, action, actor, previous)
    VALUES (p_alias, 'deregister', p_participant, p_participant);
    RETURN QUERY SELECT * FROM alias_answer(p_alias, 'ok', p_participant);
END
$$;

-- Another participant asks for the alias, for its account and name; it
-- moves when the owner releases it or at now + p_expiry_s.
CREATE FUNCTION alias_port(p_alias text, p_participant text, p_account text, p_name text,
                           p_expiry_s integer)
RETURNS TABLE (outcome text, participant text, account text, holder_name text, port_to text,
               port_expires_ms bigint, previous text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r aliases%ROWTYPE;
BEGIN
    IF p_expiry_s IS NULL OR p_expiry_s < 1 THEN
        RAISE EXCEPTION 'alias_port: expiry must be at least one second'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT * INTO r FROM aliases a WHERE a.alias = p_alias FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'unknown', NULL);
        RETURN;
    END IF;
    IF r.participant = p_participant THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'own', NULL);
        RETURN;
    END IF;
    IF r.port_to IS NOT NULL AND r.port_to <> p_participant THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'port_other', NULL);
        RETURN;
    END IF;
    -- asking again replaces the caller's own request (and its deadline)
    UPDATE aliases a
       SET port_to = p_participant, port_account = p_account, port_name = p_name,
           port_requested_at = now(), port_expires_at = now() + make_interval(secs => p_expiry_s)
     WHERE a.alias = p_alias;
    INSERT INTO alias_audit (alias, action, actor, previous, participant, account, holder_name)
    VALUES (p_alias, 'port_requested', p_participant, r.participant, r.participant, p_account,
            p_name);
    RETURN QUERY SELECT * FROM alias_answer(p_alias, 'pending', NULL);
END
$$;

-- The owner consents to the waiting port.
CREATE FUNCTION alias_release(p_alias text, p_participant text)
RETURNS TABLE (outcome text, participant text, account text, holder_name text, port_to text,
               port_expires_ms bigint, previous text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    r aliases%ROWTYPE;
    was text;
BEGIN
    SELECT * INTO r FROM aliases a WHERE a.alias = p_alias FOR UPDATE;
    IF NOT FOUND THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'unknown', NULL);
        RETURN;
    END IF;
    IF r.participant <> p_participant THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'not_owner', NULL);
        RETURN;
    END IF;
    IF r.port_to IS NULL THEN
        RETURN QUERY SELECT * FROM alias_answer(p_alias, 'no_port', NULL);
        RETURN;
    END IF;
    was := alias_move(p_alias, 'port_released', p_participant);
    RETURN QUERY SELECT * FROM alias_answer(p_alias, 'moved', was);
END
$$;

-- Ports past their deadline move (at most p_limit a call); one row per
-- alias moved, with the alias.
CREATE FUNCTION alias_expire_ports(p_limit integer)
RETURNS TABLE (alias text, outcome text, participant text, account text, holder_name text,
               port_to text, port_expires_ms bigint, previous text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
#variable_conflict use_column
DECLARE
    due text;
    was text;
BEGIN
    FOR due IN SELECT a.alias FROM aliases a
                WHERE a.port_to IS NOT NULL AND a.port_expires_at <= now()
                ORDER BY a.port_expires_at LIMIT greatest(p_limit, 0)
                FOR UPDATE SKIP LOCKED LOOP
        was := alias_move(due, 'port_expired', NULL);
        RETURN QUERY SELECT due, x.* FROM alias_answer(due, 'moved', was) x;
    END LOOP;
END
$$;

-- ---------------------------------------------------------------- privileges

REVOKE ALL ON aliases, alias_audit FROM PUBLIC;
GRANT SELECT ON aliases, alias_audit TO sikka_switch, sikka_reader;

REVOKE EXECUTE ON FUNCTION
    alias_answer(text, text, text),
    alias_move(text, text, text),
    alias_register(text, text, text, text, text),
    alias_update(text, text, text, text),
    alias_deregister(text, text),
    alias_port(text, text, text, text, integer),
    alias_release(text, text),
    alias_expire_ports(integer)
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    alias_register(text, text, text, text, text),
    alias_update(text, text, text, text),
    alias_deregister(text, text),
    alias_port(text, text, text, text, integer),
    alias_release(text, text),
    alias_expire_ports(integer)
    TO sikka_switch;
