/*
 * events.h
 *	  The face of src/events: the item catalogue, interaction events, event
 *	  kinds, rec.track, the maintained popularity table and the synthetic
 *	  data generator.
 *
 * The SQL objects live in events.sql; this header only names what other
 * folders (serve) need from here.
 */
#ifndef REC_EVENTS_H
#define REC_EVENTS_H

/*
 * Schema of every rec object. rec.control fixes it (schema = rec,
 * relocatable = false), so C code may name objects "rec.x" in SPI queries.
 */
#define REC_SCHEMA "rec"

/* rec.popularity_half_life, in seconds. */
extern int	rec_popularity_half_life;

/* Define this folder's settings; called from _PG_init. */
extern void rec_events_init(void);

#endif							/* REC_EVENTS_H */
