/*
 * serve.c
 *	  Settings of src/serve.
 */
#include "postgres.h"

#include <limits.h>

#include "utils/guc.h"

#include "serve/serve.h"
#include "serve/similar.h"

int			rec_similar_audience = 200;
int			rec_similar_history = 50;
double		rec_similar_shrinkage = 100.0;
int			rec_similar_max_candidates = 1000;

void
rec_serve_init(void)
{
	DefineCustomIntVariable("rec.similar_audience",
							"Users sampled per rec.similar_items call.",
							"The users behind the item's most recent events, "
							"up to this many events, are its audience sample.",
							&rec_similar_audience,
							200, 1, 100000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("rec.similar_history",
							"Recent events read per sampled user in rec.similar_items.",
							"Items co-occur with the queried item when they are "
							"among this many most recent events of a sampled user.",
							&rec_similar_history,
							50, 1, 100000,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
	DefineCustomRealVariable("rec.similar_shrinkage",
							 "Shrinkage of rec.similar_items scores towards zero for rare co-occurrences.",
							 "A co-occurrence count c is weighted by c / (c + this); 0 gives plain cosine.",
							 &rec_similar_shrinkage,
							 100.0, 0.0, 1e6,
							 PGC_USERSET, 0,
							 NULL, NULL, NULL);
	DefineCustomIntVariable("rec.similar_max_candidates",
							"Most co-occurring items rec.similar_items scores per call.",
							"Candidates are scored in decreasing co-occurrence count; scoring "
							"usually stops earlier, when no remaining candidate can enter the result.",
							&rec_similar_max_candidates,
							1000, 1, INT_MAX,
							PGC_USERSET, 0,
							NULL, NULL, NULL);
}
