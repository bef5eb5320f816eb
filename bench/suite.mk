# Builds mfs-bench (bench/run calls it; not an Automake file).
#   make -f SRC/bench/suite.mk SRC=/path/to/source BUILD=/path/to/build
# BUILD is a configured build directory where lib/libmfshare.la is built.
SRC ?= ..
LIBSRC ?= $(SRC)
BUILD ?= .
OUT ?= $(BUILD)/bench
CC ?= cc
CXX ?= g++
PKG_CONFIG ?= pkg-config
OPT ?= -O2 -g
WARN = -Wall -Wextra
QT_CFLAGS := $(shell $(PKG_CONFIG) --cflags Qt6Core)
QT_LIBS := $(shell $(PKG_CONFIG) --libs Qt6Core)
CPPFLAGS_ALL = -D_GNU_SOURCE -I$(LIBSRC)/include -I$(SRC)/bench
LIBDIR = $(abspath $(BUILD)/lib/.libs)
# Library features that only newer headers declare (enum values, so not
# visible to #ifdef): MFS_POPULATE adds a bulk row.
FEATURES := $(shell grep -q 'MFS_POPULATE *=' $(LIBSRC)/include/mfshare.h && echo -DHAVE_MFS_POPULATE)

all: $(OUT)/mfs-bench

$(OUT)/mfs-bench.o: $(SRC)/bench/mfs-bench.c $(SRC)/bench/adapt.h $(LIBSRC)/include/mfshare.h
	@mkdir -p $(OUT)
	$(CC) -std=gnu99 $(OPT) $(WARN) $(CPPFLAGS_ALL) $(FEATURES) -pthread -c $< -o $@

$(OUT)/adapt-qt.o: $(SRC)/bench/adapt-qt.cpp $(SRC)/bench/adapt.h
	@mkdir -p $(OUT)
	$(CXX) -std=c++17 -fPIC $(OPT) $(WARN) $(CPPFLAGS_ALL) $(QT_CFLAGS) -c $< -o $@

$(OUT)/adapt-boost.o: $(SRC)/bench/adapt-boost.cpp $(SRC)/bench/adapt.h
	@mkdir -p $(OUT)
	$(CXX) -std=c++17 -fPIC $(OPT) $(WARN) $(CPPFLAGS_ALL) -c $< -o $@

$(OUT)/mfs-bench: $(OUT)/mfs-bench.o $(OUT)/adapt-qt.o $(OUT)/adapt-boost.o $(LIBDIR)/libmfshare.so
	$(CXX) -pthread -o $@ $(OUT)/mfs-bench.o $(OUT)/adapt-qt.o $(OUT)/adapt-boost.o \
		-L$(LIBDIR) -Wl,-rpath,$(LIBDIR) -lmfshare $(QT_LIBS) -lrt -lm

.PHONY: all
