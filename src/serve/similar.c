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
 * Two kept plans. The first reads the sampled (user, item) pairs; a
 * DestReceiver counts them in a hash table as the executor produces them
 * (no SPI tuple table). The second looks up availability and m_j for a batch
 * of candidates at a time. Since m_j >= c_j, score_j <= c/(c + lambda) *
 * sqrt(c/s), which grows with c: candidates are probed in decreasing c (ties:
 * increasing item id), PROBE_BATCH at a time, and probing stops as soon as n
 * results beat the bound of the largest c not yet probed. The answer is
 * exact for the sample, unless the stop comes only after
 * rec.similar_max_candidates candidates: then it is the best of those.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"

#include "events/events.h"
#include "serve/pipeline.h"
#include "serve/serve.h"
#include "serve/similar.h"

#define PROBE_BATCH 256

static SPIPlanPtr cooccurrence_plan = NULL;
static SPIPlanPtr probe_plan = NULL;

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
	int32		c;				/* sampled users with the item */
	int32		last_user;		/* sequence number of the last user counted */
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

/*
 * Receives the (user, item, s) rows of the co-occurrence query as the
 * executor produces them. The rows of one user come together (a nested loop
 * over the sampled users), so numbering the users as they change is enough
 * to count each user once per item.
 */
typedef struct CoocReceiver
{
	DestReceiver pub;
	cooc_hash  *counts;
	int64		user;
	int32		seq;			/* number of the current user, from 1 */
	double		s;				/* distinct sampled users */
} CoocReceiver;

static bool
recv_slot(TupleTableSlot *slot, DestReceiver *self)
{
	CoocReceiver *r = (CoocReceiver *) self;
	bool		isnull;
	int64		user = DatumGetInt64(slot_getattr(slot, 1, &isnull));
	int64		item = DatumGetInt64(slot_getattr(slot, 2, &isnull));
	CoocEntry  *entry;
	bool		found;

	if (r->seq == 0 || user != r->user)
	{
		r->seq++;
		r->user = user;
		r->s = DatumGetFloat8(slot_getattr(slot, 3, &isnull));
	}
	entry = cooc_insert(r->counts, item, &found);
	if (!found)
	{
		entry->c = 0;
		entry->last_user = 0;
	}
	if (entry->last_user != r->seq)
	{
		entry->c++;
		entry->last_user = r->seq;
	}
	return true;
}

static void
recv_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
}

static void
recv_shutdown(DestReceiver *self)
{
}

static void
recv_destroy(DestReceiver *self)
{
}

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
 * Run the co-occurrence query; return the candidates ordered by decreasing
 * c. Ties are left in any order here: the probe loop sorts each run of
 * equal c by item id when it gets to it. *s is set to the number of sampled
 * users.
 */
static SimilarCand *
count_cooccurrences(int64 item_id, int *ncands, double *s, MemoryContext mcxt)
{
	Oid			argtypes[3] = {INT8OID, INT4OID, INT4OID};
	Datum		args[3];
	ParamListInfo params = makeParamList(3);
	SPIExecuteOptions options;
	CoocReceiver recv;
	cooc_iterator it;
	CoocEntry  *entry;
	SimilarCand *cands;
	int		   *start;
	int			maxc = 0;
	int			n;
	int			ret;

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

	args[0] = Int64GetDatum(item_id);
	args[1] = Int32GetDatum(rec_similar_audience);
	args[2] = Int32GetDatum(rec_similar_history);
	for (int i = 0; i < 3; i++)
	{
		params->params[i].value = args[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = argtypes[i];
	}
	memset(&options, 0, sizeof(options));
	options.params = params;
	options.read_only = true;
	options.dest = (DestReceiver *) &recv;

	memset(&recv, 0, sizeof(recv));
	recv.pub.receiveSlot = recv_slot;
	recv.pub.rStartup = recv_startup;
	recv.pub.rShutdown = recv_shutdown;
	recv.pub.rDestroy = recv_destroy;
	recv.pub.mydest = DestNone;
	/* Sized for the usual number of distinct items, to avoid regrowing. */
	recv.counts = cooc_create(mcxt,
							  (uint32) Min((int64) rec_similar_audience * rec_similar_history / 2, 65536),
							  NULL);

	/* A SELECT into a receiver of type DestNone reports SPI_OK_UTILITY. */
	ret = SPI_execute_plan_extended(cooccurrence_plan, &options);
	if (ret != SPI_OK_UTILITY)
		elog(ERROR, "rec.similar_items: co-occurrence query failed: %s", SPI_result_code_string(ret));
	*s = recv.s;

	/* Counting sort by decreasing c. */
	cooc_start_iterate(recv.counts, &it);
	while ((entry = cooc_iterate(recv.counts, &it)) != NULL)
		maxc = Max(maxc, entry->c);
	start = MemoryContextAllocZero(mcxt, sizeof(int) * (maxc + 2));
	cooc_start_iterate(recv.counts, &it);
	while ((entry = cooc_iterate(recv.counts, &it)) != NULL)
		start[maxc - entry->c + 1]++;
	for (int k = 1; k <= maxc + 1; k++)
		start[k] += start[k - 1];
	n = (int) recv.counts->members;
	cands = MemoryContextAlloc(mcxt, sizeof(SimilarCand) * Max(n, 1));
	cooc_start_iterate(recv.counts, &it);
	while ((entry = cooc_iterate(recv.counts, &it)) != NULL)
	{
		SimilarCand *cand = &cands[start[maxc - entry->c]++];

		cand->item_id = entry->item_id;
		cand->c = entry->c;
		cand->score = 0;
	}
	cooc_destroy(recv.counts);
	pfree(start);

	*ncands = n;
	return cands;
}

/*
 * Look up cands[from..to), which are sorted by item id: keep the available
 * ones, scored, appending them to out[*nout].
 */
static void
probe(SimilarCand *cands, int from, int to, double s, double lambda,
	  SimilarCand *out, int *nout)
{
	Oid			argtypes[1] = {INT8ARRAYOID};
	Datum		args[1];
	Datum	   *ids;
	int			count = to - from;
	int			ret;

	rec_keep_plan(&probe_plan,
				  "SELECT i.item_id, coalesce(p.events, 0) "
				  "FROM " REC_SCHEMA ".items i "
				  "LEFT JOIN " REC_SCHEMA ".item_popularity p ON p.item_id = i.item_id "
				  "WHERE i.item_id = ANY ($1) AND i.available",
				  1, argtypes, 0);

	ids = palloc(sizeof(Datum) * count);
	for (int i = 0; i < count; i++)
		ids[i] = Int64GetDatum(cands[from + i].item_id);
	args[0] = PointerGetDatum(construct_array(ids, count, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));

	ret = SPI_execute_plan(probe_plan, args, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "rec.similar_items: probe failed: %s", SPI_result_code_string(ret));

	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		bool		isnull;
		SimilarCand key;
		SimilarCand *cand;
		double		m;
		double		c;

		key.item_id = DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 1, &isnull));
		m = (double) DatumGetInt64(SPI_getbinval(tup, SPI_tuptable->tupdesc, 2, &isnull));
		cand = bsearch(&key, &cands[from], count, sizeof(SimilarCand), cmp_item);
		if (cand == NULL)
			continue;
		c = cand->c;
		out[*nout].item_id = cand->item_id;
		out[*nout].c = cand->c;
		out[*nout].score = shrunk(c, lambda) * c / sqrt(s * Max(m, c));
		(*nout)++;
	}
	SPI_freetuptable(SPI_tuptable);
	pfree(ids);
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
	SimilarCand *cands;
	SimilarCand *out;
	SimilarCand *batch;
	int			ncands;
	int			limit;
	int			nout = 0;
	int			sorted_to = 0;
	double		s = 0;

	if (n < 1 || n > REC_MAX_RESULTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rec.similar_items: n must be between 1 and %d, not %d",
						REC_MAX_RESULTS, n)));

	rec_init_materialized_srf(fcinfo);

	SPI_connect();
	cands = count_cooccurrences(item_id, &ncands, &s, mcxt);
	out = MemoryContextAlloc(mcxt, sizeof(SimilarCand) * Max(ncands, 1));
	batch = MemoryContextAlloc(mcxt, sizeof(SimilarCand) * PROBE_BATCH);

	/* Probe in decreasing c, a batch at a time. */
	limit = Min(ncands, rec_similar_max_candidates);
	for (int from = 0; from < limit;)
	{
		int			to = Min(limit, from + PROBE_BATCH);

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

		/* Order each run of equal c that this batch reaches by item id. */
		while (sorted_to < to)
		{
			int			end = sorted_to;

			while (end < ncands && cands[end].c == cands[sorted_to].c)
				end++;
			qsort(&cands[sorted_to], end - sorted_to, sizeof(SimilarCand), cmp_item);
			sorted_to = end;
		}

		/* The probe wants its batch sorted by item id. */
		memcpy(batch, &cands[from], sizeof(SimilarCand) * (to - from));
		qsort(batch, to - from, sizeof(SimilarCand), cmp_item);
		probe(batch, 0, to - from, s, lambda, out, &nout);
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
