package kubernetes

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	"github.com/databus-gateway/databus/deploy/kubernetes/projection"
)

// verify is every static check of an overlay: it renders, decodes
// strictly, fits the binary, and what the pod would load passes databus
// validate.
func verify(t *testing.T, r *rendered) error {
	t.Helper()
	f, err := check(r, serveFlags)
	if err != nil {
		return err
	}
	if f.Config == nil {
		return nil
	}
	dir := t.TempDir()
	if err := projection.WriteAtomic(dir, f.Config, 0o444); err != nil {
		return err
	}
	cmd := exec.Command(databusBin, "validate", dir)
	cmd.Env = containerEnv(t, r, f.Container, map[string]string{})
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("databus validate on what the pod sees under %s: %v\n%s", f.ConfigDir, err, out)
	}
	return nil
}

// deploymentPatch is a strategic-merge patch of the gateway's Deployment.
func deploymentPatch(spec string) string {
	return "patches:\n  - patch: |-\n      apiVersion: apps/v1\n      kind: Deployment\n      metadata: {name: databus}\n" + indent(spec, "      ") + "\n"
}

// jsonPatch is a JSON 6902 patch of the gateway's Deployment.
func jsonPatch(ops string) string {
	return "patches:\n  - target: {kind: Deployment, name: databus}\n    patch: |-\n" + indent(ops, "      ") + "\n"
}

func indent(s, pre string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i, l := range lines {
		lines[i] = pre + l
	}
	return strings.Join(lines, "\n")
}

// Overlays that would not work are refused, each with a message that says
// what and where: the check is not a rubber stamp.
func TestBrokenOverlaysAreRefused(t *testing.T) {
	cases := []struct {
		name  string
		kust  string            // kustomization.yaml of the broken overlay
		files map[string]string // more files beside it
		want  string
	}{
		{
			name: "unknown field",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    spec:
      containers:
        - name: databus
          imagePullPolcy: Always`),
			want: `unknown field "spec.template.spec.containers[0].imagePullPolcy"`,
		},
		{
			name:  "duplicate field",
			kust:  "resources: [../single, extra.yaml]\n",
			files: map[string]string{"extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\ndata:\n  a: one\n  a: two\n"},
			want:  `"a" already defined`,
		},
		{
			name:  "unknown kind",
			kust:  "resources: [../single, extra.yaml]\n",
			files: map[string]string{"extra.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n"},
			want:  "Widget/w: example.com/v1 is not a kind these manifests may use",
		},
		{
			name: "a flag serve does not accept",
			kust: "resources: [../single]\n" + jsonPatch(`
- op: add
  path: /spec/template/spec/containers/0/args/-
  value: --listen-address=:9090`),
			want: "--listen-address is not a flag of databus serve",
		},
		{
			name: "a flag value serve refuses",
			kust: "resources: [../single]\n" + jsonPatch(`
- op: add
  path: /spec/template/spec/containers/0/args/-
  value: --read-timeout=60`),
			want: "not a valid duration for --read-timeout",
		},
		{
			name: "readiness probe on the wrong port",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    spec:
      containers:
        - name: databus
          readinessProbe:
            httpGet: {port: 8083}`),
			want: "readiness probe: port 8083 is not the health listener's port 8082",
		},
		{
			name: "liveness on /readyz",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    spec:
      containers:
        - name: databus
          livenessProbe:
            httpGet: {path: /readyz}`),
			want: `liveness probe: path "/readyz"`,
		},
		{
			name: "health listener on loopback",
			kust: "resources: [../single]\n" + jsonPatch(`
- op: test
  path: /spec/template/spec/containers/0/args/3
  value: --health-listen=:8082
- op: replace
  path: /spec/template/spec/containers/0/args/3
  value: --health-listen=127.0.0.1:8082`),
			want: "binds 127.0.0.1 only",
		},
		{
			name: "grace period within the drain",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    spec:
      terminationGracePeriodSeconds: 15`),
			want: "terminationGracePeriodSeconds 15 is not above the preStop sleep (5s) plus --drain-timeout (15s)",
		},
		{
			name: "bbolt file off the volumes",
			kust: "resources: [../single]\n" + jsonPatch(`
- op: test
  path: /spec/template/spec/containers/0/args/4
  value: --storage=/data/databus.db
- op: replace
  path: /spec/template/spec/containers/0/args/4
  value: --storage=/var/lib/databus/databus.db`),
			want: `--storage "/var/lib/databus/databus.db" (the bbolt file) is not on a writable volume`,
		},
		{
			name: "runs as root",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    spec:
      containers:
        - name: databus
          securityContext: {runAsUser: 0}`),
			want: "not runAsNonRoot with a non-zero runAsUser",
		},
		{
			name: "writable root filesystem",
			kust: "resources: [../fleet]\n" + `patches:
  - target: {kind: Deployment, name: databus-redis}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/securityContext/readOnlyRootFilesystem
        value: false
`,
			want: "Deployment/databus-redis container redis: readOnlyRootFilesystem is not true",
		},
		{
			name: "a volume with two sources",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    spec:
      volumes:
        - name: tmp
          hostPath: {path: /tmp}`),
			want: "volume tmp has 2 sources",
		},
		{
			name: "an item of a key the ConfigMap lacks",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    spec:
      volumes:
        - name: config
          projected:
            sources:
              - configMap:
                  name: databus-config
                  items:
                    - {key: databus.yaml, path: databus.yaml}
                    - {key: apis_nope.yaml, path: apis/nope.yaml}`),
			want: "ConfigMap databus-config has no key apis_nope.yaml",
		},
		{
			name: "a ConfigMap key projected nowhere",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    spec:
      volumes:
        - name: config
          projected:
            sources:
              - configMap:
                  name: databus-config
                  items:
                    - {key: databus.yaml, path: databus.yaml}`),
			want: "is projected nowhere (its items leave it out)",
		},
		{
			name: "a configuration the gate refuses",
			kust: "resources: [../single]\npatches:\n  - patch: |-\n      apiVersion: v1\n      kind: ConfigMap\n      metadata: {name: databus-config}\n      data:\n        apis_demo.hello.yaml: |\n          apiVersion: databus/v1\n          kind: Api\n          code: demo.hello\n",
			want: "databus validate on what the pod sees under /config",
		},
		{
			name: "several replicas on one claim",
			kust: "resources: [../single]\n" + deploymentPatch("spec:\n  replicas: 3"),
			want: "3 replicas share the PersistentVolumeClaim databus-data",
		},
		{
			name: "a rolling update onto a locked bbolt file",
			kust: "resources: [../single]\n" + deploymentPatch("spec:\n  strategy: {type: RollingUpdate}"),
			want: `strategy "RollingUpdate" with the bbolt file on PersistentVolumeClaim databus-data`,
		},
		{
			name:  "several replicas without Redis",
			kust:  "resources: [../fleet]\nconfigMapGenerator:\n  - name: databus-config\n    behavior: merge\n    files: [databus.yaml]\n    options: {disableNameSuffixHash: true}\n",
			files: map[string]string{"databus.yaml": "apiVersion: databus/v1\nkind: Settings\n"},
			want:  "3 replicas with the embedded stores",
		},
		{
			name: "a secret reference the container does not set",
			kust: "resources: [../fleet]\n" + deploymentPatch(`
spec:
  template:
    spec:
      containers:
        - name: databus
          env:
            - name: DATABUS_REDIS_PASSWORD
              $patch: delete`),
			want: "databus.yaml refers to the secret env:DATABUS_REDIS_PASSWORD, which the container's env does not set",
		},
		{
			name: "a Service port no container has",
			kust: "resources: [../single]\npatches:\n  - patch: |-\n      apiVersion: v1\n      kind: Service\n      metadata: {name: databus}\n      spec:\n        ports:\n          - {name: portal, port: 8080, protocol: TCP, targetPort: gateway}\n",
			want: "targetPort gateway is no container port",
		},
		{
			name: "a scrape of the wrong port",
			kust: "resources: [../single]\n" + deploymentPatch(`
spec:
  template:
    metadata:
      annotations: {prometheus.io/port: "8080"}`),
			want: `prometheus.io/scrape="true" port="8080"`,
		},
		{
			name: "git sync without a clone",
			kust: "resources: [../single-git-sync]\n" + deploymentPatch(`
spec:
  template:
    spec:
      initContainers:
        - name: clone
          $patch: delete`),
			want: "no init container clones into it",
		},
	}
	mem, err := memTree()
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := fmt.Sprintf("/k/overlays/broken-%d", i)
			if err := mem.WriteFile(dir+"/kustomization.yaml", []byte(c.kust)); err != nil {
				t.Fatal(err)
			}
			for name, s := range c.files {
				if err := mem.WriteFile(dir+"/"+name, []byte(s)); err != nil {
					t.Fatal(err)
				}
			}
			objs, err := render(mem, dir)
			if err == nil {
				var r *rendered
				if r, err = index(c.name, objs); err == nil {
					err = verify(t, r)
				}
			}
			if err == nil {
				t.Fatalf("accepted; want an error with %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("error:\n%v\nwant one with %q", err, c.want)
			}
		})
	}
}
