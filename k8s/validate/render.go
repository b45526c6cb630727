// Package validate checks heartbeat's Kubernetes manifests: it renders the
// kustomizations with the kustomize library kubectl embeds, decodes every
// object strictly into the k8s.io/api (and prometheus-operator) Go types, and
// cross-checks what the API server cannot see on its own (a Service that
// selects no pod, a ConfigMap that is not rendered, a grace period shorter
// than the sidecar's shutdown). Its tests add a real kube-apiserver and a
// server-side dry-run of every object.
package validate

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// ErrRender marks a kustomization that kustomize cannot build.
var ErrRender = errors.New("kustomize build failed")

// Render builds the kustomization in dir with kustomize's default options
// (load restrictor on, as `kubectl kustomize` runs it) and returns every
// object it produces, in kustomize's output order.
func Render(dir string) ([]*unstructured.Unstructured, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrRender, dir, err)
	}
	out := make([]*unstructured.Unstructured, 0, rm.Size())
	for _, r := range rm.Resources() {
		// Through JSON, so numbers are int64/float64 as unstructured expects.
		data, err := r.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %s: %w", ErrRender, dir, r.CurId(), err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("%w: %s: %s: %w", ErrRender, dir, r.CurId(), err)
		}
		out = append(out, u)
	}
	return out, nil
}

// ReadObjects reads a multi-document YAML file of plain manifests (no
// kustomize), as the broken fixtures in testdata are.
func ReadObjects(path string) ([]*unstructured.Unstructured, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return DecodeObjects(f, path)
}

// DecodeObjects reads a multi-document YAML stream, such as `helm template`
// prints; name is what errors call it.
func DecodeObjects(in io.Reader, path string) ([]*unstructured.Unstructured, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(in))
	var out []*unstructured.Unstructured
	for i := 1; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		// Through JSON, so numbers are int64/float64 as in Render's objects.
		data, err := yaml.YAMLToJSON(doc)
		if err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		if t := strings.TrimSpace(string(data)); t == "null" || t == "{}" {
			continue
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			return nil, fmt.Errorf("%s: document %d: %w", path, i, err)
		}
		out = append(out, u)
	}
}

// ID names an object for error messages: Kind namespace/name.
func ID(u *unstructured.Unstructured) string {
	if ns := u.GetNamespace(); ns != "" {
		return fmt.Sprintf("%s %s/%s", u.GetKind(), ns, u.GetName())
	}
	return fmt.Sprintf("%s %s", u.GetKind(), u.GetName())
}
