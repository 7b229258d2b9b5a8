-- 006: four-eyes — operators' roles, proposals a second operator approves,
-- and the certificate behind every audited action.
--
-- Roles come from the operator's client certificate (the subject's title:
-- viewer, operator, supervisor; switch/admin.c reads it). The switch passes
-- the operator's name (CN), role and certificate (serial, SHA-256
-- fingerprint) to every function below, and each audit row records them.
--
-- Four-eyes: a cap change (ndc), a settlement (settle), a new participant
-- (participant_add) and resuming a suspended participant (resume) are only
-- proposed by one operator; they take effect when a second one approves.
-- The database holds the rule, not only the switch:
--   * sikka_switch may no longer call the audited functions that make those
--     changes (participant_set_ndc, settle_window, participant_add,
--     participant_set_status); it reaches them only through
--     proposal_approve_<action>(), which marks the proposal approved and
--     makes the change in the same transaction;
--   * an approval (or rejection) is refused unless the proposal is pending,
--     not past expires_at, and decided by someone else: another certificate
--     name AND another certificate (same CN = same person), whose role may
--     propose that action (resume: operator; the rest: supervisor);
--   * a proposal, once decided, never changes again (trigger).
-- Suspending a participant and closing a window stay immediate, for one
-- operator (participant_suspend, close_window).
--
-- A pending proposal past its expires_at shows as 'expired' (proposal_json)
-- and is marked so when the next proposal is made; it can no longer be
-- approved. Audit rows: proposal.create, proposal.approve, proposal.reject,
-- and the action's own row (ndc.set, window.settle, participant.add,
-- participant.resume) carrying the proposal's id.

-- ---------------------------------------------------------------- audit

-- Who, as which role, with which certificate. NULL role and certificate:
-- no operator certificate (the switch's own settlement schedule, or a DBA
-- calling a function by hand); rows from before this migration have none.
ALTER TABLE audit_log
    ADD COLUMN operator_role text
        CHECK (operator_role IN ('viewer', 'operator', 'supervisor')),
    ADD COLUMN cert_serial text CHECK (cert_serial ~ '^-?[0-9A-F]{1,80}$'),
    ADD COLUMN cert_fingerprint text CHECK (cert_fingerprint ~ '^[0-9a-f]{64}$'),
    ADD COLUMN proposal_id bigint,
    ADD CONSTRAINT audit_log_certificate
        CHECK ((operator_role IS NULL) = (cert_fingerprint IS NULL)
               AND (cert_serial IS NULL) = (cert_fingerprint IS NULL));

-- ---------------------------------------------------------------- proposals

CREATE TABLE proposals (
    id                    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    action                text NOT NULL
                          CHECK (action IN ('ndc', 'settle', 'participant_add', 'resume')),
    -- a participant code, or a settlement window's id (settle)
    target                text NOT NULL CHECK (target ~ '^([A-Z]{4}|[0-9]{1,18})$'),
    params                jsonb NOT NULL DEFAULT '{}' CHECK (jsonb_typeof(params) = 'object'),
    proposed_by           text NOT NULL CHECK (length(proposed_by) BETWEEN 1 AND 64),
    proposed_role         text NOT NULL CHECK (proposed_role IN ('operator', 'supervisor')),
    proposed_serial       text NOT NULL CHECK (proposed_serial ~ '^-?[0-9A-F]{1,80}$'),
    proposed_fingerprint  text NOT NULL CHECK (proposed_fingerprint ~ '^[0-9a-f]{64}$'),
    proposed_at           timestamptz NOT NULL DEFAULT now(),
    expires_at            timestamptz NOT NULL,
    state                 text NOT NULL DEFAULT 'pending'
                          CHECK (state IN ('pending', 'approved', 'rejected', 'expired')),
    decided_by            text CHECK (length(decided_by) BETWEEN 1 AND 64),
    decided_role          text CHECK (decided_role IN ('operator', 'supervisor')),
    decided_serial        text CHECK (decided_serial ~ '^-?[0-9A-F]{1,80}$'),
    decided_fingerprint   text CHECK (decided_fingerprint ~ '^[0-9a-f]{64}$'),
    decided_at            timestamptz,
    reason                text CHECK (length(reason) BETWEEN 1 AND 500),
    CHECK (expires_at > proposed_at),
    CHECK ((state = 'pending') = (decided_at IS NULL)),
    -- approved and rejected proposals name their decider; nobody decides
    -- their own (same name or same certificate)
    CHECK ((state IN ('approved', 'rejected')) = (decided_by IS NOT NULL)),
    CHECK ((decided_by IS NULL) = (decided_fingerprint IS NULL)
           AND (decided_by IS NULL) = (decided_role IS NULL)
           AND (decided_by IS NULL) = (decided_serial IS NULL)),
    CHECK (decided_by IS DISTINCT FROM proposed_by),
    CHECK (decided_fingerprint IS DISTINCT FROM proposed_fingerprint)
);
-- one pending proposal per thing to do
CREATE UNIQUE INDEX proposals_one_pending ON proposals (action, target) WHERE state = 'pending';
CREATE INDEX proposals_state ON proposals (state, id);

ALTER TABLE audit_log
    ADD CONSTRAINT audit_log_proposal FOREIGN KEY (proposal_id) REFERENCES proposals (id);

-- A pending proposal may be decided or expire; nothing else of a proposal
-- ever changes, and a decided one not at all.
CREATE FUNCTION proposals_transition() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF OLD.state <> 'pending' THEN
        RAISE EXCEPTION 'proposal % is %: it cannot change any more', OLD.id, OLD.state
            USING ERRCODE = 'check_violation';
    END IF;
    IF (NEW.id, NEW.action, NEW.target, NEW.params, NEW.proposed_by, NEW.proposed_role,
        NEW.proposed_serial, NEW.proposed_fingerprint, NEW.proposed_at, NEW.expires_at)
       IS DISTINCT FROM
       (OLD.id, OLD.action, OLD.target, OLD.params, OLD.proposed_by, OLD.proposed_role,
        OLD.proposed_serial, OLD.proposed_fingerprint, OLD.proposed_at, OLD.expires_at) THEN
        RAISE EXCEPTION 'proposal %: only its decision may be written', OLD.id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER proposals_transition BEFORE UPDATE ON proposals
    FOR EACH ROW EXECUTE FUNCTION proposals_transition();
CREATE TRIGGER proposals_no_delete BEFORE DELETE ON proposals
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER proposals_no_truncate BEFORE TRUNCATE ON proposals
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The role that may propose an action, and approve or reject its proposals.
CREATE FUNCTION proposal_role_needed(p_action text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE p_action
           WHEN 'resume' THEN 'operator'
           WHEN 'ndc' THEN 'supervisor'
           WHEN 'settle' THEN 'supervisor'
           WHEN 'participant_add' THEN 'supervisor'
           END
$$;

-- viewer < operator < supervisor; anything else ranks below them all.
CREATE FUNCTION operator_role_rank(p_role text) RETURNS integer
LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
    SELECT CASE p_role WHEN 'viewer' THEN 1 WHEN 'operator' THEN 2 WHEN 'supervisor' THEN 3
                       ELSE 0 END
$$;

-- A proposal as the API shows it (switch/admin.h); a pending one past its
-- time is 'expired'.
CREATE FUNCTION proposal_json(p proposals) RETURNS jsonb
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT jsonb_build_object(
        'id', p.id, 'action', p.action, 'target', p.target, 'params', p.params,
        'proposed_by', p.proposed_by, 'proposed_role', p.proposed_role,
        'proposed_certificate', jsonb_build_object('serial', p.proposed_serial,
                                                   'fingerprint', p.proposed_fingerprint),
        'proposed_at', p.proposed_at, 'expires_at', p.expires_at,
        'state', CASE WHEN p.state = 'pending' AND now() >= p.expires_at THEN 'expired'
                      ELSE p.state END,
        'needs', proposal_role_needed(p.action),
        'decided_by', p.decided_by, 'decided_role', p.decided_role,
        'decided_certificate', CASE WHEN p.decided_fingerprint IS NOT NULL THEN
            jsonb_build_object('serial', p.decided_serial, 'fingerprint', p.decided_fingerprint)
            END,
        'decided_at', coalesce(p.decided_at,
                               CASE WHEN p.state = 'pending' AND now() >= p.expires_at
                                    THEN p.expires_at END),
        'reason', p.reason)
$$;

-- One audit row (the owner's functions below write them all).
CREATE FUNCTION audit_write(p_operator text, p_role text, p_serial text, p_fingerprint text,
                            p_action text, p_target text, p_before jsonb, p_after jsonb,
                            p_proposal bigint)
RETURNS void
LANGUAGE sql SET search_path = public, pg_temp AS $$
    INSERT INTO audit_log (operator, operator_role, cert_serial, cert_fingerprint, action,
                           target, before, after, proposal_id)
    VALUES (p_operator, p_role, p_serial, p_fingerprint, p_action, p_target, p_before, p_after,
            p_proposal);
$$;

-- The caller's identity is whole and its role at least p_needed (NULL: no
-- role needed, e.g. the switch's own schedule closing a window).
CREATE FUNCTION operator_check(p_operator text, p_role text, p_serial text, p_fingerprint text,
                               p_needed text)
RETURNS void
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    IF p_operator IS NULL OR length(p_operator) NOT BETWEEN 1 AND 64 THEN
        RAISE EXCEPTION 'an operator name of 1 to 64 characters is required'
            USING ERRCODE = 'check_violation';
    END IF;
    IF p_role IS NOT NULL AND (p_serial IS NULL OR p_fingerprint IS NULL) THEN
        RAISE EXCEPTION 'operator %: a role without its certificate''s serial and fingerprint',
            p_operator USING ERRCODE = 'check_violation';
    END IF;
    IF p_needed IS NOT NULL AND operator_role_rank(p_role) < operator_role_rank(p_needed) THEN
        RAISE EXCEPTION 'not permitted: this needs the role %; % has %', p_needed, p_operator,
            coalesce(p_role, 'no role');
    END IF;
END
$$;

-- ---------------------------------------------------------------- audited actions

-- 003's functions, with the operator's role and certificate (and the
-- proposal that led to the change) in their audit rows. The old signatures
-- go: there is one way in.
DROP FUNCTION participant_add(text, text, text, text, bigint);
DROP FUNCTION participant_set_status(text, text, text);
DROP FUNCTION participant_set_ndc(text, text, bigint);
DROP FUNCTION close_window(text);
DROP FUNCTION settle_window(text, bigint);

CREATE FUNCTION participant_add(p_operator text, p_role text, p_serial text,
                                p_fingerprint text, p_code text, p_name text, p_kind text,
                                p_ndc bigint, p_proposal bigint)
RETURNS participants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r participants;
BEGIN
    PERFORM operator_check(p_operator, p_role, p_serial, p_fingerprint, NULL);
    INSERT INTO participants (code, name, kind, ndc) VALUES (p_code, p_name, p_kind, p_ndc)
    RETURNING * INTO r;
    PERFORM audit_write(p_operator, p_role, p_serial, p_fingerprint, 'participant.add', p_code,
                        NULL, to_jsonb(r), p_proposal);
    RETURN r;
END
$$;

CREATE FUNCTION participant_set_status(p_operator text, p_role text, p_serial text,
                                       p_fingerprint text, p_code text, p_status text,
                                       p_proposal bigint)
RETURNS participants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    old participants;
    r participants;
BEGIN
    PERFORM operator_check(p_operator, p_role, p_serial, p_fingerprint, NULL);
    SELECT * INTO old FROM participants WHERE code = p_code FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'participant % does not exist', p_code USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE participants SET status = p_status WHERE code = p_code RETURNING * INTO r;
    PERFORM audit_write(p_operator, p_role, p_serial, p_fingerprint,
                        'participant.' || CASE p_status WHEN 'active' THEN 'resume'
                                                        ELSE 'suspend' END,
                        p_code, jsonb_build_object('status', old.status),
                        jsonb_build_object('status', r.status), p_proposal);
    RETURN r;
END
$$;

CREATE FUNCTION participant_set_ndc(p_operator text, p_role text, p_serial text,
                                    p_fingerprint text, p_code text, p_ndc bigint,
                                    p_proposal bigint)
RETURNS participants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    old participants;
    r participants;
BEGIN
    PERFORM operator_check(p_operator, p_role, p_serial, p_fingerprint, NULL);
    SELECT * INTO old FROM participants WHERE code = p_code FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'participant % does not exist', p_code USING ERRCODE = 'no_data_found';
    END IF;
    UPDATE participants SET ndc = p_ndc WHERE code = p_code RETURNING * INTO r;
    PERFORM audit_write(p_operator, p_role, p_serial, p_fingerprint, 'ndc.set', p_code,
                        jsonb_build_object('ndc', old.ndc), jsonb_build_object('ndc', r.ndc),
                        p_proposal);
    RETURN r;
END
$$;

-- Suspension is immediate: one operator.
CREATE FUNCTION participant_suspend(p_operator text, p_role text, p_serial text,
                                    p_fingerprint text, p_code text)
RETURNS participants
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM operator_check(p_operator, p_role, p_serial, p_fingerprint, 'operator');
    RETURN participant_set_status(p_operator, p_role, p_serial, p_fingerprint, p_code,
                                  'suspended', NULL);
END
$$;

-- 003's close_window, for one operator (or the switch's schedule: no role).
CREATE FUNCTION close_window(p_operator text, p_role text, p_serial text, p_fingerprint text)
RETURNS TABLE (closed_id bigint, opened_id bigint, postings bigint, gross bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    w bigint;
    n bigint;
    g bigint;
    nw bigint;
BEGIN
    PERFORM operator_check(p_operator, p_role, p_serial, p_fingerprint,
                           CASE WHEN p_role IS NOT NULL THEN 'operator' END);
    UPDATE settlement_windows SET state = 'closed', closed_at = now(), closed_by = p_operator
     WHERE state = 'open' RETURNING id INTO w;
    IF w IS NULL THEN
        RAISE EXCEPTION 'no open settlement window' USING ERRCODE = 'no_data_found';
    END IF;
    INSERT INTO settlement_windows DEFAULT VALUES RETURNING id INTO nw;

    INSERT INTO window_positions (window_id, account_id, participant, net, postings)
    SELECT w, a.id, a.participant, coalesce(s.net, 0), coalesce(s.postings, 0)
      FROM accounts a
      LEFT JOIN (SELECT e.account_id, sum(e.amount) AS net,
                        count(DISTINCT e.transfer_id) AS postings
                   FROM ledger_entries e
                  WHERE e.window_id = w AND e.leg <> 'settlement'
                  GROUP BY e.account_id) s ON s.account_id = a.id
     WHERE a.kind IN ('position', 'fee');

    SELECT count(DISTINCT e.transfer_id), coalesce(sum(-e.amount) FILTER (WHERE e.amount < 0), 0)
      INTO n, g
      FROM ledger_entries e WHERE e.window_id = w AND e.leg <> 'settlement';
    UPDATE settlement_windows SET postings = n, gross = g WHERE id = w;

    IF (SELECT sum(net) FROM window_positions WHERE window_id = w) <> 0 THEN
        RAISE EXCEPTION 'window % net report does not sum to zero', w
            USING ERRCODE = 'check_violation';
    END IF;
    PERFORM audit_write(p_operator, p_role, p_serial, p_fingerprint, 'window.close', w::text,
                        jsonb_build_object('state', 'open'),
                        jsonb_build_object('state', 'closed', 'postings', n, 'gross', g,
                                           'opened', nw),
                        NULL);
    RETURN QUERY SELECT w, nw, n, g;
END
$$;

-- 003's settle_window.
CREATE FUNCTION settle_window(p_operator text, p_role text, p_serial text, p_fingerprint text,
                              p_window bigint, p_proposal bigint)
RETURNS TABLE (participant text, account_id bigint, delta bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    st text;
BEGIN
    PERFORM operator_check(p_operator, p_role, p_serial, p_fingerprint, NULL);
    SELECT w.state INTO st FROM settlement_windows w WHERE w.id = p_window FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'settlement window % does not exist', p_window
            USING ERRCODE = 'no_data_found';
    END IF;
    IF st <> 'closed' THEN
        RAISE EXCEPTION 'settlement window % is %, only a closed window can be settled',
            p_window, st USING ERRCODE = 'check_violation';
    END IF;
    INSERT INTO ledger_entries (transfer_id, window_id, account_id, amount, leg)
    SELECT NULL, p_window, x.account_id, x.amount, 'settlement'
      FROM (SELECT wp.account_id, -wp.net AS amount
              FROM window_positions wp WHERE wp.window_id = p_window AND wp.net <> 0
            UNION ALL
            SELECT CASE WHEN wp.participant IS NULL
                        THEN (SELECT a.id FROM accounts a WHERE a.kind = 'scheme_settlement')
                        ELSE (SELECT s.id FROM accounts s
                               WHERE s.participant = wp.participant AND s.kind = 'settlement')
                   END,
                   wp.net
              FROM window_positions wp WHERE wp.window_id = p_window AND wp.net <> 0) x;
    UPDATE settlement_windows SET state = 'settled', settled_at = now(), settled_by = p_operator
     WHERE id = p_window;
    PERFORM audit_write(p_operator, p_role, p_serial, p_fingerprint, 'window.settle',
                        p_window::text, jsonb_build_object('state', 'closed'),
                        jsonb_build_object('state', 'settled'), p_proposal);
    RETURN QUERY
    SELECT wp.participant, wp.account_id, -wp.net
      FROM window_positions wp WHERE wp.window_id = p_window AND wp.net <> 0;
END
$$;

-- ---------------------------------------------------------------- proposing and deciding

-- Proposes `p_action` on `p_target` with `p_params`, to expire in p_ttl_s
-- seconds. The target and the parameters are checked now (and again when
-- the change is made); the parameters are stored normalised:
--   ndc              target CODE, params {"ndc": paisa}
--   resume           target CODE (a suspended participant), params {}
--   participant_add  target CODE (a new one), params {"name", "kind", "ndc"}
--   settle           target a closed window's id, params {}
CREATE FUNCTION proposal_create(p_operator text, p_role text, p_serial text, p_fingerprint text,
                                p_action text, p_target text, p_params jsonb, p_ttl_s integer)
RETURNS proposals
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    needed text := proposal_role_needed(p_action);
    params jsonb := coalesce(p_params, '{}'::jsonb);
    st text;
    other bigint;
    r proposals;
BEGIN
    IF needed IS NULL THEN
        RAISE EXCEPTION 'nothing to propose as "%": ndc, settle, participant_add or resume',
            p_action USING ERRCODE = 'check_violation';
    END IF;
    PERFORM operator_check(p_operator, p_role, p_serial, p_fingerprint, needed);
    IF p_ttl_s IS NULL OR p_ttl_s NOT BETWEEN 1 AND 604800 THEN
        RAISE EXCEPTION 'a proposal lives 1 to 604800 seconds, not %', p_ttl_s
            USING ERRCODE = 'check_violation';
    END IF;
    IF jsonb_typeof(params) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'the parameters must be a JSON object' USING ERRCODE = 'check_violation';
    END IF;
    CASE p_action
    WHEN 'ndc' THEN
        IF jsonb_typeof(params -> 'ndc') IS DISTINCT FROM 'number'
           OR (params ->> 'ndc') !~ '^[0-9]{1,16}$' THEN
            RAISE EXCEPTION 'a cap proposal needs {"ndc": paisa}, an integer >= 0'
                USING ERRCODE = 'check_violation';
        END IF;
        params := jsonb_build_object('ndc', (params ->> 'ndc')::bigint);
        IF NOT EXISTS (SELECT 1 FROM participants WHERE code = p_target) THEN
            RAISE EXCEPTION 'participant % does not exist', p_target
                USING ERRCODE = 'no_data_found';
        END IF;
    WHEN 'resume' THEN
        SELECT status INTO st FROM participants WHERE code = p_target;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'participant % does not exist', p_target
                USING ERRCODE = 'no_data_found';
        END IF;
        IF st = 'active' THEN
            RAISE EXCEPTION 'participant % is active already: nothing to resume', p_target
                USING ERRCODE = 'check_violation';
        END IF;
        params := '{}';
    WHEN 'participant_add' THEN
        IF p_target IS NULL OR p_target !~ '^[A-Z]{4}$' THEN
            RAISE EXCEPTION 'participant code must be 4 uppercase letters (A-Z)'
                USING ERRCODE = 'check_violation';
        END IF;
        IF jsonb_typeof(params -> 'name') IS DISTINCT FROM 'string'
           OR length(params ->> 'name') NOT BETWEEN 1 AND 140
           OR (params ->> 'name') ~ '[[:cntrl:]]'
           OR (params ->> 'kind') IS NULL OR (params ->> 'kind') NOT IN ('wallet', 'bank', 'bnpl')
           OR (params ? 'ndc' AND (jsonb_typeof(params -> 'ndc') IS DISTINCT FROM 'number'
                                   OR (params ->> 'ndc') !~ '^[0-9]{1,16}$')) THEN
            RAISE EXCEPTION 'a new participant needs {"name": 1 to 140 characters, "kind": '
                            'wallet|bank|bnpl, "ndc": paisa >= 0}'
                USING ERRCODE = 'check_violation';
        END IF;
        params := jsonb_build_object('name', params ->> 'name', 'kind', params ->> 'kind',
                                     'ndc', coalesce((params ->> 'ndc')::bigint, 0));
        IF EXISTS (SELECT 1 FROM participants WHERE code = p_target) THEN
            RAISE EXCEPTION 'participant % already exists', p_target
                USING ERRCODE = 'unique_violation';
        END IF;
    WHEN 'settle' THEN
        IF p_target IS NULL OR p_target !~ '^[0-9]{1,18}$' THEN
            RAISE EXCEPTION 'a settlement window id is a positive integer'
                USING ERRCODE = 'check_violation';
        END IF;
        SELECT w.state INTO st FROM settlement_windows w WHERE w.id = p_target::bigint;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'settlement window % does not exist', p_target
                USING ERRCODE = 'no_data_found';
        END IF;
        IF st <> 'closed' THEN
            RAISE EXCEPTION 'settlement window % is %, only a closed window can be settled',
                p_target, st USING ERRCODE = 'check_violation';
        END IF;
        params := '{}';
    END CASE;

    -- proposals past their time give up their place
    UPDATE proposals SET state = 'expired', decided_at = expires_at
     WHERE state = 'pending' AND expires_at <= now();
    SELECT id INTO other FROM proposals
     WHERE action = p_action AND target = p_target AND state = 'pending';
    IF FOUND THEN
        RAISE EXCEPTION 'proposal % (% %) is pending already: approve or reject it',
            other, p_action, p_target USING ERRCODE = 'unique_violation';
    END IF;
    INSERT INTO proposals (action, target, params, proposed_by, proposed_role, proposed_serial,
                           proposed_fingerprint, expires_at)
    VALUES (p_action, p_target, params, p_operator, p_role, p_serial, p_fingerprint,
            now() + make_interval(secs => p_ttl_s))
    RETURNING * INTO r;
    PERFORM audit_write(p_operator, p_role, p_serial, p_fingerprint, 'proposal.create',
                        r.id::text, NULL,
                        jsonb_build_object('action', r.action, 'target', r.target,
                                           'params', r.params, 'expires_at', r.expires_at),
                        r.id);
    RETURN r;
END
$$;

-- Approves (or rejects) proposal p_id, of action p_action when that is not
-- NULL: it must be pending and within its time, and the decider must not
-- be its proposer (by name or certificate) and must hold the role the
-- action needs. Writes the decision and its audit row; the caller makes
-- the change in the same transaction.
CREATE FUNCTION proposal_decide(p_id bigint, p_action text, p_operator text, p_role text,
                                p_serial text, p_fingerprint text, p_approve boolean,
                                p_reason text)
RETURNS proposals
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
DECLARE
    r proposals;
    verb text := CASE WHEN p_approve THEN 'approve' ELSE 'reject' END;
BEGIN
    PERFORM operator_check(p_operator, p_role, p_serial, p_fingerprint, 'operator');
    IF p_reason IS NOT NULL AND (length(p_reason) NOT BETWEEN 1 AND 500
                                 OR p_reason ~ '[[:cntrl:]]') THEN
        RAISE EXCEPTION 'a reason is 1 to 500 characters without control characters'
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT * INTO r FROM proposals WHERE id = p_id FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'proposal % does not exist', p_id USING ERRCODE = 'no_data_found';
    END IF;
    IF p_action IS NOT NULL AND r.action <> p_action THEN
        RAISE EXCEPTION 'proposal % is a % proposal, not %', p_id, r.action, p_action
            USING ERRCODE = 'check_violation';
    END IF;
    IF r.state <> 'pending' THEN
        RAISE EXCEPTION 'proposal % is % already, not pending', p_id, r.state
            USING ERRCODE = 'check_violation';
    END IF;
    IF now() >= r.expires_at THEN
        RAISE EXCEPTION 'proposal % expired at %: it can no longer be decided', p_id, r.expires_at
            USING ERRCODE = 'check_violation';
    END IF;
    IF operator_role_rank(p_role) < operator_role_rank(proposal_role_needed(r.action)) THEN
        RAISE EXCEPTION 'not permitted: proposal % (%) needs the role % to %; % has %', p_id,
            r.action, proposal_role_needed(r.action), verb, p_operator, p_role;
    END IF;
    IF p_operator = r.proposed_by OR p_fingerprint = r.proposed_fingerprint THEN
        RAISE EXCEPTION 'four-eyes: proposal % was made by % (this certificate or name); '
                        'another operator must % it', p_id, r.proposed_by, verb;
    END IF;
    UPDATE proposals
       SET state = CASE WHEN p_approve THEN 'approved' ELSE 'rejected' END,
           decided_by = p_operator, decided_role = p_role, decided_serial = p_serial,
           decided_fingerprint = p_fingerprint, decided_at = now(), reason = p_reason
     WHERE id = p_id
    RETURNING * INTO r;
    PERFORM audit_write(p_operator, p_role, p_serial, p_fingerprint, 'proposal.' || verb,
                        p_id::text, jsonb_build_object('state', 'pending'),
                        jsonb_build_object('state', r.state, 'action', r.action,
                                           'target', r.target, 'reason', r.reason),
                        p_id);
    RETURN r;
END
$$;

CREATE FUNCTION proposal_reject(p_id bigint, p_operator text, p_role text, p_serial text,
                                p_fingerprint text, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    RETURN proposal_json(proposal_decide(p_id, NULL, p_operator, p_role, p_serial,
                                         p_fingerprint, false, p_reason));
END
$$;

-- Approvals: the decision and the change, one transaction. Each returns
-- what the change returns, with the proposal as it now is.

CREATE FUNCTION proposal_approve_ndc(p_id bigint, p_operator text, p_role text, p_serial text,
                                     p_fingerprint text)
RETURNS TABLE (ndc bigint, ndc_grace bigint, proposal jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pr proposals;
    r participants;
BEGIN
    pr := proposal_decide(p_id, 'ndc', p_operator, p_role, p_serial, p_fingerprint, true, NULL);
    SELECT * INTO r FROM participant_set_ndc(p_operator, p_role, p_serial, p_fingerprint,
                                             pr.target, (pr.params ->> 'ndc')::bigint, p_id);
    RETURN QUERY SELECT r.ndc, r.ndc_grace, proposal_json(pr);
END
$$;

CREATE FUNCTION proposal_approve_resume(p_id bigint, p_operator text, p_role text,
                                        p_serial text, p_fingerprint text)
RETURNS TABLE (status text, proposal jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pr proposals;
    r participants;
BEGIN
    pr := proposal_decide(p_id, 'resume', p_operator, p_role, p_serial, p_fingerprint, true,
                          NULL);
    SELECT * INTO r FROM participant_set_status(p_operator, p_role, p_serial, p_fingerprint,
                                                pr.target, 'active', p_id);
    RETURN QUERY SELECT r.status, proposal_json(pr);
END
$$;

CREATE FUNCTION proposal_approve_participant_add(p_id bigint, p_operator text, p_role text,
                                                 p_serial text, p_fingerprint text)
RETURNS TABLE (code text, name text, kind text, status text, ndc bigint,
               position_account bigint, settlement_account bigint, proposal jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pr proposals;
    r participants;
BEGIN
    pr := proposal_decide(p_id, 'participant_add', p_operator, p_role, p_serial, p_fingerprint,
                          true, NULL);
    SELECT * INTO r FROM participant_add(p_operator, p_role, p_serial, p_fingerprint, pr.target,
                                         pr.params ->> 'name', pr.params ->> 'kind',
                                         (pr.params ->> 'ndc')::bigint, p_id);
    RETURN QUERY
    SELECT r.code, r.name, r.kind, r.status, r.ndc,
           (SELECT a.id FROM accounts a WHERE a.participant = r.code AND a.kind = 'position'),
           (SELECT a.id FROM accounts a WHERE a.participant = r.code AND a.kind = 'settlement'),
           proposal_json(pr);
END
$$;

-- Rows as settle_window's, each with the proposal; one row with NULL
-- account_id when the window had nothing to settle.
CREATE FUNCTION proposal_approve_settle(p_id bigint, p_operator text, p_role text, p_serial text,
                                        p_fingerprint text)
RETURNS TABLE (participant text, account_id bigint, delta bigint, proposal jsonb)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    pr proposals;
    j jsonb;
BEGIN
    pr := proposal_decide(p_id, 'settle', p_operator, p_role, p_serial, p_fingerprint, true,
                          NULL);
    j := proposal_json(pr);
    RETURN QUERY
    SELECT s.participant, s.account_id, s.delta, j
      FROM settle_window(p_operator, p_role, p_serial, p_fingerprint, pr.target::bigint, p_id) s;
    IF NOT FOUND THEN
        RETURN QUERY SELECT NULL::text, NULL::bigint, NULL::bigint, j;
    END IF;
END
$$;

-- ---------------------------------------------------------------- privileges

REVOKE ALL ON proposals FROM PUBLIC;
GRANT SELECT ON proposals TO sikka_switch, sikka_reader;

REVOKE EXECUTE ON FUNCTION
    proposals_transition(),
    proposal_role_needed(text),
    operator_role_rank(text),
    proposal_json(proposals),
    audit_write(text, text, text, text, text, text, jsonb, jsonb, bigint),
    operator_check(text, text, text, text, text),
    participant_add(text, text, text, text, text, text, text, bigint, bigint),
    participant_set_status(text, text, text, text, text, text, bigint),
    participant_set_ndc(text, text, text, text, text, bigint, bigint),
    participant_suspend(text, text, text, text, text),
    close_window(text, text, text, text),
    settle_window(text, text, text, text, bigint, bigint),
    proposal_create(text, text, text, text, text, text, jsonb, integer),
    proposal_decide(bigint, text, text, text, text, text, boolean, text),
    proposal_reject(bigint, text, text, text, text, text),
    proposal_approve_ndc(bigint, text, text, text, text),
    proposal_approve_resume(bigint, text, text, text, text),
    proposal_approve_participant_add(bigint, text, text, text, text),
    proposal_approve_settle(bigint, text, text, text, text)
    FROM PUBLIC;

-- The switch: immediate actions, proposals and decisions. The changes that
-- need four eyes (participant_add, participant_set_status, participant_set_ndc,
-- settle_window) are the owner's alone, reached through the approvals.
GRANT EXECUTE ON FUNCTION
    participant_suspend(text, text, text, text, text),
    close_window(text, text, text, text),
    proposal_create(text, text, text, text, text, text, jsonb, integer),
    proposal_reject(bigint, text, text, text, text, text),
    proposal_approve_ndc(bigint, text, text, text, text),
    proposal_approve_resume(bigint, text, text, text, text),
    proposal_approve_participant_add(bigint, text, text, text, text),
    proposal_approve_settle(bigint, text, text, text, text)
    TO sikka_switch;
-- reading proposals as the API shows them
GRANT EXECUTE ON FUNCTION proposal_json(proposals), proposal_role_needed(text)
    TO sikka_switch, sikka_reader;
