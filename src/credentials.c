/*
 * credentials.c: the credential vault.
 *
 * The keyring (aos_cus.keyring_file, lines "<version>:<64 hex>") is read once
 * by the postmaster in _PG_init into private anonymous memory excluded from
 * core dumps; backends inherit it by fork. It never reaches shared memory,
 * SQL results or the log, and every process that used it zeroes it (and its
 * derived keys) on exit. Per-tenant data keys are HKDF-SHA256 of the version's
 * key and the tenant id, cached per backend. Credentials are sealed with
 * AES-256-GCM (random 96-bit nonce, AAD = version, tenant id, integration id)
 * into encrypted://v1/<version>/<base64url>.
 *
 * Each version's key check value (its fingerprint, an HMAC of a fixed label)
 * is recorded in aos_cus.cus_keyring_versions the first time the version
 * encrypts. A backend compares the loaded keys with it at first use and
 * before every encryption: a different key under a known version (55000)
 * never encrypts, and decryption failures under it say "wrong key".
 *
 * Statements that hand a secret to this module may carry it in their text or
 * bind parameters, so an emit_log_hook hides the statement text
 * (log_min_error_statement), CONTEXT (bind parameters, PL/pgSQL statements),
 * internal query and log-only detail of any message raised while such a
 * statement runs, and replaces its server-only lines (log_statement,
 * log_min_duration_statement, debug_print_*, auto_explain). pg_stat_statements
 * keeps the text of utility statements verbatim, so a plaintext key written in
 * the text of one (DO, EXPLAIN, CALL, COPY, EXECUTE, CREATE TABLE AS, ...) is
 * refused: a ProcessUtility_hook keeps the texts of the running ones.
 */
#include "aos_cus.h"
#include "credential_crypto.h"
#include "credential_ref.h"
#include "credentials.h"
#include "integrations.h"
#include "spi_safe.h"
#include "stats.h"
#include "tenancy.h"
#include "uuid_text.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "tcop/tcopprot.h"
#include "tcop/utility.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

/* Largest keyring file read. */
#define KEYRING_FILE_MAX 65536
/* Derived tenant keys cached per backend (open addressing; wiped when full). */
#define TENANT_KEY_SLOTS 1024

typedef struct TenantKey
{
	bool		used;
	uint32_t	version;
	uint8_t		tenant[UUID_LEN];
	AosGcmKey	key;			/* OpenSSL contexts; the derived bytes are wiped once loaded */
} TenantKey;

/* All key material of a process, in one mapping excluded from core dumps. */
typedef struct KeyMaterial
{
	AosKeyring	keyring;
	int			cached;
	TenantKey	tenant_keys[TENANT_KEY_SLOTS];
} KeyMaterial;

static KeyMaterial *keys = NULL;
static bool keyring_loaded = false;
static char keyring_error[512] = "the keyring was not loaded";
static pid_t wipe_registered_pid = 0;

/* The loaded keys were compared with the recorded fingerprints in this backend (first use). */
static bool keyring_compared = false;
static SPIPlanPtr fingerprint_plan = NULL;
static SPIPlanPtr record_plan = NULL;

static char *keyring_file = NULL;
static int	active_key_version = 0;
static char *env_credential_prefix = NULL;

/* Statement start of the statement that last handed this backend a secret. */
static TimestampTz secret_statement_start = 0;
static emit_log_hook_type prev_emit_log_hook = NULL;
/* Utility statements running in this backend, outermost first, with the text pg_stat_statements keeps of each. */
#define UTILITY_STACK 32
typedef struct UtilityText
{
	const char *text;			/* NUL-terminated */
	size_t		len;
	const char *command;
} UtilityText;
static UtilityText utility_stack[UTILITY_STACK];
static int	utility_depth = 0;
static ProcessUtility_hook_type prev_process_utility = NULL;

PG_FUNCTION_INFO_V1(aos_cus_encrypt_credential);
PG_FUNCTION_INFO_V1(aos_cus_decrypt_credential);
PG_FUNCTION_INFO_V1(aos_cus_validate_credential_format);
PG_FUNCTION_INFO_V1(aos_cus_check_credential_ref);
PG_FUNCTION_INFO_V1(aos_cus_credential_reference);
PG_FUNCTION_INFO_V1(aos_cus_resolve_credential_sql);
PG_FUNCTION_INFO_V1(aos_cus_rotate_encryption_key);
PG_FUNCTION_INFO_V1(aos_cus_rotate_encryption_key_batch);
PG_FUNCTION_INFO_V1(aos_cus_keyring_status);
PG_FUNCTION_INFO_V1(aos_cus_allow_credential_source);
PG_FUNCTION_INFO_V1(aos_cus_revoke_credential_source);

/* Remember that the running statement carries a secret, so no log line quotes it. */
static void
mark_statement_secret(void)
{
	secret_statement_start = GetCurrentStatementStartTimestamp();
}

/* True when the statement text calls a function that takes a credential or names the credential column. */
static bool
calls_secret_function(const char *query)
{
	static const char *const names[] = {
		"encrypt_credential", "rotate_credential", "create_integration",
		"validate_credential_format", "credential_ref", "create_webhook"
	};

	for (const char *p = query; *p != '\0'; p++)
		for (size_t i = 0; i < lengthof(names); i++)
			if (pg_strncasecmp(p, names[i], strlen(names[i])) == 0)
				return true;
	return false;
}

/*
 * emit_log_hook: for a statement that handed this module a secret, that calls
 * a secret-taking function (even one that failed before it ran, such as on a
 * malformed uuid literal), or whose text holds something shaped like a
 * provider key, hide everything that may quote its text or parameters; and
 * replace any server-only line that itself names such a function or holds
 * such a key.
 */
static void
hide_secret_statements(ErrorData *edata)
{
	/* A portal dropped at Sync logs (auto_explain) with no statement set: its message quotes the query. */
	if ((debug_query_string != NULL &&
		 (secret_statement_start == GetCurrentStatementStartTimestamp() ||
		  calls_secret_function(debug_query_string) ||
		  aos_cus_contains_plaintext_key(debug_query_string, strlen(debug_query_string)))) ||
		(edata->elevel <= LOG_SERVER_ONLY && edata->message != NULL &&
		 (calls_secret_function(edata->message) ||
		  aos_cus_contains_plaintext_key(edata->message, strlen(edata->message)))))
	{
		edata->hide_stmt = true;
		/* CONTEXT holds bind parameters (log_parameter_max_length_on_error) and PL/pgSQL statement texts. */
		edata->hide_ctx = true;
		edata->context = NULL;
		edata->internalquery = NULL;
		edata->internalpos = 0;
		edata->detail_log = NULL;
		/* Server-only lines quote the statement, its parameters or its plan (debug_print_*, auto_explain). */
		if (edata->elevel <= LOG_SERVER_ONLY)
		{
			edata->message = pstrdup("statement hidden by aos_cus: it carries a credential");
			edata->detail = NULL;
		}
	}
	if (prev_emit_log_hook)
		prev_emit_log_hook(edata);
}

/* ProcessUtility_hook: remember the text of each utility statement while it runs. */
static void
track_utility(PlannedStmt *pstmt, const char *queryString, bool readOnlyTree, ProcessUtilityContext context,
			  ParamListInfo params, QueryEnvironment *queryEnv, DestReceiver *dest, QueryCompletion *qc)
{
	if (utility_depth < UTILITY_STACK)
	{
		UtilityText *u = &utility_stack[utility_depth];

		u->text = queryString != NULL ? queryString + Max(pstmt->stmt_location, 0) : "";
		u->len = pstmt->stmt_len > 0 ? (size_t) pstmt->stmt_len : strlen(u->text);
		u->command = CreateCommandName(pstmt->utilityStmt);
	}
	utility_depth++;
	PG_TRY();
	{
		if (prev_process_utility)
			prev_process_utility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
		else
			standard_ProcessUtility(pstmt, queryString, readOnlyTree, context, params, queryEnv, dest, qc);
	}
	PG_FINALLY();
	{
		utility_depth--;
	}
	PG_END_TRY();
}

/*
 * 0A000 when the key is written in the text of a running utility statement
 * (DO, EXPLAIN, CALL, COPY, CREATE TABLE AS, ...): pg_stat_statements keeps
 * that text verbatim. Keys from data or bind parameters are not in it.
 */
static void
refuse_key_in_utility_text(const char *key, size_t keylen, const char *argname)
{
	for (int i = 0; i < Min(utility_depth, UTILITY_STACK); i++)
	{
		const UtilityText *u = &utility_stack[i];

		for (size_t at = 0; keylen > 0 && at + keylen <= u->len; at++)
			if (memcmp(u->text + at, key, keylen) == 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("%s must not be written in the text of the %s statement", argname, u->command),
						 errdetail("pg_stat_statements and other tools keep the text of utility statements verbatim."),
						 errhint("Pass the key in a plain SELECT, preferably as a bind parameter.")));
	}
}

/* Free (and so wipe) every cached tenant key. */
static void
forget_tenant_keys(void)
{
	for (int i = 0; i < TENANT_KEY_SLOTS; i++)
		if (keys->tenant_keys[i].used)
			aos_cus_gcm_key_free(&keys->tenant_keys[i].key);
	aos_cus_secure_zero(keys->tenant_keys, sizeof(keys->tenant_keys));
	keys->cached = 0;
}

/* on_proc_exit: zero the keyring and every derived key of this process. */
static void
wipe_key_material(int code, Datum arg)
{
	if (keys == NULL)
		return;
	forget_tenant_keys();
	aos_cus_secure_zero(keys, sizeof(KeyMaterial));
}

/* Make sure this process zeroes its key material when it exits. */
static void
register_wipe(void)
{
	if (wipe_registered_pid != MyProcPid)
	{
		on_proc_exit(wipe_key_material, (Datum) 0);
		wipe_registered_pid = MyProcPid;
	}
}

/* Read and parse the keyring file into keys->keyring; on failure set keyring_error. */
static void
load_keyring(void)
{
	struct stat st;
	char	   *buf;
	ssize_t		n;
	int			fd;
	char		why[256];

	if (keyring_file == NULL || keyring_file[0] == '\0')
	{
		snprintf(keyring_error, sizeof(keyring_error), "aos_cus.keyring_file is not set");
		return;
	}
	fd = open(keyring_file, O_RDONLY | PG_BINARY);
	if (fd < 0)
	{
		snprintf(keyring_error, sizeof(keyring_error), "could not open keyring file \"%s\": %m", keyring_file);
		return;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		snprintf(keyring_error, sizeof(keyring_error), "keyring file \"%s\" is not a regular file", keyring_file);
		close(fd);
		return;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		snprintf(keyring_error, sizeof(keyring_error),
				 "keyring file \"%s\" has group or world access (mode %04o); it must be 0600 or less",
				 keyring_file, (unsigned int) (st.st_mode & 07777));
		close(fd);
		return;
	}
	if (st.st_size > KEYRING_FILE_MAX)
	{
		snprintf(keyring_error, sizeof(keyring_error), "keyring file \"%s\" is larger than %d bytes",
				 keyring_file, KEYRING_FILE_MAX);
		close(fd);
		return;
	}
	buf = malloc(KEYRING_FILE_MAX);
	if (buf == NULL)
	{
		snprintf(keyring_error, sizeof(keyring_error), "out of memory reading the keyring file");
		close(fd);
		return;
	}
	n = read(fd, buf, KEYRING_FILE_MAX);
	close(fd);
	if (n < 0)
		snprintf(keyring_error, sizeof(keyring_error), "could not read keyring file \"%s\": %m", keyring_file);
	else if (!aos_cus_keyring_parse(buf, (size_t) n, &keys->keyring, why, sizeof(why)))
		snprintf(keyring_error, sizeof(keyring_error), "keyring file \"%s\" is invalid: %s", keyring_file, why);
	else
		keyring_loaded = true;
	aos_cus_secure_zero(buf, KEYRING_FILE_MAX);
	free(buf);
}

/* Postmaster start: map private memory for key material and load the keyring once. */
static void
keyring_startup(void)
{
	void	   *mem = mmap(NULL, sizeof(KeyMaterial), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (mem == MAP_FAILED)
	{
		snprintf(keyring_error, sizeof(keyring_error), "could not map memory for the keyring: %m");
		ereport(WARNING, (errmsg("aos_cus: %s", keyring_error)));
		return;
	}
#ifdef MADV_DONTDUMP
	(void) madvise(mem, sizeof(KeyMaterial), MADV_DONTDUMP);
#endif
	keys = mem;
	register_wipe();
	load_keyring();
	if (keyring_loaded)
		ereport(LOG,
				(errmsg("aos_cus: keyring \"%s\" loaded with %d key version(s), highest %u",
						keyring_file, keys->keyring.count, aos_cus_keyring_highest(&keys->keyring))));
	else if (keyring_file == NULL || keyring_file[0] == '\0')
		ereport(WARNING,
				(errmsg("aos_cus: keyring not loaded: %s", keyring_error),
				 errhint("Credential encryption and decryption fail until aos_cus.keyring_file is set and the server restarted.")));
	else
		/* A keyring configured but unusable would half-work (every credential failing later): refuse to start. */
		ereport(FATAL,
				(errcode(ERRCODE_CONFIG_FILE_ERROR),
				 errmsg("aos_cus: keyring not loaded: %s", keyring_error),
				 errhint("Make \"%s\" a file owned by the server's user, mode 0600, of lines \"<version>:<64 hex digits>\" "
						 "(as that user: umask 077; printf '1:%%s\\n' \"$(openssl rand -hex 32)\" > FILE), "
						 "or set aos_cus.keyring_file = '' to start without credential encryption.", keyring_file)));
}

/* Register the GUCs; load the keyring when preloaded; hide secret-carrying statements from the log. */
void
aos_cus_credentials_init(void)
{
	/* A PGC_POSTMASTER setting can only be defined while the postmaster loads preload libraries. */
	if (process_shared_preload_libraries_in_progress)
		DefineCustomStringVariable("aos_cus.keyring_file",
								   "File with the credential encryption keys, lines \"<version>:<64 hex>\", mode 0600.",
								   NULL,
								   &keyring_file,
								   "",
								   PGC_POSTMASTER,
								   GUC_SUPERUSER_ONLY,
								   NULL, NULL, NULL);
	DefineCustomIntVariable("aos_cus.active_key_version",
							"Keyring version used for new encryptions (0: the highest).",
							NULL,
							&active_key_version,
							0, 0, (int) AOS_KEY_VERSION_MAX,
							PGC_SIGHUP,
							0,
							NULL, NULL, NULL);
	DefineCustomStringVariable("aos_cus.env_credential_prefix",
							   "env:// credential references may only name variables starting with this prefix.",
							   NULL,
							   &env_credential_prefix,
							   "AOS_CUS_",
							   PGC_SIGHUP,
							   GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);
	prev_emit_log_hook = emit_log_hook;
	emit_log_hook = hide_secret_statements;
	prev_process_utility = ProcessUtility_hook;
	ProcessUtility_hook = track_utility;
	if (process_shared_preload_libraries_in_progress)
		keyring_startup();
}

/* How a loaded key compares with the fingerprint the database recorded for its version. */
typedef enum KeyCheck
{
	KEY_MATCHES,
	KEY_UNRECORDED,
	KEY_WRONG
} KeyCheck;

/*
 * Compare keyring entry i with its version's row in aos_cus.cus_keyring_versions,
 * first inserting the row when record is set, none exists and the transaction
 * may write (then reading it back with a new snapshot, which also sees a row a
 * concurrent first use committed). Elevated SPI: the table is written by the
 * extension only. Without the table (extension not yet updated) nothing is
 * recorded.
 */
static KeyCheck
check_version_key(int i, bool record)
{
	const AosKeyringEntry *e = &keys->keyring.entries[i];
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		args[2];
	char		fp[AOS_FINGERPRINT_LEN + 1];
	char	   *stored = NULL;
	KeyCheck	result;
	AosElevation elevation;
	Oid			ns;

	ns = get_namespace_oid("aos_cus", true);
	if (!OidIsValid(ns) || !OidIsValid(get_relname_relid("cus_keyring_versions", ns)))
		return KEY_UNRECORDED;
	if (!aos_cus_key_fingerprint(e->key, fp))
		elog(ERROR, "could not compute a key fingerprint with OpenSSL");
	args[0] = Int64GetDatum((int64) e->version);
	args[1] = CStringGetTextDatum(fp);
	SPI_connect();
	aos_cus_elevate(&elevation);
	for (int pass = 0; pass < 2 && stored == NULL; pass++)
	{
		if (SPI_execute_plan(aos_cus_keep_plan(&fingerprint_plan,
											   "SELECT fingerprint FROM aos_cus.cus_keyring_versions "
											   "WHERE version OPERATOR(pg_catalog.=) $1",
											   1, types), args, NULL, !record, 1) != SPI_OK_SELECT)
			elog(ERROR, "reading aos_cus.cus_keyring_versions failed");
		if (SPI_processed == 1)
			stored = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
		else if (pass == 0 && record && !XactReadOnly)
		{
			if (SPI_execute_plan(aos_cus_keep_plan(&record_plan,
												   "INSERT INTO aos_cus.cus_keyring_versions (version, fingerprint) "
												   "VALUES ($1, $2) ON CONFLICT DO NOTHING",
												   2, types), args, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "recording a key fingerprint failed");
		}
		else
			break;
	}
	result = stored == NULL ? KEY_UNRECORDED : strcmp(stored, fp) == 0 ? KEY_MATCHES : KEY_WRONG;
	aos_cus_unelevate(&elevation);
	SPI_finish();
	return result;
}

/* The index of a version in the keyring, or -1. */
static int
keyring_index(uint32_t version)
{
	const AosKeyringEntry *e = aos_cus_keyring_find(&keys->keyring, version);

	return e == NULL ? -1 : (int) (e - keys->keyring.entries);
}

/* 55000 unless the keyring is loaded; the message says why it is not. */
static void
require_keyring(void)
{
	aos_cus_require_preload();
	if (!keyring_loaded)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the aos_cus keyring is not available"),
				 errdetail_internal("%s", keyring_error),
				 errhint("Fix aos_cus.keyring_file (lines \"<version>:<64 hex>\", mode 0600) and restart the server.")));
	register_wipe();
	if (!keyring_compared && IsTransactionState())
	{
		keyring_compared = true;
		for (int i = 0; i < keys->keyring.count; i++)
			if (check_version_key(i, false) == KEY_WRONG)
				ereport(WARNING,
						(errmsg("aos_cus: wrong key for version %u in the keyring: it does not match the fingerprint this database recorded",
								keys->keyring.entries[i].version),
						 errhint("Restore the original key of version %u in aos_cus.keyring_file and restart the server.",
								 keys->keyring.entries[i].version)));
	}
}

/* See credentials.h. */
bool
aos_cus_keyring_ready(char *why, size_t len)
{
	if (!keyring_loaded)
	{
		snprintf(why, len, "the aos_cus keyring is not available: %s", keyring_error);
		return false;
	}
	for (int i = 0; i < keys->keyring.count; i++)
		if (check_version_key(i, false) == KEY_WRONG)
		{
			snprintf(why, len, "wrong key for version %u in the aos_cus keyring", keys->keyring.entries[i].version);
			return false;
		}
	return true;
}

/* The version new encryptions use: aos_cus.active_key_version, or the highest. */
static uint32_t
active_version(void)
{
	uint32_t	v = active_key_version > 0 ? (uint32_t) active_key_version : aos_cus_keyring_highest(&keys->keyring);

	if (aos_cus_keyring_find(&keys->keyring, v) == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("aos_cus.active_key_version %u is not in the keyring", v),
				 errhint("Add the version to aos_cus.keyring_file and restart, or set aos_cus.active_key_version to a loaded version.")));
	return v;
}

/* Hash slot of a (version, tenant) pair. */
static int
tenant_key_slot(uint32_t version, const uint8_t *tenant)
{
	uint32_t	h = version * 2654435761u;

	for (int i = 0; i < UUID_LEN; i++)
		h = (h ^ tenant[i]) * 16777619u;
	return (int) (h % TENANT_KEY_SLOTS);
}

/* The tenant's data key for a version (cached); NULL when the version is not in the keyring. */
static const AosGcmKey *
tenant_key(uint32_t version, const pg_uuid_t *tenant)
{
	const AosKeyringEntry *master = aos_cus_keyring_find(&keys->keyring, version);
	int			slot = tenant_key_slot(version, tenant->data);
	TenantKey  *e;

	if (master == NULL)
		return NULL;
	for (int probe = 0; probe < TENANT_KEY_SLOTS; probe++)
	{
		e = &keys->tenant_keys[(slot + probe) % TENANT_KEY_SLOTS];
		if (!e->used)
			break;
		if (e->version == version && memcmp(e->tenant, tenant->data, UUID_LEN) == 0)
			return &e->key;
	}
	/* Keep the table at most half full so probes stay short. */
	if (keys->cached >= TENANT_KEY_SLOTS / 2)
		forget_tenant_keys();
	for (int probe = 0;; probe++)
	{
		e = &keys->tenant_keys[(slot + probe) % TENANT_KEY_SLOTS];
		if (!e->used)
			break;
	}
	{
		uint8_t		derived[AOS_DATA_KEY_LEN];
		bool		ok = aos_cus_derive_tenant_key(master->key, version, tenant->data, derived) &&
			aos_cus_gcm_key_init(&e->key, derived);

		aos_cus_secure_zero(derived, sizeof(derived));
		if (!ok)
			ereport(ERROR,
					(errcode(ERRCODE_INTERNAL_ERROR),
					 errmsg("could not derive a tenant key with OpenSSL")));
	}
	e->used = true;
	e->version = version;
	memcpy(e->tenant, tenant->data, UUID_LEN);
	keys->cached++;
	return &e->key;
}

/* Text form of a UUID for messages. */
static char *
uuid_str(const pg_uuid_t *u)
{
	char	   *s = palloc(AOS_UUID_TEXT_LEN + 1);

	aos_cus_uuid_format(u->data, s);
	return s;
}

/* Seal len bytes of plaintext for (tenant, integration) and return the encrypted:// reference. */
static text *
encrypt_to_ref(const pg_uuid_t *tenant, const pg_uuid_t *integration, const char *plaintext, size_t len)
{
	uint32_t	version;
	uint8_t		aad[AOS_AAD_LEN];
	uint8_t    *env;
	size_t		env_len = aos_cus_envelope_len(len);
	text	   *result;

	require_keyring();
	version = active_version();
	if (check_version_key(keyring_index(version), true) == KEY_WRONG)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("wrong key for version %u in the aos_cus keyring: nothing is encrypted with it", version),
				 errdetail("Its fingerprint differs from the one aos_cus.cus_keyring_versions recorded when version %u was first used.",
						   version),
				 errhint("Restore the original key of version %u in aos_cus.keyring_file and restart the server; a new key needs a new version.",
						 version)));
	aos_cus_credential_aad(version, tenant->data, integration->data, aad);
	env = palloc(env_len);
	if (!aos_cus_gcm_seal(tenant_key(version, tenant), aad, (const uint8_t *) plaintext, len, env))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not encrypt the credential of integration %s with OpenSSL", uuid_str(integration))));
	result = palloc(VARHDRSZ + aos_cus_ref_encrypted_len(version, env_len) + 1);
	aos_cus_ref_format_encrypted(version, env, env_len, VARDATA(result));
	SET_VARSIZE(result, VARHDRSZ + aos_cus_ref_encrypted_len(version, env_len));
	pfree(env);
	aos_cus_stat_add(AOS_STAT_CREDENTIAL_ENCRYPTED, 1);
	return result;
}

/* Why an encrypted reference did not open. */
typedef enum OpenResult
{
	OPEN_OK,
	OPEN_INVALID,				/* malformed, tampered, truncated, moved or not text: the reference's fault */
	OPEN_NO_VERSION,			/* its key version is not in the keyring */
	OPEN_WRONG_KEY				/* the keyring holds another key under its version */
} OpenResult;

/*
 * Open an encrypted reference for (tenant, integration) into *plain (palloc'd,
 * NUL-terminated), without raising for a reference that does not open: *version
 * and *why (a fixed text, never the secret) say what failed. Failures are
 * counted in stat_counters.
 */
static OpenResult
open_ref(const pg_uuid_t *tenant, const pg_uuid_t *integration, const char *ref, size_t ref_len,
		 char **plain, uint32_t *version, const char **why)
{
	AosCredRef	parsed;
	const AosGcmKey *key;
	uint8_t		aad[AOS_AAD_LEN];
	uint8_t    *env;
	char	   *out;
	size_t		env_len,
				plain_len;
	OpenResult	result = OPEN_INVALID;

	require_keyring();
	*version = 0;
	if (aos_cus_ref_parse(ref, ref_len, &parsed, why) != AOS_REF_ENCRYPTED)
	{
		if (parsed.kind != AOS_REF_INVALID)
			*why = "it is not an encrypted:// reference";
		goto failed;
	}
	*version = parsed.version;
	key = tenant_key(parsed.version, tenant);
	if (key == NULL)
	{
		*why = "its key version is not in the keyring";
		result = OPEN_NO_VERSION;
		goto failed;
	}
	env = palloc(parsed.payload_len);
	if (!aos_cus_b64url_decode(parsed.payload, parsed.payload_len, env, &env_len))
	{
		*why = "the payload is not base64url";
		goto failed;
	}
	aos_cus_credential_aad(parsed.version, tenant->data, integration->data, aad);
	out = palloc(env_len + 1);
	if (!aos_cus_gcm_open(key, aad, env, env_len, (uint8_t *) out, &plain_len))
	{
		if (check_version_key(keyring_index(parsed.version), false) == KEY_WRONG)
		{
			*why = "wrong key for its version in the keyring";
			result = OPEN_WRONG_KEY;
		}
		else
			*why = "it does not authenticate for this tenant and integration (tampered, truncated or moved)";
		goto failed;
	}
	out[plain_len] = '\0';
	pfree(env);
	if (strlen(out) != plain_len || pg_verify_mbstr(GetDatabaseEncoding(), out, (int) plain_len, true) == false)
	{
		explicit_bzero(out, plain_len);
		*why = "the plaintext is not valid text in the database encoding";
		goto failed;
	}
	aos_cus_stat_add(AOS_STAT_CREDENTIAL_DECRYPTED, 1);
	*plain = out;
	return OPEN_OK;

failed:
	aos_cus_stat_add(AOS_STAT_CREDENTIAL_DECRYPT_FAILED, 1);
	return result;
}

/*
 * Open an encrypted reference for (tenant, integration) into a palloc'd
 * NUL-terminated plaintext, or raise naming the integration: sqlerrcode for a
 * bad reference, 55000 for a keyring fault. what names the reference.
 */
static char *
decrypt_ref(const pg_uuid_t *tenant, const pg_uuid_t *integration, const char *ref, size_t ref_len,
			int sqlerrcode, const char *what)
{
	char	   *plain = NULL;
	uint32_t	version;
	const char *why;

	switch (open_ref(tenant, integration, ref, ref_len, &plain, &version, &why))
	{
		case OPEN_OK:
			return plain;
		case OPEN_NO_VERSION:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s of integration %s uses key version %u, which is not in the keyring",
							what, uuid_str(integration), version),
					 errhint("Add that version back to aos_cus.keyring_file and restart the server.")));
			break;
		case OPEN_WRONG_KEY:
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("%s of integration %s cannot be decrypted: wrong key for version %u",
							what, uuid_str(integration), version),
					 errdetail("The keyring's key of version %u does not match the fingerprint aos_cus.cus_keyring_versions recorded for it.",
							   version),
					 errhint("Restore the original key of version %u in aos_cus.keyring_file and restart the server.", version)));
			break;
		case OPEN_INVALID:
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("%s of integration %s cannot be decrypted: %s", what, uuid_str(integration), why)));
			break;
	}
	pg_unreachable();
}

/* Seal another secret of the tenant (a webhook's signing secret; owner in the AAD): its encrypted:// reference. */
text *
aos_cus_seal_secret(const pg_uuid_t *tenant, const pg_uuid_t *owner, const char *plaintext, size_t len)
{
	mark_statement_secret();
	return encrypt_to_ref(tenant, owner, plaintext, len);
}

/* Open a secret sealed by aos_cus_seal_secret; 22023 or 55000 naming what, never the secret. */
char *
aos_cus_open_secret(const pg_uuid_t *tenant, const pg_uuid_t *owner, const char *ref, const char *what)
{
	return decrypt_ref(tenant, owner, ref, strlen(ref), ERRCODE_INVALID_PARAMETER_VALUE, what);
}

/* Refuse a plaintext credential written in a utility statement (0A000), or empty, oversized, padded or reference-shaped (22023). */
static void
check_plaintext(const char *s, size_t len, const char *argname)
{
	refuse_key_in_utility_text(s, len, argname);
	if (len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", argname)));
	if (len > AOS_CREDENTIAL_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is longer than %d bytes", argname, AOS_CREDENTIAL_MAX)));
	if (isspace((unsigned char) s[0]) || isspace((unsigned char) s[len - 1]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s has leading or trailing white space", argname),
				 errhint("Trim the key before storing it.")));
	if (strncmp(s, "encrypted://", 12) == 0 || strncmp(s, "vault://", 8) == 0 || strncmp(s, "env://", 6) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s is already a credential reference, not a plaintext key", argname)));
}

/* SQL encrypt_credential(tenant_id, integration_id, plaintext) -> encrypted:// reference. */
Datum
aos_cus_encrypt_credential(PG_FUNCTION_ARGS)
{
	text	   *plain;

	mark_statement_secret();
	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "integration_id");
	aos_cus_require_arg(fcinfo, 2, "plaintext");
	aos_cus_assert_tenant(PG_GETARG_UUID_P(0), "tenant_id");
	plain = PG_GETARG_TEXT_PP(2);
	check_plaintext(VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain), "plaintext");
	PG_RETURN_TEXT_P(encrypt_to_ref(PG_GETARG_UUID_P(0), PG_GETARG_UUID_P(1),
									VARDATA_ANY(plain), VARSIZE_ANY_EXHDR(plain)));
}

/* SQL decrypt_credential(tenant_id, integration_id, ref) -> plaintext. */
Datum
aos_cus_decrypt_credential(PG_FUNCTION_ARGS)
{
	text	   *ref;
	char	   *plain;
	text	   *result;

	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "integration_id");
	aos_cus_require_arg(fcinfo, 2, "ref");
	aos_cus_assert_tenant(PG_GETARG_UUID_P(0), "tenant_id");
	ref = PG_GETARG_TEXT_PP(2);
	plain = decrypt_ref(PG_GETARG_UUID_P(0), PG_GETARG_UUID_P(1), VARDATA_ANY(ref), VARSIZE_ANY_EXHDR(ref),
						ERRCODE_INVALID_PARAMETER_VALUE, "ref");
	result = cstring_to_text(plain);
	explicit_bzero(plain, strlen(plain));
	pfree(plain);
	PG_RETURN_TEXT_P(result);
}

/* Parse a reference or raise errcode naming argname (never quoting the value). */
static AosRefKind
parse_or_raise(const char *ref, size_t len, AosCredRef *parsed, int sqlerrcode, const char *argname)
{
	const char *why;
	AosRefKind	kind = aos_cus_ref_parse(ref, len, parsed, &why);

	if (kind == AOS_REF_INVALID)
	{
		const char *shape = aos_cus_plaintext_key_shape(ref, len);

		mark_statement_secret();
		if (shape != NULL)
			ereport(ERROR,
					(errcode(sqlerrcode),
					 errmsg("%s looks like a plaintext %s API key, not a credential reference", argname, shape),
					 errhint("Store keys with create_integration() or rotate_credential(), which encrypt them.")));
		ereport(ERROR,
				(errcode(sqlerrcode),
				 errmsg("%s is not a valid credential reference: %s", argname, why),
				 errhint("Use encrypted://v1/<version>/<base64url>, vault://<secret name> or env://<VARIABLE>.")));
	}
	return kind;
}

/* SQL validate_credential_format(ref) -> 'encrypted', 'vault' or 'env'; 22023 otherwise. */
Datum
aos_cus_validate_credential_format(PG_FUNCTION_ARGS)
{
	text	   *ref;
	AosCredRef	parsed;

	aos_cus_require_arg(fcinfo, 0, "ref");
	ref = PG_GETARG_TEXT_PP(0);
	PG_RETURN_TEXT_P(cstring_to_text(aos_cus_ref_kind_name(parse_or_raise(VARDATA_ANY(ref), VARSIZE_ANY_EXHDR(ref),
																	  &parsed, ERRCODE_INVALID_PARAMETER_VALUE,
																	  "ref"))));
}

/*
 * CHECK on cus_integrations.credential_ref: true for a reference; otherwise
 * 23514 with a message that never shows the value (a plain CHECK failure
 * would print the whole row, plaintext included).
 */
Datum
aos_cus_check_credential_ref(PG_FUNCTION_ARGS)
{
	text	   *ref = PG_GETARG_TEXT_PP(0);
	AosCredRef	parsed;

	parse_or_raise(VARDATA_ANY(ref), VARSIZE_ANY_EXHDR(ref), &parsed, ERRCODE_CHECK_VIOLATION, "credential_ref");
	PG_RETURN_BOOL(true);
}

/*
 * 42501 unless the platform operator allowed tenant to use the vault:// or
 * env:// reference ref (a row of cus_credential_sources): such references
 * name secrets outside the tenant's own encrypted credentials. The table is
 * read with the current user's rights; tenants see their own rows.
 */
static void
require_source_allowed(const pg_uuid_t *tenant, const char *ref, size_t len)
{
	Oid			argtypes[2] = {UUIDOID, TEXTOID};
	Datum		args[2];
	bool		allowed;

	args[0] = UUIDPGetDatum(tenant);
	args[1] = PointerGetDatum(cstring_to_text_with_len(ref, (int) len));
	SPI_connect();
	if (SPI_execute_with_args("SELECT 1 FROM aos_cus.cus_credential_sources s "
							  "WHERE s.tenant_id OPERATOR(pg_catalog.=) $1 AND s.source OPERATOR(pg_catalog.=) $2",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading aos_cus.cus_credential_sources failed");
	allowed = SPI_processed == 1;
	SPI_finish();
	if (!allowed)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("tenant %s may not use the credential source \"%.*s\"", uuid_str(tenant), (int) len, ref),
				 errhint("The platform operator allows a vault:// or env:// source for a tenant with aos_cus.allow_credential_source().")));
}

/*
 * SQL credential_reference(tenant_id, integration_id, credential) -> (credential_ref,
 * credential_hint): a vault:// or env:// reference the tenant may use is validated and kept as is;
 * anything else is a plaintext key, encrypted with its last four characters as hint.
 */
Datum
aos_cus_credential_reference(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	text	   *cred;
	const char *s;
	size_t		len;
	Datum		values[2];
	bool		nulls[2] = {false, true};

	mark_statement_secret();
	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "integration_id");
	aos_cus_require_arg(fcinfo, 2, "credential");
	aos_cus_assert_tenant(PG_GETARG_UUID_P(0), "tenant_id");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "credential_reference must return a record");
	cred = PG_GETARG_TEXT_PP(2);
	s = VARDATA_ANY(cred);
	len = VARSIZE_ANY_EXHDR(cred);
	if ((len >= 8 && strncmp(s, "vault://", 8) == 0) || (len >= 6 && strncmp(s, "env://", 6) == 0))
	{
		AosCredRef	parsed;

		parse_or_raise(s, len, &parsed, ERRCODE_INVALID_PARAMETER_VALUE, "credential");
		require_source_allowed(PG_GETARG_UUID_P(0), s, len);
		values[0] = PointerGetDatum(cred);
	}
	else
	{
		size_t		hint;

		check_plaintext(s, len, "credential");
		if (pg_verify_mbstr(GetDatabaseEncoding(), s, (int) len, true) == false || memchr(s, '\0', len) != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
					 errmsg("credential is not valid text")));
		values[0] = PointerGetDatum(encrypt_to_ref(PG_GETARG_UUID_P(0), PG_GETARG_UUID_P(1), s, len));
		/* The hint shows four characters only of keys long enough to keep the rest secret. */
		hint = aos_cus_credential_hint_offset(s, len);
		if (pg_mbstrlen_with_len(s, (int) len) >= 16)
		{
			values[1] = PointerGetDatum(cstring_to_text_with_len(s + hint, (int) (len - hint)));
			nulls[1] = false;
		}
	}
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(tupdesc), values, nulls)));
}

/* Value of vault.decrypted_secrets for a secret name (palloc'd), after checking Vault is installed. */
static char *
vault_secret(const char *name, const pg_uuid_t *integration)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	bool		isnull;
	char	   *result;

	if (SPI_execute("SELECT pg_catalog.to_regclass('vault.decrypted_secrets') IS NOT NULL", true, 1) != SPI_OK_SELECT ||
		!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("integration %s uses a vault:// credential, but Supabase Vault is not installed",
						uuid_str(integration)),
				 errhint("CREATE EXTENSION supabase_vault, or store the key with rotate_credential().")));
	args[0] = CStringGetTextDatum(name);
	if (SPI_execute_with_args("SELECT decrypted_secret::pg_catalog.text FROM vault.decrypted_secrets WHERE name OPERATOR(pg_catalog.=) $1",
							  1, argtypes, args, NULL, true, 2) != SPI_OK_SELECT)
		elog(ERROR, "reading vault.decrypted_secrets failed");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("integration %s names vault secret \"%s\", which %s", uuid_str(integration), name,
						SPI_processed == 0 ? "does not exist" : "is not unique")));
	result = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (result == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("vault secret \"%s\" of integration %s has no value", name, uuid_str(integration))));
	return result;
}

/* Value of an env:// variable (palloc'd), allowed only under aos_cus.env_credential_prefix. */
static char *
env_secret(const char *name, const pg_uuid_t *integration)
{
	const char *prefix = env_credential_prefix ? env_credential_prefix : "";
	const char *value;

	if (prefix[0] == '\0' || strncmp(name, prefix, strlen(prefix)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("integration %s names environment variable \"%s\", outside aos_cus.env_credential_prefix \"%s\"",
						uuid_str(integration), name, prefix)));
	value = getenv(name);
	if (value == NULL || value[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("environment variable \"%s\" of integration %s is not set in the server's environment",
						name, uuid_str(integration))));
	return pstrdup(value);
}

/* Resolve an integration's credential to plaintext (see credentials.h). */
char *
aos_cus_resolve_credential(const pg_uuid_t *tenant, const pg_uuid_t *integration)
{
	Oid			argtypes[2] = {UUIDOID, UUIDOID};
	Datum		args[2];
	char	   *status;
	char	   *ref;
	char	   *plain;
	char	   *name;
	AosCredRef	parsed;
	MemoryContext caller = CurrentMemoryContext;

	aos_cus_assert_tenant(tenant, "tenant_id");
	args[0] = UUIDPGetDatum(tenant);
	args[1] = UUIDPGetDatum(integration);
	SPI_connect();
	if (SPI_execute_with_args("SELECT status, credential_ref FROM aos_cus.cus_integrations"
							  " WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
							  2, argtypes, args, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading aos_cus.cus_integrations failed");
	if (SPI_processed == 0)
		aos_cus_integration_missing(integration);
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	ref = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	if (strcmp(status, "deleted") == 0)
		aos_cus_integration_deleted(integration);
	if (ref == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("integration %s has no credential", uuid_str(integration)),
				 errhint("Set one with rotate_credential().")));
	switch (parse_or_raise(ref, strlen(ref), &parsed, ERRCODE_DATA_CORRUPTED, "the stored credential_ref"))
	{
		case AOS_REF_ENCRYPTED:
			plain = decrypt_ref(tenant, integration, ref, strlen(ref), ERRCODE_DATA_CORRUPTED, "the stored credential");
			break;
		case AOS_REF_VAULT:
			require_source_allowed(tenant, ref, strlen(ref));
			name = pnstrdup(parsed.payload, parsed.payload_len);
			plain = vault_secret(name, integration);
			break;
		case AOS_REF_ENV:
			require_source_allowed(tenant, ref, strlen(ref));
			name = pnstrdup(parsed.payload, parsed.payload_len);
			plain = env_secret(name, integration);
			break;
		default:
			elog(ERROR, "unreachable credential kind");
	}
	/* Copy out of SPI memory, wiping the SPI copy. */
	{
		MemoryContext spi = MemoryContextSwitchTo(caller);
		char	   *out = pstrdup(plain);

		MemoryContextSwitchTo(spi);
		explicit_bzero(plain, strlen(plain));
		SPI_finish();
		return out;
	}
}

/* SQL resolve_credential(tenant_id, integration_id) -> plaintext. */
Datum
aos_cus_resolve_credential_sql(PG_FUNCTION_ARGS)
{
	char	   *plain;
	text	   *result;

	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "integration_id");
	plain = aos_cus_resolve_credential(PG_GETARG_UUID_P(0), PG_GETARG_UUID_P(1));
	result = cstring_to_text(plain);
	explicit_bzero(plain, strlen(plain));
	pfree(plain);
	PG_RETURN_TEXT_P(result);
}

/* The vault:// or env:// reference argument 1 of allow/revoke_credential_source, checked (22023 otherwise). */
static text *
source_arg(FunctionCallInfo fcinfo)
{
	text	   *source = PG_GETARG_TEXT_PP(1);
	AosCredRef	parsed;

	if (parse_or_raise(VARDATA_ANY(source), VARSIZE_ANY_EXHDR(source), &parsed,
					   ERRCODE_INVALID_PARAMETER_VALUE, "source") == AOS_REF_ENCRYPTED)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("source must be a vault:// or env:// reference"),
				 errhint("encrypted:// credentials belong to their tenant and need no allowance.")));
	return source;
}

/* Run one INSERT or DELETE on cus_credential_sources for (tenant_id, source); true when it changed a row. */
static bool
change_source(FunctionCallInfo fcinfo, const char *fn, const char *sql)
{
	Oid			argtypes[2] = {UUIDOID, TEXTOID};
	Datum		args[2];
	bool		changed;

	aos_cus_require_arg(fcinfo, 0, "tenant_id");
	aos_cus_require_arg(fcinfo, 1, "source");
	aos_cus_assert_platform(fn);
	args[0] = PG_GETARG_DATUM(0);
	args[1] = PointerGetDatum(source_arg(fcinfo));
	SPI_connect();
	if (SPI_execute_with_args(sql, 2, argtypes, args, NULL, false, 0) < 0)
		elog(ERROR, "changing aos_cus.cus_credential_sources failed");
	changed = SPI_processed == 1;
	SPI_finish();
	return changed;
}

/* SQL allow_credential_source(tenant_id, source) -> true when newly allowed. */
Datum
aos_cus_allow_credential_source(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(change_source(fcinfo, "allow_credential_source()",
								 "INSERT INTO aos_cus.cus_credential_sources (tenant_id, source) VALUES ($1, $2) "
								 "ON CONFLICT DO NOTHING"));
}

/* SQL revoke_credential_source(tenant_id, source) -> true when it was allowed. */
Datum
aos_cus_revoke_credential_source(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(change_source(fcinfo, "revoke_credential_source()",
								 "DELETE FROM aos_cus.cus_credential_sources s "
								 "WHERE s.tenant_id OPERATOR(pg_catalog.=) $1 AND s.source OPERATOR(pg_catalog.=) $2"));
}

/* A column of sealed encrypted:// references, keyed by (tenant_id, id), whose AAD owner is the row's id. */
typedef struct SealedColumn
{
	const char *select_first;	/* candidates from the start: $1 active-version pattern, $2 limit */
	const char *select_after;	/* candidates after ($3, $4) */
	const char *lock;			/* lock one row by ($1, $2) unless rotated since ($3) */
	const char *update;			/* store ($3) for ($1, $2) */
	const char *noun;			/* in the skipped list */
} SealedColumn;

/* What a rotation re-encrypts, in this order: integrations' credentials, then webhooks' signing secrets. */
static const SealedColumn sealed_columns[] = {
	{"SELECT tenant_id, id FROM aos_cus.cus_integrations "
		"WHERE credential_ref OPERATOR(pg_catalog.~~) 'encrypted://%' AND credential_ref OPERATOR(pg_catalog.!~~) $1 "
		"ORDER BY tenant_id, id LIMIT $2",
		"SELECT tenant_id, id FROM aos_cus.cus_integrations "
		"WHERE credential_ref OPERATOR(pg_catalog.~~) 'encrypted://%' AND credential_ref OPERATOR(pg_catalog.!~~) $1 "
		"AND ROW(tenant_id, id) OPERATOR(pg_catalog.>) ROW($3, $4) ORDER BY tenant_id, id LIMIT $2",
		"SELECT credential_ref FROM aos_cus.cus_integrations"
		" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2"
		" AND credential_ref OPERATOR(pg_catalog.~~) 'encrypted://%'"
		" AND credential_ref OPERATOR(pg_catalog.!~~) $3 FOR UPDATE SKIP LOCKED",
		"UPDATE aos_cus.cus_integrations SET credential_ref = $3"
		" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
	"integration"},
	{"SELECT tenant_id, id FROM aos_cus.cus_webhooks WHERE secret_ref OPERATOR(pg_catalog.!~~) $1 "
		"ORDER BY tenant_id, id LIMIT $2",
		"SELECT tenant_id, id FROM aos_cus.cus_webhooks WHERE secret_ref OPERATOR(pg_catalog.!~~) $1 "
		"AND ROW(tenant_id, id) OPERATOR(pg_catalog.>) ROW($3, $4) ORDER BY tenant_id, id LIMIT $2",
		"SELECT secret_ref FROM aos_cus.cus_webhooks"
		" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2"
		" AND secret_ref OPERATOR(pg_catalog.!~~) $3 FOR UPDATE SKIP LOCKED",
		"UPDATE aos_cus.cus_webhooks SET secret_ref = $3"
		" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND id OPERATOR(pg_catalog.=) $2",
	"webhook"},
};

/* Where a rotation continues: in which sealed column, after (tenant, id) or from its start; and what it skipped. */
typedef struct RotationCursor
{
	int			column;			/* index into sealed_columns */
	bool		started;
	pg_uuid_t	tenant;
	pg_uuid_t	id;
	int64		skipped;
	StringInfoData skipped_ids;	/* the first ROTATION_SKIPS_LISTED, with the reason */
} RotationCursor;

/* Skipped references a rotation names in its warning. */
#define ROTATION_SKIPS_LISTED 20

/*
 * Re-encrypt up to batch_size encrypted:// references that do not use the
 * active version, column after column of sealed_columns and in (tenant_id, id)
 * order after the cursor, skipping rows locked by others, and advance the
 * cursor. A reference that does not decrypt is left as it is and noted in the
 * cursor; the scan goes on past it. Runs inside the caller's SPI connection;
 * memory per row is released as it goes. Returns the count re-encrypted.
 */
static int64
rotate_batch(int batch_size, RotationCursor *cursor)
{
	uint32_t	version = active_version();
	char		pattern[64];
	Oid			selargs[4] = {TEXTOID, INT4OID, UUIDOID, UUIDOID};
	Datum		selvals[4];
	Oid			updargs[3] = {UUIDOID, UUIDOID, TEXTOID};
	int64		done = 0;
	MemoryContext row_ctx = AllocSetContextCreate(CurrentMemoryContext, "aos_cus key rotation row",
												  ALLOCSET_SMALL_SIZES);

	snprintf(pattern, sizeof(pattern), "encrypted://v1/%u/%%", version);
	selvals[0] = CStringGetTextDatum(pattern);
	while (done < batch_size && cursor->column < (int) lengthof(sealed_columns))
	{
		const SealedColumn *col = &sealed_columns[cursor->column];
		SPITupleTable *rows;
		uint64		n;
		int			limit = batch_size - (int) done;

		selvals[1] = Int32GetDatum(limit);
		selvals[2] = UUIDPGetDatum(&cursor->tenant);
		selvals[3] = UUIDPGetDatum(&cursor->id);
		/* Candidates without locks (under Citus a query over every shard may not lock); each is locked by its key. */
		if (SPI_execute_with_args(cursor->started ? col->select_after : col->select_first,
								  cursor->started ? 4 : 2, selargs, selvals, NULL, false, 0) != SPI_OK_SELECT)
			elog(ERROR, "selecting %ss to rotate failed", col->noun);
		rows = SPI_tuptable;
		n = SPI_processed;
		for (uint64 i = 0; i < n; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(row_ctx);
			bool		isnull;
			pg_uuid_t  *tenant = DatumGetUUIDP(SPI_getbinval(rows->vals[i], rows->tupdesc, 1, &isnull));
			pg_uuid_t  *owner = DatumGetUUIDP(SPI_getbinval(rows->vals[i], rows->tupdesc, 2, &isnull));
			char	   *ref;
			char	   *plain = NULL;
			uint32_t	from;
			const char *why;
			Datum		updvals[3];
			SPITupleTable *locked;

			CHECK_FOR_INTERRUPTS();
			/* Lock the row by its key (one shard under Citus); locked by others, or rotated since: skip it. */
			updvals[0] = UUIDPGetDatum(tenant);
			updvals[1] = UUIDPGetDatum(owner);
			updvals[2] = selvals[0];
			if (SPI_execute_with_args(col->lock, 3, updargs, updvals, NULL, false, 0) != SPI_OK_SELECT)
				elog(ERROR, "locking a %s to rotate failed", col->noun);
			locked = SPI_tuptable;
			ref = SPI_processed == 1 ? SPI_getvalue(locked->vals[0], locked->tupdesc, 1) : NULL;
			SPI_freetuptable(locked);
			if (ref != NULL && open_ref(tenant, owner, ref, strlen(ref), &plain, &from, &why) != OPEN_OK)
			{
				/* The list grows in its own (the caller's) context. */
				if (cursor->skipped++ < ROTATION_SKIPS_LISTED)
					appendStringInfo(&cursor->skipped_ids, "%s%s %s (version %u: %s)",
									 cursor->skipped_ids.len > 0 ? "; " : "", col->noun, uuid_str(owner), from, why);
			}
			else if (ref != NULL)
			{
				updvals[2] = PointerGetDatum(encrypt_to_ref(tenant, owner, plain, strlen(plain)));
				explicit_bzero(plain, strlen(plain));
				if (SPI_execute_with_args(col->update, 3, updargs, updvals, NULL, false, 0) != SPI_OK_UPDATE)
					elog(ERROR, "updating a rotated %s failed", col->noun);
				done++;
			}
			cursor->tenant = *tenant;
			cursor->id = *owner;
			cursor->started = true;
			MemoryContextSwitchTo(old);
			MemoryContextReset(row_ctx);
		}
		SPI_freetuptable(rows);
		if (n < (uint64) limit)
		{
			/* This column is done: the next one from its start. */
			cursor->column++;
			cursor->started = false;
		}
	}
	MemoryContextDelete(row_ctx);
	return done;
}

/* A WARNING naming the credentials a rotation left under their old version, if any. */
static void
report_skipped(const RotationCursor *cursor, const char *fn)
{
	if (cursor->skipped == 0)
		return;
	ereport(WARNING,
			(errmsg("%s: %lld credential(s) could not be decrypted and keep their key version",
					fn, (long long) cursor->skipped),
			 errdetail_internal("%s%s", cursor->skipped_ids.data, cursor->skipped > ROTATION_SKIPS_LISTED ? "; ..." : ""),
			 errhint("Fix the keyring, or store those credentials again with rotate_credential(); the others were re-encrypted.")));
}

/* SQL rotate_encryption_key_batch(batch_size) -> credentials re-encrypted in this one batch. */
Datum
aos_cus_rotate_encryption_key_batch(PG_FUNCTION_ARGS)
{
	int			batch_size;
	int64		n;
	RotationCursor cursor = {0};

	aos_cus_require_arg(fcinfo, 0, "batch_size");
	batch_size = PG_GETARG_INT32(0);
	if (batch_size < 1 || batch_size > 100000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("batch_size must be between 1 and 100000")));
	aos_cus_assert_platform("rotate_encryption_key_batch()");
	require_keyring();
	initStringInfo(&cursor.skipped_ids);
	SPI_connect();
	n = rotate_batch(batch_size, &cursor);
	SPI_finish();
	report_skipped(&cursor, "rotate_encryption_key_batch");
	PG_RETURN_INT64(n);
}

/*
 * On a Citus coordinator, the rotation of every worker (its own transaction each): the webhook secrets live in
 * node-local tables of the worker holding the tenant. Returns the references they re-encrypted; 0 elsewhere.
 */
static int64
rotate_on_citus_workers(void)
{
	bool		isnull;
	Datum		d;

	if (SPI_execute("SELECT aos_cus_internal.citus_node() OPERATOR(pg_catalog.=) 'coordinator'", true, 1) != SPI_OK_SELECT)
		elog(ERROR, "reading the Citus role of this node failed");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	if (isnull || !DatumGetBool(d))
		return 0;
	if (SPI_execute("SELECT pg_catalog.int8(pg_catalog.sum(w.result::pg_catalog.int8) FILTER (WHERE w.success)),"
					" pg_catalog.string_agg(pg_catalog.format('%s:%s: %s', w.nodename, w.nodeport, w.result), '; ')"
					" FILTER (WHERE NOT w.success)"
					" FROM pg_catalog.run_command_on_workers('SELECT aos_cus.rotate_encryption_key()') w",
					false, 1) != SPI_OK_SELECT)
		elog(ERROR, "rotating on the Citus workers failed");
	if (SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2) != NULL)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("rotate_encryption_key() failed on Citus workers: %s",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
				 errhint("Fix those workers' keyring and run it again; the other workers have committed.")));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/* SQL rotate_encryption_key(): every credential to the active version, in keyset batches of 1000 with NOTICE progress. */
Datum
aos_cus_rotate_encryption_key(PG_FUNCTION_ARGS)
{
	int64		total = 0,
				n;
	RotationCursor cursor = {0};

	aos_cus_assert_platform("rotate_encryption_key()");
	require_keyring();
	initStringInfo(&cursor.skipped_ids);
	SPI_connect();
	while ((n = rotate_batch(1000, &cursor)) > 0)
	{
		total += n;
		ereport(NOTICE,
				(errmsg("rotate_encryption_key: %lld credentials re-encrypted under key version %u so far",
						(long long) total, active_version())));
	}
	total += rotate_on_citus_workers();
	SPI_finish();
	report_skipped(&cursor, "rotate_encryption_key");
	PG_RETURN_INT64(total);
}

/* SQL keyring_status(): per version, whether active, a fingerprint and how many credentials use it. */
Datum
aos_cus_keyring_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	uint32_t	active;

	aos_cus_assert_platform("keyring_status()");
	require_keyring();
	active = active_version();
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	/* Versions of the keyring and versions only referenced by stored credentials, with their counts. */
	if (SPI_execute("SELECT pg_catalog.split_part(r, '/', 4)::pg_catalog.int8, pg_catalog.count(*) FROM ("
					"SELECT credential_ref FROM aos_cus.cus_integrations UNION ALL "
					"SELECT secret_ref FROM aos_cus.cus_webhooks) s(r) "
					"WHERE r OPERATOR(pg_catalog.~~) 'encrypted://v1/%' GROUP BY 1 ORDER BY 1",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "counting credentials per key version failed");
	for (int i = 0; i < keys->keyring.count; i++)
	{
		const AosKeyringEntry *e = &keys->keyring.entries[i];
		char		fp[AOS_FINGERPRINT_LEN + 1];
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};
		int64		count = 0;

		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;

			if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)) == e->version)
				count = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
		}
		if (!aos_cus_key_fingerprint(e->key, fp))
			elog(ERROR, "could not compute a key fingerprint with OpenSSL");
		values[0] = Int64GetDatum(e->version);
		values[1] = BoolGetDatum(e->version == active);
		values[2] = CStringGetTextDatum(fp);
		values[3] = Int64GetDatum(count);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		bool		isnull;
		int64		v = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
		Datum		values[4];
		bool		nulls[4] = {false, false, true, false};

		if (v > 0 && v <= AOS_KEY_VERSION_MAX && aos_cus_keyring_find(&keys->keyring, (uint32_t) v) != NULL)
			continue;
		values[0] = Int64GetDatum(v);
		values[1] = BoolGetDatum(false);
		values[2] = (Datum) 0;
		values[3] = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
