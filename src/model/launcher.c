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
 * The launcher's handles on the workers it registered live in its own
 * memory. A launcher that is terminated is restarted by the postmaster
 * (it exits with code 1 for that), and the new one has no handles: it
 * finds each slot a worker holds through shared memory instead. A worker
 * that has started frees its slot itself when it exits, even when it fails
 * before it has connected to its database. A slot whose worker was
 * registered by an earlier launcher but has not started after
 * ORPHAN_GRACE_MS (the postmaster could not start it) is taken back, and
 * its database gets a worker again; should that worker start after all, it
 * sees from the slot's generation that the slot is no longer its own and
 * leaves.
 *
 * The worker's code is in rec_train.so (src/als), which links OpenBLAS;
 * this file only registers it, so OpenBLAS is never loaded here.
 */
#include "postgres.h"

#include <signal.h>

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
#include "utils/timestamp.h"

#include "model/model.h"

/* How long a slot may wait for a worker no launcher of ours registered. */
#define ORPHAN_GRACE_MS		10000

/* Databases this launcher still has to start a worker for. */
static Oid *todo = NULL;
static int	ntodo = 0;
static int	maxtodo = 0;

/*
 * Our handle on each slot's worker, to notice workers that never started,
 * and the slot's generation when we registered it.
 */
static BackgroundWorkerHandle *handles[REC_TRAIN_MAX_SLOTS];
static uint64 handle_gen[REC_TRAIN_MAX_SLOTS];

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
start_worker(int slotno, uint64 generation)
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
	memcpy(worker.bgw_extra, &generation, sizeof(generation));
	worker.bgw_notify_pid = MyProcPid;

	handle_gen[slotno] = generation;
	return RegisterDynamicBackgroundWorker(&worker, &handles[slotno]);
}

static void
free_slot(RecTrainSlot *slot)
{
	slot->dboid = InvalidOid;
	slot->pid = 0;
	slot->latch = NULL;
	slot->pending = false;
	slot->model_id = 0;
	slot->cancel = false;
	slot->generation++;
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
		if (OidIsValid(sh->slots[i].dboid) && sh->slots[i].pid == 0 &&
			sh->slots[i].generation == handle_gen[i])
			free_slot(&sh->slots[i]);
		LWLockRelease(sh->lock);
		pfree(handles[i]);
		handles[i] = NULL;
	}
}

/*
 * Slots held for a worker we have no handle on: an earlier launcher
 * registered it. A worker that has started frees its slot when it exits;
 * one whose process is gone without doing so, or that has not started
 * within ORPHAN_GRACE_MS, will never free it: take the slot back and start
 * a worker for its database again, so its queued jobs are not stranded.
 * Returns how many milliseconds until a slot should be looked at again,
 * or -1.
 */
static long
recover_orphans(RecTrainShared *sh)
{
	TimestampTz now = GetCurrentTimestamp();
	long		wake = -1;

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	for (int i = 0; i < sh->nslots; i++)
	{
		RecTrainSlot *slot = &sh->slots[i];
		Oid			db = slot->dboid;
		bool		gone = false;

		if (handles[i] != NULL || !OidIsValid(db))
			continue;
		if (slot->pid != 0)
			gone = (kill(slot->pid, 0) != 0 && errno == ESRCH);
		else if (TimestampDifferenceExceeds(slot->assigned_at, now, ORPHAN_GRACE_MS))
			gone = true;
		else
		{
			long		left = ORPHAN_GRACE_MS -
				(long) ((now - slot->assigned_at) / 1000);

			left = Max(left, 10);
			wake = wake < 0 ? left : Min(wake, left);
		}
		if (!gone)
			continue;
		ereport(LOG,
				(errmsg("rec: taking back training slot %d of database %u: its worker %s",
						i, db, slot->pid != 0 ? "is gone" : "never started")));
		free_slot(slot);
		todo_add(db);
	}
	LWLockRelease(sh->lock);
	return wake;
}

/* Returns true if some database is still waiting for a free slot. */
static bool
start_workers(RecTrainShared *sh)
{
	int			starting[REC_TRAIN_MAX_SLOTS];
	Oid			startdb[REC_TRAIN_MAX_SLOTS];
	uint64		startgen[REC_TRAIN_MAX_SLOTS];
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
		sh->slots[freeslot].generation++;
		sh->slots[freeslot].assigned_at = GetCurrentTimestamp();
		starting[nstart] = freeslot;
		startgen[nstart] = sh->slots[freeslot].generation;
		startdb[nstart] = db;
		nstart++;
		todo_remove(t);
	}
	LWLockRelease(sh->lock);

	for (int s = 0; s < nstart; s++)
	{
		if (start_worker(starting[s], startgen[s]))
			continue;
		/* no background worker slot free: put it back and try later */
		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		free_slot(&sh->slots[starting[s]]);
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
		long		timeout;
		long		orphan_wake;

		CHECK_FOR_INTERRUPTS();
		if (ShutdownRequestPending)
			break;
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}

		reap_workers(sh);
		orphan_wake = recover_orphans(sh);

		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		rescan = sh->rescan;
		sh->rescan = false;
		LWLockRelease(sh->lock);
		if (rescan)
			scan_databases();

		retry = start_workers(sh);

		timeout = retry ? 1000L : 60000L;
		if (orphan_wake >= 0)
			timeout = Min(timeout, orphan_wake);
		(void) WaitLatch(MyLatch,
						 WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout,
						 PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}

	LWLockAcquire(sh->lock, LW_EXCLUSIVE);
	sh->launcher_pid = 0;
	sh->launcher_latch = NULL;
	LWLockRelease(sh->lock);

	/*
	 * Exit code 0 would unregister the launcher for good: after a
	 * pg_terminate_backend() no training would start again until the
	 * server restarts. With 1 the postmaster starts a new launcher after
	 * bgw_restart_time (at a shutdown it starts nothing).
	 */
	proc_exit(1);
}
