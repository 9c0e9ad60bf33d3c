/*
 * launcher.c
 *	  The training launcher: a background worker, connected to no database,
 *	  that starts one training worker per database that has queued jobs.
 *
 * At its start (server start, end of recovery, or a restart of the launcher
 * itself) it starts a worker in every database that accepts connections
 * and is not a template: a worker finds out whether rec is installed
 * there, marks jobs that were training when the server stopped as failed,
 * trains what is queued, and exits. Afterwards it starts workers only for
 * databases that rec.train() named at commit. At most
 * rec.max_training_workers run at once; the rest wait their turn.
 *
 * The worker's code is in rec_train.so (src/als), which links OpenBLAS;
 * this file only registers it, so OpenBLAS is never loaded here.
 */
#include "postgres.h"

#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_database.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "model/model.h"

/* Databases this launcher still has to start a worker for. */
static Oid *todo = NULL;
static int	ntodo = 0;
static int	maxtodo = 0;

/* Our handle on each slot's worker, to notice workers that never started. */
static BackgroundWorkerHandle *handles[REC_TRAIN_MAX_SLOTS];

static void
todo_add(Oid dboid)
{
	for (int i = 0; i < ntodo; i++)
		if (todo[i] == dboid)
			return;
	if (ntodo == maxtodo)
	{
		maxtodo = maxtodo ? maxtodo * 2 : 64;
		todo = todo ? repalloc(todo, sizeof(Oid) * maxtodo)
			: MemoryContextAlloc(TopMemoryContext, sizeof(Oid) * maxtodo);
	}
	todo[ntodo++] = dboid;
}

static void
todo_remove(int i)
{
	memmove(&todo[i], &todo[i + 1], sizeof(Oid) * (ntodo - i - 1));
	ntodo--;
}

/* Every database a worker could connect to. */
static void
scan_databases(void)
{
	Relation	rel;
	TableScanDesc scan;
	HeapTuple	tup;

	StartTransactionCommand();
	PushActiveSnapshot(GetTransactionSnapshot());
	rel = table_open(DatabaseRelationId, AccessShareLock);
	scan = table_beginscan_catalog(rel, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		Form_pg_database db = (Form_pg_database) GETSTRUCT(tup);

		if (db->datallowconn && !db->datistemplate)
			todo_add(db->oid);
	}
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	PopActiveSnapshot();
	CommitTransactionCommand();
}

static bool
start_worker(int slotno)
{
	BackgroundWorker worker;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "rec_train");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "rec_train_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "rec training worker");
	snprintf(worker.bgw_type, BGW_MAXLEN, "rec training worker");
	worker.bgw_main_arg = Int32GetDatum(slotno);
	worker.bgw_notify_pid = MyProcPid;

	return RegisterDynamicBackgroundWorker(&worker, &handles[slotno]);
}

/*
 * Free slots whose worker stopped without clearing them (it failed before
 * it could register itself, e.g. its database was dropped).
 */
static void
reap_workers(RecTrainShared *sh)
{
	for (int i = 0; i < sh->nslots; i++)
	{
		pid_t		pid;

		if (handles[i] == NULL)
			continue;
		if (GetBackgroundWorkerPid(handles[i], &pid) != BGWH_STOPPED)
			continue;
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		if (OidIsValid(sh->slots[i].dboid) && sh->slots[i].pid == 0)
		{
			RecTrainSlot *slot = &sh->slots[i];

			slot->dboid = InvalidOid;
			slot->latch = NULL;
			slot->pending = false;
			slot->model_id = 0;
			slot->cancel = false;
		}
		LWLockRelease(sh->lock);
		pfree(handles[i]);
		handles[i] = NULL;
	}
}

/* Returns true if some database is still waiting for a free slot. */
static bool
start_workers(RecTrainShared *sh)
{
	int			starting[REC_TRAIN_MAX_SLOTS];
	Oid			startdb[REC_TRAIN_MAX_SLOTS];
	int			nstart = 0;
	bool		retry = false;

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sh->nwanted; i++)
		todo_add(sh->wanted[i]);
	sh->nwanted = 0;
	LWLockRelease(sh->lock);

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int t = 0; t < ntodo;)
	{
		Oid			db = todo[t];
		int			freeslot = -1;
		bool		running = false;

		for (int i = 0; i < sh->nslots; i++)
		{
			if (sh->slots[i].dboid == db)
			{
				sh->slots[i].pending = true;
				if (sh->slots[i].latch)
					SetLatch(sh->slots[i].latch);
				running = true;
				break;
			}
			if (freeslot < 0 && !OidIsValid(sh->slots[i].dboid) && handles[i] == NULL)
				freeslot = i;
		}
		if (running)
		{
			todo_remove(t);
			continue;
		}
		if (freeslot < 0)
		{
			retry = true;
			break;
		}
		sh->slots[freeslot].dboid = db;
		sh->slots[freeslot].pid = 0;
		sh->slots[freeslot].latch = NULL;
		sh->slots[freeslot].pending = true;
		sh->slots[freeslot].model_id = 0;
		sh->slots[freeslot].cancel = false;
		starting[nstart] = freeslot;
		startdb[nstart] = db;
		nstart++;
		todo_remove(t);
	}
	LWLockRelease(sh->lock);

	for (int s = 0; s < nstart; s++)
	{
		if (start_worker(starting[s]))
			continue;
		/* no background worker slot free: put it back and try later */
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		sh->slots[starting[s]].dboid = InvalidOid;
		sh->slots[starting[s]].pending = false;
		LWLockRelease(sh->lock);
		handles[starting[s]] = NULL;
		todo_add(startdb[s]);
		retry = true;
	}
	return retry;
}

void
rec_train_launcher_main(Datum arg)
{
	RecTrainShared *sh = rec_train_shared();
	bool		retry = false;

	pqsignal(SIGTERM, SignalHandlerForShutdownRequest);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	/* no database: we read only the shared catalog pg_database */
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("rec training launcher");

	if (sh == NULL)
		proc_exit(0);

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	sh->launcher_pid = MyProcPid;
	sh->launcher_latch = MyLatch;
	sh->rescan = true;			/* a (re)started launcher looks everywhere */
	LWLockRelease(sh->lock);

	for (;;)
	{
		bool		rescan;

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		reap_workers(sh);

		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		rescan = sh->rescan;
		sh->rescan = false;
		LWLockRelease(sh->lock);
		if (rescan)
			scan_databases();

		retry = start_workers(sh);

		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 retry ? 1000L : 60000L,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	sh->launcher_pid = 0;
	sh->launcher_latch = NULL;
	LWLockRelease(sh->lock);
	proc_exit(0);
}
