// Command nfpm builds the agent's .deb from scripts/package/nfpm.yaml with the nfpm
// library. It is its own module so that nfpm and its ~40 dependencies never enter the
// agent's go.mod: `make deb` runs it with `go -C scripts/package/nfpm run .`.
//
// The configuration's ${VAR} references are filled from the environment (VERSION,
// ARCH, BIN, ROOT); relative paths in it are relative to the configuration file.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
)

func main() {
	config := flag.String("config", "", "nfpm configuration (YAML)")
	target := flag.String("target", "", "the .deb to write")
	flag.Parse()
	if *config == "" || *target == "" || flag.NArg() > 0 {
		fmt.Fprintln(os.Stderr, "usage: nfpm -config nfpm.yaml -target out.deb")
		os.Exit(2)
	}
	if err := build(*config, *target); err != nil {
		fmt.Fprintln(os.Stderr, "nfpm:", err)
		os.Exit(1)
	}
}

func build(config, target string) error {
	config, err := filepath.Abs(config)
	if err != nil {
		return err
	}
	if target, err = filepath.Abs(target); err != nil {
		return err
	}
	// Contents and scripts are named relative to the configuration, as the nfpm CLI
	// does when run from that directory.
	if err := os.Chdir(filepath.Dir(config)); err != nil {
		return err
	}
	cfg, err := nfpm.ParseFileWithEnvMapping(config, os.Getenv)
	if err != nil {
		return err
	}
	info, err := cfg.Get("deb")
	if err != nil {
		return err
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return err
	}
	pkg, err := nfpm.Get("deb")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return err
	}
	f, err := os.Create(target)
	if err != nil {
		return err
	}
	info.Target = target
	if err := pkg.Package(info, f); err != nil {
		f.Close()
		os.Remove(target)
		return err
	}
	return f.Close()
}
