package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/databus-gateway/databus/deploy/image"
)

// TestBuildTwice runs the command as the README does, twice with the same
// commit, version and SOURCE_DATE_EPOCH: go build included, the two
// layouts are the same bytes, and the docker load tarball holds the
// layout's image.
func TestBuildTwice(t *testing.T) {
	if _, ok := image.Arches[runtime.GOARCH]; !ok {
		t.Skipf("GOARCH %s: the image is built for amd64 and arm64 only", runtime.GOARCH)
	}
	repo, err := findRepo(".")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SOURCE_DATE_EPOCH", "1767225600") // 2026-01-01T00:00:00Z
	dir := t.TempDir()
	const version, commit = "v0.0.0-clitest", "89abcdef0123456789abcdef0123456789abcdef"
	build := func(sub string) {
		var stdout, stderr bytes.Buffer
		args := []string{"--repo", repo, "--layout", filepath.Join(dir, sub), "--tar", filepath.Join(dir, sub+".tar"),
			"--platform", "linux/" + runtime.GOARCH, "--version", version, "--commit", commit}
		if code := run(context.Background(), args, &stdout, &stderr); code != 0 {
			t.Fatalf("databus-image %s: exit %d\n%s%s", strings.Join(args, " "), code, stdout.String(), stderr.String())
		}
		if !strings.Contains(stdout.String(), image.Name+":"+version) {
			t.Errorf("output does not name the image:\n%s", stdout.String())
		}
	}
	build("a")
	build("b")
	a, _ := os.ReadFile(filepath.Join(dir, "a", "index.json"))
	b, _ := os.ReadFile(filepath.Join(dir, "b", "index.json"))
	if len(a) == 0 || !bytes.Equal(a, b) {
		t.Fatalf("the same inputs gave two layouts:\n%s\n%s", a, b)
	}

	p, err := layout.FromPath(filepath.Join(dir, "a"))
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("index.json: %v, %v", im, err)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"org.opencontainers.image.version":  version,
		"org.opencontainers.image.revision": commit,
		"org.opencontainers.image.created":  "2026-01-01T00:00:00Z",
	}
	for k, v := range want {
		if cf.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, cf.Config.Labels[k], v)
		}
	}
	if !cf.Created.Time.Equal(time.Unix(1767225600, 0)) {
		t.Errorf("created %s, want SOURCE_DATE_EPOCH", cf.Created)
	}

	tag, _ := name.NewTag(image.Name + ":" + version)
	timg, err := tarball.ImageFromPath(filepath.Join(dir, "a.tar"), &tag)
	if err != nil {
		t.Fatalf("docker load tarball: %v", err)
	}
	c1, _ := img.ConfigName()
	c2, err := timg.ConfigName()
	if err != nil || c1 != c2 {
		t.Errorf("tarball config %s (%v), layout config %s", c2, err, c1)
	}
	l1, _ := img.Layers()
	l2, _ := timg.Layers()
	if len(l1) != len(l2) {
		t.Fatalf("tarball has %d layers, layout %d", len(l2), len(l1))
	}
	for i := range l1 {
		d1, _ := l1[i].Digest()
		d2, _ := l2[i].Digest()
		if d1 != d2 {
			t.Errorf("layer %d: tarball %s, layout %s", i, d2, d1)
		}
	}
}

// TestRefuses checks what is refused before anything is built.
func TestRefuses(t *testing.T) {
	notLayout := t.TempDir()
	os.WriteFile(filepath.Join(notLayout, "notes.txt"), []byte("x"), 0o644)
	for _, c := range []struct {
		args  []string
		epoch string
		want  string
	}{
		{[]string{"--platform", "linux/s390x"}, "", `"linux/s390x": expected linux/amd64 or linux/arm64`},
		{[]string{"--platform", "amd64"}, "", `"amd64": expected linux/amd64 or linux/arm64`},
		{[]string{"--platform", "linux/amd64,linux/arm64", "--tar", "x.tar"}, "", "--tar holds one platform"},
		{[]string{"--layout", notLayout}, "", "holds notes.txt: not an OCI image layout"},
		{[]string{"--version", "not a tag"}, "", `version "not a tag": not a valid image tag`},
		{[]string{"--commit", "main"}, "", `commit "main": expected a hexadecimal commit hash`},
		{nil, "yesterday", `SOURCE_DATE_EPOCH "yesterday": expected seconds since 1970`},
		{[]string{"extra"}, "", `unexpected argument "extra"`},
	} {
		t.Setenv("SOURCE_DATE_EPOCH", c.epoch)
		var stdout, stderr bytes.Buffer
		args := append([]string{"--layout", filepath.Join(t.TempDir(), "oci")}, c.args...)
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 || !strings.Contains(stderr.String(), c.want) {
			t.Errorf("%q (SOURCE_DATE_EPOCH=%q): exit %d, %q; want 2 and %q", c.args, c.epoch, code, stderr.String(), c.want)
		}
	}
}

func TestModulePath(t *testing.T) {
	for in, want := range map[string]string{
		"module github.com/databus-gateway/databus\n\ngo 1.26\n": mainModule,
		"// c\nmodule \"example.com/x\"\n":                       "example.com/x",
		"go 1.26\n":                                              "",
	} {
		if got := modulePath([]byte(in)); got != want {
			t.Errorf("modulePath(%q) = %q, want %q", in, got, want)
		}
	}
}
