/*
 * vector_text.h
 *	  Parse and print the text form of a vector, free of server machinery
 *	  (see vector_text.c). Used by vector.c and by test/fuzz.
 */
#ifndef REC_VECTOR_TEXT_H
#define REC_VECTOR_TEXT_H

typedef enum RecVectorTextStatus
{
	REC_VTEXT_OK = 0,
	REC_VTEXT_NO_BRACKET,		/* does not start with '[' */
	REC_VTEXT_EMPTY,			/* "[]": no elements */
	REC_VTEXT_SYNTAX,			/* malformed element or separator */
	REC_VTEXT_JUNK,				/* something after the closing ']' */
	REC_VTEXT_TOO_MANY,			/* more than max_dim elements */
	REC_VTEXT_RANGE,			/* element overflows float4 (tok/toklen) */
	REC_VTEXT_NAN,				/* element is NaN */
	REC_VTEXT_INF				/* element is infinite */
} RecVectorTextStatus;

/*
 * An upper bound on the number of elements in s (commas + 1), at most
 * limit + 1; a buffer of that many floats is enough for rec_vector_text_parse.
 */
extern int	rec_vector_text_max_dim(const char *s, int limit);

/*
 * Parse s into out[0..capacity-1]. On success *dim is the number of elements.
 * On REC_VTEXT_RANGE, NAN and INF, *tok and *toklen point at the offending
 * element in s; on JUNK, *tok points at the junk.
 */
extern RecVectorTextStatus rec_vector_text_parse(const char *s, float *out,
												 int capacity, int max_dim,
												 int *dim, const char **tok,
												 int *toklen);

/*
 * Print x[0..dim-1] as '[a,b,...]' with the shortest text that reads back to
 * the same float4 each. buf needs room for
 * REC_VECTOR_TEXT_BUFSIZE(dim) bytes. Returns the length written (without
 * the terminating NUL).
 */
#define REC_VECTOR_TEXT_ELEM_MAX	15	/* float_to_shortest_decimal_bufn */
#define REC_VECTOR_TEXT_BUFSIZE(dim) ((size_t) (dim) * (REC_VECTOR_TEXT_ELEM_MAX + 1) + 2)

extern int	rec_vector_text_format(const float *x, int dim, char *buf);

#endif							/* REC_VECTOR_TEXT_H */
