/*
 * worker.c
 *	  The training worker: a background worker (one per database at a time)
 *	  that trains the database's queued jobs one after another.
 *
 * A job goes through these phases, shown in rec.training_progress:
 *
 *	loading		runs the job's source query as the role that queued it, in a
 *				read-only transaction, streaming rows through a DestReceiver
 *				into dense id maps and a coordinate list (no per-row SPI);
 *	preparing	builds the user-by-item and item-by-user CSR matrices
 *				(repeated pairs summed, ids in canonical order);
 *	training	runs the engine (engine.c) on its own threads;
 *	evaluating	(holdout) ranks each held-out item among all items;
 *	writing		creates the model's factor tables and fills them in bulk;
 *	indexing	indexes the item factors, when rec_hnsw is installed;
 *
 * and the transaction that wrote the tables also marks the model ready, so
 * nothing of a job is visible until all of it is. Any error (including
 * rec.cancel(), which sets a flag and sends SIGINT, and a shutdown, whose
 * SIGTERM is turned into a query cancel) rolls that back, and the job is
 * recorded as failed with its error text. A job that was training when the
 * server crashed is marked failed by the next worker in that database.
 *
 * This file is compiled into rec_train.so with the engine, which links
 * OpenBLAS; only this worker loads it.
 */
#include "postgres.h"

#include <fcntl.h>
#include <float.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <unistd.h>

#include <cblas.h>

#include "access/xact.h"
#include "catalog/dependency.h"
#include "catalog/namespace.h"
#include "catalog/pg_extension.h"
#include "catalog/pg_am.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "libpq/pqsignal.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/pmsignal.h"
#include "storage/proc.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/date.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "als/als.h"
#include "model/model.h"
#include "vector/vector.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void rec_train_worker_main(Datum arg);

#define COO_BLOCK		(1 << 16)	/* entries per block of the coordinate list */
#define WRITE_BATCH		10000	/* rows per INSERT of factors */
#define NO_ITEM			UINT32_MAX

static volatile sig_atomic_t got_sigterm = false;
static RecTrainSlot *MySlot = NULL;

/* ---------------------------------------------------------------- job state */

/*
 * The coordinate list: (user, item) pairs in blocks, and their weights in
 * parallel blocks that exist only once a weight other than 1 has been read
 * (implicit data often has none, and this list is the peak of a job's
 * memory).
 */
typedef struct CooEntry
{
	uint32		u;
	uint32		i;
} CooEntry;

typedef struct IdMap
{
	uint64		cap;			/* power of two */
	int64	   *keys;
	uint32	   *vals;			/* UINT32_MAX = empty */
	uint32		n;
	int64	   *rev;			/* dense index -> key */
	uint64		revcap;
} IdMap;

typedef struct Job
{
	int64		model_id;
	char	   *name;
	char	   *source_query;
	Oid			requested_by;	/* role that queued the job */
	char	   *search_path;
	AlsParams	p;
	float		alpha;
	bool		holdout;

	/* memory we allocated (malloc), for the limit and the report */
	size_t		mem_now;
	size_t		mem_peak;
	size_t		mem_limit;

	/* loading */
	IdMap		users;
	IdMap		items;
	CooEntry  **blocks;
	float	  **wblocks;		/* NULL while every weight is 1 */
	int			nblocks;
	int			maxblocks;
	uint64		ncoo;
	int64		rows_read;
	int64		rows_skipped;
	int64	   *latest_t;		/* per user, when holdout */
	uint32	   *latest_item;
	uint64		latest_cap;

	/* matrices and result */
	AlsMatrix	um;
	AlsMatrix	im;
	uint32	   *hold;			/* per user: held-out item, or NO_ITEM */
	uint64		nholdout;
	AlsFactors	f;
	uint32		nusers_nonempty;

	/* report */
	int			threads;
	int			niter;
	double		loss[REC_TRAIN_MAX_HISTORY];
	double		secs[REC_TRAIN_MAX_HISTORY];
	double		t_load,
				t_prepare,
				t_train,
				t_eval,
				t_write,
				t_index;
	bool		indexed;
	StringInfoData holdout_json;
} Job;

static Job *job = NULL;

/*
 * What a job allocates outside its transactions (its parameters, phase
 * messages, the holdout report, an error's text): reset before each job,
 * so a worker that trains many jobs in a row does not grow. The worker
 * works in it between transactions (see commit_xact).
 */
static MemoryContext JobContext = NULL;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static char *
mb(size_t bytes)
{
	return psprintf("%.1f MB", bytes / (1024.0 * 1024.0));
}

static void
mem_refuse(size_t need)
{
	ereport(ERROR,
			(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
			 errmsg("training model " INT64_FORMAT " needs more than rec.train_memory_limit (%s)",
					job->model_id, mb(job->mem_limit)),
			 errdetail("It needs at least %s (%llu interactions of %u users and %u items read so far, %d factors).",
					   mb(need), (unsigned long long) job->ncoo, job->users.n, job->items.n,
					   job->p.factors),
			 errhint("Raise rec.train_memory_limit, or train on less data or with fewer factors.")));
}

static void
mem_charge(size_t n)
{
	size_t		t;

	if (__builtin_add_overflow(job->mem_now, n, &t) || t > job->mem_limit)
		mem_refuse(__builtin_add_overflow(job->mem_now, n, &t) ? SIZE_MAX : t);
	job->mem_now = t;
	if (t > job->mem_peak)
		job->mem_peak = t;
}

static void *
jmalloc(size_t n)
{
	void	   *p;

	mem_charge(n);
	p = malloc(n ? n : 1);
	if (p == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on a request of size %zu while training model " INT64_FORMAT ".",
						   n, job->model_id)));
	return p;
}

static void *
jcalloc(size_t n, size_t size)
{
	size_t		t;
	void	   *p;

	if (__builtin_mul_overflow(n, size, &t))
		mem_refuse(SIZE_MAX);
	p = jmalloc(t);
	memset(p, 0, t);
	return p;
}

static void
jfree(void *p, size_t n)
{
	if (p == NULL)
		return;
	free(p);
	job->mem_now -= Min(n, job->mem_now);
}

static void *
jrealloc(void *p, size_t oldn, size_t newn)
{
	void	   *q;

	mem_charge(newn);
	q = realloc(p, newn);
	if (q == NULL)
	{
		job->mem_now -= newn;
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory"),
				 errdetail("Failed on a request of size %zu while training model " INT64_FORMAT ".",
						   newn, job->model_id)));
	}
	job->mem_now -= Min(oldn, job->mem_now);
	return q;
}

static size_t
matrix_bytes_or_refuse(uint32 rows, uint64 nnz)
{
	size_t		b;

	if (!als_matrix_bytes(rows, nnz, &b))
		mem_refuse(SIZE_MAX);
	return b;
}

static void
job_free_matrix(AlsMatrix *m)
{
	if (m->ptr)
		job->mem_now -= Min(job->mem_now, ((size_t) m->nrows + 1) * sizeof(uint64));
	if (m->ent)
		job->mem_now -= Min(job->mem_now, (size_t) m->nnz * sizeof(AlsEntry));
	als_matrix_free(m);
}

static void
idmap_free(IdMap *m)
{
	jfree(m->keys, m->cap * sizeof(int64));
	jfree(m->vals, m->cap * sizeof(uint32));
	jfree(m->rev, m->revcap * sizeof(int64));
	memset(m, 0, sizeof(*m));
}

/* Free everything a job holds (also after an error). */
static void
job_cleanup(void)
{
	if (job == NULL)
		return;
	for (int b = 0; b < job->nblocks; b++)
	{
		if (job->blocks[b])
			jfree(job->blocks[b], sizeof(CooEntry) * COO_BLOCK);
		if (job->wblocks && job->wblocks[b])
			jfree(job->wblocks[b], sizeof(float) * COO_BLOCK);
	}
	jfree(job->blocks, sizeof(CooEntry *) * job->maxblocks);
	jfree(job->wblocks, sizeof(float *) * job->maxblocks);
	idmap_free(&job->users);
	idmap_free(&job->items);
	jfree(job->latest_t, job->latest_cap * sizeof(int64));
	jfree(job->latest_item, job->latest_cap * sizeof(uint32));
	job_free_matrix(&job->um);
	job_free_matrix(&job->im);
	jfree(job->hold, sizeof(uint32) * job->users.n);
	als_factors_free(&job->f);
	free(job);
	job = NULL;
}

/* ---------------------------------------------------------------- id maps */

static inline uint64
mix64(int64 k)
{
	uint64		x = (uint64) k;

	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	x *= 0xc4ceb9fe1a85ec53ULL;
	x ^= x >> 33;
	return x;
}

static void
idmap_grow(IdMap *m)
{
	uint64		ncap = m->cap ? m->cap * 2 : 1024;
	int64	   *nkeys = jmalloc(ncap * sizeof(int64));
	uint32	   *nvals = jmalloc(ncap * sizeof(uint32));

	memset(nvals, 0xff, ncap * sizeof(uint32));
	for (uint64 s = 0; s < m->cap; s++)
	{
		uint64		h;

		if (m->vals[s] == UINT32_MAX)
			continue;
		h = mix64(m->keys[s]) & (ncap - 1);
		while (nvals[h] != UINT32_MAX)
			h = (h + 1) & (ncap - 1);
		nkeys[h] = m->keys[s];
		nvals[h] = m->vals[s];
	}
	jfree(m->keys, m->cap * sizeof(int64));
	jfree(m->vals, m->cap * sizeof(uint32));
	m->keys = nkeys;
	m->vals = nvals;
	m->cap = ncap;
}

static uint32
idmap_get(IdMap *m, int64 key, const char *what)
{
	uint64		h;

	if ((uint64) m->n * 2 >= m->cap)
		idmap_grow(m);
	h = mix64(key) & (m->cap - 1);
	for (;;)
	{
		if (m->vals[h] == UINT32_MAX)
			break;
		if (m->keys[h] == key)
			return m->vals[h];
		h = (h + 1) & (m->cap - 1);
	}
	if (m->n >= UINT32_MAX - 1)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct %s in the training source", what)));
	if (m->n == m->revcap)
	{
		uint64		ncap = m->revcap ? m->revcap * 2 : 1024;

		m->rev = jrealloc(m->rev, m->revcap * sizeof(int64), ncap * sizeof(int64));
		m->revcap = ncap;
	}
	m->keys[h] = key;
	m->vals[h] = m->n;
	m->rev[m->n] = key;
	return m->n++;
}

/* Bgworkers must set the statement time themselves, or now() stands still. */
static void
begin_xact(void)
{
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
}

/* Commit, and work in JobContext again (a commit leaves us in TopMemoryContext). */
static void
commit_xact(void)
{
	CommitTransactionCommand();
	MemoryContextSwitchTo(JobContext);
}

/* ---------------------------------------------------------------- progress */

static void
set_phase(RecTrainPhase phase)
{
	rec_train_set_phase(MySlot, phase);
	pgstat_report_activity(STATE_RUNNING,
						   psprintf("training model " INT64_FORMAT ": %s",
									job ? job->model_id : 0, rec_train_phase_name(phase)));
}

static void
progress_counts(void)
{
	rec_train_progress_begin(MySlot);
	MySlot->rows_read = job->rows_read;
	MySlot->users = job->users.n;
	MySlot->items = job->items.n;
	MySlot->interactions = job->um.nnz;
	rec_train_progress_end(MySlot);
}

/* Throw if the job should stop now. */
static void
check_stop(void)
{
	if (MySlot->cancel)
		ereport(ERROR,
				(errcode(ERRCODE_QUERY_CANCELED),
				 errmsg("training cancelled by rec.cancel()")));
	if (!PostmasterIsAlive())
		proc_exit(1);
	CHECK_FOR_INTERRUPTS();
}

/* ---------------------------------------------------------------- loading */

typedef struct LoadReceiver
{
	DestReceiver pub;
	int			cu,
				ci,
				cw,
				ct;
	Oid			tu,
				ti,
				tw,
				tt;
	int			natts;
	MemoryContext rowcxt;
} LoadReceiver;

static int64
int_datum(Datum d, Oid t)
{
	switch (t)
	{
		case INT2OID:
			return DatumGetInt16(d);
		case INT4OID:
			return DatumGetInt32(d);
		default:
			return DatumGetInt64(d);
	}
}

static double
num_datum(Datum d, Oid t)
{
	switch (t)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return (double) int_datum(d, t);
		case FLOAT4OID:
			return DatumGetFloat4(d);
		case FLOAT8OID:
			return DatumGetFloat8(d);
		default:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8, d));
	}
}

/*
 * A time as a number that orders like it. Only times of one column are
 * compared, so a date stays a day number: scaled to microseconds, dates
 * beyond the timestamp range (and infinity) would overflow.
 */
static int64
time_datum(Datum d, Oid t)
{
	if (t == DATEOID)
		return (int64) DatumGetDateADT(d);
	return DatumGetInt64(d);	/* timestamp and timestamptz */
}

static void
load_startup(DestReceiver *self, int operation, TupleDesc td)
{
	LoadReceiver *r = (LoadReceiver *) self;

	r->cu = r->ci = r->cw = r->ct = -1;
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		const char *name = NameStr(a->attname);

		if (strcmp(name, "user_id") == 0 && r->cu < 0)
			r->cu = i, r->tu = a->atttypid;
		else if (strcmp(name, "item_id") == 0 && r->ci < 0)
			r->ci = i, r->ti = a->atttypid;
		else if (strcmp(name, "weight") == 0 && r->cw < 0)
			r->cw = i, r->tw = a->atttypid;
		else if (strcmp(name, "occurred_at") == 0 && r->ct < 0)
			r->ct = i, r->tt = a->atttypid;
	}
	/* rec.train() checked these; the source may have changed since */
	if (r->cu < 0 || r->ci < 0 ||
		!(r->tu == INT2OID || r->tu == INT4OID || r->tu == INT8OID) ||
		!(r->ti == INT2OID || r->ti == INT4OID || r->ti == INT8OID) ||
		(r->cw >= 0 && !(r->tw == INT2OID || r->tw == INT4OID || r->tw == INT8OID ||
						 r->tw == FLOAT4OID || r->tw == FLOAT8OID || r->tw == NUMERICOID)) ||
		(r->ct >= 0 && !(r->tt == TIMESTAMPTZOID || r->tt == TIMESTAMPOID || r->tt == DATEOID)))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the training source no longer returns user_id and item_id as integers (and weight as a number, occurred_at as a time)")));
	if (job->holdout && r->ct < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("holdout needs a column occurred_at in the training source")));
	r->natts = Max(Max(r->cu, r->ci), Max(r->cw, r->ct)) + 1;
}

static bool
load_receive(TupleTableSlot *slot, DestReceiver *self)
{
	LoadReceiver *r = (LoadReceiver *) self;
	Datum	   *v;
	bool	   *n;
	int64		user,
				item;
	double		w = 1.0;
	uint32		ui,
				ii;
	CooEntry   *e;

	slot_getsomeattrs(slot, r->natts);
	v = slot->tts_values;
	n = slot->tts_isnull;
	job->rows_read++;
	if ((job->rows_read & 0xffff) == 0)
	{
		rec_train_progress_begin(MySlot);
		MySlot->rows_read = job->rows_read;
		MySlot->users = job->users.n;
		MySlot->items = job->items.n;
		rec_train_progress_end(MySlot);
		check_stop();
		MemoryContextReset(r->rowcxt);
	}
	if (n[r->cu] || n[r->ci] || (r->cw >= 0 && n[r->cw]))
	{
		job->rows_skipped++;
		return true;
	}
	user = int_datum(v[r->cu], r->tu);
	item = int_datum(v[r->ci], r->ti);
	if (r->cw >= 0)
	{
		MemoryContext old = MemoryContextSwitchTo(r->rowcxt);

		w = num_datum(v[r->cw], r->tw);
		MemoryContextSwitchTo(old);
		if (!isfinite(w))
		{
			job->rows_skipped++;
			return true;
		}
		/* training computes in single precision */
		if (fabs(w) > FLT_MAX)
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("weight %g of user " INT64_FORMAT " and item " INT64_FORMAT " is out of range",
							w, user, item),
					 errdetail("Training computes in single precision: weights must lie between %g and %g.",
							   -FLT_MAX, FLT_MAX)));
	}
	ui = idmap_get(&job->users, user, "users");
	ii = idmap_get(&job->items, item, "items");

	if (job->ncoo / COO_BLOCK >= (uint64) job->nblocks)
	{
		if (job->nblocks == job->maxblocks)
		{
			int			nmax = job->maxblocks ? job->maxblocks * 2 : 64;

			job->blocks = jrealloc(job->blocks, sizeof(CooEntry *) * job->maxblocks,
								   sizeof(CooEntry *) * nmax);
			if (job->wblocks)
				job->wblocks = jrealloc(job->wblocks, sizeof(float *) * job->maxblocks,
										sizeof(float *) * nmax);
			job->maxblocks = nmax;
		}
		job->blocks[job->nblocks] = jmalloc(sizeof(CooEntry) * COO_BLOCK);
		if (job->wblocks)
			job->wblocks[job->nblocks] = jmalloc(sizeof(float) * COO_BLOCK);
		job->nblocks++;
	}
	if ((float) w != 1.0f && job->wblocks == NULL)
	{
		/* the first weight that is not 1: keep weights from now on */
		job->wblocks = jcalloc(job->maxblocks, sizeof(float *));
		for (int b = 0; b < job->nblocks; b++)
		{
			job->wblocks[b] = jmalloc(sizeof(float) * COO_BLOCK);
			for (int x = 0; x < COO_BLOCK; x++)
				job->wblocks[b][x] = 1.0f;
		}
	}
	e = &job->blocks[job->ncoo / COO_BLOCK][job->ncoo % COO_BLOCK];
	e->u = ui;
	e->i = ii;
	if (job->wblocks)
		job->wblocks[job->ncoo / COO_BLOCK][job->ncoo % COO_BLOCK] = (float) w;
	job->ncoo++;

	if (job->holdout)
	{
		int64		t = n[r->ct] ? PG_INT64_MIN : time_datum(v[r->ct], r->tt);

		if (ui >= job->latest_cap)
		{
			uint64		ncap = job->latest_cap ? job->latest_cap * 2 : 1024;

			job->latest_t = jrealloc(job->latest_t, job->latest_cap * sizeof(int64), ncap * sizeof(int64));
			job->latest_item = jrealloc(job->latest_item, job->latest_cap * sizeof(uint32), ncap * sizeof(uint32));
			for (uint64 x = job->latest_cap; x < ncap; x++)
			{
				job->latest_t[x] = PG_INT64_MIN;
				job->latest_item[x] = NO_ITEM;
			}
			job->latest_cap = ncap;
		}
		/* the latest event; ties go to the larger item id */
		if (job->latest_item[ui] == NO_ITEM || t > job->latest_t[ui] ||
			(t == job->latest_t[ui] && item > job->items.rev[job->latest_item[ui]]))
		{
			job->latest_t[ui] = t;
			job->latest_item[ui] = ii;
		}
	}
	return true;
}

static void
load_shutdown(DestReceiver *self)
{
}

static void
load_destroy(DestReceiver *self)
{
}

static void
load_source(void)
{
	LoadReceiver r;
	Oid			role;
	Oid			saved_user;
	int			saved_sec;
	int			nest;
	SPIExecuteOptions opts;
	int			rc;

	memset(&r, 0, sizeof(r));
	r.pub.receiveSlot = load_receive;
	r.pub.rStartup = load_startup;
	r.pub.rShutdown = load_shutdown;
	r.pub.rDestroy = load_destroy;
	r.pub.mydest = DestTuplestore;	/* anything but DestNone and DestSPI */
	r.rowcxt = AllocSetContextCreate(CurrentMemoryContext, "rec training rows",
									 ALLOCSET_SMALL_SIZES);

	begin_xact();
	XactReadOnly = true;
	/*
	 * By OID: a renamed role is still the one that asked; one dropped (and
	 * perhaps created again under its name, which makes another role) is
	 * not, and nobody else may stand in for it.
	 */
	role = job->requested_by;
	if (!SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(role)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("the role that queued this job (OID %u) no longer exists", role),
				 errhint("A role that was dropped and created again is another role: queue the job again as that role.")));
	GetUserIdAndSecContext(&saved_user, &saved_sec);
	SetUserIdAndSecContext(role, saved_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	nest = NewGUCNestLevel();
	if (job->search_path)
		(void) set_config_option("search_path", job->search_path,
								 PGC_USERSET, PGC_S_SESSION,
								 GUC_ACTION_SAVE, true, 0, false);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	memset(&opts, 0, sizeof(opts));
	opts.read_only = true;
	opts.dest = (DestReceiver *) &r;
	rc = SPI_execute_extended(job->source_query, &opts);
	if (rc != SPI_OK_SELECT)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the training source did not run as a SELECT query (%s)",
						SPI_result_code_string(rc))));
	PopActiveSnapshot();
	SPI_finish();
	AtEOXact_GUC(true, nest);
	SetUserIdAndSecContext(saved_user, saved_sec);
	commit_xact();
	MemoryContextDelete(r.rowcxt);
	progress_counts();

	if (job->ncoo == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("the training source returned no usable rows"),
				 errdetail(INT64_FORMAT " rows read, " INT64_FORMAT " skipped for a null user_id, item_id or weight.",
						   job->rows_read, job->rows_skipped)));
}

/* ---------------------------------------------------------------- matrices */

typedef struct KeyIdx
{
	int64		key;
	uint32		idx;
} KeyIdx;

static int
cmp_keyidx(const void *a, const void *b)
{
	int64		x = ((const KeyIdx *) a)->key,
				y = ((const KeyIdx *) b)->key;

	return x < y ? -1 : x > y;
}

/*
 * Renumber dense ids in the order of their external ids, so the matrices
 * (and so the result) do not depend on the order in which rows arrived.
 * Returns old -> new; rev[] is reordered.
 */
static uint32 *
canonical_order(IdMap *m)
{
	KeyIdx	   *ki = jmalloc(sizeof(KeyIdx) * Max(m->n, 1));
	uint32	   *perm = jmalloc(sizeof(uint32) * Max(m->n, 1));

	for (uint32 x = 0; x < m->n; x++)
	{
		ki[x].key = m->rev[x];
		ki[x].idx = x;
	}
	qsort(ki, m->n, sizeof(KeyIdx), cmp_keyidx);
	for (uint32 x = 0; x < m->n; x++)
	{
		perm[ki[x].idx] = x;
		m->rev[x] = ki[x].key;
	}
	jfree(ki, sizeof(KeyIdx) * Max(m->n, 1));
	/* the hash table is no longer needed */
	jfree(m->keys, m->cap * sizeof(int64));
	jfree(m->vals, m->cap * sizeof(uint32));
	m->keys = NULL;
	m->vals = NULL;
	m->cap = 0;
	return perm;
}

static void
check_budget(void)
{
	size_t		coo = (sizeof(CooEntry) + (job->wblocks ? sizeof(float) : 0)) *
		COO_BLOCK * (size_t) job->nblocks;
	size_t		m,
				eng,
				need,
				t;

	m = matrix_bytes_or_refuse(Max(job->users.n, job->items.n), job->ncoo);
	/* a row has at most as many entries as there are columns */
	if (!als_engine_bytes(&job->p, job->users.n, job->items.n,
						  Min(job->ncoo, (uint64) Max(job->users.n, job->items.n)), &eng))
		mem_refuse(SIZE_MAX);
	/* worst of: list + one matrix, two matrices + engine */
	need = coo + m;
	if (__builtin_add_overflow(m, m, &t) || __builtin_add_overflow(t, eng, &t))
		mem_refuse(SIZE_MAX);
	need = Max(need, t);
	if (__builtin_add_overflow(need, job->mem_now - Min(job->mem_now, coo), &t) || t > job->mem_limit)
		mem_refuse(t);
}

/* (dense user, dense item): a pair whose confidence does not fit in a float */
static void
confidence_out_of_range(uint32 u, uint32 i)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("alpha times the summed weight of user " INT64_FORMAT " and item " INT64_FORMAT " is out of range",
					job->users.rev[u], job->items.rev[i]),
			 errdetail("Training computes in single precision: alpha times a summed weight must be at most %g.",
					   FLT_MAX)));
}

static void
build_matrices(void)
{
	uint32		nu = job->users.n,
				ni = job->items.n;
	uint32	   *uperm = canonical_order(&job->users);
	uint32	   *iperm = canonical_order(&job->items);
	AlsMatrix	byitem;
	uint64	   *fill;
	uint64		w;

	check_budget();

	/* 1. counting sort of the list by item (keeps user ids) */
	memset(&byitem, 0, sizeof(byitem));
	byitem.nrows = ni;
	byitem.ncols = nu;
	byitem.nnz = job->ncoo;
	byitem.ptr = jcalloc((size_t) ni + 1, sizeof(uint64));
	byitem.ent = jmalloc(sizeof(AlsEntry) * Max(job->ncoo, 1));
	for (uint64 j = 0; j < job->ncoo; j++)
	{
		CooEntry   *e = &job->blocks[j / COO_BLOCK][j % COO_BLOCK];

		e->u = uperm[e->u];
		e->i = iperm[e->i];
		byitem.ptr[e->i + 1]++;
	}
	for (uint32 i = 0; i < ni; i++)
		byitem.ptr[i + 1] += byitem.ptr[i];
	fill = jmalloc(sizeof(uint64) * ((size_t) ni + 1));
	memcpy(fill, byitem.ptr, sizeof(uint64) * ((size_t) ni + 1));
	for (int b = 0; b < job->nblocks; b++)
	{
		uint64		end = Min((uint64) (b + 1) * COO_BLOCK, job->ncoo);

		for (uint64 j = (uint64) b * COO_BLOCK; j < end; j++)
		{
			CooEntry   *e = &job->blocks[b][j % COO_BLOCK];
			AlsEntry   *d = &byitem.ent[fill[e->i]++];

			d->idx = e->u;
			d->a = job->wblocks ? job->wblocks[b][j % COO_BLOCK] : 1.0f;
		}
		jfree(job->blocks[b], sizeof(CooEntry) * COO_BLOCK);
		job->blocks[b] = NULL;
		if (job->wblocks)
		{
			jfree(job->wblocks[b], sizeof(float) * COO_BLOCK);
			job->wblocks[b] = NULL;
		}
		if ((b & 7) == 7)
			check_stop();
	}
	jfree(fill, sizeof(uint64) * ((size_t) ni + 1));
	if (job->holdout)
	{
		/* re-index the latest item of each user: new user -> new item */
		uint32	   *latest = jmalloc(sizeof(uint32) * Max(nu, 1));

		for (uint32 u = 0; u < nu; u++)
			latest[uperm[u]] = job->latest_item[u] == NO_ITEM ? NO_ITEM :
				iperm[job->latest_item[u]];
		memcpy(job->latest_item, latest, sizeof(uint32) * nu);
		jfree(latest, sizeof(uint32) * Max(nu, 1));
	}
	jfree(uperm, sizeof(uint32) * Max(nu, 1));
	jfree(iperm, sizeof(uint32) * Max(ni, 1));

	/* 2. transpose: user rows, sorted by item */
	mem_charge(matrix_bytes_or_refuse(nu, job->ncoo));
	if (als_transpose(&byitem, &job->um) != ALS_OK)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	job_free_matrix(&byitem);
	check_stop();

	/*
	 * 3. per user row: sum repeated pairs, drop pairs whose weight is not
	 * positive, hold out the latest item (if the user keeps another), and
	 * scale by alpha.
	 */
	job->hold = jmalloc(sizeof(uint32) * Max(nu, 1));
	w = 0;
	job->nusers_nonempty = 0;
	for (uint32 u = 0; u < nu; u++)
	{
		uint64		start = job->um.ptr[u],
					end = job->um.ptr[u + 1];
		uint64		row0 = w;
		uint32		h = job->holdout ? job->latest_item[u] : NO_ITEM;
		uint64		distinct = 0;

		job->um.ptr[u] = row0;
		for (uint64 j = start; j < end;)
		{
			uint32		idx = job->um.ent[j].idx;
			double		sum = 0.0;

			while (j < end && job->um.ent[j].idx == idx)
				sum += job->um.ent[j++].a;
			if (sum > 0.0)
			{
				if (sum > FLT_MAX || sum * job->alpha > FLT_MAX)
					confidence_out_of_range(u, idx);
				job->um.ent[w].idx = idx;
				job->um.ent[w].a = (float) sum;
				w++;
				distinct++;
			}
		}
		job->hold[u] = NO_ITEM;
		if (h != NO_ITEM && distinct >= 2)
		{
			for (uint64 j = row0; j < w; j++)
			{
				if (job->um.ent[j].idx == h)
				{
					memmove(&job->um.ent[j], &job->um.ent[j + 1], sizeof(AlsEntry) * (w - j - 1));
					w--;
					job->hold[u] = h;
					job->nholdout++;
					break;
				}
			}
		}
		for (uint64 j = row0; j < w; j++)
		{
			job->um.ent[j].a *= job->alpha;
			if (!isfinite(job->um.ent[j].a))
				confidence_out_of_range(u, job->um.ent[j].idx);
		}
		if (w > row0)
			job->nusers_nonempty++;
		if ((u & 0xffff) == 0xffff)
			check_stop();
	}
	job->um.ptr[nu] = w;
	job->mem_now -= Min(job->mem_now, (size_t) (job->um.nnz - w) * sizeof(AlsEntry));
	job->um.nnz = w;
	if (w == 0)
		ereport(ERROR,
				(errcode(ERRCODE_NO_DATA_FOUND),
				 errmsg("the training source has no interaction with a positive weight")));
	{
		AlsEntry   *shrunk = realloc(job->um.ent, sizeof(AlsEntry) * w);

		if (shrunk)
			job->um.ent = shrunk;
	}
	if (job->holdout)
	{
		jfree(job->latest_t, job->latest_cap * sizeof(int64));
		jfree(job->latest_item, job->latest_cap * sizeof(uint32));
		job->latest_t = NULL;
		job->latest_item = NULL;
	}

	/* 4. the item side */
	mem_charge(matrix_bytes_or_refuse(ni, w));
	if (als_transpose(&job->um, &job->im) != ALS_OK)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	progress_counts();
}

/* ---------------------------------------------------------------- training */

static int
poll_cb(void *arg)
{
	return got_sigterm || QueryCancelPending || ProcDiePending ||
		MySlot->cancel || !PostmasterIsAlive();
}

static void
iteration_cb(void *arg, int it, double loss, double seconds)
{
	if (it >= 1 && it <= REC_TRAIN_MAX_HISTORY)
	{
		job->loss[it - 1] = loss;
		job->secs[it - 1] = seconds;
		job->niter = it;
	}
	rec_train_progress_begin(MySlot);
	MySlot->iteration = it;
	if (it >= 1 && it <= REC_TRAIN_MAX_HISTORY)
	{
		MySlot->loss[it - 1] = loss;
		MySlot->seconds[it - 1] = seconds;
		MySlot->nhistory = it;
	}
	rec_train_progress_end(MySlot);
}

static void
train(void)
{
	AlsCallbacks cb = {NULL, poll_cb, iteration_cb};
	char		err[256];
	size_t		eng;
	int			rc;

	if (!als_engine_bytes(&job->p, job->users.n, job->items.n,
						  Max(als_max_row_nnz(&job->um), als_max_row_nnz(&job->im)), &eng))
		mem_refuse(SIZE_MAX);
	mem_charge(eng);
	if (job->holdout)
	{
		size_t		evb;

		/*
		 * Ranking the holdout scores a block of users against every item
		 * on each thread: reserve that now, so a job that could not rank
		 * its holdout is refused before it trains, not after.
		 */
		if (!als_eval_bytes(job->items.n, als_kpad(job->p.factors), job->threads, &evb))
			mem_refuse(SIZE_MAX);
		mem_charge(evb);
	}

	rec_train_progress_begin(MySlot);
	MySlot->iteration = 0;
	MySlot->iterations = job->p.iterations;
	MySlot->nhistory = 0;
	rec_train_progress_end(MySlot);

	rc = als_train(&job->p, &job->um, &job->im, job->users.rev, job->items.rev,
				   &job->f, &cb, err, sizeof(err));
	switch (rc)
	{
		case ALS_OK:
			break;
		case ALS_STOPPED:
			check_stop();
			if (got_sigterm)
				ereport(ERROR,
						(errcode(ERRCODE_ADMIN_SHUTDOWN),
						 errmsg("training stopped: the server is shutting down")));
			ereport(ERROR,
					(errcode(ERRCODE_QUERY_CANCELED),
					 errmsg("training stopped")));
			break;
		case ALS_NOMEM:
			ereport(ERROR,
					(errcode(ERRCODE_OUT_OF_MEMORY),
					 errmsg("out of memory while training")));
			break;
		case ALS_THREAD:
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_RESOURCES),
					 errmsg("%s", err)));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("%s", err)));
	}
}

/* ---------------------------------------------------------------- evaluation */

/*
 * Rank each held-out item among all items of the model, leaving out the
 * user's training items (the engine does it on the job's threads): rank =
 * how many of those come first (a higher score, or the same score and a
 * smaller item id, as in rec.evaluate; dense ids are in item id order).
 * Metrics at k = 10 follow the textbook definitions with one relevant item.
 */
static void
evaluate_holdout(void)
{
	const int	K = 10;
	AlsCallbacks cb = {NULL, poll_cb, NULL};
	AlsHoldout	h;
	char		err[256];
	int			rc;

	err[0] = '\0';
	rc = als_eval_holdout(&job->f, &job->um, job->hold, K, job->threads, &cb, &h,
						  err, sizeof(err));
	if (rc == ALS_STOPPED)
		check_stop();
	if (rc != ALS_OK)
		ereport(ERROR,
				(errcode(rc == ALS_NOMEM ? ERRCODE_OUT_OF_MEMORY : ERRCODE_INSUFFICIENT_RESOURCES),
				 errmsg("could not evaluate the holdout of model " INT64_FORMAT ": %s",
						job->model_id, err)));

	initStringInfo(&job->holdout_json);
	if (h.users == 0)
	{
		appendStringInfoString(&job->holdout_json, "{\"users\": 0}");
		return;
	}
	appendStringInfo(&job->holdout_json,
					 "{\"protocol\": \"full ranking over all items, training items excluded; latest interaction per user held out\", "
					 "\"k\": %d, \"users\": " UINT64_FORMAT ", \"hit_rate\": %s, \"ndcg\": %s, "
					 "\"recall\": %s, \"precision\": %s, \"map\": %s, \"mrr\": %s}",
					 K, (uint64) h.users,
					 float8out_internal(h.hit_rate), float8out_internal(h.ndcg),
					 float8out_internal(h.hit_rate), float8out_internal(h.hit_rate / K),
					 float8out_internal(h.map), float8out_internal(h.mrr));
}

/* ---------------------------------------------------------------- writing */

static Oid
vector_type_oid(void)
{
	Oid			nsp = get_namespace_oid("rec", false);
	Oid			t = GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid,
									CStringGetDatum("vector"), ObjectIdGetDatum(nsp));

	if (!OidIsValid(t))
		elog(ERROR, "type rec.vector does not exist");
	return t;
}

static void
spi_exec(const char *sql, int expect)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc != expect)
		elog(ERROR, "training worker: \"%s\" failed: %s", sql, SPI_result_code_string(rc));
}

/*
 * Whoever may read rec.deployments (the roles serving recommendations) may
 * read the factors of every version, so promoting a new version never takes
 * an application's privileges away: the new tables get SELECT for each role
 * (or PUBLIC) holding SELECT on rec.deployments, other than its owner.
 */
static void
grant_like_deployments(const char *utab, const char *itab)
{
	uint64		n;

	spi_exec("SELECT DISTINCT a.grantee "
			 "FROM pg_catalog.pg_class c, pg_catalog.aclexplode(c.relacl) a "
			 "WHERE c.oid = 'rec.deployments'::pg_catalog.regclass "
			 "AND a.privilege_type = 'SELECT' AND a.grantee <> c.relowner "
			 "ORDER BY 1", SPI_OK_SELECT);
	n = SPI_processed;
	if (n == 0)
		return;
	{
		SPITupleTable *tt = SPI_tuptable;
		StringInfoData to;

		initStringInfo(&to);
		for (uint64 i = 0; i < n; i++)
		{
			bool		isnull;
			Oid			grantee = DatumGetObjectId(SPI_getbinval(tt->vals[i], tt->tupdesc, 1, &isnull));

			if (i > 0)
				appendStringInfoString(&to, ", ");
			if (grantee == InvalidOid)
				appendStringInfoString(&to, "PUBLIC");
			else
				appendStringInfoString(&to, quote_identifier(GetUserNameFromId(grantee, false)));
		}
		spi_exec(psprintf("GRANT SELECT ON %s, %s TO %s", utab, itab, to.data), SPI_OK_UTILITY);
	}
}

/* Insert (id, factors) rows for the given dense rows in batches. */
static void
write_factors(const char *table, const int64 *keys, const float *F, uint32 n,
			  const AlsMatrix *m, bool skip_empty, Oid vectype)
{
	int			k = job->f.k,
				kpad = job->f.kpad;
	int16		vlen;
	bool		vbyval;
	char		valign;
	Oid			argtypes[2];
	SPIPlanPtr	plan;
	Datum	   *ids = palloc(sizeof(Datum) * WRITE_BATCH);
	Datum	   *vecs = palloc(sizeof(Datum) * WRITE_BATCH);
	MemoryContext batchcxt = AllocSetContextCreate(CurrentMemoryContext, "rec factor batch",
												   ALLOCSET_DEFAULT_SIZES);
	char	   *sql;

	get_typlenbyvalalign(vectype, &vlen, &vbyval, &valign);
	argtypes[0] = INT8ARRAYOID;
	argtypes[1] = get_array_type(vectype);
	sql = psprintf("INSERT INTO %s SELECT * FROM ROWS FROM (pg_catalog.unnest($1), pg_catalog.unnest($2))", table);
	plan = SPI_prepare(sql, 2, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare \"%s\"", sql);

	for (uint32 r0 = 0; r0 < n;)
	{
		int			nb = 0;
		MemoryContext old = MemoryContextSwitchTo(batchcxt);
		Datum		args[2];

		while (r0 < n && nb < WRITE_BATCH)
		{
			uint32		r = r0++;
			RecVector  *v;

			if (skip_empty && m->ptr[r + 1] == m->ptr[r])
				continue;
			v = rec_vector_new(k);
			memcpy(v->x, F + (size_t) r * kpad, sizeof(float) * k);
			ids[nb] = Int64GetDatum(keys[r]);
			vecs[nb] = PointerGetDatum(v);
			nb++;
		}
		if (nb > 0)
		{
			args[0] = PointerGetDatum(construct_array(ids, nb, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
			args[1] = PointerGetDatum(construct_array(vecs, nb, vectype, vlen, vbyval, valign));
			if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
				elog(ERROR, "could not write factors into %s", table);
		}
		MemoryContextSwitchTo(old);
		MemoryContextReset(batchcxt);
		check_stop();
	}
	SPI_freeplan(plan);
	MemoryContextDelete(batchcxt);
}

static void
write_holdout(void)
{
	Oid			argtypes[3] = {INT8OID, INT8ARRAYOID, INT8ARRAYOID};
	SPIPlanPtr	plan = SPI_prepare("INSERT INTO rec.model_holdout (model_id, user_id, item_id) "
								   "SELECT $1, u, i FROM ROWS FROM (pg_catalog.unnest($2), pg_catalog.unnest($3)) AS h(u, i)",
								   3, argtypes);
	Datum	   *us = palloc(sizeof(Datum) * WRITE_BATCH);
	Datum	   *is = palloc(sizeof(Datum) * WRITE_BATCH);

	for (uint32 u0 = 0; u0 < job->users.n;)
	{
		int			nb = 0;
		Datum		args[3];

		while (u0 < job->users.n && nb < WRITE_BATCH)
		{
			uint32		u = u0++;

			if (job->hold[u] == NO_ITEM)
				continue;
			us[nb] = Int64GetDatum(job->users.rev[u]);
			is[nb] = Int64GetDatum(job->items.rev[job->hold[u]]);
			nb++;
		}
		if (nb == 0)
			continue;
		args[0] = Int64GetDatum(job->model_id);
		args[1] = PointerGetDatum(construct_array(us, nb, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		args[2] = PointerGetDatum(construct_array(is, nb, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		if (SPI_execute_plan(plan, args, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not write the holdout of model " INT64_FORMAT, job->model_id);
	}
	SPI_freeplan(plan);
}

static long
rss_peak_bytes(void)
{
	FILE	   *f = fopen("/proc/self/status", "r");
	char		line[256];
	long		kb = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmHWM: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb < 0 ? -1 : kb * 1024;
}

static void
reset_rss_peak(void)
{
	int			fd = open("/proc/self/clear_refs", O_WRONLY);

	if (fd >= 0)
	{
		if (write(fd, "5", 1) != 1)
		{
			/* not supported: the peak then covers the process's life */
		}
		close(fd);
	}
}

static char *
json_array(const double *v, int n)
{
	StringInfoData b;

	initStringInfo(&b);
	appendStringInfoChar(&b, '[');
	for (int i = 0; i < n; i++)
		appendStringInfo(&b, "%s%s", i ? ", " : "", float8out_internal(v[i]));
	appendStringInfoChar(&b, ']');
	return b.data;
}

static void
finish_job(double t_start)
{
	char	   *utab = psprintf("rec.model_" INT64_FORMAT "_user_factors", job->model_id);
	char	   *itab = psprintf("rec.model_" INT64_FORMAT "_item_factors", job->model_id);
	Oid			vectype;
	StringInfoData metrics;
	double		t0;
	bool		have_hnsw;
	Datum		args[6];
	Oid			argtypes[6] = {INT8OID, INT8OID, INT8OID, INT8OID, TEXTOID, TEXTOID};
	int			rc;

	begin_xact();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	vectype = vector_type_oid();

	set_phase(REC_PHASE_WRITING);
	t0 = now_s();
	spi_exec(psprintf("CREATE TABLE %s (user_id bigint NOT NULL, factors rec.vector(%d) NOT NULL)",
					  utab, job->f.k), SPI_OK_UTILITY);
	spi_exec(psprintf("CREATE TABLE %s (item_id bigint NOT NULL, factors rec.vector(%d) NOT NULL)",
					  itab, job->f.k), SPI_OK_UTILITY);
	/*
	 * The tables are not members of the extension (pg_dump must keep them
	 * with their data), but DROP EXTENSION takes them along, as it takes
	 * rec.models.
	 */
	{
		ObjectAddress ext,
					tbl;
		Oid			nsp = get_namespace_oid("rec", false);

		ObjectAddressSet(ext, ExtensionRelationId, get_extension_oid("rec", false));
		ObjectAddressSet(tbl, RelationRelationId,
						 get_relname_relid(psprintf("model_" INT64_FORMAT "_user_factors", job->model_id), nsp));
		recordDependencyOn(&tbl, &ext, DEPENDENCY_AUTO_EXTENSION);
		ObjectAddressSet(tbl, RelationRelationId,
						 get_relname_relid(psprintf("model_" INT64_FORMAT "_item_factors", job->model_id), nsp));
		recordDependencyOn(&tbl, &ext, DEPENDENCY_AUTO_EXTENSION);
	}
	write_factors(utab, job->users.rev, job->f.X, job->users.n, &job->um, true, vectype);
	write_factors(itab, job->items.rev, job->f.Y, job->items.n, &job->im, false, vectype);
	spi_exec(psprintf("ALTER TABLE %s ADD PRIMARY KEY (user_id)", utab), SPI_OK_UTILITY);
	spi_exec(psprintf("ALTER TABLE %s ADD PRIMARY KEY (item_id)", itab), SPI_OK_UTILITY);
	if (job->nholdout > 0)
		write_holdout();
	/* the factor tables belong to whoever owns the registry */
	{
		char	   *owner = GetUserNameFromId(rec_rel_owner(get_relname_relid("models", get_namespace_oid("rec", false))), false);

		spi_exec(psprintf("ALTER TABLE %s OWNER TO %s", utab, quote_identifier(owner)), SPI_OK_UTILITY);
		spi_exec(psprintf("ALTER TABLE %s OWNER TO %s", itab, quote_identifier(owner)), SPI_OK_UTILITY);
	}
	grant_like_deployments(utab, itab);
	spi_exec(psprintf("ANALYZE %s, %s", utab, itab), SPI_OK_UTILITY);
	job->t_write = now_s() - t0;

	/* index the item side when the HNSW access method is there */
	have_hnsw = OidIsValid(GetSysCacheOid1(AMNAME, Anum_pg_am_oid, CStringGetDatum("rec_hnsw")));
	if (have_hnsw)
	{
		set_phase(REC_PHASE_INDEXING);
		t0 = now_s();
		spi_exec(psprintf("CREATE INDEX ON %s USING rec_hnsw (factors rec.vector_ip_ops)", itab),
				 SPI_OK_UTILITY);
		job->t_index = now_s() - t0;
		job->indexed = true;
	}

	initStringInfo(&metrics);
	appendStringInfo(&metrics, "{\"loss\": %s, \"iteration_seconds\": %s",
					 json_array(job->loss, job->niter), json_array(job->secs, job->niter));
	appendStringInfo(&metrics,
					 ", \"seconds\": {\"load\": %s, \"prepare\": %s, \"train\": %s, \"evaluate\": %s, "
					 "\"write\": %s, \"index\": %s, \"total\": %s}",
					 float8out_internal(job->t_load), float8out_internal(job->t_prepare),
					 float8out_internal(job->t_train), float8out_internal(job->t_eval),
					 float8out_internal(job->t_write), float8out_internal(job->t_index),
					 float8out_internal(now_s() - t_start));
	appendStringInfo(&metrics,
					 ", \"rows_read\": " INT64_FORMAT ", \"rows_skipped\": " INT64_FORMAT
					 ", \"threads\": %d, \"kernel\": \"%s\", \"indexed\": %s"
					 ", \"memory\": {\"peak_bytes\": %zu, \"limit_bytes\": %zu, \"rss_peak_bytes\": %ld}",
					 job->rows_read, job->rows_skipped, job->threads, als_kernel_name(),
					 job->indexed ? "true" : "false",
					 job->mem_peak, job->mem_limit, rss_peak_bytes());
	if (job->holdout)
		appendStringInfo(&metrics, ", \"holdout\": %s", job->holdout_json.data);
	appendStringInfoChar(&metrics, '}');

	args[0] = Int64GetDatum(job->model_id);
	args[1] = Int64GetDatum(job->nusers_nonempty);
	args[2] = Int64GetDatum(job->items.n);
	args[3] = Int64GetDatum(job->um.nnz);
	args[4] = CStringGetTextDatum(metrics.data);
	args[5] = CStringGetTextDatum(psprintf("%s %s", utab, itab));
	rc = SPI_execute_with_args("UPDATE rec.models SET status = 'ready', finished_at = pg_catalog.now(), "
							   "users = $2, items = $3, interactions = $4, metrics = $5::pg_catalog.jsonb, "
							   "size_bytes = (SELECT pg_catalog.sum(pg_catalog.pg_total_relation_size(t::pg_catalog.regclass))::bigint "
							   "              FROM pg_catalog.unnest(pg_catalog.string_to_array($6, ' ')) t), "
							   "error = NULL "
							   "WHERE model_id = $1 AND status = 'training'",
							   6, argtypes, args, NULL, false, 0);
	if (rc != SPI_OK_UPDATE || SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("model " INT64_FORMAT " is no longer marked as training", job->model_id)));
	PopActiveSnapshot();
	SPI_finish();
	commit_xact();
}

/* ---------------------------------------------------------------- jobs */

static void
read_job(int64 model_id)
{
	Datum		arg = Int64GetDatum(model_id);
	Oid			argtype = INT8OID;
	const char *sql =
		"SELECT name, source_query, requested_by::pg_catalog.oid, "
		"       (params->>'factors')::int, (params->>'iterations')::int, "
		"       (params->>'regularization')::float8, (params->>'alpha')::float8, "
		"       params->>'solver', (params->>'cg_steps')::int, (params->>'seed')::bigint, "
		"       (params->>'threads')::int, (params->>'holdout')::bool, params->>'search_path' "
		"FROM rec.models WHERE model_id = $1";
	HeapTuple	tup;
	TupleDesc	td;
	bool		isnull;
	MemoryContext top = JobContext;
	int			threads;
	float8		reg,
				alpha;

	begin_xact();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute_with_args(sql, 1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT ||
		SPI_processed != 1)
		elog(ERROR, "model " INT64_FORMAT " vanished", model_id);
	tup = SPI_tuptable->vals[0];
	td = SPI_tuptable->tupdesc;
	job->name = MemoryContextStrdup(top, SPI_getvalue(tup, td, 1));
	job->source_query = MemoryContextStrdup(top, SPI_getvalue(tup, td, 2));
	job->requested_by = DatumGetObjectId(SPI_getbinval(tup, td, 3, &isnull));
	if (isnull)
		job->requested_by = InvalidOid;
	/* from now on the requester may watch the job in rec.training_progress */
	rec_train_progress_begin(MySlot);
	MySlot->requester = job->requested_by;
	rec_train_progress_end(MySlot);
	job->p.factors = DatumGetInt32(SPI_getbinval(tup, td, 4, &isnull));
	job->p.iterations = DatumGetInt32(SPI_getbinval(tup, td, 5, &isnull));
	reg = DatumGetFloat8(SPI_getbinval(tup, td, 6, &isnull));
	if (isnull)
		reg = 0;
	alpha = DatumGetFloat8(SPI_getbinval(tup, td, 7, &isnull));
	if (isnull)
		alpha = -1;
	{
		/* params were written by rec.train(), but rec.models is a table */
		char	   *solver = SPI_getvalue(tup, td, 8);

		if (solver && strcmp(solver, "cholesky") == 0)
			job->p.solver = ALS_SOLVER_CHOLESKY;
		else if (solver && strcmp(solver, "cg") == 0)
			job->p.solver = ALS_SOLVER_CG;
		else
			job->p.solver = -1;
	}
	job->p.cg_steps = DatumGetInt32(SPI_getbinval(tup, td, 9, &isnull));
	job->p.seed = (uint64) DatumGetInt64(SPI_getbinval(tup, td, 10, &isnull));
	threads = DatumGetInt32(SPI_getbinval(tup, td, 11, &isnull));
	if (isnull || threads > rec_train_max_threads)
		threads = rec_train_max_threads;
	job->p.threads = job->threads = Max(threads, 1);
	job->holdout = DatumGetBool(SPI_getbinval(tup, td, 12, &isnull)) && !isnull;
	{
		char	   *sp = SPI_getvalue(tup, td, 13);

		job->search_path = sp ? MemoryContextStrdup(top, sp) : NULL;
	}
	PopActiveSnapshot();
	SPI_finish();
	commit_xact();

	/* the ranges rec.train() enforces */
	if (job->p.solver < 0 ||
		job->p.factors < 1 || job->p.factors > ALS_MAX_FACTORS ||
		job->p.iterations < 1 || job->p.iterations > REC_TRAIN_MAX_HISTORY ||
		job->p.cg_steps < 1 || job->p.cg_steps > ALS_MAX_CG_STEPS ||
		!(reg >= FLT_MIN && reg <= FLT_MAX) || !(alpha >= 0 && alpha <= FLT_MAX))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("model " INT64_FORMAT " has invalid parameters", model_id)));
	job->p.regularization = (float) reg;
	job->alpha = (float) alpha;
}

static void
run_job(int64 model_id)
{
	double		t0 = now_s(),
				t;

	job = calloc(1, sizeof(Job));
	if (job == NULL)
		ereport(ERROR, (errcode(ERRCODE_OUT_OF_MEMORY), errmsg("out of memory")));
	job->model_id = model_id;
	job->mem_limit = (size_t) rec_train_memory_limit * 1024;

	/*
	 * Big blocks straight from mmap, so what a phase frees goes back to the
	 * system before the next phase grows (glibc would otherwise raise its
	 * mmap threshold after the first big free and keep freed blocks).
	 */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	reset_rss_peak();

	rec_train_progress_begin(MySlot);
	MySlot->job_start = GetCurrentTimestamp();
	MySlot->iteration = 0;
	MySlot->iterations = 0;
	MySlot->nhistory = 0;
	MySlot->rows_read = MySlot->users = MySlot->items = MySlot->interactions = 0;
	rec_train_progress_end(MySlot);

	set_phase(REC_PHASE_STARTING);
	read_job(model_id);
	rec_train_progress_begin(MySlot);
	MySlot->iterations = job->p.iterations;
	rec_train_progress_end(MySlot);

	set_phase(REC_PHASE_LOADING);
	t = now_s();
	load_source();
	job->t_load = now_s() - t;

	set_phase(REC_PHASE_PREPARING);
	t = now_s();
	build_matrices();
	job->t_prepare = now_s() - t;
	check_stop();

	set_phase(REC_PHASE_TRAINING);
	t = now_s();
	train();
	job->t_train = now_s() - t;

	if (job->holdout)
	{
		set_phase(REC_PHASE_EVALUATING);
		t = now_s();
		evaluate_holdout();
		job->t_eval = now_s() - t;
	}

	/* the matrices are no longer needed; keep the user rows for "seen" */
	job_free_matrix(&job->im);

	finish_job(t0);
	ereport(LOG,
			(errmsg("rec: trained model " INT64_FORMAT " (\"%s\"): %u users, %u items, " UINT64_FORMAT " interactions, %d iterations in %.2f s",
					model_id, job->name, job->nusers_nonempty, job->items.n,
					job->um.nnz, job->niter, job->t_train)));
	job_cleanup();
	malloc_trim(0);
}

/*
 * Take the next queued job of this database; 0 if none, -1 if every queued
 * job is locked by another transaction (a rec.cancel() or rec.promote() that
 * has not ended yet, say), which may yet leave it queued.
 */
static int64
claim_job(void)
{
	int64		model_id = 0;

	begin_xact();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("SELECT model_id FROM rec.models WHERE status = 'queued' "
					"ORDER BY model_id LIMIT 1 FOR UPDATE SKIP LOCKED", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read rec.models");
	if (SPI_processed == 1)
	{
		bool		isnull;
		Datum		arg;
		Oid			argtype = INT8OID;

		model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
		arg = Int64GetDatum(model_id);
		if (SPI_execute_with_args("UPDATE rec.models SET status = 'training', started_at = pg_catalog.now(), "
								  "error = NULL WHERE model_id = $1",
								  1, &argtype, &arg, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update rec.models");
		/* from here on rec.cancel() finds the job in shared memory */
		LWLockAcquire(rec_train_shared()->lock, LW_EXCLUSIVE);
		/* nobody but the privileged watches it until read_job() knows who asked */
		rec_train_progress_begin(MySlot);
		MySlot->requester = InvalidOid;
		rec_train_progress_end(MySlot);
		MySlot->model_id = model_id;
		MySlot->cancel = false;
		LWLockRelease(rec_train_shared()->lock);
		/* a cancel meant for an earlier job must not hit this one */
		QueryCancelPending = false;
	}
	else
	{
		bool		isnull;

		if (SPI_execute("SELECT EXISTS (SELECT FROM rec.models WHERE status = 'queued')",
						true, 0) != SPI_OK_SELECT)
			elog(ERROR, "could not read rec.models");
		if (DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
			model_id = -1;
	}
	PopActiveSnapshot();
	SPI_finish();
	commit_xact();
	return model_id;
}

static void
record_failure(int64 model_id, const char *message)
{
	Datum		args[2];
	Oid			argtypes[2] = {INT8OID, TEXTOID};

	args[0] = Int64GetDatum(model_id);
	args[1] = CStringGetTextDatum(message);
	begin_xact();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute_with_args("UPDATE rec.models SET status = 'failed', error = $2, "
							  "finished_at = pg_catalog.now() "
							  "WHERE model_id = $1 AND status IN ('queued', 'training')",
							  2, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update rec.models");
	PopActiveSnapshot();
	SPI_finish();
	commit_xact();
}

/* Jobs left in 'training' by a crash: only this worker trains here. */
static void
recover_jobs(void)
{
	begin_xact();
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	PushActiveSnapshot(GetTransactionSnapshot());
	if (SPI_execute("UPDATE rec.models SET status = 'failed', finished_at = pg_catalog.now(), "
					"error = 'the server stopped while this job was training; "
					"it is not restarted: queue it again with rec.train()' "
					"WHERE status = 'training'", false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update rec.models");
	if (SPI_processed > 0)
		ereport(LOG,
				(errmsg("rec: marked " UINT64_FORMAT " interrupted training job(s) as failed",
						SPI_processed)));
	PopActiveSnapshot();
	SPI_finish();
	commit_xact();
}

static bool
extension_installed(void)
{
	bool		ok;

	begin_xact();
	ok = OidIsValid(get_extension_oid("rec", true)) &&
		OidIsValid(get_namespace_oid("rec", true)) &&
		OidIsValid(get_relname_relid("models", get_namespace_oid("rec", true)));
	commit_xact();
	return ok;
}

/* ---------------------------------------------------------------- main */

static void
trainer_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	got_sigterm = true;
	/* turn a shutdown into a cancel, so the job is recorded as failed */
	InterruptPending = true;
	QueryCancelPending = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
trainer_sigint(SIGNAL_ARGS)
{
	int			save_errno = errno;

	/* only rec.cancel() of the current job interrupts it */
	if (MySlot && MySlot->cancel)
	{
		InterruptPending = true;
		QueryCancelPending = true;
	}
	SetLatch(MyLatch);
	errno = save_errno;
}

static void
release_slot(int code, Datum arg)
{
	RecTrainShared *sh = rec_train_shared();
	Latch	   *launcher;

	if (MySlot == NULL)
		return;
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);

	/*
	 * Only while the slot is still ours: once the main loop has given it up,
	 * the launcher may already have handed it to a new worker, whose
	 * progress writes must not interleave with ours (the change count
	 * assumes one writer).
	 */
	if (MySlot->pid == MyProcPid)
	{
		rec_train_set_phase(MySlot, REC_PHASE_IDLE);
		MySlot->dboid = InvalidOid;
		MySlot->pid = 0;
		MySlot->latch = NULL;
		MySlot->pending = false;
		MySlot->model_id = 0;
		MySlot->cancel = false;
	}
	launcher = sh->launcher_latch;
	LWLockRelease(sh->lock);
	if (launcher)
		SetLatch(launcher);
	rec_train_broadcast();
}

void
rec_train_worker_main(Datum arg)
{
	int			slotno = DatumGetInt32(arg);
	RecTrainShared *sh = rec_train_shared();
	sigjmp_buf	local_sigjmp_buf;
	bool		released = false;
	static volatile bool recovering = false;
	uint64		generation;
	Oid			dboid = InvalidOid;
	RecTrainSlot *slot;

	if (sh == NULL || slotno < 0 || slotno >= sh->nslots)
		proc_exit(0);
	slot = &sh->slots[slotno];
	memcpy(&generation, MyBgworkerEntry->bgw_extra, sizeof(generation));

	pqsignal(SIGTERM, trainer_sigterm);
	pqsignal(SIGINT, trainer_sigint);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);

	/*
	 * OpenBLAS runs single-threaded inside our own threads. Signals are
	 * still blocked here, so any thread it starts never runs a handler.
	 */
	openblas_set_num_threads(1);
	BackgroundWorkerUnblockSignals();

	/*
	 * Take the slot before connecting, so that a failure to connect (the
	 * database was dropped, or does not allow connections) frees it too.
	 * A launcher that no longer expected us (it took the slot back, see
	 * launcher.c) has moved the generation on: then it is not ours.
	 */
	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	if (slot->generation == generation && OidIsValid(slot->dboid) && slot->pid == 0)
	{
		slot->pid = MyProcPid;
		slot->latch = MyLatch;
		dboid = slot->dboid;
		MySlot = slot;
	}
	LWLockRelease(sh->lock);
	if (MySlot == NULL)
	{
		elog(DEBUG1, "rec training worker: slot %d was given to another worker", slotno);
		proc_exit(0);
	}
	before_shmem_exit(release_slot, 0);

	BackgroundWorkerInitializeConnectionByOid(dboid, InvalidOid, 0);

	/*
	 * The worker runs as the bootstrap superuser: its own queries must not
	 * resolve operators or functions through a search_path the database's
	 * owner may have set (ALTER DATABASE ... SET search_path), or an
	 * operator planted there would run as a superuser. A job's source
	 * query gets the search_path of its requester (load_source).
	 */
	SetConfigOption("search_path", "pg_catalog, pg_temp", PGC_SUSET, PGC_S_SESSION);
	pgstat_report_appname("rec training worker");

	JobContext = AllocSetContextCreate(TopMemoryContext, "rec training job",
									   ALLOCSET_DEFAULT_SIZES);
	MemoryContextSwitchTo(JobContext);

	if (!extension_installed())
		proc_exit(0);

	/*
	 * Error recovery: log, roll back, free the job's memory, record the job
	 * as failed, and go on with the next one (or exit on shutdown, or after
	 * an error outside any job).
	 */
	if (sigsetjmp(local_sigjmp_buf, 1) != 0)
	{
		ErrorData  *edata;
		int64		failed_id = MySlot->model_id;
		char	   *msg;

		error_context_stack = NULL;
		HOLD_INTERRUPTS();
		if (recovering)
		{
			/* failed while recording a failure: give up, a restart cleans up */
			EmitErrorReport();
			proc_exit(1);
		}
		recovering = true;
		MemoryContextSwitchTo(JobContext);
		edata = CopyErrorData();
		EmitErrorReport();
		AbortCurrentTransaction();
		LWLockReleaseAll();
		FlushErrorState();
		job_cleanup();
		MemoryContextSwitchTo(JobContext);

		if (got_sigterm)
			msg = pstrdup("training stopped: the server is shutting down (or the worker was terminated)");
		else if (MySlot->cancel)
			msg = psprintf("cancelled by rec.cancel() (role %s)",
						   NameStr(MySlot->cancel_by));
		else if (edata->detail)
			msg = psprintf("%s (%s)", edata->message, edata->detail);
		else
			msg = pstrdup(edata->message ? edata->message : "unknown error");
		FreeErrorData(edata);
		QueryCancelPending = false;

		if (failed_id != 0)
		{
			record_failure(failed_id, msg);
			LWLockAcquire(sh->lock, LW_EXCLUSIVE);
			MySlot->model_id = 0;
			MySlot->cancel = false;
			LWLockRelease(sh->lock);
			rec_train_broadcast();
		}
		recovering = false;
		RESUME_INTERRUPTS();
		if (got_sigterm)
			proc_exit(0);

		/*
		 * An error outside any job (reading the queue itself, e.g. in a
		 * database made read-only) would recur at once: retrying would spin
		 * and fill the log. Leave; the launcher starts a worker here again
		 * when the next job is queued, and at server start.
		 */
		if (failed_id == 0)
			proc_exit(1);
	}
	PG_exception_stack = &local_sigjmp_buf;

	recover_jobs();

	while (!got_sigterm)
	{
		int64		model_id;

		MemoryContextSwitchTo(JobContext);
		MemoryContextReset(JobContext);

		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		MySlot->pending = false;
		LWLockRelease(sh->lock);

		model_id = claim_job();
		if (model_id < 0)
		{
			/*
			 * Leaving now would strand those jobs until the next rec.train()
			 * in this database: wait for the lockers to finish.
			 */
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
							 1000L, PG_WAIT_EXTENSION);
			ResetLatch(MyLatch);
			continue;
		}
		if (model_id == 0)
		{
			/* nothing queued: leave, unless a job arrived meanwhile */
			LWLockAcquire(sh->lock, LW_EXCLUSIVE);
			if (!MySlot->pending)
			{
				MySlot->dboid = InvalidOid;
				MySlot->pid = 0;
				MySlot->latch = NULL;
				released = true;
			}
			LWLockRelease(sh->lock);
			if (released)
				break;
			continue;
		}
		rec_train_broadcast();
		run_job(model_id);

		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		MySlot->model_id = 0;
		MySlot->cancel = false;
		LWLockRelease(sh->lock);
		rec_train_set_phase(MySlot, REC_PHASE_IDLE);
		rec_train_broadcast();
		pgstat_report_activity(STATE_IDLE, NULL);
	}
	if (released)
	{
		Latch	   *launcher;

		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		launcher = sh->launcher_latch;
		LWLockRelease(sh->lock);
		if (launcher)
			SetLatch(launcher);
	}
	proc_exit(0);
}
