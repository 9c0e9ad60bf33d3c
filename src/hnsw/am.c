/*
 * am.c
 *	  rec_hnsw: the access method handler, reloptions, settings and the
 *	  planner's cost estimate.
 */
#include "postgres.h"

#include <float.h>
#include <limits.h>
#include <math.h>

#include "access/amapi.h"
#include "access/reloptions.h"
#include "commands/progress.h"
#include "commands/vacuum.h"
#include "storage/bufmgr.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/rel.h"
#include "utils/selfuncs.h"
#include "utils/spccache.h"

#include "hnsw/hnsw.h"
#include "hnsw/hnsw_int.h"

int			rec_hnsw_ef_search = 0;
int			rec_hnsw_max_scan_tuples = 50000;
bool		rec_hnsw_exact_fallback = true;

static relopt_kind rhnsw_relopt_kind;

void
rec_hnsw_init(void)
{
	rhnsw_relopt_kind = add_reloption_kind();
	add_int_reloption(rhnsw_relopt_kind, "m",
					  "Neighbours per element on the upper layers (twice as many on layer 0)",
					  RHNSW_DEFAULT_M, RHNSW_MIN_M, RHNSW_MAX_M, AccessExclusiveLock);
	add_int_reloption(rhnsw_relopt_kind, "ef_construction",
					  "Search width while building the graph",
					  RHNSW_DEFAULT_EFC, RHNSW_MIN_EFC, RHNSW_MAX_EFC, AccessExclusiveLock);
	add_bool_reloption(rhnsw_relopt_kind, "angular_links",
					   "Inner product over vectors of differing norms: also link neighbours by angle",
					   true, AccessExclusiveLock);

	DefineCustomIntVariable("rec.hnsw_ef_search",
							"Search width of rec_hnsw index scans (0: the width calibrated when the index was built).",
							"Larger values find more of the true nearest neighbours and take longer.",
							&rec_hnsw_ef_search, 0, 0, 1000,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("rec.hnsw_max_scan_tuples",
							"Most index elements the graph search of one rec_hnsw scan examines.",
							"A scan whose rows are rejected by filters keeps searching the graph "
							"until it has examined this many elements; then it finishes with an "
							"exact pass (rec.hnsw_exact_fallback) or returns what it has found.",
							&rec_hnsw_max_scan_tuples, 50000, 1, INT_MAX,
							PGC_USERSET, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("rec.hnsw_exact_fallback",
							 "Finishes rec_hnsw scans that outrun the graph search with an exact pass.",
							 "When the graph search has spent its budget (rec.hnsw_max_scan_tuples, or "
							 "earlier, once it has cost as much as an exact pass would), the scan "
							 "returns the remaining rows in exact distance order, so that a filtered "
							 "query returns LIMIT rows whenever that many rows match.",
							 &rec_hnsw_exact_fallback, true,
							 PGC_USERSET, 0, NULL, NULL, NULL);
}

static char *
rhnsw_buildphasename(int64 phasenum)
{
	switch (phasenum)
	{
		case PROGRESS_CREATEIDX_SUBPHASE_INITIALIZE:
			return "initializing";
		case RHNSW_PHASE_LOAD:
			return "loading tuples";
		case RHNSW_PHASE_GRAPH:
			return "building graph";
		case RHNSW_PHASE_WRITE:
			return "writing index";
		case RHNSW_PHASE_CALIBRATE:
			return "calibrating search width";
		case RHNSW_PHASE_OVERFLOW:
			return "inserting rows beyond maintenance_work_mem";
		default:
			return NULL;
	}
}

static bytea *
rhnsw_amoptions(Datum reloptions, bool validate)
{
	static const relopt_parse_elt tab[] = {
		{"m", RELOPT_TYPE_INT, offsetof(RHnswOptions, m)},
		{"ef_construction", RELOPT_TYPE_INT, offsetof(RHnswOptions, efc)},
		{"angular_links", RELOPT_TYPE_BOOL, offsetof(RHnswOptions, angular_links)},
	};

	return (bytea *) build_reloptions(reloptions, validate, rhnsw_relopt_kind,
									  sizeof(RHnswOptions), tab, lengthof(tab));
}

/*
 * Cost: the startup cost is that of one ef_search-wide search (the
 * elements it examines, as random page reads); the total cost is that of
 * walking the whole graph. With ORDER BY ... LIMIT k the planner charges
 * startup + k/N of the rest, so the index wins for small k; without a
 * LIMIT, or with no ORDER BY on the index's operator, it does not.
 */
static void
rhnsw_costestimate(PlannerInfo *root, IndexPath *path, double loop_count,
				   Cost *indexStartupCost, Cost *indexTotalCost,
				   Selectivity *indexSelectivity, double *indexCorrelation,
				   double *indexPages)
{
	GenericCosts costs;
	double		tuples = path->indexinfo->tuples;
	double		ratio = 1.0;
	int			m = RHNSW_DEFAULT_M;
	int			efc;
	int			ef = RHNSW_DEFAULT_EF_SEARCH;

	if (path->indexorderbys == NIL)
	{
		*indexStartupCost = get_float8_infinity();
		*indexTotalCost = get_float8_infinity();
		*indexSelectivity = 0;
		*indexCorrelation = 0;
		*indexPages = 0;
		return;
	}

	MemSet(&costs, 0, sizeof(costs));
	genericcostestimate(root, path, loop_count, &costs);

	{
		Relation	index = index_open(path->indexinfo->indexoid, NoLock);

		RHnswMetaData meta;

		rhnsw_options(index, &m, &efc);
		if (RelationGetNumberOfBlocks(index) > 0)
		{
			rhnsw_read_meta(index, &meta);
			ef = rhnsw_effective_ef(&meta);
		}
		index_close(index, NoLock);
	}

	if (tuples > 1)
	{
		/* elements examined: ~ ef * 2m * (fraction unvisited) + upper layers */
		double		examined = ef * 2.0 * m * 0.5 +
			m * log(tuples) / log(m);

		ratio = Min(examined / tuples, 1.0);
	}

	*indexStartupCost = costs.indexTotalCost * ratio;
	*indexTotalCost = costs.indexTotalCost;
	*indexSelectivity = costs.indexSelectivity;
	*indexCorrelation = 0;
	*indexPages = costs.numIndexPages;
}

static bool
rhnsw_validate(Oid opclassoid)
{
	return true;
}

PG_FUNCTION_INFO_V1(rec_hnsw_handler);
Datum
rec_hnsw_handler(PG_FUNCTION_ARGS)
{
	IndexAmRoutine *am = makeNode(IndexAmRoutine);

	am->amstrategies = 0;
	am->amsupport = 1;
	am->amoptsprocnum = 0;
	am->amcanorder = false;
	am->amcanorderbyop = true;
	am->amcanbackward = false;
	am->amcanunique = false;
	am->amcanmulticol = false;
	am->amoptionalkey = true;
	am->amsearcharray = false;
	am->amsearchnulls = false;
	am->amstorage = false;
	am->amclusterable = false;
	am->ampredlocks = false;
	am->amcanparallel = false;
	am->amcaninclude = false;
	am->amusemaintenanceworkmem = false;
	am->amparallelvacuumoptions = VACUUM_OPTION_PARALLEL_BULKDEL;
	am->amkeytype = InvalidOid;

	am->ambuild = rhnsw_build;
	am->ambuildempty = rhnsw_buildempty;
	am->aminsert = rhnsw_insert;
	am->ambulkdelete = rhnsw_bulkdelete;
	am->amvacuumcleanup = rhnsw_vacuumcleanup;
	am->amcanreturn = NULL;
	am->amcostestimate = rhnsw_costestimate;
	am->amoptions = rhnsw_amoptions;
	am->amproperty = NULL;
	am->ambuildphasename = rhnsw_buildphasename;
	am->amvalidate = rhnsw_validate;
	am->amadjustmembers = NULL;
	am->ambeginscan = rhnsw_beginscan;
	am->amrescan = rhnsw_rescan;
	am->amgettuple = rhnsw_gettuple;
	am->amgetbitmap = NULL;
	am->amendscan = rhnsw_endscan;
	am->ammarkpos = NULL;
	am->amrestrpos = NULL;
	am->amestimateparallelscan = NULL;
	am->aminitparallelscan = NULL;
	am->amparallelrescan = NULL;

	PG_RETURN_POINTER(am);
}
