/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include <check.h>
#include "testutil.h"
START_TEST(placeholder) { ck_assert_int_eq(1, 1); }
END_TEST
int main(void)
{
	Suite *s = suite_create("security");
	TCase *tc = tcase_create("placeholder");
	tcase_add_test(tc, placeholder);
	suite_add_tcase(s, tc);
	return mt_run(s);
}
