/* Seed object for the elfobj fuzz target: functions in their own sections,
 * static and global data, bss, strings, a common symbol, a weak symbol, a
 * jump table of pointers and calls to undefined functions. */
extern int ext_counter;
extern void ext_log(const char *msg, int v);

int common_slot;
static int hits;
int table_size = 3;
static const char greeting[] = "hello from a seed";

static int __attribute__((noinline)) add_one(int x)
{
	hits++;
	return x + 1;
}

int __attribute__((weak)) hook(int x)
{
	return x * 2;
}

static int (*const handlers[])(int) = { add_one, hook, add_one };

__attribute__((section(".init.text"))) int seed_init(void)
{
	ext_log(greeting, table_size);
	return 0;
}

int dispatch(int i, int v)
{
	if (i < 0 || i >= 3)
		return -1;
	ext_counter += v;
	return handlers[i](v) + common_slot;
}
