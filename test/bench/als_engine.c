/*
 * als_engine.c
 *	  Stand-alone driver of rec's ALS engine (src/als/engine.c), outside the
 *	  server, for timing and profiling the inner loop (perf, callgrind) and
 *	  for generating the synthetic at-scale data set.
 *
 *	  Built and run by test/bench/als_engine.sh; not part of the extension.
 *
 *	  als_engine ncf DATA_DIR [options]   train on the ML-1M NCF split and
 *	                                      print HR@10 / NDCG@10 (He et al.)
 *	  als_engine synth [options]          train on the synthetic set
 *	  als_engine gen [options]            print the synthetic set as
 *	                                      "user\titem\tweight\tseq" lines
 *	                                      (seq: the event's order for its user)
 *
 *	  options: -f factors -i iterations -r regularization -a alpha
 *	           -s cg|cholesky -c cg_steps -t threads -S seed
 *	           -n interactions -u users -m items (synthetic shape)
 */
#include "als/als.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

#include <cblas.h>

typedef struct Coo
{
	uint32_t	u,
				i;
	float		w;
	uint32_t	t;
} Coo;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static uint64_t
sm64(uint64_t *s)
{
	uint64_t	x = (*s += 0x9E3779B97F4A7C15ULL);

	x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
	x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
	return x ^ (x >> 31);
}

static double
unif(uint64_t *s)
{
	return ((sm64(s) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

static int
cmp_coo(const void *a, const void *b)
{
	const Coo  *x = a,
			   *y = b;

	if (x->u != y->u)
		return x->u < y->u ? -1 : 1;
	if (x->i != y->i)
		return x->i < y->i ? -1 : 1;
	return 0;
}

/* sort, sum duplicates, scale by alpha, build CSR */
static void
build(Coo *c, uint64_t n, uint32_t nu, uint32_t ni, float alpha, AlsMatrix *m)
{
	uint64_t	w = 0;

	qsort(c, n, sizeof(Coo), cmp_coo);
	for (uint64_t j = 0; j < n; j++)
	{
		if (w > 0 && c[w - 1].u == c[j].u && c[w - 1].i == c[j].i)
			c[w - 1].w += c[j].w;
		else
			c[w++] = c[j];
	}
	m->nrows = nu;
	m->ncols = ni;
	m->nnz = w;
	m->ptr = calloc((size_t) nu + 1, sizeof(uint64_t));
	m->ent = malloc(sizeof(AlsEntry) * (w ? w : 1));
	for (uint64_t j = 0; j < w; j++)
	{
		m->ptr[c[j].u + 1]++;
		m->ent[j].idx = c[j].i;
		m->ent[j].a = alpha * c[j].w;
	}
	for (uint32_t u = 0; u < nu; u++)
		m->ptr[u + 1] += m->ptr[u];
}

/*
 * Synthetic set: n distinct (user, item) interactions of nu users and ni
 * items. Item popularity is Zipf (exponent 1); user activity is long-tailed
 * (Pareto, shape 1.2, at least 5 and at most ni / 5 items per user), scaled
 * so the counts add up to n exactly. Each user has one of 20 latent
 * tastes; half of a user's items are drawn within the taste (items with
 * the taste's id modulo 20), so the data has structure beyond popularity.
 * Deterministic for a seed.
 */
static Coo *
synth(uint64_t n, uint32_t nu, uint32_t ni, uint64_t seed, uint64_t *count)
{
	double	   *cdf = malloc(sizeof(double) * ni);
	double	   *act = malloc(sizeof(double) * nu);
	uint64_t   *want = malloc(sizeof(uint64_t) * nu);
	uint8_t    *taken = calloc((ni + 7) / 8, 1);
	double		sum = 0,
				lo_s = 0,
				hi_s = 1e9;
	uint64_t	s = seed * 7919 + 17,
				total = 0,
				cap = ni / 5;
	Coo		   *c = malloc(sizeof(Coo) * n);

	for (uint32_t i = 0; i < ni; i++)
	{
		sum += 1.0 / (i + 1.0);
		cdf[i] = sum;
	}
	for (uint32_t u = 0; u < nu; u++)
		act[u] = pow(unif(&s), -1.0 / 1.2);
	/* find the scale that makes the clamped activities add up to n */
	for (int it = 0; it < 200; it++)
	{
		double		mid = (lo_s + hi_s) / 2,
					t = 0;

		for (uint32_t u = 0; u < nu; u++)
		{
			double		k = floor(act[u] * mid);

			t += k < 5 ? 5 : k > cap ? cap : k;
		}
		if (t < n)
			lo_s = mid;
		else
			hi_s = mid;
	}
	for (uint32_t u = 0; u < nu; u++)
	{
		double		k = floor(act[u] * hi_s);

		want[u] = k < 5 ? 5 : k > cap ? cap : (uint64_t) k;
		total += want[u];
	}
	/* trim the surplus from the heaviest users' counts */
	for (uint32_t u = 0; total > n && u < nu; u++)
		if (want[u] > 5)
		{
			want[u]--;
			total--;
		}
	total = 0;
	for (uint32_t u = 0; u < nu && total < n; u++)
	{
		uint32_t	taste = (uint32_t) (sm64(&s) % 20);
		uint64_t	got = 0,
					start = total;

		while (got < want[u] && total < n)
		{
			double		r = unif(&s) * sum;
			uint32_t	lo = 0,
						hi = ni - 1;

			while (lo < hi)
			{
				uint32_t	mid = (lo + hi) / 2;

				if (cdf[mid] < r)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (unif(&s) < 0.5 && lo - (lo % 20) + taste < ni)
				lo = lo - (lo % 20) + taste;
			if (taken[lo / 8] & (1 << (lo % 8)))
				continue;
			taken[lo / 8] |= 1 << (lo % 8);
			c[total].u = u;
			c[total].i = lo;
			c[total].w = 1.0f;
			c[total].t = 0;
			total++;
			got++;
		}
		for (uint64_t j = start; j < total; j++)
			taken[c[j].i / 8] &= ~(1 << (c[j].i % 8));
	}
	free(cdf);
	free(act);
	free(want);
	free(taken);
	*count = total;
	return c;
}

static double it_times[ALS_MAX_ITERATIONS + 1];
static double it_cpu[ALS_MAX_ITERATIONS + 1];
static int	it_count;
static double last_cpu;

static double
cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * Per iteration: wall time, and CPU time of all threads. On a machine
 * shared with other work the wall time varies; the CPU time divided by the
 * thread count is what the iteration takes on that many free cores.
 */
static void
on_iter(void *arg, int it, double loss, double sec)
{
	double		c = cpu_s();

	it_cpu[it_count] = c - last_cpu;
	last_cpu = c;
	it_times[it_count++] = sec;
	fprintf(stderr, "iteration %d: %.4f s (cpu %.4f s), loss %.6f\n", it, sec, it_cpu[it_count - 1], loss);
}

static int
cmp_d(const void *a, const void *b)
{
	double		x = *(const double *) a,
				y = *(const double *) b;

	return x < y ? -1 : x > y;
}

static long
peak_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

int
main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "";
	const char *dir = NULL;
	AlsParams	p = {64, 15, ALS_SOLVER_CG, 3, 2, 0.1f, 42};
	float		alpha = 1.0f;
	uint64_t	n = 20000000;
	uint32_t	nu = 140000,
				ni = 27000;
	Coo		   *coo = NULL;
	uint64_t	count = 0;
	AlsMatrix	um,
				im;
	AlsFactors	f;
	int64_t    *ukeys,
			   *ikeys;
	char		err[256];
	AlsCallbacks cb = {NULL, NULL, on_iter};
	int			argi = 2;
	double		t0;
	int			validate = 0;
	uint32_t   *val = NULL;

	if (strcmp(mode, "ncf") == 0)
		dir = argc > 2 ? argv[argi++] : NULL;
	for (; argi + 1 < argc; argi += 2)
	{
		const char *o = argv[argi],
				   *v = argv[argi + 1];

		if (!strcmp(o, "-f"))
			p.factors = atoi(v);
		else if (!strcmp(o, "-i"))
			p.iterations = atoi(v);
		else if (!strcmp(o, "-r"))
			p.regularization = atof(v);
		else if (!strcmp(o, "-a"))
			alpha = atof(v);
		else if (!strcmp(o, "-s"))
			p.solver = !strcmp(v, "cholesky") ? ALS_SOLVER_CHOLESKY : ALS_SOLVER_CG;
		else if (!strcmp(o, "-c"))
			p.cg_steps = atoi(v);
		else if (!strcmp(o, "-t"))
			p.threads = atoi(v);
		else if (!strcmp(o, "-S"))
			p.seed = strtoull(v, NULL, 10);
		else if (!strcmp(o, "-n"))
			n = strtoull(v, NULL, 10);
		else if (!strcmp(o, "-u"))
			nu = strtoul(v, NULL, 10);
		else if (!strcmp(o, "-m"))
			ni = strtoul(v, NULL, 10);
		else if (!strcmp(o, "-V"))
			validate = atoi(v);
		else
		{
			fprintf(stderr, "unknown option %s\n", o);
			return 2;
		}
	}

	/* as in the training worker: OpenBLAS single-threaded, our threads */
	openblas_set_num_threads(1);

	t0 = now_s();
	if (strcmp(mode, "ncf") == 0 && dir)
	{
		char		cmd[4096];
		FILE	   *fp;
		uint64_t	cap = 1 << 20;
		unsigned	u,
					i,
					ts;

		snprintf(cmd, sizeof(cmd), "zcat '%s/ml-1m.train.rating.partial-u0-2998.gz'", dir);
		fp = popen(cmd, "r");
		coo = malloc(sizeof(Coo) * cap);
		nu = 0;
		ni = 3706;
		while (fp && fscanf(fp, "%u\t%u\t%*s\t%u\n", &u, &i, &ts) == 3)
		{
			if (count == cap)
				coo = realloc(coo, sizeof(Coo) * (cap *= 2));
			coo[count].u = u;
			coo[count].i = i;
			coo[count].w = 1.0f;
			coo[count].t = ts;
			count++;
			if (u + 1 > nu)
				nu = u + 1;
		}
		if (fp)
			pclose(fp);
	}
	else if (strcmp(mode, "synth") == 0 || strcmp(mode, "gen") == 0)
	{
		coo = synth(n, nu, ni, 1, &count);
		if (strcmp(mode, "gen") == 0)
		{
			/* user, item, weight, and the order of the user's events as a time */
			uint32_t	prev = UINT32_MAX,
						seq = 0;

			for (uint64_t j = 0; j < count; j++)
			{
				seq = coo[j].u == prev ? seq + 1 : 0;
				prev = coo[j].u;
				printf("%u\t%u\t1\t%u\n", coo[j].u, coo[j].i, seq);
			}
			return 0;
		}
	}
	else
	{
		fprintf(stderr, "usage: als_engine ncf DATA_DIR | synth | gen [options]\n");
		return 2;
	}
	if (validate)
	{
		/* hold out each user's latest training row as a validation item */
		uint32_t   *best_t = calloc(nu, sizeof(uint32_t));
		uint64_t	w = 0;

		val = malloc(sizeof(uint32_t) * nu);
		for (uint32_t u = 0; u < nu; u++)
			val[u] = UINT32_MAX;
		for (uint64_t j = 0; j < count; j++)
			if (val[coo[j].u] == UINT32_MAX || coo[j].t > best_t[coo[j].u] ||
				(coo[j].t == best_t[coo[j].u] && coo[j].i > val[coo[j].u]))
			{
				best_t[coo[j].u] = coo[j].t;
				val[coo[j].u] = coo[j].i;
			}
		for (uint64_t j = 0; j < count; j++)
			if (coo[j].i != val[coo[j].u])
				coo[w++] = coo[j];
		count = w;
		free(best_t);
	}
	fprintf(stderr, "loaded %llu rows, %u users, %u items in %.2f s\n",
			(unsigned long long) count, nu, ni, now_s() - t0);

	t0 = now_s();
	build(coo, count, nu, ni, alpha, &um);
	free(coo);
	if (als_transpose(&um, &im) != ALS_OK)
		return 1;
	ukeys = malloc(sizeof(int64_t) * nu);
	ikeys = malloc(sizeof(int64_t) * ni);
	for (uint32_t u = 0; u < nu; u++)
		ukeys[u] = u;
	for (uint32_t i = 0; i < ni; i++)
		ikeys[i] = i;
	fprintf(stderr, "matrices: %llu nonzeros in %.2f s; kernels %s\n",
			(unsigned long long) um.nnz, now_s() - t0, als_kernel_name());

	t0 = now_s();
	last_cpu = cpu_s();
	if (als_train(&p, &um, &im, ukeys, ikeys, &f, &cb, err, sizeof(err)) != ALS_OK)
	{
		fprintf(stderr, "error: %s\n", err);
		return 1;
	}
	{
		double		s[ALS_MAX_ITERATIONS + 1];

		double		c[ALS_MAX_ITERATIONS + 1];

		memcpy(s, it_times, sizeof(double) * it_count);
		qsort(s, it_count, sizeof(double), cmp_d);
		memcpy(c, it_cpu, sizeof(double) * it_count);
		qsort(c, it_count, sizeof(double), cmp_d);
		printf("train: %d iterations in %.3f s, median %.4f s/iteration (min %.4f), "
			   "median cpu %.4f s/iteration (%.4f s per thread), peak RSS %ld MiB\n",
			   it_count, now_s() - t0, s[it_count / 2], s[0], c[it_count / 2],
			   c[it_count / 2] / (p.threads > 0 ? p.threads : 1), peak_kib() / 1024);
	}

	if (dir && validate)
	{
		/* rank the validation item among 99 random items the user has not seen */
		double		hr = 0,
					ndcg = 0;
		int			users = 0;
		uint64_t	rs = 12345;

		for (uint32_t u = 0; u < nu; u++)
		{
			const float *xu = f.X + (size_t) u * f.kpad;
			float		sp;
			int			rank = 0,
						got = 0;

			if (val[u] == UINT32_MAX)
				continue;
			sp = als_dot(xu, f.Y + (size_t) val[u] * f.kpad, f.kpad);
			while (got < 99)
			{
				uint32_t	it = (uint32_t) (sm64(&rs) % ni);
				int			seen = (it == val[u]);

				for (uint64_t j = um.ptr[u]; j < um.ptr[u + 1] && !seen; j++)
					seen = um.ent[j].idx == it;
				if (seen)
					continue;
				got++;
				if (als_dot(xu, f.Y + (size_t) it * f.kpad, f.kpad) > sp)
					rank++;
			}
			users++;
			if (rank < 10)
			{
				hr += 1;
				ndcg += 1.0 / log2(rank + 2.0);
			}
		}
		printf("validation: users %d HR@10 %.4f NDCG@10 %.4f\n", users, hr / users, ndcg / users);
	}
	else if (dir)
	{
		char		path[4096];
		FILE	   *fp;
		double		hr = 0,
					ndcg = 0;
		int			users = 0;
		char		line[8192];

		snprintf(path, sizeof(path), "%s/ml-1m.test.negative", dir);
		fp = fopen(path, "r");
		while (fp && fgets(line, sizeof(line), fp))
		{
			unsigned	u,
						pos;
			char	   *q;
			float		sp;
			int			rank = 0;
			unsigned	seen[128];
			int			nseen = 0;

			if (sscanf(line, "(%u,%u)", &u, &pos) != 2)
				continue;
			if (u >= nu)
				continue;
			sp = als_dot(f.X + (size_t) u * f.kpad, f.Y + (size_t) pos * f.kpad, f.kpad);
			q = strchr(line, '\t');
			while (q && *q)
			{
				unsigned	it = strtoul(q + 1, &q, 10);
				int			dup = (it == pos);

				for (int z = 0; z < nseen && !dup; z++)
					dup = seen[z] == it;
				if (!dup && nseen < 128)
				{
					seen[nseen++] = it;
					if (als_dot(f.X + (size_t) u * f.kpad, f.Y + (size_t) it * f.kpad, f.kpad) > sp)
						rank++;
				}
				if (*q != '\t')
					break;
			}
			users++;
			if (rank < 10)
			{
				hr += 1;
				ndcg += 1.0 / log2(rank + 2.0);
			}
		}
		if (fp)
			fclose(fp);
		printf("ncf: users %d HR@10 %.4f NDCG@10 %.4f\n", users, hr / users, ndcg / users);
	}
	als_factors_free(&f);
	return 0;
}
