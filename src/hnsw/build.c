/*
 * build.c
 *	  rec_hnsw: CREATE INDEX. The graph is built in memory, then written
 *	  out page by page.
 *
 * Phases (reported in pg_stat_progress_create_index):
 *	loading tuples	the heap is scanned (in parallel when workers are
 *					available) and every vector is copied into flat arrays;
 *	building graph	participants take element numbers from an atomic
 *					counter and insert them into the graph: flat uint32
 *					neighbour arrays, a spinlock per element held only to
 *					copy or swap a list, an epoch-stamped visited array;
 *	writing index	the graph is made fully reachable and written with
 *					smgrextend, WAL-logged as full pages.
 *
 * Loading everything first means the element count is known, so the
 * participants can share the work through one counter, and the page order
 * can be chosen once the graph is complete.
 *
 * When the vectors do not fit maintenance_work_mem, the graph holds what
 * fits; after it is written the remaining rows are inserted one by one
 * through the ordinary insert path (slower, same result).
 */
#include "postgres.h"

#include <float.h>
#include <math.h>

#include "access/htup_details.h"
#include "access/parallel.h"
#include "access/relscan.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "pgstat.h"
#include "portability/instr_time.h"
#include "storage/bufmgr.h"
#include "storage/condition_variable.h"
#include "storage/smgr.h"
#include "tcop/tcopprot.h"
#include "utils/backend_progress.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"

#include "hnsw/hnsw_int.h"

#define PARALLEL_KEY_SHARED		UINT64CONST(0xB000000000000001)
#define PARALLEL_KEY_AREA		UINT64CONST(0xB000000000000002)
#define PARALLEL_KEY_QUERY		UINT64CONST(0xB000000000000003)

/* state every participant shares (in DSM for a parallel build) */
typedef struct BShared
{
	Oid			heaprelid;
	Oid			indexrelid;
	bool		isconcurrent;
	int			dims;
	int			m;
	int			efc;
	int			metric;
	uint32		cap;
	uint32		upool_cap;
	Size		off_tids;
	Size		off_levels;
	Size		off_vecs;
	Size		off_cnt0;
	Size		off_nbr0;
	Size		off_upper;
	Size		off_upool;
	Size		off_locks;

	slock_t		mutex;
	ConditionVariable cv;
	int			nparticipants;
	int			nloaded;		/* participants done loading */
	int			phase;			/* 1 load, 2 insert */
	int			ninsertdone;
	double		reltuples;
	bool		overflow;
	uint32		n;				/* elements, once loading is over */

	pg_atomic_uint32 nload;
	pg_atomic_uint32 next_insert;
	pg_atomic_uint32 upool_used;
	pg_atomic_uint32 ninserted;

	slock_t		entry_lock;
	uint32		entry;
	int			entry_level;

	bool		angular;		/* give layer 0 angular links too */
} BShared;

#define ParallelTableScanFromBShared(sh) \
	(ParallelTableScanDesc) ((char *) (sh) + BUFFERALIGN(sizeof(BShared)))

typedef struct Cand
{
	float		d;
	uint32		id;
} Cand;

/* one participant's view of the graph, plus its scratch space */
typedef struct BGraph
{
	BShared    *sh;
	Relation	heap;
	Relation	index;
	RHnswInfo	info;
	int			dims;
	int			m;
	int			m0;
	int			efc;
	int			metric;
	bool		parallel;
	bool		leader;

	ItemPointerData *tids;
	uint8	   *levels;
	float	   *vecs;
	uint8	   *cnt0;
	uint32	   *nbr0;
	uint32	   *upper;
	uint32	   *upool;
	slock_t    *locks;

	/* serial build: arrays grow up to this many elements */
	uint32		maxcap;

	/* scratch */
	uint32	   *visit;
	uint32		visitcap;
	uint32		epoch;
	Cand	   *C;
	int			capC;
	Cand	   *W;
	int			capW;
	Cand	   *cands;
	const float **cvecs;
	uint32	   *sel;
	uint32	   *lbuf;
	uint32	   *lbuf2;
	float	   *prevec;
	uint32		exclude;		/* element a search must not see */

	uint32		calibrated;		/* ef_search chosen at build, 0: none */

	/* angular links (sh->angular): 1/|v| of every element, this participant's copy */
	float	   *inv;
	bool		by_angle;		/* searches measure the angle, query scaled by qinv */
	float		qinv;
	/* overflow: rows that did not fit */
	double		skipped;
	double		indtuples;
} BGraph;

static Size
elem_bytes(int dims, int m)
{
	return sizeof(ItemPointerData) + 1 + sizeof(float) * dims + sizeof(float) + 1 +
		sizeof(uint32) * 2 * m + sizeof(uint32) + sizeof(slock_t) +
		sizeof(uint32) +		/* visited array of one participant */
		(sizeof(uint32) * (1 + m) * 2) / Max(m - 1, 1); /* upper pool share */
}

static uint32
upool_cap_for(uint32 cap, int m)
{
	return (uint32) Min((uint64) cap * (1 + m) * 2 / Max(m - 1, 1) + 64 * (1 + m),
						(uint64) PG_UINT32_MAX / 2);
}

/* ---------------------------------------------------------------- layout */

static Size
layout(BShared *sh, uint32 cap)
{
	Size		off = 0;
	int			dims = sh->dims;
	int			m0 = 2 * sh->m;

	sh->cap = cap;
	sh->upool_cap = upool_cap_for(cap, sh->m);
#define PLACE(field, bytes) do { off = MAXALIGN(off); sh->field = off; off += (bytes); } while (0)
	PLACE(off_tids, sizeof(ItemPointerData) * (Size) cap);
	PLACE(off_levels, (Size) cap);
	off = TYPEALIGN(64, off);
	PLACE(off_vecs, sizeof(float) * (Size) dims * cap);
	PLACE(off_cnt0, (Size) cap);
	PLACE(off_nbr0, sizeof(uint32) * (Size) m0 * cap);
	PLACE(off_upper, sizeof(uint32) * (Size) cap);
	PLACE(off_upool, sizeof(uint32) * (Size) sh->upool_cap);
	PLACE(off_locks, sizeof(slock_t) * (Size) cap);
#undef PLACE
	return MAXALIGN(off);
}

static void
attach(BGraph *g, char *base)
{
	BShared    *sh = g->sh;

	g->tids = (ItemPointerData *) (base + sh->off_tids);
	g->levels = (uint8 *) (base + sh->off_levels);
	g->vecs = (float *) (base + sh->off_vecs);
	g->cnt0 = (uint8 *) (base + sh->off_cnt0);
	g->nbr0 = (uint32 *) (base + sh->off_nbr0);
	g->upper = (uint32 *) (base + sh->off_upper);
	g->upool = (uint32 *) (base + sh->off_upool);
	g->locks = (slock_t *) (base + sh->off_locks);
}

/* serial build: separate arrays that can grow */
static void
serial_alloc(BGraph *g, uint32 cap)
{
	BShared    *sh = g->sh;
	uint32		oldcap = sh->cap;
	uint32		oldupool = sh->upool_cap;

#define GROW(ptr, type, per) \
	do { \
		if (ptr == NULL) \
			ptr = (type *) MemoryContextAllocHuge(CurrentMemoryContext, sizeof(type) * (Size) (per) * cap); \
		else \
			ptr = (type *) repalloc_huge(ptr, sizeof(type) * (Size) (per) * cap); \
	} while (0)
	GROW(g->tids, ItemPointerData, 1);
	GROW(g->levels, uint8, 1);
	GROW(g->vecs, float, g->dims);
	GROW(g->cnt0, uint8, 1);
	GROW(g->nbr0, uint32, g->m0);
	GROW(g->upper, uint32, 1);
	GROW(g->locks, slock_t, 1);
#undef GROW
	sh->cap = cap;
	sh->upool_cap = upool_cap_for(cap, g->m);
	if (g->upool == NULL)
		g->upool = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) sh->upool_cap);
	else if (sh->upool_cap > oldupool)
		g->upool = repalloc_huge(g->upool, sizeof(uint32) * (Size) sh->upool_cap);
	for (uint32 i = oldcap; i < cap; i++)
		SpinLockInit(&g->locks[i]);
}

static void
init_scratch(BGraph *g)
{
	g->capC = Max(g->efc * 4, 256);
	g->C = palloc(sizeof(Cand) * g->capC);
	g->capW = g->efc + 2;
	g->W = palloc(sizeof(Cand) * g->capW);
	/* a metric search's efc results, plus as many from an angular search */
	g->cands = palloc(sizeof(Cand) * (2 * g->efc + g->m0 + 2));
	g->cvecs = palloc(sizeof(float *) * (g->efc + g->m0 + 2));
	g->sel = palloc(sizeof(uint32) * (g->m0 + 2));
	g->lbuf = palloc(sizeof(uint32) * (g->m0 + 2));
	g->lbuf2 = palloc(sizeof(uint32) * (g->m0 + 2));
	g->visit = NULL;
	g->visitcap = 0;
	g->epoch = 0;
	g->exclude = RHNSW_INVALID;
}

/* ---------------------------------------------------------------- loading */

static void
load_one(BGraph *g, ItemPointer tid, Datum value)
{
	BShared    *sh = g->sh;
	uint32		i;
	float		norm2;
	float	   *dst;
	int			level;

	if (g->dims == 0)
	{
		/* serial build of a column without a declared dimension */
		g->dims = rhnsw_value_dims(value);
		rec_vector_check_dim(g->dims);
		sh->dims = g->dims;
		rhnsw_info_compute(&g->info, g->dims, g->m, g->efc, g->metric);
		g->maxcap = Max((Size) maintenance_work_mem * 1024 / elem_bytes(g->dims, g->m), 16);
		serial_alloc(g, Min(g->maxcap, 1024));
	}

	i = pg_atomic_fetch_add_u32(&sh->nload, 1);
	if (i >= sh->cap)
	{
		if (!g->parallel && i < g->maxcap)
			serial_alloc(g, (uint32) Min((uint64) sh->cap * 2, (uint64) g->maxcap));
		else
		{
			pg_atomic_fetch_sub_u32(&sh->nload, 1);
			SpinLockAcquire(&sh->mutex);
			sh->overflow = true;
			SpinLockRelease(&sh->mutex);
			g->skipped++;
			return;
		}
	}
	dst = g->vecs + (Size) i * g->dims;
	if (!rhnsw_prepare_vector(g->index, &g->info, g->metric, value, dst, &norm2))
	{
		/*
		 * Cannot index (zero vector under cosine). The slot stays as a hole
		 * with level 255 and is dropped before the graph is built.
		 */
		g->tids[i] = *tid;
		g->levels[i] = 255;
		return;
	}
	g->tids[i] = *tid;
	g->cnt0[i] = 0;
	level = rhnsw_tid_level(&g->info, tid);
	g->upper[i] = RHNSW_INVALID;
	if (level > 0)
	{
		uint32		need = level * (1 + g->m);
		uint32		off = pg_atomic_fetch_add_u32(&sh->upool_used, need);

		if (off + need > sh->upool_cap)
			level = 0;
		else
		{
			g->upper[i] = off;
			for (int l = 0; l < level; l++)
				g->upool[off + l * (1 + g->m)] = 0;
		}
	}
	g->levels[i] = level;
	g->indtuples++;
}

static void
load_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
			  bool tupleIsAlive, void *state)
{
	BGraph	   *g = (BGraph *) state;

	if (isnull[0])
		return;
	load_one(g, tid, values[0]);
	CHECK_FOR_INTERRUPTS();
}

/* drop the holes left by unindexable vectors (serial or leader, after load) */
static uint32
compact(BGraph *g, uint32 n)
{
	uint32		j = 0;

	for (uint32 i = 0; i < n; i++)
	{
		if (g->levels[i] == 255)
			continue;
		if (i != j)
		{
			g->tids[j] = g->tids[i];
			g->levels[j] = g->levels[i];
			memcpy(g->vecs + (Size) j * g->dims, g->vecs + (Size) i * g->dims,
				   sizeof(float) * g->dims);
			g->cnt0[j] = g->cnt0[i];
			g->upper[j] = g->upper[i];
		}
		j++;
	}
	return j;
}

/* ---------------------------------------------------------------- graph */

static inline const float *
gvec(BGraph *g, uint32 id)
{
	return g->vecs + (Size) id * g->dims;
}

static inline float
gdist(BGraph *g, const float *q, uint32 id)
{
	if (g->by_angle)
		return -rec_kernel_dot(q, gvec(g, id), g->dims) * g->qinv * g->inv[id];
	return rhnsw_distance(g->metric, q, gvec(g, id), g->dims);
}

/* the angular distance between two elements */
static inline float
angle_between(BGraph *g, uint32 a, uint32 b)
{
	return -rec_kernel_dot(gvec(g, a), gvec(g, b), g->dims) * g->inv[a] * g->inv[b];
}

/* copy the list of id at layer lc into out; returns its length */
static inline int
get_list(BGraph *g, uint32 id, int lc, uint32 *out)
{
	int			n;

	SpinLockAcquire(&g->locks[id]);
	if (lc == 0)
	{
		n = g->cnt0[id];
		memcpy(out, g->nbr0 + (Size) id * g->m0, sizeof(uint32) * n);
	}
	else
	{
		uint32	   *l = g->upool + g->upper[id] + (lc - 1) * (1 + g->m);

		n = l[0];
		memcpy(out, l + 1, sizeof(uint32) * n);
	}
	SpinLockRelease(&g->locks[id]);
	return n;
}

/* replace the list if it still equals old[0..nold); true on success */
static inline bool
swap_list(BGraph *g, uint32 id, int lc, const uint32 *old, int nold, const uint32 *new, int nnew)
{
	bool		ok = false;
	uint32	   *ids;
	uint32	   *cnt32 = NULL;

	SpinLockAcquire(&g->locks[id]);
	if (lc == 0)
		ids = g->nbr0 + (Size) id * g->m0;
	else
	{
		cnt32 = g->upool + g->upper[id] + (lc - 1) * (1 + g->m);
		ids = cnt32 + 1;
	}
	if ((int) (lc == 0 ? g->cnt0[id] : *cnt32) == nold &&
		(old == NULL || memcmp(ids, old, sizeof(uint32) * nold) == 0))
	{
		memcpy(ids, new, sizeof(uint32) * nnew);
		if (lc == 0)
			g->cnt0[id] = nnew;
		else
			*cnt32 = nnew;
		ok = true;
	}
	SpinLockRelease(&g->locks[id]);
	return ok;
}

static inline void
c_push(BGraph *g, Cand c, int *n)
{
	int			i;

	if (*n >= g->capC)
	{
		g->capC *= 2;
		g->C = repalloc(g->C, sizeof(Cand) * g->capC);
	}
	i = (*n)++;
	while (i > 0)
	{
		int			p = (i - 1) >> 1;

		if (g->C[p].d <= c.d)
			break;
		g->C[i] = g->C[p];
		i = p;
	}
	g->C[i] = c;
}

static inline Cand
c_pop(BGraph *g, int *n)
{
	Cand		top = g->C[0];
	Cand		last = g->C[--(*n)];
	int			i = 0;

	for (;;)
	{
		int			l = 2 * i + 1;
		int			c;

		if (l >= *n)
			break;
		c = (l + 1 < *n && g->C[l + 1].d < g->C[l].d) ? l + 1 : l;
		if (g->C[c].d >= last.d)
			break;
		g->C[i] = g->C[c];
		i = c;
	}
	if (*n > 0)
		g->C[i] = last;
	return top;
}

/* W is a max-heap of the ef best */
static inline void
w_push(BGraph *g, Cand c, int *n)
{
	int			i = (*n)++;

	while (i > 0)
	{
		int			p = (i - 1) >> 1;

		if (g->W[p].d >= c.d)
			break;
		g->W[i] = g->W[p];
		i = p;
	}
	g->W[i] = c;
}

static inline void
w_pop(BGraph *g, int *n)
{
	Cand		last = g->W[--(*n)];
	int			i = 0;

	for (;;)
	{
		int			l = 2 * i + 1;
		int			c;

		if (l >= *n)
			break;
		c = (l + 1 < *n && g->W[l + 1].d > g->W[l].d) ? l + 1 : l;
		if (g->W[c].d <= last.d)
			break;
		g->W[i] = g->W[c];
		i = c;
	}
	if (*n > 0)
		g->W[i] = last;
}

static int
cand_cmp(const void *a, const void *b)
{
	const Cand *x = a;
	const Cand *y = b;

	if (x->d < y->d)
		return -1;
	if (x->d > y->d)
		return 1;
	return (x->id < y->id) ? -1 : (x->id > y->id);
}

static inline void
visit_next_epoch(BGraph *g)
{
	if (++g->epoch == 0)
	{
		memset(g->visit, 0, sizeof(uint32) * g->visitcap);
		g->epoch = 1;
	}
}

/*
 * Layer search from the given entries; leaves the ef best in out[] sorted
 * closest first and returns their number.
 */
static int
search_layer(BGraph *g, const float *q, const Cand *entries, int nentries,
			 int ef, int lc, Cand *out)
{
	int			nC = 0;
	int			nW = 0;
	uint32	   *nb = g->lbuf2;

	visit_next_epoch(g);
	if (g->exclude != RHNSW_INVALID)
		g->visit[g->exclude] = g->epoch;
	for (int i = 0; i < nentries; i++)
	{
		uint32		e = entries[i].id;

		if (g->visit[e] == g->epoch)
			continue;
		g->visit[e] = g->epoch;
		c_push(g, entries[i], &nC);
		w_push(g, entries[i], &nW);
		if (nW > ef)
			w_pop(g, &nW);
	}
	while (nC > 0)
	{
		Cand		c = c_pop(g, &nC);
		int			n;

		if (nW >= ef && c.d > g->W[0].d)
			break;
		n = get_list(g, c.id, lc, nb);
		for (int i = 0; i < n; i++)
		{
			if (g->visit[nb[i]] != g->epoch)
				__builtin_prefetch(gvec(g, nb[i]));
		}
		for (int i = 0; i < n; i++)
		{
			uint32		e = nb[i];
			Cand		nc;

			if (g->visit[e] == g->epoch)
				continue;
			g->visit[e] = g->epoch;
			nc.d = gdist(g, q, e);
			nc.id = e;
			if (nW < ef || nc.d < g->W[0].d)
			{
				c_push(g, nc, &nC);
				w_push(g, nc, &nW);
				if (nW > ef)
					w_pop(g, &nW);
			}
		}
	}
	memcpy(out, g->W, sizeof(Cand) * nW);
	qsort(out, nW, sizeof(Cand), cand_cmp);
	return nW;
}

/* layer-0 search in which element x does not exist (for calibration) */
static int
search_layer_excluding(BGraph *g, const float *q, const Cand *entry, int ef, uint32 x,
					   Cand *out)
{
	int			n;

	if (g->capW < ef + 2)
	{
		g->capW = ef + 2;
		g->W = repalloc(g->W, sizeof(Cand) * g->capW);
	}
	g->exclude = x;
	n = search_layer(g, q, entry, 1, ef, 0, out);
	g->exclude = RHNSW_INVALID;
	return n;
}

/* heuristic selection over sorted candidates c[0..nc) */
static int
select_mem(BGraph *g, const Cand *c, int nc, int k, uint32 *out)
{
	int			nsel = 0;
	int			selidx[256];

	k = Min(k, 256);
	for (int i = 0; i < nc && nsel < k; i++)
	{
		const float *cv = gvec(g, c[i].id);
		bool		good = true;

		for (int j = 0; j < nsel; j++)
		{
			uint32		s = c[selidx[j]].id;

			if (rhnsw_distance(g->metric, cv, gvec(g, s), g->dims) < c[i].d)
			{
				good = false;
				break;
			}
		}
		if (good)
			selidx[nsel++] = i;
	}
	for (int j = 0; j < nsel; j++)
		out[j] = c[selidx[j]].id;
	return nsel;
}

/*
 * The links of element b on layer lc from the candidates c[0..nc), sorted
 * by the metric: the heuristic's picks and, on layer 0 with angular links,
 * up to RHNSW_ANGULAR_LINKS(m) more picked by angle (see
 * RHNSW_META_ANGULAR and rhnsw_select_links, its on-disk twin).
 */
static int
select_links_mem(BGraph *g, uint32 b, const Cand *c, int nc, int k, uint32 *out)
{
	int			n = select_mem(g, c, nc, k, out);
	int			limit;
	int			nang = 0;
	uint32		sel[RHNSW_MAX_M];
	Cand	   *a;

	if (!g->sh->angular || n >= k || nc == 0)
		return n;
	limit = Min(k, n + RHNSW_ANGULAR_LINKS(g->m));
	a = palloc(sizeof(Cand) * nc);
	for (int i = 0; i < nc; i++)
	{
		a[i].id = c[i].id;
		a[i].d = angle_between(g, b, c[i].id);
	}
	qsort(a, nc, sizeof(Cand), cand_cmp);
	for (int i = 0; i < nc && n < limit; i++)
	{
		bool		good = true;

		for (int j = 0; j < n && good; j++)
			good = (out[j] != a[i].id);
		for (int j = 0; j < nang && good; j++)
			if (angle_between(g, a[i].id, sel[j]) < a[i].d)
				good = false;
		if (good)
		{
			sel[nang++] = a[i].id;
			out[n++] = a[i].id;
		}
	}
	pfree(a);
	return n;
}

/* add x to n's layer-lc list, pruning with the heuristic when full */
static void
link_mem(BGraph *g, uint32 n, int lc, uint32 x, float dnx)
{
	int			cap = (lc == 0) ? g->m0 : g->m;
	uint32	   *old = g->lbuf;
	uint32		new[256];

	if (n == x)
		return;
	for (;;)
	{
		int			nold = get_list(g, n, lc, old);
		int			nnew;
		Cand		c[257];
		const float *nv;
		bool		found = false;

		for (int i = 0; i < nold; i++)
			if (old[i] == x)
				return;
		if (nold < cap)
		{
			memcpy(new, old, sizeof(uint32) * nold);
			new[nold] = x;
			if (swap_list(g, n, lc, old, nold, new, nold + 1))
				return;
			continue;
		}
		nv = gvec(g, n);
		for (int i = 0; i < nold; i++)
		{
			c[i].id = old[i];
			c[i].d = rhnsw_distance(g->metric, nv, gvec(g, old[i]), g->dims);
		}
		c[nold].id = x;
		c[nold].d = dnx;
		qsort(c, nold + 1, sizeof(Cand), cand_cmp);
		nnew = (lc == 0) ? select_links_mem(g, n, c, nold + 1, cap, new) :
			select_mem(g, c, nold + 1, cap, new);
		for (int i = 0; i < nnew; i++)
			if (new[i] == x)
				found = true;
		if (!found)
			return;
		if (swap_list(g, n, lc, old, nold, new, nnew))
			return;
	}
}

/*
 * Greedy descent from cur through layers from down to (not including) to:
 * on each layer move to a closer neighbour while there is one. Element x
 * is never stepped on (it is the one being inserted, or the calibration
 * query kept out of its own search).
 */
static Cand
descend_greedy(BGraph *g, const float *q, uint32 x, Cand cur, int from, int to)
{
	for (int lc = from; lc > to; lc--)
	{
		bool		changed = true;

		if (g->levels[cur.id] < lc)
			continue;
		while (changed)
		{
			int			n = get_list(g, cur.id, lc, g->lbuf);

			changed = false;
			for (int i = 0; i < n; i++)
			{
				float		d;

				if (g->lbuf[i] == x)
					continue;
				d = gdist(g, q, g->lbuf[i]);
				if (d < cur.d)
				{
					cur.d = d;
					cur.id = g->lbuf[i];
					changed = true;
				}
			}
		}
	}
	return cur;
}

/*
 * With angular links: search layer 0 by angle from the elements the
 * search by the metric found (res[0..nres)) and add what it finds, so that
 * the angular picks come from x's angular neighbourhood. res has room for
 * efc more; returns the new count, sorted by the metric again.
 */
static int
add_angular_cands(BGraph *g, uint32 x, Cand *res, int nres)
{
	const float *q = gvec(g, x);
	Cand	   *e = palloc(sizeof(Cand) * Max(nres, 1));
	Cand	   *a = palloc(sizeof(Cand) * (g->efc + 2));
	int			na;
	int			n = nres;

	g->by_angle = true;
	g->qinv = g->inv[x];
	for (int i = 0; i < nres; i++)
	{
		e[i].id = res[i].id;
		e[i].d = gdist(g, q, res[i].id);
	}
	na = search_layer(g, q, e, nres, g->efc, 0, a);
	g->by_angle = false;
	for (int i = 0; i < na; i++)
	{
		bool		dup = false;

		for (int j = 0; j < nres && !dup; j++)
			dup = (res[j].id == a[i].id);
		if (dup)
			continue;
		res[n].id = a[i].id;
		res[n].d = gdist(g, q, a[i].id);
		n++;
	}
	qsort(res, n, sizeof(Cand), cand_cmp);
	pfree(e);
	pfree(a);
	return n;
}

/*
 * Give x its own layer-lc list. In a parallel build another participant
 * can link to x before x gets here: its search on layer lc may start from
 * x, found on the layer above, and then pick x as a neighbour, writing
 * itself into x's list. Such links are kept: the list becomes the
 * selection over both, not a blind overwrite that would leave x with
 * only the links others gave it.
 */
static void
set_own_list(BGraph *g, uint32 x, int lc, const uint32 *sel, int nsel)
{
	int			cap = (lc == 0) ? g->m0 : g->m;
	uint32		old[RHNSW_MAX_M * 2 + 1];
	uint32		merged[RHNSW_MAX_M * 4 + 2];
	Cand		c[RHNSW_MAX_M * 4 + 2];

	for (;;)
	{
		int			nold = get_list(g, x, lc, old);
		int			nc = 0;
		int			nm;

		if (nold == 0)
		{
			if (swap_list(g, x, lc, old, 0, sel, nsel))
				return;
			continue;
		}
		for (int i = 0; i < nsel + nold; i++)
		{
			uint32		id = (i < nsel) ? sel[i] : old[i - nsel];
			bool		dup = false;

			for (int j = 0; j < nc && !dup; j++)
				dup = (c[j].id == id);
			if (dup || id == x)
				continue;
			c[nc].id = id;
			c[nc].d = gdist(g, gvec(g, x), id);
			nc++;
		}
		qsort(c, nc, sizeof(Cand), cand_cmp);
		nm = (lc == 0) ? select_links_mem(g, x, c, nc, cap, merged) :
			select_mem(g, c, nc, cap, merged);
		if (swap_list(g, x, lc, old, nold, merged, nm))
			return;
	}
}

static void
insert_mem(BGraph *g, uint32 x)
{
	BShared    *sh = g->sh;
	const float *q = gvec(g, x);
	int			level = g->levels[x];
	uint32		ep;
	int			eplevel;
	Cand		cur;
	Cand	   *res = g->cands;
	int			nres;
	Cand	   *entries;
	int			nentries;

	SpinLockAcquire(&sh->entry_lock);
	ep = sh->entry;
	eplevel = sh->entry_level;
	SpinLockRelease(&sh->entry_lock);

	cur.id = ep;
	cur.d = gdist(g, q, ep);
	/* greedy descent through the layers above the element's level */
	cur = descend_greedy(g, q, x, cur, eplevel, level);

	entries = palloc(sizeof(Cand) * (g->efc + 1));
	entries[0] = cur;
	nentries = 1;

	/*
	 * In a parallel build another participant may already link to x (it
	 * found x through the layers x has joined); x must not find itself.
	 */
	g->exclude = x;
	for (int lc = Min(level, eplevel); lc >= 0; lc--)
	{
		int			cap = (lc == 0) ? g->m0 : g->m;
		int			nsel;

		nres = search_layer(g, q, entries, nentries, g->efc, lc, res);
		if (lc == 0 && sh->angular && g->inv[x] > 0.0f)
			nres = add_angular_cands(g, x, res, nres);
		nsel = (lc == 0) ? select_links_mem(g, x, res, nres, cap, g->sel) :
			select_mem(g, res, nres, cap, g->sel);
		set_own_list(g, x, lc, g->sel, nsel);
		for (int i = 0; i < nsel; i++)
		{
			float		d = 0;

			for (int j = 0; j < nres; j++)
				if (res[j].id == g->sel[i])
					d = res[j].d;
			link_mem(g, g->sel[i], lc, x, d);
		}
		if (lc > 0)
		{
			memcpy(entries, res, sizeof(Cand) * nres);
			nentries = nres;
		}
	}
	g->exclude = RHNSW_INVALID;
	pfree(entries);

	if (level > eplevel)
	{
		SpinLockAcquire(&sh->entry_lock);
		if (level > sh->entry_level)
		{
			sh->entry = x;
			sh->entry_level = level;
		}
		SpinLockRelease(&sh->entry_lock);
	}
}

/* insert elements handed out by the shared counter */
static void
insert_loop(BGraph *g)
{
	BShared    *sh = g->sh;
	uint32		n = sh->n;

	if (g->visitcap < n)
	{
		g->visit = rhnsw_alloc_huge_zero(CurrentMemoryContext, sizeof(uint32) * (Size) n);
		g->visitcap = n;
		g->epoch = 0;
	}
	if (sh->angular && g->inv == NULL)
	{
		g->inv = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(float) * (Size) Max(n, 1));
		for (uint32 i = 0; i < n; i++)
		{
			float		n2 = rec_kernel_dot(gvec(g, i), gvec(g, i), g->dims);

			g->inv[i] = n2 > 0.0f ? 1.0f / sqrtf(n2) : 0.0f;
			if ((i & 65535) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	}
	for (;;)
	{
		uint32		x = pg_atomic_fetch_add_u32(&sh->next_insert, 1);
		uint32		done;

		if (x >= n)
			break;
		insert_mem(g, x);
		done = pg_atomic_add_fetch_u32(&sh->ninserted, 1);
		if (g->leader && (done & 1023) == 0)
			pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, done);
		CHECK_FOR_INTERRUPTS();
	}
}

/* after loading: the entry point */
static void
prepare_graph(BGraph *g, uint32 n)
{
	BShared    *sh = g->sh;

	sh->n = n;
	/* angular links add nothing when every norm is the same (unit vectors) */
	sh->angular = false;
	if (g->metric == RHNSW_METRIC_IP && n > 1 && rhnsw_option_angular(g->index))
	{
		float		lo = FLT_MAX;
		float		hi = 0.0f;

		for (uint32 i = 0; i < n; i++)
		{
			float		n2 = rec_kernel_dot(gvec(g, i), gvec(g, i), g->dims);

			lo = Min(lo, n2);
			hi = Max(hi, n2);
			if ((i & 65535) == 0)
				CHECK_FOR_INTERRUPTS();
		}
		sh->angular = (hi > lo * 1.001f);
	}
	sh->entry = n > 0 ? 0 : RHNSW_INVALID;
	sh->entry_level = n > 0 ? g->levels[0] : -1;
	pg_atomic_write_u32(&sh->next_insert, 1);
	pg_atomic_write_u32(&sh->ninserted, n > 0 ? 1 : 0);
}

/*
 * Every element must be reachable from the entry point on layer 0. The
 * heuristic can leave a few without in-links; link each from the closest
 * reachable element that can take it.
 */
static void
make_reachable(BGraph *g)
{
	BShared    *sh = g->sh;
	uint32		n = sh->n;
	uint8	   *reached;
	uint32	   *queue;
	uint32		qh = 0;
	uint32		qt = 0;
	uint32		norphans = 0;
	uint32	   *nb = palloc(sizeof(uint32) * (g->m0 + 2));
	Cand	   *res = palloc(sizeof(Cand) * (g->efc + 2));

	if (n == 0)
		return;
	reached = rhnsw_alloc_huge_zero(CurrentMemoryContext, n);
	queue = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) n);
	if (g->visitcap < n)
	{
		g->visit = rhnsw_alloc_huge_zero(CurrentMemoryContext, sizeof(uint32) * (Size) n);
		g->visitcap = n;
	}
	reached[sh->entry] = 1;
	queue[qt++] = sh->entry;
	for (uint32 next = 0;;)
	{
		while (qh < qt)
		{
			uint32		e = queue[qh++];
			int			cnt = get_list(g, e, 0, nb);

			for (int i = 0; i < cnt; i++)
			{
				if (!reached[nb[i]])
				{
					reached[nb[i]] = 1;
					queue[qt++] = nb[i];
				}
			}
		}
		while (next < n && reached[next])
			next++;
		if (next >= n)
			break;
		{
			uint32		x = next;
			Cand		entry;
			int			nres;
			bool		done = false;

			CHECK_FOR_INTERRUPTS();
			entry.id = sh->entry;
			entry.d = gdist(g, gvec(g, x), sh->entry);
			nres = search_layer(g, gvec(g, x), &entry, 1, g->efc, 0, res);
			for (int i = 0; i < nres && !done; i++)
			{
				uint32		r = res[i].id;
				int			cnt;

				if (r == x || !reached[r])
					continue;
				cnt = get_list(g, r, 0, nb);
				if (cnt < g->m0)
				{
					nb[cnt] = x;
					swap_list(g, r, 0, NULL, cnt, nb, cnt + 1);
					done = true;
				}
				else
				{
					/*
					 * r points to x instead of its last neighbour w, and x
					 * points to w (appended, or over x's own last entry:
					 * x was unreachable, so nothing reached depended on
					 * x's links).
					 */
					uint32		w = nb[cnt - 1];
					int			xc = get_list(g, x, 0, g->lbuf);
					bool		has = (w == x);

					for (int j = 0; j < xc && !has; j++)
						has = (g->lbuf[j] == w);
					if (!has)
					{
						if (xc < g->m0)
							g->lbuf[xc++] = w;
						else
							g->lbuf[xc - 1] = w;
						swap_list(g, x, 0, NULL, g->cnt0[x], g->lbuf, xc);
					}
					nb[cnt - 1] = x;
					swap_list(g, r, 0, NULL, cnt, nb, cnt);
					done = true;
				}
			}
			if (!done)
			{
				/* no reachable candidate at all: the entry point takes x */
				int			cnt = get_list(g, sh->entry, 0, nb);
				int			oldcnt = cnt;

				if (cnt < g->m0)
					nb[cnt++] = x;
				else
				{
					uint32		w = nb[cnt - 1];
					int			xc = get_list(g, x, 0, g->lbuf);

					if (xc < g->m0)
						g->lbuf[xc++] = w;
					else if (xc > 0)
						g->lbuf[xc - 1] = w;
					swap_list(g, x, 0, NULL, g->cnt0[x], g->lbuf, xc);
					nb[cnt - 1] = x;
				}
				swap_list(g, sh->entry, 0, NULL, oldcnt, nb, cnt);
			}
			reached[x] = 1;
			queue[qt++] = x;
			norphans++;
		}
	}
	ereport(DEBUG1,
			(errmsg("rec_hnsw build: linked %u elements that the graph did not reach", norphans)));
	pfree(reached);
	pfree(queue);
}


/*
 * Calibrate the default search width: for a sample of elements used as
 * queries (each kept out of its own search), compare the graph search with
 * the exact top 10 and keep the smallest ef_search on a ladder that reaches
 * RHNSW_TARGET_RECALL. Scans use it while rec.hnsw_ef_search is 0 (auto).
 */
#define RHNSW_TARGET_RECALL 0.96
#define RHNSW_CAL_K 10

static uint32
calibrate(BGraph *g)
{
	static const int ladder[] = {10, 16, 20, 24, 32, 40, 48, 64, 80, 100, 128, 160, 200,
	256, 320, 400, 500, 640, 800, 1000};
	BShared    *sh = g->sh;
	uint32		n = sh->n;
	int			nsample = (n > 500000) ? 100 : 200;
	uint32	   *truth;
	uint32	   *sample;
	Cand	   *res = palloc(sizeof(Cand) * 1001);
	Cand	   *top = palloc(sizeof(Cand) * (RHNSW_CAL_K + 1));
	uint32		chosen = 1000;
	instr_time	c0;
	instr_time	c1;

	if (n < 1000)
		return 0;				/* small: the fixed default is plenty */
	nsample = Min(nsample, (int) (n / 10));
	truth = palloc(sizeof(uint32) * nsample * RHNSW_CAL_K);
	sample = palloc(sizeof(uint32) * nsample);
	if (g->visitcap < n)
	{
		g->visit = rhnsw_alloc_huge_zero(CurrentMemoryContext, sizeof(uint32) * (Size) n);
		g->visitcap = n;
	}

	INSTR_TIME_SET_CURRENT(c0);
	/* exact answers, by brute force */
	for (int s = 0; s < nsample; s++)
	{
		uint32		x = (uint32) (((uint64) s * 2654435761u) % n);
		const float *q = gvec(g, x);
		int			nt = 0;

		sample[s] = x;
		for (uint32 j = 0; j < n; j++)
		{
			float		d;
			int			k;

			if (j == x)
				continue;
			d = gdist(g, q, j);
			if (nt == RHNSW_CAL_K && d >= top[nt - 1].d)
				continue;
			k = (nt < RHNSW_CAL_K) ? nt++ : nt - 1;
			while (k > 0 && top[k - 1].d > d)
			{
				top[k] = top[k - 1];
				k--;
			}
			top[k].d = d;
			top[k].id = j;
		}
		for (int k = 0; k < RHNSW_CAL_K; k++)
			truth[s * RHNSW_CAL_K + k] = top[k].id;
		CHECK_FOR_INTERRUPTS();
	}

	for (int li = 0; li < (int) lengthof(ladder); li++)
	{
		int			ef = ladder[li];
		int			hits = 0;

		for (int s = 0; s < nsample; s++)
		{
			uint32		x = sample[s];
			const float *q = gvec(g, x);
			Cand		cur;
			int			nres;
			int			got = 0;

			/* greedy descent, never through x itself */
			cur.id = sh->entry;
			if (cur.id == x)
				cur.id = g->nbr0[(Size) x * g->m0];
			cur.d = gdist(g, q, cur.id);
			cur = descend_greedy(g, q, x, cur, sh->entry_level, 0);
			/* layer 0 with x kept out: mark it visited up front */
			nres = search_layer_excluding(g, q, &cur, ef, x, res);
			for (int i = 0; i < nres && i < RHNSW_CAL_K; i++)
				for (int k = 0; k < RHNSW_CAL_K; k++)
					if (res[i].id == truth[s * RHNSW_CAL_K + k])
						got++;
			hits += got;
		}
		if ((double) hits / (nsample * RHNSW_CAL_K) >= RHNSW_TARGET_RECALL)
		{
			chosen = ef;
			break;
		}
		CHECK_FOR_INTERRUPTS();
	}
	INSTR_TIME_SET_CURRENT(c1);
	INSTR_TIME_SUBTRACT(c1, c0);
	ereport(DEBUG1,
			(errmsg("rec_hnsw build: calibrated ef_search %u on %d sample queries (%.3f s)", chosen, nsample, INSTR_TIME_GET_DOUBLE(c1))));
	pfree(res);
	pfree(top);
	pfree(truth);
	pfree(sample);
	return chosen;
}

/* ---------------------------------------------------------------- writing */

typedef struct PageWriter
{
	Relation	index;
	ForkNumber	fork;
	bool		wal;
	BlockNumber next;
	int			npending;
	BlockNumber blknos[XLR_MAX_BLOCK_ID];
	Page		pages[XLR_MAX_BLOCK_ID];
	PGAlignedBlock *bufs;
} PageWriter;

static void
pw_flush(PageWriter *pw)
{
	if (pw->npending == 0)
		return;
	if (pw->wal)
		log_newpages(&pw->index->rd_node, pw->fork, pw->npending, pw->blknos, pw->pages, true);
	for (int i = 0; i < pw->npending; i++)
	{
		PageSetChecksumInplace(pw->pages[i], pw->blknos[i]);
		smgrextend(RelationGetSmgr(pw->index), pw->fork, pw->blknos[i], pw->pages[i], true);
	}
	pw->npending = 0;
}

static Page
pw_page(PageWriter *pw)
{
	if (pw->npending == XLR_MAX_BLOCK_ID)
		pw_flush(pw);
	pw->blknos[pw->npending] = pw->next++;
	pw->pages[pw->npending] = pw->bufs[pw->npending].data;
	return pw->pages[pw->npending++];
}

static void
pw_init(PageWriter *pw, Relation index, ForkNumber fork)
{
	pw->index = index;
	pw->fork = fork;
	pw->wal = RelationNeedsWAL(index) || fork == INIT_FORKNUM;
	pw->next = 0;
	pw->npending = 0;
	pw->bufs = palloc(sizeof(PGAlignedBlock) * XLR_MAX_BLOCK_ID);
	for (int i = 0; i < XLR_MAX_BLOCK_ID; i++)
		pw->pages[i] = pw->bufs[i].data;
}

static void
pw_finish(PageWriter *pw)
{
	pw_flush(pw);
	if (pw->wal)
		smgrimmedsync(RelationGetSmgr(pw->index), pw->fork);
}

/*
 * Page-aware order: pages are filled with an element, then its neighbours,
 * then theirs, so that elements close in the graph share pages and a
 * search touches fewer of them. Seeds are taken in breadth-first order
 * from the entry point. Returns perm[old id] = new id.
 */
static uint32 *
page_order(BGraph *g, uint32 n, int per_page)
{
	uint32	   *perm = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) n);
	uint32	   *inv = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) n);
	uint32	   *bfs = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) n);
	uint8	   *seen = rhnsw_alloc_huge_zero(CurrentMemoryContext, n);
	uint32		qh = 0;
	uint32		qt = 0;
	uint32		pos = 0;

	for (uint32 i = 0; i < n; i++)
		perm[i] = RHNSW_INVALID;
	/* breadth-first order of all elements (unreached ones appended) */
	for (uint32 start = g->sh->entry, next = 0; qt < n;)
	{
		if (!seen[start])
		{
			seen[start] = 1;
			bfs[qt++] = start;
		}
		while (qh < qt)
		{
			uint32		e = bfs[qh++];
			uint32	   *l = g->nbr0 + (Size) e * g->m0;

			for (int i = 0; i < g->cnt0[e]; i++)
			{
				if (!seen[l[i]])
				{
					seen[l[i]] = 1;
					bfs[qt++] = l[i];
				}
			}
		}
		while (next < n && seen[next])
			next++;
		if (next >= n)
			break;
		start = next;
	}
	for (uint32 b = 0; b < qt && pos < n; b++)
	{
		uint32		seed = bfs[b];
		uint32		k;

		if (perm[seed] != RHNSW_INVALID)
			continue;
		perm[seed] = pos;
		inv[pos++] = seed;
		k = pos - 1;
		while (pos % per_page != 0 && k < pos)
		{
			uint32		e = inv[k++];
			uint32	   *l = g->nbr0 + (Size) e * g->m0;

			for (int i = 0; i < g->cnt0[e] && pos % per_page != 0; i++)
			{
				if (perm[l[i]] == RHNSW_INVALID)
				{
					perm[l[i]] = pos;
					inv[pos++] = l[i];
				}
			}
		}
		if ((b & 4095) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(inv);
	pfree(bfs);
	pfree(seen);
	return perm;
}

static void
write_graph(BGraph *g, ForkNumber fork, int dims_known)
{
	BShared    *sh = g->sh;
	uint32		n = sh->n;
	RHnswInfo  *info = &g->info;
	uint32	   *urank;
	uint32	   *uowner;
	uint32	   *perm;
	uint32	   *inv;
	uint32		nu = 0;
	uint32		total;
	uint32		npages;
	PageWriter	pw;
	Page		page;
	RHnswMetaData *mp;
	char	   *slotbuf;

	pw_init(&pw, g->index, fork);
	page = pw_page(&pw);
	rhnsw_init_meta(page, dims_known, g->m, g->efc, g->metric, dims_known ? info : NULL);
	mp = RHnswPageGetMeta(page);
	if (n > 0)
	{
		mp->entry = sh->entry;
		mp->entry_level = sh->entry_level;
		mp->ef_search = g->calibrated;
	}
	if (n > 0 ? !sh->angular : !rhnsw_option_angular(g->index))
		mp->flags &= ~RHNSW_META_ANGULAR;
	if (n == 0)
	{
		pw_finish(&pw);
		return;
	}

	perm = page_order(g, n, info->per_page);
	inv = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) n);
	for (uint32 i = 0; i < n; i++)
		inv[perm[i]] = i;
	mp->entry = perm[sh->entry];
	urank = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) n);
	uowner = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(uint32) * (Size) n);
	for (uint32 j = 0; j < n; j++)
	{
		uint32		i = inv[j];

		if (g->levels[i] > 0)
		{
			uowner[nu] = i;
			urank[i] = n + nu++;
		}
		else
			urank[i] = RHNSW_INVALID;
	}
	total = n + nu;
	npages = (total + info->per_page - 1) / info->per_page;
	slotbuf = palloc0(info->slot_size);

	for (uint32 p = 0; p < npages; p++)
	{
		RHnswPageOpaque op;

		page = pw_page(&pw);
		rhnsw_init_page(page, RHNSW_PAGE_SLOTS);
		op = RHnswPageGetOpaque(page);
		for (int k = 0; k < info->per_page; k++)
		{
			uint32		id = p * info->per_page + k;

			memset(slotbuf, 0, info->slot_size);
			if (id < n)
			{
				RHnswSlot	s = (RHnswSlot) slotbuf;
				uint32		old = inv[id];
				const float *v = gvec(g, old);
				const uint32 *l = g->nbr0 + (Size) old * g->m0;

				s->kind = RHNSW_SLOT_ELEMENT;
				s->level = g->levels[old];
				s->count0 = g->cnt0[old];
				s->heaptid = g->tids[old];
				s->upper = urank[old];
				s->norm2 = rec_kernel_dot(v, v, dims_known);
				for (int i = 0; i < s->count0; i++)
					rhnsw_slot_nbrs(s)[i] = perm[l[i]];
				memcpy(rhnsw_slot_vec(info, s), v, sizeof(float) * dims_known);
			}
			else if (id < total)
			{
				/* UPPER slots follow the elements, in element order */
				RHnswUpper	u = (RHnswUpper) slotbuf;
				uint32		owner = uowner[id - n];

				u->kind = RHNSW_SLOT_UPPER;
				u->nlevels = g->levels[owner];
				u->owner = perm[owner];
				for (int lc = 1; lc <= u->nlevels; lc++)
				{
					uint32	   *l = g->upool + g->upper[owner] + (lc - 1) * (1 + g->m);

					rhnsw_upper_counts(u)[lc - 1] = l[0];
					for (uint32 i = 0; i < l[0]; i++)
						rhnsw_upper_ids(info, u, lc)[i] = perm[l[1 + i]];
				}
			}
			else
				op->nfree++;
			if (PageAddItem(page, (Item) slotbuf, info->slot_size, InvalidOffsetNumber,
							false, false) == InvalidOffsetNumber)
				elog(ERROR, "could not add slot to rec_hnsw page");
		}
		if ((p & 255) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pw_finish(&pw);
	pfree(urank);
	pfree(uowner);
	pfree(perm);
	pfree(inv);
	pfree(slotbuf);
}

/* ---------------------------------------------------------------- parallel */

static void
participate_load(BGraph *g, ParallelTableScanDesc pscan, IndexInfo *indexInfo, bool progress)
{
	BShared    *sh = g->sh;
	TableScanDesc scan = table_beginscan_parallel(g->heap, pscan);
	double		reltuples;

	reltuples = table_index_build_scan(g->heap, g->index, indexInfo, true, progress,
									   load_callback, (void *) g, scan);
	SpinLockAcquire(&sh->mutex);
	sh->reltuples += reltuples;
	sh->nloaded++;
	SpinLockRelease(&sh->mutex);
	ConditionVariableBroadcast(&sh->cv);
}

static void
wait_for(BShared *sh, int *field, int value)
{
	for (;;)
	{
		int			v;

		SpinLockAcquire(&sh->mutex);
		v = *field;
		SpinLockRelease(&sh->mutex);
		if (v >= value)
			break;
		ConditionVariableSleep(&sh->cv, WAIT_EVENT_PARALLEL_CREATE_INDEX_SCAN);
	}
	ConditionVariableCancelSleep();
}

static void
participate_insert(BGraph *g)
{
	BShared    *sh = g->sh;

	insert_loop(g);
	SpinLockAcquire(&sh->mutex);
	sh->ninsertdone++;
	SpinLockRelease(&sh->mutex);
	ConditionVariableBroadcast(&sh->cv);
}

static void
bgraph_common_init(BGraph *g, Relation heap, Relation index, BShared *sh)
{
	memset(g, 0, sizeof(BGraph));
	g->sh = sh;
	g->heap = heap;
	g->index = index;
	g->dims = sh->dims;
	g->m = sh->m;
	g->m0 = 2 * sh->m;
	g->efc = sh->efc;
	g->metric = sh->metric;
	if (g->dims > 0)
		rhnsw_info_compute(&g->info, g->dims, g->m, g->efc, g->metric);
	init_scratch(g);
}

PGDLLEXPORT void rec_hnsw_parallel_build_main(dsm_segment *seg, shm_toc *toc);

void
rec_hnsw_parallel_build_main(dsm_segment *seg, shm_toc *toc)
{
	BShared    *sh;
	char	   *area;
	char	   *query;
	Relation	heap;
	Relation	index;
	LOCKMODE	heaplock;
	LOCKMODE	indexlock;
	IndexInfo  *indexInfo;
	BGraph		g;

	query = shm_toc_lookup(toc, PARALLEL_KEY_QUERY, true);
	debug_query_string = query;
	pgstat_report_activity(STATE_RUNNING, debug_query_string);

	sh = shm_toc_lookup(toc, PARALLEL_KEY_SHARED, false);
	area = shm_toc_lookup(toc, PARALLEL_KEY_AREA, false);
	if (!sh->isconcurrent)
	{
		heaplock = ShareLock;
		indexlock = AccessExclusiveLock;
	}
	else
	{
		heaplock = ShareUpdateExclusiveLock;
		indexlock = RowExclusiveLock;
	}
	heap = table_open(sh->heaprelid, heaplock);
	index = index_open(sh->indexrelid, indexlock);
	indexInfo = BuildIndexInfo(index);
	indexInfo->ii_Concurrent = sh->isconcurrent;

	bgraph_common_init(&g, heap, index, sh);
	g.parallel = true;
	attach(&g, area);

	participate_load(&g, ParallelTableScanFromBShared(sh), indexInfo, false);
	wait_for(sh, &sh->phase, 2);
	participate_insert(&g);

	index_close(index, indexlock);
	table_close(heap, heaplock);
}

static int
plan_workers(Relation heap, Relation index)
{
	int			n = plan_create_index_workers(RelationGetRelid(heap), RelationGetRelid(index));

	if (n == 0)
		return 0;
	n = RelationGetParallelWorkers(heap, -1);
	if (n != -1)
		return Min(n, max_parallel_maintenance_workers);
	return max_parallel_maintenance_workers;
}

static uint32
estimate_cap(Relation heap, int dims, int m)
{
	BlockNumber pages;
	double		tuples;
	double		allvisfrac;
	double		want;
	double		fit = (double) maintenance_work_mem * 1024.0 / elem_bytes(dims, m);

	/*
	 * The planner's estimate can be far too low (statistics taken before
	 * many inserts), and a parallel build cannot grow its shared graph; so
	 * take the larger of it and an upper bound from the table's size: no
	 * row is smaller than its vector plus a tuple header and a line
	 * pointer. Shared memory is only touched as it is used.
	 */
	table_relation_estimate_size(heap, NULL, &pages, &tuples, &allvisfrac);
	tuples = Max(tuples, (double) RelationGetNumberOfBlocks(heap) *
				 ((BLCKSZ - SizeOfPageHeaderData) /
				  (double) (MAXALIGN(SizeofHeapTupleHeader + REC_VECTOR_SIZE(dims)) + sizeof(ItemIdData))));
	want = tuples * 1.1 + 1024;
	want = Min(want, fit);
	want = Min(want, (double) (PG_UINT32_MAX / 4));
	return (uint32) Max(want, 16);
}

/* ---------------------------------------------------------------- overflow */

static int
tid_cmp(const void *a, const void *b)
{
	return ItemPointerCompare((ItemPointer) a, (ItemPointer) b);
}

typedef struct OverflowState
{
	ItemPointerData *loaded;
	uint32		nloaded;
	RHnswInfo	info;
	int			metric;
	double		inserted;
	float	   *vec;
	MemoryContext tmpctx;		/* reset after each row */
} OverflowState;

static void
overflow_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull,
				  bool tupleIsAlive, void *state)
{
	OverflowState *os = (OverflowState *) state;
	float		norm2;

	if (isnull[0])
		return;
	if (bsearch(tid, os->loaded, os->nloaded, sizeof(ItemPointerData), tid_cmp) != NULL)
		return;
	if (!rhnsw_prepare_vector(index, &os->info, os->metric, values[0], os->vec, &norm2))
		return;
	/* the scan calls us in its caller's context: an insert's searches go here */
	{
		MemoryContext old = MemoryContextSwitchTo(os->tmpctx);

		rhnsw_insert_vector(index, os->vec, norm2, tid, true);
		MemoryContextSwitchTo(old);
		MemoryContextReset(os->tmpctx);
	}
	os->inserted++;
	CHECK_FOR_INTERRUPTS();
}

/* ---------------------------------------------------------------- entry */

IndexBuildResult *
rhnsw_build(Relation heap, Relation index, IndexInfo *indexInfo)
{
	IndexBuildResult *result = palloc0(sizeof(IndexBuildResult));
	BShared		local_sh;
	BShared    *sh = &local_sh;
	BGraph		g;
	int			m;
	int			efc;
	int			metric;
	int			typmod;
	int			nworkers = 0;
	ParallelContext *pcxt = NULL;
	Snapshot	snapshot = NULL;
	double		reltuples = 0;
	uint32		n;
	MemoryContext buildctx;
	MemoryContext oldctx;
	instr_time	t_start;
	instr_time	t_loaded;
	instr_time	t_built;
	instr_time	t_written;

	INSTR_TIME_SET_CURRENT(t_start);
	if (RelationGetNumberOfBlocks(index) != 0)
		elog(ERROR, "index \"%s\" already contains data", RelationGetRelationName(index));

	rhnsw_options(index, &m, &efc);
	if (efc < 2 * m)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ef_construction must be at least 2 * m"),
				 errdetail("m = %d, ef_construction = %d.", m, efc)));
	metric = rhnsw_index_metric(index);
	typmod = TupleDescAttr(RelationGetDescr(index), 0)->atttypmod;
	if (typmod > 0)
		rec_vector_check_dim(typmod);

	buildctx = AllocSetContextCreate(CurrentMemoryContext, "rec_hnsw build",
									 ALLOCSET_DEFAULT_SIZES);
	oldctx = MemoryContextSwitchTo(buildctx);

	memset(sh, 0, sizeof(BShared));
	sh->heaprelid = RelationGetRelid(heap);
	sh->indexrelid = RelationGetRelid(index);
	sh->isconcurrent = indexInfo->ii_Concurrent;
	sh->dims = typmod > 0 ? typmod : 0;
	sh->m = m;
	sh->efc = efc;
	sh->metric = metric;

	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, RHNSW_PHASE_LOAD);

	if (sh->dims > 0)
	{
		RHnswInfo	tmp;

		rhnsw_info_compute(&tmp, sh->dims, m, efc, metric);	/* errors early */
		nworkers = plan_workers(heap, index);
	}

	if (nworkers > 0)
	{
		Size		estshared;
		Size		estarea;
		uint32		cap = estimate_cap(heap, sh->dims, m);
		int			querylen = debug_query_string ? strlen(debug_query_string) : 0;

		EnterParallelMode();
		pcxt = CreateParallelContext("rec", "rec_hnsw_parallel_build_main", nworkers);
		snapshot = sh->isconcurrent ? RegisterSnapshot(GetTransactionSnapshot()) : SnapshotAny;
		estshared = add_size(BUFFERALIGN(sizeof(BShared)), table_parallelscan_estimate(heap, snapshot));
		estarea = layout(sh, cap);
		shm_toc_estimate_chunk(&pcxt->estimator, estshared);
		shm_toc_estimate_chunk(&pcxt->estimator, estarea);
		shm_toc_estimate_chunk(&pcxt->estimator, querylen + 1);
		shm_toc_estimate_keys(&pcxt->estimator, 3);
		InitializeParallelDSM(pcxt);
		if (pcxt->seg == NULL)
		{
			if (IsMVCCSnapshot(snapshot))
				UnregisterSnapshot(snapshot);
			DestroyParallelContext(pcxt);
			ExitParallelMode();
			pcxt = NULL;
		}
		else
		{
			BShared    *dsh = shm_toc_allocate(pcxt->toc, estshared);
			char	   *area = shm_toc_allocate(pcxt->toc, estarea);
			char	   *q = shm_toc_allocate(pcxt->toc, querylen + 1);

			memcpy(dsh, sh, sizeof(BShared));
			sh = dsh;
			SpinLockInit(&sh->mutex);
			SpinLockInit(&sh->entry_lock);
			ConditionVariableInit(&sh->cv);
			pg_atomic_init_u32(&sh->nload, 0);
			pg_atomic_init_u32(&sh->next_insert, 0);
			pg_atomic_init_u32(&sh->upool_used, 0);
			pg_atomic_init_u32(&sh->ninserted, 0);
			sh->phase = 1;
			table_parallelscan_initialize(heap, ParallelTableScanFromBShared(sh), snapshot);
			for (uint32 i = 0; i < cap; i++)
				SpinLockInit((slock_t *) (area + sh->off_locks) + i);
			if (querylen)
				memcpy(q, debug_query_string, querylen);
			q[querylen] = '\0';
			shm_toc_insert(pcxt->toc, PARALLEL_KEY_SHARED, sh);
			shm_toc_insert(pcxt->toc, PARALLEL_KEY_AREA, area);
			shm_toc_insert(pcxt->toc, PARALLEL_KEY_QUERY, q);
			LaunchParallelWorkers(pcxt);
			sh->nparticipants = pcxt->nworkers_launched + 1;
			ereport(DEBUG1,
					(errmsg("rec_hnsw build: %d parallel workers launched of %d planned",
							pcxt->nworkers_launched, nworkers)));
			bgraph_common_init(&g, heap, index, sh);
			g.parallel = true;
			g.leader = true;
			attach(&g, area);
			participate_load(&g, ParallelTableScanFromBShared(sh), indexInfo, true);
			wait_for(sh, &sh->nloaded, sh->nparticipants);
		}
	}

	if (pcxt == NULL)
	{
		sh = &local_sh;
		memset(sh, 0, sizeof(BShared));
		sh->heaprelid = RelationGetRelid(heap);
		sh->indexrelid = RelationGetRelid(index);
		sh->dims = typmod > 0 ? typmod : 0;
		sh->m = m;
		sh->efc = efc;
		sh->metric = metric;
		SpinLockInit(&sh->mutex);
		SpinLockInit(&sh->entry_lock);
		pg_atomic_init_u32(&sh->nload, 0);
		pg_atomic_init_u32(&sh->next_insert, 0);
		pg_atomic_init_u32(&sh->upool_used, 0);
		pg_atomic_init_u32(&sh->ninserted, 0);
		bgraph_common_init(&g, heap, index, sh);
		g.leader = true;
		if (g.dims > 0)
		{
			g.maxcap = Max((Size) maintenance_work_mem * 1024 / elem_bytes(g.dims, m), 16);
			serial_alloc(&g, Min(estimate_cap(heap, g.dims, m), g.maxcap));
		}
		sh->reltuples = table_index_build_scan(heap, index, indexInfo, true, true,
											   load_callback, (void *) &g, NULL);
		/* dims may have been learnt from the first row */
		if (g.dims > 0 && g.info.dims == 0)
			rhnsw_info_compute(&g.info, g.dims, m, efc, metric);
	}
	reltuples = sh->reltuples;
	INSTR_TIME_SET_CURRENT(t_loaded);

	n = compact(&g, Min(pg_atomic_read_u32(&sh->nload), sh->cap));

	/* build the graph */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, RHNSW_PHASE_GRAPH);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_TOTAL, n);
	if (g.dims > 0)
		prepare_graph(&g, n);
	if (pcxt != NULL)
	{
		SpinLockAcquire(&sh->mutex);
		sh->phase = 2;
		SpinLockRelease(&sh->mutex);
		ConditionVariableBroadcast(&sh->cv);
		participate_insert(&g);
		wait_for(sh, &sh->ninsertdone, sh->nparticipants);
	}
	else if (n > 0)
		insert_loop(&g);
	pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, n);
	INSTR_TIME_SET_CURRENT(t_built);

	/* write */
	pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, RHNSW_PHASE_WRITE);
	if (n > 0)
	{
		make_reachable(&g);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, RHNSW_PHASE_CALIBRATE);
		g.calibrated = calibrate(&g);
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, RHNSW_PHASE_WRITE);
	}
	write_graph(&g, MAIN_FORKNUM, g.dims);
	result->heap_tuples = reltuples;
	result->index_tuples = n;
	INSTR_TIME_SET_CURRENT(t_written);
	INSTR_TIME_SUBTRACT(t_written, t_built);
	INSTR_TIME_SUBTRACT(t_built, t_loaded);
	INSTR_TIME_SUBTRACT(t_loaded, t_start);
	ereport(DEBUG1,
			(errmsg("rec_hnsw build: %u elements; load %.3f s, graph %.3f s, write %.3f s",
					n, INSTR_TIME_GET_DOUBLE(t_loaded), INSTR_TIME_GET_DOUBLE(t_built),
					INSTR_TIME_GET_DOUBLE(t_written))));

	/* rows that did not fit in memory go in one by one */
	if (sh->overflow)
	{
		OverflowState os;
		double		skipped;

		if (pcxt != NULL)
			skipped = reltuples - n;
		else
			skipped = g.skipped;
		ereport(NOTICE,
				(errmsg("rec_hnsw graph did not fit into maintenance_work_mem after %u tuples", n),
				 errdetail("About %.0f more rows are inserted one by one, which is much slower.", skipped),
				 errhint("Increase maintenance_work_mem to build faster.")));
		pgstat_progress_update_param(PROGRESS_CREATEIDX_SUBPHASE, RHNSW_PHASE_OVERFLOW);
		os.nloaded = n;
		os.loaded = MemoryContextAllocHuge(CurrentMemoryContext, sizeof(ItemPointerData) * (Size) Max(n, 1));
		memcpy(os.loaded, g.tids, sizeof(ItemPointerData) * n);
		qsort(os.loaded, n, sizeof(ItemPointerData), tid_cmp);
		os.info = g.info;
		os.metric = metric;
		os.inserted = 0;
		os.vec = palloc(sizeof(float) * g.dims);
		os.tmpctx = AllocSetContextCreate(CurrentMemoryContext, "rec_hnsw overflow insert",
										  ALLOCSET_DEFAULT_SIZES);
		if (pcxt != NULL)
		{
			WaitForParallelWorkersToFinish(pcxt);
			if (IsMVCCSnapshot(snapshot))
				UnregisterSnapshot(snapshot);
			DestroyParallelContext(pcxt);
			ExitParallelMode();
			pcxt = NULL;
		}
		table_index_build_scan(heap, index, indexInfo, true, false,
							   overflow_callback, (void *) &os, NULL);
		MemoryContextDelete(os.tmpctx);
		result->index_tuples += os.inserted;
	}

	if (pcxt != NULL)
	{
		WaitForParallelWorkersToFinish(pcxt);
		if (IsMVCCSnapshot(snapshot))
			UnregisterSnapshot(snapshot);
		DestroyParallelContext(pcxt);
		ExitParallelMode();
	}

	MemoryContextSwitchTo(oldctx);
	MemoryContextDelete(buildctx);
	return result;
}

void
rhnsw_buildempty(Relation index)
{
	int			m;
	int			efc;
	int			metric = rhnsw_index_metric(index);
	int			typmod = TupleDescAttr(RelationGetDescr(index), 0)->atttypmod;
	PageWriter	pw;
	Page		page;
	RHnswInfo	info;

	rhnsw_options(index, &m, &efc);
	if (typmod > 0)
		rhnsw_info_compute(&info, typmod, m, efc, metric);
	pw_init(&pw, index, INIT_FORKNUM);
	page = pw_page(&pw);
	rhnsw_init_meta(page, typmod > 0 ? typmod : 0, m, efc, metric, typmod > 0 ? &info : NULL);
	if (!rhnsw_option_angular(index))
		RHnswPageGetMeta(page)->flags &= ~RHNSW_META_ANGULAR;
	pw_finish(&pw);
}
