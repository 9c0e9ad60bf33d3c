/*
 * vector_cast.c
 *	  Casts between vector and the arrays real[], double precision[],
 *	  integer[] and numeric[].
 *
 * Array -> vector casts take the target typmod, so vector(n) is enforced on
 * casts and on assignment. Vector -> real[], double precision[] and
 * integer[] convert each element as PostgreSQL's own casts from real would
 * (integer rounds to nearest, out of range is an error); numeric[] gets the
 * exact digits the vector prints.
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/lsyscache.h"

#include "vector/vector.h"

static void
bad_element(int i, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATA_EXCEPTION),
			 errmsg("array element %d is %s, which a vector cannot hold", i + 1, what)));
}

/* Store one converted element, rejecting what a vector cannot hold. */
static inline void
put_element(RecVector *v, int i, double value)
{
	float		f = (float) value;

	if (unlikely(isnan(value)))
		bad_element(i, "NaN");
	if (unlikely(isinf(value)))
		bad_element(i, "infinite");
	if (unlikely(isinf(f)))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("array element %d (%g) is out of range for a vector element",
						i + 1, value),
				 errdetail("Vector elements are single precision (real) numbers.")));
	v->x[i] = f;
}

/*
 * The elements of an array without NULLs. (ARR_DATA_PTR itself trips
 * -Wsign-compare.)
 */
static inline const char *
array_data(ArrayType *arr)
{
	if (ARR_HASNULL(arr))
		return (const char *) arr + arr->dataoffset;
	return (const char *) arr + ARR_OVERHEAD_NONULLS(ARR_NDIM(arr));
}

/*
 * array_to_vector(anyarray of int4/float4/float8/numeric, typmod, explicit).
 * One C function serves the four SQL signatures.
 */
PG_FUNCTION_INFO_V1(rec_array_to_vector);
Datum
rec_array_to_vector(PG_FUNCTION_ARGS)
{
	ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
	int32		typmod = PG_GETARG_INT32(1);
	Oid			elemtype = ARR_ELEMTYPE(arr);
	int			nelems;
	RecVector  *v;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_ARRAY_SUBSCRIPT_ERROR),
				 errmsg("cannot cast a %d-dimensional array to a vector", ARR_NDIM(arr)),
				 errhint("Only one-dimensional arrays convert to vectors.")));
	nelems = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	if (array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cannot cast an array containing NULL to a vector")));
	rec_vector_check_dim(nelems);
	if (typmod != -1 && nelems != typmod)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector has %d dimensions, expected %d", nelems, typmod)));

	v = rec_vector_new(nelems);
	switch (elemtype)
	{
		case INT4OID:
			{
				const int32 *p = (const int32 *) array_data(arr);

				for (int i = 0; i < nelems; i++)
					v->x[i] = (float) p[i];
				break;
			}
		case FLOAT4OID:
			{
				const float4 *p = (const float4 *) array_data(arr);

				for (int i = 0; i < nelems; i++)
					put_element(v, i, p[i]);
				break;
			}
		case FLOAT8OID:
			{
				const float8 *p = (const float8 *) array_data(arr);

				for (int i = 0; i < nelems; i++)
					put_element(v, i, p[i]);
				break;
			}
		case NUMERICOID:
			{
				Datum	   *elems;
				int			n;

				deconstruct_array(arr, NUMERICOID, -1, false, TYPALIGN_INT,
								  &elems, NULL, &n);
				/*
				 * numeric_float4 rounds once, from the decimal digits, and
				 * errors itself on a value too large for real.
				 */
				for (int i = 0; i < n; i++)
					put_element(v, i, DatumGetFloat4(DirectFunctionCall1(numeric_float4, elems[i])));
				pfree(elems);
				break;
			}
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("cannot cast an array of %s to a vector", format_type_be(elemtype))));
	}
	PG_RETURN_RECVECTOR_P(v);
}

PG_FUNCTION_INFO_V1(rec_vector_to_float4);
Datum
rec_vector_to_float4(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);
	Datum	   *d = palloc(sizeof(Datum) * v->dim);

	for (int i = 0; i < v->dim; i++)
		d[i] = Float4GetDatum(v->x[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, v->dim, FLOAT4OID, sizeof(float4), true, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(rec_vector_to_float8);
Datum
rec_vector_to_float8(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);
	Datum	   *d = palloc(sizeof(Datum) * v->dim);

	for (int i = 0; i < v->dim; i++)
		d[i] = Float8GetDatum((float8) v->x[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, v->dim, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}

PG_FUNCTION_INFO_V1(rec_vector_to_int4);
Datum
rec_vector_to_int4(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);
	Datum	   *d = palloc(sizeof(Datum) * v->dim);

	for (int i = 0; i < v->dim; i++)
	{
		float		r = rint(v->x[i]);

		/* The same test as PostgreSQL's real -> integer cast. */
		if (unlikely(!FLOAT4_FITS_IN_INT32(r)))
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("vector element %d (%.9g) is out of range for type integer",
							i + 1, (double) v->x[i])));
		d[i] = Int32GetDatum((int32) r);
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(d, v->dim, INT4OID, sizeof(int32), true, TYPALIGN_INT));
}

/*
 * Each element becomes the decimal the vector's text form shows (the
 * shortest that reads back to the same real), so v::numeric[]::vector = v.
 * (PostgreSQL 15's own real -> numeric keeps only 6 digits.)
 */
PG_FUNCTION_INFO_V1(rec_vector_to_numeric);
Datum
rec_vector_to_numeric(PG_FUNCTION_ARGS)
{
	RecVector  *v = PG_GETARG_RECVECTOR_P(0);
	Datum	   *d = palloc(sizeof(Datum) * v->dim);
	char		buf[FLOAT_SHORTEST_DECIMAL_LEN];

	for (int i = 0; i < v->dim; i++)
	{
		float_to_shortest_decimal_buf(v->x[i], buf);
		d[i] = DirectFunctionCall3(numeric_in, CStringGetDatum(buf),
								   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(d, v->dim, NUMERICOID, -1, false, TYPALIGN_INT));
}
