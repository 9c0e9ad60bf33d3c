/*
 * similar.h
 *	  Settings of rec.similar_items (internal to src/serve).
 */
#ifndef REC_SERVE_SIMILAR_H
#define REC_SERVE_SIMILAR_H

extern int	rec_similar_audience;
extern int	rec_similar_history;
extern double rec_similar_shrinkage;
extern int	rec_similar_max_candidates;

#endif							/* REC_SERVE_SIMILAR_H */
