package ktree

import "context"

// The two sources of an object's command, for the tests of ktree_test.

func (t *Tree) RecordedCommand(ctx context.Context, raw string) (string, bool) {
	key, err := t.commandKey(ctx, raw)
	if err != nil {
		return "", false
	}
	return t.recordedCommand(ctx, raw, key)
}

func (t *Tree) DryRunCommand(ctx context.Context, raw string) (string, error) {
	return t.dryRun(ctx, raw)
}

func (t *Tree) KbuildName(ctx context.Context, obj string) (string, error) {
	return t.kbuildName(ctx, obj)
}
