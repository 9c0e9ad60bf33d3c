/*
 * hnsw_int.h
 *	  Private definitions of rec's HNSW access method: page and slot layout,
 *	  the metric, the in-memory builder, the on-disk search engine.
 *
 * Storage layout
 * --------------
 * Block 0 is the meta page. Every other block is a slot page: an ordinary
 * PostgreSQL page whose items are K fixed-size slots (K and the slot size
 * follow from the dimensions and m, and are kept in the meta page). A slot
 * is addressed by a 32-bit slot id:
 *
 *		id = (blkno - 1) * K + (offnum - 1)
 *
 * so a neighbour reference costs 4 bytes and needs no lookup. A slot is
 * FREE, an ELEMENT (one indexed row: heap TID, level, layer-0 neighbour ids
 * and the vector, all in one place so one page access yields both the
 * distance and the neighbours) or UPPER (the neighbour lists of layers
 * 1..level of one element whose level is at least 1).
 *
 * All page changes are WAL-logged with generic WAL.
 */
#ifndef REC_HNSW_INT_H
#define REC_HNSW_INT_H

#include "postgres.h"

#include <math.h>

#include "access/amapi.h"
#include "access/genam.h"
#include "access/itup.h"
#include "nodes/execnodes.h"
#include "utils/memutils.h"
#include "port/atomics.h"
#include "storage/bufpage.h"
#include "storage/itemptr.h"
#include "storage/spin.h"
#include "utils/relcache.h"

#include "vector/vector.h"

#define RHNSW_MAGIC			0x52484E57	/* "RHNW" */
#define RHNSW_VERSION		1
#define RHNSW_PAGE_ID		0xFF7A
#define RHNSW_META_BLKNO	0
#define RHNSW_INVALID		((uint32) 0xFFFFFFFF)

/* heavyweight page-lock number: inserts hold it shared, vacuum waits */
#define RHNSW_UPDATE_LOCK	0

/* page types */
#define RHNSW_PAGE_META		1
#define RHNSW_PAGE_SLOTS	2

/* slot kinds */
#define RHNSW_SLOT_FREE		0
#define RHNSW_SLOT_ELEMENT	1
#define RHNSW_SLOT_UPPER	2

/* metrics */
#define RHNSW_METRIC_L2		1
#define RHNSW_METRIC_IP		2
#define RHNSW_METRIC_COS	3
/*
 * Not an index metric: the angle between raw vectors (the query normalised,
 * the stored vector divided by the norm its slot records). Searches of an
 * inner-product index use it to find angular neighbours for its links.
 */
#define RHNSW_METRIC_ANGLE	4

/* reloption limits */
#define RHNSW_DEFAULT_M		16
#define RHNSW_MIN_M			2
#define RHNSW_MAX_M			100
#define RHNSW_DEFAULT_EFC	64
#define RHNSW_MIN_EFC		4
#define RHNSW_MAX_EFC		1000
#define RHNSW_DEFAULT_EF_SEARCH 40	/* when not calibrated */

#define RHNSW_MIN_LEVELS	4	/* an UPPER slot holds at least this many */
#define RHNSW_MAX_LEVELS	16

/* build sub-phases for pg_stat_progress_create_index */
#define RHNSW_PHASE_LOAD	2
#define RHNSW_PHASE_GRAPH	3
#define RHNSW_PHASE_WRITE	4
#define RHNSW_PHASE_OVERFLOW 5
#define RHNSW_PHASE_CALIBRATE 6

typedef struct RHnswPageOpaqueData
{
	uint16		type;
	uint16		nfree;			/* free slots on a slot page */
	uint16		unused;
	uint16		page_id;
} RHnswPageOpaqueData;

typedef RHnswPageOpaqueData *RHnswPageOpaque;

#define RHnswPageGetOpaque(page) ((RHnswPageOpaque) PageGetSpecialPointer(page))

typedef struct RHnswMetaData
{
	uint32		magic;
	uint32		version;
	uint32		dims;			/* 0 until the first vector is seen */
	uint16		m;
	uint16		efc;
	uint16		metric;
	uint16		maxlevel;		/* levels an UPPER slot holds */
	uint32		slot_size;
	uint32		per_page;		/* K */
	uint32		entry;			/* slot id of the entry point */
	int32		entry_level;	/* -1: empty graph */
	uint32		ef_search;		/* calibrated search width (0: none) */
	uint32		flags;			/* RHNSW_META_* */
} RHnswMetaData;

/*
 * An inner-product index over vectors whose norms differ: besides the
 * links the heuristic picks by inner product, each element's layer-0 list
 * gets up to RHNSW_ANGULAR_LINKS(m) links to its neighbours by angle. By
 * inner product alone, every element links to the few vectors of the
 * largest norms, so an element of middling norm gets almost no in-links:
 * the search finds the top few results well but hardly reaches the ones
 * below them, which is what a filtered scan needs. Angular links keep
 * every direction connected. An inner-product index starts with the flag;
 * a build clears it when all norms are equal (unit vectors: the angle
 * orders neighbours as the inner product does, so there is nothing to add)
 * or when the reloption angular_links is off.
 */
#define RHNSW_META_ANGULAR		0x0001
#define RHNSW_ANGULAR_LINKS(m)	((m) / 2)

#define RHnswPageGetMeta(page) ((RHnswMetaData *) PageGetContents(page))

/* ELEMENT slot header; followed by uint32 nbr[2m] then float4 vec[dims] */
typedef struct RHnswSlotData
{
	uint8		kind;
	uint8		level;
	uint8		deleted;
	uint8		count0;			/* used entries of nbr[] */
	ItemPointerData heaptid;
	uint16		unused;
	uint32		upper;			/* slot id of the UPPER slot, or INVALID */
	float4		norm2;			/* squared norm of the stored vector */
} RHnswSlotData;

typedef RHnswSlotData *RHnswSlot;

#define RHNSW_SLOT_HDR		sizeof(RHnswSlotData)	/* 20 */

/* UPPER slot header; followed by uint8 counts[maxlevel] then uint32 ids */
typedef struct RHnswUpperData
{
	uint8		kind;
	uint8		nlevels;
	uint16		unused;
	uint32		owner;			/* slot id of the element */
} RHnswUpperData;

typedef RHnswUpperData *RHnswUpper;

/* Static facts about one index, derived from the meta page. */
typedef struct RHnswInfo
{
	int			dims;
	int			m;
	int			m0;				/* 2m: layer-0 capacity */
	int			efc;
	int			metric;
	int			maxlevel;
	int			slot_size;
	int			per_page;
	int			vec_off;		/* offset of vec[] in an ELEMENT slot */
	int			ids_off;		/* offset of ids[] in an UPPER slot */
	bool		angular;		/* RHNSW_META_ANGULAR */
} RHnswInfo;

static inline uint32 *
rhnsw_slot_nbrs(RHnswSlot s)
{
	return (uint32 *) ((char *) s + RHNSW_SLOT_HDR);
}

static inline float *
rhnsw_slot_vec(const RHnswInfo *info, RHnswSlot s)
{
	return (float *) ((char *) s + info->vec_off);
}

static inline uint8 *
rhnsw_upper_counts(RHnswUpper u)
{
	return (uint8 *) ((char *) u + sizeof(RHnswUpperData));
}

/* neighbour ids of layer lc (>= 1) in an UPPER slot */
static inline uint32 *
rhnsw_upper_ids(const RHnswInfo *info, RHnswUpper u, int lc)
{
	return (uint32 *) ((char *) u + info->ids_off) + (lc - 1) * info->m;
}

static inline BlockNumber
rhnsw_id_block(const RHnswInfo *info, uint32 id)
{
	return (BlockNumber) (id / (uint32) info->per_page) + 1;
}

static inline OffsetNumber
rhnsw_id_offset(const RHnswInfo *info, uint32 id)
{
	return (OffsetNumber) (id % (uint32) info->per_page) + 1;
}

static inline uint32
rhnsw_make_id(const RHnswInfo *info, BlockNumber blkno, OffsetNumber off)
{
	return (uint32) (blkno - 1) * (uint32) info->per_page + (uint32) (off - 1);
}

static inline char *
rhnsw_page_slot(Page page, OffsetNumber off)
{
	return (char *) PageGetItem(page, PageGetItemId(page, off));
}

/* zeroed allocation that may exceed 1GB */
#define rhnsw_alloc_huge_zero(ctx, size) \
	MemoryContextAllocExtended((ctx), (size), MCXT_ALLOC_HUGE | MCXT_ALLOC_ZERO)

/* ---- settings (am.c) ---- */
extern int	rec_hnsw_ef_search;
extern int	rec_hnsw_max_scan_tuples;
extern bool rec_hnsw_exact_fallback;

typedef struct RHnswOptions
{
	int32		vl_len_;
	int			m;
	int			efc;
	bool		angular_links;
} RHnswOptions;

/* the search width a scan uses: the setting, else the calibrated one */
static inline int
rhnsw_effective_ef(const RHnswMetaData *meta)
{
	if (rec_hnsw_ef_search > 0)
		return rec_hnsw_ef_search;
	if (meta->ef_search > 0)
		return (int) meta->ef_search;
	return RHNSW_DEFAULT_EF_SEARCH;
}

/* ---- page.c ---- */
extern int	rhnsw_index_metric(Relation index);
extern void rhnsw_info_compute(RHnswInfo *info, int dims, int m, int efc, int metric);
extern void rhnsw_options(Relation index, int *m, int *efc);
extern bool rhnsw_option_angular(Relation index);
extern void rhnsw_read_meta(Relation index, RHnswMetaData *meta);
extern bool rhnsw_get_info(Relation index, RHnswInfo *info, RHnswMetaData *meta);
extern void rhnsw_init_page(Page page, uint16 type);
extern void rhnsw_fill_slot_page(Page page, const RHnswInfo *info);
extern void rhnsw_init_meta(Page page, int dims, int m, int efc, int metric,
							const RHnswInfo *info);
extern int	rhnsw_random_level(const RHnswInfo *info, double r);
extern int	rhnsw_tid_level(const RHnswInfo *info, ItemPointer tid);
extern int	rhnsw_value_dims(Datum value);
extern bool rhnsw_prepare_vector(Relation index, const RHnswInfo *info, int metric,
								 Datum value, float *out, float *norm2);
extern void rhnsw_check_dims(Relation index, int expected, int got);

/*
 * Distance from q to a stored vector v, smaller is closer: squared L2, the
 * negative inner product, or (vectors being normalised) the negative
 * cosine.
 */
static inline float
rhnsw_distance(int metric, const float *q, const float *v, int dims)
{
	switch (metric)
	{
		case RHNSW_METRIC_L2:
			return rec_kernel_l2sq(q, v, dims);
		case RHNSW_METRIC_IP:
			return -rec_kernel_dot(q, v, dims);
		default:
			return -rec_kernel_dot(q, v, dims);
	}
}

/* ---- search.c: the on-disk search engine ---- */
typedef struct RHnswFound
{
	float		d;
	uint32		id;
	uint32		upper;
	ItemPointerData tid;
	uint8		level;
	uint8		deleted;
	uint8		inC;			/* pushed to C already */
	uint8		nnbrs;			/* layer-0 list captured at discovery */
	uint32		vecidx;			/* index into vecs arena, when kept */
	uint32		nbroff;			/* index into nbrs arena, or INVALID */
} RHnswFound;

typedef struct RHnswHeapItem
{
	float		d;
	uint32		f;				/* index into found[] */
} RHnswHeapItem;

typedef struct RHnswSearch
{
	Relation	index;
	RHnswInfo	info;
	int			metric;
	const float *q;
	bool		keep_vecs;		/* copy vectors of found elements */
	bool		traverse_deleted;
	bool		keep_discarded; /* resumable scan: keep everything */
	int64		max_found;		/* bound on found elements (0: none) */
	bool		exhausted;		/* hit max_found */
	BlockNumber nblocks;		/* cached relation size */

	/* visited set (open addressing on slot ids) */
	uint32	   *vtab;
	uint32		vmask;
	uint32		vcount;

	/* found elements */
	RHnswFound *found;
	uint32		nfound;
	uint32		capfound;
	float	   *vecs;
	uint32		nvecs;
	uint32		capvecs;
	uint32	   *nbrs;			/* captured layer-0 lists */
	uint32		nnbrs;
	uint32		capnbrs;

	/* C: candidates to expand (min-heap) */
	RHnswHeapItem *C;
	int			nC;
	int			capC;

	/* W: best unemitted results, sorted ascending, in [whead, wtail) */
	RHnswHeapItem *W;
	int			whead;
	int			wtail;
	int			capW;
	int			ef;

	/* D: results pushed out of W (min-heap), when keep_discarded */
	RHnswHeapItem *D;
	int			nD;
	int			capD;

	/* scratch */
	uint32	   *nbrbuf;
} RHnswSearch;

extern void rhnsw_search_init(RHnswSearch *s, Relation index, const RHnswInfo *info,
							  int metric);
extern void rhnsw_search_reset(RHnswSearch *s, int ef);
extern bool rhnsw_search_add_entry(RHnswSearch *s, uint32 id, int lc);
extern void rhnsw_search_run(RHnswSearch *s, int lc);
extern int	rhnsw_search_descend(RHnswSearch *s, uint32 entry, int entry_level,
								 int target_level, uint32 *ep);
extern RHnswFound *rhnsw_search_pop(RHnswSearch *s);
extern void rhnsw_search_mark_visited(RHnswSearch *s, uint32 id);
extern int	rhnsw_search_results(RHnswSearch *s, RHnswFound **out, int max);
extern float *rhnsw_found_vec(RHnswSearch *s, RHnswFound *f);
extern void rhnsw_search_free(RHnswSearch *s);

/* neighbour selection shared by insert and vacuum (insert.c) */
typedef struct RHnswCand
{
	float		d;
	uint32		id;
	const float *vec;
	float		norm;			/* |vec|: used for angular links only */
} RHnswCand;

extern int	rhnsw_select_neighbors(int metric, int dims, RHnswCand *c, int nc, int k,
								   uint32 *out);
extern int	rhnsw_select_links(const RHnswInfo *info, int lc, float base_norm,
							   RHnswCand *c, int nc, int k, uint32 *out);
extern float rhnsw_angle_distance(const float *a, float anorm, const float *b, float bnorm,
								  int dims);
extern void rhnsw_sort_cands(RHnswCand *c, int n);
extern bool rhnsw_read_vector(Relation index, const RHnswInfo *info, uint32 id,
							  float *vec, float *norm2, bool *deleted);

/* ---- insert.c ---- */
extern bool rhnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
						 Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
						 IndexInfo *indexInfo);
extern bool rhnsw_insert_vector(Relation index, const float *vec, float norm2,
								ItemPointer tid, bool alone);
extern bool rhnsw_link_orphan(Relation index, const RHnswInfo *info, int metric,
							  uint32 id, const float *vec, uint32 entry, int entry_level,
							  uint8 *reached, uint32 nids);

/* ---- build.c ---- */
extern IndexBuildResult *rhnsw_build(Relation heap, Relation index, IndexInfo *indexInfo);
extern void rhnsw_buildempty(Relation index);

/* ---- exact.c: the exact ordered pass that finishes a scan ---- */
typedef struct RHnswExactEntry
{
	uint64		key;			/* distance code << 32 | slot id */
	ItemPointerData tid;
} RHnswExactEntry;

typedef struct RHnswExact
{
	Relation	index;
	RHnswInfo	info;
	int			metric;
	const float *q;
	uint8	   *returned;		/* bitmap: ids the graph search returned */
	uint32		nbits;
	RHnswExactEntry *a;			/* the current batch */
	int64		n;
	int64		alloc;
	int64		cap;			/* most entries a batch may hold */
	int64		next;			/* next position to hand out */
	int64	   *stack;			/* incremental quicksort: pivot positions */
	int			nstack;
	int			capstack;
	bool		started;		/* the current batch has been read */
	bool		overflow;		/* the batch did not hold everything left */
	bool		have_lower;
	uint64		lower;			/* keys up to this were handed out */
	uint64		cutoff;			/* largest key of an overflowing batch */
	uint32		rng;
	int64		passes;			/* statistics */
	int64		examined;
} RHnswExact;

extern void rhnsw_exact_init(RHnswExact *x, Relation index, const RHnswInfo *info,
							 int metric, const float *q, Size mem,
							 const uint32 *returned, uint32 nreturned);
extern bool rhnsw_exact_next(RHnswExact *x, ItemPointer tid);

/* ---- scan.c ---- */
extern IndexScanDesc rhnsw_beginscan(Relation index, int nkeys, int norderbys);
extern void rhnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys,
						 int norderbys);
extern bool rhnsw_gettuple(IndexScanDesc scan, ScanDirection dir);
extern void rhnsw_endscan(IndexScanDesc scan);

/* ---- vacuum.c ---- */
extern IndexBulkDeleteResult *rhnsw_bulkdelete(IndexVacuumInfo *info,
											   IndexBulkDeleteResult *stats,
											   IndexBulkDeleteCallback callback,
											   void *callback_state);
extern IndexBulkDeleteResult *rhnsw_vacuumcleanup(IndexVacuumInfo *info,
												  IndexBulkDeleteResult *stats);

#endif							/* REC_HNSW_INT_H */
