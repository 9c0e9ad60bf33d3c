/*
 * vector.h
 *	  The face of src/vector: rec's `vector` type and its distance kernels.
 *
 * The on-disk and in-memory layout is the same as pgvector's: a varlena
 * header, int16 dimensions, int16 reserved (always zero), then the float4
 * elements. That keeps the binary send/recv format identical too.
 *
 * This folder is the ground floor of rec: it uses nothing else of rec.
 */
#ifndef REC_VECTOR_H
#define REC_VECTOR_H

#include "postgres.h"

#include "fmgr.h"

#define REC_VECTOR_MAX_DIM 16000

typedef struct RecVector
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of dimensions */
	int16		unused;			/* reserved for future use, always zero */
	float		x[FLEXIBLE_ARRAY_MEMBER];
} RecVector;

#define REC_VECTOR_SIZE(_dim)		(offsetof(RecVector, x) + sizeof(float) * (_dim))
#define DatumGetRecVector(d)		((RecVector *) PG_DETOAST_DATUM(d))
#define PG_GETARG_RECVECTOR_P(n)	DatumGetRecVector(PG_GETARG_DATUM(n))
#define PG_RETURN_RECVECTOR_P(v)	PG_RETURN_POINTER(v)

/* Allocate a zero-filled vector of the given dimensions (palloc). */
extern RecVector *rec_vector_new(int dim);

/* Error out unless 1 <= dim <= REC_VECTOR_MAX_DIM. */
extern void rec_vector_check_dim(int dim);

/* Error out if a and b differ in dimensions. */
extern void rec_vector_check_same_dim(const RecVector *a, const RecVector *b);

/*
 * Total order of vectors, as the btree operator class sorts them: element by
 * element, then the shorter first (like arrays). Returns <0, 0 or >0.
 */
extern int	rec_vector_cmp_internal(const RecVector *a, const RecVector *b);

/*
 * Distance kernels over float arrays of length n. They are function pointers
 * chosen once by rec_vector_init() for the CPU the server runs on (AVX-512,
 * AVX2+FMA, or portable C); every caller in rec goes through them.
 */
typedef float (*RecDistanceKernel) (const float *a, const float *b, int n);

extern RecDistanceKernel rec_kernel_l2sq;	/* sum (a-b)^2 */
extern RecDistanceKernel rec_kernel_dot;	/* sum a*b */
extern RecDistanceKernel rec_kernel_l1;		/* sum |a-b| */

/* One pass for cosine: *ab = sum a*b, *aa = sum a*a, *bb = sum b*b. */
typedef void (*RecDotNormsKernel) (const float *a, const float *b, int n,
								   float *ab, float *aa, float *bb);

extern RecDotNormsKernel rec_kernel_dot_norms;

/*
 * Cosine distance 1 - a.b / (|a| |b|) in [0, 2] through the kernels; NaN
 * when either vector is all zeros (no direction).
 */
extern double rec_vector_cosine_distance_raw(const float *a, const float *b, int n);

/* Name of the kernel set in use ("avx512", "avx2", "portable"). */
extern const char *rec_kernel_name(void);

/* Portable reference kernels (always available; used by tests). */
extern float rec_kernel_l2sq_ref(const float *a, const float *b, int n);
extern float rec_kernel_dot_ref(const float *a, const float *b, int n);
extern float rec_kernel_l1_ref(const float *a, const float *b, int n);
extern void rec_kernel_dot_norms_ref(const float *a, const float *b, int n,
									 float *ab, float *aa, float *bb);

/*
 * Choose kernels and define the setting rec.vector_kernels; called from
 * _PG_init.
 */
extern void rec_vector_init(void);

#endif							/* REC_VECTOR_H */
