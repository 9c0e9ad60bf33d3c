# rec: PGXS build.
#
# Two shared libraries are built:
#   rec.so        everything a backend loads: vector type, HNSW access method,
#                 serving, evaluation, experiments, monitoring.
#   rec_train.so  the ALS trainer (src/als). It links OpenBLAS and is loaded
#                 only by the training background worker, so OpenBLAS threads
#                 never start inside the postmaster or a client backend.
#
# rec--1.0.sql is assembled from the per-subsystem fragments listed in
# SQL_PARTS; the assembled file is committed and `make` keeps it current.

EXTENSION   = rec
EXTVERSION  = 1.0

SQL_PARTS   = src/rec.sql \
              src/vector/vector.sql \
              src/hnsw/hnsw.sql \
              src/events/events.sql \
              src/model/model.sql \
              src/eval/eval.sql \
              src/serve/serve.sql

MODULE_big  = rec
REC_SRCS    = $(sort $(wildcard src/*.c) \
                     $(filter-out src/als/%,$(wildcard src/*/*.c)))
OBJS        = $(REC_SRCS:.c=.o)

TRAIN_SRCS  = $(sort $(wildcard src/als/*.c))
TRAIN_OBJS  = $(TRAIN_SRCS:.c=.o)
TRAIN_LIB   = rec_train$(DLSUFFIX)

DATA        = $(EXTENSION)--$(EXTVERSION).sql
DOCS        =

# pg_regress tests: every sql/*.sql, in name order. Each test creates the
# extension itself, so any one of them can be run alone.
REGRESS     = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))

# Isolation tests live in test/isolation/specs.
ISOLATION   = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --outputdir=output_iso

# TAP tests live in test/t.
TAP_TESTS   = 1
PROVE_TESTS ?= test/t/*.pl

PG_CPPFLAGS = -I$(srcdir)/src
# -Wno-unused-parameter: PostgreSQL's own inline functions (bufpage.h) trip it.
PG_CFLAGS   = -std=gnu99 -fno-semantic-interposition -Wall -Wextra -Wno-unused-parameter
# Export only what PostgreSQL must find (see src/exports.map), so rec.so and
# pgvector's vector.so can be loaded into one server side by side.
EXPORTS_MAP = $(srcdir)/src/exports.map
SHLIB_LINK  = -Wl,--version-script=$(EXPORTS_MAP) -lm

EXTRA_CLEAN = $(TRAIN_LIB) $(TRAIN_OBJS) results output_iso tmp_check tmp_regress \
              regression.diffs regression.out

PG_CONFIG  ?= pg_config
PGXS       := $(shell $(PG_CONFIG) --pgxs)

# No LLVM bitcode: JIT inlining of rec's functions buys nothing, and it would
# make clang a build requirement.
override with_llvm = no

include $(PGXS)

all: $(DATA)

define assemble_sql
{ echo '-- rec $(EXTVERSION): assembled by make from the fragments named below; edit those, not this file.'; \
  printf '%s\n' '\echo Use "CREATE EXTENSION rec" to load this file. \quit'; \
  for f in $(SQL_PARTS); do echo; echo "-- ==== $$f ===="; echo; cat $(srcdir)/$$f; done; }
endef

$(DATA): $(SQL_PARTS) Makefile
	@$(assemble_sql) > $@.tmp && mv $@.tmp $@

ifneq ($(TRAIN_SRCS),)
all: $(TRAIN_LIB)

$(TRAIN_LIB): $(TRAIN_OBJS)
	$(CC) $(CFLAGS) $(TRAIN_OBJS) $(LDFLAGS) $(LDFLAGS_SL) -shared -o $@ -Wl,--version-script=$(EXPORTS_MAP) -lopenblas -lm

install: install-train
install-train: $(TRAIN_LIB)
	$(INSTALL_SHLIB) $(TRAIN_LIB) '$(DESTDIR)$(pkglibdir)/$(TRAIN_LIB)'

uninstall: uninstall-train
uninstall-train:
	rm -f '$(DESTDIR)$(pkglibdir)/$(TRAIN_LIB)'

.PHONY: install-train uninstall-train
endif

# Is the committed rec--1.0.sql what the fragments assemble to?
check-sql:
	@$(assemble_sql) | cmp -s - $(DATA) || \
	 { echo "$(DATA) is out of date: run make and commit it"; exit 1; }

.PHONY: check-sql
