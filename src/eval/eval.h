/*
 * eval.h
 *	  The face of src/eval: offline ranking metrics and rec.evaluate().
 *
 * Every metric here uses binary relevance and the textbook definitions,
 * for a ranked list r_1..r_n (best first), a set R of relevant items and a
 * cut-off k (only r_1..r_k count, hit_i = 1 when r_i is in R and has not
 * appeared earlier in the list):
 *
 *	precision@k = sum hit_i / k
 *	recall@k	= sum hit_i / |R|
 *	hit_rate@k	= 1 if some hit_i = 1, else 0
 *	ndcg@k		= DCG / IDCG, DCG = sum hit_i / log2(i + 1),
 *				  IDCG = sum over i = 1..min(k, |R|) of 1 / log2(i + 1)
 *	AP@k		= sum (precision@i * hit_i) / min(k, |R|)
 *
 * With an empty R only precision is defined (0); the others are NULL, so
 * avg() over users skips users without relevant items.
 */
#ifndef REC_EVAL_H
#define REC_EVAL_H

#include "postgres.h"

typedef struct RecRankMetrics
{
	double		precision;
	double		recall;
	double		hit_rate;
	double		ndcg;
	double		ap;
	bool		defined;		/* false when R is empty */
} RecRankMetrics;

/*
 * ranked: n ids, best first (ranked_null[i] marks a position holding no
 * item; may be NULL). relevant: sorted ascending, distinct. k >= 1.
 */
extern void rec_eval_metrics(const int64 *ranked, const bool *ranked_null, int n,
							 const int64 *relevant, int nrel, int k,
							 RecRankMetrics *out);

/* Sort an id array and drop duplicates; returns the new length. */
extern int	rec_eval_sort_distinct(int64 *ids, int n);

#endif							/* REC_EVAL_H */
