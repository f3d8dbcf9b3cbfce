// Command kelp-package writes kelp's .deb and .rpm packages. kelp runs it
// for `kelp package`: the packaging library stays out of the kelp binary
// that runs as root at every boot.
//
//	kelp-package patch [flags] FILE.ko   a patch package
//	kelp-package self [flags]            kelp's own package
//
// It prints the written package as one JSON object on stdout; on failure
// it prints the reason as one line on stderr and exits 1 (64 for a usage
// error).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/kelp-project/kelp/packaging"
)

const (
	exitFailure = 1
	exitUsage   = 64
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "kelp-package: "+format+"\n", a...)
		return code
	}
	if len(args) == 0 || (args[0] != "patch" && args[0] != "self") {
		return fail(exitUsage, "usage: kelp-package patch [flags] FILE.ko | kelp-package self [flags]")
	}
	kind := args[0]
	fs := flag.NewFlagSet("kelp-package "+kind, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var (
		o       packaging.PatchOptions
		self    packaging.SelfOptions
		outDir  string
		version string
	)
	fs.StringVar(&outDir, "output-dir", ".", "directory to write the package to")
	fs.StringVar(&o.Format, "format", "deb", "deb or rpm")
	fs.StringVar(&o.Maintainer, "maintainer", "", "maintainer")
	fs.StringVar(&version, "version", "", "package version")
	fs.StringVar(&o.KelpVersion, "kelp-version", "", "version of the kelp that built the patch (the patch package depends on it or newer)")
	switch kind {
	case "patch":
		fs.StringVar(&o.Name, "name", "", "package name")
		fs.StringVar(&o.Release, "release", "", "package release")
		fs.StringVar(&o.Description, "description", "", "package description")
	case "self":
		fs.StringVar(&self.Binary, "binary", "", "the kelp executable to ship")
		fs.StringVar(&self.Root, "root", "", "a directory of files to ship as they lie below it (man pages, completions)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return fail(exitUsage, "%s: %v", kind, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return fail(exitFailure, "%v", err)
	}
	var p *packaging.Package
	var err error
	switch kind {
	case "patch":
		if fs.NArg() != 1 {
			return fail(exitUsage, "patch: give one FILE.ko")
		}
		o.Module, o.Version = fs.Arg(0), version
		p, err = packaging.BuildPatch(o, outDir)
	case "self":
		if fs.NArg() != 0 || self.Binary == "" {
			return fail(exitUsage, "self: give --binary and no arguments")
		}
		self.Format, self.Version, self.Maintainer = o.Format, version, o.Maintainer
		if self.Version == "" {
			self.Version = o.KelpVersion
		}
		if self.Helper, err = os.Executable(); err == nil {
			p, err = packaging.BuildSelf(self, outDir)
		}
	}
	if err != nil {
		return fail(exitFailure, "%v", err)
	}
	enc := json.NewEncoder(stdout)
	if err := enc.Encode(p); err != nil {
		return fail(exitFailure, "%v", err)
	}
	return 0
}
