// SPDX-License-Identifier: MIT
// Boost.Interprocess contender of mfs-bench: an interprocess_mutex placed in
// a shared_memory_object (POSIX shm on Linux), header-only Boost.
#include "adapt.h"

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>

#include <cstdio>
#include <new>
#include <string>

namespace bi = boost::interprocess;

namespace {
struct bx {
	std::string name;
	bi::shared_memory_object shm;
	bi::mapped_region region;
	bi::interprocess_mutex *mtx;
};
}

extern "C" void *bx_open(const char *key, int creator)
{
	try {
		bx *h = new bx;
		h->name = key;
		if (creator) {
			bi::shared_memory_object::remove(key);
			bi::shared_memory_object shm(bi::create_only, key, bi::read_write);
			shm.truncate(4096);
			h->shm.swap(shm);
		} else {
			bi::shared_memory_object shm(bi::open_only, key, bi::read_write);
			h->shm.swap(shm);
		}
		bi::mapped_region r(h->shm, bi::read_write);
		h->region.swap(r);
		if (creator)
			h->mtx = new (h->region.get_address()) bi::interprocess_mutex;
		else
			h->mtx = static_cast<bi::interprocess_mutex *>(h->region.get_address());
		return h;
	} catch (const std::exception &e) {
		std::snprintf(adapt_error, sizeof adapt_error, "boost::interprocess: %s", e.what());
		return nullptr;
	}
}

extern "C" void bx_close(void *p, int creator)
{
	bx *h = static_cast<bx *>(p);

	if (creator) {
		h->mtx->~interprocess_mutex();
		bi::shared_memory_object::remove(h->name.c_str());
	}
	delete h;
}

extern "C" int bx_unc(void *p, long n)
{
	bi::interprocess_mutex *m = static_cast<bx *>(p)->mtx;

	try {
		for (long i = 0; i < n; i++) {
			m->lock();
			m->unlock();
		}
	} catch (const std::exception &e) {
		std::snprintf(adapt_error, sizeof adapt_error, "interprocess_mutex: %s", e.what());
		return -1;
	}
	return 0;
}

extern "C" int bx_count(void *p, long n, volatile uint64_t *counter)
{
	bi::interprocess_mutex *m = static_cast<bx *>(p)->mtx;

	try {
		for (long i = 0; i < n; i++) {
			m->lock();
			*counter = *counter + 1;
			m->unlock();
		}
	} catch (const std::exception &e) {
		std::snprintf(adapt_error, sizeof adapt_error, "interprocess_mutex: %s", e.what());
		return -1;
	}
	return 0;
}

static bool blk(void *p)
{
	try {
		static_cast<bx *>(p)->mtx->lock();
		return true;
	} catch (const std::exception &e) {
		std::snprintf(adapt_error, sizeof adapt_error, "interprocess_mutex: %s", e.what());
		return false;
	}
}

static bool bul(void *p)
{
	try {
		static_cast<bx *>(p)->mtx->unlock();
		return true;
	} catch (const std::exception &e) {
		std::snprintf(adapt_error, sizeof adapt_error, "interprocess_mutex: %s", e.what());
		return false;
	}
}

extern "C" int bx_pp_init(void **hs, int role)
{
	return adapt_pp_init(hs, role, blk, bul);
}

extern "C" int bx_pingpong(void **hs, long n, int role)
{
	return adapt_pingpong(hs, n, role, blk, bul);
}
