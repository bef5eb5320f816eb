/* SPDX-License-Identifier: MIT */
/*
 * The header page: initialisation by a creator, and validation of a
 * private copy against the file's real size before any field is trusted.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

void mfs__hdr_init(struct mfs_header *h, uint64_t data_offset, uint64_t data_size,
                   uint32_t uid, uint32_t pid, uint64_t start)
{
	h->magic = MFS_MAGIC;
	h->version = MFS_VERSION;
	h->layout = MFS_LAYOUT;
	h->data_offset = data_offset;
	h->data_size = data_size;
	h->total_size = data_offset + data_size;
	h->state = MFS_STATE_INIT;
	h->creator_uid = uid;
	h->creator_pid = pid;
	h->creator_start = start;
	h->slot_count = MFS_SLOTS;
}

#define BAD(...) (snprintf(why, whylen, __VA_ARGS__), MFS_E_CORRUPT)

int mfs__hdr_validate(const struct mfs_header *h, uint64_t file_size,
                      char *why, size_t whylen)
{
	uint64_t page = mfs__page_size();
	unsigned w = h->lock;

	if (file_size < MFS_HEADER_SIZE)
		return BAD("truncated: %llu bytes, shorter than the %u-byte header",
		           (unsigned long long)file_size, MFS_HEADER_SIZE);
	if (h->magic == MFS_MAGIC_SWAPPED)
		return BAD("magic: written by a machine of the other byte order");
	if (h->magic != MFS_MAGIC)
		return BAD("magic: 0x%016llx is not a libmfshare segment",
		           (unsigned long long)h->magic);
	if (h->version != MFS_VERSION)
		return BAD("version: format %u, this build reads format %u",
		           h->version, MFS_VERSION);
	if (h->layout != MFS_LAYOUT)
		return BAD("layout: 0x%08x, this build uses 0x%08x (header size, lock word size)",
		           h->layout, MFS_LAYOUT);
	if (h->data_offset < MFS_HEADER_SIZE || h->data_offset % MFS_HEADER_SIZE ||
	    h->data_offset % page)
		return BAD("data_offset: %llu is not a page multiple >= %u",
		           (unsigned long long)h->data_offset, MFS_HEADER_SIZE);
	if (h->data_size == 0 || h->data_size % MFS_HEADER_SIZE)
		return BAD("data_size: %llu is not a positive multiple of %u",
		           (unsigned long long)h->data_size, MFS_HEADER_SIZE);
	if (h->data_size > (uint64_t)INT64_MAX - h->data_offset ||
	    h->total_size != h->data_offset + h->data_size)
		return BAD("total_size: %llu is not data_offset + data_size",
		           (unsigned long long)h->total_size);
	if (h->total_size > file_size)
		return BAD("total_size: %llu bytes, larger than the file (%llu bytes)",
		           (unsigned long long)h->total_size, (unsigned long long)file_size);
	if (h->state > MFS_STATE_DEAD)
		return BAD("state: %u is not 0, 1 or 2", h->state);
	if (h->slot_count != MFS_SLOTS)
		return BAD("slot_count: %u, this layout has %u", h->slot_count, MFS_SLOTS);
	if (h->slot_high > h->slot_count)
		return BAD("slot_high: %u exceeds slot_count %u", h->slot_high, h->slot_count);
	if (w != 0 && (MFS_LOCK_STATE(w) == 0 || MFS_LOCK_SLOT(w) >= h->slot_count))
		return BAD("lock: word 0x%08x names no slot", w);
	return 0;
}
