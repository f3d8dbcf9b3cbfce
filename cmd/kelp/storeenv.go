package main

import (
	"os"

	"github.com/kelp-project/kelp/livepatch"
	"github.com/kelp-project/kelp/store"
	"github.com/spf13/cobra"
)

// envStore names the environment variable that moves the patch store.
const envStore = "KELP_STORE_DIR"

func openStore() *store.Store { return store.New(os.Getenv(envStore)) }

// addKernelFlag adds -k/--kernel, defaulting to the running kernel.
func addKernelFlag(c *cobra.Command, kver *string) {
	c.Flags().StringVarP(kver, "kernel", "k", "", "kernel release (default: the running kernel, uname -r)")
}

func kernelOrRunning(kver string) (string, error) {
	if kver != "" {
		return kver, nil
	}
	return livepatch.Host.Release()
}
