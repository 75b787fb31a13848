// The Kubernetes manifests are checked here, without a cluster: every
// overlay is rendered with kustomize's Go API from its folder (as kubectl
// apply -k would), every object is decoded strictly into the Kubernetes
// API's Go types, and the objects are checked against each other and
// against the databus binary built from this repository — its serve
// flags, listeners, probes, paths and shutdown — and then the gateway's
// container is run here as the kubelet would run it.
package kubernetes

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/databus-gateway/databus/deploy/kubernetes/projection"
)

// repoRoot is the Databus repository, whose root is the sample config
// repository.
const repoRoot = "../.."

var update = flag.Bool("update", false, "generate components/sample-config again from the sample repository")

var (
	databusBin string              // built once by TestMain
	serveFlags map[string]flagSpec // of databus serve --help
)

func TestMain(m *testing.M) {
	flag.Parse()
	code, err := setup(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func setup(m *testing.M) (int, error) {
	dir, err := os.MkdirTemp("", "databus-k8s-test-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(dir)
	databusBin = filepath.Join(dir, "databus")
	build := exec.Command("go", "build", "-o", databusBin, "./cmd/databus")
	build.Dir = repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("building databus: %v\n%s", err, out)
	}
	help, _ := exec.Command(databusBin, "serve", "--help").CombinedOutput()
	if serveFlags, err = parseHelp(string(help)); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// sampleInclude are the files of the sample repository projected beyond
// what the gateway reads by itself: the demo credential's key file.
var sampleInclude = []string{"examples/secrets/demo-app.key"}

// components/sample-config is what deploy/kubernetes/configmap makes of
// the sample repository today (go test -run SampleConfig -update writes it).
func TestSampleConfigIsGenerated(t *testing.T) {
	p, err := projection.Collect(context.Background(), repoRoot, sampleInclude)
	if err != nil {
		t.Fatal(err)
	}
	files, err := p.Component("the repository's sample (the project root)")
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		file := filepath.Join("components/sample-config", name)
		if *update {
			if err := os.WriteFile(file, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		have, err := os.ReadFile(file)
		if err != nil || !bytes.Equal(have, want) {
			t.Errorf("%s is not what the sample repository gives (%v): run\n  (cd deploy/kubernetes && go test -run SampleConfig -update)\nor go -C deploy run ./kubernetes/configmap --repo .. --out kubernetes/components/sample-config --include %s", file, err, strings.Join(sampleInclude, " --include "))
		}
	}
}

// overlays lists deploy/kubernetes/overlays, so that a new one is checked
// without being named here.
func overlays(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("overlays")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) < 3 {
		t.Fatalf("overlays: %v; want single, single-git-sync and fleet at least", out)
	}
	return out
}

// renderDisk renders a kustomization of deploy/kubernetes from disk and
// indexes it.
func renderDisk(t *testing.T, dir string) *rendered {
	t.Helper()
	objs, err := render(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatal(err)
	}
	r, err := index(dir, objs)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The base renders and decodes on its own (an overlay adds the rest).
func TestBaseRenders(t *testing.T) {
	r := renderDisk(t, "base")
	if _, _, err := r.gateway(); err != nil {
		t.Fatal(err)
	}
}

// Each overlay renders, decodes strictly, fits the databus binary, gives
// the pod a repository that databus validate and databus test accept, and
// runs: the container starts with the overlay's args, env and volumes,
// answers the probes, reloads a changed configuration the way the kubelet
// delivers it, and stops cleanly on SIGTERM within its grace period.
func TestOverlays(t *testing.T) {
	for _, name := range overlays(t) {
		t.Run(name, func(t *testing.T) {
			r := renderDisk(t, filepath.Join("overlays", name))
			f, err := check(r, serveFlags)
			if err != nil {
				t.Fatalf("overlays/%s:\n%v", name, err)
			}
			drain, _ := time.ParseDuration(f.Flags["drain-timeout"])
			dirs := map[string]string{}
			for mp := range f.Mounts {
				dirs[mp] = t.TempDir()
			}
			cfgMount := ""
			for mp := range f.Mounts {
				if f.ConfigDir == mp || strings.HasPrefix(f.ConfigDir, mp+"/") {
					cfgMount = mp
				}
			}
			if f.GitSync {
				runGitSync(t, r, f, dirs, cfgMount, drain)
				return
			}
			if err := projection.WriteAtomic(dirs[cfgMount], f.Config, 0o444); err != nil {
				t.Fatal(err)
			}
			cfgDir, _ := localPath(f.ConfigDir, f.Container.VolumeMounts, dirs)
			// With the container's environment: validate resolves env:
			// references the gateway needs at start (redis.password).
			for _, args := range [][]string{{"validate", cfgDir}, {"test", cfgDir}} {
				cmd := exec.Command(databusBin, args...)
				cmd.Env = containerEnv(t, r, f.Container, dirs)
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Fatalf("databus %s on what the pod sees under %s: %v\n%s", args[0], f.ConfigDir, err, out)
				}
			}
			p := startPod(t, databusBin, r, f, dirs)
			p.probe()
			if storage, _ := localPath(f.Flags["storage"], f.Container.VolumeMounts, dirs); storage != "" {
				if _, err := os.Stat(storage); err != nil {
					t.Errorf("the bbolt file is not on its volume: %v", err)
				}
			}
			// kubectl apply of a changed ConfigMap: the kubelet swaps ..data.
			before := p.ready().Revision
			changed, file := changeOneAPI(f.Config)
			if err := projection.WriteAtomic(dirs[cfgMount], changed, 0o444); err != nil {
				t.Fatal(err)
			}
			after := p.waitFor("reloaded after the ConfigMap changed "+file, func(r readyz) bool {
				return r.Revision != before && r.LastReload.OK
			})
			t.Logf("ConfigMap swap: %s -> %s (%s)", before, after.Revision, after.LastReload.Reason)
			p.stop(drain)
		})
	}
}

// runGitSync runs the git-sync pod: its init container clones a local
// repository holding the sample (in place of the overlay's remote), the
// gateway follows it, and a new commit is served after SIGHUP (which
// fetches, as the interval would).
func runGitSync(t *testing.T, r *rendered, f *gatewayFacts, dirs map[string]string, cfgMount string, drain time.Duration) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatalf("git sync's init container runs git: %v", err)
	}
	pod := &f.Deployment.Spec.Template.Spec
	if len(pod.InitContainers) != 1 {
		t.Fatalf("%d init containers; want the one that clones", len(pod.InitContainers))
	}
	ic := &pod.InitContainers[0]
	p, err := projection.Collect(context.Background(), repoRoot, sampleInclude)
	if err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	branch := ""
	for _, e := range ic.Env {
		if e.Name == "GIT_BRANCH" && e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
			branch, _ = r.configMapValue(e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key)
		}
	}
	if branch == "" {
		t.Fatal("the init container has no GIT_BRANCH from a ConfigMap")
	}
	git(t, src, "init", "--quiet", "--initial-branch="+branch)
	writeTree(t, src, p.Tree())
	git(t, src, "add", "-A")
	git(t, src, "commit", "--quiet", "-m", "sample")
	override := map[string]string{"GIT_URL": src}
	// A clone the pod's stop cut short: a .git that holds no commit.
	if err := os.MkdirAll(filepath.Join(dirs[cfgMount], ".git", "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out := runInit(t, r, ic, dirs, override); strings.Contains(out, "checkout already") {
		t.Fatalf("the init container kept a clone cut short: %s", out)
	}
	if out := runInit(t, r, ic, dirs, override); !strings.Contains(out, "checkout already") {
		t.Errorf("the init container run again (a pod restart) did not keep the checkout: %s", out)
	}
	cfgDir, _ := localPath(f.ConfigDir, f.Container.VolumeMounts, dirs)
	if out, err := exec.Command(databusBin, "validate", cfgDir).CombinedOutput(); err != nil {
		t.Fatalf("databus validate on the clone: %v\n%s", err, out)
	}
	pd := startPod(t, databusBin, r, f, dirs)
	pd.probe()
	first := pd.ready()
	if first.Git == nil || first.Git.Hash != git(t, src, "rev-parse", "HEAD") {
		t.Fatalf("/readyz git %+v; want the cloned HEAD", first.Git)
	}
	changed, file := changeOneAPI(p.Tree())
	writeTree(t, src, changed)
	git(t, src, "commit", "--quiet", "-am", "change "+file)
	head := git(t, src, "rev-parse", "HEAD")
	if err := pd.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	pd.waitFor("at the new commit "+head, func(r readyz) bool { return r.Git != nil && r.Git.Hash == head && r.LastReload.OK })
	pd.stop(drain)
}

// The optional components render with the overlays they are meant for:
// the PodMonitor with the fleet (decoded with the Prometheus Operator's
// types and checked against the health listener), and a component made by
// deploy/kubernetes/configmap from another repository (one with a
// descriptor set: binaryData) in place of the sample.
func TestComponents(t *testing.T) {
	mem, err := memTree()
	if err != nil {
		t.Fatal(err)
	}
	p, err := projection.Collect(context.Background(), filepath.Join(repoRoot, "examples/grpc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	files, err := p.Component("examples/grpc")
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := mem.WriteFile("/k/overlays/mine/config/"+name, b); err != nil {
			t.Fatal(err)
		}
	}
	kust := map[string]string{
		"/k/overlays/fleet-podmonitor/kustomization.yaml": "resources: [../fleet]\ncomponents: [../../components/pod-monitor]\n",
		"/k/overlays/mine/kustomization.yaml":             "resources: [../../base]\ncomponents: [../../components/single, ./config]\n",
	}
	for file, s := range kust {
		if err := mem.WriteFile(file, []byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("pod-monitor", func(t *testing.T) {
		objs, err := render(mem, "/k/overlays/fleet-podmonitor")
		if err != nil {
			t.Fatal(err)
		}
		r, err := index("fleet-podmonitor", objs)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.PodMonitors) != 1 {
			t.Fatalf("%d PodMonitors", len(r.PodMonitors))
		}
		if _, err := check(r, serveFlags); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("your own config", func(t *testing.T) {
		objs, err := render(mem, "/k/overlays/mine")
		if err != nil {
			t.Fatal(err)
		}
		r, err := index("mine", objs)
		if err != nil {
			t.Fatal(err)
		}
		f, err := check(r, serveFlags)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := f.Config["protos/inventory.pb"]; !ok {
			t.Fatalf("the descriptor set is not in the pod's /config: %v", sortedKeys(f.Config))
		}
		dir := t.TempDir()
		if err := projection.WriteAtomic(dir, f.Config, 0o444); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(databusBin, "validate", dir).CombinedOutput(); err != nil {
			t.Fatalf("databus validate: %v\n%s", err, out)
		}
	})
}
