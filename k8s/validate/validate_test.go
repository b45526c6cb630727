package validate

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

// roots are the kustomizations users render: the default and each overlay.
var roots = []string{"..", "../overlays/agent"}

// brokenCase is a fixture in testdata/broken and what each layer must say.
// An empty want means that layer accepts the fixture (the other one catches it).
type brokenCase struct {
	file string
	// offline: strict decode + Lint, on the fixture added to the default render.
	offline string
	// api: the API server's server-side dry-run (warnings count as failures).
	api string
}

var brokenCases = []brokenCase{
	{file: "unknown-field.yaml", offline: `unknown field "spec.template.spec.containers[0].imagePullPolicyy"`, api: `imagePullPolicyy: field not declared in schema`},
	{file: "bad-selector.yaml", offline: "does not match the template's labels", api: "`selector` does not match template `labels`"},
	{file: "wrong-type.yaml", offline: "cannot unmarshal string into Go struct field", api: ".spec.replicas: expected numeric (int or float), got string"},
	{file: "missing-image.yaml", api: "spec.template.spec.containers[0].image: Required value"},
	{file: "privileged.yaml", offline: "runAsNonRoot: must be true", api: `would violate PodSecurity "restricted:latest"`},
	{file: "service-selects-nothing.yaml", offline: "selects no pod template"},
	{file: "sidecar-misconfigured.yaml", offline: "$(POD_NAM) refers to no variable defined before it"},
	{file: "sidecar-misconfigured.yaml", offline: "is not above the sidecar's drain delay + shutdown timeout"},
	{file: "sidecar-misconfigured.yaml", offline: "ConfigMap heartbeat/no-such-checks is not in the render"},
	{file: "sidecar-misconfigured.yaml", offline: `no Service heartbeat/otel-gateway in the render`},
	{file: "init-container-not-sidecar.yaml", offline: "initContainers[heartbeat].restartPolicy: must be Always"},
	{file: "init-container-not-sidecar.yaml", offline: "range 0-0 leaves out the heartbeat container's group 65532"},
	{file: "dashboard-not-json.yaml", offline: "data[heartbeat.json]: not a dashboard's JSON model: unexpected end of JSON input"},
	{file: "dashboard-misspelt.yaml", offline: "Dashboard: unexpected field 'pannels'"},
	{file: "servicemonitor-wrong-port.yaml", offline: `Service heartbeat/otel-collector has no port named "metrics"`},
}

func newDecoder(t *testing.T) *Decoder {
	t.Helper()
	d, err := NewDecoder()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// check runs the offline layers and returns every error.
func check(d *Decoder, objs []*unstructured.Unstructured) []error {
	var errs []error
	typed := make([]runtime.Object, 0, len(objs))
	for _, u := range objs {
		o, err := d.Decode(u)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		typed = append(typed, o)
	}
	return append(errs, Lint(typed)...)
}

func render(t *testing.T, dir string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := Render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func TestRenderedManifestsPassEveryCheck(t *testing.T) {
	d := newDecoder(t)
	for _, root := range roots {
		t.Run(root, func(t *testing.T) {
			objs := render(t, root)
			for _, err := range check(d, objs) {
				t.Error(err)
			}
			// What the render must contain, by kind and name.
			want := []string{
				"Namespace heartbeat",
				"Deployment heartbeat/example-app",
				"Service heartbeat/heartbeat-peers",
				"Service heartbeat/otel-collector",
				"Service heartbeat/jaeger-collector",
				"DaemonSet heartbeat-logging/fluent-bit",
				"ServiceMonitor heartbeat/heartbeat-otel-collector",
				"ConfigMap heartbeat/heartbeat-dashboard",
				"PrometheusRule heartbeat/heartbeat",
			}
			if root == ".." {
				want = append(want, "Deployment heartbeat/otel-collector")
			} else {
				want = append(want, "DaemonSet heartbeat/otel-collector-agent")
			}
			have := map[string]bool{}
			for _, u := range objs {
				have[ID(u)] = true
			}
			for _, w := range want {
				if !have[w] {
					t.Errorf("render of %s lacks %s", root, w)
				}
			}
		})
	}
}

func TestBrokenManifestsAreRejectedOffline(t *testing.T) {
	d := newDecoder(t)
	base := render(t, "..")
	for _, tc := range brokenCases {
		t.Run(tc.file+"/"+tc.offline, func(t *testing.T) {
			fixture, err := ReadObjects(filepath.Join("testdata", "broken", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			errs := check(d, append(append([]*unstructured.Unstructured{}, base...), fixture...))
			if tc.offline == "" {
				if len(errs) > 0 {
					t.Fatalf("offline layers should accept %s (the API server catches it), got %v", tc.file, errs)
				}
				return
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.offline) {
					if !errors.Is(err, ErrDecode) && !errors.Is(err, ErrLint) {
						t.Errorf("error %v wraps neither ErrDecode nor ErrLint", err)
					}
					return
				}
			}
			t.Fatalf("no error contains %q; got %v", tc.offline, errs)
		})
	}
}

// The load restrictor is why k8s/collector keeps a copy of otel-collector.yaml.
func TestKustomizeRefusesFilesOutsideItsRoot(t *testing.T) {
	_, err := Render(filepath.Join("testdata", "outside-root"))
	if !errors.Is(err, ErrRender) || !strings.Contains(err.Error(), "is not in or below") {
		t.Fatalf("err = %v, want the load restrictor's refusal", err)
	}
}

// The agent overlay must stay the default render with only the collector's
// workload swapped: a resource added to one root and not the other fails here.
func TestAgentOverlayDiffersOnlyInTheCollector(t *testing.T) {
	byID := func(objs []*unstructured.Unstructured) map[string]*unstructured.Unstructured {
		m := map[string]*unstructured.Unstructured{}
		for _, u := range objs {
			m[ID(u)] = u
		}
		return m
	}
	def, agent := byID(render(t, "..")), byID(render(t, "../overlays/agent"))
	onlyDefault, onlyAgent := "Deployment heartbeat/otel-collector", "DaemonSet heartbeat/otel-collector-agent"
	for id := range def {
		if _, ok := agent[id]; !ok && id != onlyDefault {
			t.Errorf("%s is in k8s/ but not in overlays/agent", id)
		}
	}
	for id := range agent {
		if _, ok := def[id]; !ok && id != onlyAgent {
			t.Errorf("%s is in overlays/agent but not in k8s/", id)
		}
	}
	for id, a := range agent {
		b, ok := def[id]
		if !ok {
			continue
		}
		a = a.DeepCopy()
		if id == "Service heartbeat/otel-collector" {
			if p, _, _ := unstructured.NestedString(a.Object, "spec", "internalTrafficPolicy"); p != "Local" {
				t.Errorf("agent overlay: %s internalTrafficPolicy = %q, want Local", id, p)
			}
			unstructured.RemoveNestedField(a.Object, "spec", "internalTrafficPolicy")
		}
		if !reflect.DeepEqual(a.Object, b.Object) {
			t.Errorf("%s differs between k8s/ and overlays/agent", id)
		}
	}
}

// scrapeFile is the part of monitoring/prometheus-scrape.yaml checked here.
type scrapeFile struct {
	ScrapeConfigs []struct {
		JobName             string `json:"job_name"`
		KubernetesSDConfigs []struct {
			Role       string `json:"role"`
			Namespaces struct {
				Names []string `json:"names"`
			} `json:"namespaces"`
		} `json:"kubernetes_sd_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `json:"source_labels"`
			Regex        string   `json:"regex"`
			Action       string   `json:"action"`
		} `json:"relabel_configs"`
	} `json:"scrape_configs"`
}

// Debian's promtool has no kubernetes_sd_configs, so the plain scrape config
// is checked here: each job keeps a Service and port the render has, and the
// job the alert rules query (job="otel-collector") exists.
func TestPlainScrapeConfigNamesRenderedPorts(t *testing.T) {
	data, err := os.ReadFile("../monitoring/prometheus-scrape.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f scrapeFile
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	ports := map[string]bool{} // "ns/service;port"
	for _, u := range render(t, "..") {
		if u.GetKind() != "Service" {
			continue
		}
		ps, _, _ := unstructured.NestedSlice(u.Object, "spec", "ports")
		for _, p := range ps {
			if name, ok := p.(map[string]any)["name"].(string); ok {
				ports[u.GetNamespace()+"/"+u.GetName()+";"+name] = true
			}
		}
	}
	jobs := map[string]bool{}
	for _, sc := range f.ScrapeConfigs {
		jobs[sc.JobName] = true
		var namespaces []string
		for _, sd := range sc.KubernetesSDConfigs {
			if sd.Role != "endpoints" {
				t.Errorf("job %s: kubernetes_sd role %q, want endpoints", sc.JobName, sd.Role)
			}
			namespaces = append(namespaces, sd.Namespaces.Names...)
		}
		kept := false
		for _, rc := range sc.RelabelConfigs {
			if rc.Action != "keep" || strings.Join(rc.SourceLabels, ",") != "__meta_kubernetes_service_name,__meta_kubernetes_endpoint_port_name" {
				continue
			}
			kept = true
			for _, ns := range namespaces {
				if !ports[ns+"/"+rc.Regex] {
					t.Errorf("job %s keeps %q, but namespace %s has no such Service port in the render", sc.JobName, rc.Regex, ns)
				}
			}
		}
		if !kept || len(namespaces) == 0 {
			t.Errorf("job %s: no namespaced keep rule on service name and port name", sc.JobName)
		}
	}
	if !jobs["otel-collector"] {
		t.Error(`no job "otel-collector", which the alert rules' up{job="otel-collector"} needs`)
	}
}

func TestParseGoMemLimit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"48MiB", 48 << 20, true},
		{"1GiB", 1 << 30, true},
		{"1048576", 1 << 20, true},
		{"512B", 512, true},
		{"48Mi", 0, false},
		{"lots", 0, false},
		{"-1", 0, false},
	} {
		got, err := parseGoMemLimit(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("parseGoMemLimit(%q) = %d, %v; want %d, ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}
