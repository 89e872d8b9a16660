/*
 * enforce_math.c: limit verdicts, the sliding-window rate counter and the
 * decision precedence. Integer arithmetic only (128-bit where products may
 * exceed 64 bits), so every comparison is exact.
 */
#include "enforce_math.h"

static const char *const decision_names[AOS_DECISION_COUNT] = {
	"allowed", "warned", "blocked"
};

static const char *const reason_names[AOS_REASON_COUNT] = {
	"ok", "integration_not_found", "integration_disabled", "rate_limited",
	"budget_exceeded", "token_limit_exceeded", "budget_warning", "token_warning", "already_ingested",
	"model_not_allowed", "request_cost_cap", "request_token_cap", "concurrency_limit", "unpriced_model",
	"request_quota"
};

/* a + b into *out; false on overflow. */
bool
aos_cus_add_overflows(int64_t a, int64_t b, int64_t *out)
{
	return __builtin_add_overflow(a, b, out);
}

/* True when used * 100 >= limit * pct. */
bool
aos_cus_reached_pct(int64_t used, int64_t limit, int pct)
{
	return (__int128) used * 100 >= (__int128) limit * pct;
}

/* Verdict of one limit for one request. */
AosLimitVerdict
aos_cus_limit_verdict(int64_t used, int64_t estimate, int64_t limit, int warn_pct)
{
	__int128	after = (__int128) used + estimate;

	if (limit < 0)
		return AOS_LIMIT_OK;
	if (used >= limit || after > limit)
		return AOS_LIMIT_EXCEEDED;
	if (after * 100 >= (__int128) limit * warn_pct)
		return AOS_LIMIT_WARN;
	return AOS_LIMIT_OK;
}

/* Floor division for possibly negative times. */
static int64_t
floor_div(int64_t a, int64_t b)
{
	int64_t		q = a / b;

	return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Move the window to now's minute: one minute ahead shifts, more clears. */
void
aos_cus_rate_advance(AosRateWindow *w, int64_t now_us)
{
	int64_t		minute = floor_div(now_us, AOS_RATE_WINDOW_US);

	if (minute == w->minute)
		return;
	w->prev = (minute == w->minute + 1) ? w->curr : 0;
	w->curr = 0;
	w->minute = minute;
}

/* Admissions in now's minute, or in the one before it, still weigh on the next decision. */
bool
aos_cus_rate_live(const AosRateWindow *w, int64_t now_us)
{
	int64_t		minute = floor_div(now_us, AOS_RATE_WINDOW_US);

	if (w->minute == minute)
		return w->curr > 0 || w->prev > 0;
	return w->minute == minute - 1 && w->curr > 0;
}

/* Take back an admission of minute, never below zero; nothing once it is older than the previous minute. */
void
aos_cus_rate_unadmit(AosRateWindow *w, int64_t minute, int64_t amount)
{
	if (w->minute == minute)
		w->curr = w->curr > amount ? w->curr - amount : 0;
	else if (w->minute == minute + 1)
		w->prev = w->prev > amount ? w->prev - amount : 0;
}

/* Amount admitted in the current minute. */
int64_t
aos_cus_rate_current(const AosRateWindow *w)
{
	return w->curr;
}

/* Weighted count of the sliding window at now. */
int64_t
aos_cus_rate_weighted(const AosRateWindow *w, int64_t now_us)
{
	const __int128 W = AOS_RATE_WINDOW_US;
	int64_t		elapsed = now_us - w->minute * AOS_RATE_WINDOW_US;
	__int128	weighted = (__int128) w->prev * (W - elapsed) / W + w->curr;

	return weighted > INT64_MAX ? INT64_MAX : (int64_t) weighted;
}

/* Microseconds from the start of the window, 1000-rounded up to milliseconds. */
static int64_t
ceil_ms(__int128 us)
{
	return (int64_t) ((us + 999) / 1000);
}

/* Weighted admission test of the sliding-window counter, with the retry delay on refusal. */
bool
aos_cus_rate_admits(const AosRateWindow *w, int64_t now_us, int64_t limit,
				int64_t amount, int64_t *retry_ms)
{
	const __int128 W = AOS_RATE_WINDOW_US;
	int64_t		elapsed = now_us - w->minute * AOS_RATE_WINDOW_US;
	__int128	weighted = (__int128) w->prev * (W - elapsed) + ((__int128) w->curr + amount) * W;
	__int128	room;

	if (weighted <= (__int128) limit * W)
		return true;
	if (amount > limit)
	{
		/* Never admissible: say "one window", the earliest a smaller request could pass. */
		*retry_ms = AOS_RATE_WINDOW_US / 1000;
		return false;
	}
	/* Within this minute: prev's weight must fall to (limit - curr - amount) * W. */
	room = (__int128) limit - w->curr - amount;
	if (room >= 0 && w->prev > 0)
	{
		__int128	need_elapsed = W - (room * W) / w->prev;

		*retry_ms = ceil_ms(need_elapsed - elapsed);
		if (*retry_ms < 1)
			*retry_ms = 1;
		return false;
	}
	/* Next minute: curr becomes prev, whose weight must fall to (limit - amount) * W. */
	room = (__int128) limit - amount;
	*retry_ms = ceil_ms((W - elapsed) + (w->curr > 0 ? W - (room * W) / w->curr : 0));
	if (*retry_ms < 1)
		*retry_ms = 1;
	return false;
}

/* Precedence: state, then policy, then rate, then request quota, then budget, then tokens; warnings only when nothing blocks. */
AosDecision
aos_cus_decide(const AosVerdicts *v, AosReason *reason)
{
	AosReason	block = AOS_REASON_OK;

	if (!v->found)
	{
		*reason = AOS_REASON_NOT_FOUND;
		return AOS_DECISION_BLOCKED;
	}
	if (!v->enabled)
	{
		*reason = AOS_REASON_DISABLED;
		return AOS_DECISION_BLOCKED;
	}
	if (v->policy != AOS_REASON_OK)
		block = v->policy;
	else if (v->rate_limited)
		block = AOS_REASON_RATE_LIMITED;
	else if (v->quota_exceeded)
		block = AOS_REASON_REQUEST_QUOTA;
	else if (v->budget == AOS_LIMIT_EXCEEDED)
		block = AOS_REASON_BUDGET_EXCEEDED;
	else if (v->tokens == AOS_LIMIT_EXCEEDED)
		block = AOS_REASON_TOKEN_LIMIT_EXCEEDED;

	if (v->mode == AOS_MODE_OFF)
	{
		*reason = AOS_REASON_OK;
		return AOS_DECISION_ALLOWED;
	}
	if (block != AOS_REASON_OK)
	{
		*reason = block;
		return v->mode == AOS_MODE_WARN ? AOS_DECISION_WARNED : AOS_DECISION_BLOCKED;
	}
	if (v->budget == AOS_LIMIT_WARN)
	{
		*reason = AOS_REASON_BUDGET_WARNING;
		return AOS_DECISION_WARNED;
	}
	if (v->tokens == AOS_LIMIT_WARN)
	{
		*reason = AOS_REASON_TOKEN_WARNING;
		return AOS_DECISION_WARNED;
	}
	*reason = AOS_REASON_OK;
	return AOS_DECISION_ALLOWED;
}

/* SQL name of a decision. */
const char *
aos_cus_decision_name(AosDecision d)
{
	return decision_names[d];
}

/* SQL name of a reason. */
const char *
aos_cus_reason_name(AosReason r)
{
	return reason_names[r];
}

void
aos_cus_whole_utc_days(int64_t from, int64_t to, int64_t *d1, int64_t *d2)
{
	const int64_t day = INT64_C(86400000000);

	*d1 = from;
	*d2 = to;
	if (from != INT64_MIN && from != INT64_MAX && from % day != 0)
		*d1 = from - (from % day + day) % day + day;
	if (to != INT64_MIN && to != INT64_MAX)
		*d2 = to - (to % day + day) % day;
	if (*d1 > *d2)
		*d1 = *d2 = to;
}
