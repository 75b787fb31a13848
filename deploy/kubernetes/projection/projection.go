// Package projection turns a Databus config repository into a Kubernetes
// ConfigMap and the projected volume that lays its folders out again in a
// pod.
//
// A ConfigMap's keys are flat (no "/"), while a config repository has
// folders (apis/orders/create.yaml). Each file becomes one key
// (apis_orders_create.yaml), and the volume's items map every key back to
// its path. One volume holds all of them, so the kubelet swaps the whole
// tree at once (its ..data symlink), which the gateway's watcher reloads
// on: a change never shows half applied.
//
// The files are those the gateway reads: databus.yaml, the YAML files of
// the kind folders, the descriptor sets rpc steps name, and any file the
// caller includes (e.g. a demo secret file the repository refers to).
// Collect checks the projected tree through the gate before it returns, so
// a ConfigMap it made is one the gateway accepts.
package projection

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"

	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/databus-gateway/databus/engine/config"
	"github.com/databus-gateway/databus/engine/gate"
)

// MaxBytes is the most a ConfigMap holds: the Kubernetes API server refuses
// a ConfigMap whose data and binaryData add up to more (1 MiB).
const MaxBytes = 1 << 20

// ClientSideApplyBytes is roughly where `kubectl apply` without
// --server-side stops working: it copies the object into an annotation,
// and annotations hold at most 256 KiB.
const ClientSideApplyBytes = 256<<10 - 8<<10

// Names of what Component writes and patches.
const (
	ConfigMapName  = "databus-config"
	DeploymentName = "databus"
	VolumeName     = "config"
)

// File is one file of the projection.
type File struct {
	Path string // slash-separated, relative to the repository
	Key  string // its ConfigMap key
	Data []byte
}

// Binary reports whether the file goes to binaryData (not UTF-8 text).
func (f File) Binary() bool { return !utf8.Valid(f.Data) }

// Projection is a repository's files as a ConfigMap's keys, sorted by path.
type Projection struct {
	Files []File
}

// Size is the bytes the ConfigMap holds.
func (p *Projection) Size() int {
	n := 0
	for _, f := range p.Files {
		n += len(f.Data)
	}
	return n
}

// Tree returns the files by path, as the pod sees them under the mount.
func (p *Projection) Tree() map[string][]byte {
	m := make(map[string][]byte, len(p.Files))
	for _, f := range p.Files {
		m[f.Path] = f.Data
	}
	return m
}

// Key is the ConfigMap key of a repository path: "/" becomes "_". Keys
// may hold letters, digits, '-', '_' and '.'; a path with other
// characters is refused.
func Key(p string) (string, error) {
	k := strings.ReplaceAll(p, "/", "_")
	if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
		return "", fmt.Errorf("%s: cannot be a ConfigMap key (%s): rename the file (letters, digits, '-', '_', '.')", p, strings.Join(errs, "; "))
	}
	return k, nil
}

// Collect reads the repository at dir: databus.yaml, the kind folders'
// YAML files, the descriptor sets its rpc steps name and the files of
// include (paths relative to dir). The repository must pass the gate, and
// so must its projection, laid out as the kubelet does; the errors of a
// projection that does not say which file is missing.
func Collect(ctx context.Context, dir string, include []string) (*Projection, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	repo, diags, err := gate.Check(ctx, abs)
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, fmt.Errorf("%s does not pass databus validate:\n%s", dir, diags.Errors().Error())
	}
	paths := map[string]bool{config.SettingsFile: true}
	w := &config.FolderWalk{File: func(_, rel string, _ fs.FileInfo) {
		if config.IsConfigFile(rel) {
			paths[rel] = true
		}
	}}
	for _, d := range config.KindDirs {
		if err := w.Walk(filepath.Join(abs, d), d); err != nil {
			return nil, err
		}
	}
	for _, ds := range repo.DescriptorSets() {
		paths[path.Clean(filepath.ToSlash(ds))] = true
	}
	for _, inc := range include {
		p := path.Clean(filepath.ToSlash(inc))
		if filepath.IsAbs(inc) || p == ".." || strings.HasPrefix(p, "../") {
			return nil, fmt.Errorf("--include %s: give a path inside the repository, relative to it", inc)
		}
		paths[p] = true
	}
	p := &Projection{}
	byKey := map[string]string{}
	for rel := range paths {
		data, err := os.ReadFile(filepath.Join(abs, filepath.FromSlash(rel)))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", rel, err)
		}
		key, err := Key(rel)
		if err != nil {
			return nil, err
		}
		if other, dup := byKey[key]; dup {
			return nil, fmt.Errorf("%s and %s both become the ConfigMap key %s: rename one", other, rel, key)
		}
		byKey[key] = rel
		p.Files = append(p.Files, File{Path: rel, Key: key, Data: data})
	}
	sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].Path < p.Files[j].Path })
	if n := p.Size(); n > MaxBytes {
		return nil, fmt.Errorf("%s: the projection holds %d bytes; a ConfigMap holds at most %d (1 MiB): follow the repository with git sync instead (components/git-sync)", dir, n, MaxBytes)
	}
	if err := p.check(ctx); err != nil {
		return nil, err
	}
	return p, nil
}

// check runs the gate on the projection as a pod would see it.
func (p *Projection) check(ctx context.Context) error {
	tmp, err := os.MkdirTemp("", "databus-projection-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := WriteAtomic(tmp, p.Tree(), 0o444); err != nil {
		return err
	}
	_, diags, err := gate.Check(ctx, tmp)
	if err != nil {
		return err
	}
	if diags.HasErrors() {
		return fmt.Errorf("the projected repository does not pass databus validate (a file it refers to is not projected? add it with --include):\n%s", diags.Errors().Error())
	}
	return nil
}

// WriteAtomic lays files out in dir the way the kubelet writes a
// ConfigMap or projected volume: the files in a fresh hidden folder
// (..2006_01_02_15_04_05.NNN), a ..data symlink to it swapped by rename,
// and one symlink per top-level name into ..data. Called again on the
// same dir it updates the tree as the kubelet does on a change: one
// rename, then the old folder and stale links go.
func WriteAtomic(dir string, files map[string][]byte, mode fs.FileMode) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts, err := os.MkdirTemp(dir, time.Now().UTC().Format("..2006_01_02_15_04_05."))
	if err != nil {
		return err
	}
	top := map[string]bool{}
	for rel, data := range files {
		if rel == "" || strings.HasPrefix(rel, "/") || strings.HasPrefix(rel, "..") || path.Clean(rel) != rel {
			return fmt.Errorf("%q: not a relative path", rel)
		}
		top[strings.SplitN(rel, "/", 2)[0]] = true
		full := filepath.Join(ts, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(full, data, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(full, mode); err != nil {
			return err
		}
	}
	tmpLink := filepath.Join(dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmpLink); err != nil {
		return err
	}
	if err := os.Rename(tmpLink, filepath.Join(dir, "..data")); err != nil {
		return err
	}
	for name := range top {
		link := filepath.Join(dir, name)
		if _, err := os.Lstat(link); errors.Is(err, fs.ErrNotExist) {
			if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
				return err
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "..") && !top[e.Name()] {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return err
			}
		}
	}
	if old != "" && old != filepath.Base(ts) {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	return nil
}

// Component returns the files of a kustomize Component that adds the
// projection to the gateway of deploy/kubernetes/base: kustomization.yaml,
// configmap.yaml (the ConfigMap databus-config) and volume.yaml (the
// Deployment's config volume, each key back at its path). source names the
// repository in the generated files' header.
func (p *Projection) Component(source string) (map[string][]byte, error) {
	header := fmt.Sprintf("# Generated by deploy/kubernetes/configmap from %s:\n# do not edit, generate again.\n", source)
	kust := header + `# A kustomize Component: list it under components: of an overlay of
# deploy/kubernetes/base. configmap.yaml holds the files; volume.yaml lays
# them out under /config, folders and all, in one projected volume.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - configmap.yaml
patches:
  - path: volume.yaml
`
	var text, bin []File
	for _, f := range p.Files {
		if f.Binary() {
			bin = append(bin, f)
		} else {
			text = append(text, f)
		}
	}
	cm := mapping(
		"apiVersion", str("v1"),
		"kind", str("ConfigMap"),
		"metadata", mapping("name", str(ConfigMapName), "labels", mapping("app.kubernetes.io/name", str("databus"))),
	)
	if len(text) > 0 {
		data := mapping()
		for _, f := range sortedByKey(text) {
			v := str(string(f.Data))
			if strings.Contains(v.Value, "\n") {
				v.Style = yaml.LiteralStyle
			}
			data.Content = append(data.Content, str(f.Key), v)
		}
		cm.Content = append(cm.Content, str("data"), data)
	}
	if len(bin) > 0 {
		data := mapping()
		for _, f := range sortedByKey(bin) {
			data.Content = append(data.Content, str(f.Key), str(base64.StdEncoding.EncodeToString(f.Data)))
		}
		cm.Content = append(cm.Content, str("binaryData"), data)
	}
	items := &yaml.Node{Kind: yaml.SequenceNode}
	for _, f := range p.Files {
		items.Content = append(items.Content, mapping("key", str(f.Key), "path", str(f.Path)))
	}
	vol := mapping(
		"apiVersion", str("apps/v1"),
		"kind", str("Deployment"),
		"metadata", mapping("name", str(DeploymentName)),
		"spec", mapping("template", mapping("spec", mapping("volumes", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{
			mapping("name", str(VolumeName), "projected", mapping(
				"defaultMode", &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: "0444"},
				"sources", &yaml.Node{Kind: yaml.SequenceNode, Content: []*yaml.Node{
					mapping("configMap", mapping("name", str(ConfigMapName), "items", items)),
				}},
			)),
		}}))),
	)
	cmText, err := encode(cm)
	if err != nil {
		return nil, err
	}
	volText, err := encode(vol)
	if err != nil {
		return nil, err
	}
	return map[string][]byte{
		"kustomization.yaml": []byte(kust),
		"configmap.yaml":     []byte(header + fmt.Sprintf("# %d files, %d bytes (a ConfigMap holds at most 1 MiB).\n", len(p.Files), p.Size()) + cmText),
		"volume.yaml":        []byte(header + volText),
	}, nil
}

func sortedByKey(files []File) []File {
	out := append([]File(nil), files...)
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

func str(s string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s} }

func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i < len(kv); i += 2 {
		n.Content = append(n.Content, str(kv[i].(string)), kv[i+1].(*yaml.Node))
	}
	return n
}

func encode(n *yaml.Node) (string, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(n); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	return b.String(), nil
}
