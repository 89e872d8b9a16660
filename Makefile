# aos_cus: PGXS build. `make && make install`, then see README.md.
EXTENSION   = aos_cus
EXTVERSION  = 0.2.0
MODULE_big  = aos_cus

# Every C file under src/ (fmgr glue, shared memory, workers) and src/core/ (pure logic).
CORE_SRCS   = $(sort $(wildcard src/core/*.c))
GLUE_SRCS   = $(sort $(wildcard src/*.c))
OBJS        = $(GLUE_SRCS:.c=.o) $(CORE_SRCS:.c=.o)

# The current install script is built from the ordered parts in src/sql/; released install scripts
# (frozen, never edited) and upgrade scripts ship as they are.
SQL_PARTS   = $(sort $(wildcard src/sql/[0-9][0-9]_*.sql))
DATA_built  = $(EXTENSION)--$(EXTVERSION).sql
DATA        = $(filter-out src/sql/$(EXTENSION)--$(EXTVERSION).sql,$(wildcard src/sql/$(EXTENSION)--*.sql)) \
              $(EXTENSION)--0.1.0.control
# Byte-pair ranks of the exact OpenAI token counter (scripts/tiktoken_ranks.py), mapped by each backend.
DATA       += data/aos_cus_cl100k_base.bpe data/aos_cus_o200k_base.bpe

PG_CONFIG  ?= pg_config
PG_CPPFLAGS = -Isrc -Isrc/core
PG_CFLAGS   = -Wall -Wextra -Werror -Wno-unused-parameter
SHLIB_LINK  = -lcrypto -lcurl -lpcre2-8

# The suites `make installcheck` runs against an installed server (preloading aos_cus, with a keyring and pgTAP;
# README "Tests"): pg_regress (sql/ against expected/), then the isolation specs (test/isolation/), then the TAP
# tests (test/t/, each starting its own clusters from the installed binaries; also `make prove_installcheck`,
# PROVE_TESTS='test/t/070_*.pl' picks files). scripts/test.sh runs them through these targets.
REGRESS        = $(patsubst sql/%.sql,%,$(sort $(wildcard sql/*.sql)))
REGRESS_OPTS   = --inputdir=. --load-extension=pgtap
ISOLATION      = $(patsubst test/isolation/specs/%.spec,%,$(sort $(wildcard test/isolation/specs/*.spec)))
ISOLATION_OPTS = --inputdir=test/isolation --load-extension=aos_cus
TAP_TESTS      = 1
PROVE_TESTS    = $(sort $(wildcard test/t/*.pl))
# Where the TAP tests keep tmp_check/ (their nodes and logs) and run; the top folder by default.
TAP_OUT        = $(CURDIR)

EXTRA_CLEAN = test/unit/*.bin src/cli/aos_cus_health $(OBJS:.o=.d) output_iso/

# No LLVM bitcode: it adds a second compiler to the build for no gain here. `override`, as PGXS sets it again.
override with_llvm = no

PGXS := $(shell $(PG_CONFIG) --pgxs)
include $(PGXS)

# Rebuild an object when a header it includes changes (Debian's PGXS tracks no header dependencies).
override CPPFLAGS += -MMD -MP
-include $(OBJS:.o=.d)

$(DATA_built): $(SQL_PARTS)
	cat $^ > $@

# PGXS's TAP recipe (which installcheck runs too), with the tests' own needs: they run in TAP_OUT (writable by the
# user the clusters run as), find the repository through REPO and test/t/AosCusTest.pm through PROVE_FLAGS
# (after the include, which empties it).
PROVE_FLAGS += --timer -I $(CURDIR)/test/t
define prove_installcheck
rm -rf '$(TAP_OUT)'/tmp_check && $(MKDIR_P) '$(TAP_OUT)'/tmp_check && \
cd '$(TAP_OUT)' && \
   TESTDIR='$(TAP_OUT)' PATH="$(bindir):$$PATH" REPO='$(CURDIR)' \
   PG_REGRESS='$(top_builddir)/src/test/regress/pg_regress' \
   $(PROVE) $(PG_PROVE_FLAGS) $(PROVE_FLAGS) $(abspath $(PROVE_TESTS))
endef

prove_installcheck:
	$(prove_installcheck)

.PHONY: prove_installcheck

# C unit tests of src/core/: each test/unit/test_*.c is its own program.
UNIT_SRCS = $(sort $(wildcard test/unit/test_*.c))
UNIT_BINS = $(UNIT_SRCS:.c=.bin)
UNIT_CFLAGS = -std=c11 -D_GNU_SOURCE -O1 -g -Wall -Wextra -Werror -Isrc/core -Itest/unit -fsanitize=address,undefined -fno-sanitize-recover=undefined

test/unit/%.bin: test/unit/%.c $(CORE_SRCS) $(wildcard src/core/*.h) test/unit/unit.h
	$(CC) $(UNIT_CFLAGS) -o $@ $< $(CORE_SRCS) -lcrypto -lpcre2-8

unittest: $(UNIT_BINS)
	@scripts/run_unit.sh $(UNIT_BINS)

.PHONY: unittest

# The operator CLI aos_cus_health (C + libpq). PGXS's PROGRAM cannot sit beside MODULE_big,
# so it has its own build and install rules; like PROGRAM it takes PostgreSQL's CPPFLAGS and LDFLAGS (hardening).
CLI         = src/cli/aos_cus_health
CLI_CFLAGS  = -O2 -g -Wall -Wextra -Werror -I$(shell $(PG_CONFIG) --includedir)
CLI_LDFLAGS = -L$(shell $(PG_CONFIG) --libdir) -lpq

all: $(CLI)

$(CLI): src/cli/aos_cus_health.c
	$(CC) $(CPPFLAGS) $(CLI_CFLAGS) -o $@ $< $(LDFLAGS) $(CLI_LDFLAGS)

install: install-cli

install-cli: $(CLI)
	$(MKDIR_P) '$(DESTDIR)$(bindir)'
	$(INSTALL_PROGRAM) $(CLI) '$(DESTDIR)$(bindir)/aos_cus_health'

uninstall: uninstall-cli

uninstall-cli:
	rm -f '$(DESTDIR)$(bindir)/aos_cus_health'

.PHONY: install-cli uninstall-cli
