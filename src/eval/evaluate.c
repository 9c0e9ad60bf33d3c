/*
 * evaluate.c
 *	  rec.evaluate(model_id, holdout, k, negatives, exclude, label): offline
 *	  evaluation of a trained model, stored in the model's metrics.
 *
 * Two protocols:
 *	- full ranking (no negatives): each holdout user's items are ranked among
 *	  all items of the model, leaving out the items the user already has in
 *	  `exclude` (by default the model's training source, run as the role
 *	  that queued the model), apart from the held-out items themselves;
 *	- sampled (He et al. 2017): each user's held-out items are ranked among
 *	  them plus the given negatives (a negative equal to a held-out item
 *	  counts once, as in NCF's evaluation code). Items the model does not
 *	  know score 0. A user without negatives is not evaluated (its items
 *	  would rank first among themselves alone) but counted.
 *
 * Either way the top k (score descending, ties by item id ascending) is
 * scored with the metrics of eval.h and averaged over the users the model
 * knows; users it does not know are counted as skipped.
 *
 * The model's factors are read from its tables (rec.model_<id>_item_factors
 * and _user_factors) in bulk through SPI cursors; scores use the vector
 * subsystem's SIMD dot product.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/acl.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/syscache.h"

#include "eval/eval.h"
#include "vector/vector.h"

#define FETCH_BATCH 10000

typedef struct Pair
{
	int64		user;
	int64		item;
} Pair;

typedef struct PairList
{
	Pair	   *p;
	int64		n;
	int64		cap;
} PairList;

typedef struct Factors
{
	int64	   *ids;			/* sorted ascending */
	float	   *x;				/* n * dim */
	int64		n;
	int			dim;
} Factors;

static void
pairs_add(PairList *l, int64 u, int64 i)
{
	if (l->n == l->cap)
	{
		int64		ncap = l->cap ? l->cap * 2 : 1024;

		l->p = l->p ? repalloc_huge(l->p, sizeof(Pair) * ncap)
			: palloc_extended(sizeof(Pair) * ncap, MCXT_ALLOC_HUGE);
		l->cap = ncap;
	}
	l->p[l->n].user = u;
	l->p[l->n].item = i;
	l->n++;
}

static int
cmp_pair(const void *a, const void *b)
{
	const Pair *x = a,
			   *y = b;

	if (x->user != y->user)
		return x->user < y->user ? -1 : 1;
	if (x->item != y->item)
		return x->item < y->item ? -1 : 1;
	return 0;
}

static int
cmp_int64(const void *a, const void *b)
{
	int64		x = *(const int64 *) a,
				y = *(const int64 *) b;

	return x < y ? -1 : x > y;
}

/* A relation name or a query, as a query. */
static char *
source_query(const char *src)
{
	bool		quoted = false;
	List	   *names;

	for (const char *s = src; *s; s++)
	{
		if (*s == '"')
			quoted = !quoted;
		else if (!quoted && (isspace((unsigned char) *s) || *s == '(' || *s == ';'))
			return pstrdup(src);
	}
	names = stringToQualifiedNameList(src);
	return psprintf("SELECT * FROM %s", NameListToQuotedString(names));
}

static int64
int_value(HeapTuple tup, TupleDesc td, int col, bool *isnull)
{
	Datum		d = SPI_getbinval(tup, td, col, isnull);
	Oid			t = SPI_gettypeid(td, col);

	if (*isnull)
		return 0;
	switch (t)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		case INT8OID:
			return DatumGetInt64(d);
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %s must be smallint, integer or bigint, not %s",
							SPI_fname(td, col), format_type_be(t))));
	}
	return 0;
}

/* Run "SELECT user_id, item_id FROM (query)" with the given arguments. */
static void
fetch_pairs(const char *what, const char *query, int nargs, Oid *types, Datum *vals,
			PairList *out)
{
	char	   *sql = psprintf("SELECT s.user_id, s.item_id FROM (%s\n) s", query);
	Portal		portal;

	portal = SPI_cursor_open_with_args(NULL, sql, nargs, types, vals, NULL, true, 0);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		n1,
						n2;
			int64		u = int_value(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &n1);
			int64		i = int_value(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &n2);

			if (!n1 && !n2)
				pairs_add(out, u, i);
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	if (out->n > 0)
		qsort(out->p, out->n, sizeof(Pair), cmp_pair);
	(void) what;
}

/*
 * The model's training source, for the default exclusion set. Its text was
 * written by the role that queued the model, so it runs as that role, with
 * the search_path it was queued with and under SECURITY_RESTRICTED_OPERATION,
 * exactly as the training worker ran it: whoever evaluates (an analyst, a
 * superuser) never runs another role's query with their own privileges.
 */
static void
fetch_training_pairs(int64 model_id, const char *query, Oid role,
					 const char *search_path, Oid *types, Datum *vals, PairList *out)
{
	Oid			saved_user;
	int			saved_sec;
	int			nest;

	/* by OID: a role dropped and created again under its name is another */
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that trained model " INT64_FORMAT " (OID %u) no longer exists",
						model_id, role),
				 errhint("Give the items to exclude with the exclude argument.")));
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(role, saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest = NewGUCNestLevel();
	if (search_path)
		(void) set_config_option("search_path", search_path,
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	fetch_pairs("exclude", psprintf("SELECT e.user_id, e.item_id FROM (%s\n) e "
									"WHERE e.user_id IN (SELECT pg_catalog.unnest($1))", query),
				1, types, vals, out);
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(saved_user, saved_sec);
}

/* Load (id, factors) rows, sorted by id. */
static void
fetch_factors(const char *query, int nargs, Oid *types, Datum *vals, Factors *f)
{
	Portal		portal = SPI_cursor_open_with_args(NULL, query, nargs, types, vals, NULL, true, 0);
	int64		cap = 0;

	memset(f, 0, sizeof(*f));
	for (;;)
	{
		SPI_cursor_fetch(portal, true, FETCH_BATCH);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		isnull;
			int64		id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &isnull));
			Datum		d = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &isnull);
			RecVector  *v;

			if (isnull)
				continue;
			v = DatumGetRecVector(d);
			if (f->dim == 0)
				f->dim = v->dim;
			else if (v->dim != f->dim)
				ereport(ERROR,
						(errcode(ERRCODE_DATA_CORRUPTED),
						 errmsg("factors of different dimensions (%d and %d) in one model", f->dim, v->dim)));
			if (f->n == cap)
			{
				cap = cap ? cap * 2 : 1024;
				f->ids = f->ids ? repalloc_huge(f->ids, sizeof(int64) * cap)
					: palloc_extended(sizeof(int64) * cap, MCXT_ALLOC_HUGE);
				f->x = f->x ? repalloc_huge(f->x, sizeof(float) * f->dim * cap)
					: palloc_extended(sizeof(float) * f->dim * cap, MCXT_ALLOC_HUGE);
			}
			f->ids[f->n] = id;
			memcpy(f->x + f->n * f->dim, v->x, sizeof(float) * f->dim);
			f->n++;
		}
		SPI_freetuptable(SPI_tuptable);
		CHECK_FOR_INTERRUPTS();
	}
	SPI_cursor_close(portal);
	for (int64 i = 1; i < f->n; i++)
		if (f->ids[i - 1] >= f->ids[i])
			elog(ERROR, "factor rows are not sorted by id");
}

static int64
factor_index(const Factors *f, int64 id)
{
	const int64 *p = bsearch(&id, f->ids, f->n, sizeof(int64), cmp_int64);

	return p ? p - f->ids : -1;
}

typedef struct Scored
{
	int64		id;
	float		score;
} Scored;

/* better-first: score descending, then id ascending */
static inline bool
better(float s1, int64 id1, float s2, int64 id2)
{
	return s1 > s2 || (s1 == s2 && id1 < id2);
}

static int
cmp_scored(const void *a, const void *b)
{
	const Scored *x = a,
			   *y = b;

	if (better(x->score, x->id, y->score, y->id))
		return -1;
	if (better(y->score, y->id, x->score, x->id))
		return 1;
	return 0;
}

/* Keep the k best in a min-heap (heap[0] is the worst kept). */
static void
heap_offer(Scored *heap, int *n, int k, float score, int64 id)
{
	int			i;

	if (*n < k)
	{
		i = (*n)++;
		while (i > 0)
		{
			int			p = (i - 1) / 2;

			if (!better(heap[p].score, heap[p].id, score, id))
				break;
			heap[i] = heap[p];
			i = p;
		}
		heap[i].score = score;
		heap[i].id = id;
		return;
	}
	if (!better(score, id, heap[0].score, heap[0].id))
		return;
	i = 0;
	for (;;)
	{
		int			l = 2 * i + 1,
					r = l + 1,
					w = i;
		float		ws = score;
		int64		wid = id;

		if (l < k && better(ws, wid, heap[l].score, heap[l].id))
			w = l, ws = heap[l].score, wid = heap[l].id;
		if (r < k && better(ws, wid, heap[r].score, heap[r].id))
			w = r;
		if (w == i)
			break;
		heap[i] = heap[w];
		i = w;
	}
	heap[i].score = score;
	heap[i].id = id;
}

PG_FUNCTION_INFO_V1(rec_evaluate);
Datum
rec_evaluate(PG_FUNCTION_ARGS)
{
	int64		model_id;
	char	   *holdout_arg = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		k;
	char	   *neg_arg = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	char	   *excl_arg = PG_ARGISNULL(4) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(4));
	char	   *label = PG_ARGISNULL(5) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(5));
	bool		sampled = neg_arg != NULL;
	Oid			int8type = INT8OID;
	Datum		arg;
	char	   *status;
	char	   *model_source = NULL;
	Oid			model_requester = InvalidOid;
	char	   *model_search_path = NULL;
	Factors		items,
				users;
	PairList	hold = {0},
				negs = {0},
				excl = {0};
	int64	   *uids;
	int64		nusers = 0;
	Datum	   *udatums;
	ArrayType  *uarray;
	Oid			arrtype = INT8ARRAYOID;
	double		sum_p = 0,
				sum_r = 0,
				sum_h = 0,
				sum_n = 0,
				sum_ap = 0;
	int64		evaluated = 0,
				skipped = 0,
				no_negatives = 0;
	float	   *scores = NULL;
	uint32	   *mark = NULL;
	uint32		stamp = 0;
	Scored	   *heap;
	StringInfoData res;
	char	   *key;
	Datum		jb;
	MemoryContext callcxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model_id and k must not be null")));
	model_id = PG_GETARG_INT64(0);
	k = PG_GETARG_INT32(2);
	if (k < 1 || k > 10000)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be between 1 and 10000, not %d", k)));
	if (sampled && excl_arg)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("exclude applies to the full-ranking protocol only"),
				 errhint("With negatives, each user's items are ranked among the negatives alone.")));

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	arg = Int64GetDatum(model_id);
	if (SPI_execute_with_args("SELECT status, source_query, requested_by::pg_catalog.oid, "
							  "params OPERATOR(pg_catalog.->>) 'search_path' "
							  "FROM rec.models WHERE model_id OPERATOR(pg_catalog.=) $1",
							  1, &int8type, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read rec.models");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model " INT64_FORMAT " does not exist", model_id)));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	model_source = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);
	{
		bool		isnull;

		model_requester = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 3, &isnull));
		if (isnull)
			model_requester = InvalidOid;
	}
	model_search_path = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4);
	if (strcmp(status, "ready") != 0 && strcmp(status, "promoted") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model " INT64_FORMAT " has status %s; only ready and promoted models can be evaluated",
						model_id, status)));

	/* the held-out pairs */
	if (holdout_arg)
		fetch_pairs("holdout", source_query(holdout_arg), 0, NULL, NULL, &hold);
	else
	{
		fetch_pairs("holdout", "SELECT user_id, item_id FROM rec.model_holdout WHERE model_id = $1",
					1, &int8type, &arg, &hold);
		if (hold.n == 0)
			ereport(ERROR,
					(errcode(ERRCODE_NO_DATA_FOUND),
					 errmsg("model " INT64_FORMAT " has no holdout", model_id),
					 errhint("Pass a holdout table or query, or train with holdout => true.")));
	}

	/* distinct users of the holdout */
	uids = palloc_extended(sizeof(int64) * Max(hold.n, 1), MCXT_ALLOC_HUGE);
	for (int64 j = 0; j < hold.n; j++)
		if (j == 0 || hold.p[j].user != hold.p[j - 1].user)
			uids[nusers++] = hold.p[j].user;
	udatums = palloc_extended(sizeof(Datum) * Max(nusers, 1), MCXT_ALLOC_HUGE);
	for (int64 j = 0; j < nusers; j++)
		udatums[j] = Int64GetDatum(uids[j]);
	uarray = construct_array(udatums, (int) nusers, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);

	/* the model */
	fetch_factors(psprintf("SELECT item_id, factors FROM rec.model_" INT64_FORMAT "_item_factors ORDER BY item_id",
						   model_id), 0, NULL, NULL, &items);
	arg = PointerGetDatum(uarray);
	fetch_factors(psprintf("SELECT user_id, factors FROM rec.model_" INT64_FORMAT "_user_factors "
						   "WHERE user_id = ANY($1) ORDER BY user_id", model_id),
				  1, &arrtype, &arg, &users);
	if (users.n > 0 && items.n > 0 && users.dim != items.dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("user and item factors of model " INT64_FORMAT " differ in dimensions", model_id)));

	if (sampled)
		fetch_pairs("negatives", psprintf("SELECT n.user_id, n.item_id FROM (%s\n) n "
										  "WHERE n.user_id IN (SELECT pg_catalog.unnest($1))",
										  source_query(neg_arg)),
					1, &arrtype, &arg, &negs);
	else
	{
		if (excl_arg)
			fetch_pairs("exclude", psprintf("SELECT e.user_id, e.item_id FROM (%s\n) e "
											"WHERE e.user_id IN (SELECT pg_catalog.unnest($1))",
											source_query(excl_arg)),
						1, &arrtype, &arg, &excl);
		else
			fetch_training_pairs(model_id, model_source, model_requester, model_search_path,
								 &arrtype, &arg, &excl);
		scores = palloc_extended(sizeof(float) * Max(items.n, 1), MCXT_ALLOC_HUGE);
		mark = palloc_extended(sizeof(uint32) * Max(items.n, 1), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO);
	}
	heap = palloc(sizeof(Scored) * k);

	{
		int64		h = 0,
					ng = 0,
					ex = 0;
		int64	   *rel = palloc(sizeof(int64) * 16);
		int			relcap = 16;
		int64	   *ranked = palloc(sizeof(int64) * k);
		Scored	   *cand = NULL;
		int64		candcap = 0;

		for (int64 ui = 0; ui < nusers; ui++)
		{
			int64		u = uids[ui];
			int64		x = factor_index(&users, u);
			int			nrel = 0,
						nheap = 0;
			const float *xu;
			RecRankMetrics m;

			/* one user may score every item of the model: check each time */
			CHECK_FOR_INTERRUPTS();

			/* this user's relevant items (hold is sorted by user, item) */
			for (; h < hold.n && hold.p[h].user == u; h++)
			{
				if (nrel > 0 && rel[nrel - 1] == hold.p[h].item)
					continue;
				if (nrel == relcap)
					rel = repalloc(rel, sizeof(int64) * (relcap *= 2));
				rel[nrel++] = hold.p[h].item;
			}
			while (ng < negs.n && negs.p[ng].user < u)
				ng++;
			while (ex < excl.n && excl.p[ex].user < u)
				ex++;
			if (x < 0 || users.dim == 0)
			{
				skipped++;
				continue;
			}
			xu = users.x + x * users.dim;

			if (sampled)
			{
				int64		nc = 0;

				if (ng >= negs.n || negs.p[ng].user != u)
				{
					/* nothing to rank against: a hit by construction */
					no_negatives++;
					continue;
				}
				/* candidates: relevant items and negatives, each once */
				for (; ng < negs.n && negs.p[ng].user == u; ng++)
				{
					if (nc == candcap)
					{
						candcap = candcap ? candcap * 2 : 256;
						cand = cand ? repalloc_huge(cand, sizeof(Scored) * candcap)
							: palloc_extended(sizeof(Scored) * candcap, MCXT_ALLOC_HUGE);
					}
					cand[nc++].id = negs.p[ng].item;
				}
				for (int r = 0; r < nrel; r++)
				{
					if (nc == candcap)
					{
						candcap = candcap ? candcap * 2 : 256;
						cand = cand ? repalloc_huge(cand, sizeof(Scored) * candcap)
							: palloc_extended(sizeof(Scored) * candcap, MCXT_ALLOC_HUGE);
					}
					cand[nc++].id = rel[r];
				}
				for (int64 c = 0; c < nc; c++)
				{
					int64		y = factor_index(&items, cand[c].id);

					cand[c].score = y < 0 ? 0.0f :
						rec_kernel_dot(xu, items.x + y * items.dim, items.dim);
				}
				/* sort by id to drop duplicates (a negative equal to a held-out item) */
				qsort(cand, nc, sizeof(Scored), cmp_int64);
				{
					int64		w = 0;

					for (int64 c = 0; c < nc; c++)
						if (w == 0 || cand[w - 1].id != cand[c].id)
							cand[w++] = cand[c];
					nc = w;
				}
				for (int64 c = 0; c < nc; c++)
					heap_offer(heap, &nheap, k, cand[c].score, cand[c].id);
			}
			else
			{
				/* every item of the model but the user's other known ones */
				if (++stamp == 0)
				{
					memset(mark, 0, sizeof(uint32) * items.n);
					stamp = 1;
				}
				for (; ex < excl.n && excl.p[ex].user == u; ex++)
				{
					int64		item = excl.p[ex].item;
					int64		y;

					if (bsearch(&item, rel, nrel, sizeof(int64), cmp_int64))
						continue;
					y = factor_index(&items, item);
					if (y >= 0)
						mark[y] = stamp;
				}
				for (int64 y = 0; y < items.n; y++)
				{
					if (mark[y] == stamp)
						continue;
					scores[y] = rec_kernel_dot(xu, items.x + y * items.dim, items.dim);
					heap_offer(heap, &nheap, k, scores[y], items.ids[y]);
				}
				/* held-out items the model does not know score 0 */
				for (int r = 0; r < nrel; r++)
					if (factor_index(&items, rel[r]) < 0)
						heap_offer(heap, &nheap, k, 0.0f, rel[r]);
			}

			qsort(heap, nheap, sizeof(Scored), cmp_scored);
			for (int i = 0; i < nheap; i++)
				ranked[i] = heap[i].id;
			rec_eval_metrics(ranked, NULL, nheap, rel, nrel, k, &m);
			if (!m.defined)
				continue;
			evaluated++;
			sum_p += m.precision;
			sum_r += m.recall;
			sum_h += m.hit_rate;
			sum_n += m.ndcg;
			sum_ap += m.ap;
		}
	}

	{
		MemoryContext old = MemoryContextSwitchTo(callcxt);

		initStringInfo(&res);
		MemoryContextSwitchTo(old);
	}
	appendStringInfo(&res, "{\"protocol\": \"%s\", \"k\": %d, \"users\": " INT64_FORMAT
					 ", \"users_skipped\": " INT64_FORMAT,
					 sampled ? "sampled" : "full", k, evaluated, skipped);
	if (sampled)
		appendStringInfo(&res, ", \"users_without_negatives\": " INT64_FORMAT, no_negatives);
	if (evaluated > 0)
		appendStringInfo(&res, ", \"hit_rate\": %s, \"ndcg\": %s, \"recall\": %s, \"precision\": %s, \"map\": %s",
						 float8out_internal(sum_h / evaluated), float8out_internal(sum_n / evaluated),
						 float8out_internal(sum_r / evaluated), float8out_internal(sum_p / evaluated),
						 float8out_internal(sum_ap / evaluated));
	appendStringInfoString(&res, ", \"holdout\": ");
	escape_json(&res, holdout_arg ? holdout_arg : "the model's holdout");
	if (sampled)
	{
		appendStringInfoString(&res, ", \"negatives\": ");
		escape_json(&res, neg_arg);
	}
	else
	{
		appendStringInfoString(&res, ", \"exclude\": ");
		escape_json(&res, excl_arg ? excl_arg : "the model's training source");
	}
	appendStringInfoChar(&res, '}');

	key = label ? label : psprintf("%s@%d", sampled ? "sampled" : "full", k);
	{
		Datum		vals[3];
		Oid			types[3] = {INT8OID, TEXTOID, TEXTOID};

		vals[0] = Int64GetDatum(model_id);
		vals[1] = CStringGetTextDatum(key);
		vals[2] = CStringGetTextDatum(res.data);
		if (SPI_execute_with_args("UPDATE rec.models SET metrics = metrics || "
								  "pg_catalog.jsonb_build_object($2, $3::pg_catalog.jsonb || "
								  "pg_catalog.jsonb_build_object('evaluated_at', pg_catalog.now())) "
								  "WHERE model_id = $1",
								  3, types, vals, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not store the evaluation of model " INT64_FORMAT, model_id);
	}
	SPI_finish();

	MemoryContextSwitchTo(callcxt);
	jb = DirectFunctionCall1(jsonb_in, CStringGetDatum(res.data));
	PG_RETURN_DATUM(jb);
}
