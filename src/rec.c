/*
 * rec.c
 *	  Module entry point of rec.so.
 *
 * Owns the magic block and _PG_init, which initialises every subsystem in
 * dependency order (ground floor first). Subsystems never call each other's
 * init functions; only this file does, so the dependency graph between the
 * folders under src/ stays a tree.
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "events/events.h"
#include "hnsw/hnsw.h"
#include "model/model.h"
#include "serve/serve.h"
#include "vector/vector.h"

PG_MODULE_MAGIC;

extern PGDLLEXPORT void _PG_init(void);

void
_PG_init(void)
{
	rec_vector_init();
	rec_hnsw_init();
	rec_events_init();
	rec_model_init();
	rec_serve_init();

	MarkGUCPrefixReserved("rec");
}
