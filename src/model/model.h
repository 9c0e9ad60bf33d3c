/*
 * model.h
 *	  The face of src/model: the backend side of training and the model
 *	  registry, compiled into rec.so (no OpenBLAS here).
 *
 * It owns the settings of training, the shared memory through which
 * backends and training workers talk (who trains which database, progress,
 * cancellation), the launcher background worker, and the SQL functions
 * rec.train(), rec.wait(), rec.cancel() and rec.train_progress().
 *
 * The training worker itself lives in src/als (rec_train.so); it uses the
 * shared state declared here. A database gets at most one training worker
 * at a time; it trains that database's queued jobs one after another and
 * exits when the queue is empty.
 */
#ifndef REC_MODEL_H
#define REC_MODEL_H

#include "postgres.h"

#include "datatype/timestamp.h"
#include "storage/condition_variable.h"
#include "storage/latch.h"
#include "storage/lwlock.h"

/* Most training workers that can run at once (rec.max_training_workers). */
#define REC_TRAIN_MAX_SLOTS			16
/* Databases waiting for a worker that shared memory remembers. */
#define REC_TRAIN_MAX_WANTED		64
/* Per-iteration history kept for the progress view (= most iterations). */
#define REC_TRAIN_MAX_HISTORY		1000

typedef enum RecTrainPhase
{
	REC_PHASE_IDLE = 0,
	REC_PHASE_STARTING,
	REC_PHASE_LOADING,
	REC_PHASE_PREPARING,
	REC_PHASE_TRAINING,
	REC_PHASE_WRITING,
	REC_PHASE_INDEXING,
	REC_PHASE_EVALUATING
} RecTrainPhase;

typedef struct RecTrainSlot
{
	/* Assignment: protected by RecTrainShared.lock. */
	Oid			dboid;			/* database served; InvalidOid when free */
	int			pid;			/* worker's pid, 0 until it has started */
	uint64		generation;		/* bumped at each assignment (and when the
								 * launcher takes a slot back): a worker
								 * started for an older one leaves at once */
	TimestampTz assigned_at;	/* when the launcher assigned it */
	Latch	   *latch;			/* worker's latch, NULL until started */
	bool		pending;		/* a job was queued since the last scan */
	int64		model_id;		/* job being trained, 0 if none */
	bool		cancel;			/* rec.cancel() asked to stop model_id */
	NameData	cancel_by;		/* role that cancelled */

	/*
	 * Progress: written only by the worker, between
	 * rec_train_progress_begin() and _end(); readers copy it with the
	 * change-count protocol of pgstat (retry while odd or changed).
	 */
	uint32		changecount;
	Oid			requester;		/* role that queued the job: who may watch it */
	int			phase;			/* RecTrainPhase */
	int			iteration;		/* iterations done */
	int			iterations;		/* iterations asked for */
	int64		rows_read;		/* source rows read so far */
	int64		users;
	int64		items;
	int64		interactions;	/* distinct (user, item) pairs */
	TimestampTz job_start;
	TimestampTz phase_start;
	int			nhistory;
	float8		loss[REC_TRAIN_MAX_HISTORY];
	float8		seconds[REC_TRAIN_MAX_HISTORY];
} RecTrainSlot;

typedef struct RecTrainShared
{
	LWLock	   *lock;			/* protects assignment fields and the lists */
	int			launcher_pid;
	Latch	   *launcher_latch;
	int			nwanted;		/* databases that need a worker */
	Oid			wanted[REC_TRAIN_MAX_WANTED];
	bool		rescan;			/* wanted[] overflowed: scan all databases */
	ConditionVariable state_cv; /* broadcast when a job changes state */
	int			nslots;
	RecTrainSlot slots[FLEXIBLE_ARRAY_MEMBER];
} RecTrainShared;

/* Settings (GUCs). */
extern int	rec_train_max_threads;		/* rec.train_max_threads */
extern int	rec_train_memory_limit;		/* rec.train_memory_limit, kB */
extern int	rec_max_training_workers;	/* rec.max_training_workers */

/* Owner of a relation. */
extern Oid	rec_rel_owner(Oid relid);

/* Called from _PG_init. */
extern void rec_model_init(void);

/* Shared state, or NULL when rec was not in shared_preload_libraries. */
extern RecTrainShared *rec_train_shared(void);

extern const char *rec_train_phase_name(int phase);

/* Progress updates by the worker that owns the slot. */
extern void rec_train_progress_begin(RecTrainSlot *slot);
extern void rec_train_progress_end(RecTrainSlot *slot);
extern void rec_train_set_phase(RecTrainSlot *slot, RecTrainPhase phase);

/* Wake everyone waiting in rec.wait(). */
extern void rec_train_broadcast(void);

/*
 * Ask for a training worker for the current database (what rec.train()
 * does at commit). Safe to call in a commit callback: never raises errors.
 */
extern void rec_train_request_worker(Oid dboid);

/* The launcher's entry point (a static background worker in rec.so). */
extern PGDLLEXPORT void rec_train_launcher_main(Datum arg);

#endif							/* REC_MODEL_H */
