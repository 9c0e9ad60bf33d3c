/*
 * metrics.c
 *	  Ranking metrics as SQL functions: rec.precision_at_k, rec.recall_at_k,
 *	  rec.hit_rate_at_k, rec.ndcg_at_k and rec.average_precision_at_k, over
 *	  (ranked bigint[], relevant bigint[], k integer). Definitions in eval.h.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/qunique.h"
#include "utils/array.h"
#include "utils/lsyscache.h"

#include "eval/eval.h"

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

int
rec_eval_sort_distinct(int64 *ids, int n)
{
	if (n <= 1)
		return n;
	qsort(ids, n, sizeof(int64), cmp_int64);
	return (int) qunique(ids, n, sizeof(int64), cmp_int64);
}

void
rec_eval_metrics(const int64 *ranked, const bool *ranked_null, int n,
				 const int64 *relevant, int nrel, int k, RecRankMetrics *out)
{
	bool	   *seen = nrel > 0 ? palloc0(sizeof(bool) * nrel) : NULL;
	int			limit = Min(n, k);
	int			hits = 0;
	double		dcg = 0.0,
				idcg = 0.0,
				ap = 0.0;

	for (int i = 0; i < limit; i++)
	{
		const int64 *found;

		if (nrel == 0 || (ranked_null && ranked_null[i]))
			continue;
		found = bsearch(&ranked[i], relevant, nrel, sizeof(int64), cmp_int64);
		if (found == NULL || seen[found - relevant])
			continue;
		seen[found - relevant] = true;
		hits++;
		dcg += 1.0 / log2(i + 2.0);
		ap += (double) hits / (i + 1.0);
	}
	for (int i = 0; i < Min(k, nrel); i++)
		idcg += 1.0 / log2(i + 2.0);

	out->precision = (double) hits / k;
	out->defined = nrel > 0;
	if (nrel > 0)
	{
		out->recall = (double) hits / nrel;
		out->hit_rate = hits > 0 ? 1.0 : 0.0;
		out->ndcg = dcg / idcg;
		out->ap = ap / Min(k, nrel);
	}
	else
		out->recall = out->hit_rate = out->ndcg = out->ap = 0.0;
	if (seen)
		pfree(seen);
}

/* the common front of the SQL functions */
static RecRankMetrics
metrics_from_args(FunctionCallInfo fcinfo)
{
	ArrayType  *ranked = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *relevant = PG_GETARG_ARRAYTYPE_P(1);
	int32		k = PG_GETARG_INT32(2);
	Datum	   *rv,
			   *lv;
	bool	   *rn,
			   *ln;
	int			nr,
				nl,
				m = 0;
	int64	   *rids,
			   *lids;
	RecRankMetrics out;

	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1, not %d", k)));
	if (ARR_NDIM(ranked) > 1 || ARR_NDIM(relevant) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("ranked and relevant must be one-dimensional arrays")));
	deconstruct_array(ranked, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &rv, &rn, &nr);
	deconstruct_array(relevant, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE, &lv, &ln, &nl);

	rids = palloc(sizeof(int64) * Max(nr, 1));
	for (int i = 0; i < nr; i++)
		rids[i] = rn[i] ? 0 : DatumGetInt64(rv[i]);
	lids = palloc(sizeof(int64) * Max(nl, 1));
	for (int i = 0; i < nl; i++)
		if (!ln[i])
			lids[m++] = DatumGetInt64(lv[i]);
	m = rec_eval_sort_distinct(lids, m);
	rec_eval_metrics(rids, rn, nr, lids, m, k, &out);
	return out;
}

PG_FUNCTION_INFO_V1(rec_precision_at_k);
Datum
rec_precision_at_k(PG_FUNCTION_ARGS)
{
	RecRankMetrics m = metrics_from_args(fcinfo);

	PG_RETURN_FLOAT8(m.precision);
}

PG_FUNCTION_INFO_V1(rec_recall_at_k);
Datum
rec_recall_at_k(PG_FUNCTION_ARGS)
{
	RecRankMetrics m = metrics_from_args(fcinfo);

	if (!m.defined)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(m.recall);
}

PG_FUNCTION_INFO_V1(rec_hit_rate_at_k);
Datum
rec_hit_rate_at_k(PG_FUNCTION_ARGS)
{
	RecRankMetrics m = metrics_from_args(fcinfo);

	if (!m.defined)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(m.hit_rate);
}

PG_FUNCTION_INFO_V1(rec_ndcg_at_k);
Datum
rec_ndcg_at_k(PG_FUNCTION_ARGS)
{
	RecRankMetrics m = metrics_from_args(fcinfo);

	if (!m.defined)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(m.ndcg);
}

PG_FUNCTION_INFO_V1(rec_average_precision_at_k);
Datum
rec_average_precision_at_k(PG_FUNCTION_ARGS)
{
	RecRankMetrics m = metrics_from_args(fcinfo);

	if (!m.defined)
		PG_RETURN_NULL();
	PG_RETURN_FLOAT8(m.ap);
}
