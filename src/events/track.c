/*
 * track.c
 *	  rec.track(user_id, item_id, kind, value, at): log one interaction.
 *
 * One kept SPI plan inserts the event only if its kind exists, so an
 * unknown kind is reported here with a clear message instead of surfacing
 * from the table's trigger. The popularity trigger on rec.events runs in the
 * same statement; nothing is cached anywhere, so the next rec.recommend in
 * any session that sees this transaction's commit takes the event into
 * account.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "events/events.h"

static SPIPlanPtr track_plan = NULL;

static const char *const track_argnames[] = {"user_id", "item_id", "kind", "value", "at"};

PG_FUNCTION_INFO_V1(rec_track);
Datum
rec_track(PG_FUNCTION_ARGS)
{
	Datum		values[5];
	int			ret;
	float4		value;

	for (int i = 0; i < 5; i++)
	{
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("rec.track: %s must not be null", track_argnames[i])));
		values[i] = PG_GETARG_DATUM(i);
	}

	value = PG_GETARG_FLOAT4(3);
	if (isnan(value) || isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rec.track: value must be a finite number")));
	if (TIMESTAMP_NOT_FINITE(PG_GETARG_TIMESTAMPTZ(4)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rec.track: at must be a finite timestamp")));

	SPI_connect();

	if (track_plan == NULL)
	{
		Oid			argtypes[5] = {INT8OID, INT8OID, TEXTOID, FLOAT4OID, TIMESTAMPTZOID};
		SPIPlanPtr	plan;

		plan = SPI_prepare("INSERT INTO " REC_SCHEMA ".events "
						   "(user_id, item_id, kind, value, occurred_at) "
						   "SELECT $1, $2, k.kind, $4, $5 FROM " REC_SCHEMA ".event_kinds k "
						   "WHERE k.kind = $3",
						   5, argtypes);
		if (plan == NULL)
			elog(ERROR, "rec.track: SPI_prepare failed: %s",
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(plan);
		track_plan = plan;
	}

	ret = SPI_execute_plan(track_plan, values, NULL, false, 0);
	if (ret != SPI_OK_INSERT)
		elog(ERROR, "rec.track: insert failed: %s", SPI_result_code_string(ret));

	if (SPI_processed == 0)
	{
		char	   *known = NULL;

		ret = SPI_execute("SELECT string_agg(kind, ', ' ORDER BY kind) FROM "
						  REC_SCHEMA ".event_kinds", true, 0);
		if (ret == SPI_OK_SELECT && SPI_processed == 1)
			known = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);

		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown event kind \"%s\"",
						text_to_cstring(PG_GETARG_TEXT_PP(2))),
				 known ? errdetail("Known kinds: %s.", known) : 0,
				 errhint("Add new kinds to rec.event_kinds first.")));
	}

	SPI_finish();

	PG_RETURN_VOID();
}
