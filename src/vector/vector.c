/*
 * vector.c
 *	  The `vector` type: text and binary I/O, typmod, and the distance
 *	  functions behind the operators <->, <#>, <=> and <+>.
 *
 * Text format: '[1,2.5,3]', white space allowed around elements; output is
 * the shortest float4 text that reads back to the same value. Binary format:
 * int16 dimensions, int16 zero, then float4 elements, network byte order.
 * Both are pgvector's, so clients and COPY files move between the two.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "vector/vector.h"
#include "vector/vector_text.h"

RecVector *
rec_vector_new(int dim)
{
	Size		size = REC_VECTOR_SIZE(dim);
	RecVector  *v = (RecVector *) palloc0(size);

	SET_VARSIZE(v, size);
	v->dim = dim;
	return v;
}

void
rec_vector_check_dim(int dim)
{
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a vector needs at least one element")));
	if (dim > REC_VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a vector can hold at most %d elements",
						REC_VECTOR_MAX_DIM)));
}

void
rec_vector_check_same_dim(const RecVector *a, const RecVector *b)
{
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vectors have different dimensions: %d and %d", a->dim, b->dim)));
}

/* Error out unless the value fits the typmod (a typmod of -1 means any). */
static void
check_typmod_dim(int dim, int32 typmod)
{
	if (typmod != -1 && dim != typmod)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector has %d dimensions, expected %d", dim, typmod)));
}

static void
check_element(float value)
{
	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a vector cannot contain NaN")));
	if (isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a vector cannot contain infinity")));
}

PG_FUNCTION_INFO_V1(rec_vector_in);
Datum
rec_vector_in(PG_FUNCTION_ARGS)
{
	char	   *lit = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	int			cap;
	int			dim;
	const char *tok;
	int			toklen;
	RecVector  *result;

	/* Room for every element the text can hold, up to the limit. */
	cap = Min(rec_vector_text_max_dim(lit, REC_VECTOR_MAX_DIM), REC_VECTOR_MAX_DIM);
	result = (RecVector *) palloc(REC_VECTOR_SIZE(cap));

	switch (rec_vector_text_parse(lit, result->x, cap, REC_VECTOR_MAX_DIM,
								  &dim, &tok, &toklen))
	{
		case REC_VTEXT_OK:
			break;
		case REC_VTEXT_NO_BRACKET:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type vector: \"%s\"", lit),
					 errdetail("A vector is written as numbers in square brackets, like [1,2.5,3].")));
			break;
		case REC_VTEXT_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("a vector needs at least one element")));
			break;
		case REC_VTEXT_SYNTAX:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type vector: \"%s\"", lit),
					 errdetail("Elements must be numbers separated by commas, closed by \"]\".")));
			break;
		case REC_VTEXT_JUNK:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
					 errmsg("invalid input syntax for type vector: \"%s\"", lit),
					 errdetail("Only white space may follow the closing \"]\".")));
			break;
		case REC_VTEXT_TOO_MANY:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a vector can hold at most %d elements",
							REC_VECTOR_MAX_DIM)));
			break;
		case REC_VTEXT_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("\"%.*s\" is out of range for a vector element", toklen, tok),
					 errdetail("Vector elements are single precision (real) numbers.")));
			break;
		case REC_VTEXT_NAN:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("a vector cannot contain NaN")));
			break;
		case REC_VTEXT_INF:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("a vector cannot contain infinity")));
			break;
	}

	check_typmod_dim(dim, typmod);
	SET_VARSIZE(result, REC_VECTOR_SIZE(dim));
	result->dim = dim;
	result->unused = 0;
	PG_RETURN_RECVECTOR_P(result);
}

PG_FUNCTION_INFO_V1(rec_vector_out);
Datum
rec_vector_out(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);
	char	   *buf;

	buf = palloc(REC_VECTOR_TEXT_BUFSIZE(v->dim));
	rec_vector_text_format(v->x, v->dim, buf);
	PG_FREE_IF_COPY(v, 0);
	PG_RETURN_CSTRING(buf);
}

PG_FUNCTION_INFO_V1(rec_vector_typmod_in);
Datum
rec_vector_typmod_in(PG_FUNCTION_ARGS)
{
	ArrayType  *ta = PG_GETARG_ARRAYTYPE_P(0);
	int32	   *tl;
	int			n;

	tl = ArrayGetIntegerTypmods(ta, &n);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("type vector takes exactly one modifier, its number of dimensions")));
	if (tl[0] < 1 || tl[0] > REC_VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions of type vector must be between 1 and %d, not %d",
						REC_VECTOR_MAX_DIM, tl[0])));
	PG_RETURN_INT32(tl[0]);
}

PG_FUNCTION_INFO_V1(rec_vector_recv);
Datum
rec_vector_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	int16		dim;
	int16		unused;
	RecVector  *result;

	dim = pq_getmsgint(buf, sizeof(int16));
	unused = pq_getmsgint(buf, sizeof(int16));
	rec_vector_check_dim(dim);
	check_typmod_dim(dim, typmod);
	if (unused != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid binary vector: reserved field must be zero, not %d",
						unused)));
	result = rec_vector_new(dim);
	for (int i = 0; i < dim; i++)
	{
		result->x[i] = pq_getmsgfloat4(buf);
		check_element(result->x[i]);
	}
	PG_RETURN_RECVECTOR_P(result);
}

PG_FUNCTION_INFO_V1(rec_vector_send);
Datum
rec_vector_send(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, v->dim);
	pq_sendint16(&buf, 0);
	for (int i = 0; i < v->dim; i++)
		pq_sendfloat4(&buf, v->x[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

/* vector(vector, typmod, explicit): the length-coercion cast. */
PG_FUNCTION_INFO_V1(rec_vector_typmod_cast);
Datum
rec_vector_typmod_cast(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);
	int32		typmod = PG_GETARG_INT32(1);

	check_typmod_dim(v->dim, typmod);
	PG_RETURN_RECVECTOR_P(v);
}

PG_FUNCTION_INFO_V1(rec_vector_dims);
Datum
rec_vector_dims(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);

	PG_RETURN_INT32(v->dim);
}

/* ---------- distances ---------- */

/*
 * The kernels add in single precision, as pgvector does, and are fast. With
 * elements beyond about 1e19 a square or a sum can overflow float4 (to
 * infinity, or to NaN when infinities of both signs meet) although the
 * distance itself fits float8 easily; only then are these double precision
 * loops used, so no SQL function returns infinity or a spurious NaN.
 */
static double
l2sq_double(const float *a, const float *b, int n)
{
	double		s = 0.0;

	for (int i = 0; i < n; i++)
	{
		double		d = (double) a[i] - (double) b[i];

		s += d * d;
	}
	return s;
}

static double
dot_double(const float *a, const float *b, int n)
{
	double		s = 0.0;

	for (int i = 0; i < n; i++)
		s += (double) a[i] * (double) b[i];
	return s;
}

static double
l1_double(const float *a, const float *b, int n)
{
	double		s = 0.0;

	for (int i = 0; i < n; i++)
		s += fabs((double) a[i] - (double) b[i]);
	return s;
}

static inline double
l2sq(const RecVector *a, const RecVector *b)
{
	float		r = rec_kernel_l2sq(a->x, b->x, a->dim);

	return likely(isfinite(r)) ? (double) r : l2sq_double(a->x, b->x, a->dim);
}

static inline double
dot(const RecVector *a, const RecVector *b)
{
	float		r = rec_kernel_dot(a->x, b->x, a->dim);

	return likely(isfinite(r)) ? (double) r : dot_double(a->x, b->x, a->dim);
}

double
rec_vector_cosine_distance_raw(const float *a, const float *b, int n)
{
	float		fab;
	float		faa;
	float		fbb;
	double		ab;
	double		aa;
	double		bb;
	double		sim;

	rec_kernel_dot_norms(a, b, n, &fab, &faa, &fbb);
	if (likely(isfinite(fab) && isfinite(faa) && isfinite(fbb)))
	{
		ab = fab;
		aa = faa;
		bb = fbb;
	}
	else
	{
		ab = dot_double(a, b, n);
		aa = dot_double(a, a, n);
		bb = dot_double(b, b, n);
	}

	/* A zero vector has no direction: the distance is undefined. */
	if (aa == 0.0 || bb == 0.0)
		return get_float8_nan();

	sim = ab / sqrt(aa * bb);
	/* Keep rounding error from leaving [-1, 1]. */
	if (sim > 1.0)
		sim = 1.0;
	else if (sim < -1.0)
		sim = -1.0;
	return 1.0 - sim;
}

PG_FUNCTION_INFO_V1(rec_vector_l2_distance);
Datum
rec_vector_l2_distance(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8(sqrt(l2sq(a, b)));
}

PG_FUNCTION_INFO_V1(rec_vector_l2_squared_distance);
Datum
rec_vector_l2_squared_distance(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8(l2sq(a, b));
}

PG_FUNCTION_INFO_V1(rec_vector_inner_product);
Datum
rec_vector_inner_product(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8(dot(a, b));
}

PG_FUNCTION_INFO_V1(rec_vector_negative_inner_product);
Datum
rec_vector_negative_inner_product(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8(-dot(a, b));
}

PG_FUNCTION_INFO_V1(rec_vector_cosine_distance);
Datum
rec_vector_cosine_distance(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8(rec_vector_cosine_distance_raw(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(rec_vector_l1_distance);
Datum
rec_vector_l1_distance(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);
	float		r;

	rec_vector_check_same_dim(a, b);
	r = rec_kernel_l1(a->x, b->x, a->dim);
	PG_RETURN_FLOAT8(likely(isfinite(r)) ? (double) r : l1_double(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(rec_vector_norm);
Datum
rec_vector_norm(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);

	/* In double: the norm is a user-visible value, not a ranking key. */
	PG_RETURN_FLOAT8(sqrt(dot_double(a->x, a->x, a->dim)));
}
