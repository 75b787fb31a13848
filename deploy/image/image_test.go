package image_test

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/validate"

	"github.com/databus-gateway/databus/deploy/image"
)

// The conventions the Kubernetes manifests rely on, spelled out here rather
// than taken from the package, so that a change of them fails a test.
const (
	wantUser       = "65532:65532"
	wantUID        = 65532
	wantEntrypoint = "/usr/local/bin/databus"
	wantCA         = "/etc/ssl/certs/ca-certificates.crt"
)

var (
	wantCmd     = []string{"serve", "--dir", "/config", "--listen", ":8080", "--health-listen", ":8082", "--storage", "/data/databus.db"}
	wantPorts   = []string{"8080/tcp", "8082/tcp"}
	wantVolumes = []string{"/config", "/data"}
	wantLabels  = []string{"org.opencontainers.image.source", "org.opencontainers.image.revision", "org.opencontainers.image.version", "org.opencontainers.image.created"}
)

// release is what the tests build; Created is not now, so that a timestamp
// taken from the clock instead shows.
var release = image.Release{
	Version: "v0.0.0-imagetest",
	Commit:  "0123456789abcdef0123456789abcdef01234567",
	Created: time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC),
}

// repoRoot is the Databus checkout holding this module.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !bytes.HasPrefix(b, []byte("module github.com/databus-gateway/databus\n")) {
		t.Fatalf("%s is not the Databus repository (go.mod: %v)", root, err)
	}
	return root
}

var built struct {
	once   sync.Once
	dir    string
	bin    string
	err    error
	layout struct {
		once sync.Once
		dir  string
		err  error
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// binary builds the gateway once for this machine's GOARCH, the image's way.
func binary(t *testing.T) string {
	t.Helper()
	if _, ok := image.Arches[runtime.GOARCH]; !ok {
		t.Skipf("GOARCH %s: the image is built for amd64 and arm64 only", runtime.GOARCH)
	}
	root := repoRoot(t)
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "databus-image-test-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "databus")
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		built.err = image.BuildBinary(ctx, root, runtime.GOARCH, built.bin, release)
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// buildLayout builds the image and writes it as an OCI image layout at dir.
func buildLayout(bin, dir string) error {
	img, err := image.Build(image.Options{Binary: bin, Arch: runtime.GOARCH, Release: release})
	if err != nil {
		return err
	}
	return image.WriteLayout(dir, release, img)
}

// builtLayout is the image's layout, built once (the tests run under the
// race detector, which makes gzip about ten times slower).
func builtLayout(t *testing.T) string {
	t.Helper()
	bin := binary(t)
	l := &built.layout
	l.once.Do(func() {
		l.dir = filepath.Join(built.dir, "oci")
		l.err = buildLayout(bin, l.dir)
	})
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.dir
}

// readLayout reads back the one image of the layout at dir.
func readLayout(t *testing.T, dir string) (v1.Image, v1.Descriptor) {
	t.Helper()
	p, err := layout.FromPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := p.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("index.json lists %d manifests, want 1", len(im.Manifests))
	}
	d := im.Manifests[0]
	img, err := idx.Image(d.Digest)
	if err != nil {
		t.Fatal(err)
	}
	return img, d
}

// TestImageRuns builds the image, reads it back from its OCI layout, unpacks
// its root filesystem and runs its entrypoint and command there (chroot, the
// image's user) on the sample repository, to /readyz and back to exit 0 on
// SIGTERM.
func TestImageRuns(t *testing.T) {
	img, desc := readLayout(t, builtLayout(t))
	// Digests, diff IDs, sizes and media types agree with the blobs.
	if err := validate.Image(img); err != nil {
		t.Fatalf("the layout's image: %v", err)
	}

	// The layout's entry: tag and platform.
	if got := desc.Annotations[image.RefNameAnnotation]; got != release.Version {
		t.Errorf("ref.name = %q, want %q", got, release.Version)
	}
	if got := desc.Annotations[image.ImageNameAnnotation]; got != "ghcr.io/databus-gateway/databus:"+release.Version {
		t.Errorf("%s = %q", image.ImageNameAnnotation, got)
	}
	if desc.Platform == nil || desc.Platform.OS != "linux" || desc.Platform.Architecture != runtime.GOARCH {
		t.Errorf("platform = %+v, want linux/%s", desc.Platform, runtime.GOARCH)
	}

	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	checkConfig(t, cf)

	rootfs := filepath.Join(t.TempDir(), "rootfs")
	headers := extract(t, img, rootfs)
	checkFiles(t, rootfs, headers)

	// The CA bundle: every PEM block an X.509 certificate.
	n := 0
	rest, err := os.ReadFile(filepath.Join(rootfs, wantCA))
	if err != nil {
		t.Fatal(err)
	}
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if _, err := x509.ParseCertificate(b.Bytes); b.Type != "CERTIFICATE" || err != nil {
			t.Fatalf("%s: block %d (%s): %v", wantCA, n+1, b.Type, err)
		}
		n++
	}
	if n == 0 || len(bytes.TrimSpace(rest)) > 0 {
		t.Fatalf("%s: %d certificates, %d bytes of non-PEM after them", wantCA, n, len(bytes.TrimSpace(rest)))
	}
	t.Logf("%s: %d certificates", wantCA, n)

	// The binary: static, for this machine.
	checkStatic(t, filepath.Join(rootfs, wantEntrypoint))

	copySample(t, filepath.Join(rootfs, "config"))
	r := newRunner(t, rootfs, cf)

	// `databus version` shows what -ldflags set.
	out, err := r.output("version")
	if err != nil {
		r.skipUnlessRunnable(t, err)
	}
	if err != nil || !strings.Contains(out, release.Version) {
		t.Fatalf("databus version: %q, %v; want it to name %s", out, err, release.Version)
	}

	// serve: the image's command, its listen addresses moved to free loopback
	// ports (a flag given again wins), the admin listener's too.
	portal, health, admin := freeAddr(t), freeAddr(t), freeAddr(t)
	args := append(slices.Clone(cf.Config.Cmd), "--listen", portal, "--health-listen", health, "--admin-listen", admin)
	// TZ: a zone the binary must find without /usr/share/zoneinfo, which the
	// image lacks; its log's time stamps then carry +08:00.
	p := r.start(t, args, "TZ=Asia/Shanghai")

	// Ready on the health listener (the kubelet's probe); the storage path
	// shows only on the admin listener's /readyz.
	p.waitReady(t, "http://"+health+"/readyz", time.Minute)
	body := p.waitReady(t, "http://"+admin+"/readyz", time.Minute)
	var ready struct {
		Ready   bool   `json:"ready"`
		Storage string `json:"storage"`
	}
	if err := json.Unmarshal(body, &ready); err != nil || !ready.Ready {
		t.Fatalf("/readyz: %s (%v)", body, err)
	}
	if ready.Storage != "/data/databus.db" {
		t.Errorf("/readyz storage = %q, want /data/databus.db", ready.Storage)
	}
	// The portal answers on its own listener too.
	if resp, err := http.Get("http://" + portal + "/"); err != nil {
		t.Errorf("portal %s: %v", portal, err)
	} else {
		resp.Body.Close()
	}

	r.checkUser(t, p.cmd.Process.Pid)

	st, err := os.Stat(filepath.Join(rootfs, "data", "databus.db"))
	if err != nil {
		t.Fatalf("storage: %v (want the bbolt file under /data)", err)
	}
	if uid := st.Sys().(*syscall.Stat_t).Uid; r.root && uid != wantUID {
		t.Errorf("/data/databus.db is owned by %d, want %d", uid, wantUID)
	}

	if zone := regexp.MustCompile(`time=\S+([+-]\d\d:\d\d|Z) `).FindStringSubmatch(p.log.String()); zone == nil || zone[1] != "+08:00" {
		t.Errorf("log time stamps with TZ=Asia/Shanghai: %v, want +08:00 (is the binary built with -tags timetzdata?)\n%s", zone, p.log.String())
	}

	// serve drains for at most --drain-timeout, 15s by default: it must be
	// gone by then.
	const drain = 15 * time.Second
	stopping := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		t.Logf("exited %s after SIGTERM", time.Since(stopping).Round(time.Millisecond))
	case <-time.After(drain):
		t.Fatalf("still running %s after SIGTERM (the drain timeout)\n%s", drain, p.log.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status after SIGTERM: %s, want 0\n%s", p.cmd.ProcessState, p.log.String())
	}
}

func checkConfig(t *testing.T, cf *v1.ConfigFile) {
	t.Helper()
	c := cf.Config
	if cf.OS != "linux" || cf.Architecture != runtime.GOARCH {
		t.Errorf("platform %s/%s, want linux/%s", cf.OS, cf.Architecture, runtime.GOARCH)
	}
	if c.User != wantUser {
		t.Errorf("User = %q, want %q", c.User, wantUser)
	}
	if !slices.Equal(c.Entrypoint, []string{wantEntrypoint}) {
		t.Errorf("Entrypoint = %q, want [%s]", c.Entrypoint, wantEntrypoint)
	}
	if !slices.Equal(c.Cmd, wantCmd) {
		t.Errorf("Cmd = %q, want %q", c.Cmd, wantCmd)
	}
	if got := sortedKeys(c.ExposedPorts); !slices.Equal(got, wantPorts) {
		t.Errorf("ExposedPorts = %v, want %v", got, wantPorts)
	}
	if got := sortedKeys(c.Volumes); !slices.Equal(got, wantVolumes) {
		t.Errorf("Volumes = %v, want %v", got, wantVolumes)
	}
	if c.StopSignal != "SIGTERM" {
		t.Errorf("StopSignal = %q, want SIGTERM", c.StopSignal)
	}
	if !slices.Contains(c.Env, "PATH=/usr/local/bin") {
		t.Errorf("Env = %q, want PATH=/usr/local/bin (databus on PATH)", c.Env)
	}
	want := map[string]string{
		"org.opencontainers.image.source":   "https://github.com/databus-gateway/databus",
		"org.opencontainers.image.revision": release.Commit,
		"org.opencontainers.image.version":  release.Version,
		"org.opencontainers.image.created":  "2026-03-04T05:06:07Z",
	}
	for k, v := range want {
		if c.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], v)
		}
	}
	if !cf.Created.Time.Equal(release.Created) {
		t.Errorf("created %s, want %s", cf.Created, release.Created)
	}
	for i, h := range cf.History {
		if !h.Created.Time.Equal(release.Created) {
			t.Errorf("history[%d] created %s, want %s", i, h.Created, release.Created)
		}
	}
}

// checkFiles checks the root filesystem's owners, modes and users.
func checkFiles(t *testing.T, rootfs string, headers map[string]*tar.Header) {
	t.Helper()
	for name, h := range headers {
		if !h.ModTime.Equal(release.Created) {
			t.Errorf("%s: time stamp %s, want %s (SOURCE_DATE_EPOCH)", name, h.ModTime, release.Created)
		}
	}
	want := []struct {
		path     string
		dir      bool
		mode     os.FileMode
		uid, gid int
	}{
		{"config", true, 0o755, wantUID, wantUID},
		{"data", true, 0o755, wantUID, wantUID},
		{"home/nonroot", true, 0o700, wantUID, wantUID},
		{"tmp", true, 0o777 | os.ModeSticky, 0, 0},
		{"etc/passwd", false, 0o644, 0, 0},
		{"etc/group", false, 0o644, 0, 0},
		{strings.TrimPrefix(wantCA, "/"), false, 0o644, 0, 0},
		{strings.TrimPrefix(wantEntrypoint, "/"), false, 0o755, 0, 0},
	}
	for _, w := range want {
		h := headers[w.path]
		if h == nil {
			t.Errorf("/%s: not in the image", w.path)
			continue
		}
		fi := h.FileInfo()
		if fi.IsDir() != w.dir || fi.Mode().Perm()|fi.Mode()&os.ModeSticky != w.mode || h.Uid != w.uid || h.Gid != w.gid {
			t.Errorf("/%s: directory %v, mode %04o, owner %d:%d; want directory %v, mode %04o, owner %d:%d",
				w.path, fi.IsDir(), h.Mode, h.Uid, h.Gid, w.dir, tarMode(w.mode), w.uid, w.gid)
		}
	}
	passwd, _ := os.ReadFile(filepath.Join(rootfs, "etc", "passwd"))
	if !regexp.MustCompile(`(?m)^nonroot:x:65532:65532:[^:]*:/home/nonroot:[^:]*$`).Match(passwd) {
		t.Errorf("/etc/passwd has no nonroot 65532:65532 with home /home/nonroot:\n%s", passwd)
	}
	group, _ := os.ReadFile(filepath.Join(rootfs, "etc", "group"))
	if !regexp.MustCompile(`(?m)^nonroot:x:65532:`).Match(group) {
		t.Errorf("/etc/group has no nonroot 65532:\n%s", group)
	}
}

// tarMode is m as a tar header's mode: permissions, sticky bit 01000.
func tarMode(m os.FileMode) int64 {
	n := int64(m.Perm())
	if m&os.ModeSticky != 0 {
		n |= 0o1000
	}
	return n
}

// checkStatic fails unless the file is a static ELF executable for GOARCH:
// no program interpreter and no needed shared library.
func checkStatic(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if want := image.Arches[runtime.GOARCH]; f.Machine != want {
		t.Errorf("%s: machine %s, want %s", bin, f.Machine, want)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s: has %s: not static", bin, p.Type)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil || len(libs) > 0 {
		t.Errorf("%s: needs %v (%v): not static", bin, libs, err)
	}
}

// extract unpacks the image's flattened file system into dir, with owners
// when this process may set them, and returns its headers by path.
func extract(t *testing.T, img v1.Image, dir string) map[string]*tar.Header {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	headers := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	root := os.Geteuid() == 0
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := filepath.Clean(h.Name)
		if !filepath.IsLocal(name) {
			t.Fatalf("image entry %q leaves the root", h.Name)
		}
		headers[filepath.ToSlash(name)] = h
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(p, 0o700)
		case tar.TypeReg:
			var f *os.File
			if f, err = os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600); err == nil {
				_, err = io.Copy(f, tr)
				err = errors.Join(err, f.Close())
			}
		default:
			t.Fatalf("image entry %s: type %c not expected in this image", h.Name, h.Typeflag)
		}
		if err != nil {
			t.Fatal(err)
		}
		if root {
			if err := os.Lchown(p, h.Uid, h.Gid); err != nil {
				t.Fatal(err)
			}
		}
		// After the chown, which clears set-id bits.
		if err := os.Chmod(p, h.FileInfo().Mode()&(os.ModePerm|os.ModeSticky|os.ModeSetuid|os.ModeSetgid)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return headers
}

// copySample copies the sample repository (README, "The sample
// repository") into dir: settings, APIs, credentials with their demo key,
// policies and contract tests.
func copySample(t *testing.T, dir string) {
	t.Helper()
	root := repoRoot(t)
	for _, sub := range []string{"apis", "credentials", "policies", "tests", "examples/secrets"} {
		if err := os.CopyFS(filepath.Join(dir, sub), os.DirFS(filepath.Join(root, sub))); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(filepath.Join(root, "databus.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "databus.yaml"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func sortedKeys(m map[string]struct{}) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// runner runs the image's entrypoint inside its root filesystem as the
// image's user: as root with chroot and setuid/setgid; otherwise in a new
// user namespace where this user is mapped to the image's uid and gid (and
// chroot is allowed there), if the kernel lets unprivileged users make one.
type runner struct {
	rootfs   string
	cf       *v1.ConfigFile
	uid, gid uint32
	root     bool
}

func newRunner(t *testing.T, rootfs string, cf *v1.ConfigFile) *runner {
	t.Helper()
	u, g, ok := strings.Cut(cf.Config.User, ":")
	uid, err1 := strconv.ParseUint(u, 10, 32)
	gid, err2 := strconv.ParseUint(g, 10, 32)
	if !ok || err1 != nil || err2 != nil {
		t.Fatalf("image user %q: want numeric uid:gid", cf.Config.User)
	}
	return &runner{rootfs: rootfs, cf: cf, uid: uint32(uid), gid: uint32(gid), root: os.Geteuid() == 0}
}

func (r *runner) command(args []string, extraEnv ...string) *exec.Cmd {
	argv := append(slices.Clone(r.cf.Config.Entrypoint), args...)
	// The path is resolved after the chroot, in the image.
	cmd := &exec.Cmd{Path: argv[0], Args: argv, Dir: r.cf.Config.WorkingDir,
		Env: append(slices.Clone(r.cf.Config.Env), extraEnv...)}
	attr := &syscall.SysProcAttr{Chroot: r.rootfs, Pdeathsig: syscall.SIGKILL,
		Credential: &syscall.Credential{Uid: r.uid, Gid: r.gid}}
	if !r.root {
		// In a user namespace of its own, this user is the image's uid; no
		// supplementary groups may be set there.
		attr.Cloneflags = syscall.CLONE_NEWUSER
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: int(r.uid), HostID: os.Getuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: int(r.gid), HostID: os.Getgid(), Size: 1}}
		attr.Credential.NoSetGroups = true
	}
	cmd.SysProcAttr = attr
	return cmd
}

// skipUnlessRunnable skips where neither root nor an unprivileged user
// namespace is available, except under CI, which runs as root.
func (r *runner) skipUnlessRunnable(t *testing.T, err error) {
	t.Helper()
	if !r.root && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EACCES)) && os.Getenv("CI") == "" {
		t.Skipf("not root, and no user namespace for the image's user here (%v): run as root", err)
	}
}

func (r *runner) output(args ...string) (string, error) {
	cmd := r.command(args)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

type proc struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
}

func (r *runner) start(t *testing.T, args []string, extraEnv ...string) *proc {
	t.Helper()
	p := &proc{cmd: r.command(args, extraEnv...), log: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		r.skipUnlessRunnable(t, err)
		t.Fatalf("start %s in %s: %v", p.cmd.Args, r.rootfs, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// waitReady polls url until it answers 200 and returns the body; it fails
// if the process ends first or the deadline passes.
func (p *proc) waitReady(t *testing.T, url string, within time.Duration) []byte {
	t.Helper()
	deadline := time.Now().Add(within)
	client := &http.Client{Timeout: 2 * time.Second}
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-p.done:
			t.Fatalf("exited (%s) before %s answered 200:\n%s", p.cmd.ProcessState, url, p.log.String())
		default:
		}
		resp, err := client.Get(url)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return body
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, body)
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s not 200 within %s (last: %s):\n%s", url, within, last, p.log.String())
	return nil
}

// checkUser checks the process's user and groups in /proc: the image's
// uid and gid, no supplementary group; in a user namespace, the namespace
// maps this user to the image's uid.
func (r *runner) checkUser(t *testing.T, pid int) {
	t.Helper()
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	uid, gid := r.uid, r.gid
	if !r.root {
		uid, gid = uint32(os.Getuid()), uint32(os.Getgid())
		m, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
		if err != nil || len(strings.Fields(string(m))) != 3 || strings.Fields(string(m))[0] != strconv.Itoa(int(r.uid)) {
			t.Errorf("uid_map %q (%v): want %d mapped", m, err, r.uid)
		}
	}
	fields := map[string]string{}
	for line := range strings.SplitSeq(string(status), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			fields[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	wantU := fmt.Sprintf("%d %d %d %d", uid, uid, uid, uid)
	wantG := fmt.Sprintf("%d %d %d %d", gid, gid, gid, gid)
	if fields["Uid"] != wantU || fields["Gid"] != wantG {
		t.Errorf("/proc/%d/status: Uid %q Gid %q, want %q and %q", pid, fields["Uid"], fields["Gid"], wantU, wantG)
	}
	if r.root && fields["Groups"] != "" {
		t.Errorf("/proc/%d/status: Groups %q, want none", pid, fields["Groups"])
	}
	if r.root && fields["CapEff"] != "0000000000000000" {
		t.Errorf("/proc/%d/status: CapEff %s, want no capability", pid, fields["CapEff"])
	}
}

// syncBuffer is a bytes.Buffer the process's output goroutine writes while
// the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestReproducible builds the image again from the same inputs: the same
// layout, byte for byte.
func TestReproducible(t *testing.T) {
	first := builtLayout(t)
	again := filepath.Join(t.TempDir(), "oci")
	if err := buildLayout(binary(t), again); err != nil {
		t.Fatal(err)
	}
	i1, _ := os.ReadFile(filepath.Join(first, "index.json"))
	i2, _ := os.ReadFile(filepath.Join(again, "index.json"))
	if !bytes.Equal(i1, i2) || len(i1) == 0 {
		t.Fatalf("two layouts of the same inputs differ:\n%s\n%s", i1, i2)
	}
	var blobs []string
	filepath.WalkDir(filepath.Join(first, "blobs"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			blobs = append(blobs, strings.TrimPrefix(p, first))
		}
		return err
	})
	if len(blobs) != 4 { // manifest, config, two layers
		t.Fatalf("blobs %q, want 4", blobs)
	}
	for _, b := range blobs {
		x, _ := os.ReadFile(filepath.Join(first, b))
		y, err := os.ReadFile(filepath.Join(again, b))
		if err != nil || !bytes.Equal(x, y) {
			t.Errorf("blob %s differs (%v)", b, err)
		}
	}
}

// TestConfigMatchesConventions pins Config to the conventions without a
// build.
func TestConfigMatchesConventions(t *testing.T) {
	c := image.Config(release)
	if c.User != wantUser || !slices.Equal(c.Entrypoint, []string{wantEntrypoint}) || !slices.Equal(c.Cmd, wantCmd) ||
		!slices.Equal(sortedKeys(c.ExposedPorts), wantPorts) || !slices.Equal(sortedKeys(c.Volumes), wantVolumes) || c.StopSignal != "SIGTERM" {
		t.Fatalf("Config = %+v", c)
	}
	for _, k := range wantLabels {
		if c.Labels[k] == "" {
			t.Errorf("label %s missing", k)
		}
	}
	if !reflect.DeepEqual(image.Cmd(), wantCmd) {
		t.Errorf("Cmd() = %q", image.Cmd())
	}
}

// TestBuildRefuses checks Build's refusals of bad input: a binary that is
// not a static ELF executable for the arch, a CA bundle that is not one, a
// release that cannot tag an image.
func TestBuildRefuses(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "text")
	os.WriteFile(text, []byte("#!/bin/sh\necho hi\n"), 0o755)
	notPEM := filepath.Join(dir, "ca.crt")
	os.WriteFile(notPEM, []byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), 0o644)
	// The test binary: an ELF executable for this machine; /bin/sh: one
	// dynamically linked, on every Debian.
	self, _ := os.Executable()
	other := map[string]string{"amd64": "arm64", "arm64": "amd64"}[runtime.GOARCH]
	for _, c := range []struct {
		name string
		o    image.Options
		want string
	}{
		{"not ELF", image.Options{Binary: text, Arch: runtime.GOARCH, Release: release}, "not an ELF file"},
		{"dynamic", image.Options{Binary: "/bin/sh", Arch: runtime.GOARCH, Release: release}, "build with CGO_ENABLED=0"},
		{"other arch", image.Options{Binary: self, Arch: other, Release: release}, "built for EM_"},
		{"unknown arch", image.Options{Binary: self, Arch: "mips", Release: release}, `arch "mips": expected amd64 or arm64`},
		{"missing", image.Options{Binary: filepath.Join(dir, "none"), Arch: runtime.GOARCH, Release: release}, "no such file"},
		{"bad tag", image.Options{Binary: self, Arch: runtime.GOARCH, Release: image.Release{Version: "a b", Commit: release.Commit}}, "not a valid image tag"},
		{"bad commit", image.Options{Binary: self, Arch: runtime.GOARCH, Release: image.Release{Version: "v1", Commit: "HEAD"}}, "expected a hexadecimal commit hash"},
	} {
		_, err := image.Build(c.o)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	// The CA bundle is read after the binary passed: this needs a static one.
	_, err := image.Build(image.Options{Binary: binary(t), Arch: runtime.GOARCH, CABundle: notPEM, Release: release})
	if want := "PEM block 1 is a PRIVATE KEY, expected a CERTIFICATE"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("bad CA bundle: %v, want an error with %q", err, want)
	}
}
