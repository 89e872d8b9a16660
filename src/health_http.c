/*
 * health_http.c: drive libcurl for health probes.
 *
 * Every request has bounded connect and total timeouts, verifies TLS peers and
 * host names (aos_cus.health_ca_file names a custom CA bundle), obeys the
 * egress policy (egress_curl.c: https only unless http is allowed, refused
 * addresses never connected to, no proxy), follows no redirect, and reads at
 * most HEALTH_MAX_BODY bytes of the body, which it discards unread: bodies are
 * never stored or logged.
 * The key lives only in the auth header line, which is zeroed before it is freed.
 */
#include "postgres.h"

#include "egress_curl.h"
#include "health.h"
#include "health_probe.h"
#include "stats.h"

#include "miscadmin.h"

#define HEALTH_MAX_BODY (256 * 1024)
#define HEALTH_USER_AGENT "aos_cus/0.1.0 health-probe"

static bool curl_ready = false;

/* Initialize libcurl once per process. */
void
aos_cus_health_curl_init(void)
{
	if (curl_ready)
		return;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		ereport(ERROR,
				(errcode(ERRCODE_SYSTEM_ERROR),
				 errmsg("could not initialize libcurl")));
	curl_ready = true;
}

/* Discard body bytes; stop the transfer past the bound (the status is already known). */
static size_t
discard_body(char *data, size_t size, size_t nmemb, void *arg)
{
	AosHealthProbe *p = (AosHealthProbe *) arg;
	size_t		n = size * nmemb;

	p->body_bytes += n;
	return p->body_bytes > HEALTH_MAX_BODY ? 0 : n;
}

/* Zero every header line (one holds the key) and free the list. */
static void
free_headers(struct curl_slist *headers)
{
	for (struct curl_slist *h = headers; h != NULL; h = h->next)
		explicit_bzero(h->data, strlen(h->data));
	curl_slist_free_all(headers);
}

/* Count a finished probe by its state. */
static void
count_outcome(AosHealthState state)
{
	aos_cus_stat_add(AOS_STAT_HEALTH_PROBES, 1);
	switch (state)
	{
		case AOS_HEALTH_HEALTHY:
			aos_cus_stat_add(AOS_STAT_HEALTH_HEALTHY, 1);
			break;
		case AOS_HEALTH_DEGRADED:
			aos_cus_stat_add(AOS_STAT_HEALTH_DEGRADED, 1);
			break;
		case AOS_HEALTH_FAILING:
			aos_cus_stat_add(AOS_STAT_HEALTH_FAILING, 1);
			break;
		case AOS_HEALTH_UNKNOWN:
			break;
	}
}

/* Finish p without network I/O. */
void
aos_cus_health_probe_fail(AosHealthProbe *p, AosHealthState state, const char *error)
{
	p->easy = NULL;
	p->headers = NULL;
	p->state = state;
	p->latency_ms = 0;
	p->http_status = 0;
	strlcpy(p->error, error, sizeof(p->error));
	count_outcome(state);
}

/* Set up p's easy handle; false (and p failed) when the request cannot be built. */
bool
aos_cus_health_probe_prepare(AosHealthProbe *p, const char *provider, const char *base_url,
					 const char *api_version, const char *health_path, const char *key)
{
	AosProbeRequest req;
	const char *why;
	char		line[AOS_PROBE_HEADER_MAX];
	struct curl_slist *headers = NULL;
	CURL	   *easy;
	bool		ok = true;

	aos_cus_health_curl_init();
	if (!aos_cus_probe_supported(provider))
	{
		aos_cus_health_probe_fail(p, AOS_HEALTH_UNKNOWN, "no health probe exists for this provider");
		return false;
	}
	why = aos_cus_probe_build(provider, base_url, api_version, health_path, &req);
	if (why != NULL)
	{
		aos_cus_health_probe_fail(p, AOS_HEALTH_FAILING, why);
		return false;
	}
	easy = curl_easy_init();
	if (easy == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory setting up a health probe")));
	/* The egress policy first: a refused URL never gets the key. */
	why = aos_cus_egress_apply(easy, req.url, &p->egress);
	if (why != NULL)
	{
		curl_easy_cleanup(easy);
		aos_cus_health_probe_fail(p, AOS_HEALTH_FAILING, why);
		return false;
	}
	if (!aos_cus_probe_auth_header(&req, key, line, sizeof(line)))
	{
		curl_easy_cleanup(easy);
		aos_cus_health_probe_fail(p, AOS_HEALTH_FAILING, "credential is empty, too long or holds characters not allowed in a header");
		return false;
	}
	headers = curl_slist_append(headers, line);
	explicit_bzero(line, sizeof(line));
	if (headers != NULL && req.extra_header != NULL)
		ok = curl_slist_append(headers, req.extra_header) != NULL;
	if (headers != NULL && ok)
		ok = curl_slist_append(headers, "Accept: application/json") != NULL;
	if (headers == NULL || !ok)
	{
		curl_easy_cleanup(easy);
		free_headers(headers);
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory setting up a health probe")));
	}

	p->easy = easy;
	p->headers = headers;
	p->body_bytes = 0;
	p->http_status = 0;
	p->error[0] = '\0';
	curl_easy_setopt(easy, CURLOPT_URL, req.url);
	curl_easy_setopt(easy, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(easy, CURLOPT_USERAGENT, HEALTH_USER_AGENT);
	curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
	if (aos_cus_health_ca_file != NULL && aos_cus_health_ca_file[0] != '\0')
		curl_easy_setopt(easy, CURLOPT_CAINFO, aos_cus_health_ca_file);
	curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long) Min(aos_cus_health_connect_timeout_ms, aos_cus_health_timeout_ms));
	curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long) aos_cus_health_timeout_ms);
	curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, discard_body);
	curl_easy_setopt(easy, CURLOPT_WRITEDATA, p);
	curl_easy_setopt(easy, CURLOPT_PRIVATE, p);
	return true;
}

/* Classify a finished transfer and release its handle and headers. */
static void
probe_finish(AosHealthProbe *p, CURLcode code)
{
	curl_off_t	total_us = 0;
	long		status = 0;
	bool		refused;

	curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(p->easy, CURLINFO_TOTAL_TIME_T, &total_us);
	/* No response and a refused address: one outcome whatever the port, without status or latency. */
	refused = code != CURLE_OK && status == 0 && p->egress.refused;
	p->http_status = status;
	p->latency_ms = refused ? 0 : (int) Min(total_us / 1000, (curl_off_t) PG_INT32_MAX);
	p->state = aos_cus_probe_classify(refused ? AOS_PROBE_EGRESS_REFUSED : aos_cus_probe_transport_from_curl(code, status),
								  status, p->latency_ms, p->error, sizeof(p->error));
	curl_easy_cleanup(p->easy);
	p->easy = NULL;
	free_headers(p->headers);
	p->headers = NULL;
	count_outcome(p->state);
}

/* Read finished transfers off multi, classify their probes, return how many finished. */
int
aos_cus_health_multi_collect(CURLM *multi)
{
	CURLMsg    *msg;
	int			left;
	int			finished = 0;

	while ((msg = curl_multi_info_read(multi, &left)) != NULL)
	{
		AosHealthProbe *p = NULL;
		CURL	   *easy = msg->easy_handle;

		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **) &p);
		curl_multi_remove_handle(multi, easy);
		probe_finish(p, msg->data.result);
		finished++;
	}
	return finished;
}

/* Run one prepared probe to completion, checking for cancel every 100 ms. */
void
aos_cus_health_probe_run(AosHealthProbe *p)
{
	CURLM	   *multi;

	if (p->easy == NULL)
		return;
	multi = curl_multi_init();
	if (multi == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory setting up a health probe")));
	PG_TRY();
	{
		int			running = 1;

		curl_multi_add_handle(multi, p->easy);
		while (running > 0)
		{
			CHECK_FOR_INTERRUPTS();
			curl_multi_perform(multi, &running);
			if (running > 0)
				curl_multi_poll(multi, NULL, 0, 100, NULL);
		}
		aos_cus_health_multi_collect(multi);
	}
	PG_FINALLY();
	{
		if (p->easy != NULL)
		{
			curl_multi_remove_handle(multi, p->easy);
			curl_easy_cleanup(p->easy);
			p->easy = NULL;
			free_headers(p->headers);
			p->headers = NULL;
		}
		curl_multi_cleanup(multi);
	}
	PG_END_TRY();
}
