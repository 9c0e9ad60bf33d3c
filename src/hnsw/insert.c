/*
 * insert.c
 *	  rec_hnsw: inserting one vector into the on-disk graph (aminsert), the
 *	  neighbour-selection heuristic, and linking helpers shared with vacuum.
 *
 * An insert holds the update lock (a heavyweight page lock) in share mode,
 * so that VACUUM can wait for inserts that may have seen an element before
 * it was marked deleted. Then, each step a separate WAL record:
 *
 *	1. search the graph for the new element's neighbours (share locks only);
 *	2. write the element with its layer-0 neighbours into a free slot;
 *	3. if its level is at least 1, write its UPPER slot and link it in;
 *	4. move the entry point if the new element is higher;
 *	5. add the back-links, one neighbour at a time.
 *
 * An insert that finds no live element to link to (the first one, or one
 * after VACUUM emptied the graph) makes its element the entry point, with
 * the update lock held exclusively: two such inserts at once would leave
 * one of the elements without any link.
 *
 * A back-link that pushes another element v out of a full neighbour list
 * hands v to the new element's own list in the same record ("adoption"), so
 * v stays reachable: n -> new -> v. No step ever holds two buffer locks
 * except in block-number order.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/generic_xlog.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/freespace.h"
#include "storage/lmgr.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw/hnsw_int.h"

/* ---------------------------------------------------------------- helpers */

static int
cand_cmp(const void *a, const void *b)
{
	const RHnswCand *x = a;
	const RHnswCand *y = b;

	if (x->d < y->d)
		return -1;
	if (x->d > y->d)
		return 1;
	return (x->id < y->id) ? -1 : (x->id > y->id);
}

void
rhnsw_sort_cands(RHnswCand *c, int n)
{
	qsort(c, n, sizeof(RHnswCand), cand_cmp);
}

/*
 * The HNSW heuristic: walk the candidates closest first and keep one only
 * if it is closer to the base than to every neighbour kept so far. c[] must
 * be sorted; distances between candidates use the stored vectors.
 */
int
rhnsw_select_neighbors(int metric, int dims, RHnswCand *c, int nc, int k, uint32 *out)
{
	int			nsel = 0;
	int		   *sel = palloc(sizeof(int) * Max(k, 1));

	for (int i = 0; i < nc && nsel < k; i++)
	{
		bool		good = true;

		for (int j = 0; j < nsel; j++)
		{
			RHnswCand  *s = &c[sel[j]];
			float		d = rhnsw_distance(metric, c[i].vec, s->vec, dims);

			if (d < c[i].d)
			{
				good = false;
				break;
			}
		}
		if (good)
			sel[nsel++] = i;
	}
	for (int j = 0; j < nsel; j++)
		out[j] = c[sel[j]].id;
	pfree(sel);
	return nsel;
}

/* the angular distance between two raw vectors, given their norms */
float
rhnsw_angle_distance(const float *a, float anorm, const float *b, float bnorm, int dims)
{
	/* a zero vector has no direction: as if orthogonal to everything */
	if (!(anorm > 0.0f) || !(bnorm > 0.0f))
		return 0.0f;
	return -rec_kernel_dot(a, b, dims) / (anorm * bnorm);
}

/*
 * The links of one element on layer lc: the heuristic's picks by the
 * index's metric and, on layer 0 of an index with angular links (see
 * RHNSW_META_ANGULAR), up to RHNSW_ANGULAR_LINKS(m) more that the same
 * heuristic picks by angle among the candidates left. c[] is sorted by d,
 * the metric distance to the base (for inner product, minus the product,
 * so the angle is d / (|c| |base|)); c[].norm must be set for angular
 * links.
 */
int
rhnsw_select_links(const RHnswInfo *info, int lc, float base_norm, RHnswCand *c, int nc,
				   int k, uint32 *out)
{
	int			n = rhnsw_select_neighbors(info->metric, info->dims, c, nc, k, out);
	int			limit;
	int			nang = 0;
	RHnswCand  *a;
	int		   *sel;

	if (!info->angular || lc != 0 || n >= k || nc == 0)
		return n;
	limit = Min(k, n + RHNSW_ANGULAR_LINKS(info->m));
	a = palloc(sizeof(RHnswCand) * nc);
	sel = palloc(sizeof(int) * (limit + 1));
	for (int i = 0; i < nc; i++)
	{
		a[i] = c[i];
		a[i].d = (base_norm > 0.0f && c[i].norm > 0.0f) ?
			c[i].d / (base_norm * c[i].norm) : 0.0f;
	}
	rhnsw_sort_cands(a, nc);
	for (int i = 0; i < nc && n < limit; i++)
	{
		bool		good = true;

		for (int j = 0; j < n && good; j++)
			good = (out[j] != a[i].id);
		for (int j = 0; j < nang && good; j++)
		{
			RHnswCand  *s = &a[sel[j]];

			if (rhnsw_angle_distance(a[i].vec, a[i].norm, s->vec, s->norm, info->dims) < a[i].d)
				good = false;
		}
		if (good)
		{
			sel[nang++] = i;
			out[n++] = a[i].id;
		}
	}
	pfree(a);
	pfree(sel);
	return n;
}

/* Read an element's vector; false if the slot holds no element. */
bool
rhnsw_read_vector(Relation index, const RHnswInfo *info, uint32 id, float *vec,
				  float *norm2, bool *deleted)
{
	BlockNumber blkno = rhnsw_id_block(info, id);
	OffsetNumber off = rhnsw_id_offset(info, id);
	Buffer		buf;
	Page		page;
	bool		ok = false;

	if (blkno >= RelationGetNumberOfBlocks(index))
		return false;
	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS &&
		off <= PageGetMaxOffsetNumber(page))
	{
		RHnswSlot	slot = (RHnswSlot) rhnsw_page_slot(page, off);

		if (slot->kind == RHNSW_SLOT_ELEMENT)
		{
			memcpy(vec, rhnsw_slot_vec(info, slot), sizeof(float) * info->dims);
			*norm2 = slot->norm2;
			*deleted = slot->deleted != 0;
			ok = true;
		}
	}
	UnlockReleaseBuffer(buf);
	return ok;
}

/*
 * Find a slot page with a free slot and return it locked exclusively.
 * *isnew tells that the page was just added and must be initialised.
 */
static Buffer
get_free_slot_page(Relation index, bool *isnew)
{
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);
	BlockNumber tried = InvalidBlockNumber;
	Buffer		buf;

	*isnew = false;
	/* the last page first: it is where the graph grows */
	if (nblocks > 1)
	{
		buf = ReadBuffer(index, nblocks - 1);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (!PageIsNew(BufferGetPage(buf)) &&
			RHnswPageGetOpaque(BufferGetPage(buf))->type == RHNSW_PAGE_SLOTS &&
			RHnswPageGetOpaque(BufferGetPage(buf))->nfree > 0)
			return buf;
		UnlockReleaseBuffer(buf);
		tried = nblocks - 1;
	}
	/* pages where VACUUM freed slots */
	for (int i = 0; i < 16; i++)
	{
		BlockNumber blkno = GetPageWithFreeSpace(index, BLCKSZ / 2);

		if (blkno == InvalidBlockNumber)
			break;
		if (blkno == tried || blkno == RHNSW_META_BLKNO || blkno >= nblocks)
		{
			RecordPageWithFreeSpace(index, blkno, 0);
			continue;
		}
		buf = ReadBuffer(index, blkno);
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		if (!PageIsNew(BufferGetPage(buf)) &&
			RHnswPageGetOpaque(BufferGetPage(buf))->type == RHNSW_PAGE_SLOTS &&
			RHnswPageGetOpaque(BufferGetPage(buf))->nfree > 0)
			return buf;
		UnlockReleaseBuffer(buf);
		RecordPageWithFreeSpace(index, blkno, 0);
	}
	/* extend */
	LockRelationForExtension(index, ExclusiveLock);
	buf = ReadBuffer(index, P_NEW);
	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	UnlockRelationForExtension(index, ExclusiveLock);
	*isnew = true;
	return buf;
}

/* take a free slot on a locked page (registered in a generic WAL state) */
static OffsetNumber
take_free_slot(Page page, const RHnswInfo *info)
{
	OffsetNumber maxoff = PageGetMaxOffsetNumber(page);

	for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
	{
		char	   *p = rhnsw_page_slot(page, off);

		if (*(uint8 *) p == RHNSW_SLOT_FREE)
		{
			RHnswPageGetOpaque(page)->nfree--;
			return off;
		}
	}
	elog(ERROR, "rec_hnsw page has no free slot although its header says so");
	return InvalidOffsetNumber;
}

/* ---------------------------------------------------------------- meta */

/* set dimensions of an index that was built empty without a typmod */
static void
set_dims(Relation index, int dims)
{
	Buffer		buf = ReadBuffer(index, RHNSW_META_BLKNO);
	GenericXLogState *state;
	Page		page;
	RHnswMetaData *mp;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	mp = RHnswPageGetMeta(page);
	if (mp->dims == 0)
	{
		RHnswInfo	info;

		rhnsw_info_compute(&info, dims, mp->m, mp->efc, mp->metric);
		mp->dims = dims;
		mp->slot_size = info.slot_size;
		mp->per_page = info.per_page;
		mp->maxlevel = info.maxlevel;
		GenericXLogFinish(state);
	}
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
}

/*
 * Raise the entry point to (entry, level), or put entry in place of
 * replace, an entry point through which no live element could be found.
 */
static void
update_meta(Relation index, uint32 entry, int level, uint32 replace)
{
	Buffer		buf = ReadBuffer(index, RHNSW_META_BLKNO);
	GenericXLogState *state;
	Page		page;
	RHnswMetaData *mp;
	bool		changed = false;

	LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	page = GenericXLogRegisterBuffer(state, buf, 0);
	mp = RHnswPageGetMeta(page);
	if (entry != RHNSW_INVALID &&
		(mp->entry == RHNSW_INVALID || level > mp->entry_level ||
		 (replace != RHNSW_INVALID && mp->entry == replace)))
	{
		mp->entry = entry;
		mp->entry_level = level;
		changed = true;
	}
	if (changed)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(buf);
}

/* ---------------------------------------------------------------- writing */

static uint32
write_element(Relation index, const RHnswInfo *info, const float *vec, float norm2,
			  ItemPointer tid, const uint32 *nbrs, int nn)
{
	for (;;)
	{
		bool		isnew;
		Buffer		buf = get_free_slot_page(index, &isnew);
		GenericXLogState *state = GenericXLogStart(index);
		Page		page = GenericXLogRegisterBuffer(state, buf,
													 isnew ? GENERIC_XLOG_FULL_IMAGE : 0);
		OffsetNumber off;
		RHnswSlot	slot;
		uint32		id;

		if (isnew)
			rhnsw_fill_slot_page(page, info);
		off = take_free_slot(page, info);
		slot = (RHnswSlot) rhnsw_page_slot(page, off);
		memset(slot, 0, info->slot_size);
		slot->kind = RHNSW_SLOT_ELEMENT;
		slot->level = 0;
		slot->deleted = 0;
		slot->count0 = nn;
		slot->heaptid = *tid;
		slot->upper = RHNSW_INVALID;
		slot->norm2 = norm2;
		memcpy(rhnsw_slot_nbrs(slot), nbrs, sizeof(uint32) * nn);
		memcpy(rhnsw_slot_vec(info, slot), vec, sizeof(float) * info->dims);
		id = rhnsw_make_id(info, BufferGetBlockNumber(buf), off);
		GenericXLogFinish(state);
		UnlockReleaseBuffer(buf);
		return id;
	}
}

/*
 * Give element xid (level 0 so far) its UPPER slot with the lists of
 * layers 1..level, and raise its level, in one record.
 */
static void
write_upper(Relation index, const RHnswInfo *info, uint32 xid, int level,
			uint32 **lists, int *counts)
{
	BlockNumber xblk = rhnsw_id_block(info, xid);
	OffsetNumber xoff = rhnsw_id_offset(info, xid);

	for (;;)
	{
		bool		isnew;
		Buffer		ubuf = get_free_slot_page(index, &isnew);
		BlockNumber ublk = BufferGetBlockNumber(ubuf);
		Buffer		xbuf = InvalidBuffer;
		GenericXLogState *state;
		Page		upage;
		Page		xpage;
		OffsetNumber uoff;
		RHnswUpper	u;
		RHnswSlot	x;

		if (ublk != xblk)
		{
			xbuf = ReadBuffer(index, xblk);
			if (xblk < ublk && !isnew)
			{
				/* take the locks in block order, then look again */
				LockBuffer(ubuf, BUFFER_LOCK_UNLOCK);
				LockBuffer(xbuf, BUFFER_LOCK_EXCLUSIVE);
				LockBuffer(ubuf, BUFFER_LOCK_EXCLUSIVE);
				if (RHnswPageGetOpaque(BufferGetPage(ubuf))->nfree == 0)
				{
					UnlockReleaseBuffer(ubuf);
					UnlockReleaseBuffer(xbuf);
					continue;
				}
			}
			else
				LockBuffer(xbuf, BUFFER_LOCK_EXCLUSIVE);
		}
		state = GenericXLogStart(index);
		upage = GenericXLogRegisterBuffer(state, ubuf, isnew ? GENERIC_XLOG_FULL_IMAGE : 0);
		xpage = (xbuf == InvalidBuffer) ? upage : GenericXLogRegisterBuffer(state, xbuf, 0);
		if (isnew)
			rhnsw_fill_slot_page(upage, info);
		x = (RHnswSlot) rhnsw_page_slot(xpage, xoff);
		if (x->kind != RHNSW_SLOT_ELEMENT)
		{
			/* cannot happen while we hold the update lock */
			GenericXLogAbort(state);
			UnlockReleaseBuffer(ubuf);
			if (xbuf != InvalidBuffer)
				UnlockReleaseBuffer(xbuf);
			return;
		}
		uoff = take_free_slot(upage, info);
		u = (RHnswUpper) rhnsw_page_slot(upage, uoff);
		memset(u, 0, info->slot_size);
		u->kind = RHNSW_SLOT_UPPER;
		u->nlevels = level;
		u->owner = xid;
		for (int lc = 1; lc <= level; lc++)
		{
			rhnsw_upper_counts(u)[lc - 1] = counts[lc];
			memcpy(rhnsw_upper_ids(info, u, lc), lists[lc], sizeof(uint32) * counts[lc]);
		}
		x->level = level;
		x->upper = rhnsw_make_id(info, ublk, uoff);
		GenericXLogFinish(state);
		UnlockReleaseBuffer(ubuf);
		if (xbuf != InvalidBuffer)
			UnlockReleaseBuffer(xbuf);
		return;
	}
}

/* ---------------------------------------------------------------- linking */

typedef struct ListRef
{
	uint32	   *ids;
	uint8	   *count;
	int			cap;
} ListRef;

/* locate the neighbour list of element id at layer lc on a locked page */
static bool
list_on_page(const RHnswInfo *info, Page page, uint32 id, uint32 listid, int lc,
			 ListRef *ref)
{
	OffsetNumber off = rhnsw_id_offset(info, listid);
	char	   *p;

	if (PageIsNew(page) || RHnswPageGetOpaque(page)->type != RHNSW_PAGE_SLOTS ||
		off > PageGetMaxOffsetNumber(page))
		return false;
	p = rhnsw_page_slot(page, off);
	if (lc == 0)
	{
		RHnswSlot	s = (RHnswSlot) p;

		if (s->kind != RHNSW_SLOT_ELEMENT || s->deleted)
			return false;
		ref->ids = rhnsw_slot_nbrs(s);
		ref->count = &s->count0;
		ref->cap = info->m0;
	}
	else
	{
		RHnswUpper	u = (RHnswUpper) p;

		if (u->kind != RHNSW_SLOT_UPPER || u->owner != id || lc > u->nlevels)
			return false;
		ref->ids = rhnsw_upper_ids(info, u, lc);
		ref->count = &rhnsw_upper_counts(u)[lc - 1];
		ref->cap = info->m;
	}
	return true;
}

/* the element's vector, level and UPPER slot id */
static bool
read_element_head(Relation index, const RHnswInfo *info, uint32 id, float *vec,
				  float *norm2, int *level, uint32 *upper)
{
	BlockNumber blkno = rhnsw_id_block(info, id);
	OffsetNumber off = rhnsw_id_offset(info, id);
	Buffer		buf;
	Page		page;
	bool		ok = false;

	if (blkno >= RelationGetNumberOfBlocks(index))
		return false;
	buf = ReadBuffer(index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS &&
		off <= PageGetMaxOffsetNumber(page))
	{
		RHnswSlot	s = (RHnswSlot) rhnsw_page_slot(page, off);

		if (s->kind == RHNSW_SLOT_ELEMENT && !s->deleted)
		{
			memcpy(vec, rhnsw_slot_vec(info, s), sizeof(float) * info->dims);
			*norm2 = s->norm2;
			*level = s->level;
			*upper = s->upper;
			ok = true;
		}
	}
	UnlockReleaseBuffer(buf);
	return ok;
}

/* copy the list of element id at layer lc; -1 if there is none */
static int
copy_list(Relation index, const RHnswInfo *info, uint32 id, uint32 listid, int lc,
		  uint32 *out)
{
	Buffer		buf;
	ListRef		ref;
	int			n = -1;

	if (rhnsw_id_block(info, listid) >= RelationGetNumberOfBlocks(index))
		return -1;
	buf = ReadBuffer(index, rhnsw_id_block(info, listid));
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	if (list_on_page(info, BufferGetPage(buf), id, listid, lc, &ref))
	{
		n = Min(*ref.count, ref.cap);
		memcpy(out, ref.ids, sizeof(uint32) * n);
	}
	UnlockReleaseBuffer(buf);
	return n;
}

/*
 * Add x to the layer-lc list of element n. dnx is their distance. With
 * adopt (layer 0), elements pushed out of n's list go to x's list.
 * Returns true if x was linked.
 */
static bool
add_link(Relation index, const RHnswInfo *info, int metric,
		 uint32 n, int lc, uint32 x, const float *xvec, float dnx, bool adopt)
{
	int			cap = (lc == 0) ? info->m0 : info->m;
	uint32	   *old = palloc(sizeof(uint32) * (cap + 1));
	uint32	   *new = palloc(sizeof(uint32) * (cap + 1));
	float	   *nvec = palloc(sizeof(float) * info->dims);
	float	   *vecs = palloc(sizeof(float) * info->dims * (cap + 1));
	RHnswCand  *c = palloc(sizeof(RHnswCand) * (cap + 1));
	uint32	   *evicted = palloc(sizeof(uint32) * (cap + 1));
	bool		linked = false;

	for (int attempt = 0; attempt < 5; attempt++)
	{
		float		nnorm2;
		int			nlevel;
		uint32		nupper;
		uint32		listid;
		int			nold;
		int			nnew = 0;
		int			nev = 0;
		bool		present = false;
		Buffer		lbuf;
		Buffer		xbuf = InvalidBuffer;
		BlockNumber lblk;
		BlockNumber xblk = rhnsw_id_block(info, x);
		GenericXLogState *state;
		Page		lpage;
		ListRef		ref;
		bool		same;

		if (!read_element_head(index, info, n, nvec, &nnorm2, &nlevel, &nupper))
			break;
		if (nlevel < lc)
			break;
		listid = (lc == 0) ? n : nupper;
		if (listid == RHNSW_INVALID)
			break;
		nold = copy_list(index, info, n, listid, lc, old);
		if (nold < 0)
			break;
		for (int i = 0; i < nold; i++)
			if (old[i] == x)
				present = true;
		if (present)
		{
			linked = true;
			break;
		}
		if (nold < cap)
		{
			memcpy(new, old, sizeof(uint32) * nold);
			new[nold] = x;
			nnew = nold + 1;
		}
		else
		{
			int			nc = 0;

			for (int i = 0; i < nold; i++)
			{
				float		norm2;
				bool		deleted;
				float	   *v = vecs + (Size) nc * info->dims;

				if (!rhnsw_read_vector(index, info, old[i], v, &norm2, &deleted) || deleted)
					continue;	/* dropped: dead or being removed */
				c[nc].id = old[i];
				c[nc].vec = v;
				c[nc].d = rhnsw_distance(metric, nvec, v, info->dims);
				c[nc].norm = sqrtf(Max(norm2, 0.0f));
				nc++;
			}
			c[nc].id = x;
			c[nc].vec = xvec;
			c[nc].d = dnx;
			c[nc].norm = sqrtf(Max(rec_kernel_dot(xvec, xvec, info->dims), 0.0f));
			nc++;
			rhnsw_sort_cands(c, nc);
			nnew = rhnsw_select_links(info, lc, sqrtf(Max(nnorm2, 0.0f)), c, nc, cap, new);
			for (int i = 0; i < nnew; i++)
				if (new[i] == x)
					present = true;
			if (!present)
				break;

			/*
			 * x earns a place: it takes the place of the farthest entry the
			 * heuristic passed over. Only that one entry leaves the list
			 * (plus any dead ones), so the list stays full of near
			 * neighbours and x rarely has to adopt more than one.
			 */
			{
				int			victim = -1;

				for (int i = nc - 1; i >= 0 && victim < 0; i--)
				{
					bool		kept = false;

					if (c[i].id == x)
						continue;
					for (int j = 0; j < nnew && !kept; j++)
						kept = (new[j] == c[i].id);
					if (!kept)
						victim = i;
				}
				nnew = 0;
				for (int i = 0; i < nc; i++)
				{
					if (i == victim)
						evicted[nev++] = c[i].id;
					else
						new[nnew++] = c[i].id;
				}
				if (nnew > cap)
				{
					/* no entry to spare: x stays out */
					break;
				}
			}
		}

		/* lock the list's page (and x's page for adoption) in block order */
		lblk = rhnsw_id_block(info, listid);
		lbuf = ReadBuffer(index, lblk);
		if (adopt && nev > 0 && xblk != lblk)
		{
			xbuf = ReadBuffer(index, xblk);
			if (xblk < lblk)
			{
				LockBuffer(xbuf, BUFFER_LOCK_EXCLUSIVE);
				LockBuffer(lbuf, BUFFER_LOCK_EXCLUSIVE);
			}
			else
			{
				LockBuffer(lbuf, BUFFER_LOCK_EXCLUSIVE);
				LockBuffer(xbuf, BUFFER_LOCK_EXCLUSIVE);
			}
		}
		else
			LockBuffer(lbuf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		lpage = GenericXLogRegisterBuffer(state, lbuf, 0);
		same = list_on_page(info, lpage, n, listid, lc, &ref) &&
			*ref.count == nold &&
			memcmp(ref.ids, old, sizeof(uint32) * nold) == 0;
		if (same && adopt && nev > 0)
		{
			/*
			 * Everything pushed out must move to x's list, or nothing
			 * happens: an element must not lose what may be its only
			 * in-link.
			 */
			Page		xpage = (xbuf == InvalidBuffer) ? lpage :
				GenericXLogRegisterBuffer(state, xbuf, 0);
			RHnswSlot	xs = (RHnswSlot) rhnsw_page_slot(xpage, rhnsw_id_offset(info, x));
			uint32	   *xn = rhnsw_slot_nbrs(xs);
			int			need = 0;

			if (xs->kind != RHNSW_SLOT_ELEMENT)
				need = info->m0 + 1;
			for (int i = 0; i < nev && need <= info->m0; i++)
			{
				bool		dup = false;

				for (int j = 0; j < xs->count0 && !dup; j++)
					dup = (xn[j] == evicted[i]);
				if (!dup)
					need++;
			}
			if (xs->count0 + need > info->m0)
				same = false;	/* give up on this link */
			else
			{
				for (int i = 0; i < nev; i++)
				{
					bool		dup = false;

					for (int j = 0; j < xs->count0 && !dup; j++)
						dup = (xn[j] == evicted[i]);
					if (!dup)
						xn[xs->count0++] = evicted[i];
				}
			}
			if (!same)
			{
				GenericXLogAbort(state);
				UnlockReleaseBuffer(lbuf);
				if (xbuf != InvalidBuffer)
					UnlockReleaseBuffer(xbuf);
				break;
			}
		}
		if (same)
		{
			memcpy(ref.ids, new, sizeof(uint32) * nnew);
			*ref.count = nnew;
			GenericXLogFinish(state);
			linked = true;
		}
		else
			GenericXLogAbort(state);
		UnlockReleaseBuffer(lbuf);
		if (xbuf != InvalidBuffer)
			UnlockReleaseBuffer(xbuf);
		if (same)
			break;
	}
	pfree(old);
	pfree(new);
	pfree(nvec);
	pfree(vecs);
	pfree(c);
	pfree(evicted);
	return linked;
}

/*
 * Last resort for a new element x that no neighbour would take: x replaces
 * the last entry w of n's layer-0 list, and w moves to x's list (appended,
 * or in place of the last entry x chose itself, which loses nothing: that
 * link is new). One record, both pages locked in block order.
 */
static bool
force_link0(Relation index, const RHnswInfo *info, uint32 n, uint32 x, int xchosen)
{
	BlockNumber nblk = rhnsw_id_block(info, n);
	BlockNumber xblk = rhnsw_id_block(info, x);
	Buffer		nbuf = ReadBuffer(index, nblk);
	Buffer		xbuf = (xblk == nblk) ? InvalidBuffer : ReadBuffer(index, xblk);
	GenericXLogState *state;
	Page		npage;
	Page		xpage;
	RHnswSlot	ns;
	RHnswSlot	xs;
	bool		ok = false;
	uint32	   *nlist = palloc(sizeof(uint32) * info->m0);
	float	   *wvec = palloc(sizeof(float) * info->dims);
	int			nn0;
	uint32		wexp = RHNSW_INVALID;
	bool		wlive = false;

	/*
	 * Learn beforehand whether the entry x displaces is live: one that is
	 * marked deleted must not move to x's list, where the VACUUM removing
	 * it may never look (x's page may be one it has repaired already, or
	 * one added after it began).
	 */
	nn0 = copy_list(index, info, n, n, 0, nlist);
	if (nn0 > 0)
	{
		float		norm2;
		bool		deleted;

		wexp = nlist[nn0 - 1];
		wlive = rhnsw_read_vector(index, info, wexp, wvec, &norm2, &deleted) && !deleted;
	}
	pfree(nlist);
	pfree(wvec);

	if (xbuf != InvalidBuffer && xblk < nblk)
		LockBuffer(xbuf, BUFFER_LOCK_EXCLUSIVE);
	LockBuffer(nbuf, BUFFER_LOCK_EXCLUSIVE);
	if (xbuf != InvalidBuffer && xblk > nblk)
		LockBuffer(xbuf, BUFFER_LOCK_EXCLUSIVE);
	state = GenericXLogStart(index);
	npage = GenericXLogRegisterBuffer(state, nbuf, 0);
	xpage = (xbuf == InvalidBuffer) ? npage : GenericXLogRegisterBuffer(state, xbuf, 0);
	ns = (RHnswSlot) rhnsw_page_slot(npage, rhnsw_id_offset(info, n));
	xs = (RHnswSlot) rhnsw_page_slot(xpage, rhnsw_id_offset(info, x));
	if (ns->count0 > info->m0 || xs->count0 > info->m0)
		ereport(ERROR,
				(errcode(ERRCODE_INDEX_CORRUPTED),
				 errmsg("index \"%s\" is corrupted", RelationGetRelationName(index)),
				 errdetail("Element %u or %u has more than %d layer-0 neighbours.",
						   n, x, info->m0)));
	if (ns->kind == RHNSW_SLOT_ELEMENT && !ns->deleted && xs->kind == RHNSW_SLOT_ELEMENT &&
		ns->count0 > 0 && rhnsw_slot_nbrs(ns)[ns->count0 - 1] == wexp)
	{
		uint32	   *nn = rhnsw_slot_nbrs(ns);
		uint32	   *xn = rhnsw_slot_nbrs(xs);
		uint32		w = nn[ns->count0 - 1];
		bool		present = false;

		for (int j = 0; j < ns->count0; j++)
			present |= (nn[j] == x);
		if (!present && ns->count0 < info->m0)
			nn[ns->count0++] = x;
		else if (!present)
		{
			bool		wpresent = (w == x) || !wlive;

			for (int j = 0; j < xs->count0; j++)
				wpresent |= (xn[j] == w);
			if (!wpresent && xs->count0 < info->m0)
				xn[xs->count0++] = w;
			else if (!wpresent && xchosen > 0)
				xn[Min(xchosen, xs->count0) - 1] = w;
			nn[ns->count0 - 1] = x;
		}
		ok = true;
	}
	if (ok)
		GenericXLogFinish(state);
	else
		GenericXLogAbort(state);
	UnlockReleaseBuffer(nbuf);
	if (xbuf != InvalidBuffer)
		UnlockReleaseBuffer(xbuf);
	return ok;
}

/* ---------------------------------------------------------------- insert */

/*
 * An index with angular links: search layer 0 by angle from the elements
 * the inner-product search found, and add what it finds to c[0..nc) (which
 * has room for info->efc more), sorted again by inner product. The vectors
 * of the added candidates live in *as until the caller is done.
 */
static int
add_angular_cands(Relation index, const RHnswInfo *info, const float *vec, float xnorm,
				  RHnswSearch *as, RHnswCand *c, int nc)
{
	RHnswFound **res = palloc(sizeof(RHnswFound *) * info->efc);
	float	   *qn = palloc(sizeof(float) * info->dims);
	int			nres;
	int			n = nc;

	for (int i = 0; i < info->dims; i++)
		qn[i] = vec[i] / xnorm;
	rhnsw_search_init(as, index, info, RHNSW_METRIC_ANGLE);
	as->q = qn;
	as->keep_vecs = true;
	rhnsw_search_reset(as, info->efc);
	for (int i = 0; i < nc; i++)
		rhnsw_search_add_entry(as, c[i].id, 0);
	rhnsw_search_run(as, 0);
	nres = rhnsw_search_results(as, res, info->efc);
	for (int i = 0; i < nres; i++)
	{
		bool		dup = false;

		for (int j = 0; j < nc && !dup; j++)
			dup = (c[j].id == res[i]->id);
		if (dup)
			continue;
		c[n].id = res[i]->id;
		c[n].vec = rhnsw_found_vec(as, res[i]);
		c[n].d = rhnsw_distance(info->metric, vec, c[n].vec, info->dims);
		c[n].norm = sqrtf(Max(rec_kernel_dot(c[n].vec, c[n].vec, info->dims), 0.0f));
		n++;
	}
	rhnsw_sort_cands(c, n);
	pfree(res);
	return n;
}

/*
 * Insert one prepared vector. The caller holds the update lock: in share
 * mode (alone = false), or exclusively, or is the only writer (a build).
 * Returns false, having changed nothing, when the graph offers no live
 * element to link to and the lock is only shared: the new element must
 * then become the entry point, which two inserts must not do at once (the
 * loser would be left unreachable), so the caller retries alone.
 */
bool
rhnsw_insert_vector(Relation index, const float *vec, float norm2, ItemPointer tid,
					bool alone)
{
	RHnswMetaData meta;
	RHnswInfo	info;
	int			metric;
	int			level;
	int			top;
	RHnswSearch s;
	uint32		ep;
	uint32	  **lists;
	float	  **dists;
	int		   *counts;
	uint32	   *epl;
	int			nep;
	uint32		xid;
	bool		linked0 = false;
	RHnswCand  *res0 = NULL;
	int			nres0 = 0;
	RHnswSearch as;				/* the angular search; its vectors back c[] */

	if (!rhnsw_get_info(index, &info, &meta))
		elog(ERROR, "rec_hnsw index without dimensions");
	metric = meta.metric;

	level = rhnsw_tid_level(&info, tid);

	lists = palloc0(sizeof(uint32 *) * (level + 1));
	dists = palloc0(sizeof(float *) * (level + 1));
	counts = palloc0(sizeof(int) * (level + 1));
	for (int lc = 0; lc <= level; lc++)
	{
		lists[lc] = palloc(sizeof(uint32) * info.m0);
		dists[lc] = palloc(sizeof(float) * info.m0);
	}

	if (meta.entry != RHNSW_INVALID)
	{
		RHnswFound **res = palloc(sizeof(RHnswFound *) * info.efc);
		RHnswCand  *c = palloc(sizeof(RHnswCand) * info.efc * 2);
		float		xnorm = sqrtf(Max(norm2, 0.0f));

		rhnsw_search_init(&s, index, &info, metric);
		s.q = vec;
		s.keep_vecs = true;
		top = meta.entry_level;
		rhnsw_search_descend(&s, meta.entry, top, level, &ep);
		epl = palloc(sizeof(uint32) * info.efc);
		epl[0] = ep;
		nep = 1;
		for (int lc = Min(level, top); lc >= 0; lc--)
		{
			int			nres;
			int			nc;
			int			cap = (lc == 0) ? info.m0 : info.m;

			rhnsw_search_reset(&s, info.efc);
			for (int i = 0; i < nep; i++)
				rhnsw_search_add_entry(&s, epl[i], lc);
			if (s.nfound == 0)
				rhnsw_search_add_entry(&s, meta.entry, 0);
			rhnsw_search_run(&s, lc);
			nres = rhnsw_search_results(&s, res, info.efc);
			for (int i = 0; i < nres; i++)
			{
				c[i].d = res[i]->d;
				c[i].id = res[i]->id;
				c[i].vec = rhnsw_found_vec(&s, res[i]);
				c[i].norm = sqrtf(Max(rec_kernel_dot(c[i].vec, c[i].vec, info.dims), 0.0f));
			}
			nc = nres;
			if (lc == 0 && info.angular && xnorm > 0.0f)
				nc = add_angular_cands(index, &info, vec, xnorm, &as, c, nres);
			counts[lc] = rhnsw_select_links(&info, lc, xnorm, c, nc, cap, lists[lc]);
			if (lc == 0)
			{
				res0 = palloc(sizeof(RHnswCand) * Max(nres, 1));
				memcpy(res0, c, sizeof(RHnswCand) * nres);
				nres0 = nres;
			}
			for (int i = 0; i < counts[lc]; i++)
				for (int j = 0; j < nc; j++)
					if (c[j].id == lists[lc][i])
						dists[lc][i] = c[j].d;
			nep = 0;
			for (int i = 0; i < nres; i++)
				epl[nep++] = res[i]->id;
			if (nep == 0)
			{
				epl[0] = ep;
				nep = 1;
			}
		}
	}

	if (nres0 == 0 && !alone)
		return false;

	xid = write_element(index, &info, vec, norm2, tid, lists[0], counts[0]);
	if (level > 0)
		write_upper(index, &info, xid, level, lists, counts);
	if (nres0 == 0)
		update_meta(index, xid, level, meta.entry);
	else if (level > meta.entry_level)
		update_meta(index, xid, level, RHNSW_INVALID);

	for (int lc = level; lc >= 0; lc--)
	{
		for (int i = 0; i < counts[lc]; i++)
		{
			if (add_link(index, &info, metric, lists[lc][i], lc, xid, vec,
						 dists[lc][i], lc == 0) && lc == 0)
				linked0 = true;
		}
	}

	/*
	 * Every element needs an in-link to be found. If all selected
	 * neighbours turned it down, try the rest of what the search found.
	 */
	if (!linked0 && meta.entry != RHNSW_INVALID)
	{
		for (int i = 0; i < nres0 && !linked0; i++)
		{
			if (res0[i].id == xid)
				continue;
			linked0 = add_link(index, &info, metric, res0[i].id, 0, xid, vec,
							   res0[i].d, true);
		}
		for (int i = 0; i < nres0 && !linked0; i++)
		{
			if (res0[i].id != xid)
				linked0 = force_link0(index, &info, res0[i].id, xid, counts[0]);
		}
	}
	return true;
}

bool
rhnsw_insert(Relation index, Datum *values, bool *isnull, ItemPointer heap_tid,
			 Relation heap, IndexUniqueCheck checkUnique, bool indexUnchanged,
			 IndexInfo *indexInfo)
{
	MemoryContext ctx;
	MemoryContext old;
	RHnswMetaData meta;
	RHnswInfo	info;
	float	   *vec;
	float		norm2;

	/* NULL vectors are not indexed */
	if (isnull[0])
		return false;

	ctx = AllocSetContextCreate(CurrentMemoryContext, "rec_hnsw insert",
								ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(ctx);

	if (!rhnsw_get_info(index, &info, &meta))
	{
		set_dims(index, rhnsw_value_dims(values[0]));
		if (!rhnsw_get_info(index, &info, &meta))
			elog(ERROR, "could not set dimensions of rec_hnsw index");
	}
	vec = palloc(sizeof(float) * info.dims);
	if (rhnsw_prepare_vector(index, &info, meta.metric, values[0], vec, &norm2))
	{
		LockPage(index, RHNSW_UPDATE_LOCK, ShareLock);
		if (rhnsw_insert_vector(index, vec, norm2, heap_tid, false))
			UnlockPage(index, RHNSW_UPDATE_LOCK, ShareLock);
		else
		{
			/* first element, or nothing live left: alone */
			UnlockPage(index, RHNSW_UPDATE_LOCK, ShareLock);
			LockPage(index, RHNSW_UPDATE_LOCK, ExclusiveLock);
			rhnsw_insert_vector(index, vec, norm2, heap_tid, true);
			UnlockPage(index, RHNSW_UPDATE_LOCK, ExclusiveLock);
		}
	}

	MemoryContextSwitchTo(old);
	MemoryContextDelete(ctx);
	return false;
}

/*
 * Make element id (live, unreachable) reachable: search the graph from the
 * entry point without passing through deleted elements, then link id from
 * the closest reached element that can take it (adopting what it pushes
 * out). reached[] marks reachable slot ids and is updated for id.
 */
bool
rhnsw_link_orphan(Relation index, const RHnswInfo *info, int metric,
				  uint32 id, const float *vec, uint32 entry, int entry_level,
				  uint8 *reached, uint32 nids)
{
	RHnswSearch s;
	RHnswFound **res = palloc(sizeof(RHnswFound *) * info->efc);
	int			nres;
	uint32		ep;

	rhnsw_search_init(&s, index, info, metric);
	s.q = vec;
	s.traverse_deleted = false;
	rhnsw_search_descend(&s, entry, entry_level, 0, &ep);
	rhnsw_search_reset(&s, info->efc);
	rhnsw_search_add_entry(&s, ep, 0);
	rhnsw_search_run(&s, 0);
	nres = rhnsw_search_results(&s, res, info->efc);
	for (int i = 0; i < nres; i++)
	{
		uint32		r = res[i]->id;

		if (r == id || r >= nids || !reached[r])
			continue;
		if (add_link(index, info, metric, r, 0, id, vec, res[i]->d, true))
			return true;
	}

	/*
	 * Every candidate's list is full and so is the orphan's: make room in
	 * the closest reachable element's list by dropping its last entry. If
	 * that one loses its only in-link, the caller's next sweep links it.
	 */
	for (int i = 0; i < nres; i++)
	{
		uint32		r = res[i]->id;

		if (r == id || r >= nids || !reached[r])
			continue;
		/* x's own chosen links may go: it was unreachable, nothing relied on them */
		if (force_link0(index, info, r, id, info->m0))
			return true;
	}
	for (int i = 0; i < nres; i++)
	{
		uint32		r = res[i]->id;
		Buffer		buf;
		GenericXLogState *state;
		Page		page;
		RHnswSlot	rs;
		bool		done = false;

		if (r == id || r >= nids || !reached[r])
			continue;
		buf = ReadBuffer(index, rhnsw_id_block(info, r));
		LockBuffer(buf, BUFFER_LOCK_EXCLUSIVE);
		state = GenericXLogStart(index);
		page = GenericXLogRegisterBuffer(state, buf, 0);
		rs = (RHnswSlot) rhnsw_page_slot(page, rhnsw_id_offset(info, r));
		if (rs->kind == RHNSW_SLOT_ELEMENT && !rs->deleted && rs->count0 > 0 &&
			rs->count0 <= info->m0)
		{
			uint32	   *nb = rhnsw_slot_nbrs(rs);
			bool		present = false;

			for (int j = 0; j < rs->count0; j++)
				present |= (nb[j] == id);
			if (!present)
			{
				if (rs->count0 < info->m0)
					nb[rs->count0++] = id;
				else
					nb[rs->count0 - 1] = id;
			}
			done = true;
		}
		if (done)
			GenericXLogFinish(state);
		else
			GenericXLogAbort(state);
		UnlockReleaseBuffer(buf);
		if (done)
			return true;
	}
	return false;
}
