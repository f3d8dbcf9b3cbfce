/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kelp/patch.h - markers for livepatch source patches built by kelp.
 *
 * Include it from a patched .c file. Each marker defines a new function
 * or data object with a reserved name; kelp build carries it into the
 * patch module like any new symbol and wires it into the generated
 * klp_patch. Markers apply to the object the file is linked into: vmlinux,
 * or the module of a module's source file.
 *
 *   KELP_PRE_PATCH_CALLBACK(fn)    int fn(struct klp_object *obj): before
 *                                  the object is patched; non-zero refuses
 *                                  the patch (or the module's load)
 *   KELP_POST_PATCH_CALLBACK(fn)   void fn(struct klp_object *obj)
 *   KELP_PRE_UNPATCH_CALLBACK(fn)  void fn(struct klp_object *obj)
 *   KELP_POST_UNPATCH_CALLBACK(fn) void fn(struct klp_object *obj)
 *       Callbacks run only for loaded objects, in symmetric pairs; with
 *       atomic replace (the default) only the new patch's callbacks run.
 *       Several callbacks of one kind run in declaration order (unpatch
 *       callbacks in reverse order); the first failing pre-patch callback
 *       stops the others.
 *
 *   KELP_STATE(id, version)        declare a klp_state (id and version
 *                                  constant expressions; the marker name
 *                                  takes id as written, so it must be an
 *                                  integer literal or an identifier). A
 *                                  replacing patch must carry every state
 *                                  the installed patches declared, with a
 *                                  version at least as high.
 *   kelp_get_state(id), kelp_get_prev_state(id)
 *                                  klp_get_state()/klp_get_prev_state()
 *                                  for this patch (needs the build to
 *                                  treat __kelp_patch as provided).
 *
 *   KELP_FORCE_UNSAFE(fn)          the patch author accepts that fn's old
 *                                  and new versions may run at once. Linux
 *                                  6.1 has no per-function switch for it:
 *                                  kelp records the function in the module
 *                                  (modinfo kelp.force_unsafe) for the
 *                                  loader's policy.
 *   KELP_IGNORE_FUNCTION(fn)       fn is carried but not redirected (no
 *                                  klp_func): kpatch's ignore marker.
 *
 * Shadow variables are the kernel's klp_shadow_*() API (linux/livepatch.h,
 * included here): kelp_shadow_alloc() and friends are the same functions.
 */
#ifndef _KELP_PATCH_H
#define _KELP_PATCH_H

#include <linux/compiler.h>
#include <linux/livepatch.h>

#define __KELP_CB(kind, ret, fn)						\
	static ret __used noinline __kelp_cb_##kind##_##fn(struct klp_object *obj) \
	{									\
		return fn(obj);							\
	}

#define KELP_PRE_PATCH_CALLBACK(fn)	__KELP_CB(pre_patch, int, fn)
#define KELP_POST_PATCH_CALLBACK(fn)	__KELP_CB(post_patch, void, fn)
#define KELP_PRE_UNPATCH_CALLBACK(fn)	__KELP_CB(pre_unpatch, void, fn)
#define KELP_POST_UNPATCH_CALLBACK(fn)	__KELP_CB(post_unpatch, void, fn)

/* struct klp_state: unsigned long id; unsigned int version. */
#define KELP_STATE(id, version)						\
	static const struct { unsigned long i; unsigned int v; }		\
	__kelp_state_##id __used __aligned(8) = { (id), (version) }

extern struct klp_patch __kelp_patch;
#define kelp_get_state(id)	klp_get_state(&__kelp_patch, (id))
#define kelp_get_prev_state(id)	klp_get_prev_state(&__kelp_patch, (id))

#define KELP_FORCE_UNSAFE(fn)						\
	static const char __used __kelp_force_unsafe_##fn[] = #fn

#define KELP_IGNORE_FUNCTION(fn)					\
	static const char __used __kelp_ignore_function_##fn[] = #fn

#define kelp_shadow_get		klp_shadow_get
#define kelp_shadow_alloc	klp_shadow_alloc
#define kelp_shadow_get_or_alloc klp_shadow_get_or_alloc
#define kelp_shadow_free	klp_shadow_free
#define kelp_shadow_free_all	klp_shadow_free_all

#endif /* _KELP_PATCH_H */
