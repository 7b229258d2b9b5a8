-- 012: a proposer may withdraw their own proposal, and a proposal's expiry
-- is in the audit trail.
--
-- Withdrawal: proposal_withdraw() takes back a pending proposal that has not
-- expired, for its proposer only (the same operator name; a renewed
-- certificate of the same person may withdraw). The proposal ends in state
-- 'withdrawn' (decided_at set, no decider: nobody else decided it) and the
-- audit row 'proposal.withdraw' names who withdrew it, with which
-- certificate. Nothing else changes: withdrawing never makes a change.
--
-- Expiry: a pending proposal past its expires_at becomes 'expired' when the
-- switch sweeps (proposal_expire_due(), every few seconds) or when the next
-- proposal is made (006's proposal_create); either way a trigger writes the
-- audit row 'proposal.expire' for it, so the trail shows how every proposal
-- ended. The expiry's operator is "scheme" (no certificate: the rule, not a
-- person, ended it).

ALTER TABLE proposals DROP CONSTRAINT proposals_state_check;
ALTER TABLE proposals ADD CONSTRAINT proposals_state_check
    CHECK (state IN ('pending', 'approved', 'rejected', 'expired', 'withdrawn'));

CREATE FUNCTION proposal_withdraw(p_id bigint, p_operator text, p_role text, p_serial text,
                                  p_fingerprint text, p_reason text)
RETURNS jsonb
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    r proposals;
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
    IF r.state <> 'pending' THEN
        RAISE EXCEPTION 'proposal % is % already, not pending', p_id, r.state
            USING ERRCODE = 'check_violation';
    END IF;
    IF now() >= r.expires_at THEN
        RAISE EXCEPTION 'proposal % expired at %: there is nothing to withdraw', p_id,
            r.expires_at USING ERRCODE = 'check_violation';
    END IF;
    IF p_operator <> r.proposed_by THEN
        RAISE EXCEPTION 'not permitted: only % who proposed it may withdraw proposal % '
                        '(others reject it)', r.proposed_by, p_id;
    END IF;
    UPDATE proposals SET state = 'withdrawn', decided_at = now(), reason = p_reason
     WHERE id = p_id
    RETURNING * INTO r;
    PERFORM audit_write(p_operator, p_role, p_serial, p_fingerprint, 'proposal.withdraw',
                        p_id::text, jsonb_build_object('state', 'pending'),
                        jsonb_build_object('state', r.state, 'action', r.action,
                                           'target', r.target, 'reason', r.reason),
                        p_id);
    RETURN proposal_json(r);
END
$$;

-- Every pending proposal past its time, marked expired (the trigger below
-- audits each). Returns how many.
CREATE FUNCTION proposal_expire_due()
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    n integer;
BEGIN
    UPDATE proposals SET state = 'expired', decided_at = expires_at
     WHERE state = 'pending' AND expires_at <= now();
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END
$$;

CREATE FUNCTION proposals_audit_expiry() RETURNS trigger
LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    PERFORM audit_write('scheme', NULL, NULL, NULL, 'proposal.expire', NEW.id::text,
                        jsonb_build_object('state', 'pending'),
                        jsonb_build_object('state', 'expired', 'action', NEW.action,
                                           'target', NEW.target, 'proposed_by', NEW.proposed_by,
                                           'expires_at', NEW.expires_at),
                        NEW.id);
    RETURN NULL;
END
$$;
CREATE TRIGGER proposals_audit_expiry AFTER UPDATE ON proposals
    FOR EACH ROW WHEN (OLD.state = 'pending' AND NEW.state = 'expired')
    EXECUTE FUNCTION proposals_audit_expiry();

REVOKE EXECUTE ON FUNCTION
    proposal_withdraw(bigint, text, text, text, text, text),
    proposal_expire_due(),
    proposals_audit_expiry()
    FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    proposal_withdraw(bigint, text, text, text, text, text),
    proposal_expire_due()
    TO sikka_switch;
