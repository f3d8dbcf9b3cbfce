/* SPDX-License-Identifier: GPL-2.0 */
/*
 * kpatch-syscall.h for kelp: KPATCH_SYSCALL_DEFINE0..6 define a patched
 * system call. SYSCALL_DEFINEx puts the body in a static inline (so
 * notrace) __do_sys_<name> that ftrace cannot redirect; these macros put
 * it in a function of another name instead, so the syscall's entry stubs
 * (__x64_sys_<name>, __ia32_sys_<name>, which have fentry calls) change
 * and are patched. The tracing metadata stays the running kernel's.
 */
#ifndef _KPATCH_SYSCALL_H
#define _KPATCH_SYSCALL_H

#include <linux/syscalls.h>

#ifdef CONFIG_ARCH_HAS_SYSCALL_WRAPPER
#define __KPATCH_SYSCALL_DEFINEx(x, name, ...)				\
	static long __se_sys##name(__MAP(x, __SC_LONG, __VA_ARGS__));	\
	static noinline long __kpatch_do_sys##name(__MAP(x, __SC_DECL, __VA_ARGS__)); \
	__X64_SYS_STUBx(x, name, __VA_ARGS__)				\
	__IA32_SYS_STUBx(x, name, __VA_ARGS__)				\
	static long __se_sys##name(__MAP(x, __SC_LONG, __VA_ARGS__))	\
	{								\
		long ret = __kpatch_do_sys##name(__MAP(x, __SC_CAST, __VA_ARGS__)); \
		__MAP(x, __SC_TEST, __VA_ARGS__);			\
		__PROTECT(x, ret, __MAP(x, __SC_ARGS, __VA_ARGS__));	\
		return ret;						\
	}								\
	static noinline long __kpatch_do_sys##name(__MAP(x, __SC_DECL, __VA_ARGS__))

/* SYSCALL_DEFINE0 has no inline body: it can be patched as it is. */
#define KPATCH_SYSCALL_DEFINE0(sname)		SYSCALL_DEFINE0(sname)
#else
#define __KPATCH_SYSCALL_DEFINEx(x, name, ...)	__SYSCALL_DEFINEx(x, name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE0(sname)		SYSCALL_DEFINE0(sname)
#endif

#define KPATCH_SYSCALL_DEFINE1(name, ...) __KPATCH_SYSCALL_DEFINEx(1, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE2(name, ...) __KPATCH_SYSCALL_DEFINEx(2, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE3(name, ...) __KPATCH_SYSCALL_DEFINEx(3, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE4(name, ...) __KPATCH_SYSCALL_DEFINEx(4, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE5(name, ...) __KPATCH_SYSCALL_DEFINEx(5, _##name, __VA_ARGS__)
#define KPATCH_SYSCALL_DEFINE6(name, ...) __KPATCH_SYSCALL_DEFINEx(6, _##name, __VA_ARGS__)

#endif /* _KPATCH_SYSCALL_H */
