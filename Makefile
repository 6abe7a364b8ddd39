# rtspd — build, run and test.
#
#   make run     install missing Debian packages, build, make sample media, run in the foreground
#   make check   the same set-up, then every test (unit + integration) under ASan/UBSan
#   make fuzz    libFuzzer targets (clang), with a short smoke run
#   make bench   fan-out benchmark (not part of check)
#
# Sources are picked up by directory: common/ proto/ worker/ master/ are the
# server; every file in them except master/main.c goes into a library that the
# unit tests and fuzz targets link against.

CC      ?= cc
BUILD   ?= build
PKGS    := libavformat libavcodec libavutil libswscale libswresample libavdevice libavfilter \
           libsrtp2 openssl libxml-2.0 libcurl alsa libsystemd
VERSION := $(shell git describe --always --dirty 2>/dev/null || echo unknown)

# Debian packages needed to build and to test. `make deps` installs what is missing.
DEB_BUILD := build-essential pkg-config clang libclang-rt-14-dev \
             libavformat-dev libavcodec-dev libavutil-dev libswscale-dev libswresample-dev \
             libavdevice-dev libavfilter-dev libsrtp2-dev libssl-dev libxml2-dev \
             libcurl4-openssl-dev libasound2-dev libsystemd-dev libcmocka-dev
DEB_TEST  := ffmpeg python3 python3-pytest python3-gi gstreamer1.0-tools \
             gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad \
             gstreamer1.0-libav gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0 \
             systemd strace util-linux iproute2 openssl

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wformat=2
CFLAGS_BASE = -std=gnu11 -g $(WARN) -D_GNU_SOURCE -DRTSPD_VERSION='"$(VERSION)"' \
              -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
OPT     ?= -O2
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC    := $(filter-out master/main.c,$(wildcard common/*.c proto/*.c worker/*.c master/*.c tls/*.c talk/*.c))
HDRS       := $(wildcard common/*.h proto/*.h worker/*.h master/*.h tls/*.h talk/*.h)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
FUZZ_SRC   := $(wildcard tests/fuzz/fuzz_*.c)
TOOL_SRC   := $(wildcard tools/*.c)
EXTRA_TOOLS := $(patsubst tools/%.c,$(BUILD)/%,$(filter-out tools/rtspctl.c,$(TOOL_SRC)))

# Normal build
OBJ        := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
# Sanitizer build (used by make check)
SOBJ       := $(LIB_SRC:%.c=$(BUILD)/asan/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/asan/tests/%)
FUZZ_BIN   := $(FUZZ_SRC:tests/fuzz/%.c=$(BUILD)/fuzz/%)

PYTHON     := /usr/bin/python3
MEDIA_DIR  := $(BUILD)/media

.PHONY: all run check unit integration deps fuzz bench clean media asan install uninstall certs
all: $(BUILD)/rtspd $(BUILD)/rtspctl $(EXTRA_TOOLS)

# ---------------------------------------------------------------- set-up
deps: $(BUILD)/.deps
$(BUILD)/.deps: Makefile
	@mkdir -p $(BUILD)
	@missing=""; for p in $(DEB_BUILD) $(DEB_TEST); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing missing Debian packages:$$missing"; \
	  SUDO=""; [ "$$(id -u)" -eq 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing || exit 1; \
	fi
	@touch $@

# ---------------------------------------------------------------- build
# The files that print the version are rebuilt when it changes (a commit,
# or the tree becoming dirty): $(BUILD)/version is rewritten only then.
VERSION_FILE := $(BUILD)/version
$(shell mkdir -p $(BUILD) && (echo '$(VERSION)' | cmp -s - $(VERSION_FILE) || echo '$(VERSION)' > $(VERSION_FILE)))
VERSIONED := $(patsubst %.c,%.o,$(shell grep -l RTSPD_VERSION master/*.c worker/*.c tools/*.c 2>/dev/null))
$(addprefix $(BUILD)/obj/,$(VERSIONED)) $(addprefix $(BUILD)/asan/obj/,$(VERSIONED)): $(VERSION_FILE)

# V=1 shows the compiler command lines.
Q := $(if $(V),,@)

$(BUILD)/obj/%.o: %.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_BASE) $(OPT) $(CFLAGS) -c $< -o $@

$(BUILD)/asan/obj/%.o: %.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC/SAN  $<")
	$(Q)$(CC) $(CFLAGS_BASE) -O1 $(SAN) $(CFLAGS) -c $< -o $@

$(BUILD)/librtspd.a: $(OBJ)
	@rm -f $@; ar rcs $@ $^
$(BUILD)/asan/librtspd.a: $(SOBJ)
	@rm -f $@; ar rcs $@ $^

$(BUILD)/rtspd: $(BUILD)/obj/master/main.o $(BUILD)/librtspd.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(OPT) $^ -o $@ $(LIBS)
$(BUILD)/rtspctl: $(BUILD)/obj/tools/rtspctl.o $(BUILD)/librtspd.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(OPT) $^ -o $@ $(LIBS)

# Other tools (rtspbench ...): one C file each under tools/.
$(EXTRA_TOOLS): $(BUILD)/%: $(BUILD)/obj/tools/%.o $(BUILD)/librtspd.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(OPT) $^ -o $@ $(LIBS)

$(BUILD)/asan/rtspd: $(BUILD)/asan/obj/master/main.o $(BUILD)/asan/librtspd.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SAN) $^ -o $@ $(LIBS)
$(BUILD)/asan/rtspctl: $(BUILD)/asan/obj/tools/rtspctl.o $(BUILD)/asan/librtspd.a
	@$(if $(V),,echo "  LD      $@")
	$(Q)$(CC) $(SAN) $^ -o $@ $(LIBS)

$(BUILD)/asan/tests/%: tests/unit/%.c $(BUILD)/asan/librtspd.a $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  TEST    $<")
	$(Q)$(CC) $(CFLAGS_BASE) -O1 $(SAN) $(CFLAGS) $< $(BUILD)/asan/librtspd.a -o $@ $(LIBS) -lcmocka

asan: $(BUILD)/asan/rtspd $(BUILD)/asan/rtspctl $(UNIT_BIN)

# ---------------------------------------------------------------- media
media: $(MEDIA_DIR)/.stamp
$(MEDIA_DIR)/.stamp: tests/media/make-samples.sh | $(BUILD)/.deps
	@mkdir -p $(MEDIA_DIR)
	sh tests/media/make-samples.sh $(MEDIA_DIR)
	@touch $@

# ---------------------------------------------------------------- run
run: $(BUILD)/rtspd $(BUILD)/rtspctl media certs
	$(BUILD)/rtspd -c etc/rtspserver.cfg

# ---------------------------------------------------------------- tests
unit: $(UNIT_BIN)
	@fail=0; for t in $(UNIT_BIN); do echo "== $$t"; $$t || fail=1; done; exit $$fail

integration: $(BUILD)/asan/rtspd $(BUILD)/asan/rtspctl $(EXTRA_TOOLS) media
	RTSPD_BIN=$(abspath $(BUILD)/asan/rtspd) RTSPCTL_BIN=$(abspath $(BUILD)/asan/rtspctl) \
	RTSPBENCH_BIN=$(abspath $(BUILD)/rtspbench) \
	RTSPD_MEDIA=$(abspath $(MEDIA_DIR)) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration $(PYTEST_ARGS)

# Unit tests first, then integration; pytest prints the closing summary line.
check: $(BUILD)/.deps
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-smoke
	@$(MAKE) --no-print-directory integration

# ---------------------------------------------------------------- fuzz
FUZZ_LIB_SRC := $(filter common/% proto/% talk/jitter.c talk/decode.c,$(LIB_SRC))
# fuzz_talk compiles the rtsp-talk tool into itself to reach its parsers.
$(BUILD)/fuzz/fuzz_talk: tools/rtsp-talk.c
# The library's sources are compiled once for all targets.
FUZZ_OBJ := $(FUZZ_LIB_SRC:%.c=$(BUILD)/fuzzobj/%.o)
$(FUZZ_OBJ): $(BUILD)/fuzzobj/%.o: %.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  CC/FUZZ $<")
	$(Q)clang $(CFLAGS_BASE) -O1 -fsanitize=fuzzer-no-link,address,undefined -c $< -o $@
$(FUZZ_BIN): $(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJ) $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  FUZZ    $<")
	$(Q)clang $(CFLAGS_BASE) -O1 -fsanitize=fuzzer,address,undefined $< $(FUZZ_OBJ) -o $@ $(LIBS)

fuzz: $(FUZZ_BIN)
# Each target runs 10 s from a copy of its seed corpus, one per CPU at once.
fuzz-smoke: $(FUZZ_BIN)
	@sh tests/fuzz/smoke.sh $(BUILD)/fuzz $(FUZZ_BIN)

# ---------------------------------------------------------------- bench
# Fan-out benchmark against gst-rtsp-server; writes docs/PERFORMANCE.md.
bench: $(BUILD)/rtspd $(EXTRA_TOOLS) media
	RTSPD_BIN=$(abspath $(BUILD)/rtspd) RTSPBENCH_BIN=$(abspath $(BUILD)/rtspbench) bash tests/bench/run.sh

# ---------------------------------------------------------------- certs
# A self-signed certificate and key in build/certs, for trying TLS on this
# machine only (etc/make-certs.sh says why never in production).
certs: $(BUILD)/certs/rtspd.crt
$(BUILD)/certs/rtspd.crt: etc/make-certs.sh
	sh etc/make-certs.sh $(BUILD)/certs

# ---------------------------------------------------------------- install
# make install [PREFIX=/usr/local] [DESTDIR=]: the optimized rtspd and rtspctl,
# the system configuration (never overwriting one that exists), the systemd
# unit (generated from systemd/rtspd.service.in so ExecStart names BINDIR),
# the sysusers.d and tmpfiles.d snippets, and the operator's docs. Without
# DESTDIR it also creates the user and directories, so that
# `systemctl enable --now rtspd` works next. See docs/OPERATING.md.
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
SYSCONFDIR  ?= /etc
DOCDIR      ?= $(PREFIX)/share/doc/rtspd
systemd_dir  = $(or $(shell pkg-config --variable=$(1) systemd 2>/dev/null),$(2))
UNITDIR     ?= $(call systemd_dir,systemdsystemunitdir,/lib/systemd/system)
SYSUSERSDIR ?= $(call systemd_dir,sysusersdir,/usr/lib/sysusers.d)
TMPFILESDIR ?= $(call systemd_dir,tmpfilesdir,/usr/lib/tmpfiles.d)
INSTALL     ?= install
DOC_FILES   := README.md docs/CONFIG.md docs/OPERATING.md docs/LOGGING.md docs/CONTROL.md
INSTALL_SUBST = -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@DOCDIR@|$(DOCDIR)|g'

install: $(BUILD)/rtspd $(BUILD)/rtspctl
	$(INSTALL) -d -m 0755 '$(DESTDIR)$(BINDIR)' '$(DESTDIR)$(DOCDIR)' '$(DESTDIR)$(UNITDIR)' \
	  '$(DESTDIR)$(SYSUSERSDIR)' '$(DESTDIR)$(TMPFILESDIR)'
	$(INSTALL) -d -m 0750 '$(DESTDIR)$(SYSCONFDIR)/rtspd'
	$(INSTALL) -m 0755 $(BUILD)/rtspd $(BUILD)/rtspctl '$(DESTDIR)$(BINDIR)/'
	@cfg='$(DESTDIR)$(SYSCONFDIR)/rtspd/rtspserver.cfg'; \
	if [ -e "$$cfg" ]; then echo "keeping the existing $$cfg (the new default is etc/rtspserver-system.cfg)"; \
	else echo "$(INSTALL) -m 0640 etc/rtspserver-system.cfg $$cfg"; $(INSTALL) -m 0640 etc/rtspserver-system.cfg "$$cfg"; fi
	sed $(INSTALL_SUBST) systemd/rtspd.service.in >'$(DESTDIR)$(UNITDIR)/rtspd.service'
	chmod 0644 '$(DESTDIR)$(UNITDIR)/rtspd.service'
	$(INSTALL) -m 0644 systemd/rtspd.sysusers '$(DESTDIR)$(SYSUSERSDIR)/rtspd.conf'
	sed $(INSTALL_SUBST) systemd/rtspd.tmpfiles.in >'$(DESTDIR)$(TMPFILESDIR)/rtspd.conf'
	chmod 0644 '$(DESTDIR)$(TMPFILESDIR)/rtspd.conf'
	$(INSTALL) -m 0644 $(DOC_FILES) '$(DESTDIR)$(DOCDIR)/'
ifeq ($(DESTDIR),)
	@if command -v systemd-sysusers >/dev/null; then echo "systemd-sysusers $(SYSUSERSDIR)/rtspd.conf"; \
	  systemd-sysusers '$(SYSUSERSDIR)/rtspd.conf'; \
	else echo "systemd-sysusers not found: create the system user and group rtspd yourself"; fi
	@if command -v systemd-tmpfiles >/dev/null; then echo "systemd-tmpfiles --create $(TMPFILESDIR)/rtspd.conf"; \
	  systemd-tmpfiles --create '$(TMPFILESDIR)/rtspd.conf'; \
	else echo "systemd-tmpfiles not found: create /var/lib/rtspd/media, and give $(SYSCONFDIR)/rtspd to group rtspd, yourself"; fi
	@if [ -d /run/systemd/system ]; then echo "systemctl daemon-reload"; systemctl daemon-reload; fi
	@echo "installed; start it with: systemctl enable --now rtspd"
endif

# Removes what install added, except the configuration ($(SYSCONFDIR)/rtspd),
# the media and state (/var/lib/rtspd) and the user rtspd: those are the
# operator's, and uninstall says so.
uninstall:
ifeq ($(DESTDIR),)
	@if [ -d /run/systemd/system ]; then echo "systemctl disable --now rtspd.service"; \
	  systemctl disable --now rtspd.service || true; fi
endif
	rm -f '$(DESTDIR)$(BINDIR)/rtspd' '$(DESTDIR)$(BINDIR)/rtspctl' '$(DESTDIR)$(UNITDIR)/rtspd.service' \
	  '$(DESTDIR)$(SYSUSERSDIR)/rtspd.conf' '$(DESTDIR)$(TMPFILESDIR)/rtspd.conf' \
	  $(foreach f,$(notdir $(DOC_FILES)),'$(DESTDIR)$(DOCDIR)/$(f)')
	-@rmdir '$(DESTDIR)$(DOCDIR)' 2>/dev/null || true
ifeq ($(DESTDIR),)
	@if [ -d /run/systemd/system ]; then echo "systemctl daemon-reload"; systemctl daemon-reload; fi
endif
	@echo "kept: $(DESTDIR)$(SYSCONFDIR)/rtspd (configuration), /var/lib/rtspd (state and media)" \
	  "and the user rtspd; remove them by hand if you want them gone"

clean:
	rm -rf $(BUILD)
