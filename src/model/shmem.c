/*
 * shmem.c
 *	  Settings of training, and the shared memory through which backends,
 *	  the launcher and training workers talk.
 *
 * Shared memory holds one slot per training worker that may run at once
 * (rec.max_training_workers). A slot says which database its worker serves,
 * which job it trains, whether rec.cancel() asked it to stop, and the job's
 * progress for the rec.training_progress view. Backends never start
 * workers themselves: rec.train() asks at commit (rec_train_request_worker)
 * and either pokes the database's running worker or leaves the database in
 * a small list for the launcher.
 */
#include "postgres.h"

#include <unistd.h>

#include "miscadmin.h"
#include "postmaster/bgworker.h"
#include "storage/ipc.h"
#include "storage/shmem.h"
#include "utils/guc.h"
#include "utils/timestamp.h"

#include "model/model.h"

int			rec_train_max_threads = 2;
int			rec_train_memory_limit = 1024 * 1024;	/* kB: 1 GB */
int			rec_max_training_workers = 2;

static RecTrainShared *shared = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

static Size
shared_size(void)
{
	return add_size(offsetof(RecTrainShared, slots),
					mul_size(rec_max_training_workers, sizeof(RecTrainSlot)));
}

static void
model_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(shared_size());
	RequestNamedLWLockTranche("rec_train", 1);
}

static void
model_shmem_startup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	shared = ShmemInitStruct("rec_train", shared_size(), &found);
	if (!found)
	{
		memset(shared, 0, shared_size());
		shared->lock = &(GetNamedLWLockTranche("rec_train"))->lock;
		ConditionVariableInit(&shared->state_cv);
		shared->nslots = rec_max_training_workers;
		shared->rescan = true;
	}
	LWLockRelease(AddinShmemInitLock);
}

RecTrainShared *
rec_train_shared(void)
{
	return shared;
}

const char *
rec_train_phase_name(int phase)
{
	switch ((RecTrainPhase) phase)
	{
		case REC_PHASE_IDLE:
			return "idle";
		case REC_PHASE_STARTING:
			return "starting";
		case REC_PHASE_LOADING:
			return "loading";
		case REC_PHASE_PREPARING:
			return "preparing";
		case REC_PHASE_TRAINING:
			return "training";
		case REC_PHASE_WRITING:
			return "writing";
		case REC_PHASE_INDEXING:
			return "indexing";
		case REC_PHASE_EVALUATING:
			return "evaluating";
	}
	return "unknown";
}

void
rec_train_progress_begin(RecTrainSlot *slot)
{
	slot->changecount++;
	pg_write_barrier();
}

void
rec_train_progress_end(RecTrainSlot *slot)
{
	pg_write_barrier();
	slot->changecount++;
}

void
rec_train_set_phase(RecTrainSlot *slot, RecTrainPhase phase)
{
	rec_train_progress_begin(slot);
	slot->phase = phase;
	slot->phase_start = GetCurrentTimestamp();
	rec_train_progress_end(slot);
}

void
rec_train_broadcast(void)
{
	if (shared)
		ConditionVariableBroadcast(&shared->state_cv);
}

void
rec_train_request_worker(Oid dboid)
{
	Latch	   *latch = NULL;
	bool		found = false;

	if (shared == NULL)
		return;

	LWLockAcquire(shared->lock, LW_EXCLUSIVE);
	for (int i = 0; i < shared->nslots; i++)
	{
		RecTrainSlot *slot = &shared->slots[i];

		if (slot->dboid == dboid)
		{
			slot->pending = true;
			latch = slot->latch;
			found = true;
			break;
		}
	}
	if (!found)
	{
		bool		listed = false;

		for (int i = 0; i < shared->nwanted; i++)
			if (shared->wanted[i] == dboid)
				listed = true;
		if (!listed)
		{
			if (shared->nwanted < REC_TRAIN_MAX_WANTED)
				shared->wanted[shared->nwanted++] = dboid;
			else
				shared->rescan = true;
		}
		latch = shared->launcher_latch;
	}
	LWLockRelease(shared->lock);

	if (latch)
		SetLatch(latch);
}

void
rec_model_init(void)
{
	BackgroundWorker worker;

	DefineCustomIntVariable("rec.train_max_threads",
							"Most threads one training job may use.",
							"A job's threads argument is capped by this.",
							&rec_train_max_threads,
							2, 1, 64,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rec.train_memory_limit",
							"Most memory one training job may use.",
							"A job whose data, factors and work space need more is refused.",
							&rec_train_memory_limit,
							1024 * 1024, 1024, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_KB,
							NULL, NULL, NULL);

	DefineCustomIntVariable("rec.max_training_workers",
							"Most training workers running at once (one per database).",
							NULL,
							&rec_max_training_workers,
							2, 1, REC_TRAIN_MAX_SLOTS,
							PGC_POSTMASTER, 0,
							NULL, NULL, NULL);

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = model_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = model_shmem_startup;

	/* The launcher: starts training workers where jobs wait. */
	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 5;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "rec");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rec_train_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "rec training launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "rec training launcher");
	RegisterBackgroundWorker(&worker);
}
