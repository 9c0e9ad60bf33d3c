/*
 * popular.c
 *	  The "popular" candidate source: the catalogue's available items in order
 *	  of time-decayed popularity, read from rec.item_popularity (maintained by
 *	  src/events), never aggregated per request.
 *
 * score = 2^(score_log - now / half_life): the item's weighted event count
 * decayed to the start of the current transaction, with the half-life the
 * table was built with (rec.popularity_state). It ranks by score_log, which
 * keeps its order where the decayed score underflows to zero (events
 * hundreds of half-lives old).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "nodes/parsenodes.h"

#include "events/events.h"
#include "serve/pipeline.h"

static SPIPlanPtr popular_plan = NULL;
static SPIPlanPtr half_life_plan = NULL;

static double
popularity_half_life_seconds(void)
{
	int			ret;
	bool		isnull;
	Datum		d;

	rec_keep_plan(&half_life_plan,
				  "SELECT date_part('epoch', half_life) FROM " REC_SCHEMA ".popularity_state",
				  0, NULL, 0);
	ret = SPI_execute_plan(half_life_plan, NULL, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec: popularity state query failed: %s", SPI_result_code_string(ret));
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rec.popularity_state is empty"),
				 errhint("Run SELECT rec.refresh_popularity();")));
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	SPI_freetuptable(SPI_tuptable);
	return DatumGetFloat8(d);
}

static void
popular_fetch(RecRequest *req, const RecCandidateSource *self)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	int64		want = (int64) req->n + req->n_excluded;
	double		h = popularity_half_life_seconds();
	double		now_log = ((double) req->now / USECS_PER_SEC) / h;
	int			ret;
	uint64		i;

	/*
	 * Fast-start plan: walk the score index and probe rec.items per row,
	 * stopping after `want` available items.
	 */
	rec_keep_plan(&popular_plan,
				  "SELECT p.item_id, p.score_log "
				  "FROM " REC_SCHEMA ".item_popularity p "
				  "JOIN " REC_SCHEMA ".items i ON i.item_id = p.item_id "
				  "WHERE i.available "
				  "ORDER BY p.score_log DESC, p.item_id "
				  "LIMIT $1",
				  1, argtypes, CURSOR_OPT_FAST_PLAN);
	args[0] = Int64GetDatum(want);
	ret = SPI_execute_plan(popular_plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec: popular candidates query failed: %s", SPI_result_code_string(ret));

	for (i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		int64		item_id = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		double		score_log = DatumGetFloat8(SPI_getbinval(tup, desc, 2, &isnull));

		rec_request_add(req, item_id, exp2(score_log - now_log), score_log, self->name);
	}
	SPI_freetuptable(SPI_tuptable);
}

const RecCandidateSource rec_source_popular = {
	.name = "popular",
	.fetch = popular_fetch,
};
