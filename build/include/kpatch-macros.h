/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kpatch-macros.h for kelp: the kpatch author API, so a patch written for
 * kpatch-build builds unchanged. Built on kelp/patch.h.
 */
#ifndef _KPATCH_MACROS_H
#define _KPATCH_MACROS_H

#include <kelp/patch.h>
#include <linux/printk.h>

typedef struct klp_object patch_object;

#define KPATCH_PRE_PATCH_CALLBACK(fn)	KELP_PRE_PATCH_CALLBACK(fn)
#define KPATCH_POST_PATCH_CALLBACK(fn)	KELP_POST_PATCH_CALLBACK(fn)
#define KPATCH_PRE_UNPATCH_CALLBACK(fn)	KELP_PRE_UNPATCH_CALLBACK(fn)
#define KPATCH_POST_UNPATCH_CALLBACK(fn) KELP_POST_UNPATCH_CALLBACK(fn)

#define KPATCH_FORCE_UNSAFE(fn)		KELP_FORCE_UNSAFE(fn)

/* printk from a patched function (kpatch keeps its format string apart). */
#define KPATCH_PRINTK(fmt, ...)		printk(fmt, ##__VA_ARGS__)

/*
 * kpatch lets a patch exclude a section or function from the diff. kelp
 * diffs only what the patch changes, so these have nothing to do.
 */
#define KPATCH_IGNORE_SECTION(_sec)
#define KPATCH_IGNORE_FUNCTION(_fn)
#define KPATCH_IGNORE_STATIC(_static)

#endif /* _KPATCH_MACROS_H */
