/*
 * tokens.c: count_tokens() and count_message_tokens(), exact for OpenAI's o200k_base and cl100k_base.
 *
 * Each backend maps an encoding's rank file (share/extension/aos_cus_<encoding>.bpe, made by
 * scripts/tiktoken_ranks.py) read-only on first use, so all backends share its pages through the page
 * cache, and keeps one compiled (JIT) pre-tokenizer per encoding for its lifetime. Text in a database
 * encoding other than UTF-8 is converted to UTF-8 first; bytes that are not UTF-8 (SQL_ASCII) give 22021.
 */
#include "aos_cus.h"
#include "tokens.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"

PG_FUNCTION_INFO_V1(aos_cus_count_tokens);
PG_FUNCTION_INFO_V1(aos_cus_count_message_tokens);
PG_FUNCTION_INFO_V1(aos_cus_token_encoding);

/* The chat format's overhead (OpenAI cookbook, num_tokens_from_messages): per message, per name, reply priming. */
#define TOKENS_PER_MESSAGE 3
#define TOKENS_PER_NAME 1
#define TOKENS_REPLY 3

static AosBpeRanks ranks[AOS_BPE_NENCODINGS];
static AosBpeCounter *counters[AOS_BPE_NENCODINGS];

/* The counter of enc, mapping its rank file and compiling its pattern on first use in this backend. */
static AosBpeCounter *
counter_for(AosBpeEncoding enc)
{
	char		share[MAXPGPATH];
	char		path[MAXPGPATH];
	struct stat st;
	void	   *data;
	int			fd;

	if (counters[enc])
		return counters[enc];
	get_share_path(my_exec_path, share);
	snprintf(path, sizeof(path), "%s/extension/aos_cus_%s.bpe", share, aos_cus_bpe_encoding_name(enc));
	fd = open(path, O_RDONLY | PG_BINARY, 0);
	if (fd < 0)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not open token rank file \"%s\": %m", path)));
	if (fstat(fd, &st) != 0)
	{
		close(fd);
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not stat token rank file \"%s\": %m", path)));
	}
	data = mmap(NULL, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
	close(fd);
	if (data == MAP_FAILED)
		ereport(ERROR, (errcode_for_file_access(), errmsg("could not map token rank file \"%s\": %m", path)));
	if (!aos_cus_bpe_ranks_open(&ranks[enc], data, st.st_size))
	{
		munmap(data, st.st_size);
		ereport(ERROR, (errcode(ERRCODE_DATA_CORRUPTED), errmsg("token rank file \"%s\" is malformed", path)));
	}
	counters[enc] = aos_cus_bpe_counter_new(enc, &ranks[enc]);
	if (!counters[enc])
	{
		munmap(data, st.st_size);
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("could not set up the %s tokenizer",
																aos_cus_bpe_encoding_name(enc))));
	}
	return counters[enc];
}

AosBpeEncoding
aos_cus_model_encoding(const char *model, int len)
{
	int			enc = aos_cus_bpe_encoding_for_model(model, len);

	if (enc < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model \"%.*s\" has no exact tokenizer", Min(len, 64), model),
				 errhint("Give an OpenAI model tiktoken knows (gpt-4o, gpt-4, o3, ...) or an encoding "
						 "(o200k_base, cl100k_base); token_encoding(model) is NULL for the others, "
						 "which estimate_tokens counts.")));
	return (AosBpeEncoding) enc;
}

int64
aos_cus_count_text(AosBpeEncoding enc, const char *s, int len, const char *argname)
{
	AosBpeCounter *c = counter_for(enc);
	const char *utf8 = s;
	int64		n;

	if (len > AOS_TOKENS_MAX_INPUT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("%s is longer than %d bytes", argname, AOS_TOKENS_MAX_INPUT)));
	if (GetDatabaseEncoding() != PG_UTF8 && GetDatabaseEncoding() != PG_SQL_ASCII)
	{
		utf8 = pg_server_to_any(s, len, PG_UTF8);
		if (utf8 != s)
			len = strlen(utf8);	/* converted: a new NUL-terminated string */
	}
	n = aos_cus_bpe_count(c, utf8, len);
	if (n == AOS_BPE_ERR_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
				 errmsg("%s is not valid UTF-8", argname)));
	if (n == AOS_BPE_ERR_NOMEM)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory counting tokens of %s", argname)));
	if (n < 0)
		ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("could not pre-tokenize %s", argname)));
	return n;
}

/* SQL token_encoding(model): the encoding count_tokens uses for model, NULL when it has none. */
Datum
aos_cus_token_encoding(PG_FUNCTION_ARGS)
{
	text	   *model;
	int			enc;

	aos_cus_require_arg(fcinfo, 0, "model");
	model = PG_GETARG_TEXT_PP(0);
	enc = aos_cus_bpe_encoding_for_model(VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model));
	if (enc < 0)
		PG_RETURN_NULL();
	PG_RETURN_TEXT_P(cstring_to_text(aos_cus_bpe_encoding_name((AosBpeEncoding) enc)));
}

/* The encoding named by the model argument n (22004 when NULL). */
static AosBpeEncoding
model_arg(FunctionCallInfo fcinfo, int n)
{
	text	   *model;

	aos_cus_require_arg(fcinfo, n, "model");
	model = PG_GETARG_TEXT_PP(n);
	return aos_cus_model_encoding(VARDATA_ANY(model), VARSIZE_ANY_EXHDR(model));
}

/* SQL count_tokens(input, model): exact tokens of input; NULL input gives NULL. */
Datum
aos_cus_count_tokens(PG_FUNCTION_ARGS)
{
	AosBpeEncoding enc = model_arg(fcinfo, 1);
	text	   *input;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	input = PG_GETARG_TEXT_PP(0);
	PG_RETURN_INT32((int32) aos_cus_count_text(enc, VARDATA_ANY(input), VARSIZE_ANY_EXHDR(input), "input"));
}

/* SQL count_message_tokens(messages, model): the cookbook's count (every string member, 3 a message, 1 a name, 3). */
Datum
aos_cus_count_message_tokens(PG_FUNCTION_ARGS)
{
	AosBpeEncoding enc = model_arg(fcinfo, 1);
	Jsonb	   *messages;
	int64		total = TOKENS_REPLY;
	uint32		n;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	messages = PG_GETARG_JSONB_P(0);
	if (VARSIZE(messages) > AOS_TOKENS_MAX_INPUT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("messages is longer than %d bytes", AOS_TOKENS_MAX_INPUT)));
	if (!JB_ROOT_IS_ARRAY(messages) || JB_ROOT_IS_SCALAR(messages))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("messages must be a JSON array")));
	n = JB_ROOT_COUNT(messages);
	for (uint32 i = 0; i < n; i++)
	{
		JsonbValue *m = getIthJsonbValueFromContainer(&messages->root, i);
		JsonbIterator *it;
		JsonbIteratorToken tok;
		JsonbValue	v;
		char		key[72] = "";

		if (m->type != jbvBinary || !JsonContainerIsObject(m->val.binary.data))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("messages[%u] must be an object", i)));
		total += TOKENS_PER_MESSAGE;
		it = JsonbIteratorInit(m->val.binary.data);
		while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
		{
			if (tok == WJB_KEY)
			{
				snprintf(key, sizeof(key), "%.*s", Min(v.val.string.len, 64), v.val.string.val);
				if (strcmp(key, "name") == 0)
					total += TOKENS_PER_NAME;
			}
			else if (tok == WJB_VALUE)
			{
				char		arg[96];

				snprintf(arg, sizeof(arg), "messages[%u].%s", i, key);
				if (v.type != jbvString)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("%s must be a string", arg)));
				total += aos_cus_count_text(enc, v.val.string.val, v.val.string.len, arg);
			}
		}
	}
	PG_RETURN_INT32((int32) total);
}
