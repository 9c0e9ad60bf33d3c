/*
 * pipeline.h
 *	  The recommendation pipeline of src/serve, as rec.recommend runs it:
 *
 *	  resolve     choose the candidate sources for this request (deployed
 *	              model, experiment variant, fallback)
 *	  exclusions  load what this user must not see again (suppressing kinds)
 *	  candidates  run each source; each candidate carries its source's name
 *	  filter      drop excluded items (and, with several sources, duplicates)
 *	  rank        order by score, cut to n, number the rows
 *	  output      one row per candidate: item_id, score, rank, source
 *
 * Every database read goes through a kept SPI plan prepared once per
 * backend; a stage issues a bounded number of queries per request, never one
 * per candidate row. Internal to src/serve.
 */
#ifndef REC_SERVE_PIPELINE_H
#define REC_SERVE_PIPELINE_H

#include "postgres.h"

#include "executor/spi.h"
#include "funcapi.h"
#include "utils/timestamp.h"

#define REC_MAX_SOURCES 8

typedef struct RecCandidate
{
	int64		item_id;
	double		score;			/* the `score` column */
	double		key;			/* ranking key, larger is better (a source may
								 * rank in another domain than it shows, e.g.
								 * log2 of a score that underflows) */
	const char *source;			/* static string, e.g. "popular" */
} RecCandidate;

typedef struct RecRequest RecRequest;

/*
 * A candidate source adds candidates with rec_request_add(). Contract: it
 * returns only items that are in rec.items and available, and it fetches
 * enough that after removing the request's excluded items (at most
 * req->n_excluded of them) n remain whenever that many exist.
 */
typedef struct RecCandidateSource
{
	const char *name;			/* the `source` column of its rows */
	void		(*fetch) (RecRequest *req, const struct RecCandidateSource *self);
} RecCandidateSource;

struct RecRequest
{
	int64		user_id;
	int			n;
	TimestampTz now;			/* transaction start: the time scores refer to */
	MemoryContext mcxt;			/* outlives SPI: holds everything below */

	/* resolve */
	const RecCandidateSource *sources[REC_MAX_SOURCES];
	int			n_sources;
	int64		model_id;		/* deployed model serving this user, or 0 */
	Datum		user_factors;	/* the user's rec.vector in that model */

	/* exclusions: sorted, distinct */
	int64	   *excluded;
	int			n_excluded;

	/* candidates */
	RecCandidate *cands;
	int			n_cands;
	int			max_cands;
};

/* Append a candidate (in req->mcxt). */
extern void rec_request_add(RecRequest *req, int64 item_id, double score,
							double key, const char *source);

/* Prepare and keep a plan once; *plan is left set on success. */
extern SPIPlanPtr rec_keep_plan(SPIPlanPtr *plan, const char *query,
								int nargs, Oid *argtypes, int cursor_options);

/*
 * Resolve the model deployed on a surface for req's user: sets model_id and
 * user_factors and returns true, or returns false when there is no model or
 * it does not know the user (model.c).
 */
extern bool rec_resolve_model(RecRequest *req, const char *surface);

/*
 * Set up a set-returning function's materialized result. Where the executor
 * passes the expected row type (a call in FROM, or in a select list), the
 * function uses a copy of it that the executor frees after the call.
 * InitMaterializedSRF without MAT_SRF_USE_EXPECTED_DESC instead rebuilds
 * the row type from pg_proc in the query's memory, and part of that is
 * never freed: about 850 bytes per call, which adds up to hundreds of
 * megabytes in one query that calls the function for a million users.
 */
static inline void
rec_init_materialized_srf(FunctionCallInfo fcinfo)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bits32		flags = 0;

	if (rsinfo != NULL && IsA(rsinfo, ReturnSetInfo) && rsinfo->expectedDesc != NULL)
		flags |= MAT_SRF_USE_EXPECTED_DESC;
	InitMaterializedSRF(fcinfo, flags);
}

/* Candidate sources. */
extern const RecCandidateSource rec_source_popular;
extern const RecCandidateSource rec_source_model;	/* source "als" */

#endif							/* REC_SERVE_PIPELINE_H */
