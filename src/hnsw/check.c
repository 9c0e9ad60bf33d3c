/*
 * check.c
 *	  rec.hnsw_check(index): structural verification of a rec_hnsw index,
 *	  in the manner of amcheck. Any problem raises ERRCODE_INDEX_CORRUPTED
 *	  with a detail that names the page, slot or heap row.
 *
 * Checked: the meta page; every page's slot layout and free-slot count;
 * every element's heap TID, level, UPPER slot and neighbour ids (which must
 * name elements, never free or UPPER slots); the entry point; and that
 * every live heap row (as the index would see it) is held by an element
 * reachable from the entry point over layer 0.
 *
 * The heap is locked in SHARE mode, which keeps writers and VACUUM out
 * while the check runs. During recovery (on a standby) that lock cannot be
 * taken and replay goes on meanwhile: the heap part and reachability are
 * skipped, a reference that looks wrong is looked at again as it is now,
 * and slots that changed since the first pass are passed over.
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xlog.h"
#include "catalog/index.h"
#include "commands/defrem.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw/hnsw_int.h"

typedef struct CheckState
{
	Relation	index;
	RHnswInfo	info;
	int			metric;
	ItemPointerData *tids;		/* of reachable live elements, sorted */
	uint32		ntids;
	double		heaprows;
} CheckState;

#define CORRUPT(idx, ...) \
	ereport(ERROR, \
			(errcode(ERRCODE_INDEX_CORRUPTED), \
			 errmsg("index \"%s\" is corrupted", RelationGetRelationName(idx)), \
			 errdetail(__VA_ARGS__)))

/*
 * A slot's header as it is now. On a standby, replay goes on during the
 * check, so a reference that looks wrong against what pass 1 saw is looked
 * at again before it is reported.
 */
typedef struct SlotNow
{
	uint8		kind;
	uint8		level;
	uint32		upper;			/* ELEMENT: its UPPER slot */
	uint32		owner;			/* UPPER: its element */
} SlotNow;

static void
slot_now(Relation index, const RHnswInfo *info, uint32 id, SlotNow *out)
{
	BlockNumber blkno = rhnsw_id_block(info, id);
	OffsetNumber off = rhnsw_id_offset(info, id);
	Buffer		buf;
	Page		page;

	memset(out, 0, sizeof(SlotNow));
	if (id == RHNSW_INVALID || blkno >= RelationGetNumberOfBlocks(index))
		return;
	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS &&
		off <= PageGetMaxOffsetNumber(page))
	{
		char	   *p = rhnsw_page_slot(page, off);

		out->kind = *(uint8 *) p;
		if (out->kind == RHNSW_SLOT_ELEMENT)
		{
			out->level = ((RHnswSlot) p)->level;
			out->upper = ((RHnswSlot) p)->upper;
		}
		else if (out->kind == RHNSW_SLOT_UPPER)
			out->owner = ((RHnswUpper) p)->owner;
	}
	UnlockReleaseBuffer(buf);
}

/* during recovery: is id now an element of at least level lc? */
static bool
element_now(Relation index, const RHnswInfo *info, uint32 id, int lc)
{
	SlotNow		sn;

	slot_now(index, info, id, &sn);
	return sn.kind == RHNSW_SLOT_ELEMENT && sn.level >= lc;
}

/* during recovery: are element e and UPPER slot u now each other's? */
static bool
pair_now(Relation index, const RHnswInfo *info, uint32 e, uint32 u)
{
	SlotNow		se;
	SlotNow		su;

	slot_now(index, info, e, &se);
	slot_now(index, info, u, &su);
	return se.kind == RHNSW_SLOT_ELEMENT && se.upper == u &&
		su.kind == RHNSW_SLOT_UPPER && su.owner == e;
}

static int
tid_cmp(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) a, (ItemPointer) b);
}

static void
heap_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			  bool tupleIsAlive, void *state)
{
	CheckState *cs = (CheckState *) state;

	if (isnull[0])
		return;
	if (cs->metric == RHNSW_METRIC_COS)
	{
		RecVector  *v = DatumGetRecVector(values[0]);

		if (!(rec_kernel_dot(v->x, v->x, v->dim) > 0.0f))
			return;				/* zero vectors are not indexed */
	}
	cs->heaprows++;
	if (bsearch(tid, cs->tids, cs->ntids, sizeof(ItemPointerData), tid_cmp) == NULL)
		CORRUPT(index, "Heap row (%u,%u) is not held by any element reachable from the entry point.",
				ItemPointerGetBlockNumber(tid), ItemPointerGetOffsetNumber(tid));
	CHECK_FOR_INTERRUPTS();
}

PG_FUNCTION_INFO_V1(rec_hnsw_check);
Datum
rec_hnsw_check(PG_FUNCTION_ARGS)
{
	Oid			indexoid = PG_GETARG_OID(0);
	Oid			heapoid = IndexGetRelation(indexoid, true);
	bool		recovery = RecoveryInProgress();
	LOCKMODE	heaplock = recovery ? AccessShareLock : ShareLock;
	Relation	heap;
	Relation	index;
	RHnswMetaData meta;
	CheckState	cs;
	const RHnswInfo *info = &cs.info;
	BlockNumber nblocks;
	uint32		nids;
	uint8	   *kind;
	uint8	   *level;
	uint8	   *deleted;
	uint32	   *upper;
	uint8	   *reached;
	uint32	   *queue;
	uint32		qh = 0;
	uint32		qt = 0;
	uint32		nelements = 0;
	int			maxlevel = -1;
	MemoryContext ctx;
	MemoryContext old;

	if (!OidIsValid(heapoid))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not an index", get_rel_name(indexoid)),
				 errdetail("rec.hnsw_check takes a rec_hnsw index.")));
	heap = table_open(heapoid, heaplock);
	index = index_open(indexoid, AccessShareLock);
	if (index->rd_rel->relam != get_index_am_oid("rec_hnsw", false))
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("index \"%s\" is not a rec_hnsw index", RelationGetRelationName(index))));

	ctx = AllocSetContextCreate(CurrentMemoryContext, "rec_hnsw check", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(ctx);
	memset(&cs, 0, sizeof(cs));
	cs.index = index;

	rhnsw_read_meta(index, &meta);
	nblocks = RelationGetNumberOfBlocks(index);
	cs.metric = meta.metric;
	if (meta.metric < RHNSW_METRIC_L2 || meta.metric > RHNSW_METRIC_COS)
		CORRUPT(index, "Meta page names metric %u.", meta.metric);
	if (meta.dims != 0 && (meta.m < RHNSW_MIN_M || meta.m > RHNSW_MAX_M))
		CORRUPT(index, "Meta page has m = %u.", meta.m);
	if (meta.dims == 0)
	{
		if (nblocks > 1 || meta.entry != RHNSW_INVALID)
			CORRUPT(index, "Meta page has no dimensions but the index has %u pages.", nblocks);
		goto heapcheck;
	}
	rhnsw_info_compute(&cs.info, meta.dims, meta.m, meta.efc, meta.metric);
	if ((uint32) info->slot_size != meta.slot_size || (uint32) info->per_page != meta.per_page ||
		info->maxlevel != meta.maxlevel)
		CORRUPT(index, "Meta page layout (slot size %u, %u per page) does not follow from %u dimensions and m = %u.",
				meta.slot_size, meta.per_page, meta.dims, meta.m);

	nids = (uint32) (nblocks - 1) * info->per_page;
	kind = rhnsw_alloc_huge_zero(ctx, Max(nids, 1));
	level = rhnsw_alloc_huge_zero(ctx, Max(nids, 1));
	deleted = rhnsw_alloc_huge_zero(ctx, Max(nids, 1));
	upper = MemoryContextAllocHuge(ctx, sizeof(uint32) * Max(nids, 1));

	/* pass 1: pages and slots */
	for (BlockNumber blk = 1; blk < nblocks; blk++)
	{
		Buffer		buf = ReadBuffer(index, blk);
		Page		page;
		RHnswPageOpaque op;
		int			nfree = 0;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page))
		{
			/* an extension whose first record never made it: harmless */
			UnlockReleaseBuffer(buf);
			continue;
		}
		op = RHnswPageGetOpaque(page);
		if (PageGetSpecialSize(page) != MAXALIGN(sizeof(RHnswPageOpaqueData)) ||
			op->page_id != RHNSW_PAGE_ID || op->type != RHNSW_PAGE_SLOTS)
			CORRUPT(index, "Block %u is not a slot page.", blk);
		if ((int) PageGetMaxOffsetNumber(page) != info->per_page)
			CORRUPT(index, "Block %u has %d slots, expected %d.", blk,
					(int) PageGetMaxOffsetNumber(page), info->per_page);
		for (OffsetNumber off = FirstOffsetNumber; off <= info->per_page; off++)
		{
			ItemId		iid = PageGetItemId(page, off);
			uint32		id = rhnsw_make_id(info, blk, off);
			char	   *p;

			if (!ItemIdIsNormal(iid) || ItemIdGetLength(iid) != (unsigned) info->slot_size)
				CORRUPT(index, "Slot (%u,%u) has length %u, expected %d.", blk, off,
						ItemIdGetLength(iid), info->slot_size);
			if (ItemIdGetOffset(iid) < ((PageHeader) page)->pd_upper ||
				ItemIdGetOffset(iid) + info->slot_size > ((PageHeader) page)->pd_special ||
				ItemIdGetOffset(iid) != MAXALIGN(ItemIdGetOffset(iid)))
				CORRUPT(index, "Slot (%u,%u) at offset %u lies outside the page's item space.",
						blk, off, ItemIdGetOffset(iid));
			p = rhnsw_page_slot(page, off);
			kind[id] = *(uint8 *) p;
			upper[id] = RHNSW_INVALID;
			if (kind[id] == RHNSW_SLOT_FREE)
				nfree++;
			else if (kind[id] == RHNSW_SLOT_ELEMENT)
			{
				RHnswSlot	s = (RHnswSlot) p;

				if (!ItemPointerIsValid(&s->heaptid))
					CORRUPT(index, "Element %u at (%u,%u) has an invalid heap TID.", id, blk, off);
				if (s->level > info->maxlevel)
					CORRUPT(index, "Element %u at (%u,%u) has level %u, at most %d allowed.",
							id, blk, off, s->level, info->maxlevel);
				if (s->count0 > info->m0)
					CORRUPT(index, "Element %u has %u layer-0 neighbours, at most %d allowed.",
							id, s->count0, info->m0);
				level[id] = s->level;
				deleted[id] = s->deleted;
				upper[id] = s->upper;
				nelements++;
				maxlevel = Max(maxlevel, s->level);
			}
			else if (kind[id] != RHNSW_SLOT_UPPER)
				CORRUPT(index, "Slot (%u,%u) has unknown kind %u.", blk, off, kind[id]);
		}
		if (nfree != op->nfree)
			CORRUPT(index, "Block %u has %d free slots but its header says %u.", blk, nfree, op->nfree);
		UnlockReleaseBuffer(buf);
		CHECK_FOR_INTERRUPTS();
	}

	/* pass 2: references */
	for (BlockNumber blk = 1; blk < nblocks; blk++)
	{
		Buffer		buf = ReadBuffer(index, blk);
		Page		page;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page))
		{
			UnlockReleaseBuffer(buf);
			continue;
		}
		for (OffsetNumber off = FirstOffsetNumber; off <= info->per_page; off++)
		{
			uint32		id = rhnsw_make_id(info, blk, off);
			char	   *p = rhnsw_page_slot(page, off);

			/* on a standby the slot may have changed since pass 1 */
			if (*(uint8 *) p != kind[id])
			{
				if (recovery)
					continue;
				CORRUPT(index, "Slot %u changed during the check.", id);
			}
			if (kind[id] == RHNSW_SLOT_ELEMENT)
			{
				RHnswSlot	s = (RHnswSlot) p;
				uint32	   *nb = rhnsw_slot_nbrs(s);

				if (s->count0 > info->m0 || s->level > info->maxlevel)
				{
					if (recovery)
						continue;
					CORRUPT(index, "Element %u changed during the check.", id);
				}
				/*
				 * The lists of a deleted element are never used to link and
				 * scans check what they find: while VACUUM frees elements
				 * page by page (or after a crash in the middle of that) they
				 * may name slots already freed.
				 */
				for (int i = 0; i < s->count0 && !s->deleted; i++)
				{
					if ((nb[i] >= nids || kind[nb[i]] != RHNSW_SLOT_ELEMENT) &&
						!(recovery && element_now(index, info, nb[i], 0)))
						CORRUPT(index, "Element %u names neighbour %u on layer 0, which is not an element (%s).",
								id, nb[i], nb[i] >= nids ? "beyond the end" :
								kind[nb[i]] == RHNSW_SLOT_FREE ? "a free slot" : "an upper slot");
					if (nb[i] == id)
						CORRUPT(index, "Element %u names itself as a neighbour.", id);
				}
				if (s->level > 0)
				{
					if ((s->upper >= nids || kind[s->upper] != RHNSW_SLOT_UPPER) &&
						!(recovery && pair_now(index, info, id, s->upper)))
						CORRUPT(index, "Element %u of level %u has no valid upper slot (%u).",
								id, s->level, s->upper);
				}
				else if (s->upper != RHNSW_INVALID)
					CORRUPT(index, "Element %u of level 0 names upper slot %u.", id, s->upper);
			}
			else if (kind[id] == RHNSW_SLOT_UPPER)
			{
				RHnswUpper	u = (RHnswUpper) p;
				int			nlevels = u->nlevels;

				if ((u->owner >= nids || kind[u->owner] != RHNSW_SLOT_ELEMENT ||
					 upper[u->owner] != id || u->nlevels != level[u->owner]) && recovery)
				{
					SlotNow		so;

					/* compare with the element as it is now */
					slot_now(index, info, u->owner, &so);
					if (so.kind != RHNSW_SLOT_ELEMENT || so.upper != id ||
						so.level != u->nlevels || !pair_now(index, info, u->owner, id))
						continue;	/* changed under replay: skip */
				}
				else
				{
					if (u->owner >= nids || kind[u->owner] != RHNSW_SLOT_ELEMENT ||
						upper[u->owner] != id)
						CORRUPT(index, "Upper slot %u belongs to %u, which does not point back to it.",
								id, u->owner);
					if (u->nlevels != level[u->owner])
						CORRUPT(index, "Upper slot %u holds %u levels, its element has level %u.",
								id, u->nlevels, level[u->owner]);
				}
				if (nlevels > info->maxlevel)
				{
					if (recovery)
						continue;
					CORRUPT(index, "Upper slot %u holds %d levels, at most %d allowed.",
							id, nlevels, info->maxlevel);
				}
				/* as for the layer-0 list of a deleted element, above */
				if (u->owner < nids && deleted[u->owner])
					continue;
				for (int lc = 1; lc <= nlevels; lc++)
				{
					int			cnt = rhnsw_upper_counts(u)[lc - 1];
					uint32	   *l = rhnsw_upper_ids(info, u, lc);

					if (cnt > info->m)
						CORRUPT(index, "Element %u has %d neighbours on layer %d, at most %d allowed.",
								u->owner, cnt, lc, info->m);
					for (int i = 0; i < cnt; i++)
						if ((l[i] >= nids || kind[l[i]] != RHNSW_SLOT_ELEMENT || level[l[i]] < lc) &&
							!(recovery && element_now(index, info, l[i], lc)))
							CORRUPT(index, "Element %u names neighbour %u on layer %d, which is not an element of that layer.",
									u->owner, l[i], lc);
				}
			}
		}
		UnlockReleaseBuffer(buf);
		CHECK_FOR_INTERRUPTS();
	}

	/* entry point */
	if (nelements == 0 && !recovery)
	{
		if (meta.entry != RHNSW_INVALID)
			CORRUPT(index, "The index has no elements but an entry point (%u).", meta.entry);
		goto heapcheck;
	}
	if (recovery)
	{
		SlotNow		se;

		/*
		 * The entry point as it is now (replay may move it between the two
		 * reads: look a few times). Reachability needs a still index.
		 */
		for (int attempt = 0;; attempt++)
		{
			rhnsw_read_meta(index, &meta);
			slot_now(index, info, meta.entry, &se);
			if (meta.entry == RHNSW_INVALID ||
				(se.kind == RHNSW_SLOT_ELEMENT && (int) se.level == meta.entry_level))
				break;
			if (attempt == 2)
				CORRUPT(index, "Entry point %u is not an element of level %d.",
						meta.entry, meta.entry_level);
		}
		goto heapcheck;
	}
	if (meta.entry >= nids || kind[meta.entry] != RHNSW_SLOT_ELEMENT)
		CORRUPT(index, "Entry point %u is not an element.", meta.entry);
	if ((int) level[meta.entry] != meta.entry_level)
		CORRUPT(index, "Entry point %u has level %u, the meta page says %d.",
				meta.entry, level[meta.entry], meta.entry_level);

	/* reachability over layer 0 */
	reached = rhnsw_alloc_huge_zero(ctx, nids);
	queue = MemoryContextAllocHuge(ctx, sizeof(uint32) * (Size) nids);
	reached[meta.entry] = 1;
	queue[qt++] = meta.entry;
	cs.tids = MemoryContextAllocHuge(ctx, sizeof(ItemPointerData) * (Size) nelements);
	while (qh < qt)
	{
		uint32		e = queue[qh++];
		Buffer		buf = ReadBuffer(index, rhnsw_id_block(info, e));
		RHnswSlot	s;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		s = (RHnswSlot) rhnsw_page_slot(BufferGetPage(buf), rhnsw_id_offset(info, e));
		if (s->kind != RHNSW_SLOT_ELEMENT || s->count0 > info->m0 || cs.ntids >= nelements)
			CORRUPT(index, "Element %u changed during the check.", e);
		if (!s->deleted)
			cs.tids[cs.ntids++] = s->heaptid;
		for (int i = 0; i < s->count0; i++)
		{
			uint32		x = rhnsw_slot_nbrs(s)[i];

			if (x >= nids)
				CORRUPT(index, "Element %u names neighbour %u beyond the end.", e, x);
			if (!reached[x])
			{
				reached[x] = 1;
				queue[qt++] = x;
			}
		}
		UnlockReleaseBuffer(buf);
		if ((qh & 1023) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	qsort(cs.tids, cs.ntids, sizeof(ItemPointerData), tid_cmp);

heapcheck:
	if (!recovery)
	{
		IndexInfo  *indexInfo = BuildIndexInfo(index);

		indexInfo->ii_Concurrent = true;
		table_index_build_scan(heap, index, indexInfo, true, false, heap_callback,
							   (void *) &cs, NULL);
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(ctx);
	index_close(index, AccessShareLock);
	table_close(heap, heaplock);
	PG_RETURN_VOID();
}
