/*
 * enforce_math.h: the arithmetic of enforcement, free of Postgres headers so
 * it is unit-tested on its own: limit checks with warning thresholds, the
 * sliding-window rate counter, the precedence that turns the separate
 * verdicts into one decision, and the whole UTC days of a period.
 */
#ifndef AOS_CUS_ENFORCE_MATH_H
#define AOS_CUS_ENFORCE_MATH_H

#include <stdbool.h>
#include <stdint.h>

/* Length of a rate window: one minute in microseconds. */
#define AOS_RATE_WINDOW_US INT64_C(60000000)

/* Outcome of one check (order matches the SQL enum text in enforce_sql.c). */
typedef enum AosDecision
{
	AOS_DECISION_ALLOWED,
	AOS_DECISION_WARNED,
	AOS_DECISION_BLOCKED,
	AOS_DECISION_COUNT
} AosDecision;

/* Why a check decided as it did. */
typedef enum AosReason
{
	AOS_REASON_OK,
	AOS_REASON_NOT_FOUND,
	AOS_REASON_DISABLED,
	AOS_REASON_RATE_LIMITED,
	AOS_REASON_BUDGET_EXCEEDED,
	AOS_REASON_TOKEN_LIMIT_EXCEEDED,
	AOS_REASON_BUDGET_WARNING,
	AOS_REASON_TOKEN_WARNING,
	AOS_REASON_ALREADY_INGESTED,	/* check() of a call_id whose usage is recorded: nothing reserved */
	AOS_REASON_MODEL_NOT_ALLOWED,
	AOS_REASON_REQUEST_COST_CAP,
	AOS_REASON_REQUEST_TOKEN_CAP,
	AOS_REASON_CONCURRENCY_LIMIT,
	AOS_REASON_UNPRICED_MODEL,	/* check() naming a model with no price, under the unpriced rule block */
	AOS_REASON_REQUEST_QUOTA,	/* rph or rpd: the calendar hour's or day's request count */
	AOS_REASON_COUNT
} AosReason;

/* Enforcement mode of an integration. */
typedef enum AosMode
{
	AOS_MODE_ENFORCE,
	AOS_MODE_WARN,
	AOS_MODE_OFF
} AosMode;

/* Verdict of one limit (budget or tokens) for one request. */
typedef enum AosLimitVerdict
{
	AOS_LIMIT_OK,
	AOS_LIMIT_WARN,
	AOS_LIMIT_EXCEEDED
} AosLimitVerdict;

/* The separate verdicts that precedence combines. */
typedef struct AosVerdicts
{
	bool		found;			/* the integration exists and is not deleted */
	bool		enabled;		/* its status is 'enabled' */
	AosMode		mode;
	AosReason	policy;			/* a policy refusal (model, request caps, concurrency), else AOS_REASON_OK */
	bool		rate_limited;	/* rpm or tpm would be exceeded */
	bool		quota_exceeded; /* rph or rpd would be exceeded */
	AosLimitVerdict budget;
	AosLimitVerdict tokens;
} AosVerdicts;

/* Sliding-window counter: counts of the current and previous minute of the epoch. */
typedef struct AosRateWindow
{
	int64_t		minute;			/* epoch minute the "current" count belongs to */
	int64_t		prev;			/* amount admitted in minute - 1 */
	int64_t		curr;			/* amount admitted in minute */
} AosRateWindow;

/* a + b into *out; false (and *out untouched) on int64 overflow. */
bool		aos_cus_add_overflows(int64_t a, int64_t b, int64_t *out);

/*
 * Verdict of a limit: EXCEEDED when used >= limit or used + estimate > limit,
 * WARN when used + estimate reaches warn_pct percent of the limit, else OK.
 * limit < 0 means no limit (always OK). Exact for every int64 input.
 */
AosLimitVerdict aos_cus_limit_verdict(int64_t used, int64_t estimate, int64_t limit, int warn_pct);

/* True when used has reached pct percent of limit (limit >= 0), exactly. */
bool		aos_cus_reached_pct(int64_t used, int64_t limit, int pct);

/* Move the window to the minute containing now_us (microseconds since the epoch). */
void		aos_cus_rate_advance(AosRateWindow *w, int64_t now_us);

/*
 * Would admitting amount keep the weighted count within limit?
 * prev * (W - elapsed) / W + curr + amount <= limit, in 128-bit integers.
 * Call after aos_cus_rate_advance. On refusal *retry_ms is the wait until it would pass.
 */
bool		aos_cus_rate_admits(const AosRateWindow *w, int64_t now_us, int64_t limit,
							int64_t amount, int64_t *retry_ms);

/* True while admissions of the window still count at now_us (current or previous minute): resetting it would admit more. */
bool		aos_cus_rate_live(const AosRateWindow *w, int64_t now_us);

/* Take back amount admitted in minute (an undone decision): from curr, or from prev once the window moved one minute on. */
void		aos_cus_rate_unadmit(AosRateWindow *w, int64_t minute, int64_t amount);

/* The weighted count the admission test compares: prev * (W - elapsed) / W + curr, rounded down (after aos_cus_rate_advance). */
int64_t		aos_cus_rate_weighted(const AosRateWindow *w, int64_t now_us);

/* Amount admitted in the current minute (after aos_cus_rate_advance). */
int64_t		aos_cus_rate_current(const AosRateWindow *w);

/*
 * The UTC midnights [*d1, *d2) bounding the whole UTC days inside [from, to)
 * (microseconds from a UTC midnight; INT64_MIN and INT64_MAX are -infinity
 * and infinity and stay so): daily rollups hold those days, raw rows the
 * partial days at either edge. A range inside one UTC day has none: both
 * are set to to.
 */
void		aos_cus_whole_utc_days(int64_t from, int64_t to, int64_t *d1, int64_t *d2);

/* Combine verdicts by the documented precedence into a decision and reason. */
AosDecision aos_cus_decide(const AosVerdicts *v, AosReason *reason);

/* SQL names of decisions and reasons. */
const char *aos_cus_decision_name(AosDecision d);
const char *aos_cus_reason_name(AosReason r);

#endif
