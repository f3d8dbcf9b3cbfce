/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kpatch-macros.h - kpatch-build's patch author API on top of kelp's
 * markers (kelp/patch.h), so a patch written for kpatch-build builds
 * unchanged with kelp build.
 *
 * Not supported: KPATCH_IGNORE_SECTION (refused at compile time), and
 * KPATCH_IGNORE_STATIC (kpatch's static-local correlation hint; kelp
 * correlates static locals by the functions that reference them).
 */
#ifndef __KPATCH_MACROS_H_
#define __KPATCH_MACROS_H_

#include <linux/compiler.h>
#include <linux/printk.h>
#include "kelp/patch.h"

typedef struct klp_object patch_object;

#define KPATCH_PRE_PATCH_CALLBACK(fn)		KELP_PRE_PATCH_CALLBACK(fn)
#define KPATCH_POST_PATCH_CALLBACK(fn)		KELP_POST_PATCH_CALLBACK(fn)
#define KPATCH_PRE_UNPATCH_CALLBACK(fn)		KELP_PRE_UNPATCH_CALLBACK(fn)
#define KPATCH_POST_UNPATCH_CALLBACK(fn)	KELP_POST_UNPATCH_CALLBACK(fn)

#define KPATCH_FORCE_UNSAFE(fn)			KELP_FORCE_UNSAFE(fn)
#define KPATCH_IGNORE_FUNCTION(fn)		KELP_IGNORE_FUNCTION(fn)
#define KPATCH_IGNORE_SECTION(sec)					\
	_Static_assert(0, "KPATCH_IGNORE_SECTION(" #sec ") is not supported by kelp build")
#define KPATCH_IGNORE_STATIC(name)

#define KPATCH_PRINTK(fmt, ...)	printk(fmt, ##__VA_ARGS__)

#endif /* __KPATCH_MACROS_H_ */
