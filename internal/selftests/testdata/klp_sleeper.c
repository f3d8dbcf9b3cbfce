// SPDX-License-Identifier: GPL-2.0
/*
 * klp_sleeper: a livepatch of cmdline_proc_show whose replacement, while
 * the module parameter hold is set, sleeps before printing. A task
 * reading /proc/cmdline then stays inside the replacement function, so
 * an unpatching transition cannot complete until hold is cleared.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/livepatch.h>
#include <linux/delay.h>
#include <linux/sched/signal.h>
#include <linux/seq_file.h>

static bool hold;
module_param(hold, bool, 0644);
MODULE_PARM_DESC(hold, "while set, readers of /proc/cmdline sleep in the replacement function");

static noinline int sleeper_cmdline_proc_show(struct seq_file *m, void *v)
{
	while (READ_ONCE(hold) && !fatal_signal_pending(current))
		msleep_interruptible(100);
	seq_printf(m, "%s\n", "klp_sleeper: this has been live patched");
	return 0;
}

static struct klp_func funcs[] = {
	{
		.old_name = "cmdline_proc_show",
		.new_func = sleeper_cmdline_proc_show,
	}, { }
};

static struct klp_object objs[] = {
	{
		/* name being NULL means vmlinux */
		.funcs = funcs,
	}, { }
};

static struct klp_patch patch = {
	.mod = THIS_MODULE,
	.objs = objs,
};

static int klp_sleeper_init(void)
{
	return klp_enable_patch(&patch);
}

static void klp_sleeper_exit(void)
{
}

module_init(klp_sleeper_init);
module_exit(klp_sleeper_exit);
MODULE_LICENSE("GPL");
MODULE_INFO(livepatch, "Y");
MODULE_DESCRIPTION("livepatch test: a replacement of cmdline_proc_show that sleeps while hold is set");
