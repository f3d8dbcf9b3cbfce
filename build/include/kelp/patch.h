/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kelp/patch.h: what a kelp patch can declare besides changed code.
 *
 * Each macro defines a new global function or object with a reserved name
 * (__kelp_cb_*, __kelp_state_*, __kelp_force_unsafe_*); kelp build carries
 * it into the patch module like any new symbol and wires it into the
 * generated klp_patch.
 */
#ifndef _KELP_PATCH_H
#define _KELP_PATCH_H

#include <linux/compiler.h>
#include <linux/livepatch.h>
#include <linux/types.h>

/*
 * Callbacks of the object (vmlinux or the module) the file is part of.
 * fn is int fn(struct klp_object *) for pre_patch, void fn(struct
 * klp_object *) for the others. A pre_patch error refuses the patch.
 */
#define __KELP_CB(kind, type, fn)					\
	type __kelp_cb_##kind##_##fn(struct klp_object *obj);		\
	__used noinline type __kelp_cb_##kind##_##fn(struct klp_object *obj) \
	{								\
		return fn(obj);						\
	}
#define KELP_PRE_PATCH_CALLBACK(fn)	__KELP_CB(pre_patch, int, fn)
#define KELP_POST_PATCH_CALLBACK(fn)	__KELP_CB(post_patch, void, fn)
#define KELP_PRE_UNPATCH_CALLBACK(fn)	__KELP_CB(pre_unpatch, void, fn)
#define KELP_POST_UNPATCH_CALLBACK(fn)	__KELP_CB(post_unpatch, void, fn)

/*
 * KELP_FORCE_UNSAFE(fn): the new fn does not need the consistency model
 * (it can run next to the old version); recorded in the report.
 */
#define KELP_FORCE_UNSAFE(fn)						\
	extern const char __kelp_force_unsafe_##fn;			\
	__used const char __kelp_force_unsafe_##fn = 1

/*
 * KELP_STATE(id, version): the patch carries klp_state id at version; a
 * later cumulative patch must carry it too at a version not lower.
 */
struct __kelp_state { u64 id; u32 version; u32 pad; };
#define KELP_STATE(id, version)						\
	extern const struct __kelp_state __kelp_state_##id;		\
	__used const struct __kelp_state __kelp_state_##id = { (id), (version), 0 }

/* Shadow variables: klp_shadow_alloc/get/get_or_alloc/free/free_all. */

#endif /* _KELP_PATCH_H */
