package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"debug/buildinfo"
	"debug/elf"
	"debug/macho"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// releaseTargets are the platforms ci/release.sh builds.
var releaseTargets = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

// TestReleaseArtifacts checks what ci/release.sh built from this
// checkout's HEAD: DATABUS_TEST_RELEASE is its OUTDIR and
// DATABUS_TEST_RELEASE_VERSION its VERSION (.ci/run builds them first):
//
//	bash ci/release.sh v0.0.0-test /tmp/rel
//	DATABUS_TEST_RELEASE=/tmp/rel DATABUS_TEST_RELEASE_VERSION=v0.0.0-test go test ./cmd/databus -run Release
//
// Every target has its archive and SBOM, SHA256SUMS verifies them, each
// binary is for its OS and architecture and says which release, commit and
// date it is, the linux/amd64 one runs and prints them, each SBOM lists
// exactly the modules linked into its binary with their hashes, and a
// second build gives the same bytes.
func TestReleaseArtifacts(t *testing.T) {
	dir, version := os.Getenv("DATABUS_TEST_RELEASE"), os.Getenv("DATABUS_TEST_RELEASE_VERSION")
	if dir == "" || version == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("DATABUS_TEST_RELEASE and DATABUS_TEST_RELEASE_VERSION are not set: .ci/run builds a release with ci/release.sh first")
		}
		t.Skip("set DATABUS_TEST_RELEASE (the OUTDIR of ci/release.sh) and DATABUS_TEST_RELEASE_VERSION (its VERSION)")
	}
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	commit := git("rev-parse", "HEAD")
	date := git("log", "-1", "--format=%cd", "--date=format-local:%Y-%m-%dT%H:%M:%SZ", "HEAD")
	commitTime, err := time.Parse(time.RFC3339, date)
	if err != nil {
		t.Fatal(err)
	}

	// SHA256SUMS names every artifact, and each is as it says.
	sums := readSums(t, filepath.Join(dir, "SHA256SUMS"))
	want := map[string]bool{}
	for _, target := range releaseTargets {
		name := releaseName(version, target)
		want[name+".tar.gz"], want[name+".sbom.cdx.json"] = true, true
	}
	if got := slices.Sorted(maps.Keys(sums)); !slices.Equal(got, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("SHA256SUMS lists %v, want %v", got, slices.Sorted(maps.Keys(want)))
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "SHA256SUMS" && !want[e.Name()] {
			t.Errorf("%s: not an artifact of the release, not in SHA256SUMS", e.Name())
		}
	}
	for name, sum := range sums {
		if got := fileSum(t, filepath.Join(dir, name)); got != sum {
			t.Errorf("%s: sha256 %s, SHA256SUMS says %s", name, got, sum)
		}
	}

	for _, target := range releaseTargets {
		t.Run(target, func(t *testing.T) {
			goos, goarch, _ := strings.Cut(target, "/")
			name := releaseName(version, target)
			bin := unpack(t, filepath.Join(dir, name+".tar.gz"), name, commitTime)

			// The binary is for its platform...
			switch goos {
			case "linux":
				f, err := elf.Open(bin)
				if err != nil {
					t.Fatalf("not an ELF binary: %v", err)
				}
				defer f.Close()
				if m := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}[goarch]; f.Machine != m {
					t.Errorf("ELF machine %v, want %v", f.Machine, m)
				}
			case "darwin":
				f, err := macho.Open(bin)
				if err != nil {
					t.Fatalf("not a Mach-O binary: %v", err)
				}
				defer f.Close()
				if c := map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}[goarch]; f.Cpu != c {
					t.Errorf("Mach-O CPU %v, want %v", f.Cpu, c)
				}
			}
			// ...built as the script says, from this commit, unmodified.
			bi, err := buildinfo.ReadFile(bin)
			if err != nil {
				t.Fatal(err)
			}
			settings := map[string]string{}
			for _, s := range bi.Settings {
				settings[s.Key] = s.Value
			}
			for k, v := range map[string]string{"GOOS": goos, "GOARCH": goarch, "CGO_ENABLED": "0", "-trimpath": "true",
				"vcs.revision": commit, "vcs.modified": "false", "vcs.time": date} {
				if settings[k] != v {
					t.Errorf("build setting %s=%q, want %q", k, settings[k], v)
				}
			}
			if bi.Main.Version != version {
				t.Errorf("main module version %q, want %q", bi.Main.Version, version)
			}

			// The one this machine runs says what it is. (-trimpath keeps
			// -ldflags out of the build information: running is the check
			// that -X set version, commit and date.)
			if target == runtime.GOOS+"/"+runtime.GOARCH {
				out, err := exec.Command(bin, "version", "--format", "json").Output()
				if err != nil {
					t.Fatalf("databus version: %v", err)
				}
				var b build
				if err := json.Unmarshal(out, &b); err != nil {
					t.Fatalf("databus version --format json: %v\n%s", err, out)
				}
				if b.Version != version || b.Commit != commit || b.Date != date || b.Modified || b.Platform != target {
					t.Errorf("databus version: %+v; want %s, commit %s, built %s, %s", b, version, commit, date, target)
				}
				line, _ := exec.Command(bin, "version").Output()
				if want := fmt.Sprintf("databus %s (commit %s, built %s, %s %s)\n", version, commit[:12], date, bi.GoVersion, target); string(line) != want {
					t.Errorf("databus version: %q, want %q", line, want)
				}
			}

			checkSBOM(t, filepath.Join(dir, name+".sbom.cdx.json"), bi, version, goos, goarch)
		})
	}

	t.Run("reproducible", func(t *testing.T) {
		if testing.Short() {
			t.Skip("builds linux/amd64 again")
		}
		out := t.TempDir()
		cmd := exec.Command("bash", "../../ci/release.sh", version, out)
		cmd.Env = append(os.Environ(), "RELEASE_TARGETS=linux/amd64")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ci/release.sh: %v\n%s", err, b)
		}
		again := readSums(t, filepath.Join(out, "SHA256SUMS"))
		if len(again) != 2 {
			t.Fatalf("the rebuild made %v", again)
		}
		for name, sum := range again {
			if sums[name] != sum {
				t.Errorf("%s: the rebuild's sha256 is %s, the release's %s", name, sum, sums[name])
			}
		}
	})
}

func releaseName(version, target string) string {
	return "databus_" + version + "_" + strings.ReplaceAll(target, "/", "_")
}

// readSums reads a sha256sum file: name -> hex sum.
func readSums(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sums := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		sum, name, ok := strings.Cut(sc.Text(), "  ")
		if !ok || len(sum) != 64 {
			t.Fatalf("%s: not sha256sum output: %q", path, sc.Text())
		}
		sums[name] = sum
	}
	return sums
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// unpack checks an archive's entries (name/ with the binary and the README,
// owned by root, dated at the commit) and returns the extracted binary.
func unpack(t *testing.T, archive, name string, commitTime time.Time) string {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	bin := filepath.Join(t.TempDir(), "databus")
	var got []string
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, h.Name)
		if h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(commitTime) {
			t.Errorf("%s: owner %d:%d, time %v; want 0:0 and the commit's time %v", h.Name, h.Uid, h.Gid, h.ModTime, commitTime)
		}
		if h.Name == name+"/databus" {
			if h.Mode&0o777 != 0o755 {
				t.Errorf("%s: mode %o, want 755", h.Name, h.Mode)
			}
			out, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, io.LimitReader(tr, 512<<20)); err != nil {
				t.Fatal(err)
			}
			out.Close()
		}
	}
	want := []string{name + "/", name + "/README.md", name + "/databus"}
	if _, err := os.Stat("../../LICENSE"); err == nil {
		want = append(want, name+"/LICENSE")
	}
	if slices.Sort(got); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
		t.Errorf("archive holds %v, want %v", got, want)
	}
	return bin
}

// checkSBOM checks a CycloneDX SBOM against the binary it describes: the
// application is the main module at the release's version for its
// platform, and the libraries are the modules linked into the binary, each
// with the SHA-256 of its go.sum hash.
func checkSBOM(t *testing.T, path string, bi *buildinfo.BuildInfo, version, goos, goarch string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	type hash struct{ Alg, Content string }
	type component struct {
		Type, Name, Version, Purl string
		Hashes                    []hash
	}
	var bom struct {
		BomFormat   string
		SpecVersion string
		Metadata    struct{ Component component }
		Components  []component
	}
	if err := json.Unmarshal(data, &bom); err != nil {
		t.Fatalf("the SBOM does not parse: %v", err)
	}
	app := bom.Metadata.Component
	if bom.BomFormat != "CycloneDX" || bom.SpecVersion == "" || app.Type != "application" || app.Name != bi.Main.Path || app.Version != version ||
		!strings.Contains(app.Purl, "goarch="+goarch) || !strings.Contains(app.Purl, "goos="+goos) {
		t.Errorf("SBOM: %s %s, application %+v; want CycloneDX, %s@%s for %s/%s", bom.BomFormat, bom.SpecVersion, app, bi.Main.Path, version, goos, goarch)
	}
	linked := map[string]string{} // path@version -> SHA-256 of the h1: sum, hex
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		sum, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(d.Sum, "h1:"))
		if err != nil {
			t.Fatalf("%s: go.sum hash %q: %v", d.Path, d.Sum, err)
		}
		linked[d.Path+"@"+d.Version] = hex.EncodeToString(sum)
	}
	listed := map[string]string{}
	for _, c := range bom.Components {
		if c.Type != "library" {
			continue
		}
		for _, h := range c.Hashes {
			if h.Alg == "SHA-256" {
				listed[c.Name+"@"+c.Version] = h.Content
			}
		}
		if _, ok := listed[c.Name+"@"+c.Version]; !ok {
			listed[c.Name+"@"+c.Version] = ""
		}
	}
	if len(linked) < 10 {
		t.Fatalf("the binary lists %d modules", len(linked))
	}
	for m, sum := range linked {
		if got, ok := listed[m]; !ok {
			t.Errorf("SBOM: %s is linked into the binary but not listed", m)
		} else if got != sum {
			t.Errorf("SBOM: %s: SHA-256 %q, the binary's go.sum hash is %s", m, got, sum)
		}
	}
	for m := range listed {
		if _, ok := linked[m]; !ok {
			t.Errorf("SBOM: %s is listed but not linked into the binary", m)
		}
	}
}
