/*
 * hnsw.h
 *	  The face of src/hnsw: rec's HNSW index access method (rec_hnsw).
 *
 * Everything else of the access method is private to this folder (see
 * hnsw_int.h). The rest of rec needs only the init call, made from
 * _PG_init, which defines the reloptions and the rec.hnsw_* settings.
 */
#ifndef REC_HNSW_H
#define REC_HNSW_H

extern void rec_hnsw_init(void);

#endif							/* REC_HNSW_H */
