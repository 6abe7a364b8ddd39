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
             gstreamer1.0-libav gir1.2-gst-plugins-base-1.0 gir1.2-gst-rtsp-server-1.0

WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter -Wformat=2
CFLAGS_BASE = -std=gnu11 -g $(WARN) -D_GNU_SOURCE -DRTSPD_VERSION='"$(VERSION)"' \
              -I. $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm -lpthread
OPT     ?= -O2
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LIB_SRC    := $(filter-out master/main.c,$(wildcard common/*.c proto/*.c worker/*.c master/*.c))
HDRS       := $(wildcard common/*.h proto/*.h worker/*.h master/*.h)
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

.PHONY: all run check unit integration deps fuzz bench clean media asan
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
run: $(BUILD)/rtspd $(BUILD)/rtspctl media
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
FUZZ_LIB_SRC := $(filter common/% proto/%,$(LIB_SRC))
$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_LIB_SRC) $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@$(if $(V),,echo "  FUZZ    $<")
	$(Q)clang $(CFLAGS_BASE) -O1 -fsanitize=fuzzer,address,undefined $< $(FUZZ_LIB_SRC) -o $@ $(LIBS)

fuzz: $(FUZZ_BIN)
# Each target runs 10 s from a copy of its seed corpus (libFuzzer writes new
# inputs into the corpus directory; the repository's seeds stay as they are).
fuzz-smoke: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
	  n=$$(basename $$f); seeds=tests/fuzz/corpus/$${n#fuzz_}; work=$(BUILD)/fuzz/corpus-$${n#fuzz_}; \
	  rm -rf $$work; mkdir -p $$work; [ -d $$seeds ] && cp -r $$seeds/. $$work/; \
	  echo "== $$f (smoke, 10 s)"; \
	  $$f -max_total_time=10 -print_final_stats=0 $$work >$(BUILD)/fuzz/$$n.log 2>&1 \
	    || { tail -40 $(BUILD)/fuzz/$$n.log; exit 1; }; \
	done

# ---------------------------------------------------------------- bench
# Fan-out benchmark against gst-rtsp-server; writes docs/PERFORMANCE.md.
bench: $(BUILD)/rtspd $(EXTRA_TOOLS) media
	RTSPD_BIN=$(abspath $(BUILD)/rtspd) RTSPBENCH_BIN=$(abspath $(BUILD)/rtspbench) bash tests/bench/run.sh

clean:
	rm -rf $(BUILD)
