/*
 * scan.c
 *	  rec_hnsw: index scans (ORDER BY vector <op> query).
 *
 * A scan descends the upper layers greedily, then runs a resumable layer-0
 * search (search.c) and hands out results closest first. Each row the
 * executor asks for moves the search window on by one, so a scan whose
 * rows are filtered out keeps searching, in distance order, until it has
 * examined rec.hnsw_max_scan_tuples elements.
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
	MemoryContextReset(so->ctx);
	if (keys && scan->numberOfKeys > 0)
		memmove(scan->keyData, keys, scan->numberOfKeys * sizeof(ScanKeyData));
	if (orderbys && scan->numberOfOrderBys > 0)
		memmove(scan->orderByData, orderbys, scan->numberOfOrderBys * sizeof(ScanKeyData));
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
	so->s.max_found = rec_hnsw_max_scan_tuples;
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
		else
		{
			RHnswFound *f = rhnsw_search_pop(&so->s);

			if (f != NULL)
			{
				scan->xs_heaptid = f->tid;
				ok = true;
			}
		}
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
