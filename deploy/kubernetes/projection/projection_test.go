package projection_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/databus-gateway/databus/deploy/kubernetes/projection"
	"github.com/databus-gateway/databus/engine/gate"
)

// repoRoot is the Databus repository (the sample config repository).
const repoRoot = "../../.."

func TestKey(t *testing.T) {
	for _, c := range []struct{ path, key, err string }{
		{"databus.yaml", "databus.yaml", ""},
		{"apis/orders/create.yaml", "apis_orders_create.yaml", ""},
		{"apis/my api.yaml", "", "cannot be a ConfigMap key"},
		{"apis/über.yaml", "", "cannot be a ConfigMap key"},
	} {
		k, err := projection.Key(c.path)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("Key(%q) = %q, %v; want an error naming the file and %q", c.path, k, err, c.err)
			}
			continue
		}
		if err != nil || k != c.key {
			t.Errorf("Key(%q) = %q, %v; want %q", c.path, k, err, c.key)
		}
	}
}

// writeRepo writes files (path -> content) into a new folder.
func writeRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, s := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const settings = "apiVersion: databus/v1\nkind: Settings\n"

const policy = `apiVersion: databus/v1
kind: RateLimitPolicy
name: standard
algorithm: fixed-window
limit: 10
windowSeconds: 60
keyTemplate: '${apiCode}:${appId}'
`

func api(code string) string {
	return `apiVersion: databus/v1
kind: Api
code: ` + code + `
version: v1
status: online
methods: [POST]
steps:
  - {id: start, type: start}
  - id: s
    type: script
    script: {lang: javascript, source: 'function main(ctx) { return {ok: true} }'}
  - {id: end, type: end}
`
}

// The component holds every file the gateway reads under a key, lays each
// back at its path, and decodes (as the API server would) to exactly the
// repository's bytes: odd whitespace, no final newline and non-UTF-8 files
// (binaryData) included.
func TestComponentRoundTrip(t *testing.T) {
	odd := "# trailing spaces   \n\ttab\n  leading\r\nno final newline"
	dir := writeRepo(t, map[string]string{
		"databus.yaml":             settings,
		"apis/orders/create.yaml":  api("orders.create"),
		"apis/.hidden.yaml":        "not read: hidden",
		"apis/notes.txt":           "not read: not YAML",
		"policies/standard.yaml":   policy,
		"README.md":                "not read: outside the kind folders",
		"extra/odd.txt":            odd,
		"extra/binary.bin":         "\xff\xfe\x00binary",
		"tests/.gitkeep":           "",
		"credentials/.placeholder": "",
	})
	p, err := projection.Collect(context.Background(), dir, []string{"extra/odd.txt", "extra/binary.bin"})
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, f := range p.Files {
		paths = append(paths, f.Path)
	}
	want := "apis/orders/create.yaml databus.yaml extra/binary.bin extra/odd.txt policies/standard.yaml"
	if got := strings.Join(paths, " "); got != want {
		t.Fatalf("projected %s; want %s", got, want)
	}
	files, err := p.Component("a test repository")
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict(files["configmap.yaml"], &cm); err != nil {
		t.Fatalf("configmap.yaml: %v\n%s", err, files["configmap.yaml"])
	}
	var dep struct {
		Spec struct {
			Template struct {
				Spec corev1.PodSpec `json:"spec"`
			} `json:"template"`
		} `json:"spec"`
	}
	if err := yaml.Unmarshal(files["volume.yaml"], &dep); err != nil {
		t.Fatal(err)
	}
	items := dep.Spec.Template.Spec.Volumes[0].Projected.Sources[0].ConfigMap.Items
	if len(items) != len(p.Files) {
		t.Fatalf("%d items for %d files", len(items), len(p.Files))
	}
	for _, it := range items {
		got, ok := []byte(cm.Data[it.Key]), true
		if b, bin := cm.BinaryData[it.Key]; bin {
			got = b
		} else if _, ok = cm.Data[it.Key]; !ok {
			t.Errorf("item %s: no such key in the ConfigMap", it.Key)
			continue
		}
		src, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(it.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, src) {
			t.Errorf("%s (key %s) decodes to %q; the file holds %q", it.Path, it.Key, got, src)
		}
	}
	if _, ok := cm.BinaryData["extra_binary.bin"]; !ok {
		t.Errorf("a non-UTF-8 file is not in binaryData: %v", cm.BinaryData)
	}
}

// A repository whose rpc step names a descriptor set gets it projected
// (binaryData), and the projection passes the gate where it lands.
func TestCollectProjectsDescriptorSets(t *testing.T) {
	p, err := projection.Collect(context.Background(), filepath.Join(repoRoot, "examples/grpc"), nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range p.Files {
		if f.Path == "protos/inventory.pb" {
			found = f.Binary()
		}
	}
	if !found {
		t.Fatalf("protos/inventory.pb (descriptorSet of stock.pinned) is not projected as binary data: %v", p.Files)
	}
	dir := t.TempDir()
	if err := projection.WriteAtomic(dir, p.Tree(), 0o444); err != nil {
		t.Fatal(err)
	}
	if _, diags, err := gate.Check(context.Background(), dir); err != nil || diags.HasErrors() {
		t.Fatalf("the projection does not pass the gate: %v %v", err, diags.Errors())
	}
}

func TestCollectRefuses(t *testing.T) {
	big := strings.Repeat("# padding of a large repository\n", projection.MaxBytes/32+1)
	for _, c := range []struct {
		name    string
		files   map[string]string
		include []string
		want    string
	}{
		{"an invalid repository", map[string]string{"databus.yaml": settings, "apis/a.yaml": "kind: Api\n"}, nil, "does not pass databus validate"},
		{"two paths, one key", map[string]string{"databus.yaml": settings, "apis/a_b.yaml": api("a.one"), "apis/a/b.yaml": api("a.two")}, nil, "both become the ConfigMap key apis_a_b.yaml"},
		{"more than a ConfigMap holds", map[string]string{"databus.yaml": settings + big}, nil, "a ConfigMap holds at most 1048576"},
		{"an include outside the repository", map[string]string{"databus.yaml": settings}, []string{"../secret"}, "inside the repository"},
		{"a missing include", map[string]string{"databus.yaml": settings}, []string{"secrets/app.key"}, "secrets/app.key"},
		{"a file reference left out", map[string]string{
			"databus.yaml": settings,
			"credentials/app.yaml": `apiVersion: databus/v1
kind: Credential
appId: app
enabled: true
signatureType: HMAC-SHA256
encryptionType: AES
encryptionKey: {secretRef: 'file:keys/app.key'}
`,
			"keys/app.key": "0123456789abcdef",
		}, nil, "add it with --include"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := projection.Collect(context.Background(), writeRepo(t, c.files), c.include)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Collect: %v; want an error with %q", err, c.want)
			}
		})
	}
}

// WriteAtomic updates a tree as the kubelet does: one rename of ..data,
// the old folder removed, a top-level name no longer projected unlinked,
// and nested folders reached through their top-level symlink.
func TestWriteAtomicUpdates(t *testing.T) {
	dir := t.TempDir()
	if err := projection.WriteAtomic(dir, map[string][]byte{"databus.yaml": []byte("a"), "apis/x/y.yaml": []byte("1"), "old/z": []byte("z")}, 0o444); err != nil {
		t.Fatal(err)
	}
	first, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := projection.WriteAtomic(dir, map[string][]byte{"databus.yaml": []byte("b"), "apis/x/y.yaml": []byte("2")}, 0o444); err != nil {
		t.Fatal(err)
	}
	second, _ := os.Readlink(filepath.Join(dir, "..data"))
	if first == second || !strings.HasPrefix(second, "..20") {
		t.Fatalf("..data: %q then %q; want a new timestamped folder", first, second)
	}
	if _, err := os.Stat(filepath.Join(dir, first)); !os.IsNotExist(err) {
		t.Errorf("the old folder %s stays: %v", first, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "old")); !os.IsNotExist(err) {
		t.Errorf("old/ is still linked: %v", err)
	}
	for p, want := range map[string]string{"databus.yaml": "b", "apis/x/y.yaml": "2"} {
		got, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", p, got, err, want)
		}
	}
	if target, err := os.Readlink(filepath.Join(dir, "apis")); err != nil || target != "..data/apis" {
		t.Errorf("apis -> %q, %v; want ..data/apis", target, err)
	}
	st, err := os.Stat(filepath.Join(dir, "apis/x/y.yaml"))
	if err != nil || st.Mode().Perm() != 0o444 {
		t.Errorf("mode %v, %v; want 0444", st.Mode(), err)
	}
}
