/*
 * vector_text_fuzz.c
 *	  libFuzzer harness for the vector text parser (src/vector/vector_text.c),
 *	  run outside the server. Build and run with test/fuzz/run.
 *
 * Properties checked on every input:
 *	- the parser never reads or writes out of bounds (AddressSanitizer) nor
 *	  hits undefined behaviour (UBSan);
 *	- a parsed vector has 1..16000 finite elements;
 *	- its printed form has no white space, fits the documented buffer size,
 *	  and parses back to exactly the same bits.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vector/vector_text.h"

#define MAX_DIM 16000

/* f2s.o from libpgcommon references palloc; the harness never calls it. */
void	   *palloc(size_t size);
void *
palloc(size_t size)
{
	return malloc(size);
}

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char	   *s = malloc(size + 1);
	int			cap;
	float	   *x;
	float	   *y;
	int			dim;
	int			dim2;
	const char *tok;
	int			toklen;
	RecVectorTextStatus st;

	memcpy(s, data, size);
	s[size] = '\0';

	cap = rec_vector_text_max_dim(s, MAX_DIM);
	if (cap > MAX_DIM)
		cap = MAX_DIM;
	/* Exactly the size the server allocates, so ASan sees any overrun. */
	x = malloc(sizeof(float) * cap);
	st = rec_vector_text_parse(s, x, cap, MAX_DIM, &dim, &tok, &toklen);
	if (st == REC_VTEXT_RANGE || st == REC_VTEXT_NAN || st == REC_VTEXT_INF)
	{
		/* tok must point inside s */
		if (tok < s || tok + toklen > s + size || toklen <= 0)
			abort();
	}
	if (st == REC_VTEXT_OK)
	{
		size_t		bufsize;
		char	   *buf;
		int			len;

		if (dim < 1 || dim > MAX_DIM || dim > cap)
			abort();
		for (int i = 0; i < dim; i++)
			if (!isfinite(x[i]))
				abort();

		bufsize = REC_VECTOR_TEXT_BUFSIZE(dim);
		buf = malloc(bufsize);
		len = rec_vector_text_format(x, dim, buf);
		if ((size_t) len + 1 > bufsize || strlen(buf) != (size_t) len)
			abort();
		if (strpbrk(buf, " \t\n\r\v\f") != NULL)
			abort();

		y = malloc(sizeof(float) * dim);
		st = rec_vector_text_parse(buf, y, dim, MAX_DIM, &dim2, &tok, &toklen);
		if (st != REC_VTEXT_OK || dim2 != dim || memcmp(x, y, sizeof(float) * dim) != 0)
		{
			fprintf(stderr, "round trip failed: %s\n", buf);
			abort();
		}
		free(y);
		free(buf);
	}
	free(x);
	free(s);
	return 0;
}
