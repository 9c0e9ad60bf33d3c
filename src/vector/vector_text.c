/*
 * vector_text.c
 *	  The text form of a vector, '[1,2.5,-3e2]', parsed and printed without
 *	  any server machinery.
 *
 * This file deliberately includes no PostgreSQL header except the
 * dependency-free common/shortest_dec.h: the same code then runs inside the
 * server (wrapped by rec_vector_in / rec_vector_out in vector.c, which turn
 * status codes into ereport) and inside the libFuzzer harness in test/fuzz,
 * which links it directly.
 *
 * Grammar (pgvector's): optional white space, '[', one or more elements
 * separated by ',', ']', optional white space. White space may surround each
 * element. An element is whatever strtof() accepts (decimal, exponent, hex
 * float; "inf" and "nan" parse but are then rejected), exactly like float4in.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>

#include "common/shortest_dec.h"

#include "vector/vector_text.h"

static inline int
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int
rec_vector_text_max_dim(const char *s, int limit)
{
	int			n = 1;

	for (; *s; s++)
		if (*s == ',' && ++n > limit)
			break;
	return n;
}

RecVectorTextStatus
rec_vector_text_parse(const char *s, float *out, int capacity, int max_dim,
					  int *dim, const char **tok, int *toklen)
{
	const char *p = s;
	int			n = 0;

	*dim = 0;
	*tok = NULL;
	*toklen = 0;

	while (is_space(*p))
		p++;
	if (*p != '[')
		return REC_VTEXT_NO_BRACKET;
	p++;
	while (is_space(*p))
		p++;
	if (*p == ']')
		return REC_VTEXT_EMPTY;

	for (;;)
	{
		char	   *end;
		float		value;

		while (is_space(*p))
			p++;
		/* strtof would skip white space and newlines itself: be explicit */
		if (*p == ',' || *p == ']' || *p == '\0')
			return REC_VTEXT_SYNTAX;
		if (n >= max_dim)
			return REC_VTEXT_TOO_MANY;
		if (n >= capacity)
			return REC_VTEXT_SYNTAX;	/* caller's bound was wrong; never
										 * overrun */

		errno = 0;
		value = strtof(p, &end);
		if (end == p)
			return REC_VTEXT_SYNTAX;
		*tok = p;
		*toklen = (int) (end - p);
		if (isnan(value))
			return REC_VTEXT_NAN;
		if (isinf(value))
			return errno == ERANGE ? REC_VTEXT_RANGE : REC_VTEXT_INF;
		/* Underflow to zero or a subnormal is accepted, as in pgvector. */
		out[n++] = value;
		*dim = n;

		p = end;
		while (is_space(*p))
			p++;
		if (*p == ',')
		{
			p++;
			continue;
		}
		if (*p == ']')
		{
			p++;
			break;
		}
		*tok = NULL;
		*toklen = 0;
		return REC_VTEXT_SYNTAX;
	}

	while (is_space(*p))
		p++;
	if (*p != '\0')
	{
		*tok = p;
		*toklen = 0;
		return REC_VTEXT_JUNK;
	}
	*tok = NULL;
	return REC_VTEXT_OK;
}

int
rec_vector_text_format(const float *x, int dim, char *buf)
{
	char	   *p = buf;

	*p++ = '[';
	for (int i = 0; i < dim; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += float_to_shortest_decimal_bufn(x[i], p);
	}
	*p++ = ']';
	*p = '\0';
	return (int) (p - buf);
}
