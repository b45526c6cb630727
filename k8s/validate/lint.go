package validate

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/plugins"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// ErrLint marks a cross-object or policy problem the API server would accept.
var ErrLint = errors.New("manifest check failed")

// HeartbeatContainer is the sidecar's container name; the sidecar-specific
// checks apply to containers with this name.
const HeartbeatContainer = "heartbeat"

// Shutdown defaults of `heartbeat serve` (--shutdown-timeout, --drain-delay).
const (
	defaultShutdownTimeout = 10 * time.Second
	defaultDrainDelay      = 0
)

// rootCAConfigMap is published into every namespace by the
// kube-controller-manager (the cluster's CA bundle), so no render has it.
const rootCAConfigMap = "kube-root-ca.crt"

// podTemplate is one workload's pod template, with where it came from.
type podTemplate struct {
	owner     string // "Deployment heartbeat/example-app"
	namespace string
	selector  *metav1.LabelSelector
	spec      *corev1.PodTemplateSpec
}

// set is every decoded object of one render, indexed for the checks.
type set struct {
	templates       []podTemplate
	services        map[string]*corev1.Service // "ns/name"
	configMaps      map[string]*corev1.ConfigMap
	serviceAccounts map[string]bool
	namespaces      map[string]*corev1.Namespace
	serviceMonitors []*monitoringv1.ServiceMonitor
}

func key(ns, name string) string { return ns + "/" + name }

// Lint cross-checks decoded objects and returns every problem found.
func Lint(objs []runtime.Object) []error {
	s := set{
		services:        map[string]*corev1.Service{},
		configMaps:      map[string]*corev1.ConfigMap{},
		serviceAccounts: map[string]bool{},
		namespaces:      map[string]*corev1.Namespace{},
	}
	for _, o := range objs {
		switch v := o.(type) {
		case *appsv1.Deployment:
			s.templates = append(s.templates, podTemplate{"Deployment " + key(v.Namespace, v.Name), v.Namespace, v.Spec.Selector, &v.Spec.Template})
		case *appsv1.DaemonSet:
			s.templates = append(s.templates, podTemplate{"DaemonSet " + key(v.Namespace, v.Name), v.Namespace, v.Spec.Selector, &v.Spec.Template})
		case *appsv1.StatefulSet:
			s.templates = append(s.templates, podTemplate{"StatefulSet " + key(v.Namespace, v.Name), v.Namespace, v.Spec.Selector, &v.Spec.Template})
		case *corev1.Service:
			s.services[key(v.Namespace, v.Name)] = v
		case *corev1.ConfigMap:
			s.configMaps[key(v.Namespace, v.Name)] = v
		case *corev1.ServiceAccount:
			s.serviceAccounts[key(v.Namespace, v.Name)] = true
		case *corev1.Namespace:
			s.namespaces[v.Name] = v
		case *monitoringv1.ServiceMonitor:
			s.serviceMonitors = append(s.serviceMonitors, v)
		}
	}
	var errs []error
	report := func(owner, field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s: %s: %s", ErrLint, owner, field, fmt.Sprintf(format, args...)))
	}
	for _, t := range s.templates {
		s.lintTemplate(t, report)
	}
	for _, k := range sortedKeys(s.services) {
		s.lintService(s.services[k], report)
	}
	for _, k := range sortedKeys(s.configMaps) {
		s.lintChecksFile(s.configMaps[k], report)
		lintDashboard(s.configMaps[k], report)
	}
	for _, sm := range s.serviceMonitors {
		s.lintServiceMonitor(sm, report)
	}
	return errs
}

type reporter func(owner, field, format string, args ...any)

func (s *set) lintTemplate(t podTemplate, report reporter) {
	spec := &t.spec.Spec
	if t.selector == nil {
		report(t.owner, "spec.selector", "missing")
	} else if sel, err := metav1.LabelSelectorAsSelector(t.selector); err != nil {
		report(t.owner, "spec.selector", "%v", err)
	} else if !sel.Matches(labels.Set(t.spec.Labels)) {
		report(t.owner, "spec.selector", "%s does not match the template's labels %v", sel, t.spec.Labels)
	}
	if sa := spec.ServiceAccountName; sa != "" && sa != "default" && !s.serviceAccounts[key(t.namespace, sa)] {
		report(t.owner, "spec.template.spec.serviceAccountName", "ServiceAccount %s is not in the render", key(t.namespace, sa))
	}
	volumes := map[string]*corev1.Volume{}
	for i := range spec.Volumes {
		v := &spec.Volumes[i]
		volumes[v.Name] = v
		if v.ConfigMap != nil {
			field := fmt.Sprintf("spec.template.spec.volumes[%s].configMap", v.Name)
			cm, ok := s.configMaps[key(t.namespace, v.ConfigMap.Name)]
			switch {
			case !ok && v.ConfigMap.Name == rootCAConfigMap:
			case !ok && (v.ConfigMap.Optional == nil || !*v.ConfigMap.Optional):
				report(t.owner, field, "ConfigMap %s is not in the render", key(t.namespace, v.ConfigMap.Name))
			case ok:
				for _, it := range v.ConfigMap.Items {
					if _, found := cm.Data[it.Key]; !found {
						report(t.owner, field+".items", "ConfigMap %s has no key %q", cm.Name, it.Key)
					}
				}
			}
		}
	}
	// Pod Security: "restricted" everywhere except in a namespace that
	// enforces "privileged" on purpose (Fluent Bit reading node logs as root).
	privilegedNS := false
	if ns, ok := s.namespaces[t.namespace]; ok && ns.Labels["pod-security.kubernetes.io/enforce"] == "privileged" {
		privilegedNS = true
	}
	podSC := spec.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}
	for _, pc := range podContainers(spec) {
		c, field := pc.c, pc.field
		if pc.init && c.Name == HeartbeatContainer && !isSidecar(c) {
			report(t.owner, field+".restartPolicy", "must be Always: as a plain init container, heartbeat serve never exits and the app never starts")
		}
		lintContainerSecurity(t.owner, field, podSC, c, privilegedNS, report)
		lintResources(t.owner, field, c, report)
		lintProbePorts(t.owner, field, c, report)
		lintEnvRefs(t.owner, field, c, report)
		if c.Name == HeartbeatContainer {
			s.lintHeartbeat(t, field, c, volumes, report)
		}
		s.lintCollector(t, field, c, volumes, report)
		s.lintFluentBit(t, field, c, volumes, report)
		s.lintArgPaths(t, field, c, volumes, report)
	}
}

// podContainer is one container of a pod spec with its field path.
type podContainer struct {
	c     *corev1.Container
	field string
	init  bool
}

// podContainers lists the init containers (native sidecars among them), then
// the regular containers: every check applies to both kinds.
func podContainers(spec *corev1.PodSpec) []podContainer {
	out := make([]podContainer, 0, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		out = append(out, podContainer{c, fmt.Sprintf("spec.template.spec.initContainers[%s]", c.Name), true})
	}
	for i := range spec.Containers {
		c := &spec.Containers[i]
		out = append(out, podContainer{c, fmt.Sprintf("spec.template.spec.containers[%s]", c.Name), false})
	}
	return out
}

// isSidecar reports a native sidecar: an init container that keeps running
// beside the app containers.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// servingContainers are the containers whose ports a Service can target:
// the regular ones and the native sidecars.
func servingContainers(spec *corev1.PodSpec) []corev1.Container {
	out := slices.Clone(spec.Containers)
	for _, c := range spec.InitContainers {
		if isSidecar(&c) {
			out = append(out, c)
		}
	}
	return out
}

func lintContainerSecurity(owner, field string, pod *corev1.PodSecurityContext, c *corev1.Container, privilegedNS bool, report reporter) {
	sc := c.SecurityContext
	if sc == nil {
		report(owner, field+".securityContext", "missing")
		return
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		report(owner, field+".securityContext.allowPrivilegeEscalation", "must be false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		report(owner, field+".securityContext.readOnlyRootFilesystem", "must be true")
	}
	if sc.Privileged != nil && *sc.Privileged {
		report(owner, field+".securityContext.privileged", "must not be true")
	}
	if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		report(owner, field+".securityContext.capabilities.drop", "must contain ALL")
	} else if len(sc.Capabilities.Add) > 0 {
		report(owner, field+".securityContext.capabilities.add", "must be empty, has %v", sc.Capabilities.Add)
	}
	seccomp := pod.SeccompProfile
	if sc.SeccompProfile != nil {
		seccomp = sc.SeccompProfile
	}
	if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		report(owner, field+".securityContext.seccompProfile", "must be RuntimeDefault (pod or container level)")
	}
	if privilegedNS {
		return
	}
	nonRoot := pod.RunAsNonRoot
	if sc.RunAsNonRoot != nil {
		nonRoot = sc.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		report(owner, field+".securityContext.runAsNonRoot", "must be true (pod or container level)")
	}
	uid := pod.RunAsUser
	if sc.RunAsUser != nil {
		uid = sc.RunAsUser
	}
	if uid != nil && *uid == 0 {
		report(owner, field+".securityContext.runAsUser", "must not be 0")
	}
}

func lintResources(owner, field string, c *corev1.Container, report reporter) {
	r := c.Resources
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := r.Requests[name]; !ok {
			report(owner, field+".resources.requests."+string(name), "missing")
		}
	}
	lim, ok := r.Limits[corev1.ResourceMemory]
	if !ok {
		report(owner, field+".resources.limits.memory", "missing")
		return
	}
	if req, ok := r.Requests[corev1.ResourceMemory]; ok && req.Cmp(lim) > 0 {
		report(owner, field+".resources", "memory request %s is above the limit %s", req.String(), lim.String())
	}
	// A Go soft memory limit at or above the container limit never helps.
	for _, e := range c.Env {
		if e.Name != "GOMEMLIMIT" {
			continue
		}
		soft, err := parseGoMemLimit(e.Value)
		if err != nil {
			report(owner, field+".env[GOMEMLIMIT]", "%v", err)
		} else if soft >= lim.Value() {
			report(owner, field+".env[GOMEMLIMIT]", "%s is not below the memory limit %s", e.Value, lim.String())
		}
	}
}

// parseGoMemLimit reads GOMEMLIMIT's syntax: bytes with an optional B, KiB,
// MiB, GiB or TiB suffix.
func parseGoMemLimit(v string) (int64, error) {
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"B", 1}} {
		if strings.HasSuffix(v, u.suffix) {
			v, mult = strings.TrimSuffix(v, u.suffix), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a GOMEMLIMIT value", v)
	}
	return n * mult, nil
}

func lintProbePorts(owner, field string, c *corev1.Container, report reporter) {
	for name, p := range map[string]*corev1.Probe{"livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe, "startupProbe": c.StartupProbe} {
		if p == nil {
			continue
		}
		var port *intstr.IntOrString
		switch {
		case p.HTTPGet != nil:
			port = &p.HTTPGet.Port
		case p.TCPSocket != nil:
			port = &p.TCPSocket.Port
		}
		if port != nil && port.Type == intstr.String && !slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == port.StrVal }) {
			report(owner, field+"."+name, "port %q is not one of the container's named ports", port.StrVal)
		}
	}
}

// envRef is Kubernetes' $(VAR) syntax in env values, args and commands.
var envRef = regexp.MustCompile(`\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

// lintEnvRefs catches $(VAR) references to variables not defined earlier in
// the same container: Kubernetes leaves those as literal text, silently.
func lintEnvRefs(owner, field string, c *corev1.Container, report reporter) {
	defined := map[string]bool{}
	for _, e := range c.Env {
		for _, m := range envRef.FindAllStringSubmatch(e.Value, -1) {
			if !defined[m[1]] {
				report(owner, field+".env["+e.Name+"]", "$(%s) refers to no variable defined before it", m[1])
			}
		}
		defined[e.Name] = true
	}
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		for _, m := range envRef.FindAllStringSubmatch(a, -1) {
			if !defined[m[1]] {
				report(owner, field+".args", "$(%s) refers to no variable in env", m[1])
			}
		}
	}
}

// downwardEnv is what the heartbeat sidecar must receive from the downward API.
var downwardEnv = map[string]string{
	"POD_NAME":      "metadata.name",
	"POD_NAMESPACE": "metadata.namespace",
	"NODE_NAME":     "spec.nodeName",
	"POD_UID":       "metadata.uid",
}

// resourceAttrs maps OTel resource attributes to the env var each must come from.
var resourceAttrs = map[string]string{
	"k8s.pod.name":       "POD_NAME",
	"k8s.namespace.name": "POD_NAMESPACE",
	"k8s.node.name":      "NODE_NAME",
	"k8s.pod.uid":        "POD_UID",
	"k8s.container.name": "CONTAINER_NAME",
}

func (s *set) lintHeartbeat(t podTemplate, field string, c *corev1.Container, volumes map[string]*corev1.Volume, report reporter) {
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, name := range sortedKeys(downwardEnv) {
		e, ok := env[name]
		if !ok || e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != downwardEnv[name] {
			report(t.owner, field+".env["+name+"]", "must come from the downward API field %s", downwardEnv[name])
		}
	}
	if env["CONTAINER_NAME"].Value != c.Name {
		report(t.owner, field+".env[CONTAINER_NAME]", "must be %q", c.Name)
	}
	attrs := map[string]string{}
	for _, kv := range strings.Split(env["OTEL_RESOURCE_ATTRIBUTES"].Value, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			attrs[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	for _, a := range sortedKeys(resourceAttrs) {
		if want := "$(" + resourceAttrs[a] + ")"; attrs[a] != want {
			report(t.owner, field+".env[OTEL_RESOURCE_ATTRIBUTES]", "%s must be %s, is %q", a, want, attrs[a])
		}
	}
	if e, ok := env["OTEL_EXPORTER_OTLP_ENDPOINT"]; ok {
		s.checkEndpoint(t.owner, field+".env[OTEL_EXPORTER_OTLP_ENDPOINT]", t.namespace, e.Value, report)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/healthz" {
		report(t.owner, field+".livenessProbe", "must be an HTTP GET of /healthz")
	}
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
		report(t.owner, field+".readinessProbe", "must be an HTTP GET of /readyz")
	}
	// Draining and the telemetry flush must finish before the kubelet's SIGKILL.
	shutdown, drain := defaultShutdownTimeout, time.Duration(defaultDrainDelay)
	for name, dst := range map[string]*time.Duration{"HEARTBEAT_SHUTDOWN_TIMEOUT": &shutdown, "HEARTBEAT_DRAIN_DELAY": &drain} {
		if e, ok := env[name]; ok {
			d, err := time.ParseDuration(e.Value)
			if err != nil {
				report(t.owner, field+".env["+name+"]", "%v", err)
				continue
			}
			*dst = d
		}
	}
	grace := 30 * time.Second // the API server's default
	if g := t.spec.Spec.TerminationGracePeriodSeconds; g != nil {
		grace = time.Duration(*g) * time.Second
	}
	if grace <= shutdown+drain {
		report(t.owner, "spec.template.spec.terminationGracePeriodSeconds", "%v is not above the sidecar's drain delay + shutdown timeout (%v)", grace, shutdown+drain)
	}
	if e, ok := env["HEARTBEAT_CONFIG"]; ok {
		s.checkMountedFile(t, field+".env[HEARTBEAT_CONFIG]", c, volumes, e.Value, true, report)
	}
	lintPingGroupRange(t, c, report)
}

// pingGroupRange is the sysctl that lets a process whose group is in the
// range open ICMP datagram sockets, which the icmp checks use instead of
// CAP_NET_RAW (the restricted profile allows no capabilities).
const pingGroupRange = "net.ipv4.ping_group_range"

// lintPingGroupRange reports a heartbeat pod whose sidecar cannot send ICMP
// echo: the sysctl is missing, or its range leaves out the sidecar's group.
func lintPingGroupRange(t podTemplate, c *corev1.Container, report reporter) {
	const field = "spec.template.spec.securityContext.sysctls"
	podSC := t.spec.Spec.SecurityContext
	if podSC == nil {
		podSC = &corev1.PodSecurityContext{}
	}
	i := slices.IndexFunc(podSC.Sysctls, func(s corev1.Sysctl) bool { return s.Name == pingGroupRange })
	if i < 0 {
		report(t.owner, field, "no %s: icmp checks cannot open ICMP sockets", pingGroupRange)
		return
	}
	var lo, hi int64
	if _, err := fmt.Sscanf(podSC.Sysctls[i].Value, "%d %d", &lo, &hi); err != nil || lo > hi {
		report(t.owner, field+"["+pingGroupRange+"]", "%q is not two group ids, low then high", podSC.Sysctls[i].Value)
		return
	}
	gid := podSC.RunAsGroup
	if c.SecurityContext != nil && c.SecurityContext.RunAsGroup != nil {
		gid = c.SecurityContext.RunAsGroup
	}
	if gid != nil && (*gid < lo || *gid > hi) {
		report(t.owner, field+"["+pingGroupRange+"]", "range %d-%d leaves out the %s container's group %d", lo, hi, c.Name, *gid)
	}
}

// checkMountedFile reports a path that no ConfigMap volume of c provides.
// With mustMount false, a path outside every volume mount is not a problem
// (an argument that merely looks like a path).
func (s *set) checkMountedFile(t podTemplate, field string, c *corev1.Container, volumes map[string]*corev1.Volume, path string, mustMount bool, report reporter) {
	for _, m := range c.VolumeMounts {
		rel, ok := strings.CutPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")
		if !ok {
			continue
		}
		v := volumes[m.Name]
		if v == nil || v.ConfigMap == nil {
			if mustMount {
				report(t.owner, field, "%s is on volume %q, which is not a ConfigMap", path, m.Name)
			}
			return
		}
		if m.SubPath != "" {
			report(t.owner, field, "%s is mounted with subPath, which never sees ConfigMap updates", path)
		}
		if cm, ok := s.configMaps[key(t.namespace, v.ConfigMap.Name)]; ok {
			if _, found := cm.Data[rel]; !found {
				report(t.owner, field, "ConfigMap %s has no key %q for %s", cm.Name, rel, path)
			}
		}
		return
	}
	if mustMount {
		report(t.owner, field, "%s is on no volume mount", path)
	}
}

// lintArgPaths checks that file arguments (-c FILE, --config=FILE) that
// point into a ConfigMap mount name a key the ConfigMap has.
func (s *set) lintArgPaths(t podTemplate, field string, c *corev1.Container, volumes map[string]*corev1.Volume, report reporter) {
	for i, a := range append(slices.Clone(c.Command), c.Args...) {
		if strings.HasPrefix(a, "-") {
			_, a, _ = strings.Cut(a, "=")
		}
		if strings.HasPrefix(a, "/") {
			s.checkMountedFile(t, fmt.Sprintf("%s.args[%d]", field, i), c, volumes, a, false, report)
		}
	}
}

// fluentBitEnv is Fluent Bit's ${NAME} environment reference.
var fluentBitEnv = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// lintFluentBit checks that every ${NAME} in a mounted fluent-bit.conf is
// set in the container's env (Fluent Bit would substitute an empty string).
func (s *set) lintFluentBit(t podTemplate, field string, c *corev1.Container, volumes map[string]*corev1.Volume, report reporter) {
	conf := s.mountedKey(t, c, volumes, "fluent-bit.conf")
	if conf == "" {
		return
	}
	env := map[string]bool{}
	for _, e := range c.Env {
		env[e.Name] = true
	}
	for _, m := range fluentBitEnv.FindAllStringSubmatch(conf, -1) {
		if !env[m[1]] {
			report(t.owner, field+".env", "fluent-bit.conf uses ${%s}, which the container does not set", m[1])
		}
	}
}

// mountedKey returns the data under key in a ConfigMap that c mounts, or "".
func (s *set) mountedKey(t podTemplate, c *corev1.Container, volumes map[string]*corev1.Volume, dataKey string) string {
	for _, m := range c.VolumeMounts {
		if v := volumes[m.Name]; v != nil && v.ConfigMap != nil {
			if cm, ok := s.configMaps[key(t.namespace, v.ConfigMap.Name)]; ok {
				if d, ok := cm.Data[dataKey]; ok {
					return d
				}
			}
		}
	}
	return ""
}

// collectorEnv is the collector config's ${env:NAME} and ${env:NAME:-default}.
var collectorEnv = regexp.MustCompile(`\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}`)

// lintCollector applies to containers that mount a ConfigMap holding
// otel-collector.yaml: every ${env:NAME} without a default is set, and every
// endpoint (set here or defaulted in the file) names a rendered Service.
func (s *set) lintCollector(t podTemplate, field string, c *corev1.Container, volumes map[string]*corev1.Volume, report reporter) {
	config := s.mountedKey(t, c, volumes, "otel-collector.yaml")
	if config == "" {
		return
	}
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for _, m := range collectorEnv.FindAllStringSubmatch(config, -1) {
		name, def := m[1], m[2]
		val, set := env[name]
		if !set && !strings.Contains(m[0], ":-") {
			report(t.owner, field+".env", "otel-collector.yaml needs %s, which has no default", name)
			continue
		}
		if !set {
			val = def
		}
		if strings.HasSuffix(name, "_ENDPOINT") {
			s.checkEndpoint(t.owner, field+".env["+name+"]", t.namespace, val, report)
		}
	}
}

// checkEndpoint reports an endpoint ("host:port" or a URL) whose host is a
// cluster Service name that the render lacks, or lacks the port. Listen
// addresses (0.0.0.0, localhost) and hosts outside the cluster are skipped.
func (s *set) checkEndpoint(owner, field, namespace, endpoint string, report reporter) {
	hostport := endpoint
	if strings.Contains(endpoint, "://") {
		u, err := url.Parse(endpoint)
		if err != nil {
			report(owner, field, "%q: %v", endpoint, err)
			return
		}
		hostport = u.Host
		if u.Port() == "" {
			hostport = net.JoinHostPort(u.Hostname(), map[string]string{"https": "443"}[u.Scheme]+map[string]string{"http": "80"}[u.Scheme])
		}
	}
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		// A bare host (the syslog exporter's endpoint takes its port separately).
		host, port = hostport, ""
	}
	if host == "" || net.ParseIP(host) != nil || host == "localhost" {
		return
	}
	name, ns := host, namespace
	if parts := strings.Split(host, "."); len(parts) > 1 {
		if len(parts) < 3 || parts[2] != "svc" {
			return // not a cluster Service name
		}
		name, ns = parts[0], parts[1]
	}
	svc, ok := s.services[key(ns, name)]
	if !ok {
		report(owner, field, "%q: no Service %s in the render", endpoint, key(ns, name))
		return
	}
	if port == "" || svc.Spec.Type == corev1.ServiceTypeExternalName && len(svc.Spec.Ports) == 0 {
		return
	}
	if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == port }) {
		report(owner, field, "%q: Service %s has no port %s", endpoint, key(ns, name), port)
	}
}

func (s *set) lintService(svc *corev1.Service, report reporter) {
	owner := "Service " + key(svc.Namespace, svc.Name)
	if svc.Spec.Type == corev1.ServiceTypeExternalName || len(svc.Spec.Selector) == 0 {
		return
	}
	sel := labels.SelectorFromSet(svc.Spec.Selector)
	var matched []podTemplate
	for _, t := range s.templates {
		if t.namespace == svc.Namespace && sel.Matches(labels.Set(t.spec.Labels)) {
			matched = append(matched, t)
		}
	}
	if len(matched) == 0 {
		report(owner, "spec.selector", "%s selects no pod template in namespace %s", sel, svc.Namespace)
		return
	}
	for _, p := range svc.Spec.Ports {
		if p.TargetPort.Type != intstr.String {
			continue
		}
		for _, t := range matched {
			found := slices.ContainsFunc(servingContainers(&t.spec.Spec), func(c corev1.Container) bool {
				return slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool { return cp.Name == p.TargetPort.StrVal })
			})
			if !found {
				report(owner, "spec.ports["+p.Name+"].targetPort", "%q is no named container port of %s", p.TargetPort.StrVal, t.owner)
			}
		}
	}
}

// lintServiceMonitor checks that a ServiceMonitor selects rendered Services
// and that each endpoint's port name exists on every one of them: a renamed
// port otherwise stops the scrape without any error anywhere.
func (s *set) lintServiceMonitor(sm *monitoringv1.ServiceMonitor, report reporter) {
	owner := "ServiceMonitor " + key(sm.Namespace, sm.Name)
	sel, err := metav1.LabelSelectorAsSelector(&sm.Spec.Selector)
	if err != nil {
		report(owner, "spec.selector", "%v", err)
		return
	}
	namespaces := sm.Spec.NamespaceSelector.MatchNames
	if len(namespaces) == 0 && !sm.Spec.NamespaceSelector.Any {
		namespaces = []string{sm.Namespace}
	}
	var matched []*corev1.Service
	for _, k := range sortedKeys(s.services) {
		svc := s.services[k]
		if (sm.Spec.NamespaceSelector.Any || slices.Contains(namespaces, svc.Namespace)) && sel.Matches(labels.Set(svc.Labels)) {
			matched = append(matched, svc)
		}
	}
	if len(matched) == 0 {
		report(owner, "spec.selector", "%s selects no Service in %v", sel, namespaces)
		return
	}
	for i, ep := range sm.Spec.Endpoints {
		if ep.Port == "" {
			continue
		}
		for _, svc := range matched {
			if !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port }) {
				report(owner, fmt.Sprintf("spec.endpoints[%d].port", i), "Service %s has no port named %q", key(svc.Namespace, svc.Name), ep.Port)
			}
		}
	}
}

// dashboardLabel marks the ConfigMaps Grafana's dashboard sidecar loads.
const dashboardLabel = "grafana_dashboard"

// lintDashboard checks that a ConfigMap for Grafana's sidecar holds
// dashboards: the sidecar skips a file it cannot parse with only a log line.
func lintDashboard(cm *corev1.ConfigMap, report reporter) {
	if _, ok := cm.Labels[dashboardLabel]; !ok {
		return
	}
	owner := "ConfigMap " + key(cm.Namespace, cm.Name)
	if len(cm.Data) == 0 {
		report(owner, "data", "no dashboard, but labelled %s", dashboardLabel)
	}
	// The panel and query types (timeseries, stat, prometheus ...) the
	// strict decoder checks options and targets against.
	plugins.RegisterDefaultPlugins()
	for _, k := range sortedKeys(cm.Data) {
		field := "data[" + k + "]"
		if !strings.HasSuffix(k, ".json") {
			report(owner, field, "the sidecar loads only *.json keys")
			continue
		}
		if !json.Valid([]byte(cm.Data[k])) {
			var v any
			report(owner, field, "not a dashboard's JSON model: %v", json.Unmarshal([]byte(cm.Data[k]), &v))
			continue
		}
		// The classic JSON model is what the sidecar and Grafana's import
		// read; dashboardv2 is the newer schema-v2 resource format.
		//lint:ignore SA1019 the classic model is the one we ship
		var d dashboard.Dashboard
		err := d.UnmarshalJSONStrict([]byte(cm.Data[k]))
		// It returns an empty cog.BuildErrors, not nil, when all is well.
		if be, ok := err.(cog.BuildErrors); ok && len(be) == 0 {
			err = nil
		}
		switch {
		case err != nil:
			report(owner, field, "not a complete dashboard model (Grafana's schema, strict): %v", err)
		case d.Title == nil || *d.Title == "" || len(d.Panels) == 0:
			report(owner, field, "a dashboard needs a title and panels")
		}
	}
}

// checksFile is the part of heartbeat's checks YAML that refers to the cluster.
type checksFile struct {
	Checks []struct {
		Name        string `json:"name"`
		Target      string `json:"target"`
		EachAddress bool   `json:"each_address"`
	} `json:"checks"`
}

// lintChecksFile checks, in a ConfigMap holding checks.yaml, that targets
// naming cluster Services exist with that port, and that each_address targets
// are headless (a ClusterIP would hide the peers behind one address).
func (s *set) lintChecksFile(cm *corev1.ConfigMap, report reporter) {
	data, ok := cm.Data["checks.yaml"]
	if !ok {
		return
	}
	owner := "ConfigMap " + key(cm.Namespace, cm.Name)
	var f checksFile
	if err := yaml.Unmarshal([]byte(data), &f); err != nil {
		report(owner, "data[checks.yaml]", "%v", err)
		return
	}
	for _, c := range f.Checks {
		field := "data[checks.yaml].checks[" + c.Name + "].target"
		s.checkEndpoint(owner, field, cm.Namespace, c.Target, report)
		if !c.EachAddress {
			continue
		}
		u, err := url.Parse(c.Target)
		if err != nil {
			continue
		}
		parts := strings.Split(u.Hostname(), ".")
		if len(parts) >= 3 && parts[2] == "svc" {
			if svc, ok := s.services[key(parts[1], parts[0])]; ok && svc.Spec.ClusterIP != corev1.ClusterIPNone {
				report(owner, field, "each_address needs a headless Service; %s has clusterIP %q", key(parts[1], parts[0]), svc.Spec.ClusterIP)
			}
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
