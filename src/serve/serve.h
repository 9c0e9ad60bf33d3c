/*
 * serve.h
 *	  The face of src/serve: rec.recommend and rec.similar_items.
 *
 * The pipeline's building blocks (requests, candidates, candidate sources)
 * are in serve/pipeline.h, for code inside this folder.
 */
#ifndef REC_SERVE_H
#define REC_SERVE_H

/* Largest n rec.recommend and rec.similar_items accept. */
#define REC_MAX_RESULTS 10000

/* Define this folder's settings; called from _PG_init. */
extern void rec_serve_init(void);

#endif							/* REC_SERVE_H */
