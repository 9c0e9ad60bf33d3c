/*
 * popularity.c
 *	  Time-decayed item popularity: the rec.popularity_half_life setting, the
 *	  log-domain helpers the maintenance trigger uses, and
 *	  rec.refresh_popularity().
 *
 * An item's popularity at time t is the sum over its events of
 * weight * value * 2^(-(t - occurred_at) / h). Taking the epoch of
 * TimestampTz (2000-01-01 UTC) as the origin, that is
 * 2^(-t/h) * sum 2^(log2(weight * value) + occurred_at / h), and the sum does
 * not depend on t. rec.item_popularity stores its log2 (score_log), so the
 * order of items never needs recomputing as time passes, new events are
 * folded in with one log-add, and nothing overflows however long the
 * history or short the half-life.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "events/events.h"

int			rec_popularity_half_life = 7 * 24 * 3600;

void
rec_events_init(void)
{
	DefineCustomIntVariable("rec.popularity_half_life",
							"Half-life of the time decay of item popularity.",
							"An event counts half as much after this long. "
							"rec.refresh_popularity() applies a new value.",
							&rec_popularity_half_life,
							7 * 24 * 3600, 1, INT_MAX,
							PGC_USERSET, GUC_UNIT_S,
							NULL, NULL, NULL);
}

/* log2(2^a + 2^b), exact to rounding for any finite a and b. */
static inline double
log2_add(double a, double b)
{
	double		hi = a > b ? a : b;
	double		lo = a > b ? b : a;

	return hi + log1p(exp2(lo - hi)) / M_LN2;
}

PG_FUNCTION_INFO_V1(rec_log2_add);
Datum
rec_log2_add(PG_FUNCTION_ARGS)
{
	double		a = PG_GETARG_FLOAT8(0);
	double		b = PG_GETARG_FLOAT8(1);

	if (isnan(a) || isnan(b))
		PG_RETURN_FLOAT8(get_float8_nan());
	if (isinf(a) || isinf(b))
		PG_RETURN_FLOAT8(a > b ? a : b);
	PG_RETURN_FLOAT8(log2_add(a, b));
}

/*
 * One event's term of score_log: log2(weight * value) + occurred_at / h, with
 * occurred_at in seconds since 2000-01-01 UTC. NULL when weight * value is
 * not positive: such events do not count towards popularity.
 */
PG_FUNCTION_INFO_V1(rec_popularity_log_weight);
Datum
rec_popularity_log_weight(PG_FUNCTION_ARGS)
{
	double		weight = PG_GETARG_FLOAT4(0);
	double		value = PG_GETARG_FLOAT4(1);
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	double		h = PG_GETARG_FLOAT8(3);
	double		w = weight * value;
	double		term;

	if (!(h > 0) || isinf(h))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("half-life must be a positive number of seconds")));
	if (!(w > 0) || isinf(w) || TIMESTAMP_NOT_FINITE(at))
		PG_RETURN_NULL();

	/*
	 * Finite for any half-life of a microsecond or more (the shortest an
	 * interval can hold); an absurdly short one could make it infinite,
	 * which would sort the item above everything for ever.
	 */
	term = log2(w) + ((double) at / USECS_PER_SEC) / h;
	if (!isfinite(term))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("popularity term out of range: half-life of %g seconds is too short", h)));
	PG_RETURN_FLOAT8(term);
}

/*
 * rec.refresh_popularity(): rebuild rec.item_popularity from rec.events with
 * the current rec.popularity_half_life, and record that half-life. Takes a
 * SHARE lock on rec.events, so event logging waits for the rebuild while
 * reads (and recommendations, which see the old table until commit) go on.
 * Returns the number of items with a popularity.
 */
PG_FUNCTION_INFO_V1(rec_refresh_popularity);
Datum
rec_refresh_popularity(PG_FUNCTION_ARGS)
{
	Oid			argtypes[1] = {FLOAT8OID};
	Datum		args[1];
	int			ret;
	uint64		items;

	args[0] = Float8GetDatum((double) rec_popularity_half_life);

	SPI_connect();

	ret = SPI_execute("LOCK TABLE " REC_SCHEMA ".events IN SHARE MODE", false, 0);
	if (ret != SPI_OK_UTILITY)
		elog(ERROR, "rec.refresh_popularity: LOCK failed: %s", SPI_result_code_string(ret));

	ret = SPI_execute_with_args(
								"INSERT INTO " REC_SCHEMA ".popularity_state AS s (singleton, half_life, refreshed_at) "
								"VALUES (true, pg_catalog.make_interval(secs => $1), pg_catalog.now()) "
								"ON CONFLICT (singleton) DO UPDATE "
								"SET half_life = excluded.half_life, refreshed_at = excluded.refreshed_at",
								1, argtypes, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "rec.refresh_popularity: state update failed: %s", SPI_result_code_string(ret));

	/* DELETE, not TRUNCATE: readers keep seeing the old rows until commit. */
	ret = SPI_execute("DELETE FROM " REC_SCHEMA ".item_popularity", false, 0);
	if (ret != SPI_OK_DELETE)
		elog(ERROR, "rec.refresh_popularity: DELETE failed: %s", SPI_result_code_string(ret));

	ret = SPI_execute_with_args(
								"INSERT INTO " REC_SCHEMA ".item_popularity (item_id, score_log, events) "
								"SELECT e.item_id, " REC_SCHEMA ".log2_sum_exp2(w.x), count(w.x) "
								"FROM " REC_SCHEMA ".events e "
								"JOIN " REC_SCHEMA ".event_kinds k ON k.kind = e.kind "
								"CROSS JOIN LATERAL (SELECT " REC_SCHEMA ".popularity_log_weight("
								"k.weight, e.value, LEAST(e.occurred_at, pg_catalog.now()), $1) AS x) w "
								"WHERE w.x IS NOT NULL "
								"GROUP BY e.item_id",
								1, argtypes, args, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "rec.refresh_popularity: rebuild failed: %s", SPI_result_code_string(ret));
	items = SPI_processed;

	SPI_finish();

	PG_RETURN_INT64((int64) items);
}
