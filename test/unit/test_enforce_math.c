/* test_enforce_math.c: unit tests of limit verdicts, the sliding-window counter and precedence. */
#include "unit.h"
#include "enforce_math.h"

#define MIN AOS_RATE_WINDOW_US

/* Limit verdicts at and around the thresholds, with extreme values. */
static void
test_limits(void)
{
	CHECK(aos_cus_limit_verdict(0, 0, -1, 80) == AOS_LIMIT_OK);
	CHECK(aos_cus_limit_verdict(INT64_MAX, INT64_MAX, -1, 80) == AOS_LIMIT_OK);
	CHECK(aos_cus_limit_verdict(0, 79, 100, 80) == AOS_LIMIT_OK);
	CHECK(aos_cus_limit_verdict(0, 80, 100, 80) == AOS_LIMIT_WARN);
	CHECK(aos_cus_limit_verdict(50, 50, 100, 80) == AOS_LIMIT_WARN);
	CHECK(aos_cus_limit_verdict(50, 51, 100, 80) == AOS_LIMIT_EXCEEDED);
	CHECK(aos_cus_limit_verdict(100, 0, 100, 80) == AOS_LIMIT_EXCEEDED);
	CHECK(aos_cus_limit_verdict(0, 0, 0, 80) == AOS_LIMIT_EXCEEDED);
	CHECK(aos_cus_limit_verdict(0, 1, 100, 1) == AOS_LIMIT_WARN);
	CHECK(aos_cus_limit_verdict(0, 0, 100, 1) == AOS_LIMIT_OK);
	CHECK(aos_cus_limit_verdict(99, 0, 100, 100) == AOS_LIMIT_OK);
	CHECK(aos_cus_limit_verdict(INT64_MAX - 1, INT64_MAX, INT64_MAX, 80) == AOS_LIMIT_EXCEEDED);
	CHECK(aos_cus_limit_verdict(INT64_MAX / 2, INT64_MAX / 4, INT64_MAX, 80) == AOS_LIMIT_OK);
	CHECK(aos_cus_reached_pct(80, 100, 80));
	CHECK(!aos_cus_reached_pct(79, 100, 80));
	CHECK(aos_cus_reached_pct(INT64_MAX, INT64_MAX, 100));
	CHECK(!aos_cus_reached_pct(INT64_MAX - 1, INT64_MAX, 100));
}

/* The window admits exactly limit per minute and slides with the previous minute's weight. */
static void
test_rate(void)
{
	AosRateWindow w = {0, 0, 0};
	int64_t		retry = 0;
	int64_t		t0 = 1000 * MIN;
	int			admitted = 0;

	aos_cus_rate_advance(&w, t0);
	for (int i = 0; i < 150; i++)
		if (aos_cus_rate_admits(&w, t0 + i, 100, 1, &retry))
		{
			w.curr++;
			admitted++;
		}
	CHECK(admitted == 100);
	CHECK(aos_cus_rate_current(&w) == 100);
	/* Next minute begins with full weight of the previous one: refused, retry within the minute. */
	aos_cus_rate_advance(&w, t0 + MIN);
	CHECK(w.prev == 100 && w.curr == 0);
	CHECK(!aos_cus_rate_admits(&w, t0 + MIN, 100, 1, &retry));
	CHECK(retry == 600);
	/* After 600 ms one slot has freed (weight 99.0), not two. */
	CHECK(aos_cus_rate_admits(&w, t0 + MIN + 600000, 100, 1, &retry));
	CHECK(!aos_cus_rate_admits(&w, t0 + MIN + 600000, 100, 2, &retry));
	/* The weighted count explain_check() shows: 100 * (60 - 0.6) / 60 = 99 (rounded down), 50 half a minute in. */
	CHECK(aos_cus_rate_weighted(&w, t0 + MIN + 600000) == 99);
	CHECK(aos_cus_rate_weighted(&w, t0 + MIN + MIN / 2) == 50);
	/* Half a minute in: 50 more fit. */
	w.curr = 49;
	CHECK(aos_cus_rate_admits(&w, t0 + MIN + MIN / 2, 100, 1, &retry));
	w.curr = 50;
	CHECK(!aos_cus_rate_admits(&w, t0 + MIN + MIN / 2, 100, 1, &retry));
	CHECK(retry > 0 && retry <= 600);
	/* A gap of more than one minute clears both counts. */
	aos_cus_rate_advance(&w, t0 + 5 * MIN);
	CHECK(w.prev == 0 && w.curr == 0);
	/* A request larger than the limit never passes. */
	CHECK(!aos_cus_rate_admits(&w, t0 + 5 * MIN, 100, 101, &retry));
	CHECK(retry == 60000);
	/* Current minute full, previous empty: retry at the next minute. */
	w.curr = 100;
	CHECK(!aos_cus_rate_admits(&w, t0 + 5 * MIN + MIN / 4, 100, 1, &retry));
	CHECK(retry >= 45000 && retry <= 45000 + 600);
	/* Huge limits and amounts do not overflow. */
	w.curr = INT64_MAX / 2;
	w.prev = INT64_MAX / 2;
	CHECK(!aos_cus_rate_admits(&w, t0 + 5 * MIN, INT64_MAX, INT64_MAX / 2 + 2, &retry));
	/* Negative epoch times floor to the right minute. */
	aos_cus_rate_advance(&w, -1);
	CHECK(w.minute == -1);
}

/* Every combination of state, mode, policy, rate, request quota, budget and token verdicts. */
static void
test_precedence(void)
{
	AosReason	r;
	int			combos = 0;

	for (int found = 0; found < 2; found++)
		for (int enabled = 0; enabled < 2; enabled++)
			for (int mode = 0; mode < 3; mode++)
				for (int pol = 0; pol < 2; pol++)
				for (int rate = 0; rate < 2; rate++)
				for (int quota = 0; quota < 2; quota++)
					for (int b = 0; b < 3; b++)
						for (int t = 0; t < 3; t++)
						{
							AosReason	policy = pol ? AOS_REASON_CONCURRENCY_LIMIT : AOS_REASON_OK;
							AosVerdicts v = {found, enabled, mode, policy, rate, quota, b, t};
							AosDecision d = aos_cus_decide(&v, &r);
							AosReason	want_block = pol ? policy : rate ? AOS_REASON_RATE_LIMITED :
								quota ? AOS_REASON_REQUEST_QUOTA :
								b == AOS_LIMIT_EXCEEDED ? AOS_REASON_BUDGET_EXCEEDED :
								t == AOS_LIMIT_EXCEEDED ? AOS_REASON_TOKEN_LIMIT_EXCEEDED : AOS_REASON_OK;
							AosReason	want_warn = b == AOS_LIMIT_WARN ? AOS_REASON_BUDGET_WARNING :
								t == AOS_LIMIT_WARN ? AOS_REASON_TOKEN_WARNING : AOS_REASON_OK;

							combos++;
							if (!found)
								CHECK(d == AOS_DECISION_BLOCKED && r == AOS_REASON_NOT_FOUND);
							else if (!enabled)
								CHECK(d == AOS_DECISION_BLOCKED && r == AOS_REASON_DISABLED);
							else if (mode == AOS_MODE_OFF)
								CHECK(d == AOS_DECISION_ALLOWED && r == AOS_REASON_OK);
							else if (want_block != AOS_REASON_OK)
								CHECK(r == want_block && d == (mode == AOS_MODE_WARN ? AOS_DECISION_WARNED : AOS_DECISION_BLOCKED));
							else if (want_warn != AOS_REASON_OK)
								CHECK(d == AOS_DECISION_WARNED && r == want_warn);
							else
								CHECK(d == AOS_DECISION_ALLOWED && r == AOS_REASON_OK);
						}
	CHECK(combos == 864);
	CHECK_STR(aos_cus_reason_name(AOS_REASON_REQUEST_QUOTA), "request_quota");
	CHECK_STR(aos_cus_reason_name(AOS_REASON_MODEL_NOT_ALLOWED), "model_not_allowed");
	CHECK_STR(aos_cus_reason_name(AOS_REASON_CONCURRENCY_LIMIT), "concurrency_limit");
	CHECK_STR(aos_cus_reason_name(AOS_REASON_UNPRICED_MODEL), "unpriced_model");
	CHECK_STR(aos_cus_decision_name(AOS_DECISION_WARNED), "warned");
	CHECK_STR(aos_cus_reason_name(AOS_REASON_TOKEN_LIMIT_EXCEEDED), "token_limit_exceeded");
	CHECK_STR(aos_cus_reason_name(AOS_REASON_ALREADY_INGESTED), "already_ingested");
}

/* A window is live while its admissions still weigh: this minute or the next, not after. */
static void
test_rate_live(void)
{
	AosRateWindow w = {0, 0, 0};
	int64_t		t0 = 1000 * MIN;

	aos_cus_rate_advance(&w, t0);
	CHECK(!aos_cus_rate_live(&w, t0));
	w.curr = 1;
	CHECK(aos_cus_rate_live(&w, t0 + MIN - 1));
	/* Not yet advanced into the next minute: still live there, dead after it. */
	CHECK(aos_cus_rate_live(&w, t0 + MIN + MIN - 1));
	CHECK(!aos_cus_rate_live(&w, t0 + 2 * MIN));
	/* Advanced: the count moved to prev and keeps the window live through that minute. */
	aos_cus_rate_advance(&w, t0 + MIN);
	CHECK(w.prev == 1 && w.curr == 0);
	CHECK(aos_cus_rate_live(&w, t0 + MIN + MIN / 2));
	CHECK(!aos_cus_rate_live(&w, t0 + 2 * MIN));
	/* Negative times floor like the window does. */
	aos_cus_rate_advance(&w, -1);
	w.curr = 1;
	CHECK(aos_cus_rate_live(&w, -1) && aos_cus_rate_live(&w, MIN - 1) && !aos_cus_rate_live(&w, MIN));
}

/* An undone admission leaves the minute it was counted in, or the previous one after the window moved, never below 0. */
static void
test_rate_unadmit(void)
{
	AosRateWindow w = {0, 0, 0};
	int64_t		t0 = 500 * MIN;

	aos_cus_rate_advance(&w, t0);
	w.curr = 3;
	aos_cus_rate_unadmit(&w, 500, 1);
	CHECK(w.curr == 2);
	aos_cus_rate_advance(&w, t0 + MIN);
	aos_cus_rate_unadmit(&w, 500, 1);
	CHECK(w.prev == 1 && w.curr == 0);
	aos_cus_rate_unadmit(&w, 500, 5);
	CHECK(w.prev == 0);
	w.curr = 4;
	aos_cus_rate_advance(&w, t0 + 3 * MIN);
	aos_cus_rate_unadmit(&w, 501, 1);
	CHECK(w.prev == 0 && w.curr == 0);
}

/* Whole UTC days of a range: aligned and unaligned bounds, negative instants, infinities, ranges inside a day. */
static void
test_whole_utc_days(void)
{
	const int64_t day = INT64_C(86400000000);
	int64_t		d1 = 0;
	int64_t		d2 = 0;

	aos_cus_whole_utc_days(10 * day, 20 * day, &d1, &d2);
	CHECK(d1 == 10 * day && d2 == 20 * day);
	aos_cus_whole_utc_days(10 * day + 1, 20 * day - 1, &d1, &d2);
	CHECK(d1 == 11 * day && d2 == 19 * day);
	aos_cus_whole_utc_days(-10 * day - 1, -2 * day + 5, &d1, &d2);
	CHECK(d1 == -10 * day && d2 == -2 * day);
	aos_cus_whole_utc_days(-day + 1, day - 1, &d1, &d2);
	CHECK(d1 == 0 && d2 == 0);
	aos_cus_whole_utc_days(INT64_MIN, INT64_MAX, &d1, &d2);
	CHECK(d1 == INT64_MIN && d2 == INT64_MAX);
	aos_cus_whole_utc_days(INT64_MIN, 3 * day + 7, &d1, &d2);
	CHECK(d1 == INT64_MIN && d2 == 3 * day);
	aos_cus_whole_utc_days(3 * day + 7, INT64_MAX, &d1, &d2);
	CHECK(d1 == 4 * day && d2 == INT64_MAX);
	/* Inside one day (a 5:45-offset zone's day, say): no whole day, both at to. */
	aos_cus_whole_utc_days(3 * day + 7, 4 * day - 7, &d1, &d2);
	CHECK(d1 == 4 * day - 7 && d2 == 4 * day - 7);
	/* Across one midnight: no whole day, the two partial days meet at it. */
	aos_cus_whole_utc_days(3 * day + 7, 4 * day + 7, &d1, &d2);
	CHECK(d1 == 4 * day && d2 == 4 * day);
	aos_cus_whole_utc_days(5 * day, 5 * day, &d1, &d2);
	CHECK(d1 == 5 * day && d2 == 5 * day);
}

/* Run every enforcement math case. */
int
main(void)
{
	int64_t		out = 0;

	CHECK(!aos_cus_add_overflows(1, 2, &out) && out == 3);
	CHECK(aos_cus_add_overflows(INT64_MAX, 1, &out));
	test_limits();
	test_rate();
	test_rate_live();
	test_rate_unadmit();
	test_precedence();
	test_whole_utc_days();
	return UNIT_DONE();
}
