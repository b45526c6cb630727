{{/* The heartbeat container, the same in both modes; in mode sidecar with
sidecar.native it is an init container with restartPolicy: Always. */}}
{{- define "heartbeat.container" -}}
- name: heartbeat
  image: {{ printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  {{- if and (eq .Values.mode "sidecar") .Values.sidecar.native }}
  # This makes the init container a native sidecar.
  restartPolicy: Always
  {{- end }}
  args:
    - serve
    {{- range .Values.heartbeat.extraArgs }}
    - {{ . | quote }}
    {{- end }}
  ports:
    - name: heartbeat
      containerPort: 8080
      protocol: TCP
  env:
    # Downward API: who and where this pod is, for the telemetry's resource
    # attributes (and X-Heartbeat-Host, which reports POD_NAME).
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: NODE_NAME
      valueFrom:
        fieldRef:
          fieldPath: spec.nodeName
    - name: POD_UID
      valueFrom:
        fieldRef:
          fieldPath: metadata.uid
    - name: CONTAINER_NAME
      value: heartbeat
    - name: OTEL_SERVICE_NAME
      value: {{ .Values.otel.serviceName | quote }}
    {{- $attrs := list "k8s.pod.name=$(POD_NAME)" "k8s.namespace.name=$(POD_NAMESPACE)" "k8s.node.name=$(NODE_NAME)" "k8s.pod.uid=$(POD_UID)" "k8s.container.name=$(CONTAINER_NAME)" }}
    {{- if eq .Values.mode "sidecar" }}
    {{- $attrs = append $attrs (printf "k8s.deployment.name=%s" .Values.example.name) }}
    {{- else }}
    {{- $attrs = append $attrs (printf "k8s.daemonset.name=%s" (include "heartbeat.fullname" .)) }}
    {{- end }}
    {{- $attrs = append $attrs "service.instance.id=$(POD_NAMESPACE).$(POD_NAME).$(CONTAINER_NAME)" }}
    {{- range $k, $v := .Values.otel.resourceAttributes }}
    {{- $attrs = append $attrs (printf "%s=%s" $k $v) }}
    {{- end }}
    # $(VAR) expands the variables defined above, in this order.
    - name: OTEL_RESOURCE_ATTRIBUTES
      value: {{ join "," $attrs | quote }}
    - name: OTEL_EXPORTER_OTLP_ENDPOINT
      value: {{ tpl .Values.otel.endpoint . | quote }}
    - name: OTEL_EXPORTER_OTLP_PROTOCOL
      value: {{ .Values.otel.protocol | quote }}
    - name: HEARTBEAT_CONFIG
      value: /etc/heartbeat/checks.yaml
    - name: HEARTBEAT_SYSLOG_ADDR
      value: {{ .Values.heartbeat.syslogAddr | quote }}
    - name: HEARTBEAT_LOG
      value: {{ .Values.heartbeat.accessLog | quote }}
    - name: HEARTBEAT_DRAIN_DELAY
      value: {{ .Values.heartbeat.drainDelay | quote }}
    - name: HEARTBEAT_SHUTDOWN_TIMEOUT
      value: {{ .Values.heartbeat.shutdownTimeout | quote }}
    {{- if .Values.goMemLimit }}
    - name: GOMEMLIMIT
      value: {{ .Values.goMemLimit | quote }}
    {{- end }}
    {{- with .Values.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- if and (eq .Values.mode "sidecar") .Values.sidecar.native }}
  # A native sidecar counts as started once this passes, and only then does
  # the app container start.
  startupProbe:
    httpGet:
      path: /readyz
      port: heartbeat
    periodSeconds: 1
    timeoutSeconds: 2
    failureThreshold: 30
  {{- end }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: heartbeat
    periodSeconds: 10
    timeoutSeconds: 2
    failureThreshold: 3
  readinessProbe:
    httpGet:
      path: /readyz
      port: heartbeat
    periodSeconds: 5
    timeoutSeconds: 2
    failureThreshold: 2
  resources:
    {{- toYaml .Values.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
  volumeMounts:
    # A directory mount (not subPath), so ConfigMap updates arrive as the
    # atomic symlink swap heartbeat watches for.
    - name: checks
      mountPath: /etc/heartbeat
      readOnly: true
    {{- with .Values.extraVolumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end }}

{{/* The pod spec parts both modes share, after the containers. */}}
{{- define "heartbeat.podCommon" -}}
serviceAccountName: {{ include "heartbeat.serviceAccountName" . }}
automountServiceAccountToken: false
terminationGracePeriodSeconds: {{ .Values.terminationGracePeriodSeconds }}
securityContext:
  {{- include "heartbeat.podSecurityContext" . | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The pod's volumes. */}}
{{- define "heartbeat.volumes" -}}
volumes:
  - name: checks
    configMap:
      name: {{ include "heartbeat.checksConfigMap" . }}
  {{- with .Values.extraVolumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}

{{/* The pod template's metadata. */}}
{{- define "heartbeat.podMetadata" -}}
labels:
  {{- include "heartbeat.selectorLabels" . | nindent 2 }}
  {{- with .Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- if or .Values.podAnnotations (not .Values.checks.existingConfigMap) }}
annotations:
  {{- if not .Values.checks.existingConfigMap }}
  # Rolls the pods when the checks change (heartbeat also reloads in place).
  checksum/checks: {{ include "heartbeat.checksFile" . | sha256sum }}
  {{- end }}
  {{- with .Values.podAnnotations }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end }}
{{- end }}
