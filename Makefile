# tunnels — SSH reverse-tunnel supervisor.
#
#   make            build build/tunnels
#   make deps       install (apt-get, idempotent) what build, tests, demo
#                   and bench need (no service is left running or enabled)
#   make build-deps only what building and running need (the install path)
#   make test       unit + integration tests, under ASan/UBSan, fuzz smoke
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (tests/fuzz)
#   make demo       a request through a real tunnel on loopback
#   make bench      comparison with ssh -R (make bench-wan: the WAN section)
#   make install    PREFIX=/usr/local DESTDIR=

PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
MANDIR	?= $(PREFIX)/share/man
SYSCONFDIR ?= /etc
DESTDIR	?=
# Where systemd looks for units and sysusers.d files (pkg-config systemd).
UNITDIR	?= $(shell pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || echo /lib/systemd/system)
SYSUSERSDIR ?= $(shell pkg-config --variable=sysusersdir systemd 2>/dev/null || echo /usr/lib/sysusers.d)

CC	?= cc
B	 = build

# libssh2 >= 1.11.1 (EtM MACs, AES-GCM, chacha20-poly1305, rsa-sha2): the
# system's when it is new enough, else a static build of Debian 13's source
# package in build/libssh2 (contrib/libssh2/build.sh, run by `make deps` or
# on demand); OpenSSL stays the system's shared library either way.
LIBSSH2_MIN = 1.11.1
SSH2_DIR = $(B)/libssh2
ifeq ($(shell pkg-config --atleast-version=$(LIBSSH2_MIN) libssh2 2>/dev/null && echo system),system)
SSH2_CFLAGS := $(shell pkg-config --cflags libssh2)
SSH2_LIBS   := $(shell pkg-config --libs libssh2)
SSH2_DEP     =
SSH2_SOURCE  = system
else
SSH2_CFLAGS := -I$(SSH2_DIR)/include
SSH2_LIBS   := $(SSH2_DIR)/lib/libssh2.a $(shell pkg-config --libs libcrypto 2>/dev/null || echo -lcrypto)
SSH2_DEP     = $(SSH2_DIR)/lib/libssh2.a
SSH2_SOURCE  = static
endif

# libcrypto directly too: knownhosts.c hashes host names (HMAC-SHA1).
PKGS	 = yaml-0.1 libsystemd libcrypto
PKG_CFLAGS := $(SSH2_CFLAGS) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(SSH2_LIBS) $(shell pkg-config --libs $(PKGS) 2>/dev/null)
VERSION	:= $(shell cat VERSION 2>/dev/null || echo 0.1.0)

WARN	 = -Wall -Wextra -Werror -Wformat=2 -Wshadow -Wstrict-prototypes \
	   -Wmissing-prototypes -Wno-format-nonliteral
CFLAGS	?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -DTUNNELS_VERSION='"$(VERSION)"' \
	   -I$(B)/gen \
	   -DTUNNELS_LIBSSH2='"$(SSH2_SOURCE)"' \
	   $(WARN) $(PKG_CFLAGS) $(CFLAGS)
SAN	 = -fsanitize=address,undefined -fno-omit-frame-pointer \
	   -fno-sanitize-recover=undefined

SRCS	:= $(wildcard src/*.c)
OBJS	 = $(SRCS:src/%.c=$(B)/obj/%.o)
SOBJS	 = $(SRCS:src/%.c=$(B)/asan/obj/%.o)

# Modules the unit tests link: no SSH session and no network beyond
# loopback; the event loop is one of them (test_loop and test_dial run it
# on socketpairs and loopback sockets).
PURE	 = util addr atomicfile algos kexinit sshmem dial config config_yaml config_server \
	   config_files config_tunnel keyfile knownhosts backoff nginx json \
	   notify base64 loop log link reclaim ssherr setup_script rfile window
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS  = $(UNIT_SRCS:tests/unit/%.c=$(B)/unit/%)
PURE_OBJS  = $(foreach m,$(PURE),$(if $(wildcard src/$(m).c),$(B)/asan/obj/$(m).o))

# The libssh2 contract tests (docs/libssh2.md): one program per rule,
# built with the engine's flags against the same libssh2.
L2T_SRCS  := $(wildcard tests/libssh2/*.c)
L2T_BINS   = $(L2T_SRCS:tests/libssh2/%.c=$(B)/libssh2-tests/%)

PYTHON	 = /usr/bin/python3
PYTEST	 = $(PYTHON) -m pytest

.PHONY: all asan test unit integration deps build-deps demo bench install \
	uninstall \
	clean check-style libssh2-tests

all: $(B)/tunnels

# Header dependencies: every compile writes a .d file next to its output
# (-MMD; -MP adds a target for each header so a removed one is no error).
DEPFLAGS = -MMD -MP -MF $@.d

# Flag stamps: $(B)/NAME.flags holds the command line a build variant
# compiles with (VERSION is in it as -DTUNNELS_VERSION); it is rewritten,
# and so newer than every object of that variant, only when the text
# changed. Checked while the Makefile is read, before any rule runs.
define FLAGS_STAMP
ifneq ($$(file <$(B)/$(1).flags),$$($(2)))
$$(shell mkdir -p $(B))
$$(file >$(B)/$(1).flags,$$($(2)))
endif
endef
RELEASE_CMD = $(CC) $(ALL_CFLAGS) $(PKG_LIBS) $(LDFLAGS)
ASAN_CMD    = $(CC) $(ALL_CFLAGS) $(SAN) -O1 $(PKG_LIBS) $(LDFLAGS)
UNIT_CMD    = $(ASAN_CMD) -Isrc -lcmocka
L2T_CMD     = $(CC) $(ALL_CFLAGS) -fno-optimize-sibling-calls $(SSH2_LIBS) $(LDFLAGS)
$(eval $(call FLAGS_STAMP,release,RELEASE_CMD))
$(eval $(call FLAGS_STAMP,asan,ASAN_CMD))
$(eval $(call FLAGS_STAMP,unit,UNIT_CMD))
$(eval $(call FLAGS_STAMP,libssh2-tests,L2T_CMD))

$(B)/tunnels: $(OBJS) $(B)/release.flags
	$(CC) $(ALL_CFLAGS) -o $@ $(OBJS) $(PKG_LIBS) $(LDFLAGS)

$(B)/obj/%.o: src/%.c $(B)/release.flags $(SSH2_DEP) | $(B)/obj
	$(CC) $(ALL_CFLAGS) $(DEPFLAGS) -c -o $@ $<

# The sanitizer build the integration tests run.
asan: $(B)/asan/tunnels

$(B)/asan/tunnels: $(SOBJS) $(B)/asan.flags
	$(CC) $(ALL_CFLAGS) $(SAN) -o $@ $(SOBJS) $(PKG_LIBS) $(LDFLAGS)

$(B)/asan/obj/%.o: src/%.c $(B)/asan.flags $(SSH2_DEP) | $(B)/asan/obj
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 $(DEPFLAGS) -c -o $@ $<

$(B)/unit/%: tests/unit/%.c $(PURE_OBJS) $(B)/unit.flags | $(B)/unit
	$(CC) $(ALL_CFLAGS) $(SAN) -O1 -Isrc $(DEPFLAGS) -o $@ $< $(PURE_OBJS) \
	    $(PKG_LIBS) -lcmocka

libssh2-tests: $(L2T_BINS)

# -fno-optimize-sibling-calls: the `stack` experiment calls send_eof from
# chosen stack depths (docs/libssh2.md rule 2); a tail call would move them.
$(B)/libssh2-tests/%: tests/libssh2/%.c $(B)/libssh2-tests.flags $(SSH2_DEP) | $(B)/libssh2-tests
	$(CC) $(ALL_CFLAGS) -fno-optimize-sibling-calls $(DEPFLAGS) -o $@ $< $(SSH2_LIBS) $(LDFLAGS)

# The fixed part of `server-setup --script`, as a C string.
$(B)/obj/setup_script.o $(B)/asan/obj/setup_script.o: $(B)/gen/setup_script_sh.h

$(B)/gen/setup_script_sh.h: src/setup_script.sh | $(B)/gen
	{ echo '/* Generated from src/setup_script.sh by the Makefile. */'; \
	  echo 'static const char setup_script_lib[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/	"/' -e 's/$$/\\n"/' $<; \
	  echo '	;'; } >$@.tmp && mv $@.tmp $@

$(SSH2_DIR)/lib/libssh2.a:
	sh contrib/libssh2/build.sh $(SSH2_DIR)

$(B)/obj $(B)/asan/obj $(B)/unit $(B)/libssh2-tests $(B)/gen:
	mkdir -p $@

test: check-style unit integration

# Every unit binary runs, failing or not; then a total, and the exit status
# says whether any failed.
unit: $(UNIT_BINS)
	@TESTS_SRCDIR=$(CURDIR)/tests sh tests/unit/run.sh $(UNIT_BINS)

integration: $(B)/tunnels $(B)/asan/tunnels $(L2T_BINS)
	TUNNELS_BIN=$(CURDIR)/$(B)/asan/tunnels $(PYTEST) -q tests/integration

# Fuzzing: libFuzzer targets (tests/fuzz/fuzz_*.c) built with Debian's
# clang, with ASan and UBSan, on the pure parsers only (no loop, no
# libssh2 session). `make fuzz` runs each for FUZZ_SECONDS on a copy of
# its seed corpus (tests/fuzz/corpus/TARGET; new inputs go to
# build/fuzz/corpus); `make test` runs each for FUZZ_SMOKE_SECONDS. A
# crash, a leak or an input slower than FUZZ_TIMEOUT seconds fails, and
# leaves the input in build/fuzz/artifacts.
FUZZ_CC		?= clang-14
FUZZ_SECONDS	?= 60
FUZZ_SMOKE_SECONDS ?= 4
FUZZ_TIMEOUT	?= 10
FUZZ_TARGETS	 = config keyfile knownhosts kexinit json
FUZZ_MODS	 = util addr rfile base64 keyfile knownhosts config config_yaml \
		   config_server config_tunnel config_files kexinit json
FUZZ_SAN	 = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
		   -fno-omit-frame-pointer
FUZZ_CFLAGS	 = -std=c11 -D_GNU_SOURCE -g -O1 $(WARN) $(FUZZ_SAN) \
		   $(shell pkg-config --cflags yaml-0.1 libcrypto 2>/dev/null)
FUZZ_LIBS	:= $(shell pkg-config --libs yaml-0.1 libcrypto 2>/dev/null)
FUZZ_OBJS	 = $(FUZZ_MODS:%=$(B)/fuzz/obj/%.o) $(B)/fuzz/obj/fuzz.o
FUZZ_BINS	 = $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)
FUZZ_CMD	 = $(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_LIBS)
$(eval $(call FLAGS_STAMP,fuzz,FUZZ_CMD))
FUZZ_RUN	 = set -e; for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(B)/fuzz/corpus/$$t $(B)/fuzz/artifacts; \
	    echo "== fuzz_$$t: $(1) s"; \
	    $(B)/fuzz/fuzz_$$t -max_total_time=$(1) -timeout=$(FUZZ_TIMEOUT) \
	        -rss_limit_mb=2048 -print_final_stats=1 \
	        -artifact_prefix=$(B)/fuzz/artifacts/$$t- \
	        $(B)/fuzz/corpus/$$t tests/fuzz/corpus/$$t 2>$(B)/fuzz/$$t.log || \
	        { tail -n 60 $(B)/fuzz/$$t.log; exit 1; }; \
	    grep -E '^stat::number_of_executed_units|^Done' $(B)/fuzz/$$t.log; \
	done

.PHONY: fuzz fuzz-build fuzz-smoke
# Kept between builds (make would delete them as intermediates).
.SECONDARY: $(FUZZ_OBJS)
fuzz-build: $(FUZZ_BINS)

fuzz: fuzz-build
	@$(call FUZZ_RUN,$(FUZZ_SECONDS))

fuzz-smoke: fuzz-build
	@$(call FUZZ_RUN,$(FUZZ_SMOKE_SECONDS))

test: fuzz-smoke

$(B)/fuzz/obj/%.o: src/%.c $(B)/fuzz.flags | $(B)/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link $(DEPFLAGS) -c -o $@ $<

$(B)/fuzz/obj/fuzz.o: tests/fuzz/fuzz.c $(B)/fuzz.flags | $(B)/fuzz/obj
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(DEPFLAGS) -c -o $@ $<

$(B)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) $(B)/fuzz.flags
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -Isrc -Itests/fuzz \
	    $(DEPFLAGS) -o $@ $< $(FUZZ_OBJS) $(FUZZ_LIBS)

$(B)/fuzz/obj:
	mkdir -p $@

# build-deps: what building and running need (the install path); deps:
# also what the tests, the demo and the bench need (never left running or
# enabled).
build-deps:
	@sh tests/deps.sh build
	@pkg-config --atleast-version=$(LIBSSH2_MIN) libssh2 2>/dev/null || \
	    sh contrib/libssh2/build.sh $(SSH2_DIR)

deps: build-deps
	@sh tests/deps.sh test

demo: $(B)/tunnels
	@sh tests/demo.sh $(CURDIR)/$(B)/tunnels

bench: $(B)/tunnels
	$(PYTHON) tests/bench/bench.py --bin $(CURDIR)/$(B)/tunnels \
	    --out $(CURDIR)/$(B)/bench $(if $(BENCH),--only "$(BENCH)") $(BENCH_FLAGS)

# The WAN section alone (WAN_RTTS="0 50 150" picks the round-trip times).
.PHONY: bench-wan
bench-wan:
	$(MAKE) bench BENCH=wan

# Calls src/ must not make (bounded strings, no sleeping, no shell, no
# signal handlers or non-local jumps: signals come through signalfd).
check-style:
	@sh tests/check-style.sh

# The units name the installed binary; the example config is installed
# only when there is none (never overwrite a user's file).
install: $(B)/tunnels
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) \
	    $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(MANDIR)/man8 \
	    $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(SYSCONFDIR)/tunnels
	install -m 0755 $(B)/tunnels $(DESTDIR)$(BINDIR)/tunnels
	for u in tunnels.service tunnels@.service; do \
	    sed 's|@BINDIR@|$(BINDIR)|g' units/$$u.in >$(DESTDIR)$(UNITDIR)/$$u.tmp && \
	    chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	    mv $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 units/tunnels.sysusers $(DESTDIR)$(SYSUSERSDIR)/tunnels.conf
	for m in man8/tunnels.8 man5/tunnels.yaml.5; do \
	    sed 's|"tunnels [0-9][0-9.]*"|"tunnels $(VERSION)"|' man/$${m#*/} \
	        >$(DESTDIR)$(MANDIR)/$$m && chmod 0644 $(DESTDIR)$(MANDIR)/$$m || \
	        exit 1; \
	done
	# The config holds no secret (keys live in their own files) and the
	# service's user must read it: 0644.
	[ -e $(DESTDIR)$(SYSCONFDIR)/tunnels/tunnels.yaml ] || \
	    install -m 0644 etc/tunnels.yaml $(DESTDIR)$(SYSCONFDIR)/tunnels/tunnels.yaml

# Leaves /etc/tunnels alone: it holds the user's config and keys.
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tunnels \
	    $(DESTDIR)$(UNITDIR)/tunnels.service \
	    $(DESTDIR)$(UNITDIR)/tunnels@.service \
	    $(DESTDIR)$(SYSUSERSDIR)/tunnels.conf \
	    $(DESTDIR)$(MANDIR)/man8/tunnels.8 \
	    $(DESTDIR)$(MANDIR)/man5/tunnels.yaml.5

clean:
	rm -rf $(B)

# The dependency files the compiles wrote (none before the first build).
-include $(wildcard $(B)/obj/*.d $(B)/asan/obj/*.d $(B)/unit/*.d \
	$(B)/libssh2-tests/*.d $(B)/fuzz/obj/*.d $(B)/fuzz/*.d)
