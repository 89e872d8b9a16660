-- Last part of the install script: no aos_cus function is callable by PUBLIC except
-- current_tenant(); each part above granted what README (Security model, Roles) gives the aos_cus_* roles.
-- What spans every tenant belongs to aos_cus_operator, not to the tenant roles the parts above granted it
-- to: key rotation and the keyring's status, enforcement statistics.
REVOKE EXECUTE ON FUNCTION aos_cus.rotate_encryption_key(), aos_cus.rotate_encryption_key_batch(integer),
    aos_cus.keyring_status() FROM aos_cus_admin;
GRANT EXECUTE ON FUNCTION aos_cus.rotate_encryption_key(), aos_cus.rotate_encryption_key_batch(integer),
    aos_cus.keyring_status() TO aos_cus_operator;
REVOKE EXECUTE ON FUNCTION aos_cus.stat_decisions(), aos_cus.stat_enforcement() FROM aos_cus_admin, aos_cus_reader;
GRANT EXECUTE ON FUNCTION aos_cus.stat_decisions(), aos_cus.stat_enforcement() TO aos_cus_operator;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA aos_cus, aos_cus_internal FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.current_tenant() TO PUBLIC;
-- cus_llm_usage's row check runs as the role that writes the row.
GRANT EXECUTE ON FUNCTION aos_cus_internal.usage_row_check(text, text, text, text, text, integer, jsonb, jsonb,
    aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count, aos_cus.token_count,
    aos_cus.token_count, aos_cus.token_count, aos_cus.token_count)
    TO aos_cus_admin, aos_cus_app;
