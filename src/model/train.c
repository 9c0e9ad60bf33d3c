/*
 * train.c
 *	  SQL functions of training jobs: rec.train(), rec.wait(), rec.cancel()
 *	  and rec.train_progress() (behind the rec.training_progress view).
 *
 * rec.train() checks everything it can up front, in the caller's session
 * and with the caller's privileges (arguments, the source query's syntax,
 * columns and types), then queues a row in rec.models and returns its id.
 * At commit it asks for a training worker for this database; the caller
 * never waits for training.
 *
 * Writes to the registry tables are made as the owner of rec.models, so a
 * role needs only EXECUTE on these functions (they are not granted to
 * PUBLIC), not privileges on the tables.
 */
#include "postgres.h"

#include <float.h>
#include <signal.h>

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"
#include "utils/regproc.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "model/model.h"

/*
 * What rec.train() reads when no source is given: every event, weighted by
 * its kind's weight times its value. Repeated events of a pair are summed
 * by the trainer.
 */
#define REC_DEFAULT_SOURCE \
	"SELECT e.user_id, e.item_id, k.weight * e.value AS weight, e.occurred_at " \
	"FROM rec.events e JOIN rec.event_kinds k ON k.kind = e.kind"

static bool notify_at_commit = false;
static bool xact_callback_registered = false;

static void
train_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			if (notify_at_commit)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot PREPARE a transaction that called rec.train()")));
			break;
		case XACT_EVENT_COMMIT:
			if (notify_at_commit)
			{
				notify_at_commit = false;
				rec_train_request_worker(MyDatabaseId);
			}
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			notify_at_commit = false;
			break;
		default:
			break;
	}
}

Oid
rec_rel_owner(Oid relid)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	return owner;
}

/* The owner of rec.models, as whom registry rows are written. */
static Oid
registry_owner(void)
{
	Oid			nsp = get_namespace_oid("rec", false);
	Oid			relid = get_relname_relid("models", nsp);

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("table rec.models does not exist"),
				 errhint("Is the extension rec installed in this database?")));
	return rec_rel_owner(relid);
}

typedef struct AsOwner
{
	Oid			saved_user;
	int			saved_sec;
	int			guc_nest;
} AsOwner;

/*
 * Act as the registry's owner (usually a superuser) for the registry
 * queries below. The caller's search_path must not come along: with it, a
 * role allowed to call rec.wait() could put its own "=" operator ahead of
 * pg_catalog's and have it run as the owner. As in a SECURITY DEFINER
 * function with SET search_path, the path is pinned until restore_user();
 * an error unwinds both with the (sub)transaction.
 */
static void
become_owner(AsOwner *s)
{
	Oid			owner = registry_owner();

	GetUserIdAndSecContext(&s->saved_user, &s->saved_sec);
	s->guc_nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp",
							 PGC_USERSET, PGC_S_SESSION,
							 GUC_ACTION_SAVE, true, 0, false);
	SetUserIdAndSecContext(owner, s->saved_sec | SECURITY_LOCAL_USERID_CHANGE);
}

static void
restore_user(AsOwner *s)
{
	SetUserIdAndSecContext(s->saved_user, s->saved_sec);
	AtEOXact_GUC(true, s->guc_nest);
}

static void
require_shared(void)
{
	if (rec_train_shared() == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("training needs rec in shared_preload_libraries"),
				 errhint("Add rec to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * A source is a query unless it looks like a (possibly qualified, possibly
 * quoted) relation name: no whitespace, parenthesis or semicolon outside
 * double quotes.
 */
static bool
looks_like_query(const char *s)
{
	bool		quoted = false;

	while (*s && isspace((unsigned char) *s))
		s++;
	for (; *s; s++)
	{
		if (*s == '"')
			quoted = !quoted;
		else if (!quoted && (isspace((unsigned char) *s) || *s == '(' || *s == ';'))
			return true;
	}
	return false;
}

static bool
is_integer_type(Oid t)
{
	return t == INT2OID || t == INT4OID || t == INT8OID;
}

/*
 * Check the source query as the caller: it must parse, be one SELECT, and
 * return user_id and item_id (integers), and optionally weight (a number)
 * and occurred_at (a time, needed for holdout).
 */
static void
check_source(const char *sql, bool holdout)
{
	SPIPlanPtr	plan;
	List	   *sources;
	CachedPlanSource *ps;
	TupleDesc	td;
	int			cu = -1,
				ci = -1,
				cw = -1,
				ct = -1;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = SPI_prepare(sql, 0, NULL);
	if (plan == NULL)
		elog(ERROR, "could not prepare the training source: %s",
			 SPI_result_code_string(SPI_result));
	sources = SPI_plan_get_plan_sources(plan);
	if (list_length(sources) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the training source must be a single query")));
	ps = linitial(sources);
	if (ps->commandTag != CMDTAG_SELECT || ps->resultDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the training source must be a SELECT query or a table name")));
	td = ps->resultDesc;
	for (int i = 0; i < td->natts; i++)
	{
		Form_pg_attribute a = TupleDescAttr(td, i);
		const char *name = NameStr(a->attname);

		if (strcmp(name, "user_id") == 0 && cu < 0)
			cu = i;
		else if (strcmp(name, "item_id") == 0 && ci < 0)
			ci = i;
		else if (strcmp(name, "weight") == 0 && cw < 0)
			cw = i;
		else if (strcmp(name, "occurred_at") == 0 && ct < 0)
			ct = i;
	}
	if (cu < 0 || ci < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("the training source must return columns user_id and item_id"),
				 errdetail("Optional columns: weight (a number, default 1) and occurred_at (a time, needed for holdout).")));
	if (!is_integer_type(TupleDescAttr(td, cu)->atttypid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column user_id of the training source must be smallint, integer or bigint, not %s",
						format_type_be(TupleDescAttr(td, cu)->atttypid))));
	if (!is_integer_type(TupleDescAttr(td, ci)->atttypid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column item_id of the training source must be smallint, integer or bigint, not %s",
						format_type_be(TupleDescAttr(td, ci)->atttypid))));
	if (cw >= 0)
	{
		Oid			t = TupleDescAttr(td, cw)->atttypid;

		if (!is_integer_type(t) && t != FLOAT4OID && t != FLOAT8OID && t != NUMERICOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column weight of the training source must be a number, not %s",
							format_type_be(t))));
	}
	if (ct >= 0)
	{
		Oid			t = TupleDescAttr(td, ct)->atttypid;

		if (t != TIMESTAMPTZOID && t != TIMESTAMPOID && t != DATEOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column occurred_at of the training source must be a timestamp or date, not %s",
							format_type_be(t))));
	}
	else if (holdout)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("holdout needs a column occurred_at in the training source"),
				 errdetail("Holdout keeps each user's latest interaction aside for evaluation.")));

	/*
	 * Privileges are checked when a query starts, not when it is parsed.
	 * (The newline lets a source end in a -- comment.)
	 */
	if (SPI_execute(psprintf("SELECT * FROM (%s\n) AS rec_source LIMIT 0", sql), true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not check the training source");
	SPI_finish();
}

static void
json_key_int(StringInfo b, const char *key, int64 v)
{
	appendStringInfo(b, "%s\"%s\": " INT64_FORMAT, b->len > 1 ? ", " : "", key, v);
}

static void
json_key_float(StringInfo b, const char *key, double v)
{
	appendStringInfo(b, "%s\"%s\": %s", b->len > 1 ? ", " : "", key, float8out_internal(v));
}

static void
json_key_text(StringInfo b, const char *key, const char *v)
{
	appendStringInfo(b, "%s\"%s\": ", b->len > 1 ? ", " : "", key);
	if (v)
		escape_json(b, v);
	else
		appendStringInfoString(b, "null");
}

#define ARG_NOT_NULL(n, name) \
	do { if (PG_ARGISNULL(n)) ereport(ERROR, \
		(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED), \
		 errmsg("%s must not be null", name))); } while (0)

static void
check_range(const char *name, int64 v, int64 lo, int64 hi)
{
	if (v < lo || v > hi)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be between " INT64_FORMAT " and " INT64_FORMAT ", not " INT64_FORMAT,
						name, lo, hi, v)));
}

/*
 * rec.train(name, source, factors, iterations, regularization, alpha,
 *			 solver, cg_steps, seed, threads, holdout) -> model_id
 */
PG_FUNCTION_INFO_V1(rec_train);
Datum
rec_train(PG_FUNCTION_ARGS)
{
	char	   *name;
	char	   *source_arg = PG_ARGISNULL(1) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(1));
	int32		factors,
				iterations,
				cg_steps;
	float8		reg,
				alpha;
	char	   *solver;
	int64		seed;
	bool		threads_null = PG_ARGISNULL(9);
	int32		threads = threads_null ? 0 : PG_GETARG_INT32(9);
	bool		holdout;
	const char *sql;
	StringInfoData params;
	Datum		values[5];
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, REGROLEOID, TEXTOID};
	int64		model_id;
	AsOwner		owner;

	require_shared();
	ARG_NOT_NULL(0, "name");
	ARG_NOT_NULL(2, "factors");
	ARG_NOT_NULL(3, "iterations");
	ARG_NOT_NULL(4, "regularization");
	ARG_NOT_NULL(5, "alpha");
	ARG_NOT_NULL(6, "solver");
	ARG_NOT_NULL(7, "cg_steps");
	ARG_NOT_NULL(8, "seed");
	ARG_NOT_NULL(10, "holdout");

	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	factors = PG_GETARG_INT32(2);
	iterations = PG_GETARG_INT32(3);
	reg = PG_GETARG_FLOAT8(4);
	alpha = PG_GETARG_FLOAT8(5);
	solver = text_to_cstring(PG_GETARG_TEXT_PP(6));
	cg_steps = PG_GETARG_INT32(7);
	seed = PG_GETARG_INT64(8);
	holdout = PG_GETARG_BOOL(10);

	if (name[0] == '\0' || pg_mbstrlen(name) > 200)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("name must have 1 to 200 characters")));
	check_range("factors", factors, 1, 1024);
	check_range("iterations", iterations, 1, REC_TRAIN_MAX_HISTORY);
	check_range("cg_steps", cg_steps, 1, 32);
	if (!threads_null)
		check_range("threads", threads, 1, 64);
	if (!(reg > 0.0) || isinf(reg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("regularization must be a positive finite number")));
	if (!(alpha >= 0.0) || isinf(alpha))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha must be a finite number >= 0")));
	/* the trainer computes in single precision: 1e300 would become infinity, 1e-300 zero */
	if (reg < FLT_MIN || reg > FLT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("regularization %g is out of range", reg),
				 errdetail("Training computes in single precision: regularization must lie between %g and %g.",
						   FLT_MIN, FLT_MAX)));
	if (alpha > FLT_MAX)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("alpha %g is out of range", alpha),
				 errdetail("Training computes in single precision: alpha must be at most %g.", FLT_MAX)));
	if (strcmp(solver, "cg") != 0 && strcmp(solver, "cholesky") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown solver \"%s\"", solver),
				 errhint("The solvers are \"cg\" (conjugate gradient) and \"cholesky\" (exact).")));

	/* the source: the events, a relation, or a query */
	if (source_arg == NULL)
	{
		Oid			nsp = get_namespace_oid("rec", false);

		if (!OidIsValid(get_relname_relid("events", nsp)) ||
			!OidIsValid(get_relname_relid("event_kinds", nsp)))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("no training source given, and rec.events does not exist"),
					 errhint("Pass a table name or a query returning user_id, item_id and optionally weight and occurred_at.")));
		sql = REC_DEFAULT_SOURCE;
	}
	else if (looks_like_query(source_arg))
		sql = source_arg;
	else
	{
		RangeVar   *rv = makeRangeVarFromNameList(stringToQualifiedNameList(source_arg));
		Oid			relid = RangeVarGetRelid(rv, NoLock, false);

		sql = psprintf("SELECT * FROM %s",
					   quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
												  get_rel_name(relid)));
	}
	check_source(sql, holdout);

	initStringInfo(&params);
	appendStringInfoChar(&params, '{');
	json_key_int(&params, "factors", factors);
	json_key_int(&params, "iterations", iterations);
	json_key_float(&params, "regularization", reg);
	json_key_float(&params, "alpha", alpha);
	json_key_text(&params, "solver", solver);
	json_key_int(&params, "cg_steps", cg_steps);
	json_key_int(&params, "seed", seed);
	if (threads_null)
		json_key_text(&params, "threads", NULL);
	else
		json_key_int(&params, "threads", threads);
	appendStringInfo(&params, ", \"holdout\": %s", holdout ? "true" : "false");
	json_key_text(&params, "search_path", GetConfigOption("search_path", false, false));
	appendStringInfoChar(&params, '}');

	values[0] = CStringGetTextDatum(name);
	values[1] = CStringGetTextDatum(params.data);
	values[2] = CStringGetTextDatum(sql);
	values[3] = ObjectIdGetDatum(GetUserId());
	values[4] = CStringGetTextDatum(source_arg ? source_arg : "rec.events");

	become_owner(&owner);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("INSERT INTO rec.models (name, algorithm, params, source_query, requested_by, source) "
							  "VALUES ($1, 'als', $2::pg_catalog.jsonb, $3, $4, $5) "
							  "RETURNING model_id",
							  5, types, values, NULL, false, 1) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "could not queue the training job");
	{
		bool		isnull;

		model_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
											   SPI_tuptable->tupdesc, 1, &isnull));
	}
	SPI_finish();
	restore_user(&owner);

	if (!xact_callback_registered)
	{
		RegisterXactCallback(train_xact_callback, NULL);
		xact_callback_registered = true;
	}
	notify_at_commit = true;

	PG_RETURN_INT64(model_id);
}

/*
 * Status of a model, whether our own transaction queued (or last wrote) it,
 * and whether our own transaction holds a lock on its row (rec.cancel()
 * locks it, and the worker must update it before the job can end).
 */
static char *
model_status(int64 model_id, bool *mine, bool *locked)
{
	Datum		arg = Int64GetDatum(model_id);
	Oid			argtype = INT8OID;
	bool		isnull;
	char	   *status;
	Datum		x;

	if (SPI_execute_with_args("SELECT status, (xmin::text)::bigint, (xmax::text)::bigint "
							  "FROM rec.models WHERE model_id = $1",
							  1, &argtype, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read rec.models");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model " INT64_FORMAT " does not exist", model_id)));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	x = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	*mine = !isnull && TransactionIdIsCurrentTransactionId((TransactionId) DatumGetInt64(x));
	x = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &isnull);
	*locked = !isnull && TransactionIdIsCurrentTransactionId((TransactionId) DatumGetInt64(x));
	return status;
}

/* rec.wait(model_id, timeout interval) -> status */
PG_FUNCTION_INFO_V1(rec_train_wait);
Datum
rec_train_wait(PG_FUNCTION_ARGS)
{
	int64		model_id = PG_GETARG_INT64(0);
	TimestampTz deadline = 0;
	RecTrainShared *sh = rec_train_shared();
	AsOwner		owner;
	char	   *status = NULL;
	MemoryContext cxt = CurrentMemoryContext;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	if (!PG_ARGISNULL(1))
	{
		Interval   *timeout = PG_GETARG_INTERVAL_P(1);

		deadline = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
														   TimestampTzGetDatum(GetCurrentTimestamp()),
														   PointerGetDatum(timeout)));
	}
	if (IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("rec.wait() cannot see a job finish inside a REPEATABLE READ or SERIALIZABLE transaction"),
				 errhint("Call it in a READ COMMITTED transaction.")));

	for (;;)
	{
		bool		mine,
					locked;

		become_owner(&owner);
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		if (status)
			pfree(status);		/* a long wait must not grow memory */
		status = model_status(model_id, &mine, &locked);
		status = MemoryContextStrdup(cxt, status);
		SPI_finish();
		restore_user(&owner);

		if (strcmp(status, "queued") != 0 && strcmp(status, "training") != 0)
			break;
		if (mine)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("model " INT64_FORMAT " was queued by this transaction; commit it before waiting", model_id),
					 errhint("The training worker starts only once the transaction that called rec.train() has committed.")));
		if (locked)
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("model " INT64_FORMAT " is locked by this transaction; its job cannot end before the transaction does", model_id),
					 errhint("rec.cancel() locks the model's row: commit, then wait.")));
		if (deadline != 0 && GetCurrentTimestamp() >= deadline)
			break;

		{
			long		ms = 1000;

			if (deadline != 0)
			{
				long		secs;
				int			usecs;

				TimestampDifference(GetCurrentTimestamp(), deadline, &secs, &usecs);
				if (secs * 1000L + usecs / 1000 < ms)
					ms = Max(secs * 1000L + usecs / 1000, 1);
			}
			if (sh)
				(void) ConditionVariableTimedSleep(&sh->state_cv, ms, PG_WAIT_EXTENSION);
			else
			{
				(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
								 Min(ms, 100), PG_WAIT_EXTENSION);
				ResetLatch(MyLatch);
			}
			CHECK_FOR_INTERRUPTS();
		}
	}
	if (sh)
		ConditionVariableCancelSleep();
	PG_RETURN_TEXT_P(cstring_to_text(status));
}

/* rec.cancel(model_id) -> true if the job was queued or training */
PG_FUNCTION_INFO_V1(rec_train_cancel);
Datum
rec_train_cancel(PG_FUNCTION_ARGS)
{
	int64		model_id = PG_GETARG_INT64(0);
	Datum		arg = Int64GetDatum(model_id);
	Oid			argtype = INT8OID;
	RecTrainShared *sh = rec_train_shared();
	AsOwner		owner;
	char	   *status;
	Oid			requester;
	bool		isnull;
	bool		result = false;
	Oid			caller = GetUserId();

	become_owner(&owner);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	if (SPI_execute_with_args("SELECT status, requested_by FROM rec.models WHERE model_id = $1 FOR UPDATE",
							  1, &argtype, &arg, NULL, false, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read rec.models");
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model " INT64_FORMAT " does not exist", model_id)));
	status = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	requester = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull));
	if (!superuser_arg(caller) &&
		!(!isnull && SearchSysCacheExists1(AUTHOID, ObjectIdGetDatum(requester)) &&
		  has_privs_of_role(caller, requester)))
	{
		char	   *rname = isnull ? NULL : GetUserNameFromId(requester, true);

		if (rname)
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("permission denied to cancel model " INT64_FORMAT, model_id),
					 errdetail("Only roles with the privileges of role \"%s\", which queued it, may cancel it.",
							   rname)));
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("permission denied to cancel model " INT64_FORMAT, model_id),
				 errdetail("The role that queued it no longer exists; only a superuser may cancel it.")));
	}

	if (strcmp(status, "queued") == 0)
	{
		Datum		vals[2];
		Oid			types[2] = {INT8OID, TEXTOID};

		vals[0] = arg;
		vals[1] = CStringGetTextDatum(psprintf("cancelled by rec.cancel() (role %s) before it started",
											   GetUserNameFromId(caller, false)));
		if (SPI_execute_with_args("UPDATE rec.models SET status = 'failed', error = $2, "
								  "finished_at = pg_catalog.now() WHERE model_id = $1",
								  2, types, vals, NULL, false, 0) != SPI_OK_UPDATE)
			elog(ERROR, "could not update rec.models");
		result = true;
	}
	else if (strcmp(status, "training") == 0 && sh != NULL)
	{
		int			pid = 0;
		Latch	   *latch = NULL;
		char	   *who = GetUserNameFromId(caller, false);

		LWLockAcquire(sh->lock, LW_EXCLUSIVE);
		for (int i = 0; i < sh->nslots; i++)
		{
			RecTrainSlot *slot = &sh->slots[i];

			if (slot->dboid == MyDatabaseId && slot->model_id == model_id)
			{
				slot->cancel = true;
				namestrcpy(&slot->cancel_by, who);
				pid = slot->pid;
				latch = slot->latch;
				/* interrupt whatever it is doing (a query, an index build) */
				if (pid != 0)
					kill(pid, SIGINT);
				break;
			}
		}
		LWLockRelease(sh->lock);
		if (latch)
			SetLatch(latch);
		result = (pid != 0);
	}
	SPI_finish();
	restore_user(&owner);
	rec_train_broadcast();
	PG_RETURN_BOOL(result);
}

/*
 * rec.train_progress(): one row per job being trained in this database that
 * the caller may watch: jobs queued by a role whose privileges it has, or
 * every job for members of pg_read_all_stats (as pg_stat_activity and
 * pg_cron's job tables draw the line). Others do not see the job at all:
 * its model's name, its source's size and its worker's pid are not theirs.
 */
PG_FUNCTION_INFO_V1(rec_train_progress);
Datum
rec_train_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RecTrainShared *sh = rec_train_shared();
	RecTrainSlot *copy;
	bool		all;

	InitMaterializedSRF(fcinfo, 0);
	if (sh == NULL)
		return (Datum) 0;

	copy = palloc(sizeof(RecTrainSlot));
	all = has_privs_of_role(GetUserId(), ROLE_PG_READ_ALL_STATS);
	for (int i = 0; i < sh->nslots; i++)
	{
		RecTrainSlot *slot = &sh->slots[i];
		Datum		values[14];
		bool		nulls[14] = {0};
		Datum	   *loss,
				   *secs;
		TimestampTz now = GetCurrentTimestamp();

		if (slot->dboid != MyDatabaseId || slot->model_id == 0)
			continue;
		/* consistent copy: retry while the worker is writing */
		for (;;)
		{
			uint32		before = slot->changecount;

			pg_read_barrier();
			memcpy(copy, slot, sizeof(RecTrainSlot));
			pg_read_barrier();
			if (before == slot->changecount && (before & 1) == 0)
				break;
			CHECK_FOR_INTERRUPTS();
		}
		if (copy->dboid != MyDatabaseId || copy->model_id == 0)
			continue;
		if (!all && !(OidIsValid(copy->requester) &&
					  has_privs_of_role(GetUserId(), copy->requester)))
			continue;
		copy->nhistory = Min(Max(copy->nhistory, 0), REC_TRAIN_MAX_HISTORY);
		loss = palloc(sizeof(Datum) * Max(copy->nhistory, 1));
		secs = palloc(sizeof(Datum) * Max(copy->nhistory, 1));
		for (int h = 0; h < copy->nhistory; h++)
		{
			loss[h] = Float8GetDatum(copy->loss[h]);
			secs[h] = Float8GetDatum(copy->seconds[h]);
		}
		values[0] = Int64GetDatum(copy->model_id);
		values[1] = Int32GetDatum(copy->pid);
		values[2] = CStringGetTextDatum(rec_train_phase_name(copy->phase));
		values[3] = Int32GetDatum(copy->iteration);
		values[4] = Int32GetDatum(copy->iterations);
		if (copy->nhistory > 0)
			values[5] = Float8GetDatum(copy->loss[copy->nhistory - 1]);
		else
			nulls[5] = true;
		values[6] = PointerGetDatum(construct_array(loss, copy->nhistory, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[7] = PointerGetDatum(construct_array(secs, copy->nhistory, FLOAT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
		values[8] = Int64GetDatum(copy->rows_read);
		values[9] = Int64GetDatum(copy->users);
		values[10] = Int64GetDatum(copy->items);
		values[11] = Int64GetDatum(copy->interactions);
		if (copy->job_start != 0)
		{
			values[12] = TimestampTzGetDatum(copy->job_start);
			values[13] = DirectFunctionCall2(timestamp_mi,
											 TimestampTzGetDatum(now),
											 TimestampTzGetDatum(copy->job_start));
		}
		else
			nulls[12] = nulls[13] = true;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
