package kubernetes

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// scheme knows every kind the manifests may hold; a rendered object of
// any other kind is refused (a cluster without its CRD refuses it too).
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme,
		networkingv1.AddToScheme, monitoringv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strict decodes YAML into the registered Go types, refusing unknown and
// duplicate fields, as `kubectl apply --validate=strict` does.
var strict = json.NewSerializerWithOptions(json.DefaultMetaFactory, scheme, scheme,
	json.SerializerOptions{Yaml: true, Strict: true})

// object is one rendered manifest, decoded.
type object struct {
	GVK  schema.GroupVersionKind
	Name string
	Obj  runtime.Object
	YAML []byte
}

func (o object) String() string { return o.GVK.Kind + "/" + o.Name }

// render builds the kustomization at dir on fSys as `kubectl kustomize`
// does and decodes every object strictly.
func render(fSys filesys.FileSystem, dir string) ([]object, error) {
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fSys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	var out []object
	var errs []error
	for _, r := range m.Resources() {
		y, err := r.AsYAML()
		if err != nil {
			return nil, err
		}
		obj, gvk, err := strict.Decode(y, nil, nil)
		name := r.GetKind() + "/" + r.GetName()
		switch {
		case runtime.IsNotRegisteredError(err):
			errs = append(errs, fmt.Errorf("%s: %s is not a kind these manifests may use: %v", name, r.GetApiVersion(), err))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		out = append(out, object{GVK: *gvk, Name: r.GetName(), Obj: obj, YAML: y})
	}
	return out, errors.Join(errs...)
}

// memTree copies the folders of deploy/kubernetes that kustomizations
// live in into an in-memory file system under /k, where a test can add
// kustomizations of its own beside them.
func memTree() (filesys.FileSystem, error) {
	mem := filesys.MakeFsInMemory()
	for _, top := range []string{"base", "components", "overlays"} {
		err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return mem.WriteFile("/k/"+filepath.ToSlash(p), b)
		})
		if err != nil {
			return nil, err
		}
	}
	return mem, nil
}

// rendered is an overlay's objects by kind, for the checks.
type rendered struct {
	Name        string
	All         []object
	Deployments []*appsv1.Deployment
	Services    []*corev1.Service
	ConfigMaps  map[string]*corev1.ConfigMap
	Secrets     map[string]*corev1.Secret
	PVCs        map[string]*corev1.PersistentVolumeClaim
	PDBs        []*policyv1.PodDisruptionBudget
	NetPols     []*networkingv1.NetworkPolicy
	PodMonitors []*monitoringv1.PodMonitor
}

func index(name string, objs []object) (*rendered, error) {
	r := &rendered{Name: name, All: objs, ConfigMaps: map[string]*corev1.ConfigMap{},
		Secrets: map[string]*corev1.Secret{}, PVCs: map[string]*corev1.PersistentVolumeClaim{}}
	for _, o := range objs {
		switch v := o.Obj.(type) {
		case *appsv1.Deployment:
			r.Deployments = append(r.Deployments, v)
		case *corev1.Service:
			r.Services = append(r.Services, v)
		case *corev1.ConfigMap:
			r.ConfigMaps[v.Name] = v
		case *corev1.Secret:
			r.Secrets[v.Name] = v
		case *corev1.PersistentVolumeClaim:
			r.PVCs[v.Name] = v
		case *corev1.ServiceAccount:
		case *policyv1.PodDisruptionBudget:
			r.PDBs = append(r.PDBs, v)
		case *networkingv1.NetworkPolicy:
			r.NetPols = append(r.NetPols, v)
		case *monitoringv1.PodMonitor:
			r.PodMonitors = append(r.PodMonitors, v)
		default:
			return nil, fmt.Errorf("%s: no check knows this kind (%T): add one", o, o.Obj)
		}
	}
	return r, nil
}

// secretValue is a Secret's key as the kubelet hands it to a container.
func (r *rendered) secretValue(name, key string) (string, bool) {
	s, ok := r.Secrets[name]
	if !ok {
		return "", false
	}
	if v, ok := s.Data[key]; ok {
		return string(v), true
	}
	v, ok := s.StringData[key]
	return v, ok
}

func (r *rendered) configMapValue(name, key string) (string, bool) {
	c, ok := r.ConfigMaps[name]
	if !ok {
		return "", false
	}
	if v, ok := c.Data[key]; ok {
		return v, true
	}
	v, ok := c.BinaryData[key]
	return string(v), ok
}

// gatewayDeployment finds the Deployment and container that run databus.
func (r *rendered) gateway() (*appsv1.Deployment, *corev1.Container, error) {
	for _, d := range r.Deployments {
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			if isDatabusImage(c.Image) {
				return d, c, nil
			}
		}
	}
	return nil, nil, errors.New("no Deployment runs the databus image (" + image + ")")
}

const image = "ghcr.io/databus-gateway/databus"

func isDatabusImage(s string) bool {
	return strings.HasPrefix(s, image+":") || strings.HasPrefix(s, image+"@") || s == image
}
