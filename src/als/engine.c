/*
 * engine.c
 *	  Implicit-feedback ALS (Hu, Koren & Volinsky 2008): the numeric engine.
 *
 * Objective, for user factors X and item factors Y:
 *
 *	 sum over all (u,i) of c_ui (p_ui - x_u.y_i)^2 + lambda (|X|^2 + |Y|^2)
 *
 * with p_ui = 1 and c_ui = 1 + a_ui for observed pairs (a_ui = alpha times
 * the summed event weight) and p_ui = 0, c_ui = 1 elsewhere. Each half step
 * fixes one side and solves, for every row of the other side,
 *
 *	 (G + sum_j a_j y_j y_j^T) x = sum_j (1 + a_j) y_j,	 G = Y^T Y + lambda I
 *
 * where j runs over the row's observed columns only (the "Y^T Y trick").
 *
 * Two solvers:
 *	- cholesky: builds the matrix with OpenBLAS ssyrk over blocks of gathered,
 *	  scaled rows and solves it with LAPACK sposv;
 *	- cg: a few conjugate-gradient steps warm-started from the previous
 *	  value. The sparse part of each matrix-vector product is one fused pass
 *	  over the row's columns (dot and axpy while the column vector is in
 *	  registers), in SIMD kernels chosen at run time.
 *
 * The training loss is computed almost for free during the item half step:
 * CG keeps d_j = y_j.x up to date from the dot products it computes anyway,
 * and the dense part sum_u x_u^T (Y^T Y) x_u is the Frobenius product of the
 * two Gram matrices.
 *
 * Work is split into chunks of rows whose boundaries depend only on the data,
 * and every row's solve depends only on its own inputs, so results do not
 * depend on which thread ran which chunk; per-chunk loss partials are summed
 * in chunk order. Threads are our own (OpenBLAS runs single-threaded inside
 * them); they are created with every signal blocked and never call into
 * PostgreSQL. The calling thread works too and polls for cancellation
 * between chunks.
 */
#include "als/als.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>

#include <cblas.h>

#if defined(__x86_64__) && defined(__GNUC__)
#define ALS_X86 1
#include <immintrin.h>
#endif

/* LAPACK (Fortran interface, provided by OpenBLAS) */
extern void sposv_(const char *uplo, const int *n, const int *nrhs, float *a,
				   const int *lda, float *b, const int *ldb, int *info);

#define ALS_ALIGN		64
#define ALS_GATHER		256		/* rows gathered per ssyrk call */
#define ALS_PREFETCH	8		/* entries ahead to prefetch */

/* ---------------------------------------------------------------- kernels */

typedef struct Kernels
{
	const char *name;
	/* acc = sum_j (1 + a_j (1 - y_j.x)) y_j ; d_j = y_j.x */
	void		(*resid) (const float *Y, const AlsEntry *e, uint64_t n,
						  const float *x, float *acc, float *d, int kpad);
	/* acc = sum_j a_j (y_j.p) y_j ; ev_j = y_j.p */
	void		(*apply) (const float *Y, const AlsEntry *e, uint64_t n,
						  const float *p, float *acc, float *ev, int kpad);
	/* out = G x (G symmetric, kpad x kpad) */
	void		(*symv) (const float *G, const float *x, float *out, int kpad);
	/* d_j = y_j.x */
	void		(*dots) (const float *Y, const AlsEntry *e, uint64_t n,
						 const float *x, float *d, int kpad);
	float		(*dot) (const float *a, const float *b, int kpad);

	/*
	 * Optional: a whole CG solve of one row (n > 0) with everything in
	 * registers; returns the row's loss terms when want_loss.
	 */
	double		(*cg_row) (const float *O, const AlsEntry *e, uint64_t n, const float *G,
						   float *x, int steps, int want_loss, float *d, float *ev);
} Kernels;

static float
dot_c(const float *a, const float *b, int n)
{
	float		s = 0.0f;

	for (int i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

static void
resid_c(const float *Y, const AlsEntry *e, uint64_t n, const float *x,
		float *acc, float *d, int kpad)
{
	memset(acc, 0, sizeof(float) * kpad);
	for (uint64_t j = 0; j < n; j++)
	{
		const float *y = Y + (size_t) e[j].idx * kpad;
		float		dj = dot_c(y, x, kpad);
		float		c = 1.0f + e[j].a * (1.0f - dj);

		d[j] = dj;
		for (int b = 0; b < kpad; b++)
			acc[b] += c * y[b];
	}
}

static void
apply_c(const float *Y, const AlsEntry *e, uint64_t n, const float *p,
		float *acc, float *ev, int kpad)
{
	memset(acc, 0, sizeof(float) * kpad);
	for (uint64_t j = 0; j < n; j++)
	{
		const float *y = Y + (size_t) e[j].idx * kpad;
		float		ej = dot_c(y, p, kpad);
		float		c = e[j].a * ej;

		ev[j] = ej;
		for (int b = 0; b < kpad; b++)
			acc[b] += c * y[b];
	}
}

static void
symv_c(const float *G, const float *x, float *out, int kpad)
{
	memset(out, 0, sizeof(float) * kpad);
	for (int a = 0; a < kpad; a++)
	{
		const float *row = G + (size_t) a * kpad;
		float		xa = x[a];

		for (int b = 0; b < kpad; b++)
			out[b] += xa * row[b];
	}
}

static void
dots_c(const float *Y, const AlsEntry *e, uint64_t n, const float *x,
	   float *d, int kpad)
{
	for (uint64_t j = 0; j < n; j++)
		d[j] = dot_c(Y + (size_t) e[j].idx * kpad, x, kpad);
}

static const Kernels kernels_c = {"portable", resid_c, apply_c, symv_c, dots_c, dot_c, NULL};

#ifdef ALS_X86

/* ---------- AVX2 + FMA (rows are a multiple of 16 floats) ---------- */

__attribute__((target("avx2,fma")))
static inline float
hsum8(__m256 v)
{
	__m128		lo = _mm256_castps256_ps128(v);
	__m128		hi = _mm256_extractf128_ps(v, 1);

	lo = _mm_add_ps(lo, hi);
	lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
	lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
	return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma")))
static float
dot_avx2(const float *a, const float *b, int kpad)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();

	for (int i = 0; i < kpad; i += 16)
	{
		s0 = _mm256_fmadd_ps(_mm256_load_ps(a + i), _mm256_load_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_load_ps(a + i + 8), _mm256_load_ps(b + i + 8), s1);
	}
	return hsum8(_mm256_add_ps(s0, s1));
}

__attribute__((target("avx2,fma")))
static inline void
prefetch_row(const float *y, int kpad)
{
	for (int b = 0; b < kpad; b += 16)
		_mm_prefetch((const char *) (y + b), _MM_HINT_T0);
}

__attribute__((target("avx2,fma")))
static void
resid_avx2(const float *Y, const AlsEntry *e, uint64_t n, const float *x,
		   float *acc, float *d, int kpad)
{
	memset(acc, 0, sizeof(float) * kpad);
	for (uint64_t j = 0; j < n; j++)
	{
		const float *y = Y + (size_t) e[j].idx * kpad;
		float		dj;
		__m256		c;

		if (j + ALS_PREFETCH < n)
			prefetch_row(Y + (size_t) e[j + ALS_PREFETCH].idx * kpad, kpad);
		dj = dot_avx2(y, x, kpad);
		d[j] = dj;
		c = _mm256_set1_ps(1.0f + e[j].a * (1.0f - dj));
		for (int b = 0; b < kpad; b += 8)
			_mm256_store_ps(acc + b, _mm256_fmadd_ps(c, _mm256_load_ps(y + b),
													 _mm256_load_ps(acc + b)));
	}
}

__attribute__((target("avx2,fma")))
static void
apply_avx2(const float *Y, const AlsEntry *e, uint64_t n, const float *p,
		   float *acc, float *ev, int kpad)
{
	memset(acc, 0, sizeof(float) * kpad);
	for (uint64_t j = 0; j < n; j++)
	{
		const float *y = Y + (size_t) e[j].idx * kpad;
		float		ej;
		__m256		c;

		if (j + ALS_PREFETCH < n)
			prefetch_row(Y + (size_t) e[j + ALS_PREFETCH].idx * kpad, kpad);
		ej = dot_avx2(y, p, kpad);
		ev[j] = ej;
		c = _mm256_set1_ps(e[j].a * ej);
		for (int b = 0; b < kpad; b += 8)
			_mm256_store_ps(acc + b, _mm256_fmadd_ps(c, _mm256_load_ps(y + b),
													 _mm256_load_ps(acc + b)));
	}
}

__attribute__((target("avx2,fma")))
static void
symv_avx2(const float *G, const float *x, float *out, int kpad)
{
	memset(out, 0, sizeof(float) * kpad);
	for (int a = 0; a < kpad; a++)
	{
		const float *row = G + (size_t) a * kpad;
		__m256		xa = _mm256_set1_ps(x[a]);

		for (int b = 0; b < kpad; b += 8)
			_mm256_store_ps(out + b, _mm256_fmadd_ps(xa, _mm256_load_ps(row + b),
													 _mm256_load_ps(out + b)));
	}
}

__attribute__((target("avx2,fma")))
static void
dots_avx2(const float *Y, const AlsEntry *e, uint64_t n, const float *x,
		  float *d, int kpad)
{
	for (uint64_t j = 0; j < n; j++)
		d[j] = dot_avx2(Y + (size_t) e[j].idx * kpad, x, kpad);
}

static const Kernels kernels_avx2 = {"avx2", resid_avx2, apply_avx2, symv_avx2, dots_avx2, dot_avx2, NULL};

/* ---------- AVX-512 ---------- */

#define AVX512 __attribute__((target("avx512f")))

AVX512
static float
dot_avx512(const float *a, const float *b, int kpad)
{
	__m512		s = _mm512_setzero_ps();

	for (int i = 0; i < kpad; i += 16)
		s = _mm512_fmadd_ps(_mm512_load_ps(a + i), _mm512_load_ps(b + i), s);
	return _mm512_reduce_add_ps(s);
}

AVX512
static inline void
prefetch_row512(const float *y, int kpad)
{
	for (int b = 0; b < kpad; b += 16)
		_mm_prefetch((const char *) (y + b), _MM_HINT_T0);
}

/*
 * The general AVX-512 kernels keep the accumulator in memory (it stays in
 * L1); the kpad == 64 ones below keep the whole row, the vector and the
 * accumulator in registers and handle two columns per loop to hide the
 * latency of the horizontal sum.
 */
AVX512
static void
resid_avx512(const float *Y, const AlsEntry *e, uint64_t n, const float *x,
			 float *acc, float *d, int kpad)
{
	memset(acc, 0, sizeof(float) * kpad);
	for (uint64_t j = 0; j < n; j++)
	{
		const float *y = Y + (size_t) e[j].idx * kpad;
		float		dj;
		__m512		c;

		if (j + ALS_PREFETCH < n)
			prefetch_row512(Y + (size_t) e[j + ALS_PREFETCH].idx * kpad, kpad);
		dj = dot_avx512(y, x, kpad);
		d[j] = dj;
		c = _mm512_set1_ps(1.0f + e[j].a * (1.0f - dj));
		for (int b = 0; b < kpad; b += 16)
			_mm512_store_ps(acc + b, _mm512_fmadd_ps(c, _mm512_load_ps(y + b),
													 _mm512_load_ps(acc + b)));
	}
}

AVX512
static void
apply_avx512(const float *Y, const AlsEntry *e, uint64_t n, const float *p,
			 float *acc, float *ev, int kpad)
{
	memset(acc, 0, sizeof(float) * kpad);
	for (uint64_t j = 0; j < n; j++)
	{
		const float *y = Y + (size_t) e[j].idx * kpad;
		float		ej;
		__m512		c;

		if (j + ALS_PREFETCH < n)
			prefetch_row512(Y + (size_t) e[j + ALS_PREFETCH].idx * kpad, kpad);
		ej = dot_avx512(y, p, kpad);
		ev[j] = ej;
		c = _mm512_set1_ps(e[j].a * ej);
		for (int b = 0; b < kpad; b += 16)
			_mm512_store_ps(acc + b, _mm512_fmadd_ps(c, _mm512_load_ps(y + b),
													 _mm512_load_ps(acc + b)));
	}
}

AVX512
static void
symv_avx512(const float *G, const float *x, float *out, int kpad)
{
	memset(out, 0, sizeof(float) * kpad);
	for (int a = 0; a < kpad; a++)
	{
		const float *row = G + (size_t) a * kpad;
		__m512		xa = _mm512_set1_ps(x[a]);

		for (int b = 0; b < kpad; b += 16)
			_mm512_store_ps(out + b, _mm512_fmadd_ps(xa, _mm512_load_ps(row + b),
													 _mm512_load_ps(out + b)));
	}
}

AVX512
static void
dots_avx512(const float *Y, const AlsEntry *e, uint64_t n, const float *x,
			float *d, int kpad)
{
	for (uint64_t j = 0; j < n; j++)
	{
		if (j + ALS_PREFETCH < n)
			prefetch_row512(Y + (size_t) e[j + ALS_PREFETCH].idx * kpad, kpad);
		d[j] = dot_avx512(Y + (size_t) e[j].idx * kpad, x, kpad);
	}
}

/*
 * kpad <= 128: the row, the vector and the accumulator stay in registers.
 * One template, instantiated for KB = kpad / 16 blocks of 16 floats; with KB
 * a constant the compiler unrolls the block loops and keeps the arrays in
 * zmm registers (3 * KB of them).
 */
#define AVX512_INLINE __attribute__((target("avx512f"), always_inline)) static inline

AVX512_INLINE float
dot_blocks(const __m512 *y, const __m512 *x, const int KB)
{
	__m512		s0 = _mm512_mul_ps(y[0], x[0]);
	__m512		s1 = _mm512_setzero_ps();

	#pragma GCC unroll 8
	for (int b = 1; b < KB; b += 2)
	{
		s1 = _mm512_fmadd_ps(y[b], x[b], s1);
		if (b + 1 < KB)
			s0 = _mm512_fmadd_ps(y[b + 1], x[b + 1], s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

AVX512_INLINE void
resid_tmpl(const float *Y, const AlsEntry *e, uint64_t n, const float *xp,
		   float *acc, float *d, const int KB)
{
	__m512		x[8],
				a[8],
				y[8];

	#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
	{
		x[b] = _mm512_load_ps(xp + 16 * b);
		a[b] = _mm512_setzero_ps();
	}
	for (uint64_t j = 0; j < n; j++)
	{
		const float *yp = Y + (size_t) e[j].idx * (16 * KB);
		float		dj;
		__m512		c;

		if (j + ALS_PREFETCH < n)
		{
			const float *pf = Y + (size_t) e[j + ALS_PREFETCH].idx * (16 * KB);

			#pragma GCC unroll 8
			for (int b = 0; b < KB; b++)
				_mm_prefetch((const char *) (pf + 16 * b), _MM_HINT_T0);
		}
		#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			y[b] = _mm512_load_ps(yp + 16 * b);
		dj = dot_blocks(y, x, KB);
		d[j] = dj;
		c = _mm512_set1_ps(1.0f + e[j].a * (1.0f - dj));
		#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			a[b] = _mm512_fmadd_ps(c, y[b], a[b]);
	}
	#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		_mm512_store_ps(acc + 16 * b, a[b]);
}

AVX512_INLINE void
apply_tmpl(const float *Y, const AlsEntry *e, uint64_t n, const float *pp,
		   float *acc, float *ev, const int KB)
{
	__m512		p[8],
				a[8],
				y[8];

	#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
	{
		p[b] = _mm512_load_ps(pp + 16 * b);
		a[b] = _mm512_setzero_ps();
	}
	for (uint64_t j = 0; j < n; j++)
	{
		const float *yp = Y + (size_t) e[j].idx * (16 * KB);
		float		ej;
		__m512		c;

		if (j + ALS_PREFETCH < n)
		{
			const float *pf = Y + (size_t) e[j + ALS_PREFETCH].idx * (16 * KB);

			#pragma GCC unroll 8
			for (int b = 0; b < KB; b++)
				_mm_prefetch((const char *) (pf + 16 * b), _MM_HINT_T0);
		}
		#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			y[b] = _mm512_load_ps(yp + 16 * b);
		ej = dot_blocks(y, p, KB);
		ev[j] = ej;
		c = _mm512_set1_ps(e[j].a * ej);
		#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			a[b] = _mm512_fmadd_ps(c, y[b], a[b]);
	}
	#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		_mm512_store_ps(acc + 16 * b, a[b]);
}

AVX512_INLINE void
symv_tmpl(const float *G, const float *x, float *out, const int KB)
{
	__m512		a[8];

	#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		a[b] = _mm512_setzero_ps();
	for (int r = 0; r < 16 * KB; r++)
	{
		const float *row = G + (size_t) r * (16 * KB);
		__m512		xr = _mm512_set1_ps(x[r]);

		#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			a[b] = _mm512_fmadd_ps(xr, _mm512_load_ps(row + 16 * b), a[b]);
	}
	#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		_mm512_store_ps(out + 16 * b, a[b]);
}

/*
 * A whole CG solve of one row, for a fixed number of blocks: x, the
 * residual, the direction and A p stay in registers between the passes over
 * the row's columns; G p reads p back from a small buffer to broadcast its
 * elements.
 */
AVX512_INLINE void
resid_regs(const float *Y, const AlsEntry *e, uint64_t n, const __m512 *x,
		   __m512 *a, float *d, const int KB)
{
	__m512		y[8];

#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		a[b] = _mm512_setzero_ps();
	for (uint64_t j = 0; j < n; j++)
	{
		const float *yp = Y + (size_t) e[j].idx * (16 * KB);
		float		dj;
		__m512		c;

		if (j + ALS_PREFETCH < n)
		{
			const float *pf = Y + (size_t) e[j + ALS_PREFETCH].idx * (16 * KB);

#pragma GCC unroll 8
			for (int b = 0; b < KB; b++)
				_mm_prefetch((const char *) (pf + 16 * b), _MM_HINT_T0);
		}
#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			y[b] = _mm512_load_ps(yp + 16 * b);
		dj = dot_blocks(y, x, KB);
		d[j] = dj;
		c = _mm512_set1_ps(1.0f + e[j].a * (1.0f - dj));
#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			a[b] = _mm512_fmadd_ps(c, y[b], a[b]);
	}
}

AVX512_INLINE void
apply_regs(const float *Y, const AlsEntry *e, uint64_t n, const __m512 *p,
		   __m512 *a, float *ev, const int KB)
{
	__m512		y[8];

#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		a[b] = _mm512_setzero_ps();
	for (uint64_t j = 0; j < n; j++)
	{
		const float *yp = Y + (size_t) e[j].idx * (16 * KB);
		float		ej;
		__m512		c;

		if (j + ALS_PREFETCH < n)
		{
			const float *pf = Y + (size_t) e[j + ALS_PREFETCH].idx * (16 * KB);

#pragma GCC unroll 8
			for (int b = 0; b < KB; b++)
				_mm_prefetch((const char *) (pf + 16 * b), _MM_HINT_T0);
		}
#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			y[b] = _mm512_load_ps(yp + 16 * b);
		ej = dot_blocks(y, p, KB);
		ev[j] = ej;
		c = _mm512_set1_ps(e[j].a * ej);
#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			a[b] = _mm512_fmadd_ps(c, y[b], a[b]);
	}
}

/* out = G v; two sets of accumulators to halve the FMA latency chain */
AVX512_INLINE void
symv_regs(const float *G, const __m512 *v, __m512 *out, float *buf, const int KB)
{
	__m512		a0[8],
				a1[8];

#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
	{
		_mm512_store_ps(buf + 16 * b, v[b]);
		a0[b] = _mm512_setzero_ps();
		a1[b] = _mm512_setzero_ps();
	}
	for (int r = 0; r < 16 * KB; r += 2)
	{
		const float *g0 = G + (size_t) r * (16 * KB);
		const float *g1 = g0 + 16 * KB;
		__m512		v0 = _mm512_set1_ps(buf[r]);
		__m512		v1 = _mm512_set1_ps(buf[r + 1]);

#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
		{
			a0[b] = _mm512_fmadd_ps(v0, _mm512_load_ps(g0 + 16 * b), a0[b]);
			a1[b] = _mm512_fmadd_ps(v1, _mm512_load_ps(g1 + 16 * b), a1[b]);
		}
	}
#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		out[b] = _mm512_add_ps(a0[b], a1[b]);
}

AVX512_INLINE float
dot_regs(const __m512 *a, const __m512 *b, const int KB)
{
	__m512		s = _mm512_mul_ps(a[0], b[0]);

#pragma GCC unroll 8
	for (int i = 1; i < KB; i++)
		s = _mm512_fmadd_ps(a[i], b[i], s);
	return _mm512_reduce_add_ps(s);
}

/* d += alpha * ev over n floats */
AVX512 static void
axpy_n_avx512(float *d, const float *ev, float alpha, uint64_t n)
{
	__m512		va = _mm512_set1_ps(alpha);
	uint64_t	j = 0;

	for (; j + 16 <= n; j += 16)
		_mm512_storeu_ps(d + j, _mm512_fmadd_ps(va, _mm512_loadu_ps(ev + j), _mm512_loadu_ps(d + j)));
	if (j < n)
	{
		__mmask16	m = (__mmask16) ((1u << (n - j)) - 1);

		_mm512_mask_storeu_ps(d + j, m, _mm512_fmadd_ps(va, _mm512_maskz_loadu_ps(m, ev + j),
														_mm512_maskz_loadu_ps(m, d + j)));
	}
}

static double row_loss(const AlsEntry *e, const float *d, uint64_t n);

AVX512_INLINE double
cg_row_tmpl(const float *O, const AlsEntry *e, uint64_t n, const float *G, float *xp,
			int steps, int want_loss, float *d, float *ev, const int KB)
{
	__m512		x[8],
				r[8],
				p[8],
				q[8],
				a[8];
	float		buf[128] __attribute__((aligned(64)));
	float		rs;

#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		x[b] = _mm512_load_ps(xp + 16 * b);

	/* r = b - A x = sum_j (1 + a_j (1 - y_j.x)) y_j - G x */
	resid_regs(O, e, n, x, a, d, KB);
	symv_regs(G, x, q, buf, KB);
#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
	{
		r[b] = _mm512_sub_ps(a[b], q[b]);
		p[b] = r[b];
	}
	rs = dot_regs(r, r, KB);

	for (int step = 0; step < steps; step++)
	{
		float		pap,
					alpha,
					rsnew;
		__m512		va,
					vb;

		if (rs < 1e-20f)
			break;
		apply_regs(O, e, n, p, a, ev, KB);
		symv_regs(G, p, q, buf, KB);
#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			q[b] = _mm512_add_ps(q[b], a[b]);
		pap = dot_regs(p, q, KB);
		if (!(pap > 0.0f))
			break;
		alpha = rs / pap;
		va = _mm512_set1_ps(alpha);
#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
		{
			x[b] = _mm512_fmadd_ps(va, p[b], x[b]);
			r[b] = _mm512_fnmadd_ps(va, q[b], r[b]);
		}
		if (want_loss)
			axpy_n_avx512(d, ev, alpha, n);
		rsnew = dot_regs(r, r, KB);
		vb = _mm512_set1_ps(rsnew / rs);
#pragma GCC unroll 8
		for (int b = 0; b < KB; b++)
			p[b] = _mm512_fmadd_ps(vb, p[b], r[b]);
		rs = rsnew;
	}
#pragma GCC unroll 8
	for (int b = 0; b < KB; b++)
		_mm512_store_ps(xp + 16 * b, x[b]);
	return want_loss ? row_loss(e, d, n) : 0.0;
}

#define ALS_KERNELS_KB(KB) \
AVX512 static void \
resid_avx512_##KB(const float *Y, const AlsEntry *e, uint64_t n, const float *x, \
				  float *acc, float *d, int kpad) \
{ resid_tmpl(Y, e, n, x, acc, d, KB); } \
AVX512 static void \
apply_avx512_##KB(const float *Y, const AlsEntry *e, uint64_t n, const float *p, \
				  float *acc, float *ev, int kpad) \
{ apply_tmpl(Y, e, n, p, acc, ev, KB); } \
AVX512 static void \
symv_avx512_##KB(const float *G, const float *x, float *out, int kpad) \
{ symv_tmpl(G, x, out, KB); } \
AVX512 static double \
cg_row_avx512_##KB(const float *O, const AlsEntry *e, uint64_t n, const float *G, \
				   float *x, int steps, int want_loss, float *d, float *ev) \
{ return cg_row_tmpl(O, e, n, G, x, steps, want_loss, d, ev, KB); } \
static const Kernels kernels_avx512_##KB = \
	{"avx512", resid_avx512_##KB, apply_avx512_##KB, symv_avx512_##KB, dots_avx512, dot_avx512, \
	 cg_row_avx512_##KB};

ALS_KERNELS_KB(1)
ALS_KERNELS_KB(2)
ALS_KERNELS_KB(3)
ALS_KERNELS_KB(4)
ALS_KERNELS_KB(5)
ALS_KERNELS_KB(6)
ALS_KERNELS_KB(7)
ALS_KERNELS_KB(8)

static const Kernels *const kernels_avx512_fixed[9] = {
	NULL, &kernels_avx512_1, &kernels_avx512_2, &kernels_avx512_3, &kernels_avx512_4,
	&kernels_avx512_5, &kernels_avx512_6, &kernels_avx512_7, &kernels_avx512_8
};

static const Kernels kernels_avx512 = {"avx512", resid_avx512, apply_avx512, symv_avx512, dots_avx512, dot_avx512, NULL};

#endif							/* ALS_X86 */

typedef enum
{
	ISA_PORTABLE, ISA_AVX2, ISA_AVX512
} Isa;

static Isa
detect_isa(void)
{
	static int	isa = -1;

	if (isa >= 0)
		return (Isa) isa;
	isa = ISA_PORTABLE;
#ifdef ALS_X86
	{
		const char *force = getenv("REC_ALS_KERNEL");	/* for tests and benchmarks */

		__builtin_cpu_init();
		if (__builtin_cpu_supports("avx512f"))
			isa = ISA_AVX512;
		else if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
			isa = ISA_AVX2;
		if (force && strcmp(force, "portable") == 0)
			isa = ISA_PORTABLE;
		else if (force && strcmp(force, "avx2") == 0 && isa >= ISA_AVX2)
			isa = ISA_AVX2;
	}
#endif
	return (Isa) isa;
}

static const Kernels *
choose_kernels(int kpad)
{
	switch (detect_isa())
	{
#ifdef ALS_X86
		case ISA_AVX512:
			return kpad <= 128 ? kernels_avx512_fixed[kpad / 16] : &kernels_avx512;
		case ISA_AVX2:
			return &kernels_avx2;
#endif
		default:
			return &kernels_c;
	}
}

const char *
als_kernel_name(void)
{
	return choose_kernels(16)->name;
}

float
als_dot(const float *a, const float *b, int kpad)
{
	return choose_kernels(kpad)->dot(a, b, kpad);
}

int
als_kpad(int k)
{
	return (k + 15) & ~15;
}

/* ---------------------------------------------------------------- memory */

static void *
alloc_aligned(size_t n)
{
	void	   *p = NULL;

	if (n == 0)
		n = ALS_ALIGN;
	if (posix_memalign(&p, ALS_ALIGN, n) != 0)
		return NULL;
	return p;
}

/*
 * Factor matrices are read at random rows: back big ones with huge pages
 * where the kernel offers them (transparent huge pages in madvise mode), so
 * the gathers do not miss the TLB at every row.
 */
static void *
alloc_factors(size_t n)
{
	const size_t huge = 2 * 1024 * 1024;
	void	   *p = NULL;

	if (n < 4 * huge)
		return alloc_aligned(n);
	n = (n + huge - 1) & ~(huge - 1);
	if (posix_memalign(&p, huge, n) != 0)
		return NULL;
#ifdef MADV_HUGEPAGE
	(void) madvise(p, n, MADV_HUGEPAGE);
#endif
	return p;
}

static int
mul_ok(size_t a, size_t b, size_t *r)
{
	return !__builtin_mul_overflow(a, b, r);
}

static int
add_ok(size_t a, size_t b, size_t *r)
{
	return !__builtin_add_overflow(a, b, r);
}

int
als_matrix_bytes(uint32_t nrows, uint64_t nnz, size_t *bytes)
{
	size_t		a,
				b;

	if (!mul_ok((size_t) nrows + 1, sizeof(uint64_t), &a) ||
		nnz > SIZE_MAX ||
		!mul_ok((size_t) nnz, sizeof(AlsEntry), &b))
		return 0;
	return add_ok(a, b, bytes);
}

/* per-thread scratch, in floats */
static int
scratch_floats(int kpad, uint64_t max_row_nnz, size_t *n)
{
	size_t		kk,
				gather,
				rows,
				t;

	if (!mul_ok((size_t) kpad, (size_t) kpad, &kk) ||
		!mul_ok(ALS_GATHER, (size_t) kpad, &gather) ||
		max_row_nnz > SIZE_MAX / 4 ||
		!mul_ok((size_t) max_row_nnz + 16, 2, &rows))
		return 0;
	t = 8 * (size_t) kpad;
	return add_ok(t, kk, &t) && add_ok(t, gather, &t) && add_ok(t, rows, n);
}

int
als_engine_bytes(const AlsParams *params, uint32_t nusers, uint32_t nitems,
				 uint64_t max_row_nnz, size_t *bytes)
{
	int			kpad = als_kpad(params->factors);
	size_t		x,
				y,
				g,
				s,
				total;

	if (!mul_ok((size_t) nusers, (size_t) kpad * sizeof(float), &x) ||
		!mul_ok((size_t) nitems, (size_t) kpad * sizeof(float), &y) ||
		!mul_ok((size_t) kpad * kpad, 4 * sizeof(float), &g) ||
		!scratch_floats(kpad, max_row_nnz, &s) ||
		!mul_ok(s, sizeof(float), &s) ||
		!mul_ok(s, (size_t) (params->threads > 0 ? params->threads : 1), &s))
		return 0;
	total = x;
	if (!add_ok(total, y, &total) || !add_ok(total, g, &total) ||
		!add_ok(total, s, &total) ||
		!add_ok(total, (size_t) 1 << 20, &total))	/* chunk tables, slack */
		return 0;
	*bytes = total;
	return 1;
}

uint64_t
als_max_row_nnz(const AlsMatrix *m)
{
	uint64_t	mx = 0;

	for (uint32_t r = 0; r < m->nrows; r++)
		if (m->ptr[r + 1] - m->ptr[r] > mx)
			mx = m->ptr[r + 1] - m->ptr[r];
	return mx;
}

void
als_matrix_free(AlsMatrix *m)
{
	free(m->ptr);
	free(m->ent);
	m->ptr = NULL;
	m->ent = NULL;
}

int
als_transpose(const AlsMatrix *m, AlsMatrix *out)
{
	uint64_t   *ptr;
	AlsEntry   *ent;
	uint64_t   *fill;

	memset(out, 0, sizeof(*out));
	ptr = calloc((size_t) m->ncols + 1, sizeof(uint64_t));
	ent = malloc(sizeof(AlsEntry) * (m->nnz ? m->nnz : 1));
	fill = malloc(sizeof(uint64_t) * ((size_t) m->ncols + 1));
	if (!ptr || !ent || !fill)
	{
		free(ptr);
		free(ent);
		free(fill);
		return ALS_NOMEM;
	}
	for (uint64_t j = 0; j < m->nnz; j++)
		ptr[m->ent[j].idx + 1]++;
	for (uint32_t c = 0; c < m->ncols; c++)
		ptr[c + 1] += ptr[c];
	memcpy(fill, ptr, sizeof(uint64_t) * ((size_t) m->ncols + 1));
	for (uint32_t r = 0; r < m->nrows; r++)
	{
		for (uint64_t j = m->ptr[r]; j < m->ptr[r + 1]; j++)
		{
			AlsEntry	e = m->ent[j];
			uint64_t	at = fill[e.idx]++;

			ent[at].idx = r;
			ent[at].a = e.a;
		}
	}
	free(fill);
	out->nrows = m->ncols;
	out->ncols = m->nrows;
	out->nnz = m->nnz;
	out->ptr = ptr;
	out->ent = ent;
	return ALS_OK;
}

void
als_factors_free(AlsFactors *f)
{
	free(f->X);
	free(f->Y);
	f->X = NULL;
	f->Y = NULL;
}

/* ---------------------------------------------------------------- helpers */

static double
now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t
splitmix64(uint64_t x)
{
	x += 0x9E3779B97F4A7C15ULL;
	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

/*
 * Initial values: uniform in [-scale/2, scale/2), from a hash of (seed, side, key, j),
 * so a row's start does not depend on where it sits in the matrix.
 */
static void
init_rows(float *F, uint32_t n, int k, int kpad, const int64_t *keys,
		  uint64_t seed, uint64_t side)
{
	const float scale = 0.01f;

	for (uint32_t r = 0; r < n; r++)
	{
		float	   *row = F + (size_t) r * kpad;
		uint64_t	h = splitmix64(seed ^ splitmix64(side ^ splitmix64((uint64_t) keys[r])));

		for (int j = 0; j < k; j++)
		{
			h = splitmix64(h);
			row[j] = ((float) ((h >> 40) * (1.0 / 16777216.0)) - 0.5f) * scale;
		}
		for (int j = k; j < kpad; j++)
			row[j] = 0.0f;
	}
}

/* G = F^T F (k x k used, padding zero), full symmetric, kpad x kpad */
static void
gram(const float *F, uint32_t n, int k, int kpad, float *G)
{
	memset(G, 0, sizeof(float) * kpad * kpad);
	if (n > 0)
		cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, k, (int) n, 1.0f,
					F, kpad, 0.0f, G, kpad);
	for (int a = 0; a < k; a++)
		for (int b = a + 1; b < k; b++)
			G[(size_t) a * kpad + b] = G[(size_t) b * kpad + a];
}

/*
 * ssyrk takes an int row count; F may have more rows than INT_MAX only in
 * theory (rows are uint32), so split to be safe.
 */
static void
gram_big(const float *F, uint32_t n, int k, int kpad, float *G, float *tmp)
{
	const uint32_t step = 1u << 30;

	gram(F, n < step ? n : step, k, kpad, G);
	for (uint32_t s = step; s < n && s > 0; s += step)
	{
		uint32_t	m = n - s < step ? n - s : step;

		gram(F + (size_t) s * kpad, m, k, kpad, tmp);
		for (int i = 0; i < kpad * kpad; i++)
			G[i] += tmp[i];
	}
}

/* ---------------------------------------------------------------- threads */

typedef struct Scratch
{
	float	   *r,
			   *p,
			   *ap,
			   *tmp,
			   *b;
	float	   *A;				/* kpad x kpad */
	float	   *B;				/* ALS_GATHER x kpad */
	float	   *d;				/* max_row_nnz */
	float	   *ev;				/* max_row_nnz */
	void	   *block;
} Scratch;

struct Engine;

typedef struct Pass
{
	/* work on chunk c (thread's scratch s) */
	void		(*fn) (struct Engine *eng, Scratch *s, uint32_t c);
	const AlsMatrix *m;			/* rows to solve */
	float	   *F;				/* their factors */
	const float *O;				/* the other side's factors */
	const float *G;				/* O^T O + lambda I */
	int			want_loss;
	uint32_t	nchunks;
	uint32_t   *chunk;			/* nchunks + 1 row boundaries */
	double	   *chunk_loss;
} Pass;

typedef struct Engine
{
	const AlsParams *params;
	const Kernels *kern;
	int			k;
	int			kpad;
	int			nthreads;
	Scratch    *scratch;

	/* pool */
	pthread_t  *tids;
	int			started;		/* helper threads running */
	int			thread_error;	/* what pthread_create returned, if it failed */
	pthread_mutex_t mu;
	pthread_cond_t start_cv;
	pthread_cond_t done_cv;
	uint64_t	generation;
	int			busy;			/* helpers still in the current pass */
	int			shutdown;

	/* the current pass */
	Pass	   *pass;
	uint32_t	next_chunk;		/* atomic */
	int			stop;			/* atomic: stop requested */
	int			status;			/* atomic: first error (ALS_*) */

	const AlsCallbacks *cb;
	struct HelperArg
	{
		struct Engine *eng;
		int			tid;
	}			args[ALS_MAX_THREADS];
} Engine;

typedef struct HelperArg HelperArg;

static void solve_chunk(Engine *eng, Scratch *s, uint32_t c);

static void
run_chunks(Engine *eng, int tid)
{
	Scratch    *s = &eng->scratch[tid];
	Pass	   *pass = eng->pass;

	for (;;)
	{
		uint32_t	c;

		if (__atomic_load_n(&eng->stop, __ATOMIC_RELAXED))
			break;
		if (tid == 0 && eng->cb && eng->cb->poll && eng->cb->poll(eng->cb->arg))
		{
			__atomic_store_n(&eng->stop, 1, __ATOMIC_RELAXED);
			break;
		}
		c = __atomic_fetch_add(&eng->next_chunk, 1, __ATOMIC_RELAXED);
		if (c >= pass->nchunks)
			break;
		pass->fn(eng, s, c);
	}
}

static void *
helper_main(void *varg)
{
	HelperArg  *ha = varg;
	Engine	   *eng = ha->eng;
	uint64_t	seen = 0;

	for (;;)
	{
		pthread_mutex_lock(&eng->mu);
		while (eng->generation == seen && !eng->shutdown)
			pthread_cond_wait(&eng->start_cv, &eng->mu);
		if (eng->shutdown)
		{
			pthread_mutex_unlock(&eng->mu);
			break;
		}
		seen = eng->generation;
		pthread_mutex_unlock(&eng->mu);

		run_chunks(eng, ha->tid);

		pthread_mutex_lock(&eng->mu);
		if (--eng->busy == 0)
			pthread_cond_signal(&eng->done_cv);
		pthread_mutex_unlock(&eng->mu);
	}
	return NULL;
}

static int
pool_start(Engine *eng)
{
	sigset_t	all,
				old;
	int			rc = ALS_OK;
	int			err;

	pthread_mutex_init(&eng->mu, NULL);
	pthread_cond_init(&eng->start_cv, NULL);
	pthread_cond_init(&eng->done_cv, NULL);
	eng->tids = calloc(eng->nthreads, sizeof(pthread_t));
	if (!eng->tids)
		return ALS_NOMEM;

	/* helpers must never run a signal handler of the host process */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	for (int t = 1; t < eng->nthreads; t++)
	{
		eng->args[t].eng = eng;
		eng->args[t].tid = t;
		/* pthread_create returns its error; it does not set errno */
		if ((err = pthread_create(&eng->tids[t], NULL, helper_main, &eng->args[t])) != 0)
		{
			eng->thread_error = err;
			rc = ALS_THREAD;
			break;
		}
		eng->started++;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static void
pool_stop(Engine *eng)
{
	if (eng->tids == NULL)
		return;
	pthread_mutex_lock(&eng->mu);
	eng->shutdown = 1;
	pthread_cond_broadcast(&eng->start_cv);
	pthread_mutex_unlock(&eng->mu);
	for (int t = 1; t <= eng->started; t++)
		pthread_join(eng->tids[t], NULL);
	free(eng->tids);
	eng->tids = NULL;
	pthread_cond_destroy(&eng->start_cv);
	pthread_cond_destroy(&eng->done_cv);
	pthread_mutex_destroy(&eng->mu);
}

/* Run one pass over all chunks on every thread; returns ALS_* */
static int
pool_run(Engine *eng, Pass *pass)
{
	eng->pass = pass;
	eng->next_chunk = 0;
	for (uint32_t c = 0; c < pass->nchunks; c++)
		pass->chunk_loss[c] = 0.0;

	pthread_mutex_lock(&eng->mu);
	eng->busy = eng->started;
	eng->generation++;
	pthread_cond_broadcast(&eng->start_cv);
	pthread_mutex_unlock(&eng->mu);

	run_chunks(eng, 0);

	pthread_mutex_lock(&eng->mu);
	while (eng->busy > 0)
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 50 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L)
		{
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&eng->done_cv, &eng->mu, &ts);
		if (eng->busy > 0 && eng->cb && eng->cb->poll &&
			!__atomic_load_n(&eng->stop, __ATOMIC_RELAXED))
		{
			pthread_mutex_unlock(&eng->mu);
			if (eng->cb->poll(eng->cb->arg))
				__atomic_store_n(&eng->stop, 1, __ATOMIC_RELAXED);
			pthread_mutex_lock(&eng->mu);
		}
	}
	pthread_mutex_unlock(&eng->mu);

	if (__atomic_load_n(&eng->status, __ATOMIC_RELAXED) != ALS_OK)
		return eng->status;
	if (__atomic_load_n(&eng->stop, __ATOMIC_RELAXED))
		return ALS_STOPPED;
	return ALS_OK;
}

static void
set_status(Engine *eng, int status)
{
	int			expected = ALS_OK;

	__atomic_compare_exchange_n(&eng->status, &expected, status, 0,
								__ATOMIC_RELAXED, __ATOMIC_RELAXED);
	__atomic_store_n(&eng->stop, 1, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------- solvers */

/* loss terms of one row: sum_j (1 + a_j)(1 - d_j)^2 - d_j^2 */
static double
row_loss(const AlsEntry *e, const float *d, uint64_t n)
{
	double		s = 0.0;

	for (uint64_t j = 0; j < n; j++)
	{
		double		dj = d[j];
		double		one = 1.0 - dj;

		s += (1.0 + e[j].a) * one * one - dj * dj;
	}
	return s;
}

static double
solve_cg(Engine *eng, Scratch *s, const Pass *pass, uint32_t row)
{
	const Kernels *K = eng->kern;
	int			kpad = eng->kpad;
	const AlsEntry *e = pass->m->ent + pass->m->ptr[row];
	uint64_t	n = pass->m->ptr[row + 1] - pass->m->ptr[row];
	float	   *x = pass->F + (size_t) row * kpad;
	float	   *r = s->r,
			   *p = s->p,
			   *ap = s->ap,
			   *tmp = s->tmp;
	float		rs;

	if (n == 0)
	{
		/* nothing observed: the minimiser of x^T G x is zero */
		memset(x, 0, sizeof(float) * kpad);
		return 0.0;
	}
	if (K->cg_row)
		return K->cg_row(pass->O, e, n, pass->G, x, eng->params->cg_steps,
						 pass->want_loss, s->d, s->ev);

	/* r = b - A x */
	K->resid(pass->O, e, n, x, r, s->d, kpad);
	K->symv(pass->G, x, tmp, kpad);
	for (int i = 0; i < kpad; i++)
	{
		r[i] -= tmp[i];
		p[i] = r[i];
	}
	rs = K->dot(r, r, kpad);

	for (int step = 0; step < eng->params->cg_steps; step++)
	{
		float		pap,
					alpha,
					rsnew;

		if (rs < 1e-20f)
			break;
		K->apply(pass->O, e, n, p, ap, s->ev, kpad);
		K->symv(pass->G, p, tmp, kpad);
		for (int i = 0; i < kpad; i++)
			ap[i] += tmp[i];
		pap = K->dot(p, ap, kpad);
		if (!(pap > 0.0f))
			break;
		alpha = rs / pap;
		for (int i = 0; i < kpad; i++)
		{
			x[i] += alpha * p[i];
			r[i] -= alpha * ap[i];
		}
		if (pass->want_loss)
			for (uint64_t j = 0; j < n; j++)
				s->d[j] += alpha * s->ev[j];
		rsnew = K->dot(r, r, kpad);
		for (int i = 0; i < kpad; i++)
			p[i] = r[i] + (rsnew / rs) * p[i];
		rs = rsnew;
	}
	return pass->want_loss ? row_loss(e, s->d, n) : 0.0;
}

static double
solve_cholesky(Engine *eng, Scratch *s, const Pass *pass, uint32_t row, int *info)
{
	const Kernels *K = eng->kern;
	int			k = eng->k,
				kpad = eng->kpad;
	const AlsEntry *e = pass->m->ent + pass->m->ptr[row];
	uint64_t	n = pass->m->ptr[row + 1] - pass->m->ptr[row];
	float	   *x = pass->F + (size_t) row * kpad;
	float	   *A = s->A,
			   *b = s->b;
	int			one = 1;

	*info = 0;
	if (n == 0)
	{
		memset(x, 0, sizeof(float) * kpad);
		return 0.0;
	}
	memcpy(A, pass->G, sizeof(float) * kpad * kpad);
	memset(b, 0, sizeof(float) * kpad);
	for (uint64_t j0 = 0; j0 < n; j0 += ALS_GATHER)
	{
		uint64_t	nb = n - j0 < ALS_GATHER ? n - j0 : ALS_GATHER;

		for (uint64_t j = 0; j < nb; j++)
		{
			const float *y = pass->O + (size_t) e[j0 + j].idx * kpad;
			float	   *dst = s->B + (size_t) j * kpad;
			float		sa = sqrtf(e[j0 + j].a);
			float		c = 1.0f + e[j0 + j].a;

			for (int i = 0; i < k; i++)
			{
				dst[i] = sa * y[i];
				b[i] += c * y[i];
			}
		}
		/* row-major lower of A += B^T B, B is nb x k */
		cblas_ssyrk(CblasRowMajor, CblasLower, CblasTrans, k, (int) nb, 1.0f,
					s->B, kpad, 1.0f, A, kpad);
	}
	/* row-major lower triangle == column-major upper triangle */
	sposv_("U", &k, &one, A, &kpad, b, &k, info);
	if (*info != 0)
		return 0.0;
	memcpy(x, b, sizeof(float) * k);
	for (int i = k; i < kpad; i++)
		x[i] = 0.0f;
	if (!pass->want_loss)
		return 0.0;
	K->dots(pass->O, e, n, x, s->d, kpad);
	return row_loss(e, s->d, n);
}

static void
solve_chunk(Engine *eng, Scratch *s, uint32_t c)
{
	Pass	   *pass = eng->pass;
	double		loss = 0.0;

	for (uint32_t row = pass->chunk[c]; row < pass->chunk[c + 1]; row++)
	{
		if (eng->params->solver == ALS_SOLVER_CHOLESKY)
		{
			int			info;

			loss += solve_cholesky(eng, s, pass, row, &info);
			if (info != 0)
			{
				set_status(eng, ALS_NUMERIC);
				return;
			}
		}
		else
			loss += solve_cg(eng, s, pass, row);
	}
	pass->chunk_loss[c] = loss;
}

/*
 * Cut rows into chunks of about equal work. The cut depends only on the
 * matrix, never on the thread count.
 */
static int
make_chunks(const AlsMatrix *m, int kpad, Pass *pass)
{
	double		total = 0.0,
				target,
				acc = 0.0;
	uint32_t	n = 0;
	uint32_t	cap;

#define ROW_COST(r) ((double) (m->ptr[(r) + 1] - m->ptr[(r)]) + kpad / 2.0 + 4.0)
	for (uint32_t r = 0; r < m->nrows; r++)
		total += ROW_COST(r);
	target = total / 512.0;
	if (target < 4096.0)
		target = 4096.0;
	cap = 1024 + 2;
	pass->chunk = malloc(sizeof(uint32_t) * (cap + 1));
	pass->chunk_loss = malloc(sizeof(double) * cap);
	if (!pass->chunk || !pass->chunk_loss)
		return ALS_NOMEM;
	pass->chunk[0] = 0;
	for (uint32_t r = 0; r < m->nrows; r++)
	{
		acc += ROW_COST(r);
		if (acc >= target && r + 1 < m->nrows && n + 2 < cap)
		{
			pass->chunk[++n] = r + 1;
			acc = 0.0;
		}
	}
#undef ROW_COST
	pass->chunk[++n] = m->nrows;
	pass->nchunks = n;
	return ALS_OK;
}

/* ---------------------------------------------------------------- training */

static void errmsg_set(char *err, size_t errlen, const char *fmt,...)
			__attribute__((format(printf, 3, 4)));

static void
errmsg_set(char *err, size_t errlen, const char *fmt,...)
{
	va_list		ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int
als_train(const AlsParams *params, const AlsMatrix *users, const AlsMatrix *items,
		  const int64_t *user_keys, const int64_t *item_keys, AlsFactors *out,
		  const AlsCallbacks *cb, char *err, size_t errlen)
{
	Engine		eng;
	Pass		upass,
				ipass;
	int			k = params->factors;
	int			kpad = als_kpad(k);
	float		lambda = params->regularization;
	float	   *XtX = NULL,
			   *YtY = NULL,
			   *G = NULL,
			   *tmp = NULL;
	uint64_t	max_row = 0;
	size_t		sfloats;
	double		total_c = 0.0;
	double		cells;
	int			rc = ALS_OK;

	memset(out, 0, sizeof(*out));
	memset(&eng, 0, sizeof(eng));
	memset(&upass, 0, sizeof(upass));
	memset(&ipass, 0, sizeof(ipass));

	if (k < 1 || k > ALS_MAX_FACTORS || params->iterations < 1 ||
		users->nrows != items->ncols || items->nrows != users->ncols ||
		users->nnz != items->nnz)
	{
		errmsg_set(err, errlen, "invalid training problem");
		return ALS_NUMERIC;
	}

	eng.params = params;
	eng.kern = choose_kernels(kpad);
	eng.k = k;
	eng.kpad = kpad;
	eng.nthreads = params->threads < 1 ? 1 :
		params->threads > ALS_MAX_THREADS ? ALS_MAX_THREADS : params->threads;
	eng.cb = cb;

	for (uint32_t r = 0; r < users->nrows; r++)
		if (users->ptr[r + 1] - users->ptr[r] > max_row)
			max_row = users->ptr[r + 1] - users->ptr[r];
	for (uint32_t r = 0; r < items->nrows; r++)
		if (items->ptr[r + 1] - items->ptr[r] > max_row)
			max_row = items->ptr[r + 1] - items->ptr[r];
	for (uint64_t j = 0; j < users->nnz; j++)
		total_c += 1.0 + users->ent[j].a;

	out->k = k;
	out->kpad = kpad;
	out->nusers = users->nrows;
	out->nitems = items->nrows;
	out->X = alloc_factors(sizeof(float) * (size_t) kpad * users->nrows);
	out->Y = alloc_factors(sizeof(float) * (size_t) kpad * items->nrows);
	XtX = alloc_aligned(sizeof(float) * kpad * kpad);
	YtY = alloc_aligned(sizeof(float) * kpad * kpad);
	G = alloc_aligned(sizeof(float) * kpad * kpad);
	tmp = alloc_aligned(sizeof(float) * kpad * kpad);
	eng.scratch = calloc(eng.nthreads, sizeof(Scratch));
	if (!out->X || !out->Y || !XtX || !YtY || !G || !tmp || !eng.scratch ||
		!scratch_floats(kpad, max_row, &sfloats))
	{
		rc = ALS_NOMEM;
		goto done;
	}
	for (int t = 0; t < eng.nthreads; t++)
	{
		Scratch    *s = &eng.scratch[t];
		float	   *f = alloc_aligned(sizeof(float) * sfloats);

		if (!f)
		{
			rc = ALS_NOMEM;
			goto done;
		}
		s->block = f;
		s->r = f;
		s->p = f + kpad;
		s->ap = f + 2 * kpad;
		s->tmp = f + 3 * kpad;
		s->b = f + 4 * kpad;
		s->A = f + 8 * kpad;
		s->B = s->A + (size_t) kpad * kpad;
		s->d = s->B + (size_t) ALS_GATHER * kpad;
		s->ev = s->d + max_row + 16;
	}
	if ((rc = make_chunks(users, kpad, &upass)) != ALS_OK ||
		(rc = make_chunks(items, kpad, &ipass)) != ALS_OK)
		goto done;
	upass.fn = solve_chunk;
	ipass.fn = solve_chunk;
	upass.m = users;
	upass.F = out->X;
	upass.O = out->Y;
	upass.G = G;
	upass.want_loss = 0;
	ipass.m = items;
	ipass.F = out->Y;
	ipass.O = out->X;
	ipass.G = G;
	ipass.want_loss = 1;

	init_rows(out->X, users->nrows, k, kpad, user_keys, params->seed, 1);
	init_rows(out->Y, items->nrows, k, kpad, item_keys, params->seed, 2);

	if ((rc = pool_start(&eng)) != ALS_OK)
		goto done;

	cells = (double) users->nrows * (double) items->nrows - (double) users->nnz + total_c;
	gram_big(out->Y, items->nrows, k, kpad, YtY, tmp);

	for (int it = 1; it <= params->iterations; it++)
	{
		double		t0 = now_seconds();
		double		loss = 0.0;

		/* users, given items */
		memcpy(G, YtY, sizeof(float) * kpad * kpad);
		for (int a = 0; a < k; a++)
			G[(size_t) a * kpad + a] += lambda;
		if ((rc = pool_run(&eng, &upass)) != ALS_OK)
			break;

		/* items, given users */
		gram_big(out->X, users->nrows, k, kpad, XtX, tmp);
		memcpy(G, XtX, sizeof(float) * kpad * kpad);
		for (int a = 0; a < k; a++)
			G[(size_t) a * kpad + a] += lambda;
		if ((rc = pool_run(&eng, &ipass)) != ALS_OK)
			break;
		gram_big(out->Y, items->nrows, k, kpad, YtY, tmp);

		/* loss of (X, Y) as they stand now */
		for (uint32_t c = 0; c < ipass.nchunks; c++)
			loss += ipass.chunk_loss[c];
		for (int a = 0; a < k; a++)
		{
			for (int b = 0; b < k; b++)
				loss += (double) XtX[(size_t) a * kpad + b] * YtY[(size_t) a * kpad + b];
			loss += lambda * ((double) XtX[(size_t) a * kpad + a] + YtY[(size_t) a * kpad + a]);
		}
		loss /= cells > 0 ? cells : 1.0;
		if (!isfinite(loss))
		{
			rc = ALS_NUMERIC;
			break;
		}
		if (cb && cb->iteration)
			cb->iteration(cb->arg, it, loss, now_seconds() - t0);
		if (cb && cb->poll && cb->poll(cb->arg))
		{
			rc = ALS_STOPPED;
			break;
		}
	}

done:
	pool_stop(&eng);
	if (eng.scratch)
		for (int t = 0; t < eng.nthreads; t++)
			free(eng.scratch[t].block);
	free(eng.scratch);
	free(upass.chunk);
	free(upass.chunk_loss);
	free(ipass.chunk);
	free(ipass.chunk_loss);
	free(XtX);
	free(YtY);
	free(G);
	free(tmp);
	switch (rc)
	{
		case ALS_OK:
			break;
		case ALS_STOPPED:
			errmsg_set(err, errlen, "training stopped");
			break;
		case ALS_NOMEM:
			errmsg_set(err, errlen, "out of memory");
			break;
		case ALS_THREAD:
			errmsg_set(err, errlen, "could not start a training thread: %s", strerror(eng.thread_error));
			break;
		default:
			errmsg_set(err, errlen, "training failed: a system of equations was not positive definite or the loss is not finite (raise regularization)");
			break;
	}
	if (rc != ALS_OK)
		als_factors_free(out);
	return rc;
}

/* ---------------------------------------------------------------- holdout */

#define EVAL_BLOCK 64			/* users scored per sgemm */

typedef struct EvalCtx
{
	const AlsFactors *f;
	const AlsMatrix *users;
	const uint32_t *hold;
	int			k;
	float	  **S;				/* per thread: EVAL_BLOCK x nitems scores */
	float	  **Xb;				/* per thread: EVAL_BLOCK x kpad */
	double	   *sums;			/* per chunk: users, hit, ndcg, map, mrr */
} EvalCtx;

static EvalCtx *eval_ctx;

int
als_eval_bytes(uint32_t nitems, int kpad, int threads, size_t *bytes)
{
	size_t		per,
				xb;
	int			n = threads < 1 ? 1 : threads > ALS_MAX_THREADS ? ALS_MAX_THREADS : threads;

	/* per thread: scores of EVAL_BLOCK users for every item, and their factors */
	if (!mul_ok(EVAL_BLOCK, (size_t) (nitems ? nitems : 1), &per) ||
		!mul_ok(EVAL_BLOCK, (size_t) kpad, &xb) ||
		!add_ok(per, xb, &per) ||
		!mul_ok(per, sizeof(float), &per) ||
		!mul_ok(per, (size_t) n, bytes))
		return 0;
	return 1;
}

/*
 * Rank each held-out item of a block of users among all items but the
 * user's training items: rank = how many come first (a higher score, or the
 * same score and a smaller index).
 */
static void
eval_chunk(Engine *eng, Scratch *s, uint32_t c)
{
	EvalCtx    *ctx = eval_ctx;
	const AlsFactors *f = ctx->f;
	int			tid = (int) (s - eng->scratch);
	float	   *S = ctx->S[tid],
			   *Xb = ctx->Xb[tid];
	uint32_t	blk[EVAL_BLOCK];
	uint32_t	nb = 0,
				ni = f->nitems;
	double	   *out = ctx->sums + (size_t) c * 5;

	for (uint32_t u = c * EVAL_BLOCK; u < f->nusers && u < (c + 1) * EVAL_BLOCK; u++)
	{
		if (ctx->hold[u] == UINT32_MAX || ctx->users->ptr[u + 1] == ctx->users->ptr[u])
			continue;
		memcpy(Xb + (size_t) nb * f->kpad, f->X + (size_t) u * f->kpad, sizeof(float) * f->kpad);
		blk[nb++] = u;
	}
	memset(out, 0, sizeof(double) * 5);
	if (nb == 0 || ni == 0)
		return;
	cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int) nb, (int) ni, f->kpad,
				1.0f, Xb, f->kpad, f->Y, f->kpad, 0.0f, S, (int) ni);
	for (uint32_t b = 0; b < nb; b++)
	{
		uint32_t	u = blk[b],
					h = ctx->hold[u];
		const float *sc = S + (size_t) b * ni;
		float		t = sc[h];
		uint64_t	rank = 0;

		for (uint32_t i = 0; i < ni; i++)
			rank += sc[i] > t || (sc[i] == t && i < h);
		for (uint64_t j = ctx->users->ptr[u]; j < ctx->users->ptr[u + 1]; j++)
		{
			uint32_t	i = ctx->users->ent[j].idx;

			rank -= sc[i] > t || (sc[i] == t && i < h);
		}
		out[0] += 1.0;
		out[4] += 1.0 / (rank + 1.0);
		if (rank < (uint64_t) ctx->k)
		{
			out[1] += 1.0;
			out[2] += 1.0 / log2(rank + 2.0);
			out[3] += 1.0 / (rank + 1.0);
		}
	}
}

int
als_eval_holdout(const AlsFactors *f, const AlsMatrix *users, const uint32_t *hold,
				 int k, int threads, const AlsCallbacks *cb, AlsHoldout *res,
				 char *err, size_t errlen)
{
	Engine		eng;
	Pass		pass;
	EvalCtx		ctx;
	AlsParams	p;
	uint32_t	nchunks = (f->nusers + EVAL_BLOCK - 1) / EVAL_BLOCK;
	int			rc = ALS_OK;

	memset(res, 0, sizeof(*res));
	memset(&eng, 0, sizeof(eng));
	memset(&pass, 0, sizeof(pass));
	memset(&ctx, 0, sizeof(ctx));
	memset(&p, 0, sizeof(p));
	p.threads = threads;
	eng.params = &p;
	eng.nthreads = threads < 1 ? 1 : threads > ALS_MAX_THREADS ? ALS_MAX_THREADS : threads;
	eng.cb = cb;
	ctx.f = f;
	ctx.users = users;
	ctx.hold = hold;
	ctx.k = k;
	ctx.S = calloc(eng.nthreads, sizeof(float *));
	ctx.Xb = calloc(eng.nthreads, sizeof(float *));
	ctx.sums = calloc((size_t) nchunks * 5 + 5, sizeof(double));
	eng.scratch = calloc(eng.nthreads, sizeof(Scratch));
	pass.fn = eval_chunk;
	pass.nchunks = nchunks;
	pass.chunk_loss = calloc(nchunks + 1, sizeof(double));
	if (!ctx.S || !ctx.Xb || !ctx.sums || !eng.scratch || !pass.chunk_loss)
		rc = ALS_NOMEM;
	for (int t = 0; rc == ALS_OK && t < eng.nthreads; t++)
	{
		ctx.S[t] = alloc_aligned(sizeof(float) * EVAL_BLOCK * (size_t) (f->nitems ? f->nitems : 1));
		ctx.Xb[t] = alloc_aligned(sizeof(float) * EVAL_BLOCK * (size_t) f->kpad);
		if (!ctx.S[t] || !ctx.Xb[t])
			rc = ALS_NOMEM;
	}
	eval_ctx = &ctx;
	if (rc == ALS_OK)
		rc = pool_start(&eng);
	if (rc == ALS_OK)
		rc = pool_run(&eng, &pass);
	pool_stop(&eng);
	if (rc == ALS_OK)
	{
		double		t[5] = {0, 0, 0, 0, 0};

		for (uint32_t c = 0; c < nchunks; c++)
			for (int x = 0; x < 5; x++)
				t[x] += ctx.sums[(size_t) c * 5 + x];
		res->users = (uint64_t) t[0];
		if (t[0] > 0)
		{
			res->hit_rate = t[1] / t[0];
			res->ndcg = t[2] / t[0];
			res->map = t[3] / t[0];
			res->mrr = t[4] / t[0];
		}
	}
	eval_ctx = NULL;
	if (rc == ALS_THREAD)
		errmsg_set(err, errlen, "could not start an evaluation thread: %s", strerror(eng.thread_error));
	else if (rc == ALS_NOMEM)
		errmsg_set(err, errlen, "out of memory");
	else if (rc == ALS_STOPPED)
		errmsg_set(err, errlen, "evaluation stopped");
	for (int t = 0; ctx.S && t < eng.nthreads; t++)
		free(ctx.S[t]);
	for (int t = 0; ctx.Xb && t < eng.nthreads; t++)
		free(ctx.Xb[t]);
	free(ctx.S);
	free(ctx.Xb);
	free(ctx.sums);
	free(eng.scratch);
	free(pass.chunk_loss);
	return rc;
}
