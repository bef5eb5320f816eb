/* SPDX-License-Identifier: MIT */
/* Shared helpers for the Check test programs. */
#include "testutil.h"
#include <stdlib.h>
int mt_run(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
