/*
 * vector_agg.c
 *	  The aggregates avg(vector) and sum(vector).
 *
 * Both share one transition state: a row count and a running sum per
 * element in double precision, kept in the aggregate's memory context and
 * updated in place (no allocation per row). Sums of float4 values cannot
 * overflow a double in any table PostgreSQL can hold, so the only range
 * check is at the end, when sum() turns its totals back into float4.
 *
 * For parallel aggregation the state has a combine function and a
 * serialized form (bytea: int64 count, int32 dim, then dim float8 sums, all
 * network byte order).
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"

#include "vector/vector.h"

typedef struct VectorAggState
{
	int64		count;			/* non-NULL rows seen */
	int			dim;
	double		sum[FLEXIBLE_ARRAY_MEMBER];
} VectorAggState;

#define AGG_STATE_SIZE(dim) (offsetof(VectorAggState, sum) + sizeof(double) * (dim))

static MemoryContext
agg_context(FunctionCallInfo fcinfo, const char *fname)
{
	MemoryContext ctx;

	if (!AggCheckCallContext(fcinfo, &ctx))
		elog(ERROR, "%s called in non-aggregate context", fname);
	return ctx;
}

static VectorAggState *
new_state(MemoryContext ctx, int dim)
{
	VectorAggState *s = MemoryContextAllocZero(ctx, AGG_STATE_SIZE(dim));

	s->dim = dim;
	return s;
}

static void
check_state_dim(const VectorAggState *s, int dim)
{
	if (s->dim != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("cannot aggregate vectors with different dimensions: %d and %d",
						s->dim, dim)));
}

PG_FUNCTION_INFO_V1(rec_vector_agg_accum);
Datum
rec_vector_agg_accum(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "rec_vector_agg_accum");
	VectorAggState *s = PG_ARGISNULL(0) ? NULL : (VectorAggState *) PG_GETARG_POINTER(0);
	RecVector  *v;

	if (PG_ARGISNULL(1))
	{
		if (s == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s);
	}
	v = PG_GETARG_RECVECTOR_P(1);
	if (s == NULL)
		s = new_state(ctx, v->dim);
	else
		check_state_dim(s, v->dim);

	s->count++;
	for (int i = 0; i < v->dim; i++)
		s->sum[i] += (double) v->x[i];

	PG_FREE_IF_COPY(v, 1);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(rec_vector_agg_combine);
Datum
rec_vector_agg_combine(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "rec_vector_agg_combine");
	VectorAggState *s1 = PG_ARGISNULL(0) ? NULL : (VectorAggState *) PG_GETARG_POINTER(0);
	VectorAggState *s2 = PG_ARGISNULL(1) ? NULL : (VectorAggState *) PG_GETARG_POINTER(1);

	if (s2 == NULL)
	{
		if (s1 == NULL)
			PG_RETURN_NULL();
		PG_RETURN_POINTER(s1);
	}
	if (s1 == NULL)
	{
		/* The result must live in the aggregate context: copy s2 there. */
		s1 = new_state(ctx, s2->dim);
		s1->count = s2->count;
		memcpy(s1->sum, s2->sum, sizeof(double) * s2->dim);
		PG_RETURN_POINTER(s1);
	}
	check_state_dim(s1, s2->dim);
	s1->count += s2->count;
	for (int i = 0; i < s1->dim; i++)
		s1->sum[i] += s2->sum[i];
	PG_RETURN_POINTER(s1);
}

PG_FUNCTION_INFO_V1(rec_vector_agg_serialize);
Datum
rec_vector_agg_serialize(PG_FUNCTION_ARGS)
{
	VectorAggState *s;
	StringInfoData buf;

	agg_context(fcinfo, "rec_vector_agg_serialize");
	s = (VectorAggState *) PG_GETARG_POINTER(0);
	pq_begintypsend(&buf);
	pq_sendint64(&buf, s->count);
	pq_sendint32(&buf, s->dim);
	for (int i = 0; i < s->dim; i++)
		pq_sendfloat8(&buf, s->sum[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(rec_vector_agg_deserialize);
Datum
rec_vector_agg_deserialize(PG_FUNCTION_ARGS)
{
	MemoryContext ctx = agg_context(fcinfo, "rec_vector_agg_deserialize");
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	int64		count;
	int			dim;
	VectorAggState *s;

	/* A read-only StringInfo over the bytea, as PostgreSQL's own do. */
	initStringInfo(&buf);
	appendBinaryStringInfo(&buf, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));

	count = pq_getmsgint64(&buf);
	dim = pq_getmsgint(&buf, 4);
	if (count < 1 || dim < 1 || dim > REC_VECTOR_MAX_DIM)
		elog(ERROR, "invalid serialized vector aggregate state");
	/* The caller's context is short-lived; the state belongs to the aggregate. */
	s = new_state(ctx, dim);
	s->count = count;
	for (int i = 0; i < dim; i++)
		s->sum[i] = pq_getmsgfloat8(&buf);
	pq_getmsgend(&buf);
	pfree(buf.data);
	PG_RETURN_POINTER(s);
}

PG_FUNCTION_INFO_V1(rec_vector_avg_final);
Datum
rec_vector_avg_final(PG_FUNCTION_ARGS)
{
	VectorAggState *s;
	RecVector  *r;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();		/* avg of no rows is NULL, as in SQL */
	s = (VectorAggState *) PG_GETARG_POINTER(0);
	r = rec_vector_new(s->dim);
	/* A mean lies within the range of its inputs: it fits float4. */
	for (int i = 0; i < s->dim; i++)
		r->x[i] = (float) (s->sum[i] / (double) s->count);
	PG_RETURN_RECVECTOR_P(r);
}

PG_FUNCTION_INFO_V1(rec_vector_sum_final);
Datum
rec_vector_sum_final(PG_FUNCTION_ARGS)
{
	VectorAggState *s;
	RecVector  *r;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();		/* sum of no rows is NULL, as in SQL */
	s = (VectorAggState *) PG_GETARG_POINTER(0);
	r = rec_vector_new(s->dim);
	for (int i = 0; i < s->dim; i++)
	{
		r->x[i] = (float) s->sum[i];
		if (unlikely(isinf(r->x[i])))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("sum of vectors is out of range at element %d", i + 1),
					 errdetail("The total %g is too large for a real number.", s->sum[i])));
	}
	PG_RETURN_RECVECTOR_P(r);
}
