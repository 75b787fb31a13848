package kubernetes

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// pod is the gateway's container run on this machine as the kubelet would
// run it: its args, each volume's mount path replaced by a folder of the
// test, its listeners on free loopback ports (the kubelet would reach the
// pod's address), its environment resolved from the overlay's ConfigMaps
// and Secrets.
type pod struct {
	t      *testing.T
	cmd    *exec.Cmd
	health string // the health listener's address
	admin  string // the admin listener's (loopback), whose /readyz has the detail
	exited chan struct{}
	err    error // the process's exit, once exited is closed
	logs   *lockedBuffer
	probes *corev1.Container
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// localPath maps a path in the container to the test's folder for the
// mount it is on.
func localPath(p string, mounts []corev1.VolumeMount, dirs map[string]string) (string, bool) {
	best := ""
	for _, m := range mounts {
		if (p == m.MountPath || strings.HasPrefix(p, m.MountPath+"/")) && len(m.MountPath) > len(best) {
			best = m.MountPath
		}
	}
	dir, ok := dirs[best]
	if best == "" || !ok {
		return "", false
	}
	return filepath.Join(dir, filepath.FromSlash(strings.TrimPrefix(p, best))), true
}

// containerEnv resolves a container's env from the overlay, as the kubelet
// does (an optional reference to something missing is left out).
func containerEnv(t *testing.T, r *rendered, c *corev1.Container, mounts map[string]string) []string {
	t.Helper()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	if tmp, ok := mounts["/tmp"]; ok {
		env = append(env, "TMPDIR="+tmp)
	}
	for _, e := range c.Env {
		v, ok := e.Value, true
		switch {
		case e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil:
			v, ok = r.configMapValue(e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Key)
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			v, ok = r.secretValue(e.ValueFrom.SecretKeyRef.Name, e.ValueFrom.SecretKeyRef.Key)
		case e.ValueFrom != nil:
			t.Fatalf("env %s: a valueFrom the test cannot resolve", e.Name)
		}
		if ok {
			env = append(env, e.Name+"="+v)
		}
	}
	return env
}

// startPod starts the gateway container of f with dirs (mount path ->
// folder) and waits until it serves.
func startPod(t *testing.T, bin string, r *rendered, f *gatewayFacts, dirs map[string]string) *pod {
	t.Helper()
	c := f.Container
	args := []string{"serve", "--admin-listen=127.0.0.1:0"}
	for _, a := range c.Args[1:] {
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		switch {
		case !hasVal:
		case strings.HasSuffix(name, "listen"):
			val = "127.0.0.1:0"
		case path.IsAbs(val):
			local, ok := localPath(val, c.VolumeMounts, dirs)
			if !ok {
				t.Fatalf("arg %s: %s is on no volume of the pod", a, val)
			}
			val = local
		}
		if hasVal {
			a = "--" + name + "=" + val
		}
		args = append(args, a)
	}
	p := &pod{t: t, logs: &lockedBuffer{}, exited: make(chan struct{}), probes: c}
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = containerEnv(t, r, c, dirs)
	p.cmd.Stdout = io.Discard // the access log's JSON lines (export: stdout)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	type listeners struct{ health, admin string }
	serving := make(chan listeners, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			p.logs.Write(append(append([]byte{}, line...), '\n'))
			var rec struct {
				Msg    string `json:"msg"`
				Health string `json:"health"`
				Admin  string `json:"admin"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "databus serving" {
				select {
				case serving <- listeners{rec.Health, rec.Admin}:
				default:
				}
			}
		}
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			p.cmd.Process.Kill()
			<-p.exited
		}
	})
	select {
	case l := <-serving:
		p.health, p.admin = l.health, l.admin
	case <-p.exited:
		t.Fatalf("databus %s exited before serving: %v\n%s", strings.Join(args, " "), p.err, p.logs)
	case <-time.After(time.Minute):
		t.Fatalf("databus %s: not serving after a minute\n%s", strings.Join(args, " "), p.logs)
	}
	if p.health == "" {
		t.Fatalf("databus serves no health listener\n%s", p.logs)
	}
	return p
}

// get answers a GET on the health listener.
func (p *pod) get(urlPath string) (int, []byte) {
	p.t.Helper()
	return p.getFrom(p.health, urlPath)
}

// getFrom answers a GET on the listener at addr.
func (p *pod) getFrom(addr, urlPath string) (int, []byte) {
	p.t.Helper()
	resp, err := http.Get("http://" + addr + urlPath)
	if err != nil {
		p.t.Fatalf("GET %s: %v\n%s", urlPath, err, p.logs)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, b
}

// probe runs the kubelet's probes of the container against the pod.
func (p *pod) probe() {
	p.t.Helper()
	for name, pr := range map[string]*corev1.Probe{"readiness": p.probes.ReadinessProbe, "liveness": p.probes.LivenessProbe, "startup": p.probes.StartupProbe} {
		if pr == nil {
			continue
		}
		if code, body := p.get(pr.HTTPGet.Path); code != http.StatusOK {
			p.t.Errorf("%s probe GET %s: %d %s\n%s", name, pr.HTTPGet.Path, code, body, p.logs)
		}
	}
	if code, body := p.get("/metrics"); code != http.StatusOK || !bytes.Contains(body, []byte("databus_config_last_reload_success 1")) {
		p.t.Errorf("GET /metrics (the scrape): %d, without databus_config_last_reload_success 1", code)
	}
}

// readyz is the /readyz body.
type readyz struct {
	Ready      bool   `json:"ready"`
	Revision   string `json:"revision"`
	LastReload struct {
		OK     bool   `json:"ok"`
		Reason string `json:"reason"`
	} `json:"lastReload"`
	Git *struct {
		Hash string `json:"hash"`
	} `json:"git"`
}

// ready reads the admin listener's /readyz: the health listener's says
// only which checks passed.
func (p *pod) ready() readyz {
	p.t.Helper()
	code, body := p.getFrom(p.admin, "/readyz")
	var r readyz
	if err := json.Unmarshal(body, &r); err != nil || code != http.StatusOK {
		p.t.Fatalf("GET /readyz: %d %s (%v)\n%s", code, body, err, p.logs)
	}
	return r
}

// waitFor polls /readyz until cond holds, for at most a minute.
func (p *pod) waitFor(what string, cond func(readyz) bool) readyz {
	p.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		r := p.ready()
		if cond(r) {
			return r
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("after a minute, still not %s: %+v\n%s", what, r, p.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop sends SIGTERM, as the kubelet does after the preStop hook, and
// waits for a clean exit within the drain timeout (plus the flush).
func (p *pod) stop(drain time.Duration) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Fatal(err)
	}
	select {
	case <-p.exited:
		if p.err != nil {
			p.t.Errorf("databus exited with %v after SIGTERM\n%s", p.err, p.logs)
		}
	case <-time.After(drain + 10*time.Second):
		p.t.Errorf("databus still running %s after SIGTERM (the kubelet kills it then)\n%s", drain+10*time.Second, p.logs)
	}
}

// runInit runs an init container's sh -c script as the kubelet would:
// its env resolved from the overlay, paths of its mounts mapped to dirs.
func runInit(t *testing.T, r *rendered, ic *corev1.Container, dirs map[string]string, override map[string]string) string {
	t.Helper()
	if len(ic.Command) != 3 || ic.Command[0] != "sh" || ic.Command[1] != "-c" {
		t.Fatalf("init container %s: command %q, not sh -c SCRIPT", ic.Name, ic.Command)
	}
	env := containerEnv(t, r, ic, dirs)
	for i, kv := range env {
		name, val, _ := strings.Cut(kv, "=")
		if path.IsAbs(val) && name != "PATH" {
			if local, ok := localPath(val, ic.VolumeMounts, dirs); ok {
				env[i] = name + "=" + local
			}
		}
		if v, ok := override[name]; ok {
			env[i] = name + "=" + v
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", ic.Command[2])
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("init container %s: %v\n%s", ic.Name, err, out)
	}
	return string(out)
}

// git runs git in dir for the test's source repository.
func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=Databus test", "-c", "user.email=test@databus.invalid", "-c", "commit.gpgsign=false"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func writeTree(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	for p, b := range files {
		full := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// changeOneAPI returns files with a comment added to the first API file,
// and that file's path.
func changeOneAPI(files map[string][]byte) (map[string][]byte, string) {
	out := map[string][]byte{}
	changed := ""
	for _, p := range sortedKeys(files) {
		out[p] = files[p]
		if changed == "" && strings.HasPrefix(p, "apis/") {
			out[p] = append(append([]byte{}, files[p]...), []byte(fmt.Sprintf("\n# changed at %s\n", time.Now().Format(time.RFC3339Nano)))...)
			changed = p
		}
	}
	return out, changed
}
