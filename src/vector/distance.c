/*
 * distance.c
 *	  Distance kernels for rec's vector type, with run-time dispatch.
 *
 * The library is built for baseline x86-64 (no -march=native). Faster
 * variants are compiled per function with target attributes and chosen once,
 * at load time, from what the CPU (and the OS, for the wide registers)
 * supports. The portable loops double as the reference the tests compare the
 * SIMD kernels against.
 *
 * The superuser-only setting rec.vector_kernels (auto, avx512, avx2,
 * portable) overrides the choice, so tests can run every kernel set on one
 * machine; asking for a set the CPU lacks is an error.
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/guc.h"

#include "vector/vector.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define REC_X86_SIMD 1
#include <immintrin.h>
#endif

RecDistanceKernel rec_kernel_l2sq = rec_kernel_l2sq_ref;
RecDistanceKernel rec_kernel_dot = rec_kernel_dot_ref;
RecDistanceKernel rec_kernel_l1 = rec_kernel_l1_ref;
RecDotNormsKernel rec_kernel_dot_norms = rec_kernel_dot_norms_ref;

/* Values of rec.vector_kernels. */
typedef enum
{
	KERNELS_AUTO,
	KERNELS_AVX512,
	KERNELS_AVX2,
	KERNELS_PORTABLE
} KernelChoice;

static const struct config_enum_entry kernel_options[] = {
	{"auto", KERNELS_AUTO, false},
	{"avx512", KERNELS_AVX512, false},
	{"avx2", KERNELS_AVX2, false},
	{"portable", KERNELS_PORTABLE, false},
	{NULL, 0, false}
};

static int	kernel_choice = KERNELS_AUTO;
static const char *kernel_name = "portable";

/* What the CPU and OS support, found once by rec_vector_init(). */
static bool cpu_has_avx512 = false;
static bool cpu_has_avx2 = false;

/* ---------- portable reference kernels ---------- */

float
rec_kernel_l2sq_ref(const float *a, const float *b, int n)
{
	float		s = 0.0f;

	for (int i = 0; i < n; i++)
	{
		float		d = a[i] - b[i];

		s += d * d;
	}
	return s;
}

float
rec_kernel_dot_ref(const float *a, const float *b, int n)
{
	float		s = 0.0f;

	for (int i = 0; i < n; i++)
		s += a[i] * b[i];
	return s;
}

float
rec_kernel_l1_ref(const float *a, const float *b, int n)
{
	float		s = 0.0f;

	for (int i = 0; i < n; i++)
		s += fabsf(a[i] - b[i]);
	return s;
}

void
rec_kernel_dot_norms_ref(const float *a, const float *b, int n,
						 float *ab, float *aa, float *bb)
{
	float		sab = 0.0f;
	float		saa = 0.0f;
	float		sbb = 0.0f;

	for (int i = 0; i < n; i++)
	{
		sab += a[i] * b[i];
		saa += a[i] * a[i];
		sbb += b[i] * b[i];
	}
	*ab = sab;
	*aa = saa;
	*bb = sbb;
}

#ifdef REC_X86_SIMD

/* ---------- AVX2 + FMA ---------- */

__attribute__((target("avx2,fma")))
static inline float
hsum256(__m256 v)
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
l2sq_avx2(const float *a, const float *b, int n)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	int			i = 0;
	float		s;

	for (; i + 16 <= n; i += 16)
	{
		__m256		d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256		d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));

		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
	}
	if (i + 8 <= n)
	{
		__m256		d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));

		s0 = _mm256_fmadd_ps(d0, d0, s0);
		i += 8;
	}
	s = hsum256(_mm256_add_ps(s0, s1));
	for (; i < n; i++)
	{
		float		d = a[i] - b[i];

		s += d * d;
	}
	return s;
}

__attribute__((target("avx2,fma")))
static float
dot_avx2(const float *a, const float *b, int n)
{
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	int			i = 0;
	float		s;

	for (; i + 16 <= n; i += 16)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
	}
	if (i + 8 <= n)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		i += 8;
	}
	s = hsum256(_mm256_add_ps(s0, s1));
	for (; i < n; i++)
		s += a[i] * b[i];
	return s;
}

__attribute__((target("avx2,fma")))
static float
l1_avx2(const float *a, const float *b, int n)
{
	const __m256 signmask = _mm256_set1_ps(-0.0f);
	__m256		s0 = _mm256_setzero_ps();
	__m256		s1 = _mm256_setzero_ps();
	int			i = 0;
	float		s;

	for (; i + 16 <= n; i += 16)
	{
		__m256		d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256		d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));

		s0 = _mm256_add_ps(s0, _mm256_andnot_ps(signmask, d0));
		s1 = _mm256_add_ps(s1, _mm256_andnot_ps(signmask, d1));
	}
	if (i + 8 <= n)
	{
		__m256		d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));

		s0 = _mm256_add_ps(s0, _mm256_andnot_ps(signmask, d0));
		i += 8;
	}
	s = hsum256(_mm256_add_ps(s0, s1));
	for (; i < n; i++)
		s += fabsf(a[i] - b[i]);
	return s;
}

__attribute__((target("avx2,fma")))
static void
dot_norms_avx2(const float *a, const float *b, int n, float *ab, float *aa, float *bb)
{
	__m256		sab0 = _mm256_setzero_ps();
	__m256		saa0 = _mm256_setzero_ps();
	__m256		sbb0 = _mm256_setzero_ps();
	__m256		sab1 = _mm256_setzero_ps();
	__m256		saa1 = _mm256_setzero_ps();
	__m256		sbb1 = _mm256_setzero_ps();
	int			i = 0;
	float		rab;
	float		raa;
	float		rbb;

	for (; i + 16 <= n; i += 16)
	{
		__m256		a0 = _mm256_loadu_ps(a + i);
		__m256		b0 = _mm256_loadu_ps(b + i);
		__m256		a1 = _mm256_loadu_ps(a + i + 8);
		__m256		b1 = _mm256_loadu_ps(b + i + 8);

		sab0 = _mm256_fmadd_ps(a0, b0, sab0);
		saa0 = _mm256_fmadd_ps(a0, a0, saa0);
		sbb0 = _mm256_fmadd_ps(b0, b0, sbb0);
		sab1 = _mm256_fmadd_ps(a1, b1, sab1);
		saa1 = _mm256_fmadd_ps(a1, a1, saa1);
		sbb1 = _mm256_fmadd_ps(b1, b1, sbb1);
	}
	if (i + 8 <= n)
	{
		__m256		a0 = _mm256_loadu_ps(a + i);
		__m256		b0 = _mm256_loadu_ps(b + i);

		sab0 = _mm256_fmadd_ps(a0, b0, sab0);
		saa0 = _mm256_fmadd_ps(a0, a0, saa0);
		sbb0 = _mm256_fmadd_ps(b0, b0, sbb0);
		i += 8;
	}
	rab = hsum256(_mm256_add_ps(sab0, sab1));
	raa = hsum256(_mm256_add_ps(saa0, saa1));
	rbb = hsum256(_mm256_add_ps(sbb0, sbb1));
	for (; i < n; i++)
	{
		rab += a[i] * b[i];
		raa += a[i] * a[i];
		rbb += b[i] * b[i];
	}
	*ab = rab;
	*aa = raa;
	*bb = rbb;
}

/* ---------- AVX-512F ---------- */

__attribute__((target("avx512f")))
static float
l2sq_avx512(const float *a, const float *b, int n)
{
	__m512		s0 = _mm512_setzero_ps();
	__m512		s1 = _mm512_setzero_ps();
	int			i = 0;

	for (; i + 32 <= n; i += 32)
	{
		__m512		d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512		d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));

		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
	}
	for (; i < n; i += 16)
	{
		__mmask16	m = (n - i >= 16) ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n - i)) - 1);
		__m512		d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));

		s0 = _mm512_fmadd_ps(d0, d0, s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f")))
static float
dot_avx512(const float *a, const float *b, int n)
{
	__m512		s0 = _mm512_setzero_ps();
	__m512		s1 = _mm512_setzero_ps();
	int			i = 0;

	for (; i + 32 <= n; i += 32)
	{
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
	}
	for (; i < n; i += 16)
	{
		__mmask16	m = (n - i >= 16) ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n - i)) - 1);

		s0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s0);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f")))
static float
l1_avx512(const float *a, const float *b, int n)
{
	__m512		s0 = _mm512_setzero_ps();
	__m512		s1 = _mm512_setzero_ps();
	int			i = 0;

	for (; i + 32 <= n; i += 32)
	{
		__m512		d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512		d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));

		s0 = _mm512_add_ps(s0, _mm512_abs_ps(d0));
		s1 = _mm512_add_ps(s1, _mm512_abs_ps(d1));
	}
	for (; i < n; i += 16)
	{
		__mmask16	m = (n - i >= 16) ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n - i)) - 1);
		__m512		d0 = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));

		s0 = _mm512_add_ps(s0, _mm512_abs_ps(d0));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
}

__attribute__((target("avx512f")))
static void
dot_norms_avx512(const float *a, const float *b, int n, float *ab, float *aa, float *bb)
{
	__m512		sab0 = _mm512_setzero_ps();
	__m512		saa0 = _mm512_setzero_ps();
	__m512		sbb0 = _mm512_setzero_ps();
	__m512		sab1 = _mm512_setzero_ps();
	__m512		saa1 = _mm512_setzero_ps();
	__m512		sbb1 = _mm512_setzero_ps();
	int			i = 0;

	for (; i + 32 <= n; i += 32)
	{
		__m512		a0 = _mm512_loadu_ps(a + i);
		__m512		b0 = _mm512_loadu_ps(b + i);
		__m512		a1 = _mm512_loadu_ps(a + i + 16);
		__m512		b1 = _mm512_loadu_ps(b + i + 16);

		sab0 = _mm512_fmadd_ps(a0, b0, sab0);
		saa0 = _mm512_fmadd_ps(a0, a0, saa0);
		sbb0 = _mm512_fmadd_ps(b0, b0, sbb0);
		sab1 = _mm512_fmadd_ps(a1, b1, sab1);
		saa1 = _mm512_fmadd_ps(a1, a1, saa1);
		sbb1 = _mm512_fmadd_ps(b1, b1, sbb1);
	}
	for (; i < n; i += 16)
	{
		__mmask16	m = (n - i >= 16) ? (__mmask16) 0xFFFF : (__mmask16) ((1u << (n - i)) - 1);
		__m512		a0 = _mm512_maskz_loadu_ps(m, a + i);
		__m512		b0 = _mm512_maskz_loadu_ps(m, b + i);

		sab0 = _mm512_fmadd_ps(a0, b0, sab0);
		saa0 = _mm512_fmadd_ps(a0, a0, saa0);
		sbb0 = _mm512_fmadd_ps(b0, b0, sbb0);
	}
	*ab = _mm512_reduce_add_ps(_mm512_add_ps(sab0, sab1));
	*aa = _mm512_reduce_add_ps(_mm512_add_ps(saa0, saa1));
	*bb = _mm512_reduce_add_ps(_mm512_add_ps(sbb0, sbb1));
}

#endif							/* REC_X86_SIMD */

const char *
rec_kernel_name(void)
{
	return kernel_name;
}

/* Install one kernel set. The caller has checked the CPU supports it. */
static void
use_kernels(KernelChoice k)
{
	if (k == KERNELS_AUTO)
		k = cpu_has_avx512 ? KERNELS_AVX512 : cpu_has_avx2 ? KERNELS_AVX2 : KERNELS_PORTABLE;

	switch (k)
	{
#ifdef REC_X86_SIMD
		case KERNELS_AVX512:
			rec_kernel_l2sq = l2sq_avx512;
			rec_kernel_dot = dot_avx512;
			rec_kernel_l1 = l1_avx512;
			rec_kernel_dot_norms = dot_norms_avx512;
			kernel_name = "avx512";
			break;
		case KERNELS_AVX2:
			rec_kernel_l2sq = l2sq_avx2;
			rec_kernel_dot = dot_avx2;
			rec_kernel_l1 = l1_avx2;
			rec_kernel_dot_norms = dot_norms_avx2;
			kernel_name = "avx2";
			break;
#endif
		default:
			rec_kernel_l2sq = rec_kernel_l2sq_ref;
			rec_kernel_dot = rec_kernel_dot_ref;
			rec_kernel_l1 = rec_kernel_l1_ref;
			rec_kernel_dot_norms = rec_kernel_dot_norms_ref;
			kernel_name = "portable";
			break;
	}
}

static bool
check_kernels(int *newval, void **extra, GucSource source)
{
	if (*newval == KERNELS_AVX512 && !cpu_has_avx512)
	{
		GUC_check_errdetail("This CPU, or its operating system, does not support AVX-512F.");
		return false;
	}
	if (*newval == KERNELS_AVX2 && !cpu_has_avx2)
	{
		GUC_check_errdetail("This CPU, or its operating system, does not support AVX2 with FMA.");
		return false;
	}
	return true;
}

static void
assign_kernels(int newval, void *extra)
{
	use_kernels((KernelChoice) newval);
}

void
rec_vector_init(void)
{
#ifdef REC_X86_SIMD
	/* libgcc also checks XCR0, i.e. that the OS saves the wide registers. */
	__builtin_cpu_init();
	cpu_has_avx512 = __builtin_cpu_supports("avx512f");
	cpu_has_avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
	use_kernels(KERNELS_AUTO);

	DefineCustomEnumVariable("rec.vector_kernels",
							 "Which SIMD distance kernels rec uses.",
							 "auto picks the widest set this CPU supports; "
							 "avx512, avx2 and portable force one (for tests and comparisons).",
							 &kernel_choice,
							 KERNELS_AUTO,
							 kernel_options,
							 PGC_SUSET,
							 0,
							 check_kernels,
							 assign_kernels,
							 NULL);
}

PG_FUNCTION_INFO_V1(rec_vector_kernel_set);
Datum
rec_vector_kernel_set(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(kernel_name));
}
