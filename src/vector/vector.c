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
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"

#include "vector/vector.h"

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
				 errmsg("a vector must have at least 1 dimension")));
	if (dim > REC_VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a vector cannot have more than %d dimensions",
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
				 errmsg("NaN is not allowed in a vector")));
	if (isinf(value))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("infinity is not allowed in a vector")));
}

static inline bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static void
invalid_syntax(const char *lit, const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type vector: \"%s\"", lit),
			 detail ? errdetail("%s", detail) : 0));
}

PG_FUNCTION_INFO_V1(rec_vector_in);
Datum
rec_vector_in(PG_FUNCTION_ARGS)
{
	char	   *lit = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	const char *p = lit;
	float	   *buf;
	int			cap = 16;
	int			dim = 0;
	RecVector  *result;

	while (is_space(*p))
		p++;
	if (*p != '[')
		invalid_syntax(lit, "Vector contents must start with \"[\".");
	p++;
	while (is_space(*p))
		p++;
	if (*p == ']')
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("a vector must have at least 1 dimension")));

	buf = palloc(sizeof(float) * cap);
	for (;;)
	{
		char	   *end;
		float		value;

		while (is_space(*p))
			p++;
		/* strtof skips leading space and takes a sign; refuse an empty element */
		if (*p == ',' || *p == ']' || *p == '\0')
			invalid_syntax(lit, NULL);
		if (dim == REC_VECTOR_MAX_DIM)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("a vector cannot have more than %d dimensions",
							REC_VECTOR_MAX_DIM)));
		errno = 0;
		value = strtof(p, &end);
		if (end == p)
			invalid_syntax(lit, NULL);
		if (errno == ERANGE && isinf(value))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("\"%.*s\" is out of range for type vector",
							(int) (end - p), p)));
		check_element(value);
		if (dim == cap)
		{
			cap *= 2;
			buf = repalloc(buf, sizeof(float) * cap);
		}
		buf[dim++] = value;
		p = end;
		while (is_space(*p))
			p++;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
		{
			p++;
			break;
		}
		invalid_syntax(lit, NULL);
	}
	while (is_space(*p))
		p++;
	if (*p != '\0')
		invalid_syntax(lit, "Junk after closing right bracket.");

	check_typmod_dim(dim, typmod);
	result = rec_vector_new(dim);
	memcpy(result->x, buf, sizeof(float) * dim);
	pfree(buf);
	PG_RETURN_RECVECTOR_P(result);
}

PG_FUNCTION_INFO_V1(rec_vector_out);
Datum
rec_vector_out(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);
	char	   *buf;
	char	   *p;

	/* "[" + elements (at most FLOAT_SHORTEST_DECIMAL_LEN - 1 each) + commas + "]" */
	buf = palloc((size_t) v->dim * FLOAT_SHORTEST_DECIMAL_LEN + 2);
	p = buf;
	*p++ = '[';
	for (int i = 0; i < v->dim; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += float_to_shortest_decimal_bufn(v->x[i], p);
	}
	*p++ = ']';
	*p = '\0';
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
				 errmsg("invalid type modifier"),
				 errdetail("A vector type takes exactly one modifier, its number of dimensions.")));
	if (tl[0] < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type vector must be at least 1")));
	if (tl[0] > REC_VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type vector cannot exceed %d",
						REC_VECTOR_MAX_DIM)));
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

PG_FUNCTION_INFO_V1(rec_vector_l2_distance);
Datum
rec_vector_l2_distance(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8(sqrt((double) rec_kernel_l2sq(a->x, b->x, a->dim)));
}

PG_FUNCTION_INFO_V1(rec_vector_l2_squared_distance);
Datum
rec_vector_l2_squared_distance(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8((double) rec_kernel_l2sq(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(rec_vector_inner_product);
Datum
rec_vector_inner_product(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8((double) rec_kernel_dot(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(rec_vector_negative_inner_product);
Datum
rec_vector_negative_inner_product(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8((double) -rec_kernel_dot(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(rec_vector_cosine_distance);
Datum
rec_vector_cosine_distance(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);
	double		dot;
	double		na;
	double		nb;
	double		sim;

	rec_vector_check_same_dim(a, b);
	dot = rec_kernel_dot(a->x, b->x, a->dim);
	na = rec_kernel_dot(a->x, a->x, a->dim);
	nb = rec_kernel_dot(b->x, b->x, b->dim);

	/* A zero vector has no direction: the distance is undefined. */
	if (na == 0.0 || nb == 0.0)
		PG_RETURN_FLOAT8(get_float8_nan());

	sim = dot / sqrt(na * nb);
	/* Keep rounding error from leaving [-1, 1]. */
	if (sim > 1.0)
		sim = 1.0;
	else if (sim < -1.0)
		sim = -1.0;
	PG_RETURN_FLOAT8(1.0 - sim);
}

PG_FUNCTION_INFO_V1(rec_vector_l1_distance);
Datum
rec_vector_l1_distance(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	RecVector  *b = PG_GETARG_RECVECTOR_P(1);

	rec_vector_check_same_dim(a, b);
	PG_RETURN_FLOAT8((double) rec_kernel_l1(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(rec_vector_norm);
Datum
rec_vector_norm(PG_FUNCTION_ARGS)
{
	RecVector  *a = PG_GETARG_RECVECTOR_P(0);
	double		s = 0.0;

	/* In double: the norm is a user-visible value, not a ranking key. */
	for (int i = 0; i < a->dim; i++)
		s += (double) a->x[i] * (double) a->x[i];
	PG_RETURN_FLOAT8(sqrt(s));
}
