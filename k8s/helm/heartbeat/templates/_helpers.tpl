{{/* The chart's name, overridable. */}}
{{- define "heartbeat.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's base name for every object: the release name, with the
chart's name appended unless it already contains it. */}}
{{- define "heartbeat.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The workload: the example app in mode sidecar, heartbeat itself in mode daemonset. */}}
{{- define "heartbeat.workloadName" -}}
{{- if eq .Values.mode "sidecar" }}{{ .Values.example.name }}{{ else }}{{ include "heartbeat.fullname" . }}{{ end }}
{{- end }}

{{/* Labels Helm users expect on every object, beside each object's own. */}}
{{- define "heartbeat.releaseLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: heartbeat
{{- end }}

{{/* The pods' selector labels. */}}
{{- define "heartbeat.selectorLabels" -}}
app.kubernetes.io/name: {{ if eq .Values.mode "sidecar" }}{{ .Values.example.name }}{{ else }}{{ include "heartbeat.name" . }}{{ end }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of the workload and its ServiceAccount. */}}
{{- define "heartbeat.labels" -}}
{{ include "heartbeat.selectorLabels" . }}
{{ include "heartbeat.releaseLabels" . }}
{{- end }}

{{/* Labels of heartbeat's own parts of the workload (peers Service, checks). */}}
{{- define "heartbeat.componentLabels" -}}
{{ include "heartbeat.selectorLabels" . }}
app.kubernetes.io/component: heartbeat
{{ include "heartbeat.releaseLabels" . }}
{{- end }}

{{- define "heartbeat.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "heartbeat.workloadName" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "heartbeat.checksConfigMap" -}}
{{- default (printf "%s-checks" (include "heartbeat.fullname" .)) .Values.checks.existingConfigMap }}
{{- end }}

{{/* The checks file as rendered into the ConfigMap. */}}
{{- define "heartbeat.checksFile" -}}
{{ tpl (toYaml .Values.checks.config) . }}
{{- end }}

{{/* The pod's securityContext: podSecurityContext plus the ICMP sysctl. */}}
{{- define "heartbeat.podSecurityContext" -}}
{{- $psc := deepCopy .Values.podSecurityContext }}
{{- if .Values.icmp.pingGroupRange }}
{{- $icmp := dict "name" "net.ipv4.ping_group_range" "value" .Values.icmp.pingGroupRange }}
{{- $_ := set $psc "sysctls" (concat (default list $psc.sysctls) (list $icmp)) }}
{{- end }}
{{- toYaml $psc }}
{{- end }}

{{/* Bad values caught before anything renders, each with what to do. */}}
{{- define "heartbeat.validate" -}}
{{- if and (eq .Values.mode "sidecar") .Values.sidecar.native (semverCompare "<1.29.0-0" .Capabilities.KubeVersion.Version) }}
{{- fail (printf "sidecar.native: native sidecars need Kubernetes 1.29 or later, this cluster is %s: set sidecar.native=false" .Capabilities.KubeVersion.Version) }}
{{- end }}
{{- if and (not .Values.checks.existingConfigMap) (not .Values.checks.config) }}
{{- fail "checks: set checks.config (the checks file) or checks.existingConfigMap (a ConfigMap with key checks.yaml)" }}
{{- end }}
{{- end }}
