package image_test

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/databus-gateway/databus/deploy/image"
)

// dockerfile is the repository's Dockerfile as BuildKit's own parser reads
// it: its stages, and its ARG defaults (the global ones, which the stages
// inherit by redeclaring them without a value).
type dockerfile struct {
	stages []instructions.Stage
	args   map[string]string
	lex    *shell.Lex
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(repoRoot(t), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	stages, meta, err := instructions.Parse(res.AST, nil)
	if err != nil {
		t.Fatalf("Dockerfile: %v", err)
	}
	// BuildKit's automatic platform arguments, as for
	// `docker buildx build --platform linux/arm64` on an amd64 machine.
	d := dockerfile{stages: stages, lex: shell.NewLex(res.EscapeToken), args: map[string]string{
		"BUILDPLATFORM": "linux/amd64", "BUILDOS": "linux", "BUILDARCH": "amd64",
		"TARGETPLATFORM": "linux/arm64", "TARGETOS": "linux", "TARGETARCH": "arm64",
	}}
	for _, a := range meta {
		for _, kv := range a.Args {
			if kv.Value != nil {
				d.args[kv.Key] = *kv.Value
			}
		}
	}
	return d
}

// env is the build arguments a stage sees: the global defaults, then the
// stage's own ARG defaults.
func (d dockerfile) env(s instructions.Stage) shell.EnvGetter {
	args := map[string]string{}
	for k, v := range d.args {
		args[k] = v
	}
	for _, c := range s.Commands {
		if a, ok := c.(*instructions.ArgCommand); ok {
			for _, kv := range a.Args {
				if kv.Value != nil {
					args[kv.Key] = *kv.Value
				}
			}
		}
	}
	var kv []string
	for k, v := range args {
		kv = append(kv, k+"="+v)
	}
	return shell.EnvsFromSlice(kv)
}

// release is the Release the Dockerfile's ARG defaults describe.
func (d dockerfile) release(t *testing.T) image.Release {
	t.Helper()
	created, err := time.Parse(time.RFC3339, d.args["CREATED"])
	if err != nil {
		t.Fatalf("Dockerfile: ARG CREATED=%q: %v", d.args["CREATED"], err)
	}
	return image.Release{Version: d.args["VERSION"], Commit: d.args["COMMIT"], Created: created}
}

func (d dockerfile) stage(t *testing.T, name string) instructions.Stage {
	t.Helper()
	for _, s := range d.stages {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("Dockerfile: no stage %q", name)
	return instructions.Stage{}
}

// TestDockerfileMatchesImage checks that the Dockerfile's final stage sets
// what the daemonless build sets (user, entrypoint, command, working
// folder, ports, volumes, stop signal, environment, labels), given the same
// release, and that its build stage builds the binary with the same go
// build arguments and assembles the same root filesystem.
func TestDockerfileMatchesImage(t *testing.T) {
	d := readDockerfile(t)
	rel := d.release(t)
	if err := rel.Check(); err != nil {
		t.Fatalf("Dockerfile ARG defaults: %v", err)
	}

	final := d.stages[len(d.stages)-1]
	if final.BaseName != "scratch" {
		t.Errorf("final stage FROM %s, want scratch (the daemonless image has no base)", final.BaseName)
	}
	env := d.env(final)
	expand := func(w string) (string, error) {
		s, _, err := d.lex.ProcessWord(w, env)
		return s, err
	}
	got := v1.Config{Labels: map[string]string{}, ExposedPorts: map[string]struct{}{}, Volumes: map[string]struct{}{}}
	var copies [][]string
	for _, c := range final.Commands {
		if e, ok := c.(instructions.SupportsSingleWordExpansion); ok {
			if err := e.Expand(expand); err != nil {
				t.Fatalf("Dockerfile %s: %v", c.Name(), err)
			}
		}
		switch c := c.(type) {
		case *instructions.ArgCommand:
		case *instructions.UserCommand:
			got.User = c.User
		case *instructions.WorkdirCommand:
			got.WorkingDir = c.Path
		case *instructions.EntrypointCommand:
			if c.PrependShell {
				t.Errorf("ENTRYPOINT in shell form: use the JSON form, so that SIGTERM reaches databus")
			}
			got.Entrypoint = c.CmdLine
		case *instructions.CmdCommand:
			if c.PrependShell {
				t.Errorf("CMD in shell form: use the JSON form")
			}
			got.Cmd = c.CmdLine
		case *instructions.ExposeCommand:
			for _, p := range c.Ports {
				got.ExposedPorts[p] = struct{}{}
			}
		case *instructions.VolumeCommand:
			for _, v := range c.Volumes {
				got.Volumes[v] = struct{}{}
			}
		case *instructions.StopSignalCommand:
			got.StopSignal = c.Signal
		case *instructions.EnvCommand:
			for _, kv := range c.Env {
				got.Env = append(got.Env, kv.Key+"="+kv.Value)
			}
		case *instructions.LabelCommand:
			for _, kv := range c.Labels {
				got.Labels[kv.Key] = kv.Value
			}
		case *instructions.CopyCommand:
			copies = append(copies, append([]string{c.From}, append(c.SourcePaths, c.DestPath)...))
		default:
			t.Errorf("final stage: %s is not in the daemonless image; add it to both or to neither", strings.ToUpper(c.Name()))
		}
	}
	want := image.Config(rel)
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"USER", got.User, want.User},
		{"WORKDIR", got.WorkingDir, want.WorkingDir},
		{"ENTRYPOINT", got.Entrypoint, want.Entrypoint},
		{"CMD", got.Cmd, want.Cmd},
		{"EXPOSE", got.ExposedPorts, want.ExposedPorts},
		{"VOLUME", got.Volumes, want.Volumes},
		{"STOPSIGNAL", got.StopSignal, want.StopSignal},
		{"ENV", got.Env, want.Env},
		{"LABEL", got.Labels, want.Labels},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("Dockerfile %s = %q, the daemonless image has %q", f.name, f.got, f.want)
		}
	}
	wantCopies := [][]string{{"build", "/rootfs/", "/"}, {"build", "/out/databus", image.Entrypoint}}
	if !reflect.DeepEqual(copies, wantCopies) {
		t.Errorf("final stage COPY: %q, want %q (the base layer, then the binary's)", copies, wantCopies)
	}

	build := d.stage(t, "build")
	benv := d.env(build)
	var runs []string
	for _, c := range build.Commands {
		switch c := c.(type) {
		case *instructions.RunCommand:
			runs = append(runs, strings.Join(c.CmdLine, " "))
		case *instructions.CopyCommand:
			if slices.Contains(c.SourcePaths, "deploy/image/rootfs/etc/passwd") &&
				(!slices.Equal(c.SourcePaths, []string{"deploy/image/rootfs/etc/passwd", "deploy/image/rootfs/etc/group"}) || c.DestPath != "/rootfs/etc/") {
				t.Errorf("COPY %q %s: want deploy/image/rootfs/etc/passwd and group into /rootfs/etc/", c.SourcePaths, c.DestPath)
			}
		}
	}

	// The go build: its words after the shell's expansion, with the
	// arguments' defaults, are the daemonless build's.
	var goBuild []string
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			words, err := d.lex.ProcessWords(r, benv)
			if err != nil {
				t.Fatalf("RUN %s: %v", r, err)
			}
			goBuild = words
		}
	}
	i := slices.Index(goBuild, "go")
	if i < 0 {
		t.Fatalf("build stage: no RUN with go build")
	}
	if wantArgs := image.GoBuildArgs(rel, "/out/databus"); !slices.Equal(goBuild[i+1:], wantArgs) {
		t.Errorf("Dockerfile go build:\n  %q\nthe daemonless build:\n  %q", goBuild[i+1:], wantArgs)
	}
	// GOARCH follows --platform: the stage must not give TARGETARCH a
	// default of its own, which would win over BuildKit's.
	for _, e := range []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOFLAGS="} {
		if !slices.Contains(goBuild[:i], e) {
			t.Errorf("Dockerfile go build environment %q lacks %s (for --platform linux/arm64)", goBuild[:i], e)
		}
	}

	// The root filesystem: the same CA bundle path, owners and modes.
	all := strings.Join(runs, "\n")
	for _, s := range []string{
		"cp /etc/ssl/certs/ca-certificates.crt /rootfs" + image.CACertificates,
		"chown 65532:65532 /rootfs/config /rootfs/data /rootfs/home/nonroot",
		"chmod 0700 /rootfs/home/nonroot /rootfs/root",
		"chmod 1777 /rootfs/tmp",
	} {
		if !strings.Contains(all, s) {
			t.Errorf("build stage: no RUN does %q", s)
		}
	}

	// The golang image's Go is the one the main module asks for.
	gomod, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if m == nil || d.args["GO_VERSION"] != string(m[1]) {
		t.Errorf("Dockerfile ARG GO_VERSION=%s, go.mod says go %s", d.args["GO_VERSION"], m[1])
	}
}
