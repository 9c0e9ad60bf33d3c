/*
 * recommend.c
 *	  rec.recommend(user_id, n): the serving pipeline (see pipeline.h).
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "events/events.h"
#include "serve/pipeline.h"
#include "serve/serve.h"

static SPIPlanPtr exclusions_plan = NULL;

void
rec_request_add(RecRequest *req, int64 item_id, double score, double key,
				const char *source)
{
	if (req->n_cands == req->max_cands)
	{
		int			newmax = Max(64, req->max_cands * 2);

		if (req->cands == NULL)
			req->cands = MemoryContextAlloc(req->mcxt, sizeof(RecCandidate) * newmax);
		else
			req->cands = repalloc(req->cands, sizeof(RecCandidate) * newmax);
		req->max_cands = newmax;
	}
	req->cands[req->n_cands].item_id = item_id;
	req->cands[req->n_cands].score = score;
	req->cands[req->n_cands].key = key;
	req->cands[req->n_cands].source = source;
	req->n_cands++;
}

SPIPlanPtr
rec_keep_plan(SPIPlanPtr *plan, const char *query, int nargs, Oid *argtypes,
			  int cursor_options)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare_cursor(query, nargs, argtypes, cursor_options);

		if (p == NULL)
			elog(ERROR, "rec: SPI_prepare failed for \"%s\": %s",
				 query, SPI_result_code_string(SPI_result));
		if (SPI_keepplan(p) != 0)
			elog(ERROR, "rec: SPI_keepplan failed");
		*plan = p;
	}
	return *plan;
}

/*
 * Stage 1, resolve. A user the model deployed on the request's surface knows
 * is served by that model ("als"); anyone else (and everyone when no model is
 * deployed there) by the popularity source.
 */
static void
resolve(RecRequest *req, const char *surface)
{
	if (rec_resolve_model(req, surface))
		req->sources[req->n_sources++] = &rec_source_model;
	else
		req->sources[req->n_sources++] = &rec_source_popular;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

/*
 * Stage 2, exclusions: items the user has an event of a suppressing kind
 * for (e.g. purchase, hide). Read at every request: no cache, so an event
 * logged a moment ago counts.
 */
static void
load_exclusions(RecRequest *req)
{
	Oid			argtypes[1] = {INT8OID};
	Datum		args[1];
	int			ret;
	uint64		i;

	rec_keep_plan(&exclusions_plan,
				  "SELECT DISTINCT e.item_id FROM " REC_SCHEMA ".events e "
				  "JOIN " REC_SCHEMA ".event_kinds k ON k.kind = e.kind "
				  "WHERE e.user_id = $1 AND k.suppresses",
				  1, argtypes, 0);
	args[0] = Int64GetDatum(req->user_id);
	ret = SPI_execute_plan(exclusions_plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec.recommend: exclusions query failed: %s", SPI_result_code_string(ret));

	req->n_excluded = (int) SPI_processed;
	req->excluded = MemoryContextAlloc(req->mcxt, sizeof(int64) * Max(1, SPI_processed));
	for (i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		req->excluded[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													   SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_freetuptable(SPI_tuptable);
	qsort(req->excluded, req->n_excluded, sizeof(int64), cmp_int64);
}

/* Stage 3, candidates: run every source the resolve stage chose. */
static void
gather_candidates(RecRequest *req)
{
	for (int i = 0; i < req->n_sources; i++)
	{
		CHECK_FOR_INTERRUPTS();
		req->sources[i]->fetch(req, req->sources[i]);
	}
}

/*
 * Stage 4, filter: drop excluded items. (With a single source there are no
 * duplicates; the stage that merges several sources goes here.)
 */
static void
filter_candidates(RecRequest *req)
{
	int			kept = 0;

	for (int i = 0; i < req->n_cands; i++)
	{
		if (req->n_excluded > 0 &&
			bsearch(&req->cands[i].item_id, req->excluded, req->n_excluded,
					sizeof(int64), cmp_int64) != NULL)
			continue;
		req->cands[kept++] = req->cands[i];
	}
	req->n_cands = kept;
}

static int
cmp_candidate(const void *a, const void *b)
{
	const RecCandidate *x = a;
	const RecCandidate *y = b;

	if (x->key != y->key)
		return x->key > y->key ? -1 : 1;
	return (x->item_id > y->item_id) - (x->item_id < y->item_id);
}

/* Stage 5, rank: best key first (ties: lower item id), cut to n. */
static void
rank_candidates(RecRequest *req)
{
	qsort(req->cands, req->n_cands, sizeof(RecCandidate), cmp_candidate);
	if (req->n_cands > req->n)
		req->n_cands = req->n;
}

PG_FUNCTION_INFO_V1(rec_recommend);
Datum
rec_recommend(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RecRequest	req;
	int64		user_id = PG_GETARG_INT64(0);
	int32		n = PG_GETARG_INT32(1);
	char	   *surface = text_to_cstring(PG_GETARG_TEXT_PP(2));

	if (n < 1 || n > REC_MAX_RESULTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rec.recommend: n must be between 1 and %d, not %d",
						REC_MAX_RESULTS, n)));

	rec_init_materialized_srf(fcinfo);

	memset(&req, 0, sizeof(req));
	req.user_id = user_id;
	req.n = n;
	req.now = GetCurrentTransactionStartTimestamp();
	req.mcxt = CurrentMemoryContext;

	SPI_connect();
	resolve(&req, surface);
	load_exclusions(&req);
	gather_candidates(&req);
	filter_candidates(&req);
	rank_candidates(&req);
	SPI_finish();

	/* Stage 6, output. */
	for (int i = 0; i < req.n_cands; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int64GetDatum(req.cands[i].item_id);
		values[1] = Float8GetDatum(req.cands[i].score);
		values[2] = Int32GetDatum(i + 1);
		values[3] = CStringGetTextDatum(req.cands[i].source);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
