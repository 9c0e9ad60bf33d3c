/*
 * similar.c
 *	  rec.similar_items(item_id, n): items that the same users interacted
 *	  with, by shrunk cosine similarity over co-interaction counts.
 *
 * Bounded work: the item's audience is sampled from its most recent events
 * (up to rec.similar_audience of them), and of each sampled user only the
 * most recent rec.similar_history events count. Events of zero-weight kinds
 * (e.g. hide) count for neither. For a co-occurring item j:
 *
 *	  score_j = c_j / (c_j + lambda) * c_j / sqrt(s * m_j)
 *
 * s: distinct sampled users; c_j: how many of them have j among their
 * counted events; m_j: j's events that count towards popularity
 * (rec.item_popularity.events, at least c_j); lambda:
 * rec.similar_shrinkage, which keeps items seen once by one user from
 * topping the list. Without truncation, one event per user and item and
 * lambda = 0 this is the cosine between the two items' sets of users.
 *
 * Two kept plans: one reads the sampled (user, item) pairs, counted here in
 * a hash table, the other looks up
 * availability and event counts for a batch of candidates at a time. Since
 * m_j >= c_j, score_j <= c/(c + lambda) * sqrt(c/s), which grows with c: the
 * candidates are probed in decreasing c, PROBE_BATCH at a time, and probing
 * stops as soon as n results beat the bound of the largest c not yet probed.
 * The answer is exact for the sample.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "events/events.h"
#include "serve/pipeline.h"
#include "serve/serve.h"
#include "serve/similar.h"

#define PROBE_BATCH 256

/* 64-bit finaliser of MurmurHash3, folded to 32 bits. */
static inline uint32
hash_item_id(int64 key)
{
	uint64		h = (uint64) key;

	h ^= h >> 33;
	h *= UINT64CONST(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64CONST(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return (uint32) h;
}

/* Co-occurrence counts: item id -> number of sampled users. */
typedef struct CoocEntry
{
	int64		item_id;
	int32		c;
	char		status;
} CoocEntry;

#define SH_PREFIX cooc
#define SH_ELEMENT_TYPE CoocEntry
#define SH_KEY_TYPE int64
#define SH_KEY item_id
#define SH_HASH_KEY(tb, key) hash_item_id(key)
#define SH_EQUAL(tb, a, b) ((a) == (b))
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

static SPIPlanPtr cooccurrence_plan = NULL;
static SPIPlanPtr probe_plan = NULL;

typedef struct SimilarCand
{
	int64		item_id;
	int32		c;
	double		score;
} SimilarCand;

static int
cmp_score(const void *a, const void *b)
{
	const SimilarCand *x = a;
	const SimilarCand *y = b;

	if (x->score != y->score)
		return x->score > y->score ? -1 : 1;
	return (x->item_id > y->item_id) - (x->item_id < y->item_id);
}

static int
cmp_item(const void *a, const void *b)
{
	const SimilarCand *x = a;
	const SimilarCand *y = b;

	return (x->item_id > y->item_id) - (x->item_id < y->item_id);
}

/* Decreasing co-count, then item id. */
static int
cmp_count(const void *a, const void *b)
{
	const SimilarCand *x = a;
	const SimilarCand *y = b;

	if (x->c != y->c)
		return x->c > y->c ? -1 : 1;
	return (x->item_id > y->item_id) - (x->item_id < y->item_id);
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a;
	int64		y = *(const int64 *) b;

	return (x > y) - (x < y);
}

static double
shrunk(double c, double lambda)
{
	return c / (c + lambda);
}

/* Upper bound of the score of any candidate with co-count c. */
static double
score_bound(double c, double s, double lambda)
{
	return shrunk(c, lambda) * sqrt(c / s);
}

/*
 * Look up cands[from..to): keep the available ones, scored, appending them
 * to out[*nout].
 */
static void
probe(SimilarCand *cands, int from, int to, double s, double lambda,
	  SimilarCand *out, int *nout)
{
	Oid			argtypes[1] = {INT8ARRAYOID};
	Datum		args[1];
	Datum	   *ids;
	SimilarCand *sorted;
	int			count = to - from;
	int			ret;

	rec_keep_plan(&probe_plan,
				  "SELECT i.item_id, coalesce(p.events, 0) "
				  "FROM " REC_SCHEMA ".items i "
				  "LEFT JOIN " REC_SCHEMA ".item_popularity p ON p.item_id = i.item_id "
				  "WHERE i.item_id = ANY ($1) AND i.available",
				  1, argtypes, 0);

	ids = palloc(sizeof(Datum) * count);
	sorted = palloc(sizeof(SimilarCand) * count);
	for (int i = 0; i < count; i++)
	{
		ids[i] = Int64GetDatum(cands[from + i].item_id);
		sorted[i] = cands[from + i];
	}
	qsort(sorted, count, sizeof(SimilarCand), cmp_item);
	args[0] = PointerGetDatum(construct_array(ids, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	ret = SPI_execute_plan(probe_plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec.similar_items: probe failed: %s", SPI_result_code_string(ret));

	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		bool		isnull;
		int64		id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		double		m = (double) DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		SimilarCand key = {.item_id = id};
		SimilarCand *cand = bsearch(&key, sorted, count, sizeof(SimilarCand), cmp_item);
		double		c;

		if (cand == NULL)
			continue;
		c = cand->c;
		out[*nout].item_id = id;
		out[*nout].c = (int32) c;
		out[*nout].score = shrunk(c, lambda) * c / sqrt(s * Max(m, c));
		(*nout)++;
	}
	SPI_freetuptable(SPI_tuptable);
	pfree(ids);
	pfree(sorted);
}

PG_FUNCTION_INFO_V1(rec_similar_items);
Datum
rec_similar_items(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int64		item_id = PG_GETARG_INT64(0);
	int32		n = PG_GETARG_INT32(1);
	double		lambda = rec_similar_shrinkage;
	MemoryContext mcxt = CurrentMemoryContext;
	Oid			argtypes[3] = {INT8OID, INT4OID, INT4OID};
	Datum		args[3];
	int			ret;
	SimilarCand *cands;
	SimilarCand *out;
	int			ncands;
	int			nout = 0;
	double		s = 0;

	if (n < 1 || n > REC_MAX_RESULTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rec.similar_items: n must be between 1 and %d, not %d",
						REC_MAX_RESULTS, n)));

	InitMaterializedSRF(fcinfo, 0);

	args[0] = Int64GetDatum(item_id);
	args[1] = Int32GetDatum(rec_similar_audience);
	args[2] = Int32GetDatum(rec_similar_history);

	SPI_connect();
	rec_keep_plan(&cooccurrence_plan,
				  "WITH audience AS MATERIALIZED ("
				  "  SELECT DISTINCT a.user_id FROM ("
				  "    SELECT e.user_id FROM " REC_SCHEMA ".events e"
				  "     WHERE e.item_id = $1"
				  "       AND NOT (e.kind = ANY (ARRAY(SELECT k.kind FROM " REC_SCHEMA ".event_kinds k WHERE k.weight = 0)))"
				  "     ORDER BY e.occurred_at DESC LIMIT $2) a"
				  ") "
				  "SELECT u.user_id, h.item_id, (SELECT count(*) FROM audience)::float8 "
				  "FROM audience u "
				  "CROSS JOIN LATERAL ("
				  "  SELECT e.item_id FROM " REC_SCHEMA ".events e"
				  "   WHERE e.user_id = u.user_id"
				  "     AND NOT (e.kind = ANY (ARRAY(SELECT k.kind FROM " REC_SCHEMA ".event_kinds k WHERE k.weight = 0)))"
				  "   ORDER BY e.occurred_at DESC LIMIT $3) h "
				  "WHERE h.item_id <> $1",
				  3, argtypes, 0);
	ret = SPI_execute_plan(cooccurrence_plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec.similar_items: co-occurrence query failed: %s", SPI_result_code_string(ret));

	/*
	 * Rows come grouped by user (the nested loop's order). Count each item
	 * once per user.
	 */
	{
		uint64		nrows = SPI_processed;
		int64	   *block = palloc(sizeof(int64) * Max(rec_similar_history, 1));
		cooc_hash  *counts = cooc_create(mcxt, 1024, NULL);
		cooc_iterator it;
		CoocEntry  *entry;
		uint64		r = 0;

		while (r < nrows)
		{
			bool		isnull;
			int64		user = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			int			nb = 0;

			s = DatumGetFloat8(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 3, &isnull));
			while (r < nrows && nb < rec_similar_history &&
				   DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull)) == user)
			{
				block[nb++] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull));
				r++;
			}
			qsort(block, nb, sizeof(int64), cmp_int64);
			for (int i = 0; i < nb; i++)
			{
				bool		found;

				if (i > 0 && block[i] == block[i - 1])
					continue;
				entry = cooc_insert(counts, block[i], &found);
				if (!found)
					entry->c = 0;
				entry->c++;
			}
		}
		SPI_freetuptable(SPI_tuptable);

		ncands = (int) counts->members;
		cands = MemoryContextAlloc(mcxt, sizeof(SimilarCand) * Max(ncands, 1));
		out = MemoryContextAlloc(mcxt, sizeof(SimilarCand) * Max(ncands, 1));
		ncands = 0;
		cooc_start_iterate(counts, &it);
		while ((entry = cooc_iterate(counts, &it)) != NULL)
		{
			cands[ncands].item_id = entry->item_id;
			cands[ncands].c = entry->c;
			cands[ncands].score = 0;
			ncands++;
		}
		cooc_destroy(counts);
		pfree(block);
		qsort(cands, ncands, sizeof(SimilarCand), cmp_count);
	}

	/* Probe in decreasing c, a batch at a time. */
	for (int from = 0; from < ncands;)
	{
		int			to = Min(ncands, from + PROBE_BATCH);

		CHECK_FOR_INTERRUPTS();

		/*
		 * Stop when n results already beat anything not yet probed, whose c
		 * is at most cands[from].c.
		 */
		if (nout >= n)
		{
			qsort(out, nout, sizeof(SimilarCand), cmp_score);
			nout = n;
			if (out[n - 1].score > score_bound(cands[from].c, s, lambda))
				break;
		}
		probe(cands, from, to, s, lambda, out, &nout);
		from = to;
	}
	SPI_finish();

	qsort(out, nout, sizeof(SimilarCand), cmp_score);
	for (int i = 0; i < Min(nout, n); i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = Int64GetDatum(out[i].item_id);
		values[1] = Float8GetDatum(out[i].score);
		values[2] = Int32GetDatum(i + 1);
		values[3] = CStringGetTextDatum("co-occurrence");
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	return (Datum) 0;
}
