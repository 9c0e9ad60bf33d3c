/*
 * model.c
 *	  The "als" candidate source: the user's factors of the model deployed on
 *	  the surface, against the item factors of that model, read through the
 *	  item side's rec_hnsw index (largest inner product first).
 *
 * The resolve stage calls rec_resolve_model(): it reads rec.deployments and
 * the user's factor row once, under the request's snapshot, so a request is
 * served wholly by the version deployed when it started even while promote
 * or rollback switch versions. The version's tables are opened with a lock
 * (missing_ok), so a version retired meanwhile is simply not used. Users the
 * version does not know get the popularity source instead.
 *
 * A version's tables have its id in their names, so this source keeps its
 * SPI plans per version. They are keyed by the OIDs of the version's two
 * tables (and of rec.vector), not by the model id alone: after DROP EXTENSION
 * and CREATE EXTENSION in a long-lived session, model ids start again at 1,
 * and a plan kept for the old model 1 would name the dropped vector type.
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "events/events.h"
#include "serve/pipeline.h"

static SPIPlanPtr deployment_plan = NULL;

/* plans for one deployed version, and what they were prepared for */
static Oid	plans_user_table = InvalidOid;
static Oid	plans_item_table = InvalidOid;
static Oid	plans_vector_type = InvalidOid;
static SPIPlanPtr user_plan = NULL;
static SPIPlanPtr items_plan = NULL;

static Oid
model_table(int64 model_id, const char *side)
{
	RangeVar   *rv = makeRangeVar(REC_SCHEMA,
								  psprintf("model_" INT64_FORMAT "_%s_factors", model_id, side), -1);

	/* lock it, so a concurrent rec.retire() waits for this request */
	return RangeVarGetRelid(rv, AccessShareLock, true);
}

static void
forget_model_plans(void)
{
	if (user_plan)
		SPI_freeplan(user_plan);
	if (items_plan)
		SPI_freeplan(items_plan);
	user_plan = items_plan = NULL;
	plans_user_table = plans_item_table = plans_vector_type = InvalidOid;
}

/*
 * Make user_plan and items_plan the plans of this version, whose tables
 * have the given OIDs (locked by the caller).
 */
static void
prepare_model_plans(int64 model_id, Oid user_table, Oid item_table)
{
	Oid			uargs[1] = {INT8OID};
	Oid			iargs[2];
	Oid			vector_type;
	SPIPlanPtr	p;
	char	   *q;

	vector_type = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum("vector"),
								  ObjectIdGetDatum(get_namespace_oid(REC_SCHEMA, false)));
	if (user_plan != NULL && items_plan != NULL &&
		plans_user_table == user_table && plans_item_table == item_table &&
		plans_vector_type == vector_type)
		return;
	forget_model_plans();

	q = psprintf("SELECT factors FROM " REC_SCHEMA ".model_" INT64_FORMAT "_user_factors "
				 "WHERE user_id = $1", model_id);
	p = SPI_prepare(q, 1, uargs);
	if (p == NULL || SPI_keepplan(p) != 0)
		elog(ERROR, "rec: could not prepare \"%s\"", q);
	user_plan = p;

	/*
	 * Fast-start plan: the index returns items best first, and the join
	 * keeps the catalogue's available ones, until `want` are found.
	 */
	iargs[0] = vector_type;
	iargs[1] = INT8OID;
	q = psprintf("SELECT f.item_id, -(f.factors OPERATOR(" REC_SCHEMA ".<#>) $1) "
				 "FROM " REC_SCHEMA ".model_" INT64_FORMAT "_item_factors f "
				 "JOIN " REC_SCHEMA ".items i ON i.item_id = f.item_id "
				 "WHERE i.available "
				 "ORDER BY f.factors OPERATOR(" REC_SCHEMA ".<#>) $1 "
				 "LIMIT $2", model_id);
	p = SPI_prepare_cursor(q, 2, iargs, CURSOR_OPT_FAST_PLAN);
	if (p == NULL || SPI_keepplan(p) != 0)
		elog(ERROR, "rec: could not prepare \"%s\"", q);
	items_plan = p;

	/* both kept: only now do they count as this version's */
	plans_user_table = user_table;
	plans_item_table = item_table;
	plans_vector_type = vector_type;
}

/*
 * The deployed version for the surface, and the user's factors in it.
 * Returns false (leaving the request as it is) when there is no version,
 * its tables are gone, or it does not know the user.
 */
bool
rec_resolve_model(RecRequest *req, const char *surface)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1];
	int64		model_id;
	Oid			user_table;
	Oid			item_table;
	bool		isnull;
	Datum		d;
	int			ret;

	rec_keep_plan(&deployment_plan,
				  "SELECT model_id FROM " REC_SCHEMA ".deployments WHERE surface = $1",
				  1, argtypes, 0);
	args[0] = CStringGetTextDatum(surface);
	ret = SPI_execute_plan(deployment_plan, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec: deployment query failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return false;
	model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	SPI_freetuptable(SPI_tuptable);

	user_table = model_table(model_id, "user");
	item_table = model_table(model_id, "item");
	if (!OidIsValid(user_table) || !OidIsValid(item_table))
		return false;
	prepare_model_plans(model_id, user_table, item_table);

	args[0] = Int64GetDatum(req->user_id);
	ret = SPI_execute_plan(user_plan, args, NULL, true, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec: user factors query failed: %s", SPI_result_code_string(ret));
	if (SPI_processed == 0)
		return false;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	{
		MemoryContext old = MemoryContextSwitchTo(req->mcxt);

		req->user_factors = PointerGetDatum(PG_DETOAST_DATUM_COPY(d));
		MemoryContextSwitchTo(old);
	}
	req->model_id = model_id;
	SPI_freetuptable(SPI_tuptable);
	return true;
}

static void
model_fetch(RecRequest *req, const RecCandidateSource *self)
{
	Datum		args[2];
	int64		want = (int64) req->n + req->n_excluded;
	int			ret;

	/* rec_resolve_model() prepared items_plan for req->model_id */
	args[0] = req->user_factors;
	args[1] = Int64GetDatum(want);
	ret = SPI_execute_plan(items_plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec: model candidates query failed: %s", SPI_result_code_string(ret));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int64		item_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull));
		double		score = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 2, &isnull));

		rec_request_add(req, item_id, score, score, self->name);
	}
	SPI_freetuptable(SPI_tuptable);
}

const RecCandidateSource rec_source_model = {
	.name = "als",
	.fetch = model_fetch,
};
