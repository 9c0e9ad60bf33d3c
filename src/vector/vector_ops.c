/*
 * vector_ops.c
 *	  Vector arithmetic and manipulation: + - * (element by element), ||
 *	  (concatenation), l2_normalize, subvector, binary_quantize, and the
 *	  comparisons behind the btree operator class.
 *
 * Arithmetic never produces infinity: an element that leaves the float4
 * range is an error (SQLSTATE 22003), as for PostgreSQL's own real type.
 */
#include "postgres.h"

#include <math.h>

#include "fmgr.h"
#include "utils/varbit.h"

#include "vector/vector.h"

/* Report an element of an arithmetic result that left the float4 range. */
static void
element_out_of_range(const char *what, int i, bool underflow)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("result of vector %s is out of range at element %d", what, i + 1),
			 errdetail(underflow ?
					   "The product is too small for a real number (underflow)." :
					   "The result is too large for a real number (overflow).")));
}

PG_FUNCTION_INFO_V1(rec_vector_add);
Datum
rec_vector_add(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);
	RecVector  *r;

	rec_vector_check_same_dim(a, b);
	r = rec_vector_new(a->dim);
	for (int i = 0; i < a->dim; i++)
		r->x[i] = a->x[i] + b->x[i];
	for (int i = 0; i < a->dim; i++)
		if (unlikely(isinf(r->x[i])))
			element_out_of_range("addition", i, false);
	PG_RETURN_RECVECTOR_P(r);
}

PG_FUNCTION_INFO_V1(rec_vector_sub);
Datum
rec_vector_sub(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);
	RecVector  *r;

	rec_vector_check_same_dim(a, b);
	r = rec_vector_new(a->dim);
	for (int i = 0; i < a->dim; i++)
		r->x[i] = a->x[i] - b->x[i];
	for (int i = 0; i < a->dim; i++)
		if (unlikely(isinf(r->x[i])))
			element_out_of_range("subtraction", i, false);
	PG_RETURN_RECVECTOR_P(r);
}

PG_FUNCTION_INFO_V1(rec_vector_mul);
Datum
rec_vector_mul(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);
	RecVector  *r;

	rec_vector_check_same_dim(a, b);
	r = rec_vector_new(a->dim);
	for (int i = 0; i < a->dim; i++)
		r->x[i] = a->x[i] * b->x[i];
	for (int i = 0; i < a->dim; i++)
	{
		if (unlikely(isinf(r->x[i])))
			element_out_of_range("multiplication", i, false);
		/* Like float4mul: a product of non-zeros that rounds to zero. */
		if (unlikely(r->x[i] == 0.0f && a->x[i] != 0.0f && b->x[i] != 0.0f))
			element_out_of_range("multiplication", i, true);
	}
	PG_RETURN_RECVECTOR_P(r);
}

PG_FUNCTION_INFO_V1(rec_vector_concat);
Datum
rec_vector_concat(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);
	int			dim = a->dim + b->dim;
	RecVector  *r;

	if (dim > REC_VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("concatenated vector would have %d dimensions, more than the limit of %d",
						dim, REC_VECTOR_MAX_DIM)));
	r = rec_vector_new(dim);
	memcpy(r->x, a->x, sizeof(float) * a->dim);
	memcpy(r->x + a->dim, b->x, sizeof(float) * b->dim);
	PG_RETURN_RECVECTOR_P(r);
}

/*
 * l2_normalize(v): v scaled to length 1. The zero vector has no direction
 * and is returned unchanged (as pgvector does).
 */
PG_FUNCTION_INFO_V1(rec_vector_l2_normalize);
Datum
rec_vector_l2_normalize(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *r = rec_vector_new(a->dim);
	double		norm = 0.0;

	for (int i = 0; i < a->dim; i++)
		norm += (double) a->x[i] * (double) a->x[i];
	norm = sqrt(norm);
	if (norm > 0.0)
	{
		/* In double, so |x| / norm <= 1 holds and nothing can overflow. */
		for (int i = 0; i < a->dim; i++)
			r->x[i] = (float) ((double) a->x[i] / norm);
	}
	PG_RETURN_RECVECTOR_P(r);
}

/*
 * subvector(v, start, count): elements start .. start+count-1, counting from
 * 1 like substring(). The part of that range outside the vector is dropped;
 * what remains must hold at least one element.
 */
PG_FUNCTION_INFO_V1(rec_vector_subvector);
Datum
rec_vector_subvector(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	int64		start = PG_GETARG_INT32(1);
	int64		count = PG_GETARG_INT32(2);
	int64		first;
	int64		last;
	RecVector  *r;

	if (count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("subvector count must be at least 1, not %lld",
						(long long) count)));

	/* In int64: start + count cannot overflow. */
	first = Max(start, 1);
	last = Min(start + count - 1, (int64) a->dim);
	if (first > last)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("subvector would be empty: elements %lld to %lld are outside a vector with %d dimensions",
						(long long) start, (long long) (start + count - 1), a->dim),
				 errdetail("A vector needs at least one element.")));

	r = rec_vector_new((int) (last - first + 1));
	memcpy(r->x, a->x + (first - 1), sizeof(float) * r->dim);
	PG_RETURN_RECVECTOR_P(r);
}

/*
 * binary_quantize(v): a bit string with one bit per element, 1 where the
 * element is positive. Bits are stored first element in the most significant
 * bit, as PostgreSQL's bit type wants.
 */
PG_FUNCTION_INFO_V1(rec_vector_binary_quantize);
Datum
rec_vector_binary_quantize(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	int			len = VARBITTOTALLEN(a->dim);
	VarBit	   *r = (VarBit *) palloc0(len);
	bits8	   *bits;

	SET_VARSIZE(r, len);
	VARBITLEN(r) = a->dim;
	bits = VARBITS(r);
	for (int i = 0; i < a->dim; i++)
		if (a->x[i] > 0.0f)
			bits[i / 8] |= (bits8) (0x80 >> (i % 8));
	PG_RETURN_VARBIT_P(r);
}

/* ---------- comparisons (btree operator class) ---------- */

int
rec_vector_cmp_internal(const RecVector *a, const RecVector *b)
{
	int			n = Min(a->dim, b->dim);

	/* Elements first, then length, as for arrays. No NaN can occur. */
	for (int i = 0; i < n; i++)
	{
		if (a->x[i] < b->x[i])
			return -1;
		if (a->x[i] > b->x[i])
			return 1;
	}
	return (a->dim > b->dim) - (a->dim < b->dim);
}

static inline int
cmp_args(FunctionCallInfo fcinfo)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);
	int			c = rec_vector_cmp_internal(a, b);

	PG_FREE_IF_COPY(a, 0);
	PG_FREE_IF_COPY(b, 1);
	return c;
}

PG_FUNCTION_INFO_V1(rec_vector_cmp);
Datum
rec_vector_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(cmp_args(fcinfo));
}

PG_FUNCTION_INFO_V1(rec_vector_lt);
Datum
rec_vector_lt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cmp_args(fcinfo) < 0);
}

PG_FUNCTION_INFO_V1(rec_vector_le);
Datum
rec_vector_le(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cmp_args(fcinfo) <= 0);
}

PG_FUNCTION_INFO_V1(rec_vector_eq);
Datum
rec_vector_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cmp_args(fcinfo) == 0);
}

PG_FUNCTION_INFO_V1(rec_vector_ne);
Datum
rec_vector_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cmp_args(fcinfo) != 0);
}

PG_FUNCTION_INFO_V1(rec_vector_ge);
Datum
rec_vector_ge(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cmp_args(fcinfo) >= 0);
}

PG_FUNCTION_INFO_V1(rec_vector_gt);
Datum
rec_vector_gt(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(cmp_args(fcinfo) > 0);
}
