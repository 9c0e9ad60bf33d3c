/*
 * vacuum.c
 *	  rec_hnsw: VACUUM. Removes the elements of dead rows and repairs the
 *	  graph around them, so that recall holds and space is reused.
 *
 *	1. mark: every element whose heap row is dead is flagged deleted (one
 *	   record per page). Scans still pass through flagged elements; inserts
 *	   and repairs never link to them.
 *	2. wait for inserts that may have looked at an element before it was
 *	   flagged (they hold the update lock in share mode), and move the entry
 *	   point off a deleted element.
 *	3. repair: each list that names a deleted element is rebuilt from its
 *	   live entries plus the live neighbours of the deleted ones, pruned with
 *	   the HNSW heuristic (local repair: no graph search per element).
 *	4. reachability: a breadth-first walk from the entry point that avoids
 *	   deleted elements; an element it cannot reach is linked from the
 *	   closest reachable one.
 *	5. free: deleted elements and their UPPER slots become free slots (an
 *	   element and its UPPER slot in one record, so that a crash never
 *	   leaves one without the other), and the pages are recorded in the free
 *	   space map for inserts to reuse.
 *
 * Every list rewrite compares the list with what the repair was computed
 * from, under the exclusive page lock, and starts over if an insert
 * changed it in between; after a few such attempts it only drops the
 * deleted entries, so that no list names a slot that pass 5 frees.
 */
#include "postgres.h"

#include <math.h>

#include "access/generic_xlog.h"
#include "commands/vacuum.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/indexfsm.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw/hnsw_int.h"

typedef struct VacState
{
	Relation	index;
	RHnswInfo	info;
	RHnswMetaData meta;
	int			metric;
	BlockNumber nblocks;
	uint32		nids;
	uint8	   *deleted;		/* per slot id: element flagged deleted */
	uint32		ndeleted;
	uint32		best_live;		/* highest-level live element */
	int			best_level;
	uint32		nrepaired;		/* lists rewritten */
	uint32		nlinked;		/* unreachable elements linked */
} VacState;

static inline bool
is_deleted(VacState *vs, uint32 id)
{
	return id < vs->nids && vs->deleted[id];
}

/* ---------------------------------------------------------------- pass 1 */

static void
mark_deleted(VacState *vs, IndexBulkDeleteResult *stats,
			 IndexBulkDeleteCallback callback, void *callback_state)
{
	const RHnswInfo *info = &vs->info;

	for (BlockNumber blk = 1; blk < vs->nblocks; blk++)
	{
		Buffer		buf;
		Page		page;
		GenericXLogState *state = NULL;
		OffsetNumber maxoff;

		vacuum_delay_point();
		buf = ReadBufferExtended(vs->index, MAIN_FORKNUM, blk, RBM_NORMAL, NULL);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		if (PageIsNew(page) || RHnswPageGetOpaque(page)->type != RHNSW_PAGE_SLOTS)
		{
			UnlockReleaseBuffer(buf);
			continue;
		}
		maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			RHnswSlot	s = (RHnswSlot) rhnsw_page_slot(page, off);
			uint32		id = rhnsw_make_id(info, blk, off);

			if (s->kind != RHNSW_SLOT_ELEMENT)
				continue;
			if (!s->deleted && callback(&s->heaptid, callback_state))
			{
				if (state == NULL)
				{
					state = GenericXLogStart(vs->index);
					page = GenericXLogRegisterBuffer(state, buf, 0);
					s = (RHnswSlot) rhnsw_page_slot(page, off);
				}
				s->deleted = 1;
				stats->tuples_removed++;
			}
			if (s->deleted)
			{
				vs->deleted[id] = 1;
				vs->ndeleted++;
			}
			else
			{
				stats->num_index_tuples++;
				if ((int) s->level > vs->best_level)
				{
					vs->best_level = s->level;
					vs->best_live = id;
				}
			}
		}
		if (state)
			GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
	}
}

/* ---------------------------------------------------------------- pass 2 */

/*
 * The marks found no live element, but inserts may have added some since
 * the marks passed their pages (or on pages added meanwhile): look again,
 * so that the entry point does not go while live elements remain.
 */
static void
find_live_entry(VacState *vs)
{
	const RHnswInfo *info = &vs->info;

	for (BlockNumber blk = 1; blk < vs->nblocks; blk++)
	{
		Buffer		buf = ReadBuffer(vs->index, blk);
		Page		page;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS)
		{
			OffsetNumber maxoff = PageGetMaxOffsetNumber(page);

			for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
			{
				RHnswSlot	s = (RHnswSlot) rhnsw_page_slot(page, off);

				if (s->kind == RHNSW_SLOT_ELEMENT && !s->deleted &&
					(int) s->level > vs->best_level)
				{
					vs->best_level = s->level;
					vs->best_live = rhnsw_make_id(info, blk, off);
				}
			}
		}
		UnlockReleaseBuffer(buf);
		vacuum_delay_point();
	}
}

static void
move_entry(VacState *vs)
{
	Buffer		buf = ReadBuffer(vs->index, RHNSW_META_BLKNO);
	GenericXLogState *state;
	Page		page;
	RHnswMetaData *mp;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(vs->index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	mp = RHnswPageGetMeta(page);
	if (mp->entry != RHNSW_INVALID && is_deleted(vs, mp->entry))
	{
		mp->entry = vs->best_live;
		mp->entry_level = vs->best_live == RHNSW_INVALID ? -1 : vs->best_level;
		GenericXLogFinish(state);
	}
	else
		GenericXLogAbort(state);
	/* mp pointed into the WAL state's copy, which is gone: read the buffer */
	vs->meta = *RHnswPageGetMeta(BufferGetPage(buf));
	UnlockReleaseBuffer(buf);
}

/* read the layer-lc list of element id (whose UPPER slot is upper) */
static int
read_list(VacState *vs, uint32 id, int lc, uint32 *out)
{
	const RHnswInfo *info = &vs->info;
	uint32		listid = id;
	Buffer		buf;
	Page		page;
	int			n = 0;

	if (lc > 0)
	{
		RHnswSlot	s;

		if (rhnsw_id_block(info, id) >= vs->nblocks)
			return 0;
		buf = ReadBuffer(vs->index, rhnsw_id_block(info, id));
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		listid = RHNSW_INVALID;
		if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS &&
			rhnsw_id_offset(info, id) <= PageGetMaxOffsetNumber(page))
		{
			s = (RHnswSlot) rhnsw_page_slot(page, rhnsw_id_offset(info, id));
			if (s->kind == RHNSW_SLOT_ELEMENT && s->level >= lc)
				listid = s->upper;
		}
		UnlockReleaseBuffer(buf);
		if (listid == RHNSW_INVALID)
			return 0;
	}
	if (rhnsw_id_block(info, listid) >= vs->nblocks)
		return 0;
	buf = ReadBuffer(vs->index, rhnsw_id_block(info, listid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS &&
		rhnsw_id_offset(info, listid) <= PageGetMaxOffsetNumber(page))
	{
		char	   *p = rhnsw_page_slot(page, rhnsw_id_offset(info, listid));

		if (lc == 0 && ((RHnswSlot) p)->kind == RHNSW_SLOT_ELEMENT)
		{
			n = Min(((RHnswSlot) p)->count0, info->m0);
			memcpy(out, rhnsw_slot_nbrs((RHnswSlot) p), sizeof(uint32) * n);
		}
		else if (lc > 0 && ((RHnswUpper) p)->kind == RHNSW_SLOT_UPPER &&
				 ((RHnswUpper) p)->owner == id && lc <= ((RHnswUpper) p)->nlevels)
		{
			n = Min(rhnsw_upper_counts((RHnswUpper) p)[lc - 1], info->m);
			memcpy(out, rhnsw_upper_ids(info, (RHnswUpper) p, lc), sizeof(uint32) * n);
		}
	}
	UnlockReleaseBuffer(buf);
	return n;
}

typedef struct RepairJob
{
	uint32		owner;			/* element whose list it is */
	uint32		listid;			/* slot holding the list */
	int			lc;
	int			nold;
	uint32		old[2 * RHNSW_MAX_M];
	int			nnew;
	uint32		new[2 * RHNSW_MAX_M];
} RepairJob;

/* compute the repaired list of one job */
static void
repair_job(VacState *vs, RepairJob *job)
{
	const RHnswInfo *info = &vs->info;
	int			cap = job->lc == 0 ? info->m0 : info->m;
	int			maxc = job->nold * (cap + 1) + 1;
	uint32	   *ids = palloc(sizeof(uint32) * maxc);
	uint32	   *tmp = palloc(sizeof(uint32) * (cap + 1));
	int			nids = 0;
	float	   *ovec = palloc(sizeof(float) * info->dims);
	float		onorm2;
	bool		odel;
	RHnswCand  *c;
	float	   *vecs;
	int			nc = 0;

	job->nnew = 0;
	if (!rhnsw_read_vector(vs->index, info, job->owner, ovec, &onorm2, &odel) || odel)
	{
		job->nnew = -1;			/* nothing to do */
		return;
	}
	for (int i = 0; i < job->nold; i++)
	{
		uint32		e = job->old[i];

		if (!is_deleted(vs, e))
			ids[nids++] = e;
		else
		{
			int			n = read_list(vs, e, job->lc, tmp);

			for (int j = 0; j < n; j++)
				if (!is_deleted(vs, tmp[j]))
					ids[nids++] = tmp[j];
		}
	}
	/* unique, without the owner */
	for (int i = 1; i < nids; i++)
	{
		uint32		v = ids[i];
		int			j = i - 1;

		while (j >= 0 && ids[j] > v)
		{
			ids[j + 1] = ids[j];
			j--;
		}
		ids[j + 1] = v;
	}
	c = palloc(sizeof(RHnswCand) * (nids + 1));
	vecs = palloc(sizeof(float) * info->dims * (nids + 1));
	for (int i = 0; i < nids; i++)
	{
		float		norm2;
		bool		del;
		float	   *v = vecs + (Size) nc * info->dims;

		if ((i > 0 && ids[i] == ids[i - 1]) || ids[i] == job->owner)
			continue;
		if (!rhnsw_read_vector(vs->index, info, ids[i], v, &norm2, &del) || del)
			continue;
		c[nc].id = ids[i];
		c[nc].vec = v;
		c[nc].d = rhnsw_distance(vs->metric, ovec, v, info->dims);
		c[nc].norm = sqrtf(Max(norm2, 0.0f));
		nc++;
	}
	rhnsw_sort_cands(c, nc);
	job->nnew = rhnsw_select_links(info, job->lc, sqrtf(Max(onorm2, 0.0f)), c, nc, cap,
								   job->new);

	/*
	 * Deleting elements takes in-links away from their neighbours; keep
	 * the closest of the candidates the heuristic passed over, up to the
	 * list's capacity, so that fewer elements end up hard to reach.
	 */
	for (int i = 0; i < nc && job->nnew < cap; i++)
	{
		bool		taken = false;

		for (int j = 0; j < job->nnew && !taken; j++)
			taken = (job->new[j] == c[i].id);
		if (!taken)
			job->new[job->nnew++] = c[i].id;
	}
	pfree(ids);
	pfree(tmp);
	pfree(ovec);
	pfree(c);
	pfree(vecs);
}

static bool
list_has_deleted(VacState *vs, const uint32 *ids, int n)
{
	for (int i = 0; i < n; i++)
		if (is_deleted(vs, ids[i]))
			return true;
	return false;
}

#define RHNSW_REPAIR_ATTEMPTS 5

static void
repair_page(VacState *vs, BlockNumber blk)
{
	const RHnswInfo *info = &vs->info;
	RepairJob  *jobs = NULL;
	int			njobs = 0;
	int			capjobs = 0;

	for (int attempt = 0; attempt < RHNSW_REPAIR_ATTEMPTS; attempt++)
	{
		Buffer		buf = ReadBuffer(vs->index, blk);
		Page		page;
		OffsetNumber maxoff;
		GenericXLogState *state;
		bool		retry = false;
		bool		changed = false;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		njobs = 0;
		if (PageIsNew(page) || RHnswPageGetOpaque(page)->type != RHNSW_PAGE_SLOTS)
		{
			UnlockReleaseBuffer(buf);
			return;
		}
		maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			char	   *p = rhnsw_page_slot(page, off);
			uint32		id = rhnsw_make_id(info, blk, off);

			if (((RHnswSlot) p)->kind == RHNSW_SLOT_ELEMENT)
			{
				RHnswSlot	s = (RHnswSlot) p;
				int			n = Min(s->count0, info->m0);

				if (s->deleted || !list_has_deleted(vs, rhnsw_slot_nbrs(s), n))
					continue;
				if (njobs >= capjobs)
				{
					capjobs = Max(capjobs * 2, 8);
					jobs = jobs ? repalloc(jobs, sizeof(RepairJob) * capjobs) :
						palloc(sizeof(RepairJob) * capjobs);
				}
				jobs[njobs].owner = id;
				jobs[njobs].listid = id;
				jobs[njobs].lc = 0;
				jobs[njobs].nold = n;
				memcpy(jobs[njobs].old, rhnsw_slot_nbrs(s), sizeof(uint32) * n);
				njobs++;
			}
			else if (((RHnswUpper) p)->kind == RHNSW_SLOT_UPPER)
			{
				RHnswUpper	u = (RHnswUpper) p;

				if (is_deleted(vs, u->owner))
					continue;
				for (int lc = 1; lc <= u->nlevels && lc <= info->maxlevel; lc++)
				{
					int			n = Min(rhnsw_upper_counts(u)[lc - 1], info->m);
					uint32	   *l = rhnsw_upper_ids(info, u, lc);

					if (!list_has_deleted(vs, l, n))
						continue;
					if (njobs >= capjobs)
					{
						capjobs = Max(capjobs * 2, 8);
						jobs = jobs ? repalloc(jobs, sizeof(RepairJob) * capjobs) :
							palloc(sizeof(RepairJob) * capjobs);
					}
					jobs[njobs].owner = u->owner;
					jobs[njobs].listid = id;
					jobs[njobs].lc = lc;
					jobs[njobs].nold = n;
					memcpy(jobs[njobs].old, l, sizeof(uint32) * n);
					njobs++;
				}
			}
		}
		UnlockReleaseBuffer(buf);
		if (njobs == 0)
			break;

		for (int j = 0; j < njobs; j++)
		{
			repair_job(vs, &jobs[j]);
			vacuum_delay_point();
		}

		buf = ReadBuffer(vs->index, blk);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(vs->index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		for (int j = 0; j < njobs; j++)
		{
			RepairJob  *job = &jobs[j];
			char	   *p = rhnsw_page_slot(page, rhnsw_id_offset(info, job->listid));
			uint32	   *ids;
			uint8	   *cnt;

			if (job->nnew < 0)
				continue;
			if (job->lc == 0)
			{
				RHnswSlot	s = (RHnswSlot) p;

				if (s->kind != RHNSW_SLOT_ELEMENT || s->deleted)
					continue;
				ids = rhnsw_slot_nbrs(s);
				cnt = &s->count0;
			}
			else
			{
				RHnswUpper	u = (RHnswUpper) p;

				if (u->kind != RHNSW_SLOT_UPPER || u->owner != job->owner)
					continue;
				ids = rhnsw_upper_ids(info, u, job->lc);
				cnt = &rhnsw_upper_counts(u)[job->lc - 1];
			}
			if (*cnt != job->nold || memcmp(ids, job->old, sizeof(uint32) * job->nold) != 0)
			{
				/* an insert got there first */
				if (attempt < RHNSW_REPAIR_ATTEMPTS - 1)
				{
					retry = true;
					continue;
				}

				/*
				 * Out of attempts: at least drop the marked entries, which
				 * needs no other page. The list must not name a slot that
				 * is about to be freed.
				 */
				{
					int			cap = job->lc == 0 ? info->m0 : info->m;
					int			k = 0;
					int			n = Min(*cnt, cap);

					for (int i = 0; i < n; i++)
						if (!is_deleted(vs, ids[i]))
							ids[k++] = ids[i];
					if (k != *cnt)
					{
						*cnt = k;
						changed = true;
						vs->nrepaired++;
					}
				}
				continue;
			}
			memcpy(ids, job->new, sizeof(uint32) * job->nnew);
			*cnt = job->nnew;
			changed = true;
			vs->nrepaired++;
		}
		if (changed)
			GenericXLogFinish(state);
		else
			GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
		if (!retry)
			break;
	}
	if (jobs)
		pfree(jobs);
}

/* ---------------------------------------------------------------- pass 4 */

static void
bfs(VacState *vs, uint8 *reached, uint32 *queue, uint32 start, uint32 *qt)
{
	uint32		qh = *qt;
	uint32	   *nb = palloc(sizeof(uint32) * vs->info.m0);

	if (start >= vs->nids || reached[start])
		return;
	reached[start] = 1;
	queue[(*qt)++] = start;
	while (qh < *qt)
	{
		uint32		e = queue[qh++];
		int			n = read_list(vs, e, 0, nb);

		for (int i = 0; i < n; i++)
		{
			uint32		x = nb[i];

			if (x < vs->nids && !reached[x] && !vs->deleted[x])
			{
				reached[x] = 1;
				queue[(*qt)++] = x;
			}
		}
		if ((qh & 1023) == 0)
			vacuum_delay_point();
	}
	pfree(nb);
}

static void
ensure_reachable(VacState *vs)
{
	const RHnswInfo *info = &vs->info;
	uint8	   *reached;
	uint32	   *queue;
	uint32		qt = 0;
	float	   *vec = palloc(sizeof(float) * info->dims);

	if (vs->meta.entry == RHNSW_INVALID)
		return;
	reached = rhnsw_alloc_huge_zero(CurrentMemoryContext, vs->nids);
	queue = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) vs->nids + 1);
	bfs(vs, reached, queue, vs->meta.entry, &qt);

	/* later sweeps catch what a forced link of an earlier one pushed out */
	for (int sweep = 0; sweep < 10; sweep++)
	{
	bool		fixed_any = false;

	for (BlockNumber blk = 1; blk < vs->nblocks; blk++)
	{
		Buffer		buf = ReadBuffer(vs->index, blk);
		Page		page;
		OffsetNumber maxoff;
		uint32		orphans[256];
		int			norphans = 0;

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS)
		{
			maxoff = PageGetMaxOffsetNumber(page);
			for (OffsetNumber off = FirstOffsetNumber; off <= maxoff && norphans < 256; off++)
			{
				RHnswSlot	s = (RHnswSlot) rhnsw_page_slot(page, off);
				uint32		id = rhnsw_make_id(info, blk, off);

				if (s->kind == RHNSW_SLOT_ELEMENT && !s->deleted && !reached[id])
					orphans[norphans++] = id;
			}
		}
		UnlockReleaseBuffer(buf);
		for (int i = 0; i < norphans; i++)
		{
			float		norm2;
			bool		del;

			if (reached[orphans[i]])
				continue;
			if (!rhnsw_read_vector(vs->index, info, orphans[i], vec, &norm2, &del) || del)
				continue;
			if (rhnsw_link_orphan(vs->index, info, vs->metric, orphans[i],
								  vec, vs->meta.entry, vs->meta.entry_level, reached, vs->nids))
			{
				bfs(vs, reached, queue, orphans[i], &qt);
				fixed_any = true;
				vs->nlinked++;
			}
			else
				ereport(DEBUG1,
						(errmsg("rec_hnsw: could not link element %u of index \"%s\"",
								orphans[i], RelationGetRelationName(vs->index))));
		}
		vacuum_delay_point();
	}
	if (!fixed_any)
		break;
	/* start over: the links made may have pushed others out */
	memset(reached, 0, vs->nids);
	qt = 0;
	bfs(vs, reached, queue, vs->meta.entry, &qt);
	}
	pfree(reached);
	pfree(queue);
	pfree(vec);
}

/* ---------------------------------------------------------------- pass 5 */

/* is this slot the UPPER slot of element owner? */
static inline bool
upper_of(const char *p, uint32 owner)
{
	return ((RHnswUpper) p)->kind == RHNSW_SLOT_UPPER && ((RHnswUpper) p)->owner == owner;
}

/*
 * Free deleted element e and its UPPER slot u, which lies on another page,
 * in one record (pages locked in block order): an element and its UPPER
 * slot come and go together, so that a crash never leaves one without the
 * other.
 */
static void
free_pair(VacState *vs, uint32 e, uint32 u)
{
	const RHnswInfo *info = &vs->info;
	BlockNumber eblk = rhnsw_id_block(info, e);
	BlockNumber ublk = rhnsw_id_block(info, u);
	Buffer		ebuf = ReadBuffer(vs->index, eblk);
	Buffer		ubuf = ReadBuffer(vs->index, ublk);
	GenericXLogState *state;
	Page		epage;
	Page		upage;
	RHnswSlot	es;
	char	   *up;

	LockBuffer(eblk < ublk ? ebuf : ubuf, BUFFER_LOCK_EXCLUSIVE);
	LockBuffer(eblk < ublk ? ubuf : ebuf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(vs->index);
	epage = GenericXLogRegisterBuffer(state, ebuf, 0);
	upage = GenericXLogRegisterBuffer(state, ubuf, 0);
	es = (RHnswSlot) rhnsw_page_slot(epage, rhnsw_id_offset(info, e));
	up = rhnsw_page_slot(upage, rhnsw_id_offset(info, u));
	if (es->kind == RHNSW_SLOT_ELEMENT && es->deleted && es->upper == u)
	{
		memset(es, 0, info->slot_size);
		RHnswPageGetOpaque(epage)->nfree++;
		if (upper_of(up, e))
		{
			memset(up, 0, info->slot_size);
			RHnswPageGetOpaque(upage)->nfree++;
		}
		GenericXLogFinish(state);
		RecordPageWithFreeSpace(vs->index, eblk, BLCKSZ - 1);
		RecordPageWithFreeSpace(vs->index, ublk, BLCKSZ - 1);
	}
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(ebuf);
	UnlockReleaseBuffer(ubuf);
}

static void
free_deleted(VacState *vs)
{
	const RHnswInfo *info = &vs->info;
	uint32	   *pairs = palloc(sizeof(uint32) * 2 * info->per_page);

	for (BlockNumber blk = 1; blk < vs->nblocks; blk++)
	{
		Buffer		buf = ReadBuffer(vs->index, blk);
		Page		page;
		GenericXLogState *state = NULL;
		OffsetNumber maxoff;
		RHnswPageOpaque op;
		int			npairs = 0;

		vacuum_delay_point();

		/* elements whose UPPER slot is on another page: two-page records */
		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page) || RHnswPageGetOpaque(page)->type != RHNSW_PAGE_SLOTS)
		{
			UnlockReleaseBuffer(buf);
			continue;
		}
		maxoff = PageGetMaxOffsetNumber(page);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			RHnswSlot	s = (RHnswSlot) rhnsw_page_slot(page, off);
			uint32		id = rhnsw_make_id(info, blk, off);

			if (s->kind == RHNSW_SLOT_ELEMENT && s->deleted && is_deleted(vs, id) &&
				s->upper != RHNSW_INVALID && s->upper < vs->nids &&
				rhnsw_id_block(info, s->upper) != blk)
			{
				pairs[npairs++] = id;
				pairs[npairs++] = s->upper;
			}
		}
		LockBuffer(buf, BUFFER_LOCK_UNLOCK);
		for (int i = 0; i < npairs; i += 2)
			free_pair(vs, pairs[i], pairs[i + 1]);

		/* the rest: elements, with their UPPER slot when it is on this page */
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		page = BufferGetPage(buf);
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			char	   *p = rhnsw_page_slot(page, off);
			uint32		id = rhnsw_make_id(info, blk, off);
			uint32		upper;
			bool		upper_here;

			if (((RHnswSlot) p)->kind != RHNSW_SLOT_ELEMENT ||
				!((RHnswSlot) p)->deleted || !is_deleted(vs, id))
				continue;
			upper = ((RHnswSlot) p)->upper;
			upper_here = upper != RHNSW_INVALID && upper < vs->nids &&
				rhnsw_id_block(info, upper) == blk;
			if (upper != RHNSW_INVALID && upper < vs->nids && !upper_here)
				continue;		/* free_pair's business */
			if (state == NULL)
			{
				state = GenericXLogStart(vs->index);
				page = GenericXLogRegisterBuffer(state, buf, 0);
				p = rhnsw_page_slot(page, off);
			}
			if (upper_here)
			{
				char	   *up = rhnsw_page_slot(page, rhnsw_id_offset(info, upper));

				if (upper_of(up, id))
				{
					memset(up, 0, info->slot_size);
					RHnswPageGetOpaque(page)->nfree++;
				}
			}
			memset(p, 0, info->slot_size);
			RHnswPageGetOpaque(page)->nfree++;
		}
		if (state)
			GenericXLogFinish(state);
		/* page may have been the WAL state's copy, freed by now */
		op = RHnswPageGetOpaque(BufferGetPage(buf));
		if (op->nfree > 0)
			RecordPageWithFreeSpace(vs->index, blk, BLCKSZ - 1);
		UnlockReleaseBuffer(buf);
	}
	pfree(pairs);
}

IndexBulkDeleteResult *
rhnsw_bulkdelete(IndexVacuumInfo *info, IndexBulkDeleteResult *stats,
				 IndexBulkDeleteCallback callback, void *callback_state)
{
	Relation	index = info->index;
	VacState	vs;
	MemoryContext ctx;
	MemoryContext old;

	if (stats == NULL)
		stats = palloc0(sizeof(IndexBulkDeleteResult));

	memset(&vs, 0, sizeof(vs));
	vs.index = index;
	if (!rhnsw_get_info(index, &vs.info, &vs.meta))
		return stats;

	ctx = AllocSetContextCreate(CurrentMemoryContext, "rec_hnsw vacuum",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(ctx);

	vs.metric = vs.meta.metric;
	vs.nblocks = RelationGetNumberOfBlocks(index);
	vs.nids = (uint32) (vs.nblocks - 1) * vs.info.per_page;
	vs.deleted = rhnsw_alloc_huge_zero(ctx, Max(vs.nids, 1));
	vs.best_live = RHNSW_INVALID;
	vs.best_level = -1;

	mark_deleted(&vs, stats, callback, callback_state);

	if (vs.ndeleted > 0)
	{
		BlockNumber nblocks;

		/* inserts that began before the marks are finished after this */
		LockPage(index, RHNSW_UPDATE_LOCK, ExclusiveLock);
		UnlockPage(index, RHNSW_UPDATE_LOCK, ExclusiveLock);

		/*
		 * Those inserts may have put their elements on pages added since
		 * the marks began, with lists naming elements marked meanwhile:
		 * repair those pages too. Inserts that begin from now on see the
		 * marks and never link to a marked element.
		 */
		nblocks = RelationGetNumberOfBlocks(index);
		if (nblocks > vs.nblocks)
		{
			uint32		nids = (uint32) (nblocks - 1) * vs.info.per_page;

			vs.deleted = repalloc_huge(vs.deleted, nids);
			memset(vs.deleted + vs.nids, 0, nids - vs.nids);
			vs.nblocks = nblocks;
			vs.nids = nids;
		}

		if (vs.best_live == RHNSW_INVALID)
			find_live_entry(&vs);
		move_entry(&vs);
		for (BlockNumber blk = 1; blk < vs.nblocks; blk++)
		{
			repair_page(&vs, blk);
			vacuum_delay_point();
		}
		ensure_reachable(&vs);
		free_deleted(&vs);
		IndexFreeSpaceMapVacuum(index);
		ereport(DEBUG1,
				(errmsg("rec_hnsw vacuum of \"%s\": %u elements removed, %u neighbour lists repaired, %u elements relinked",
						RelationGetRelationName(index), vs.ndeleted, vs.nrepaired, vs.nlinked)));
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(ctx);
	return stats;
}

IndexBulkDeleteResult *
rhnsw_vacuumcleanup(IndexVacuumInfo *info, IndexBulkDeleteResult *stats)
{
	Relation	index = info->index;
	BlockNumber nblocks;

	if (info->analyze_only)
		return stats;

	nblocks = RelationGetNumberOfBlocks(index);
	if (stats == NULL)
	{
		stats = palloc0(sizeof(IndexBulkDeleteResult));
		/* count elements; record pages with free slots */
		for (BlockNumber blk = 1; blk < nblocks; blk++)
		{
			Buffer		buf = ReadBuffer(index, blk);
			Page		page;

			LockBuffer(buf, BUFFER_LOCK_SHARE);
			page = BufferGetPage(buf);
			if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS)
			{
				OffsetNumber maxoff = PageGetMaxOffsetNumber(page);

				for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
				{
					RHnswSlot	s = (RHnswSlot) rhnsw_page_slot(page, off);

					if (s->kind == RHNSW_SLOT_ELEMENT && !s->deleted)
						stats->num_index_tuples++;
				}
				if (RHnswPageGetOpaque(page)->nfree > 0)
					RecordPageWithFreeSpace(index, blk, BLCKSZ - 1);
			}
			UnlockReleaseBuffer(buf);
			vacuum_delay_point();
		}
		IndexFreeSpaceMapVacuum(index);
	}
	stats->num_pages = nblocks;
	return stats;
}
