{{- define "devenv-scheduler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every name: the release name when it already contains the chart's. */}}
{{- define "devenv-scheduler.fullname" -}}
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

{{/* Selects the pods of one component: (dict "ctx" $ "component" "api"). */}}
{{- define "devenv-scheduler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "devenv-scheduler.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Every object's labels: (dict "ctx" $ "component" "api"), component optional. */}}
{{- define "devenv-scheduler.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "devenv-scheduler.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
{{- end }}

{{- define "devenv-scheduler.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "devenv-scheduler.configMapName" -}}
{{ include "devenv-scheduler.fullname" . }}-config
{{- end }}

{{- define "devenv-scheduler.workerServiceAccount" -}}
{{ include "devenv-scheduler.fullname" . }}-worker
{{- end }}

{{/* How the apiserver names the worker in a request: the admission policies match it. */}}
{{- define "devenv-scheduler.workerUsername" -}}
system:serviceaccount:{{ .Release.Namespace }}:{{ include "devenv-scheduler.workerServiceAccount" . }}
{{- end }}

{{- define "devenv-scheduler.supportNamespace" -}}
{{ .Values.config.SUPPORT_NAMESPACE | default "devenv-support" }}
{{- end }}

{{/* SYSTEM_NAMESPACES as a list, its default when empty (src/config.ts). */}}
{{- define "devenv-scheduler.systemNamespaces" -}}
{{- $names := list }}
{{- range splitList "," (.Values.config.SYSTEM_NAMESPACES | default "kube-system,kube-public,kube-node-lease") }}
{{- if trim . }}{{ $names = append $names (trim .) }}{{ end }}
{{- end }}
{{- toJson $names }}
{{- end }}

{{/* No write by the worker at all: the system namespaces and the service's own. */}}
{{- define "devenv-scheduler.protectedNamespaces" -}}
{{- $names := include "devenv-scheduler.systemNamespaces" . | fromJsonArray }}
{{- append $names .Release.Namespace | uniq | toJson }}
{{- end }}

{{/* Never enrolled (src/config.ts, enrolment.systemNamespaces): the protected ones and the support namespace. */}}
{{- define "devenv-scheduler.unenrolledNamespaces" -}}
{{- $names := include "devenv-scheduler.protectedNamespaces" . | fromJsonArray }}
{{- append $names (include "devenv-scheduler.supportNamespace" .) | uniq | toJson }}
{{- end }}

{{- define "devenv-scheduler.slackSecret" -}}
{{ .Values.slack.secretName | default (printf "%s-slack" (include "devenv-scheduler.fullname" .)) }}
{{- end }}

{{- define "devenv-scheduler.temporalTlsSecret" -}}
{{ .Values.temporal.mtls.secretName | default (printf "%s-temporal-tls" (include "devenv-scheduler.fullname" .)) }}
{{- end }}

{{- define "devenv-scheduler.webhookTlsSecret" -}}
{{ .Values.webhook.tlsSecretName | default (printf "%s-webhook-tls" (include "devenv-scheduler.fullname" .)) }}
{{- end }}

{{/* "off" turns the SDK's metrics off; so does a bare off in a values file, which YAML reads as false. */}}
{{- define "devenv-scheduler.sdkMetricsOn" -}}
{{- if not (has (toString .Values.ports.sdkMetrics) (list "off" "false")) }}true{{ end }}
{{- end }}

{{/*
The Temporal connection both Deployments share, appended to each container's env: the
API key from its Secret, the client certificate's files (mounted by
devenv-scheduler.temporalVolume*).
*/}}
{{- define "devenv-scheduler.temporalEnv" -}}
{{- with .Values.temporal.apiKey.secretName }}
- name: TEMPORAL_API_KEY
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.temporal.apiKey.secretKey }}
{{- end }}
{{- if .Values.temporal.mtls.enabled }}
- name: TEMPORAL_TLS_CLIENT_CERT_PATH
  value: /etc/temporal-tls/tls.crt
- name: TEMPORAL_TLS_CLIENT_KEY_PATH
  value: /etc/temporal-tls/tls.key
{{- if .Values.temporal.mtls.serverCA }}
- name: TEMPORAL_TLS_SERVER_CA_CERT_PATH
  value: /etc/temporal-tls/ca.crt
{{- end }}
{{- end }}
{{- end }}

{{- define "devenv-scheduler.temporalVolumeMount" -}}
{{- if .Values.temporal.mtls.enabled }}
- name: temporal-tls
  mountPath: /etc/temporal-tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "devenv-scheduler.temporalVolume" -}}
{{- if .Values.temporal.mtls.enabled }}
- name: temporal-tls
  secret:
    secretName: {{ include "devenv-scheduler.temporalTlsSecret" . }}
    defaultMode: 288 # 0440: readable by the pod's group (fsGroup) only
{{- end }}
{{- end }}

{{/* The pod and container security of k8s/: non-root, read-only, nothing to escalate to. */}}
{{- define "devenv-scheduler.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "devenv-scheduler.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
readOnlyRootFilesystem: true
allowPrivilegeEscalation: false
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Where each pod may be scheduled, as the values say; nothing when they say nothing. */}}
{{- define "devenv-scheduler.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
