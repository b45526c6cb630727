package validate

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

const (
	// helmChart is the chart, relative to this package.
	helmChart = "../helm/heartbeat"
	// helmKubeVersion is what the chart is rendered for: the API server's.
	helmKubeVersion = "1.36.0"
	// helmRelease and helmNamespace are the release the renders install,
	// named so that its objects are the ones k8s/app has.
	helmRelease   = "heartbeat"
	helmNamespace = "heartbeat"
	// pipelineRoot is what a chart release sends to: k8s/ without the app.
	pipelineRoot = "../overlays/pipeline"
)

// helmCase is one values file the chart is rendered with ("" for the
// defaults), and objects the user creates beside the release.
type helmCase struct {
	name, values string
	extra        string
}

// helmCases are the defaults and every documented example in examples/.
func helmCases(t *testing.T) []helmCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(helmChart, "examples", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 4 {
		t.Fatalf("%d values examples in %s/examples, want at least 4", len(files), helmChart)
	}
	cases := []helmCase{{name: "defaults"}}
	for _, f := range files {
		c := helmCase{name: strings.TrimSuffix(filepath.Base(f), ".yaml"), values: f}
		// The ConfigMap the example tells the user to create.
		if c.name == "existing-configmap" {
			c.extra = filepath.Join("testdata", "helm", "my-checks.yaml")
		}
		cases = append(cases, c)
	}
	return cases
}

// helmBin is the helm CLI that scripts/helm.sh built (make k8s-validate
// sets HELM). Without it the Helm tests fail in CI and skip elsewhere.
func helmBin(t *testing.T) string {
	t.Helper()
	if h := os.Getenv("HELM"); h != "" {
		return h
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("HELM is not set: run make k8s-validate, which builds helm (scripts/helm.sh)")
	}
	t.Skip("HELM is not set: run make k8s-validate, which builds helm (scripts/helm.sh)")
	return ""
}

// runHelm runs helm with its cache, config and data in a temporary
// directory, and returns its stdout, or an error holding stderr.
func runHelm(t *testing.T, args ...string) ([]byte, error) {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helmBin(t), args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.Bytes(), fmt.Errorf("helm %s: %w: %s%s", strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.Bytes(), nil
}

// helmTemplate renders the chart as `helm template` does, with extra flags.
func helmTemplate(t *testing.T, values string, flags ...string) ([]*unstructured.Unstructured, error) {
	t.Helper()
	args := []string{"template", helmRelease, helmChart, "--namespace", helmNamespace, "--kube-version", helmKubeVersion}
	if values != "" {
		args = append(args, "--values", values)
	}
	out, err := runHelm(t, append(args, flags...)...)
	if err != nil {
		return nil, err
	}
	return DecodeObjects(bytes.NewReader(out), "helm template "+values)
}

// helmRender is helmTemplate plus the case's extra objects, failing t on error.
func helmRender(t *testing.T, c helmCase) []*unstructured.Unstructured {
	t.Helper()
	objs, err := helmTemplate(t, c.values)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatalf("helm template %s rendered nothing", c.name)
	}
	if c.extra != "" {
		extra, err := ReadObjects(c.extra)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, extra...)
	}
	return objs
}

func TestHelmLint(t *testing.T) {
	for _, c := range helmCases(t) {
		t.Run(c.name, func(t *testing.T) {
			args := []string{"lint", "--strict", helmChart, "--namespace", helmNamespace, "--kube-version", helmKubeVersion}
			if c.values != "" {
				args = append(args, "--values", c.values)
			}
			out, err := runHelm(t, args...)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(out, []byte("1 chart(s) linted, 0 chart(s) failed")) {
				t.Fatalf("helm lint: %s", out)
			}
		})
	}
}

// Each render of the chart, installed beside the pipeline it sends to, goes
// through the same strict decode and cross-checks as the kustomize roots.
func TestHelmRendersPassEveryCheck(t *testing.T) {
	d := newDecoder(t)
	base := render(t, pipelineRoot)
	for _, c := range helmCases(t) {
		t.Run(c.name, func(t *testing.T) {
			objs := helmRender(t, c)
			for _, err := range check(d, append(append([]*unstructured.Unstructured{}, base...), objs...)) {
				t.Error(err)
			}
			validateChecksFiles(t, objs)
			var workloads []string
			for _, u := range objs {
				if k := u.GetKind(); k == "Deployment" || k == "DaemonSet" {
					workloads = append(workloads, ID(u))
				}
			}
			if len(workloads) != 1 {
				t.Errorf("%s renders workloads %v, want exactly one", c.name, workloads)
			}
		})
	}
}

// validateChecksFiles runs `heartbeat validate` (the binary in $HEARTBEAT,
// when make k8s-validate sets it) on every rendered checks.yaml.
func validateChecksFiles(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	bin := os.Getenv("HEARTBEAT")
	if bin == "" {
		return
	}
	for _, u := range objs {
		data, ok, _ := unstructured.NestedString(u.Object, "data", "checks.yaml")
		if u.GetKind() != "ConfigMap" || !ok {
			continue
		}
		f := filepath.Join(t.TempDir(), "checks.yaml")
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "validate", "--config", f).CombinedOutput(); err != nil {
			t.Errorf("%s: heartbeat validate: %v: %s", ID(u), err, out)
		}
	}
}

// The sidecar example renders what k8s/ renders for the app: a field, an
// object or a check added to one and not the other fails here.
func TestHelmSidecarExampleMatchesKustomize(t *testing.T) {
	chart := helmRender(t, helmCase{name: "sidecar", values: filepath.Join(helmChart, "examples", "sidecar.yaml")})
	pipeline := normalizeKustomize(render(t, pipelineRoot))
	kust := map[string]map[string]any{}
	for id, o := range normalizeKustomize(render(t, "..")) {
		if _, ok := pipeline[id]; !ok {
			kust[id] = o
		}
	}
	seen := map[string]bool{}
	for _, u := range chart {
		id := ID(u)
		seen[id] = true
		want, ok := kust[id]
		if !ok {
			t.Errorf("the chart renders %s, k8s/ does not", id)
			continue
		}
		if diff := cmp.Diff(want, normalizeHelm(t, u)); diff != "" {
			t.Errorf("%s differs between k8s/ and the chart (-kustomize +helm):\n%s", id, diff)
		}
	}
	for id := range kust {
		if !seen[id] {
			t.Errorf("k8s/ renders %s, the chart's sidecar example does not", id)
		}
	}
}

// helmOnlyLabels are the labels Helm users expect that k8s/ does not set.
var helmOnlyLabels = []string{"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version"}

// generatedName is a kustomize configMapGenerator name: base and content hash.
var generatedName = regexp.MustCompile(`^(.+)-[a-z0-9]{10}$`)

// normalizeKustomize drops the content hashes from generated ConfigMap names
// (the chart rolls pods with a checksum annotation instead).
func normalizeKustomize(objs []*unstructured.Unstructured) map[string]map[string]any {
	renames := map[string]string{}
	for _, u := range objs {
		if u.GetKind() == "ConfigMap" {
			if m := generatedName.FindStringSubmatch(u.GetName()); m != nil {
				renames[u.GetName()] = m[1]
			}
		}
	}
	out := map[string]map[string]any{}
	for _, u := range objs {
		o := walk(u.DeepCopy().Object, func(s string) string {
			if r, ok := renames[s]; ok {
				return r
			}
			return s
		}).(map[string]any)
		parseData(o)
		out[ID(&unstructured.Unstructured{Object: o})] = o
	}
	return out
}

// normalizeHelm drops the Helm-only labels and the checksum annotation.
func normalizeHelm(t *testing.T, u *unstructured.Unstructured) map[string]any {
	t.Helper()
	o := walk(u.DeepCopy().Object, func(s string) string { return s }).(map[string]any)
	if ann, ok, _ := unstructured.NestedStringMap(o, "spec", "template", "metadata", "annotations"); ok {
		if _, ok := ann["checksum/checks"]; !ok {
			t.Errorf("%s: pod template has no checksum/checks annotation", ID(u))
		}
		delete(ann, "checksum/checks")
		if len(ann) == 0 {
			unstructured.RemoveNestedField(o, "spec", "template", "metadata", "annotations")
		} else if err := unstructured.SetNestedStringMap(o, ann, "spec", "template", "metadata", "annotations"); err != nil {
			t.Fatal(err)
		}
	}
	parseData(o)
	return o
}

// walk copies v with every string passed through f and the Helm-only label
// keys removed from every map (labels, selectors and matchLabels alike).
func walk(v any, f func(string) string) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = walk(e, f)
		}
		for _, l := range helmOnlyLabels {
			delete(m, l)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = walk(e, f)
		}
		return s
	case string:
		return f(x)
	default:
		return v
	}
}

// parseData replaces YAML and JSON ConfigMap values by what they decode to,
// so formatting and comments do not count, content does.
func parseData(o map[string]any) {
	data, ok := o["data"].(map[string]any)
	if o["kind"] != "ConfigMap" || !ok {
		return
	}
	for k, v := range data {
		s, _ := v.(string)
		var parsed any
		switch {
		case strings.HasSuffix(k, ".json"):
			if json.Unmarshal([]byte(s), &parsed) == nil {
				data[k] = parsed
			}
		case strings.HasSuffix(k, ".yaml"):
			if yaml.Unmarshal([]byte(s), &parsed) == nil {
				data[k] = parsed
			}
		}
	}
}

// Bad values stop the render with a message that says what to change.
func TestHelmRefusesBadValues(t *testing.T) {
	for _, tc := range []struct {
		name  string
		flags []string
		want  string
	}{
		{"native sidecar before 1.29", []string{"--set", "mode=sidecar", "--kube-version", "1.28.0"}, "native sidecars need Kubernetes 1.29 or later, this cluster is v1.28.0: set sidecar.native=false"},
		{"misspelt value", []string{"--set", "goMemLimt=40MiB"}, "goMemLimt"},
		{"unknown mode", []string{"--set", "mode=sidecars"}, "mode"},
		{"no checks", []string{"--set", "checks.config=null"}, "checks: set checks.config (the checks file) or checks.existingConfigMap"},
		{"GOMEMLIMIT syntax", []string{"--set", "goMemLimit=48Mi"}, "goMemLimit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := helmTemplate(t, "", tc.flags...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one containing %q", err, tc.want)
			}
		})
	}
	// The same cluster version is fine with the regular-container form.
	objs, err := helmTemplate(t, "", "--set", "mode=sidecar", "--set", "sidecar.native=false", "--kube-version", "1.28.0")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range objs {
		if u.GetKind() != "Deployment" {
			continue
		}
		if ic, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "initContainers"); len(ic) != 0 {
			t.Errorf("sidecar.native=false still renders init containers: %v", ic)
		}
		cs, _, _ := unstructured.NestedSlice(u.Object, "spec", "template", "spec", "containers")
		if len(cs) != 2 {
			t.Errorf("sidecar.native=false: %d containers, want app and heartbeat", len(cs))
		}
	}
}
