package kubernetes

import (
	"errors"
	"fmt"
	"net"
	"path"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// flagSpec is one flag of `databus serve --help`.
type flagSpec struct {
	Type    string // string, duration, int, bool
	Default string
}

var (
	helpFlagRE    = regexp.MustCompile(`^  -([a-z][a-z0-9-]*)(?: (\w+))?$`)
	helpDefaultRE = regexp.MustCompile(`\(default ("?)(.*?)("?)\)$`)
)

// parseHelp reads the flags of a Go flag.FlagSet's usage text.
func parseHelp(help string) (map[string]flagSpec, error) {
	flags := map[string]flagSpec{}
	var last string
	for _, line := range strings.Split(help, "\n") {
		if m := helpFlagRE.FindStringSubmatch(line); m != nil {
			typ := m[2]
			if typ == "" {
				typ = "bool"
			}
			last = m[1]
			flags[last] = flagSpec{Type: typ}
			continue
		}
		if last != "" && strings.HasPrefix(line, "    \t") {
			if m := helpDefaultRE.FindStringSubmatch(line); m != nil {
				f := flags[last]
				f.Default = m[2]
				flags[last] = f
			}
		}
	}
	for _, need := range []string{"dir", "listen", "health-listen", "storage", "drain-timeout"} {
		if _, ok := flags[need]; !ok {
			return nil, fmt.Errorf("databus serve --help lists no --%s:\n%s", need, help)
		}
	}
	return flags, nil
}

// serveArgs parses a container's args the way serve's flag set does, and
// fills in the defaults: flag name -> value.
func serveArgs(args []string, flags map[string]flagSpec) (map[string]string, error) {
	if len(args) == 0 || args[0] != "serve" {
		return nil, fmt.Errorf("args %q: the image's entrypoint is /databus, so the first arg must be the command serve", args)
	}
	got := map[string]string{}
	var errs []error
	for i := 1; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			errs = append(errs, fmt.Errorf("arg %q: databus serve takes no positional arguments (use --dir)", a))
			continue
		}
		name, val, hasVal := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(a, "-"), "-"), "=")
		spec, ok := flags[name]
		if !ok {
			errs = append(errs, fmt.Errorf("arg %q: --%s is not a flag of databus serve (its flags: %s)", a, name, strings.Join(sortedKeys(flags), ", ")))
			continue
		}
		if !hasVal {
			if spec.Type == "bool" {
				val = "true"
			} else if i+1 < len(args) {
				i++
				val = args[i]
			} else {
				errs = append(errs, fmt.Errorf("arg %q: --%s needs a value", a, name))
				continue
			}
		}
		if _, dup := got[name]; dup {
			errs = append(errs, fmt.Errorf("arg %q: --%s is given twice", a, name))
		}
		if err := checkValue(name, spec.Type, val); err != nil {
			errs = append(errs, fmt.Errorf("arg %q: %w", a, err))
		}
		got[name] = val
	}
	for name, spec := range flags {
		if _, ok := got[name]; !ok {
			got[name] = spec.Default
		}
	}
	return got, errors.Join(errs...)
}

func checkValue(name, typ, val string) error {
	var err error
	switch typ {
	case "duration":
		_, err = time.ParseDuration(val)
	case "int":
		_, err = strconv.Atoi(val)
	case "bool":
		_, err = strconv.ParseBool(val)
	}
	if err == nil && strings.HasSuffix(name, "listen") && val != "" {
		_, err = listenPort(val)
	}
	if err != nil {
		return fmt.Errorf("not a valid %s for --%s: %v", typ, name, err)
	}
	return nil
}

func listenPort(addr string) (int, error) {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0, fmt.Errorf("%q: not a port number", p)
	}
	return n, nil
}

func listenHost(addr string) string { h, _, _ := net.SplitHostPort(addr); return h }

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback())
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// problems collects what a check finds, each naming its object.
type problems struct{ errs []error }

func (p *problems) add(where string, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", where, fmt.Sprintf(format, args...)))
}

func (p *problems) err() error { return errors.Join(p.errs...) }

// gatewayFacts is what the checks learnt of the gateway's pod, for the
// tests that start it.
type gatewayFacts struct {
	Deployment *appsv1.Deployment
	Container  *corev1.Container
	Flags      map[string]string // every serve flag's value, defaults included
	Mounts     map[string]corev1.VolumeMount
	ConfigDir  string            // --dir
	Config     map[string][]byte // what the pod sees under --dir (nil: not from a ConfigMap)
	GitSync    bool
}

// check runs every check on a rendered overlay. Deployments, Services,
// PodDisruptionBudgets, NetworkPolicies and PodMonitors must fit each other
// as the API server and the kubelet will need; the gateway's container must
// fit the databus binary (flags, ports, paths, probes, drain).
func check(r *rendered, flags map[string]flagSpec) (*gatewayFacts, error) {
	var p problems
	for _, o := range r.All {
		checkMeta(&p, o.String(), o.Obj)
	}
	pods := map[string]*corev1.PodTemplateSpec{}
	for _, d := range r.Deployments {
		where := "Deployment/" + d.Name
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			p.add(where, "selector %v: %v", d.Spec.Selector, err)
		} else if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
			p.add(where, "selector %s does not match the pod template's labels %v", sel, d.Spec.Template.Labels)
		}
		pods[d.Name] = &d.Spec.Template
		checkPod(&p, r, where, &d.Spec.Template.Spec)
	}
	matching := func(where string, ls *metav1.LabelSelector) []*corev1.PodTemplateSpec {
		sel, err := metav1.LabelSelectorAsSelector(ls)
		if err != nil || sel.Empty() {
			p.add(where, "selector %v: %v", ls, err)
			return nil
		}
		var out []*corev1.PodTemplateSpec
		for _, name := range sortedKeys(pods) {
			if sel.Matches(labels.Set(pods[name].Labels)) {
				out = append(out, pods[name])
			}
		}
		if len(out) == 0 {
			p.add(where, "selector %s matches no pod of the overlay", sel)
		}
		return out
	}
	for _, s := range r.Services {
		where := "Service/" + s.Name
		if errs := validation.IsDNS1035Label(s.Name); len(errs) > 0 {
			p.add(where, "name: %s", strings.Join(errs, "; "))
		}
		matched := matching(where, &metav1.LabelSelector{MatchLabels: s.Spec.Selector})
		for _, sp := range s.Spec.Ports {
			for _, pod := range matched {
				if _, ok := podPort(&pod.Spec, sp.TargetPort); !ok {
					p.add(where, "port %s: targetPort %s is no container port of the pods it selects", sp.Name, sp.TargetPort.String())
				}
			}
		}
	}
	for _, b := range r.PDBs {
		matching("PodDisruptionBudget/"+b.Name, b.Spec.Selector)
	}
	for _, np := range r.NetPols {
		where := "NetworkPolicy/" + np.Name
		selected := matching(where, &np.Spec.PodSelector)
		for _, in := range np.Spec.Ingress {
			for _, from := range in.From {
				if from.PodSelector != nil {
					matching(where+" ingress from", from.PodSelector)
				}
			}
			for _, port := range in.Ports {
				for _, pod := range selected {
					if port.Port != nil {
						if _, ok := podPort(&pod.Spec, *port.Port); !ok {
							p.add(where, "ingress port %s is no container port of the pods it selects", port.Port.String())
						}
					}
				}
			}
		}
	}

	dep, c, err := r.gateway()
	if err != nil {
		p.errs = append(p.errs, err)
		return nil, p.err()
	}
	where := "Deployment/" + dep.Name + " container " + c.Name
	if len(c.Command) > 0 {
		p.add(where, "command %q replaces the image's entrypoint /databus: set args only", c.Command)
	}
	vals, err := serveArgs(c.Args, flags)
	if err != nil {
		p.add(where, "%v", err)
	}
	f := &gatewayFacts{Deployment: dep, Container: c, Flags: vals, Mounts: map[string]corev1.VolumeMount{}, ConfigDir: vals["dir"]}
	f.GitSync, _ = strconv.ParseBool(vals["git-sync"])
	pod := &dep.Spec.Template.Spec

	// Ports: the portal and the health listener, by the names the
	// probes, the Service and the scrape configuration use.
	listen, errL := listenPort(vals["listen"])
	health, errH := listenPort(vals["health-listen"])
	if errL != nil || errH != nil {
		p.add(where, "--listen %q and --health-listen %q must both be set to addresses with a port (the probes and Prometheus need the health listener): %v %v", vals["listen"], vals["health-listen"], errL, errH)
	}
	for _, flag := range []string{"listen", "health-listen"} {
		if h := listenHost(vals[flag]); h != "" && h != "0.0.0.0" && h != "::" {
			p.add(where, "--%s %s binds %s only: the kubelet and the Service reach the pod's address", flag, vals[flag], h)
		}
	}
	ports := map[string]int32{}
	for _, cp := range c.Ports {
		ports[cp.Name] = cp.ContainerPort
	}
	if ports["portal"] != int32(listen) {
		p.add(where, "container port portal is %d; --listen %s listens on %d", ports["portal"], vals["listen"], listen)
	}
	if ports["health"] != int32(health) {
		p.add(where, "container port health is %d; --health-listen %s listens on %d", ports["health"], vals["health-listen"], health)
	}
	for _, cp := range c.Ports {
		if cp.ContainerPort != int32(listen) && cp.ContainerPort != int32(health) {
			p.add(where, "container port %s (%d) is no port databus serve listens on (portal %d, health %d; the admin listener %s stays on loopback)", cp.Name, cp.ContainerPort, listen, health, vals["admin-listen"])
		}
	}
	if !isLoopback(listenHost(vals["admin-listen"])) {
		p.add(where, "--admin-listen %s: the admin API leaves the pod; keep it on loopback (kubectl port-forward reaches it)", vals["admin-listen"])
	}

	// Probes: on the health listener, liveness on /healthz (a Redis
	// outage must not restart the gateway), readiness on /readyz.
	probe := func(name string, pr *corev1.Probe, paths ...string) {
		if pr == nil {
			p.add(where, "no %s probe", name)
			return
		}
		if pr.HTTPGet == nil {
			p.add(where, "%s probe: not an httpGet", name)
			return
		}
		n, ok := containerPort(c, pr.HTTPGet.Port)
		if !ok || n != int32(health) {
			p.add(where, "%s probe: port %s is not the health listener's port %d (--health-listen %s)", name, pr.HTTPGet.Port.String(), health, vals["health-listen"])
		}
		if !contains(paths, pr.HTTPGet.Path) {
			p.add(where, "%s probe: path %q; the health listener answers %s for it", name, pr.HTTPGet.Path, strings.Join(paths, " or "))
		}
		if pr.HTTPGet.Scheme != "" && pr.HTTPGet.Scheme != corev1.URISchemeHTTP {
			p.add(where, "%s probe: scheme %s; the health listener speaks HTTP", name, pr.HTTPGet.Scheme)
		}
	}
	probe("readiness", c.ReadinessProbe, "/readyz")
	probe("liveness", c.LivenessProbe, "/healthz")
	if c.StartupProbe != nil {
		probe("startup", c.StartupProbe, "/healthz", "/readyz")
	}

	// Prometheus: the pod annotations of kubernetes_sd and any PodMonitor
	// scrape the health listener's /metrics.
	ann := dep.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != strconv.Itoa(health) || ann["prometheus.io/path"] != "/metrics" {
		p.add(where, "pod annotations prometheus.io/scrape=%q port=%q path=%q; want \"true\", %q (the health listener), \"/metrics\"",
			ann["prometheus.io/scrape"], ann["prometheus.io/port"], ann["prometheus.io/path"], strconv.Itoa(health))
	}
	for _, pm := range r.PodMonitors {
		pw := "PodMonitor/" + pm.Name
		sel, err := metav1.LabelSelectorAsSelector(&pm.Spec.Selector)
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(dep.Spec.Template.Labels)) {
			p.add(pw, "selector %v does not select the gateway's pods", pm.Spec.Selector)
		}
		for _, ep := range pm.Spec.PodMetricsEndpoints {
			port := ""
			if ep.Port != nil {
				port = *ep.Port
			}
			if n, ok := containerPort(c, intstr.FromString(port)); !ok || n != int32(health) || ep.Path != "/metrics" {
				p.add(pw, "endpoint port %q path %q; want the health listener's port (%d) and /metrics", port, ep.Path, health)
			}
		}
	}

	// Shutdown: the kubelet's grace period covers the preStop pause and
	// the drain, or in-flight requests are cut and the access log's queue
	// is not flushed.
	drain, _ := time.ParseDuration(vals["drain-timeout"])
	grace := int64(30)
	if pod.TerminationGracePeriodSeconds != nil {
		grace = *pod.TerminationGracePeriodSeconds
	}
	var pause int64
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil {
		if c.Lifecycle.PreStop.Sleep == nil {
			p.add(where, "preStop: use the sleep action, which needs nothing from the image (an exec needs a shell the image may lack)")
		} else {
			pause = c.Lifecycle.PreStop.Sleep.Seconds
		}
	}
	if time.Duration(grace)*time.Second <= time.Duration(pause)*time.Second+drain {
		p.add(where, "terminationGracePeriodSeconds %d is not above the preStop sleep (%ds) plus --drain-timeout (%s)", grace, pause, drain)
	}

	// Security: the image's user, nothing writable but volumes.
	if uid := effectiveUser(pod, c); uid == nil || *uid != 65532 {
		p.add(where, "runAsUser %v; the image runs as 65532 (the volumes are made writable for fsGroup 65532)", deref(uid))
	}

	// Paths: --dir on the config volume, the bbolt file on a writable
	// volume of the right kind, /tmp writable for git sync's checks.
	volumes := map[string]*corev1.Volume{}
	for i := range pod.Volumes {
		volumes[pod.Volumes[i].Name] = &pod.Volumes[i]
	}
	for _, m := range c.VolumeMounts {
		f.Mounts[m.MountPath] = m
	}
	mountOf := func(p string) (corev1.VolumeMount, bool) {
		var best corev1.VolumeMount
		found := false
		for mp, m := range f.Mounts {
			if (p == mp || strings.HasPrefix(p, strings.TrimSuffix(mp, "/")+"/")) && len(mp) >= len(best.MountPath) {
				best, found = m, true
			}
		}
		return best, found
	}
	cfgMount, ok := mountOf(f.ConfigDir)
	if !ok || !path.IsAbs(f.ConfigDir) {
		p.add(where, "--dir %s is on no volume", f.ConfigDir)
	}
	storage := vals["storage"]
	dataMount, ok := mountOf(path.Dir(storage))
	if storage == "" || !ok || dataMount.ReadOnly {
		p.add(where, "--storage %q (the bbolt file) is not on a writable volume: the root filesystem is read-only", storage)
	} else if dataMount.MountPath == cfgMount.MountPath {
		p.add(where, "--storage %s is on the config volume", storage)
	}
	if m, ok := mountOf("/tmp"); !ok || m.ReadOnly {
		p.add(where, "/tmp is not a writable volume: git sync checks each revision in a temporary folder")
	}
	replicas := int32(1)
	if dep.Spec.Replicas != nil {
		replicas = *dep.Spec.Replicas
	}
	if v := volumes[dataMount.Name]; v != nil {
		switch {
		case v.PersistentVolumeClaim != nil:
			if replicas > 1 {
				p.add(where, "%d replicas share the PersistentVolumeClaim %s: each replica needs its own bbolt file (bbolt locks it)", replicas, v.PersistentVolumeClaim.ClaimName)
			}
			if dep.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
				p.add(where, "strategy %q with the bbolt file on PersistentVolumeClaim %s: a new pod would wait on the old one's lock (and its ReadWriteOnce volume); use Recreate", dep.Spec.Strategy.Type, v.PersistentVolumeClaim.ClaimName)
			}
		case v.Ephemeral != nil, v.EmptyDir != nil:
		default:
			p.add(where, "volume %s holds the bbolt file but is neither a PersistentVolumeClaim, an ephemeral volume nor an emptyDir", v.Name)
		}
	}

	// The configuration: from a ConfigMap (read-only, as the pod sees
	// it) or a git checkout that an init container clones and serve
	// --git-sync moves.
	if v := volumes[cfgMount.Name]; v != nil {
		switch {
		case f.GitSync:
			if cfgMount.ReadOnly || (v.EmptyDir == nil && v.PersistentVolumeClaim == nil && v.Ephemeral == nil) {
				p.add(where, "--git-sync moves the checkout at --dir %s: its volume %s must be a writable emptyDir or claim", f.ConfigDir, v.Name)
			}
			cloned := false
			for _, ic := range pod.InitContainers {
				for _, m := range ic.VolumeMounts {
					if m.Name == v.Name && !m.ReadOnly && envValue(&ic, "CHECKOUT") == path.Join(m.MountPath, strings.TrimPrefix(f.ConfigDir, cfgMount.MountPath)) {
						cloned = true
					}
				}
			}
			if !cloned {
				p.add(where, "--git-sync needs --dir %s to be a git checkout: no init container clones into it (env CHECKOUT)", f.ConfigDir)
			}
		case v.Projected != nil || v.ConfigMap != nil:
			if !cfgMount.ReadOnly {
				p.add(where, "the config volume %s from a ConfigMap is mounted writable", v.Name)
			}
			tree, err := projected(r, v)
			if err != nil {
				p.add(where, "volume %s: %v", v.Name, err)
				break
			}
			sub := strings.TrimPrefix(strings.TrimPrefix(f.ConfigDir, cfgMount.MountPath), "/")
			f.Config = map[string][]byte{}
			for rel, b := range tree {
				if sub == "" {
					f.Config[rel] = b
				} else if strings.HasPrefix(rel, sub+"/") {
					f.Config[strings.TrimPrefix(rel, sub+"/")] = b
				}
			}
			if _, ok := f.Config["databus.yaml"]; !ok {
				p.add(where, "the pod's --dir %s has no databus.yaml (projected: %s)", f.ConfigDir, strings.Join(sortedKeys(tree), ", "))
			}
		default:
			p.add(where, "--dir %s is on volume %s, neither a ConfigMap projection nor a git checkout", f.ConfigDir, v.Name)
		}
	}

	// What the configuration needs of the pod: every env: secret
	// reference set in the container, and shared stores when there are
	// several replicas (embedded nonces and limits are per replica).
	if f.Config != nil {
		env := map[string]bool{}
		for _, e := range c.Env {
			env[e.Name] = true
		}
		for _, ref := range secretRefs(f.Config) {
			if name, ok := strings.CutPrefix(ref.Ref, "env:"); ok && !env[name] && len(c.EnvFrom) == 0 {
				p.add(where, "%s refers to the secret env:%s, which the container's env does not set", ref.File, name)
			}
		}
		if replicas > 1 && !usesRedis(f.Config["databus.yaml"]) {
			p.add(where, "%d replicas with the embedded stores: each would keep its own nonces and rate-limit counters (a replay or a caller over its limit gets through on another replica); set redis in databus.yaml", replicas)
		}
	}
	return f, p.err()
}

// checkPod checks what the API server and the kubelet check of any pod
// of the overlay: names, one source per volume, mounts of known volumes,
// references that resolve, resources, and the security settings every
// container here keeps (non-root, read-only root, no privilege escalation,
// no capabilities).
func checkPod(p *problems, r *rendered, where string, pod *corev1.PodSpec) {
	volumes := map[string]bool{}
	for _, v := range pod.Volumes {
		if errs := validation.IsDNS1123Label(v.Name); len(errs) > 0 {
			p.add(where, "volume %q: %s", v.Name, strings.Join(errs, "; "))
		}
		if volumes[v.Name] {
			p.add(where, "volume %s is defined twice", v.Name)
		}
		volumes[v.Name] = true
		if n := sources(v.VolumeSource); n != 1 {
			p.add(where, "volume %s has %d sources; the API server takes exactly one (a patch that replaces one must null the other)", v.Name, n)
		}
		switch {
		case v.ConfigMap != nil:
			checkRef(p, r, where, "volume "+v.Name, "ConfigMap", v.ConfigMap.Name, v.ConfigMap.Optional, itemKeys(v.ConfigMap.Items)...)
		case v.Secret != nil:
			checkRef(p, r, where, "volume "+v.Name, "Secret", v.Secret.SecretName, v.Secret.Optional, itemKeys(v.Secret.Items)...)
		case v.PersistentVolumeClaim != nil:
			if _, ok := r.PVCs[v.PersistentVolumeClaim.ClaimName]; !ok {
				p.add(where, "volume %s: no PersistentVolumeClaim %s in the overlay", v.Name, v.PersistentVolumeClaim.ClaimName)
			}
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					checkRef(p, r, where, "volume "+v.Name, "ConfigMap", s.ConfigMap.Name, s.ConfigMap.Optional, itemKeys(s.ConfigMap.Items)...)
				}
				if s.Secret != nil {
					checkRef(p, r, where, "volume "+v.Name, "Secret", s.Secret.Name, s.Secret.Optional, itemKeys(s.Secret.Items)...)
				}
			}
		}
	}
	if pod.SecurityContext == nil || pod.SecurityContext.SeccompProfile == nil || pod.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		p.add(where, "the pod's seccompProfile is not RuntimeDefault")
	}
	all := append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...)
	for i := range all {
		c := &all[i]
		cw := where + " container " + c.Name
		if errs := validation.IsDNS1123Label(c.Name); len(errs) > 0 {
			p.add(cw, "name: %s", strings.Join(errs, "; "))
		}
		for _, cp := range c.Ports {
			if errs := validation.IsValidPortName(cp.Name); len(errs) > 0 {
				p.add(cw, "port name %q: %s", cp.Name, strings.Join(errs, "; "))
			}
		}
		for _, m := range c.VolumeMounts {
			if !volumes[m.Name] {
				p.add(cw, "mounts volume %s, which the pod does not define", m.Name)
			}
		}
		for _, e := range c.Env {
			if errs := validation.IsEnvVarName(e.Name); len(errs) > 0 {
				p.add(cw, "env %q: %s", e.Name, strings.Join(errs, "; "))
			}
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				ref := e.ValueFrom.ConfigMapKeyRef
				checkRef(p, r, cw, "env "+e.Name, "ConfigMap", ref.Name, ref.Optional, ref.Key)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				ref := e.ValueFrom.SecretKeyRef
				checkRef(p, r, cw, "env "+e.Name, "Secret", ref.Name, ref.Optional, ref.Key)
			}
		}
		sc := c.SecurityContext
		if sc == nil {
			p.add(cw, "no securityContext")
			continue
		}
		nonRoot := sc.RunAsNonRoot
		if nonRoot == nil && pod.SecurityContext != nil {
			nonRoot = pod.SecurityContext.RunAsNonRoot
		}
		if uid := effectiveUser(pod, c); nonRoot == nil || !*nonRoot || uid == nil || *uid == 0 {
			p.add(cw, "not runAsNonRoot with a non-zero runAsUser (runAsNonRoot %v, runAsUser %v)", deref(nonRoot), deref(uid))
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			p.add(cw, "readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			p.add(cw, "allowPrivilegeEscalation is not false")
		}
		if sc.Privileged != nil && *sc.Privileged {
			p.add(cw, "privileged")
		}
		if sc.Capabilities == nil || !contains(capNames(sc.Capabilities.Drop), "ALL") || len(sc.Capabilities.Add) > 0 {
			p.add(cw, "capabilities: drop ALL and add none")
		}
		checkResources(p, cw, c)
	}
}

// checkResources: requests and limits of CPU and memory, requests within
// limits, and GOMEMLIMIT (Go's soft limit) below the memory limit.
func checkResources(p *problems, where string, c *corev1.Container) {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okR := c.Resources.Requests[name]
		lim, okL := c.Resources.Limits[name]
		if !okR || !okL {
			p.add(where, "resources: %s request and limit must both be set", name)
			continue
		}
		if req.Cmp(lim) > 0 {
			p.add(where, "resources: %s request %s above its limit %s", name, req.String(), lim.String())
		}
	}
	if v := envValue(c, "GOMEMLIMIT"); v != "" {
		n, err := goMemLimit(v)
		lim := c.Resources.Limits[corev1.ResourceMemory]
		if err != nil || n >= lim.Value() {
			p.add(where, "GOMEMLIMIT %s (%d bytes, %v) must be below the memory limit %s (%d bytes)", v, n, err, lim.String(), lim.Value())
		}
	}
}

// goMemLimit parses GOMEMLIMIT as the Go runtime does (bytes, or a number
// with B, KiB, MiB, GiB or TiB).
func goMemLimit(s string) (int64, error) {
	units := []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}}
	for _, u := range units {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(num, 10, 64)
			return n * u.mult, err
		}
	}
	return strconv.ParseInt(s, 10, 64)
}

// checkMeta: object names are DNS subdomains and labels are valid.
func checkMeta(p *problems, where string, obj any) {
	acc, ok := obj.(metav1.Object)
	if !ok {
		p.add(where, "no metadata")
		return
	}
	if errs := validation.IsDNS1123Subdomain(acc.GetName()); len(errs) > 0 {
		p.add(where, "name %q: %s", acc.GetName(), strings.Join(errs, "; "))
	}
	if errs := metav1validation.ValidateLabels(acc.GetLabels(), field.NewPath("metadata", "labels")); len(errs) > 0 {
		p.add(where, "%v", errs.ToAggregate())
	}
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		size := 0
		for k, v := range cm.Data {
			size += len(v)
			if errs := validation.IsConfigMapKey(k); len(errs) > 0 {
				p.add(where, "key %q: %s", k, strings.Join(errs, "; "))
			}
		}
		for k, v := range cm.BinaryData {
			size += len(v)
			if _, dup := cm.Data[k]; dup {
				p.add(where, "key %q is in data and binaryData", k)
			}
		}
		if size > 1<<20 {
			p.add(where, "%d bytes: a ConfigMap holds at most 1 MiB", size)
		}
	}
}

func checkRef(p *problems, r *rendered, where, what, kind, name string, optional *bool, keys ...string) {
	if optional != nil && *optional {
		return
	}
	var has func(string) bool
	switch kind {
	case "ConfigMap":
		if _, ok := r.ConfigMaps[name]; !ok {
			p.add(where, "%s: no ConfigMap %s in the overlay", what, name)
			return
		}
		has = func(k string) bool { _, ok := r.configMapValue(name, k); return ok }
	case "Secret":
		if _, ok := r.Secrets[name]; !ok {
			p.add(where, "%s: no Secret %s in the overlay (create it, or mark the reference optional)", what, name)
			return
		}
		has = func(k string) bool { _, ok := r.secretValue(name, k); return ok }
	}
	for _, k := range keys {
		if !has(k) {
			p.add(where, "%s: %s %s has no key %s (the pod would not start)", what, kind, name, k)
		}
	}
}

// projected is the tree a ConfigMap, Secret or projected volume shows the
// pod: path -> content.
func projected(r *rendered, v *corev1.Volume) (map[string][]byte, error) {
	tree := map[string][]byte{}
	add := func(kind, name string, items []corev1.KeyToPath, all []string, get func(string) (string, bool)) error {
		if len(items) == 0 {
			for _, k := range all {
				items = append(items, corev1.KeyToPath{Key: k, Path: k})
			}
		}
		for _, it := range items {
			b, ok := get(it.Key)
			if !ok {
				return fmt.Errorf("%s %s has no key %s", kind, name, it.Key)
			}
			if _, dup := tree[it.Path]; dup {
				return fmt.Errorf("two items project to %s", it.Path)
			}
			if it.Path != path.Clean(it.Path) || path.IsAbs(it.Path) || strings.HasPrefix(it.Path, "..") {
				return fmt.Errorf("item %s: path %q is not a clean relative path", it.Key, it.Path)
			}
			tree[it.Path] = []byte(b)
		}
		return nil
	}
	cmSource := func(name string, items []corev1.KeyToPath) error {
		cm, ok := r.ConfigMaps[name]
		if !ok {
			return fmt.Errorf("no ConfigMap %s", name)
		}
		keys := append(sortedKeys(cm.Data), sortedKeys(cm.BinaryData)...)
		if len(items) > 0 {
			projectedKeys := map[string]bool{}
			for _, it := range items {
				projectedKeys[it.Key] = true
			}
			for _, k := range keys {
				if !projectedKeys[k] {
					return fmt.Errorf("ConfigMap %s key %s is projected nowhere (its items leave it out): add it, or drop the key", name, k)
				}
			}
		}
		return add("ConfigMap", name, items, keys, func(k string) (string, bool) { return r.configMapValue(name, k) })
	}
	secretSource := func(name string, items []corev1.KeyToPath) error {
		s, ok := r.Secrets[name]
		if !ok {
			return fmt.Errorf("no Secret %s", name)
		}
		return add("Secret", name, items, append(sortedKeys(s.Data), sortedKeys(s.StringData)...), func(k string) (string, bool) { return r.secretValue(name, k) })
	}
	switch {
	case v.ConfigMap != nil:
		return tree, cmSource(v.ConfigMap.Name, v.ConfigMap.Items)
	case v.Projected != nil:
		for _, s := range v.Projected.Sources {
			var err error
			switch {
			case s.ConfigMap != nil:
				err = cmSource(s.ConfigMap.Name, s.ConfigMap.Items)
			case s.Secret != nil:
				err = secretSource(s.Secret.Name, s.Secret.Items)
			default:
				err = errors.New("a projected source other than a ConfigMap or Secret: the test cannot lay it out")
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return tree, nil
}

// secretRef is one secretRef of a repository's YAML files.
type secretRef struct{ File, Ref string }

func secretRefs(tree map[string][]byte) []secretRef {
	var out []secretRef
	var walk func(file string, n *yaml.Node)
	walk = func(file string, n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == "secretRef" && n.Content[i+1].Kind == yaml.ScalarNode {
					out = append(out, secretRef{file, n.Content[i+1].Value})
				}
			}
		}
		for _, c := range n.Content {
			walk(file, c)
		}
	}
	for _, file := range sortedKeys(tree) {
		if !strings.HasSuffix(file, ".yaml") && !strings.HasSuffix(file, ".yml") {
			continue
		}
		var doc yaml.Node
		if yaml.Unmarshal(tree[file], &doc) == nil {
			walk(file, &doc)
		}
	}
	return out
}

func usesRedis(settings []byte) bool {
	var s struct {
		Redis struct {
			Addr  string   `yaml:"addr"`
			Addrs []string `yaml:"addrs"`
		} `yaml:"redis"`
	}
	return yaml.Unmarshal(settings, &s) == nil && (s.Redis.Addr != "" || len(s.Redis.Addrs) > 0)
}

func sources(vs corev1.VolumeSource) int {
	n := 0
	v := reflect.ValueOf(vs)
	for i := 0; i < v.NumField(); i++ {
		if !v.Field(i).IsNil() {
			n++
		}
	}
	return n
}

func itemKeys(items []corev1.KeyToPath) []string {
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Key)
	}
	return keys
}

func podPort(pod *corev1.PodSpec, port intstr.IntOrString) (int32, bool) {
	for i := range pod.Containers {
		if n, ok := containerPort(&pod.Containers[i], port); ok {
			return n, true
		}
	}
	return 0, false
}

func containerPort(c *corev1.Container, port intstr.IntOrString) (int32, bool) {
	for _, cp := range c.Ports {
		if (port.Type == intstr.String && cp.Name == port.StrVal) || (port.Type == intstr.Int && cp.ContainerPort == port.IntVal) {
			return cp.ContainerPort, true
		}
	}
	return 0, false
}

func effectiveUser(pod *corev1.PodSpec, c *corev1.Container) *int64 {
	if c.SecurityContext != nil && c.SecurityContext.RunAsUser != nil {
		return c.SecurityContext.RunAsUser
	}
	if pod.SecurityContext != nil {
		return pod.SecurityContext.RunAsUser
	}
	return nil
}

func envValue(c *corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

func capNames(cs []corev1.Capability) []string {
	var out []string
	for _, c := range cs {
		out = append(out, string(c))
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func deref[T any](p *T) any {
	if p == nil {
		return "unset"
	}
	return *p
}
