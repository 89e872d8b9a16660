/*
 * aos_cus_health: operator batch health checks (README: Health), for terminals and cron.
 *
 * Connects with libpq, picks integrations, probes each with
 * aos_cus.test_credentials() (the probe and the key stay inside the server)
 * and prints one JSON object on stdout. Exit status: 0 every checked
 * integration is healthy, 1 some are not, 2 usage or connection error.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "libpq-fe.h"

#define EXIT_HEALTHY 0
#define EXIT_UNHEALTHY 1
#define EXIT_USAGE 2

typedef enum Selection
{
	SEL_NONE,
	SEL_INTEGRATION,
	SEL_ALL,
	SEL_STALE,
	SEL_SUMMARY
} Selection;

/* Print usage to stream. */
static void
usage(FILE *stream)
{
	fprintf(stream,
			"Usage: aos_cus_health [-d CONNINFO] SELECTION [SCOPE]\n"
			"Probe LLM provider integrations of aos_cus and print the results as JSON.\n\n"
			"Selection (one of):\n"
			"  --integration ID     probe one integration (SCOPE optional: --tenant ID)\n"
			"  --all                probe every enabled integration in SCOPE\n"
			"  --stale DURATION     probe enabled integrations in SCOPE not probed for DURATION (e.g. '1 hour')\n"
			"  --summary            print integrations per health state in SCOPE, probe nothing\n"
			"Scope (one of):\n"
			"  --tenant ID          one tenant (alone, it means --all for that tenant)\n"
			"  --all-tenants        every tenant (needs aos_cus_operator)\n"
			"Connection:\n"
			"  -d, --dbname=CONNINFO  database name or libpq connection string (default: PG* environment)\n"
			"  -h, --help             show this help\n\n"
			"Exit status: 0 all healthy, 1 some not healthy, 2 usage or connection error.\n");
}

/* Print s as a JSON string literal (NULL as null). */
static void
json_str(const char *s)
{
	if (s == NULL)
	{
		fputs("null", stdout);
		return;
	}
	putchar('"');
	for (const unsigned char *c = (const unsigned char *) s; *c; c++)
	{
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	putchar('"');
}

/* Value of a result cell, NULL for SQL NULL. */
static const char *
cell(const PGresult *res, int row, int col)
{
	return PQgetisnull(res, row, col) ? NULL : PQgetvalue(res, row, col);
}

/* Report a failed query or connection on stderr and return the usage exit status. */
static int
fail(PGconn *conn, const char *what)
{
	fprintf(stderr, "aos_cus_health: %s: %s", what, PQerrorMessage(conn));
	PQfinish(conn);
	return EXIT_USAGE;
}

/* --summary: integrations per state; 0 when every one is healthy. */
static int
run_summary(PGconn *conn, const char *tenant)
{
	const char *params[1] = {tenant};
	PGresult   *res = PQexecParams(conn, "SELECT state, integrations FROM aos_cus.health_summary($1::uuid)",
								   1, NULL, params, NULL, NULL, 0);
	long		total = 0;
	long		healthy = 0;

	if (PQresultStatus(res) != PGRES_TUPLES_OK)
	{
		PQclear(res);
		return fail(conn, "health_summary failed");
	}
	fputs("{\"summary\": {", stdout);
	for (int r = 0; r < PQntuples(res); r++)
	{
		long		n = atol(PQgetvalue(res, r, 1));

		printf("%s", r > 0 ? ", " : "");
		json_str(PQgetvalue(res, r, 0));
		printf(": %ld", n);
		total += n;
		if (strcmp(PQgetvalue(res, r, 0), "healthy") == 0)
			healthy = n;
	}
	printf("}, \"total\": %ld, \"tenant_id\": ", total);
	json_str(tenant);
	fputs("}\n", stdout);
	PQclear(res);
	PQfinish(conn);
	return healthy == total ? EXIT_HEALTHY : EXIT_UNHEALTHY;
}

/* Probe every listed integration with test_credentials(); 0 when all are healthy. */
static int
run_probes(PGconn *conn, PGresult *list)
{
	int			n = PQntuples(list);
	long		counts[5] = {0, 0, 0, 0, 0};	/* healthy, degraded, failing, unknown, error */
	static const char *const names[5] = {"healthy", "degraded", "failing", "unknown", "errors"};

	fputs("{\"integrations\": [", stdout);
	for (int r = 0; r < n; r++)
	{
		const char *params[2] = {cell(list, r, 0), cell(list, r, 1)};
		PGresult   *res = PQexecParams(conn, "SELECT state, latency_ms, error FROM aos_cus.test_credentials($1::uuid, $2::uuid)",
									   2, NULL, params, NULL, NULL, 0);
		const char *state;

		printf("%s{\"tenant_id\": ", r > 0 ? ", " : "");
		json_str(cell(list, r, 0));
		fputs(", \"integration_id\": ", stdout);
		json_str(cell(list, r, 1));
		fputs(", \"name\": ", stdout);
		json_str(cell(list, r, 2));
		fputs(", \"provider\": ", stdout);
		json_str(cell(list, r, 3));
		if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
		{
			state = PQgetvalue(res, 0, 0);
			fputs(", \"state\": ", stdout);
			json_str(state);
			printf(", \"latency_ms\": %s, \"error\": ", cell(res, 0, 1) ? cell(res, 0, 1) : "null");
			json_str(cell(res, 0, 2));
			for (int s = 0; s < 4; s++)
				if (strcmp(state, names[s]) == 0)
					counts[s]++;
		}
		else
		{
			const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);

			fputs(", \"state\": \"error\", \"latency_ms\": null, \"error\": ", stdout);
			json_str(msg != NULL ? msg : "query failed");
			counts[4]++;
		}
		fputs("}", stdout);
		PQclear(res);
	}
	printf("], \"checked\": %d", n);
	for (int s = 0; s < 5; s++)
		printf(", \"%s\": %ld", names[s], counts[s]);
	fputs("}\n", stdout);
	PQclear(list);
	PQfinish(conn);
	return counts[0] == n ? EXIT_HEALTHY : EXIT_UNHEALTHY;
}

/* Parse flags, connect, select and probe (or summarize). */
int
main(int argc, char **argv)
{
	static const struct option options[] = {
		{"dbname", required_argument, NULL, 'd'},
		{"integration", required_argument, NULL, 'i'},
		{"tenant", required_argument, NULL, 't'},
		{"all", no_argument, NULL, 'a'},
		{"stale", required_argument, NULL, 's'},
		{"all-tenants", no_argument, NULL, 'A'},
		{"summary", no_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0}
	};
	const char *dbname = NULL;
	const char *integration = NULL;
	const char *tenant = NULL;
	const char *stale = NULL;
	bool		all_tenants = false;
	int			selections = 0;
	Selection	sel = SEL_NONE;
	int			c;
	PGconn	   *conn;
	PGresult   *list;
	const char *keywords[3] = {"dbname", "application_name", NULL};
	const char *values[3];

	while ((c = getopt_long(argc, argv, "d:h", options, NULL)) != -1)
	{
		switch (c)
		{
			case 'd':
				dbname = optarg;
				break;
			case 'i':
				integration = optarg;
				sel = SEL_INTEGRATION;
				selections++;
				break;
			case 't':
				tenant = optarg;
				break;
			case 'a':
				sel = SEL_ALL;
				selections++;
				break;
			case 's':
				stale = optarg;
				sel = SEL_STALE;
				selections++;
				break;
			case 'A':
				all_tenants = true;
				break;
			case 'S':
				sel = SEL_SUMMARY;
				selections++;
				break;
			case 'h':
				usage(stdout);
				return EXIT_HEALTHY;
			default:
				usage(stderr);
				return EXIT_USAGE;
		}
	}
	if (optind < argc)
	{
		fprintf(stderr, "aos_cus_health: unexpected argument \"%s\"\n", argv[optind]);
		return EXIT_USAGE;
	}
	if (selections > 1)
	{
		fprintf(stderr, "aos_cus_health: --integration, --all, --stale and --summary exclude each other\n");
		return EXIT_USAGE;
	}
	if (tenant != NULL && all_tenants)
	{
		fprintf(stderr, "aos_cus_health: --tenant and --all-tenants exclude each other\n");
		return EXIT_USAGE;
	}
	if (sel == SEL_NONE && tenant != NULL)
		sel = SEL_ALL;
	if (sel == SEL_NONE)
	{
		fprintf(stderr, "aos_cus_health: choose --integration ID, --all, --stale DURATION or --summary\n");
		usage(stderr);
		return EXIT_USAGE;
	}
	if (sel == SEL_INTEGRATION && all_tenants)
	{
		fprintf(stderr, "aos_cus_health: --integration takes --tenant ID, not --all-tenants\n");
		return EXIT_USAGE;
	}
	if (sel != SEL_INTEGRATION && tenant == NULL && !all_tenants)
	{
		fprintf(stderr, "aos_cus_health: --all, --stale and --summary need --tenant ID or --all-tenants\n");
		return EXIT_USAGE;
	}

	values[0] = dbname;
	values[1] = "aos_cus_health";
	values[2] = NULL;
	conn = PQconnectdbParams(keywords, values, 1);
	if (PQstatus(conn) != CONNECTION_OK)
		return fail(conn, "could not connect");
	if (tenant != NULL)
	{
		const char *params[1] = {tenant};
		PGresult   *res = PQexecParams(conn, "SELECT pg_catalog.set_config('aos_cus.tenant_id', $1, false)",
									   1, NULL, params, NULL, NULL, 0);

		if (PQresultStatus(res) != PGRES_TUPLES_OK)
		{
			PQclear(res);
			return fail(conn, "invalid --tenant");
		}
		PQclear(res);
	}

	if (sel == SEL_SUMMARY)
		return run_summary(conn, tenant);
	if (sel == SEL_INTEGRATION)
	{
		const char *params[2] = {integration, tenant};

		list = PQexecParams(conn, "SELECT tenant_id, id, name, provider FROM aos_cus.cus_integrations "
							"WHERE id = $1::uuid AND ($2::uuid IS NULL OR tenant_id = $2::uuid) AND status <> 'deleted'",
							2, NULL, params, NULL, NULL, 0);
	}
	else if (sel == SEL_ALL)
	{
		const char *params[1] = {tenant};

		list = PQexecParams(conn, "SELECT tenant_id, id, name, provider FROM aos_cus.cus_integrations "
							"WHERE status = 'enabled' AND ($1::uuid IS NULL OR tenant_id = $1::uuid) ORDER BY tenant_id, id",
							1, NULL, params, NULL, NULL, 0);
	}
	else
	{
		const char *params[2] = {stale, tenant};

		list = PQexecParams(conn, "SELECT tenant_id, integration_id, name, provider "
							"FROM aos_cus.stale_integrations($1::interval, $2::uuid)",
							2, NULL, params, NULL, NULL, 0);
	}
	if (PQresultStatus(list) != PGRES_TUPLES_OK)
	{
		PQclear(list);
		return fail(conn, "could not select integrations");
	}
	if (sel == SEL_INTEGRATION && PQntuples(list) == 0)
	{
		fprintf(stderr, "aos_cus_health: --integration %s names no integration%s\n", integration,
				tenant != NULL ? " of that tenant" : "");
		PQclear(list);
		PQfinish(conn);
		return EXIT_USAGE;
	}
	return run_probes(conn, list);
}
