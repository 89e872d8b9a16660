-- Last part of the install script: no aos_cus function is callable by PUBLIC except
-- current_tenant(); each part above granted what SPEC 9 gives the aos_cus_* roles.
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA aos_cus FROM PUBLIC;
GRANT EXECUTE ON FUNCTION aos_cus.current_tenant() TO PUBLIC;
