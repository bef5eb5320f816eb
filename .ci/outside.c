/* SPDX-License-Identifier: MIT */
/* CI: a program outside the tree, built against the installed library
 * with `pkg-config --cflags --libs mfshare`. */
#include <mfshare.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void)
{
	char key[64];
	mfs_segment *s, *a;
	mfs_stat st;
	int r;

	snprintf(key, sizeof key, "ci-outside-%ld", (long)getpid());
	if ((r = mfs_create(key, 1000, NULL, &s)) != 0) {
		fprintf(stderr, "create: %s: %s\n", mfs_strerror(r), mfs_last_error());
		return 1;
	}
	strcpy(mfs_data(s), "installed");
	if ((r = mfs_attach(key, NULL, &a)) != 0 || mfs_lock(a) != 0 ||
	    strcmp(mfs_const_data(a), "installed") != 0 || mfs_unlock(a) != 0 ||
	    mfs_stat_segment(a, &st) != 0 || st.refcount != 2) {
		fprintf(stderr, "attach/lock: %s\n", mfs_last_error());
		return 1;
	}
	mfs_detach(a);
	mfs_detach(s);
	if (mfs_inspect(key, NULL, &st) != MFS_E_NOT_FOUND) {
		fprintf(stderr, "segment survived its last detach\n");
		return 1;
	}
	printf("outside program: OK\n");
	return 0;
}
