/*
 * demo_data.c
 *	  A synthetic, deterministic data set with real structure:
 *	  rec.demo_items(items, seed, end_at) and
 *	  rec.demo_events(users, items, events, seed, end_at).
 *
 * The hidden model (docs/events.md describes it for users):
 *	- DIM latent dimensions; each category has a centroid drawn from N(0, I).
 *	- An item belongs to one category (categories differ in size); its
 *	  vector is the centroid plus its own part, 0.7 * N(0, I). Its base
 *	  popularity is Zipf-like: 1 / (r + 10) for a random rank r. Tags name
 *	  the two largest coordinates of its own part, so they carry taste, not
 *	  only category. 15% of items are created inside the event window.
 *	- A user has one to three favourite categories; the user's vector is
 *	  their mean centroid plus noise. Activity is long-tailed (log-normal).
 *	- An event: pick a user by activity; a category by softmax of the user's
 *	  affinity to the centroids and category size; then items of that
 *	  category by popularity, accepted with probability
 *	  sigmoid(1.2 * u . (v - centroid)) (taste within the category); the
 *	  same affinity drives the kind (purchase, add_to_cart, like, rating
 *	  value, hide, click, view).
 *	- Events are spread evenly over the 90 days before end_at, in time
 *	  order; an item has events only after its creation.
 * A model that learns user and item factors (ALS) can recover this; item
 * popularity alone cannot. Everything is a function of the arguments: the
 * same arguments give the same rows on any machine (own PRNG, no libc rand).
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"
#include "utils/tuplestore.h"

#include "events/events.h"

#define DIM 8
#define MAX_CATEGORIES 20
#define MAX_ITEMS 5000000
#define MAX_USERS 10000000
#define MAX_EVENTS INT64CONST(10000000000)
#define WINDOW_DAYS 90
#define MAX_TRIES 16
/* Items created before the window are up to this much older than it. */
#define OLD_ITEM_DAYS 730

static const char *const category_names[MAX_CATEGORIES] = {
	"books", "music", "movies", "games", "electronics", "computers", "phones",
	"home", "kitchen", "garden", "toys", "sports", "outdoors", "fashion",
	"shoes", "beauty", "health", "grocery", "pets", "office"
};

/* Tag for latent dimension d: [d][0] for negative, [d][1] for positive. */
static const char *const tag_names[DIM][2] = {
	{"classic", "modern"}, {"budget", "premium"}, {"compact", "large"},
	{"kids", "adult"}, {"eco", "performance"}, {"minimal", "colourful"},
	{"local", "imported"}, {"casual", "pro"}
};

/* ---------------------------------------------------------------- PRNG */

/* xoshiro256** seeded by splitmix64: small, fast, the same everywhere. */
typedef struct DemoRng
{
	uint64		s[4];
} DemoRng;

static uint64
splitmix64(uint64 *x)
{
	uint64		z = (*x += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	return z ^ (z >> 31);
}

static void
rng_seed(DemoRng *r, uint64 a, uint64 b)
{
	uint64		x = a * UINT64CONST(0x100000001B3) ^ (b + UINT64CONST(0x632BE59BD9B4E019));

	for (int i = 0; i < 4; i++)
		r->s[i] = splitmix64(&x);
}

static inline uint64
rotl(uint64 x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64
rng_next(DemoRng *r)
{
	uint64	   *s = r->s;
	uint64		result = rotl(s[1] * 5, 7) * 9;
	uint64		t = s[1] << 17;

	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = rotl(s[3], 45);
	return result;
}

/* Uniform in [0, 1). */
static double
rng_uniform(DemoRng *r)
{
	return (rng_next(r) >> 11) * (1.0 / 9007199254740992.0);
}

/* Uniform integer in [0, n). */
static uint64
rng_below(DemoRng *r, uint64 n)
{
	return (uint64) (rng_uniform(r) * (double) n) % n;
}

/* Standard normal (Box-Muller, one value per call). */
static double
rng_normal(DemoRng *r)
{
	double		u = 1.0 - rng_uniform(r);	/* (0, 1] */
	double		v = rng_uniform(r);

	return sqrt(-2.0 * log(u)) * cos(2.0 * M_PI * v);
}

static double
sigmoid(double x)
{
	return 1.0 / (1.0 + exp(-x));
}

/* ---------------------------------------------------------------- alias tables */

/* Walker/Vose alias table: O(1) draws from a discrete distribution. */
typedef struct AliasTable
{
	int			n;
	double	   *prob;
	int		   *alias;
} AliasTable;

static void
alias_build(AliasTable *a, const double *w, int n)
{
	double	   *p = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	int		   *small = palloc_extended(sizeof(int) * Max(n, 1), MCXT_ALLOC_HUGE);
	int		   *large = palloc_extended(sizeof(int) * Max(n, 1), MCXT_ALLOC_HUGE);
	int			ns = 0,
				nl = 0;
	double		sum = 0;

	a->n = n;
	a->prob = palloc_extended(sizeof(double) * Max(n, 1), MCXT_ALLOC_HUGE);
	a->alias = palloc_extended(sizeof(int) * Max(n, 1), MCXT_ALLOC_HUGE);
	for (int i = 0; i < n; i++)
		sum += w[i];
	for (int i = 0; i < n; i++)
	{
		p[i] = w[i] * n / sum;
		if (p[i] < 1.0)
			small[ns++] = i;
		else
			large[nl++] = i;
	}
	while (ns > 0 && nl > 0)
	{
		int			s = small[--ns];
		int			l = large[--nl];

		a->prob[s] = p[s];
		a->alias[s] = l;
		p[l] = (p[l] + p[s]) - 1.0;
		if (p[l] < 1.0)
			small[ns++] = l;
		else
			large[nl++] = l;
	}
	while (nl > 0)
	{
		int			l = large[--nl];

		a->prob[l] = 1.0;
		a->alias[l] = l;
	}
	while (ns > 0)
	{
		int			s = small[--ns];

		a->prob[s] = 1.0;
		a->alias[s] = s;
	}
	pfree(p);
	pfree(small);
	pfree(large);
}

static int
alias_draw(const AliasTable *a, DemoRng *r)
{
	int			i = (int) rng_below(r, (uint64) a->n);

	return rng_uniform(r) < a->prob[i] ? i : a->alias[i];
}

/* ---------------------------------------------------------------- the world */

typedef struct DemoWorld
{
	uint64		seed;
	int			n_items;
	int			n_cats;
	TimestampTz start;
	TimestampTz end;

	double		cat_vec[MAX_CATEGORIES][DIM];
	double		cat_weight[MAX_CATEGORIES];

	int		   *item_cat;
	float	   *item_own;		/* n_items x DIM: the item's own part */
	double	   *item_pop;
	TimestampTz *item_created;
	bool	   *item_available;
	double	   *item_price;
	int		   *item_brand;

	/* per category: its items and an alias table over their popularity */
	int		   *cat_items[MAX_CATEGORIES];
	int			cat_count[MAX_CATEGORIES];
	AliasTable		cat_alias[MAX_CATEGORIES];
	/* items created before the window, by popularity (fallback draws) */
	int		   *old_items;
	AliasTable		old_alias;
} DemoWorld;

static void
check_args(int64 users, int64 items, int64 events, TimestampTz end_at)
{
	if (users < 1 || users > MAX_USERS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("users must be between 1 and %d", MAX_USERS)));
	if (items < 1 || items > MAX_ITEMS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("items must be between 1 and %d", MAX_ITEMS)));
	if (events < 0 || events > MAX_EVENTS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("events must be between 0 and " INT64_FORMAT, MAX_EVENTS)));
	if (TIMESTAMP_NOT_FINITE(end_at))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("end_at must be a finite timestamp")));
	/* The oldest item is created up to WINDOW_DAYS + OLD_ITEM_DAYS + 1 s before end_at. */
	if (end_at < MIN_TIMESTAMP + (int64) (WINDOW_DAYS + OLD_ITEM_DAYS + 1) * USECS_PER_DAY)
		ereport(ERROR,
				(errcode(ERRCODE_DATETIME_VALUE_OUT_OF_RANGE),
				 errmsg("end_at is too early: the data set reaches %d days before it, beyond the earliest timestamp",
						WINDOW_DAYS + OLD_ITEM_DAYS + 1)));
}

static void
world_build(DemoWorld *w, int n_items, int32 seed, TimestampTz end_at)
{
	DemoRng		r;
	double	   *old_pop;
	int		   *rank;
	int			n_old = 0;
	const int64 window = (int64) WINDOW_DAYS * USECS_PER_DAY;

	memset(w, 0, sizeof(*w));
	w->seed = (uint64) (uint32) seed;
	w->n_items = n_items;
	w->n_cats = Min(MAX_CATEGORIES, n_items);
	w->end = end_at;
	w->start = end_at - window;

	rng_seed(&r, w->seed, 1);
	for (int k = 0; k < w->n_cats; k++)
	{
		for (int d = 0; d < DIM; d++)
			w->cat_vec[k][d] = rng_normal(&r);
		w->cat_weight[k] = 1.0 / pow(k + 3.0, 0.7);
	}

	w->item_cat = palloc_extended(sizeof(int) * n_items, MCXT_ALLOC_HUGE);
	w->item_own = palloc_extended(sizeof(float) * DIM * (Size) n_items, MCXT_ALLOC_HUGE);
	w->item_pop = palloc_extended(sizeof(double) * n_items, MCXT_ALLOC_HUGE);
	w->item_created = palloc_extended(sizeof(TimestampTz) * n_items, MCXT_ALLOC_HUGE);
	w->item_available = palloc_extended(sizeof(bool) * n_items, MCXT_ALLOC_HUGE);
	w->item_price = palloc_extended(sizeof(double) * n_items, MCXT_ALLOC_HUGE);
	w->item_brand = palloc_extended(sizeof(int) * n_items, MCXT_ALLOC_HUGE);

	/* Popularity ranks: a seeded shuffle of 0..n-1. */
	rank = palloc_extended(sizeof(int) * n_items, MCXT_ALLOC_HUGE);
	for (int j = 0; j < n_items; j++)
		rank[j] = j;
	for (int j = n_items - 1; j > 0; j--)
	{
		int			k = (int) rng_below(&r, (uint64) j + 1);
		int			t = rank[j];

		rank[j] = rank[k];
		rank[k] = t;
	}

	{
		AliasTable		cats;

		alias_build(&cats, w->cat_weight, w->n_cats);
		for (int j = 0; j < n_items; j++)
		{
			/* Every category gets an item first, then by category size. */
			int			k = j < w->n_cats ? j : alias_draw(&cats, &r);
			bool		is_new = j > 0 && n_items > 10 && rng_uniform(&r) < 0.15;

			w->item_cat[j] = k;
			w->cat_count[k]++;
			for (int d = 0; d < DIM; d++)
				w->item_own[(Size) j * DIM + d] = (float) (0.7 * rng_normal(&r));
			w->item_pop[j] = 1.0 / (rank[j] + 10.0);
			if (is_new)
				w->item_created[j] = w->start + (int64) (rng_uniform(&r) * 0.95 * window);
			else
				w->item_created[j] = w->start - (int64) (rng_uniform(&r) * OLD_ITEM_DAYS * USECS_PER_DAY) - USECS_PER_SEC;
			w->item_available[j] = rng_uniform(&r) >= 0.03;
			w->item_price[j] = exp(log(15.0 + 10.0 * k) + 0.6 * rng_normal(&r));
			w->item_brand[j] = (int) rng_below(&r, 12);
			if (!is_new)
				n_old++;
		}
	}
	pfree(rank);

	/* Per-category and fallback alias tables. */
	for (int k = 0; k < w->n_cats; k++)
	{
		double	   *pop = palloc_extended(sizeof(double) * Max(w->cat_count[k], 1), MCXT_ALLOC_HUGE);
		int			c = 0;

		w->cat_items[k] = palloc_extended(sizeof(int) * Max(w->cat_count[k], 1), MCXT_ALLOC_HUGE);
		for (int j = 0; j < n_items; j++)
			if (w->item_cat[j] == k)
			{
				w->cat_items[k][c] = j;
				pop[c++] = w->item_pop[j];
			}
		alias_build(&w->cat_alias[k], pop, c);
		pfree(pop);
	}
	old_pop = palloc_extended(sizeof(double) * Max(n_old, 1), MCXT_ALLOC_HUGE);
	w->old_items = palloc_extended(sizeof(int) * Max(n_old, 1), MCXT_ALLOC_HUGE);
	n_old = 0;
	for (int j = 0; j < n_items; j++)
		if (w->item_created[j] < w->start)
		{
			w->old_items[n_old] = j;
			old_pop[n_old++] = w->item_pop[j];
		}
	alias_build(&w->old_alias, old_pop, n_old);
	pfree(old_pop);
}

/* ---------------------------------------------------------------- rec.demo_items */

PG_FUNCTION_INFO_V1(rec_demo_items);
Datum
rec_demo_items(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32		items = PG_GETARG_INT32(0);
	int32		seed = PG_GETARG_INT32(1);
	TimestampTz end_at = PG_GETARG_TIMESTAMPTZ(2);
	MemoryContext work;
	MemoryContext rowcxt;
	MemoryContext old;
	DemoWorld	w;

	check_args(1, items, 0, end_at);
	InitMaterializedSRF(fcinfo, 0);

	work = AllocSetContextCreate(CurrentMemoryContext, "rec demo data", ALLOCSET_DEFAULT_SIZES);
	rowcxt = AllocSetContextCreate(work, "rec demo row", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	world_build(&w, items, seed, end_at);
	MemoryContextSwitchTo(old);

	for (int j = 0; j < items; j++)
	{
		Datum		values[7];
		bool		nulls[7] = {false, false, false, false, false, false, false};
		const float *own = &w.item_own[(Size) j * DIM];
		int			d1 = 0,
					d2 = 1;
		Datum		tags[2];
		char		attrs[128];

		CHECK_FOR_INTERRUPTS();
		MemoryContextReset(rowcxt);
		MemoryContextSwitchTo(rowcxt);

		/* The two largest coordinates of the item's own part name its tags. */
		for (int d = 0; d < DIM; d++)
			if (fabsf(own[d]) > fabsf(own[d1]))
				d1 = d;
		if (d2 == d1)
			d2 = 0;
		for (int d = 0; d < DIM; d++)
			if (d != d1 && fabsf(own[d]) > fabsf(own[d2]))
				d2 = d;
		tags[0] = CStringGetTextDatum(tag_names[d1][own[d1] > 0]);
		tags[1] = CStringGetTextDatum(tag_names[d2][own[d2] > 0]);
		snprintf(attrs, sizeof(attrs), "{\"brand\": \"%s-%d\", \"price\": %.2f}",
				 category_names[w.item_cat[j]], w.item_brand[j] + 1, w.item_price[j]);

		values[0] = Int64GetDatum((int64) j + 1);
		values[1] = CStringGetTextDatum(category_names[w.item_cat[j]]);
		values[2] = PointerGetDatum(construct_array(tags, 2, TEXTOID, -1, false, TYPALIGN_INT));
		values[3] = DirectFunctionCall1(jsonb_in, CStringGetDatum(attrs));
		values[4] = BoolGetDatum(w.item_available[j]);
		values[5] = Float4GetDatum(0.0f);
		values[6] = TimestampTzGetDatum(w.item_created[j]);
		MemoryContextSwitchTo(old);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	MemoryContextDelete(work);
	return (Datum) 0;
}

/* ---------------------------------------------------------------- rec.demo_events */

typedef struct DemoUser
{
	double		vec[DIM];
	double		cat_logit[MAX_CATEGORIES];
} DemoUser;

/* A user's hidden profile: a function of (seed, user index) only. */
static double
user_activity(const DemoWorld *w, int64 u)
{
	DemoRng		r;

	rng_seed(&r, w->seed, UINT64CONST(0x5EED0000000000) + (uint64) u);
	return exp(1.0 * rng_normal(&r));
}

static void
user_profile(const DemoWorld *w, int64 u, DemoUser *p)
{
	DemoRng		r;
	int			nfav;
	double		x;

	rng_seed(&r, w->seed, UINT64CONST(0xFA5E000000000000) + (uint64) u);
	x = rng_uniform(&r);
	nfav = x < 0.5 ? 1 : x < 0.85 ? 2 : 3;
	memset(p->vec, 0, sizeof(p->vec));
	for (int f = 0; f < nfav; f++)
	{
		int			k = (int) rng_below(&r, (uint64) w->n_cats);

		for (int d = 0; d < DIM; d++)
			p->vec[d] += 1.2 * w->cat_vec[k][d] / nfav;
	}
	for (int d = 0; d < DIM; d++)
		p->vec[d] += 0.6 * rng_normal(&r);
	for (int k = 0; k < w->n_cats; k++)
	{
		double		dot = 0;

		for (int d = 0; d < DIM; d++)
			dot += p->vec[d] * w->cat_vec[k][d];
		p->cat_logit[k] = 1.5 * dot / sqrt((double) DIM) + log(w->cat_weight[k]);
	}
}

/* Taste of user p for item j within its category, as a probability. */
static double
taste(const DemoWorld *w, const DemoUser *p, int j)
{
	const float *own = &w->item_own[(Size) j * DIM];
	double		dot = 0;

	for (int d = 0; d < DIM; d++)
		dot += p->vec[d] * own[d];
	return sigmoid(1.2 * dot);
}

PG_FUNCTION_INFO_V1(rec_demo_events);
Datum
rec_demo_events(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	int32		users = PG_GETARG_INT32(0);
	int32		items = PG_GETARG_INT32(1);
	int64		events = PG_GETARG_INT64(2);
	int32		seed = PG_GETARG_INT32(3);
	TimestampTz end_at = PG_GETARG_TIMESTAMPTZ(4);
	MemoryContext work;
	MemoryContext old;
	DemoWorld	w;
	AliasTable		user_alias;
	DemoRng		r;
	Datum		kinds[7];
	double		cat_p[MAX_CATEGORIES];

	check_args(users, items, events, end_at);
	InitMaterializedSRF(fcinfo, 0);

	work = AllocSetContextCreate(CurrentMemoryContext, "rec demo data", ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(work);
	world_build(&w, items, seed, end_at);
	{
		double	   *act = palloc_extended(sizeof(double) * users, MCXT_ALLOC_HUGE);

		for (int u = 0; u < users; u++)
			act[u] = user_activity(&w, u);
		alias_build(&user_alias, act, users);
		pfree(act);
	}
	kinds[0] = CStringGetTextDatum("view");
	kinds[1] = CStringGetTextDatum("click");
	kinds[2] = CStringGetTextDatum("add_to_cart");
	kinds[3] = CStringGetTextDatum("purchase");
	kinds[4] = CStringGetTextDatum("rating");
	kinds[5] = CStringGetTextDatum("like");
	kinds[6] = CStringGetTextDatum("hide");
	MemoryContextSwitchTo(old);

	rng_seed(&r, w.seed, 2);
	for (int64 e = 0; e < events; e++)
	{
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		TimestampTz t;
		int			u;
		int			k;
		int			j = -1;
		double		s = 0.5;
		double		x;
		double		sum;
		int			kind;
		float		value = 1.0f;
		DemoUser	p;

		if ((e & 1023) == 0)
			CHECK_FOR_INTERRUPTS();

		t = w.start + (TimestampTz) (((double) e + rng_uniform(&r)) / (double) events *
									 (double) (w.end - w.start));
		u = alias_draw(&user_alias, &r);
		user_profile(&w, u, &p);

		/* A category by the user's affinity and the category's size. */
		sum = 0;
		x = p.cat_logit[0];
		for (k = 1; k < w.n_cats; k++)
			x = Max(x, p.cat_logit[k]);
		for (k = 0; k < w.n_cats; k++)
			sum += (cat_p[k] = exp(p.cat_logit[k] - x));
		x = rng_uniform(&r) * sum;
		for (k = 0; k < w.n_cats - 1; k++)
		{
			x -= cat_p[k];
			if (x < 0)
				break;
		}

		/* Items of that category by popularity, accepted by taste. */
		for (int tries = 0; tries < MAX_TRIES; tries++)
		{
			int			c = w.cat_items[k][alias_draw(&w.cat_alias[k], &r)];

			if (w.item_created[c] > t)
				continue;
			s = taste(&w, &p, c);
			j = c;
			if (rng_uniform(&r) < s)
				break;
		}
		if (j < 0)
		{
			j = w.old_items[alias_draw(&w.old_alias, &r)];
			s = taste(&w, &p, j);
		}

		/* The kind follows the taste. */
		x = rng_uniform(&r);
		if ((x -= 0.02 + 0.06 * s) < 0)
			kind = 3;			/* purchase */
		else if ((x -= 0.03 + 0.05 * s) < 0)
			kind = 2;			/* add_to_cart */
		else if ((x -= 0.03 * s) < 0)
			kind = 5;			/* like */
		else if ((x -= 0.03) < 0)
		{
			double		stars = rint(1.0 + 4.0 * s + 0.7 * rng_normal(&r));

			kind = 4;			/* rating, 1 to 5 stars */
			value = (float) (stars < 1.0 ? 1.0 : stars > 5.0 ? 5.0 : stars);
		}
		else if ((x -= 0.01 * (1.0 - s)) < 0)
			kind = 6;			/* hide */
		else if ((x -= 0.2) < 0)
			kind = 1;			/* click */
		else
			kind = 0;			/* view */

		values[0] = Int64GetDatum((int64) u + 1);
		values[1] = Int64GetDatum((int64) j + 1);
		values[2] = kinds[kind];
		values[3] = Float4GetDatum(value);
		values[4] = TimestampTzGetDatum(t);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}

	MemoryContextDelete(work);
	return (Datum) 0;
}
