/*
 * exact.c
 *	  rec_hnsw: the exact ordered pass that finishes an index scan whose
 *	  graph search has spent its budget.
 *
 * A pass reads every slot page of the index, computes the distance from
 * the query to every live element the graph search has not returned, and
 * keeps the closest ones above the previous pass's last key. Elements are
 * then handed out in increasing key order, where the key is the distance
 * (as a totally ordered 32-bit code: NaN last) followed by the element's
 * slot id, so every element has a distinct key. When the elements do not
 * all fit into the memory budget (work_mem), a pass keeps the smallest
 * keys that fit, and the next pass starts above the largest of them: each
 * element is returned once, in exact order from the first pass on.
 *
 * Memory: 16 bytes per kept element, bounded by work_mem (at least 1,024
 * elements), plus one bit per slot for the elements the graph search
 * returned. Within a batch the order is produced lazily (incremental
 * quicksort), so a scan that stops after a few rows pays O(batch) once and
 * O(log batch) per row, not a full sort.
 *
 * Concurrency. The pass holds one share lock on one page at a time, and
 * relies on what an MVCC scan may assume about the rows it can see: the
 * element of a visible row was written before the scan's snapshot, is
 * never flagged deleted or freed while the scan runs (VACUUM removes only
 * rows dead to every snapshot) and never moves, so its slot id, distance
 * and key are the same in every pass. Elements that come and go under the
 * pass (freed slots, reused slots, pages added by inserts) belong to rows
 * the scan cannot see; returning their heap TIDs, or not, is harmless.
 */
#include "postgres.h"

#include <math.h>

#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/bufpage.h"
#include "utils/memutils.h"
#include "utils/rel.h"

#include "hnsw/hnsw_int.h"

#define EXACT_MIN_BATCH		1024

/* distances as unsigned codes whose order is the float order, NaN last */
static inline uint64
exact_key(float d, uint32 id)
{
	uint32		u;

	if (isnan(d))
		u = PG_UINT32_MAX;
	else
	{
		memcpy(&u, &d, sizeof(u));
		u = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
	}
	return ((uint64) u << 32) | id;
}

static inline uint32
exact_rand(RHnswExact *x)
{
	/* xorshift32: pivots need not be good random numbers, only not adversarial */
	uint32		r = x->rng;

	r ^= r << 13;
	r ^= r >> 17;
	r ^= r << 5;
	x->rng = r;
	return r;
}

static inline void
swap_entries(RHnswExactEntry *a, int64 i, int64 j)
{
	RHnswExactEntry t = a[i];

	a[i] = a[j];
	a[j] = t;
}

/*
 * Partition a[lo, hi) around a random pivot; returns the pivot's final
 * position p: a[lo, p) < a[p] < a[p + 1, hi) (keys are distinct).
 */
static int64
partition(RHnswExact *x, RHnswExactEntry *a, int64 lo, int64 hi)
{
	int64		p = lo + (int64) (exact_rand(x) % (uint64) (hi - lo));
	uint64		pk;
	int64		store = lo;

	swap_entries(a, p, hi - 1);
	pk = a[hi - 1].key;
	for (int64 i = lo; i < hi - 1; i++)
	{
		if (a[i].key < pk)
		{
			swap_entries(a, i, store);
			store++;
		}
	}
	swap_entries(a, store, hi - 1);
	return store;
}

/* reorder a[0, n) so that a[0, k) are the k smallest keys (0 < k < n) */
static void
select_smallest(RHnswExact *x, RHnswExactEntry *a, int64 n, int64 k)
{
	int64		lo = 0;
	int64		hi = n;

	while (hi - lo > 1)
	{
		int64		p = partition(x, a, lo, hi);

		if (p == k || p == k - 1)
			return;
		if (p < k)
			lo = p + 1;
		else
			hi = p;
	}
}

/* add one element to the batch, shrinking it to half when it is full */
static inline void
batch_add(RHnswExact *x, uint64 key, ItemPointer tid)
{
	if (x->n >= x->alloc)
	{
		if (x->alloc < x->cap)
		{
			x->alloc = Min(x->alloc * 2, x->cap);
			x->a = repalloc_huge(x->a, sizeof(RHnswExactEntry) * x->alloc);
		}
		else
		{
			int64		k = x->cap / 2;

			select_smallest(x, x->a, x->n, k);
			x->n = k;
			/* the largest kept key: everything above it waits for a later pass */
			x->cutoff = x->a[0].key;
			for (int64 i = 1; i < k; i++)
				if (x->a[i].key > x->cutoff)
					x->cutoff = x->a[i].key;
			x->overflow = true;
			/* the element at hand is subject to the new cutoff too */
			if (key > x->cutoff)
				return;
		}
	}
	x->a[x->n].key = key;
	x->a[x->n].tid = *tid;
	x->n++;
}

static inline bool
was_returned(RHnswExact *x, uint32 id)
{
	return id < x->nbits && (x->returned[id >> 3] & (1 << (id & 7))) != 0;
}

/* one pass over the index: the next batch of keys above x->lower */
static void
exact_pass(RHnswExact *x)
{
	const RHnswInfo *info = &x->info;
	BlockNumber nblocks = RelationGetNumberOfBlocks(x->index);
	BufferAccessStrategy strategy = NULL;
	Buffer		next = InvalidBuffer;

	/* like a sequential heap scan: a big index does not flush shared buffers */
	if (nblocks > (BlockNumber) (NBuffers / 4))
		strategy = GetAccessStrategy(BAS_BULKREAD);

	x->n = 0;
	x->next = 0;
	x->nstack = 0;
	x->overflow = false;
	x->cutoff = PG_UINT64_MAX;
	x->passes++;

	for (BlockNumber blk = 1; blk < nblocks; blk++)
	{
		Buffer		buf;
		Page		page;
		OffsetNumber maxoff;
		char	   *ahead = NULL;
		int			done = 0;
		int			step;

		CHECK_FOR_INTERRUPTS();
		buf = next != InvalidBuffer ? next :
			ReadBufferExtended(x->index, MAIN_FORKNUM, blk, RBM_NORMAL, strategy);

		/*
		 * Pin the next page now and pull its memory into the cache while this
		 * one is processed (spread over its slots): the pass is bound by
		 * memory, and the hardware prefetcher stops at every page boundary.
		 * Touching a pinned page without its lock is only a cache hint.
		 */
		next = InvalidBuffer;
		if (blk + 1 < nblocks)
		{
			next = ReadBufferExtended(x->index, MAIN_FORKNUM, blk + 1, RBM_NORMAL, strategy);
			ahead = (char *) BufferGetPage(next);
		}

		LockBuffer(buf, BUFFER_LOCK_SHARE);
		page = BufferGetPage(buf);
		if (PageIsNew(page) || RHnswPageGetOpaque(page)->type != RHNSW_PAGE_SLOTS)
		{
			UnlockReleaseBuffer(buf);
			continue;
		}
		maxoff = PageGetMaxOffsetNumber(page);
		step = (BLCKSZ / 64 + maxoff - 1) / maxoff;
		for (OffsetNumber off = FirstOffsetNumber; off <= maxoff; off++)
		{
			RHnswSlot	s = (RHnswSlot) rhnsw_page_slot(page, off);
			uint32		id;
			uint64		key;

			/* slots lie from the end of the page down: prefetch that way */
			if (ahead)
			{
				for (int i = 0; i < step && done < BLCKSZ / 64; i++, done++)
					__builtin_prefetch(ahead + BLCKSZ - 64 * (done + 1));
			}

			if (s->kind != RHNSW_SLOT_ELEMENT || s->deleted)
				continue;
			id = rhnsw_make_id(info, blk, off);
			if (was_returned(x, id))
				continue;
			key = exact_key(rhnsw_distance(x->metric, x->q, rhnsw_slot_vec(info, s),
										   info->dims), id);
			if (x->have_lower && key <= x->lower)
				continue;
			if (x->overflow && key > x->cutoff)
				continue;
			batch_add(x, key, &s->heaptid);
		}
		UnlockReleaseBuffer(buf);
		x->examined += maxoff;
	}
	if (strategy)
		FreeAccessStrategy(strategy);

	/* incremental quicksort: the stack holds pivot positions, top smallest */
	x->stack[0] = x->n;
	x->nstack = 1;
}

/*
 * Prepare the exact phase. mem is the memory budget in bytes for a batch;
 * returned (nreturned ids) lists the elements already handed out.
 */
void
rhnsw_exact_init(RHnswExact *x, Relation index, const RHnswInfo *info, int metric,
				 const float *q, Size mem, const uint32 *returned, uint32 nreturned)
{
	uint32		maxid = 0;
	BlockNumber nblocks = RelationGetNumberOfBlocks(index);

	memset(x, 0, sizeof(RHnswExact));
	x->index = index;
	x->info = *info;
	x->metric = metric;
	x->q = q;
	x->rng = 0x9E3779B9u;
	x->cap = Max((int64) (mem / sizeof(RHnswExactEntry)), EXACT_MIN_BATCH);
	x->cap &= ~(int64) 1;
	x->alloc = Min(x->cap, (int64) EXACT_MIN_BATCH);
	x->a = palloc(sizeof(RHnswExactEntry) * x->alloc);
	x->capstack = 64;
	x->stack = palloc(sizeof(int64) * x->capstack);

	for (uint32 i = 0; i < nreturned; i++)
		maxid = Max(maxid, returned[i] + 1);
	x->nbits = Max(maxid, (uint32) (Max(nblocks, 1) - 1) * (uint32) info->per_page);
	x->returned = palloc0((x->nbits + 7) / 8 + 1);
	for (uint32 i = 0; i < nreturned; i++)
		x->returned[returned[i] >> 3] |= 1 << (returned[i] & 7);
}

/* the next element in exact order; false when every element was returned */
bool
rhnsw_exact_next(RHnswExact *x, ItemPointer tid)
{
	for (;;)
	{
		if (!x->started)
		{
			exact_pass(x);
			x->started = true;
		}
		if (x->next < x->n)
		{
			int64		idx = x->next;

			/* partition the segment above idx until its smallest is at idx */
			while (x->stack[x->nstack - 1] != idx)
			{
				int64		p = partition(x, x->a, idx, x->stack[x->nstack - 1]);

				if (x->nstack >= x->capstack)
				{
					x->capstack *= 2;
					x->stack = repalloc(x->stack, sizeof(int64) * x->capstack);
				}
				x->stack[x->nstack++] = p;
			}
			x->nstack--;
			x->next++;
			*tid = x->a[idx].tid;
			return true;
		}
		if (!x->overflow)
			return false;
		/* every key up to the cutoff is out: the next pass starts above it */
		x->lower = x->cutoff;
		x->have_lower = true;
		x->started = false;
	}
}
