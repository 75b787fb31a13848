// Command databus-image builds the Databus container image without Docker
// and without a base image: it builds the static binary (go build, the
// Dockerfile's flags) for each platform, assembles the image (package
// deploy/image) and writes an OCI image layout, and optionally a tarball
// for `docker load`.
//
//	cd deploy && go run ./cmd/databus-image [--layout DIR] [--tar FILE] [--platform linux/amd64,linux/arm64]
//
// Version and commit come from git (describe --tags --always --dirty,
// rev-parse HEAD); every timestamp from SOURCE_DATE_EPOCH or else the
// commit's time, so the same commit gives the same image digest.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/databus-gateway/databus/deploy/image"
)

const mainModule = "github.com/databus-gateway/databus"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("databus-image", flag.ContinueOnError)
	fs.SetOutput(stderr)
	repo := fs.String("repo", "", "the Databus repository to build (default: the one holding the working directory)")
	layoutDir := fs.String("layout", "", "OCI image layout folder to write; an existing layout there is replaced (default: REPO/dist/databus-oci)")
	tarFile := fs.String("tar", "", "also write a `docker load` tarball here (one platform only)")
	platforms := fs.String("platform", "linux/amd64", "comma-separated platforms: linux/amd64, linux/arm64; several make an image index")
	version := fs.String("version", "", "image tag and `databus version` (default: git describe --tags --always --dirty, else dev)")
	commit := fs.String("commit", "", "commit hash (default: git rev-parse HEAD, else unknown)")
	caBundle := fs.String("ca-certificates", image.CACertificates, "PEM CA bundle to ship at "+image.CACertificates)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: databus-image [flags]\n\nBuilds %s without Docker: an OCI image layout (and a docker load tarball).\nTimestamps: SOURCE_DATE_EPOCH, else the commit's time.\n\n", image.Name)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "databus-image: unexpected argument %q\n", fs.Arg(0))
		return 2
	}
	arches, err := parsePlatforms(*platforms)
	if err != nil {
		fmt.Fprintf(stderr, "databus-image: --platform: %v\n", err)
		return 2
	}
	if *tarFile != "" && len(arches) > 1 {
		fmt.Fprintf(stderr, "databus-image: --tar holds one platform; give one --platform with it (the layout can hold several)\n")
		return 2
	}
	if *repo == "" {
		wd, _ := os.Getwd()
		if *repo, err = findRepo(wd); err != nil {
			fmt.Fprintf(stderr, "databus-image: %v\n", err)
			return 2
		}
	}
	if *layoutDir == "" {
		*layoutDir = filepath.Join(*repo, "dist", "databus-oci")
	}
	if err := image.CheckLayoutDir(*layoutDir); err != nil {
		fmt.Fprintf(stderr, "databus-image: --layout: %v\n", err)
		return 2
	}
	rel, err := release(ctx, *repo, *version, *commit, os.Getenv("SOURCE_DATE_EPOCH"))
	if err != nil {
		fmt.Fprintf(stderr, "databus-image: %v\n", err)
		return 2
	}

	tmp, err := os.MkdirTemp("", "databus-image-")
	if err != nil {
		fmt.Fprintf(stderr, "databus-image: %v\n", err)
		return 1
	}
	defer os.RemoveAll(tmp)
	var imgs []v1.Image
	for _, arch := range arches {
		start := time.Now()
		bin := filepath.Join(tmp, "databus-"+arch)
		if err := image.BuildBinary(ctx, *repo, arch, bin, rel); err != nil {
			fmt.Fprintf(stderr, "databus-image: %v\n", err)
			return 1
		}
		img, err := image.Build(image.Options{Binary: bin, Arch: arch, CABundle: *caBundle, Release: rel})
		if err != nil {
			fmt.Fprintf(stderr, "databus-image: linux/%s: %v\n", arch, err)
			return 1
		}
		d, err := img.Digest()
		if err != nil {
			fmt.Fprintf(stderr, "databus-image: linux/%s: %v\n", arch, err)
			return 1
		}
		fmt.Fprintf(stdout, "linux/%s  %s  (%s)\n", arch, d, time.Since(start).Round(time.Second))
		imgs = append(imgs, img)
	}
	if err := image.WriteLayout(*layoutDir, rel, imgs...); err != nil {
		fmt.Fprintf(stderr, "databus-image: layout %s: %v\n", *layoutDir, err)
		return 1
	}
	ref := image.Name + ":" + rel.Version
	fmt.Fprintf(stdout, "%s  version %s, commit %s, created %s\n", ref, rel.Version, rel.Commit, rel.Date())
	fmt.Fprintf(stdout, "OCI image layout: %s  (push: skopeo copy --all oci:%s:%s docker://%s)\n", *layoutDir, *layoutDir, rel.Version, ref)
	if *tarFile != "" {
		if err := image.WriteTarball(*tarFile, rel, imgs[0]); err != nil {
			fmt.Fprintf(stderr, "databus-image: tarball %s: %v\n", *tarFile, err)
			return 1
		}
		fmt.Fprintf(stdout, "tarball: %s  (docker load -i %s)\n", *tarFile, *tarFile)
	}
	return 0
}

func parsePlatforms(s string) ([]string, error) {
	var arches []string
	seen := map[string]bool{}
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		arch, ok := strings.CutPrefix(p, "linux/")
		if _, known := image.Arches[arch]; !ok || !known {
			return nil, fmt.Errorf("%q: expected linux/amd64 or linux/arm64", p)
		}
		if !seen[arch] {
			seen[arch] = true
			arches = append(arches, arch)
		}
	}
	return arches, nil
}

// findRepo walks up from dir to the folder whose go.mod is the gateway's.
func findRepo(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for d := dir; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && modulePath(b) == mainModule {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.mod of %s in %s or above: run it inside a Databus checkout or give --repo", mainModule, dir)
		}
	}
}

func modulePath(gomod []byte) string {
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && f[0] == "module" {
			return strings.Trim(f[1], `"`)
		}
	}
	return ""
}

// release fills what the flags left out from git, and Created from
// SOURCE_DATE_EPOCH or the commit's time (the Unix epoch without git).
func release(ctx context.Context, repo, version, commit, epoch string) (image.Release, error) {
	git := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", repo}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	r := image.Release{Version: version, Commit: commit}
	if r.Version == "" {
		r.Version = git("describe", "--tags", "--always", "--dirty")
	}
	if r.Version == "" {
		r.Version = "dev"
	}
	if r.Commit == "" {
		r.Commit = git("rev-parse", "HEAD")
	}
	if r.Commit == "" {
		r.Commit = "unknown"
	}
	if epoch == "" {
		epoch = git("log", "-1", "--format=%ct")
	}
	if epoch == "" {
		epoch = "0"
	}
	sec, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil || sec < 0 {
		return r, fmt.Errorf("SOURCE_DATE_EPOCH %q: expected seconds since 1970", epoch)
	}
	r.Created = time.Unix(sec, 0).UTC()
	return r, r.Check()
}
