/*
 * page.c
 *	  rec_hnsw: meta page, slot-page layout, the metric of an index and the
 *	  preparation of vectors (dimension checks, normalisation for cosine).
 */
#include "postgres.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "access/reloptions.h"
#include "common/pg_prng.h"
#include "storage/bufmgr.h"
#include "utils/rel.h"

#include "hnsw/hnsw_int.h"

/* the opclasses' support function 1; their address names the metric */
extern Datum rec_vector_l2_squared_distance(PG_FUNCTION_ARGS);
extern Datum rec_vector_negative_inner_product(PG_FUNCTION_ARGS);
extern Datum rec_vector_cosine_distance(PG_FUNCTION_ARGS);

int
rhnsw_index_metric(Relation index)
{
	FmgrInfo   *proc = index_getprocinfo(index, 1, 1);

	if (proc->fn_addr == rec_vector_l2_squared_distance)
		return RHNSW_METRIC_L2;
	if (proc->fn_addr == rec_vector_negative_inner_product)
		return RHNSW_METRIC_IP;
	if (proc->fn_addr == rec_vector_cosine_distance)
		return RHNSW_METRIC_COS;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("operator class of index \"%s\" has an unsupported distance function",
					RelationGetRelationName(index)),
			 errhint("Use rec.vector_l2_ops, rec.vector_ip_ops or rec.vector_cosine_ops.")));
	return 0;					/* keep compiler quiet */
}

void
rhnsw_info_compute(RHnswInfo *info, int dims, int m, int efc, int metric)
{
	int			slot;
	int			levels;
	int			avail;

	info->dims = dims;
	info->m = m;
	info->m0 = 2 * m;
	info->efc = efc;
	info->metric = metric;
	info->angular = false;
	info->vec_off = RHNSW_SLOT_HDR + sizeof(uint32) * info->m0;
	slot = MAXALIGN(info->vec_off + sizeof(float) * dims);

	/* an UPPER slot must hold at least RHNSW_MIN_LEVELS levels */
	for (;;)
	{
		levels = (slot - (int) sizeof(RHnswUpperData)) / (4 * m + 1);
		while (levels > 0 &&
			   (int) (sizeof(RHnswUpperData) + TYPEALIGN(4, levels)) + levels * 4 * m > slot)
			levels--;
		if (levels >= RHNSW_MIN_LEVELS)
			break;
		slot += MAXIMUM_ALIGNOF;
	}
	info->maxlevel = Min(levels, RHNSW_MAX_LEVELS);
	info->ids_off = sizeof(RHnswUpperData) + TYPEALIGN(4, info->maxlevel);
	info->slot_size = slot;

	avail = BLCKSZ - MAXALIGN(SizeOfPageHeaderData) - MAXALIGN(sizeof(RHnswPageOpaqueData));
	info->per_page = avail / (slot + (int) sizeof(ItemIdData));
	if (info->per_page < 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vectors of %d dimensions are too large for a rec_hnsw index with m = %d",
						dims, m),
				 errhint("Use at most %d dimensions with this m, or a smaller m.",
						 (int) ((avail - sizeof(ItemIdData) - MAXALIGN(info->vec_off)) / sizeof(float)))));
	if (info->per_page > 255)
		info->per_page = 255;
}

void
rhnsw_options(Relation index, int *m, int *efc)
{
	RHnswOptions *opts = (RHnswOptions *) index->rd_options;

	*m = opts ? opts->m : RHNSW_DEFAULT_M;
	*efc = opts ? opts->efc : RHNSW_DEFAULT_EFC;
}

/* the angular_links reloption (only inner-product indexes use it) */
bool
rhnsw_option_angular(Relation index)
{
	RHnswOptions *opts = (RHnswOptions *) index->rd_options;

	return opts ? opts->angular_links : true;
}

void
rhnsw_read_meta(Relation index, RHnswMetaData *meta)
{
	Buffer		buf;
	Page		page;
	RHnswMetaData *mp;

	buf = ReadBuffer(index, RHNSW_META_BLKNO);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	mp = RHnswPageGetMeta(page);
	if (RHnswPageGetOpaque(page)->page_id != RHNSW_PAGE_ID || mp->magic != RHNSW_MAGIC)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is not a rec_hnsw index", RelationGetRelationName(index))));
	if (mp->version != RHNSW_VERSION)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has version %u, expected %d",
						RelationGetRelationName(index), mp->version, RHNSW_VERSION),
				 errhint("REINDEX the index.")));
	*meta = *mp;
	UnlockReleaseBuffer(buf);
}

/*
 * Read the meta page and derive the layout. Returns false while the index
 * does not know its dimensions yet (built empty, nothing inserted).
 */
bool
rhnsw_get_info(Relation index, RHnswInfo *info, RHnswMetaData *meta)
{
	rhnsw_read_meta(index, meta);
	if (meta->dims == 0)
		return false;
	if (meta->m < RHNSW_MIN_M || meta->m > RHNSW_MAX_M ||
		meta->metric < RHNSW_METRIC_L2 || meta->metric > RHNSW_METRIC_COS)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has an inconsistent meta page", RelationGetRelationName(index)),
				 errdetail("m = %u, metric %u.", meta->m, meta->metric)));
	rhnsw_info_compute(info, meta->dims, meta->m, meta->efc, meta->metric);
	if ((uint32) info->slot_size != meta->slot_size || (uint32) info->per_page != meta->per_page ||
		meta->entry_level < -1 || meta->entry_level > info->maxlevel ||
		(meta->entry == RHNSW_INVALID) != (meta->entry_level == -1))
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" has an inconsistent meta page", RelationGetRelationName(index)),
				 errdetail("Slot size %u, %u slots per page, entry point %u at level %d.",
						   meta->slot_size, meta->per_page, meta->entry, meta->entry_level)));
	info->angular = (meta->metric == RHNSW_METRIC_IP && (meta->flags & RHNSW_META_ANGULAR) != 0);
	return true;
}

void
rhnsw_init_page(Page page, uint16 type)
{
	RHnswPageOpaque op;

	PageInit(page, BLCKSZ, sizeof(RHnswPageOpaqueData));
	op = RHnswPageGetOpaque(page);
	op->type = type;
	op->nfree = 0;
	op->unused = 0;
	op->page_id = RHNSW_PAGE_ID;
}

/* A fresh slot page: K free slots. */
void
rhnsw_fill_slot_page(Page page, const RHnswInfo *info)
{
	char	   *zero = palloc0(info->slot_size);

	rhnsw_init_page(page, RHNSW_PAGE_SLOTS);
	for (int i = 0; i < info->per_page; i++)
	{
		if (PageAddItem(page, (Item) zero, info->slot_size, InvalidOffsetNumber,
						false, false) == InvalidOffsetNumber)
			elog(ERROR, "could not add slot to rec_hnsw page");
	}
	RHnswPageGetOpaque(page)->nfree = info->per_page;
	pfree(zero);
}

void
rhnsw_init_meta(Page page, int dims, int m, int efc, int metric, const RHnswInfo *info)
{
	RHnswMetaData *mp;

	rhnsw_init_page(page, RHNSW_PAGE_META);
	mp = RHnswPageGetMeta(page);
	memset(mp, 0, sizeof(RHnswMetaData));
	mp->magic = RHNSW_MAGIC;
	mp->version = RHNSW_VERSION;
	mp->dims = dims;
	mp->m = m;
	mp->efc = efc;
	mp->metric = metric;
	mp->maxlevel = info ? info->maxlevel : 0;
	mp->slot_size = info ? info->slot_size : 0;
	mp->per_page = info ? info->per_page : 0;
	mp->entry = RHNSW_INVALID;
	mp->entry_level = -1;
	mp->ef_search = 0;
	mp->flags = (metric == RHNSW_METRIC_IP) ? RHNSW_META_ANGULAR : 0;
	((PageHeader) page)->pd_lower = ((char *) mp + sizeof(RHnswMetaData)) - (char *) page;
}

/*
 * An element's level, drawn from the level distribution with its heap TID
 * as the seed: a build and inserts give a row the same level, and the same
 * rows inserted in the same order make the same graph.
 */
int
rhnsw_tid_level(const RHnswInfo *info, ItemPointer tid)
{
	pg_prng_state prng;

	pg_prng_seed(&prng, ((uint64) ItemPointerGetBlockNumber(tid) << 16) ^
				 ItemPointerGetOffsetNumber(tid) ^ UINT64CONST(0x9E3779B97F4A7C15));
	return rhnsw_random_level(info, pg_prng_double(&prng));
}

int
rhnsw_random_level(const RHnswInfo *info, double r)
{
	double		ml = 1.0 / log((double) info->m);
	int			level;

	if (r <= 0.0)
		r = 1e-300;
	level = (int) floor(-log(r) * ml);
	return Min(level, info->maxlevel);
}

int
rhnsw_value_dims(Datum value)
{
	RecVector  *v = DatumGetRecVector(value);

	return v->dim;
}

void
rhnsw_check_dims(Relation index, int expected, int got)
{
	if (expected != got)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector has %d dimensions, index \"%s\" expects %d",
						got, RelationGetRelationName(index), expected)));
}

/*
 * Copy a vector value into out[dims] in the form the index stores: as is,
 * or normalised under cosine. Returns false for a vector the index cannot
 * hold (a zero vector under cosine has no direction).
 */
bool
rhnsw_prepare_vector(Relation index, const RHnswInfo *info, int metric, Datum value,
					 float *out, float *norm2)
{
	RecVector  *v = DatumGetRecVector(value);
	float		n2;

	rhnsw_check_dims(index, info->dims, v->dim);
	memcpy(out, v->x, sizeof(float) * info->dims);
	n2 = rec_kernel_dot(out, out, info->dims);
	if (metric == RHNSW_METRIC_COS)
	{
		float		inv;

		if (!(n2 > 0.0f) || isinf(n2))
			return false;
		inv = 1.0f / sqrtf(n2);
		for (int i = 0; i < info->dims; i++)
			out[i] *= inv;
		n2 = 1.0f;
	}
	if (isinf(n2) || isnan(n2))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("vector norm is out of range for a rec_hnsw index")));
	*norm2 = n2;
	if ((Pointer) v != DatumGetPointer(value))
		pfree(v);
	return true;
}
