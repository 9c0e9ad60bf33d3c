/*
 * scan.c
 *	  rec_hnsw: index scans (ORDER BY vector <op> query).
 *
 * A scan descends the upper layers greedily, then runs a resumable layer-0
 * search (search.c) and hands out results closest first. Each row the
 * executor asks for moves the search window on by one, so a scan whose
 * rows are filtered out keeps searching, in distance order, until the
 * graph search has spent its budget (graph_budget()). Then, with
 * rec.hnsw_exact_fallback, the scan switches to the exact pass (exact.c):
 * every element it has not returned yet, in exact distance order, so that
 * a filtered scan returns every matching row the executor asks for.
 *
 * Scans take no lock beyond buffer share locks: a slot that VACUUM frees
 * and an insert reuses while a scan holds its id is read afresh (distance
 * and heap TID together), and a heap TID that VACUUM removed is harmless
 * under the MVCC snapshot that scans require.
 */
#include "postgres.h"

#include <math.h>

#include "access/relscan.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "hnsw/hnsw_int.h"

typedef struct RHnswScanOpaque
{
	MemoryContext ctx;
	bool		first;
	bool		done;
	bool		seqmode;		/* NULL query: every row, storage order */
	BlockNumber seqblk;
	OffsetNumber seqoff;
	RHnswInfo	info;
	RHnswMetaData meta;
	RHnswSearch s;
	float	   *q;

	/* the exact phase */
	bool		fallback;		/* finish with the exact pass */
	bool		exact;			/* switched */
	uint32	   *ret;			/* ids the graph search returned */
	uint32		nret;
	uint32		capret;
	RHnswExact	x;
} RHnswScanOpaque;

IndexScanDesc
rhnsw_beginscan(Relation index, int nkeys, int norderbys)
{
	IndexScanDesc scan = RelationGetIndexScan(index, nkeys, norderbys);
	RHnswScanOpaque *so = palloc0(sizeof(RHnswScanOpaque));

	so->ctx = AllocSetContextCreate(CurrentMemoryContext, "rec_hnsw scan",
									ALLOCSET_DEFAULT_SIZES);
	so->first = true;
	scan->opaque = so;
	return scan;
}

void
rhnsw_rescan(IndexScanDesc scan, ScanKey keys, int nkeys, ScanKey orderbys, int norderbys)
{
	RHnswScanOpaque *so = (RHnswScanOpaque *) scan->opaque;

	so->first = true;
	so->done = false;
	so->seqmode = false;
	so->exact = false;
	so->ret = NULL;
	so->nret = so->capret = 0;
	MemoryContextReset(so->ctx);
	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
}

/*
 * The most elements the graph search may examine before the scan switches
 * to the exact pass (or, without the fallback, ends).
 *
 * Without the fallback: rec.hnsw_max_scan_tuples. With it, also no more
 * than the point where the graph search has cost as much as one exact pass
 * over the whole index would. Per element, the exact pass (a sequential
 * read) costs about 1/RHNSW_EXACT_COST_RATIO of what the graph search pays
 * for each element it examines (random reads, the visited set, the heaps):
 * on 64 dimensions we measured 25-27 ns per slot against 340-530 ns per
 * element at 100k rows, 50-63 ns against 530-640 ns at 1M. Switching there
 * bounds a scan's work by about twice that of the cheaper of the two ways
 * (the ski-rental argument): a query that the graph search serves well
 * never pays for a pass, and one that would need most of the graph pays
 * at most one graph budget more than the pass it ends with. The budget is
 * a count, not a clock, so that a query's rows do not depend on timing.
 */
#define RHNSW_EXACT_COST_RATIO 12

static int64
graph_budget(RHnswScanOpaque *so, Relation index)
{
	int64		budget = rec_hnsw_max_scan_tuples;

	if (so->fallback)
	{
		/* the descent has read the relation's size already */
		BlockNumber nblocks = so->s.nblocks > 0 ? so->s.nblocks :
			RelationGetNumberOfBlocks(index);
		int64		slots = (int64) (Max(nblocks, 1) - 1) * so->info.per_page;
		int64		even = slots / RHNSW_EXACT_COST_RATIO;

		budget = Min(budget, Max(even, (int64) rhnsw_effective_ef(&so->meta)));
	}
	return budget;
}

static bool
start_scan(IndexScanDesc scan)
{
	RHnswScanOpaque *so = (RHnswScanOpaque *) scan->opaque;
	Relation	index = scan->indexRelation;
	RecVector  *qv;
	float		n2;
	uint32		ep;

	if (scan->orderByData == NULL || scan->numberOfOrderBys < 1)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("a rec_hnsw index can only be scanned with ORDER BY a distance")));
	if (!IsMVCCSnapshot(scan->xs_snapshot))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("rec_hnsw index scans need an MVCC snapshot")));

	if (!rhnsw_get_info(index, &so->info, &so->meta) || so->meta.entry == RHNSW_INVALID)
		return false;

	if (scan->orderByData[0].sk_flags & SK_ISNULL)
	{
		so->seqmode = true;
		so->seqblk = 1;
		so->seqoff = FirstOffsetNumber;
		return true;
	}

	qv = DatumGetRecVector(scan->orderByData[0].sk_argument);
	if (qv->dim != so->info.dims)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("query vector has %d dimensions, index \"%s\" has %d",
						qv->dim, RelationGetRelationName(index), so->info.dims)));
	so->q = palloc(sizeof(float) * so->info.dims);
	memcpy(so->q, qv->x, sizeof(float) * so->info.dims);
	n2 = rec_kernel_dot(so->q, so->q, so->info.dims);
	if (so->meta.metric == RHNSW_METRIC_COS)
	{
		if (!(n2 > 0.0f))
		{
			/* every cosine distance to a zero vector is NaN: any order */
			so->seqmode = true;
			so->seqblk = 1;
			so->seqoff = FirstOffsetNumber;
			return true;
		}
		n2 = 1.0f / sqrtf(n2);
		for (int i = 0; i < so->info.dims; i++)
			so->q[i] *= n2;
	}

	rhnsw_search_init(&so->s, index, &so->info, so->meta.metric);
	so->s.q = so->q;
	rhnsw_search_descend(&so->s, so->meta.entry, so->meta.entry_level, 0, &ep);
	so->s.keep_discarded = true;
	so->fallback = rec_hnsw_exact_fallback;
	so->s.max_found = graph_budget(so, index);
	rhnsw_search_reset(&so->s, rhnsw_effective_ef(&so->meta));
	rhnsw_search_add_entry(&so->s, ep, 0);
	if (so->s.nfound == 0)
		rhnsw_search_add_entry(&so->s, so->meta.entry, 0);
	return true;
}

static bool
seq_next(IndexScanDesc scan)
{
	RHnswScanOpaque *so = (RHnswScanOpaque *) scan->opaque;
	Relation	index = scan->indexRelation;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	while (so->seqblk < nblocks)
	{
		Buffer		buf = ReadBuffer(index, so->seqblk);
		Page		page;
		bool		found = false;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS)
		{
			OffsetNumber maxoff = PageGetMaxOffsetNumber(page);

			while (so->seqoff <= maxoff && !found)
			{
				RHnswSlot	s = (RHnswSlot) rhnsw_page_slot(page, so->seqoff);

				if (s->kind == RHNSW_SLOT_ELEMENT && !s->deleted)
				{
					scan->xs_heaptid = s->heaptid;
					found = true;
				}
				so->seqoff++;
			}
		}
		UnlockReleaseBuffer(buf);
		if (found)
			return true;
		so->seqblk++;
		so->seqoff = FirstOffsetNumber;
		CHECK_FOR_INTERRUPTS();
	}
	return false;
}

/*
 * The graph search has spent its budget (or run dry): hand out every
 * element it has not returned, in exact order.
 */
static void
switch_to_exact(IndexScanDesc scan)
{
	RHnswScanOpaque *so = (RHnswScanOpaque *) scan->opaque;

	so->exact = true;
	rhnsw_search_free(&so->s);
	rhnsw_exact_init(&so->x, scan->indexRelation, &so->info, so->meta.metric, so->q,
					 (Size) work_mem * 1024, so->ret, so->nret);
}

bool
rhnsw_gettuple(IndexScanDesc scan, ScanDirection dir)
{
	RHnswScanOpaque *so = (RHnswScanOpaque *) scan->opaque;
	MemoryContext old = MemoryContextSwitchTo(so->ctx);
	bool		ok = false;

	if (so->first)
	{
		pgstat_count_index_scan(scan->indexRelation);
		so->first = false;
		so->done = !start_scan(scan);
	}
	scan->xs_recheck = false;
	scan->xs_recheckorderby = false;
	if (!so->done)
	{
		if (so->seqmode)
			ok = seq_next(scan);
		else if (!so->exact)
		{
			RHnswFound *f = NULL;

			if (so->fallback)
			{
				/* expand first: an exhausted budget means switching now */
				if (!so->s.exhausted)
					rhnsw_search_run(&so->s, 0);
				if (!so->s.exhausted)
					f = rhnsw_search_pop(&so->s);
			}
			else
				f = rhnsw_search_pop(&so->s);

			if (f != NULL)
			{
				scan->xs_heaptid = f->tid;
				ok = true;
				if (so->fallback)
				{
					if (so->nret >= so->capret)
					{
						so->capret = Max(so->capret * 2, 256);
						so->ret = so->ret ? repalloc_huge(so->ret, sizeof(uint32) * so->capret) :
							palloc(sizeof(uint32) * so->capret);
					}
					so->ret[so->nret++] = f->id;
				}
			}
			else if (so->fallback)
				switch_to_exact(scan);
		}
		if (so->exact && !ok)
			ok = rhnsw_exact_next(&so->x, &scan->xs_heaptid);
		if (!ok)
			so->done = true;
	}
	MemoryContextSwitchTo(old);
	return ok;
}

void
rhnsw_endscan(IndexScanDesc scan)
{
	RHnswScanOpaque *so = (RHnswScanOpaque *) scan->opaque;

	MemoryContextDelete(so->ctx);
	pfree(so);
	scan->opaque = NULL;
}
