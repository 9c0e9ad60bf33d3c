/*
 * search.c
 *	  rec_hnsw: the search engine over the on-disk graph, shared by index
 *	  scans, inserts and vacuum.
 *
 * One search keeps every element it has found (distance computed) in an
 * arena, and three orderings over it:
 *
 *	C  the found elements not expanded yet (min-heap);
 *	W  the best `ef` found results not handed out yet (sorted array);
 *	D  results pushed out of W (min-heap), kept only by resumable scans.
 *
 * rhnsw_search_run() expands candidates while the closest one in C is
 * closer than the ef-th entry of W: the classic HNSW layer search. A scan
 * hands out W's head, refills W from D and runs again, so after k rows have
 * been returned the search has converged as an ef = k + ef_search search
 * would. That is what lets a filtered scan go on past ef_search rows in
 * (near) distance order instead of stopping; max_found bounds the work.
 *
 * Neighbours are visited in block order, one pin and share lock per page.
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "utils/memutils.h"

#include "hnsw/hnsw_int.h"

#define VT_EMPTY RHNSW_INVALID

static inline uint32
vt_hash(uint32 id)
{
	return id * 0x9E3779B1u;
}

static void
vt_grow(RHnswSearch *s)
{
	uint32		oldsize = s->vmask + 1;
	uint32	   *old = s->vtab;
	uint32		newsize = oldsize * 2;

	s->vtab = palloc(sizeof(uint32) * newsize);
	memset(s->vtab, 0xFF, sizeof(uint32) * newsize);
	s->vmask = newsize - 1;
	for (uint32 i = 0; i < oldsize; i++)
	{
		if (old[i] != VT_EMPTY)
		{
			uint32		h = vt_hash(old[i]) & s->vmask;

			while (s->vtab[h] != VT_EMPTY)
				h = (h + 1) & s->vmask;
			s->vtab[h] = old[i];
		}
	}
	pfree(old);
}

/* true if id was not visited before (and marks it) */
static inline bool
vt_insert(RHnswSearch *s, uint32 id)
{
	uint32		h;

	if ((s->vcount + 1) * 2 > s->vmask + 1)
		vt_grow(s);
	h = vt_hash(id) & s->vmask;
	while (s->vtab[h] != VT_EMPTY)
	{
		if (s->vtab[h] == id)
			return false;
		h = (h + 1) & s->vmask;
	}
	s->vtab[h] = id;
	s->vcount++;
	return true;
}

/* pointers may be stale (freed and reused slots); never read past the end */
static inline bool
block_exists(RHnswSearch *s, BlockNumber blkno)
{
	if (blkno < s->nblocks)
		return true;
	s->nblocks = RelationGetNumberOfBlocks(s->index);
	return blkno < s->nblocks;
}

/* ---- binary min-heaps of RHnswHeapItem ---- */

static void
heap_push(RHnswHeapItem **h, int *n, int *cap, RHnswHeapItem it)
{
	int			i;

	if (*n >= *cap)
	{
		*cap *= 2;
		*h = repalloc_huge(*h, sizeof(RHnswHeapItem) * (*cap));
	}
	i = (*n)++;
	while (i > 0)
	{
		int			p = (i - 1) >> 1;

		if ((*h)[p].d <= it.d)
			break;
		(*h)[i] = (*h)[p];
		i = p;
	}
	(*h)[i] = it;
}

static RHnswHeapItem
heap_pop(RHnswHeapItem *h, int *n)
{
	RHnswHeapItem top = h[0];
	RHnswHeapItem last = h[--(*n)];
	int			i = 0;
	int			cnt = *n;

	for (;;)
	{
		int			l = 2 * i + 1;
		int			r = l + 1;
		int			c;

		if (l >= cnt)
			break;
		c = (r < cnt && h[r].d < h[l].d) ? r : l;
		if (h[c].d >= last.d)
			break;
		h[i] = h[c];
		i = c;
	}
	if (cnt > 0)
		h[i] = last;
	return top;
}

void
rhnsw_search_init(RHnswSearch *s, Relation index, const RHnswInfo *info, int metric)
{
	memset(s, 0, sizeof(RHnswSearch));
	s->index = index;
	s->info = *info;
	s->metric = metric;
	s->traverse_deleted = true;
	s->vmask = 4095;
	s->vtab = palloc(sizeof(uint32) * (s->vmask + 1));
	s->capfound = 256;
	s->found = palloc(sizeof(RHnswFound) * s->capfound);
	s->capC = 256;
	s->C = palloc(sizeof(RHnswHeapItem) * s->capC);
	s->capD = 64;
	s->D = palloc(sizeof(RHnswHeapItem) * s->capD);
	s->capW = 0;
	s->W = NULL;
	s->nbrbuf = palloc(sizeof(uint32) * Max(info->m0, info->m) * 2);
}

void
rhnsw_search_reset(RHnswSearch *s, int ef)
{
	memset(s->vtab, 0xFF, sizeof(uint32) * (s->vmask + 1));
	s->vcount = 0;
	s->nfound = 0;
	s->nvecs = 0;
	s->nnbrs = 0;
	s->nC = 0;
	s->nD = 0;
	s->whead = s->wtail = 0;
	s->ef = Max(ef, 1);
	s->exhausted = false;
	if (s->capW < 2 * s->ef + 2)
	{
		s->capW = 2 * s->ef + 2;
		if (s->W)
			pfree(s->W);
		s->W = palloc(sizeof(RHnswHeapItem) * s->capW);
	}
	if (s->keep_vecs && s->vecs == NULL)
	{
		s->capvecs = 256;
		s->vecs = palloc(sizeof(float) * s->info.dims * s->capvecs);
	}
}

float *
rhnsw_found_vec(RHnswSearch *s, RHnswFound *f)
{
	return s->vecs + (Size) f->vecidx * s->info.dims;
}

static inline int
w_count(RHnswSearch *s)
{
	return s->wtail - s->whead;
}

static inline float
w_threshold(RHnswSearch *s)
{
	return w_count(s) >= s->ef ? s->W[s->wtail - 1].d : FLT_MAX;
}

/* insert into W keeping it sorted; returns the item pushed out, if any */
static bool
w_insert(RHnswSearch *s, RHnswHeapItem it, RHnswHeapItem *out)
{
	int			lo = s->whead;
	int			hi = s->wtail;

	if (s->wtail >= s->capW)
	{
		int			n = w_count(s);

		memmove(s->W, s->W + s->whead, sizeof(RHnswHeapItem) * n);
		s->whead = 0;
		s->wtail = n;
		lo = 0;
		hi = n;
	}
	while (lo < hi)
	{
		int			mid = (lo + hi) >> 1;

		if (s->W[mid].d <= it.d)
			lo = mid + 1;
		else
			hi = mid;
	}
	memmove(s->W + lo + 1, s->W + lo, sizeof(RHnswHeapItem) * (s->wtail - lo));
	s->W[lo] = it;
	s->wtail++;
	if (w_count(s) > s->ef)
	{
		*out = s->W[--s->wtail];
		return true;
	}
	return false;
}

static inline void
push_c(RHnswSearch *s, RHnswFound *f, uint32 fi)
{
	RHnswHeapItem it;

	if (f->inC)
		return;
	it.d = f->d;
	it.f = fi;
	f->inC = 1;
	heap_push(&s->C, &s->nC, &s->capC, it);
}

/*
 * A newly found element: into W (and C) if it is among the ef best, else
 * into D for a resumable scan. An element in D is pushed to C only when it
 * moves up into W: only then could the search need its neighbours.
 */
static void
consider(RHnswSearch *s, uint32 fi)
{
	RHnswFound *f = &s->found[fi];
	RHnswHeapItem it;
	RHnswHeapItem out;
	float		thr = w_threshold(s);

	it.d = f->d;
	it.f = fi;
	if (f->deleted)
	{
		if (f->d < thr)
			push_c(s, f, fi);
		return;
	}
	if (f->d < thr)
	{
		push_c(s, f, fi);
		if (w_insert(s, it, &out) && s->keep_discarded)
			heap_push(&s->D, &s->nD, &s->capD, out);
	}
	else if (s->keep_discarded)
		heap_push(&s->D, &s->nD, &s->capD, it);
}

/* compute distances to the given ids, all on block blkno */
static void
visit_block(RHnswSearch *s, BlockNumber blkno, const uint32 *ids, int n, int lc, Buffer pinned)
{
	const RHnswInfo *info = &s->info;
	Buffer		buf = pinned;
	Page		page;
	OffsetNumber maxoff;

	if (buf == InvalidBuffer)
	{
		if (!block_exists(s, blkno))
			return;
		buf = ReadBuffer(s->index, blkno);
	}
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (PageIsNew(page) || RHnswPageGetOpaque(page)->type != RHNSW_PAGE_SLOTS)
	{
		UnlockReleaseBuffer(buf);
		return;
	}
	maxoff = PageGetMaxOffsetNumber(page);
	for (int i = 0; i < n; i++)
	{
		OffsetNumber off = rhnsw_id_offset(info, ids[i]);
		RHnswSlot slot;
		RHnswFound *f;
		const float *vec;

		if (off > maxoff)
			continue;
		slot = (RHnswSlot) rhnsw_page_slot(page, off);
		if (slot->kind != RHNSW_SLOT_ELEMENT)
			continue;
		if (slot->level < lc)
			continue;
		if (slot->deleted && !s->traverse_deleted)
			continue;
		if (s->nfound >= s->capfound)
		{
			s->capfound *= 2;
			s->found = repalloc_huge(s->found, sizeof(RHnswFound) * s->capfound);
		}
		f = &s->found[s->nfound];
		vec = rhnsw_slot_vec(info, slot);
		if (s->metric == RHNSW_METRIC_ANGLE)
			f->d = slot->norm2 > 0.0f ?
				-rec_kernel_dot(s->q, vec, info->dims) / sqrtf(slot->norm2) : 0.0f;
		else
			f->d = rhnsw_distance(s->metric, s->q, vec, info->dims);
		f->id = ids[i];
		f->upper = slot->upper;
		f->tid = slot->heaptid;
		f->level = slot->level;
		f->deleted = slot->deleted;
		f->vecidx = RHNSW_INVALID;
		f->inC = 0;
		f->nbroff = RHNSW_INVALID;
		f->nnbrs = 0;
		if (lc == 0 && f->d < w_threshold(s))
		{
			/* likely to be expanded: keep its neighbours, saving a visit */
			int			cnt = Min(slot->count0, info->m0);

			if (s->nnbrs + cnt > s->capnbrs)
			{
				s->capnbrs = Max(s->capnbrs * 2, 4096);
				s->nbrs = s->nbrs ? repalloc_huge(s->nbrs, sizeof(uint32) * s->capnbrs) :
					palloc(sizeof(uint32) * s->capnbrs);
			}
			memcpy(s->nbrs + s->nnbrs, rhnsw_slot_nbrs(slot), sizeof(uint32) * cnt);
			f->nbroff = s->nnbrs;
			f->nnbrs = cnt;
			s->nnbrs += cnt;
		}
		if (s->keep_vecs)
		{
			if (s->nvecs >= s->capvecs)
			{
				s->capvecs *= 2;
				s->vecs = repalloc_huge(s->vecs, sizeof(float) * info->dims * s->capvecs);
			}
			memcpy(s->vecs + (Size) s->nvecs * info->dims, vec, sizeof(float) * info->dims);
			f->vecidx = s->nvecs++;
		}
		s->nfound++;
		consider(s, s->nfound - 1);
	}
	UnlockReleaseBuffer(buf);
}

/* visit a list of unvisited ids, grouped by block */
static void
visit_ids(RHnswSearch *s, uint32 *ids, int n, int lc)
{
	/* insertion sort: ids in one block are contiguous in id order */
	for (int i = 1; i < n; i++)
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

	/*
	 * Pin every block first and prefetch the slots, so that the cache misses
	 * of the whole batch overlap; then compute distances block by block. A
	 * slot's place in its page is fixed (slots are laid out from the special
	 * space down, in offset order), which is what makes the prefetch
	 * possible before the page is locked; the reads proper go through the
	 * line pointers as usual.
	 */
	{
		const RHnswInfo *info = &s->info;
		int			starts[RHNSW_MAX_M * 2 + 1];
		Buffer		bufs[RHNSW_MAX_M * 2 + 1];
		int			ng = 0;
		int			special = BLCKSZ - MAXALIGN(sizeof(RHnswPageOpaqueData));

		for (int i = 0; i < n;)
		{
			BlockNumber blk = rhnsw_id_block(info, ids[i]);
			int			j = i + 1;

			while (j < n && rhnsw_id_block(info, ids[j]) == blk)
				j++;
			starts[ng] = i;
			bufs[ng] = InvalidBuffer;
			if (block_exists(s, blk))
			{
				char	   *page;

				bufs[ng] = ReadBuffer(s->index, blk);
				page = BufferGetPage(bufs[ng]);
				for (int k = i; k < j; k++)
				{
					OffsetNumber off = rhnsw_id_offset(info, ids[k]);
					char	   *slot = page + special - (int) off * info->slot_size;

					__builtin_prefetch(page + SizeOfPageHeaderData + (off - 1) * sizeof(ItemIdData));
					for (int b = 0; b < info->slot_size; b += 64)
						__builtin_prefetch(slot + b);
				}
			}
			ng++;
			i = j;
		}
		starts[ng] = n;
		for (int g = 0; g < ng; g++)
		{
			if (bufs[g] != InvalidBuffer)
				visit_block(s, rhnsw_id_block(info, ids[starts[g]]), ids + starts[g],
							starts[g + 1] - starts[g], lc, bufs[g]);
		}
	}
}

bool
rhnsw_search_add_entry(RHnswSearch *s, uint32 id, int lc)
{
	uint32		before = s->nfound;

	if (id == RHNSW_INVALID)
		return false;
	if (!vt_insert(s, id))
		return false;
	visit_block(s, rhnsw_id_block(&s->info, id), &id, 1, lc, InvalidBuffer);
	return s->nfound > before;
}

/* read the neighbour ids of found element f at layer lc into s->nbrbuf */
static int
read_neighbors(RHnswSearch *s, RHnswFound *f, int lc)
{
	const RHnswInfo *info = &s->info;
	uint32		id = (lc == 0) ? f->id : f->upper;
	uint32		owner = f->id;
	Buffer		buf;
	Page		page;
	BlockNumber blkno;
	OffsetNumber off;
	int			n = 0;

	if (id == RHNSW_INVALID)
		return 0;
	if (lc == 0 && f->nbroff != RHNSW_INVALID)
	{
		memcpy(s->nbrbuf, s->nbrs + f->nbroff, sizeof(uint32) * f->nnbrs);
		return f->nnbrs;
	}
	blkno = rhnsw_id_block(info, id);
	off = rhnsw_id_offset(info, id);
	if (!block_exists(s, blkno))
		return 0;
	buf = ReadBuffer(s->index, blkno);
	LockBuffer(buf, BUFFER_LOCK_SHARE);
	page = BufferGetPage(buf);
	if (!PageIsNew(page) && RHnswPageGetOpaque(page)->type == RHNSW_PAGE_SLOTS &&
		off <= PageGetMaxOffsetNumber(page))
	{
		char	   *p = rhnsw_page_slot(page, off);

		if (lc == 0)
		{
			RHnswSlot slot = (RHnswSlot) p;

			if (slot->kind == RHNSW_SLOT_ELEMENT)
			{
				n = Min(slot->count0, info->m0);
				memcpy(s->nbrbuf, rhnsw_slot_nbrs(slot), sizeof(uint32) * n);
			}
		}
		else
		{
			RHnswUpper u = (RHnswUpper) p;

			if (u->kind == RHNSW_SLOT_UPPER && u->owner == owner && lc <= u->nlevels)
			{
				n = Min(rhnsw_upper_counts(u)[lc - 1], info->m);
				memcpy(s->nbrbuf, rhnsw_upper_ids(info, u, lc), sizeof(uint32) * n);
			}
		}
	}
	UnlockReleaseBuffer(buf);
	return n;
}

void
rhnsw_search_run(RHnswSearch *s, int lc)
{
	uint32	   *todo = s->nbrbuf + Max(s->info.m0, s->info.m);

	while (s->nC > 0)
	{
		RHnswHeapItem top = s->C[0];
		RHnswFound	fcopy;
		int			n;
		int			nt = 0;

		if (w_count(s) >= s->ef && top.d > s->W[s->wtail - 1].d)
			break;
		if (s->max_found > 0 && s->nfound >= (uint32) s->max_found)
		{
			s->exhausted = true;
			break;
		}
		heap_pop(s->C, &s->nC);
		fcopy = s->found[top.f];
		n = read_neighbors(s, &fcopy, lc);
		for (int i = 0; i < n; i++)
		{
			if (vt_insert(s, s->nbrbuf[i]))
				todo[nt++] = s->nbrbuf[i];
		}
		if (nt > 0)
			visit_ids(s, todo, nt, lc);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Greedy descent (ef = 1) from the entry point through the layers above
 * target_level. Returns the id of the element to start layer target_level
 * from.
 */
int
rhnsw_search_descend(RHnswSearch *s, uint32 entry, int entry_level, int target_level,
					 uint32 *ep)
{
	uint32		cur = entry;

	for (int lc = entry_level; lc > target_level; lc--)
	{
		rhnsw_search_reset(s, 1);
		if (!rhnsw_search_add_entry(s, cur, lc))
		{
			/* entry no longer at this level (freed and reused): try lower */
			if (!rhnsw_search_add_entry(s, cur, 0))
				break;
			continue;
		}
		rhnsw_search_run(s, lc);
		if (w_count(s) > 0)
			cur = s->found[s->W[s->whead].f].id;
	}
	*ep = cur;
	return 0;
}

/* keep id out of this search */
void
rhnsw_search_mark_visited(RHnswSearch *s, uint32 id)
{
	vt_insert(s, id);
}

/* hand out the next result of a resumable scan */
RHnswFound *
rhnsw_search_pop(RHnswSearch *s)
{
	RHnswHeapItem it;

	if (!s->exhausted)
		rhnsw_search_run(s, 0);
	if (w_count(s) == 0)
		return NULL;
	it = s->W[s->whead++];
	if (s->nD > 0)
	{
		RHnswHeapItem nx = heap_pop(s->D, &s->nD);
		RHnswHeapItem dummy;

		w_insert(s, nx, &dummy);
		push_c(s, &s->found[nx.f], nx.f);
	}
	return &s->found[it.f];
}

/* the current results, closest first */
int
rhnsw_search_results(RHnswSearch *s, RHnswFound **out, int max)
{
	int			n = 0;

	for (int i = s->whead; i < s->wtail && n < max; i++)
		out[n++] = &s->found[s->W[i].f];
	return n;
}

/* release the memory of a search that is no longer needed */
void
rhnsw_search_free(RHnswSearch *s)
{
	if (s->vtab)
		pfree(s->vtab);
	if (s->found)
		pfree(s->found);
	if (s->vecs)
		pfree(s->vecs);
	if (s->nbrs)
		pfree(s->nbrs);
	if (s->C)
		pfree(s->C);
	if (s->W)
		pfree(s->W);
	if (s->D)
		pfree(s->D);
	if (s->nbrbuf)
		pfree(s->nbrbuf);
	memset(s, 0, sizeof(RHnswSearch));
}
