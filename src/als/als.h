/*
 * als.h
 *	  The face of src/als: implicit-feedback ALS (Hu, Koren & Volinsky 2008)
 *	  and the background worker that trains queued jobs.
 *
 * The engine (engine.c) is plain C with no PostgreSQL headers: it works on
 * CSR matrices and float arrays allocated with malloc, runs its own threads,
 * and reports back through callbacks, so the same code can be driven by the
 * training worker and by the stand-alone benchmark harness in test/bench.
 * Its threads never call into PostgreSQL.
 *
 * Everything here is compiled into rec_train.so, which links OpenBLAS and is
 * loaded only by the training worker.
 */
#ifndef REC_ALS_H
#define REC_ALS_H

#include <stddef.h>
#include <stdint.h>

/* One stored interaction: column index and alpha * weight (= confidence - 1). */
typedef struct AlsEntry
{
	uint32_t	idx;
	float		a;
} AlsEntry;

/* A sparse matrix in compressed-row form; rows sorted by column, no duplicates. */
typedef struct AlsMatrix
{
	uint32_t	nrows;
	uint32_t	ncols;
	uint64_t	nnz;
	uint64_t   *ptr;			/* nrows + 1 offsets into ent */
	AlsEntry   *ent;
} AlsMatrix;

#define ALS_SOLVER_CG		0
#define ALS_SOLVER_CHOLESKY	1

#define ALS_MAX_FACTORS		1024
#define ALS_MAX_ITERATIONS	1000
#define ALS_MAX_CG_STEPS	32
#define ALS_MAX_THREADS		64

typedef struct AlsParams
{
	int			factors;
	int			iterations;
	int			solver;			/* ALS_SOLVER_* */
	int			cg_steps;
	int			threads;
	float		regularization;
	uint64_t	seed;
} AlsParams;

/* Status codes of als_train. */
#define ALS_OK			0
#define ALS_STOPPED		1		/* poll callback asked to stop */
#define ALS_NOMEM		2		/* an allocation failed */
#define ALS_NUMERIC		3		/* a system was not positive definite, or NaN */
#define ALS_THREAD		4		/* could not start a thread */

typedef struct AlsCallbacks
{
	void	   *arg;
	/* Called often from the calling thread only; nonzero means stop now. */
	int			(*poll) (void *arg);
	/* Called from the calling thread after each iteration. */
	void		(*iteration) (void *arg, int iteration, double loss, double seconds);
} AlsCallbacks;

/* Trained factors: rows of kpad floats (k used, the rest zero), 64-byte aligned. */
typedef struct AlsFactors
{
	int			k;
	int			kpad;
	uint32_t	nusers;
	uint32_t	nitems;
	float	   *X;				/* nusers * kpad */
	float	   *Y;				/* nitems * kpad */
} AlsFactors;

/*
 * Train. users is the user-by-item matrix, items its transpose.
 * user_keys/item_keys (external ids) seed each row's initial values, so the
 * result does not depend on the order in which rows were read. The result
 * is deterministic for a given seed (and, on one machine, independent of the
 * thread count). On failure err holds a message.
 */
extern int	als_train(const AlsParams *params, const AlsMatrix *users,
					  const AlsMatrix *items, const int64_t *user_keys,
					  const int64_t *item_keys, AlsFactors *out,
					  const AlsCallbacks *cb, char *err, size_t errlen);

extern void als_factors_free(AlsFactors *f);

/* Round the factor count up to the SIMD row width. */
extern int	als_kpad(int k);

/*
 * Bytes the engine will allocate for a job of this shape (not counting the
 * two matrices, which the caller owns). Returns false on overflow.
 */
extern int	als_engine_bytes(const AlsParams *params, uint32_t nusers,
							 uint32_t nitems, uint64_t max_row_nnz, size_t *bytes);

/* Bytes of one CSR matrix of this shape; false on overflow. */
extern int	als_matrix_bytes(uint32_t nrows, uint64_t nnz, size_t *bytes);

/*
 * Build the transpose of m (ncols rows). Rows of the result come out sorted.
 * Returns ALS_OK or ALS_NOMEM.
 */
extern int	als_transpose(const AlsMatrix *m, AlsMatrix *out);

extern void als_matrix_free(AlsMatrix *m);

/* Most entries in one row. */
extern uint64_t als_max_row_nnz(const AlsMatrix *m);

/* Full-ranking evaluation of held-out items (see als_eval_holdout). */
typedef struct AlsHoldout
{
	uint64_t	users;
	double		hit_rate;		/* at k */
	double		ndcg;			/* at k */
	double		map;			/* at k (one relevant item: 1 / (rank + 1)) */
	double		mrr;
} AlsHoldout;

/*
 * For each user u with hold[u] != UINT32_MAX and a non-empty row in users,
 * rank item hold[u] among all items except the user's training items (the
 * row): rank = the number that come first, by score (x_u . y_i) descending,
 * then by index. Averages the metrics at k over those users, on `threads`
 * threads. Returns ALS_OK, ALS_STOPPED, ALS_NOMEM or ALS_THREAD; on
 * failure err holds a message.
 */
extern int	als_eval_holdout(const AlsFactors *f, const AlsMatrix *users,
							 const uint32_t *hold, int k, int threads,
							 const AlsCallbacks *cb, AlsHoldout *res,
							 char *err, size_t errlen);

/* Bytes als_eval_holdout allocates for this shape; false on overflow. */
extern int	als_eval_bytes(uint32_t nitems, int kpad, int threads, size_t *bytes);

/* Name of the kernel set in use ("avx512", "avx2", "portable"). */
extern const char *als_kernel_name(void);

/* Dot product with the engine's kernel (for scoring). */
extern float als_dot(const float *a, const float *b, int kpad);

#endif							/* REC_ALS_H */
