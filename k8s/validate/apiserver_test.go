package validate

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apiserver/pkg/storage/etcd3/testserver"
	"k8s.io/apiserver/pkg/storage/storagebackend"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"
	kubeapiservertesting "k8s.io/kubernetes/cmd/kube-apiserver/app/testing"
)

// crdGroups are API groups a plain API server does not serve; their objects
// are covered by strict decoding into the operator's Go types instead.
var crdGroups = []string{"monitoring.coreos.com"}

// warnings records the API server's Warning headers (deprecations, unknown
// fields under lenient validation, Pod Security violations of a template).
type warnings struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, msg string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, msg)
}

func (w *warnings) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

// applier server-side applies objects, as `kubectl apply --server-side` does.
type applier struct {
	dyn    dynamic.Interface
	mapper meta.RESTMapper
	warn   *warnings
}

// errNotServed marks a kind the API server has no resource for.
var errNotServed = errors.New("kind not served")

// apply server-side applies u with strict field validation; dryRun asks the
// server to run every admission and validation step without storing it. Any
// warning is returned as an error.
func (a *applier) apply(ctx context.Context, u *unstructured.Unstructured, dryRun bool) error {
	gvk := u.GroupVersionKind()
	mapping, err := a.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return fmt.Errorf("%s: %w: %w", ID(u), errNotServed, err)
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(mapping.Resource)
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = a.dyn.Resource(mapping.Resource).Namespace(u.GetNamespace())
	}
	data, err := u.MarshalJSON()
	if err != nil {
		return fmt.Errorf("%s: %w", ID(u), err)
	}
	force := true
	opts := metav1.PatchOptions{FieldManager: "k8s-validate", Force: &force, FieldValidation: metav1.FieldValidationStrict}
	if dryRun {
		opts.DryRun = []string{metav1.DryRunAll}
	}
	a.warn.take()
	if _, err := ri.Patch(ctx, u.GetName(), types.ApplyPatchType, data, opts); err != nil {
		return fmt.Errorf("%s: %w", ID(u), err)
	}
	if w := a.warn.take(); len(w) > 0 {
		return fmt.Errorf("%s: API server warnings: %s", ID(u), strings.Join(w, "; "))
	}
	return nil
}

// startAPIServer runs etcd (embedded) and kube-apiserver (in-process, with
// its default admission plugins, Pod Security included) on free ports.
func startAPIServer(t *testing.T) *applier {
	t.Helper()
	etcdCfg := testserver.NewTestConfig(t)
	testserver.RunEtcd(t, etcdCfg)
	sc := storagebackend.NewDefaultConfig("/registry", nil)
	sc.Transport.ServerList = []string{etcdCfg.ListenClientUrls[0].String()}
	if os.Getenv("HEARTBEAT_K8S_APISERVER_LOG") == "" {
		// Hundreds of lines of etcd/apiserver startup chatter otherwise.
		klog.SetLogger(logr.Discard())
	}
	// Clusters allow privileged containers unless told not to; the test
	// server's default (false) would hide the Pod Security warning.
	srv, err := kubeapiservertesting.StartTestServer(t, nil, []string{"--allow-privileged=true"}, sc)
	if err != nil {
		t.Fatalf("starting kube-apiserver: %v", err)
	}
	t.Cleanup(srv.TearDownFn)

	w := &warnings{}
	cfg := rest.CopyConfig(srv.ClientConfig)
	cfg.WarningHandler = w
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return &applier{dyn: dyn, mapper: mapper, warn: w}
}

// dryRunAll creates objs' namespaces for real (a dry run in a namespace that
// does not exist fails, and their Pod Security labels apply to the rest),
// then dry-run applies every other object the API server serves.
func dryRunAll(ctx context.Context, t *testing.T, a *applier, name string, objs []*unstructured.Unstructured) {
	t.Helper()
	for _, u := range objs {
		if u.GetKind() == "Namespace" {
			if err := a.apply(ctx, u, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	applied := 0
	for _, u := range objs {
		if u.GetKind() == "Namespace" || slices.Contains(crdGroups, u.GroupVersionKind().Group) {
			continue
		}
		if err := a.apply(ctx, u, true); err != nil {
			t.Error(err)
			continue
		}
		applied++
	}
	t.Logf("%s: %d objects accepted by a dry-run apply", name, applied)
	if applied == 0 {
		t.Fatal("nothing was applied")
	}
}

// TestAPIServerAcceptsEveryManifest is the strongest layer: a real
// kube-apiserver validates, defaults and admits (dry run) every rendered
// object. HEARTBEAT_K8S_APISERVER=0 skips it.
func TestAPIServerAcceptsEveryManifest(t *testing.T) {
	if os.Getenv("HEARTBEAT_K8S_APISERVER") == "0" {
		t.Skip("HEARTBEAT_K8S_APISERVER=0")
	}
	ctx := t.Context()
	a := startAPIServer(t)

	for _, root := range roots {
		t.Run("render "+root, func(t *testing.T) {
			dryRunAll(ctx, t, a, root, render(t, root))
		})
	}
	// Each chart render, in the namespaces of the pipeline it sends to.
	if os.Getenv("HELM") != "" || os.Getenv("CI") == "true" {
		pipeline := render(t, pipelineRoot)
		for _, c := range helmCases(t) {
			t.Run("helm "+c.name, func(t *testing.T) {
				var namespaces []*unstructured.Unstructured
				for _, u := range pipeline {
					if u.GetKind() == "Namespace" {
						namespaces = append(namespaces, u)
					}
				}
				dryRunAll(ctx, t, a, "helm "+c.name, append(namespaces, helmRender(t, c)...))
			})
		}
	}

	seen := map[string]bool{}
	for _, tc := range brokenCases {
		// Several offline cases share a fixture; one API check each is enough.
		if seen[tc.file] {
			continue
		}
		seen[tc.file] = true
		t.Run("broken "+tc.file, func(t *testing.T) {
			objs, err := ReadObjects(filepath.Join("testdata", "broken", tc.file))
			if err != nil {
				t.Fatal(err)
			}
			var errs []error
			for _, u := range objs {
				if slices.Contains(crdGroups, u.GroupVersionKind().Group) {
					continue
				}
				if err := a.apply(ctx, u, true); err != nil {
					errs = append(errs, err)
				}
			}
			if tc.api == "" {
				if len(errs) > 0 {
					t.Fatalf("the API server should accept %s (the offline checks catch it), got %v", tc.file, errs)
				}
				return
			}
			for _, err := range errs {
				if strings.Contains(err.Error(), tc.api) {
					return
				}
			}
			t.Fatalf("no API error contains %q; got %v", tc.api, errs)
		})
	}
}
