{{- define "netsight.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "netsight.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "netsight.selectorLabels" -}}
app.kubernetes.io/name: {{ include "netsight.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "netsight.labels" -}}
{{ include "netsight.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The capability set: exactly these, everything else dropped. */}}
{{- define "netsight.capabilities" -}}
- NET_ADMIN
- NET_RAW
- BPF
- PERFMON
{{- if .Values.capabilities.sysAdmin }}
- SYS_ADMIN
{{- end }}
{{- end -}}

{{/*
The agent's config: the user's values plus what the chart owns (listen
address, data dir, host paths). The listen address is set by --listen from
the node IP at run time.
*/}}
{{- define "netsight.config" -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $_ := set $cfg "data_dir" "/var/lib/netsight" -}}
{{- $_ := set $cfg "paths" (dict "procfs" "/host/proc" "sysfs" "/host/sys" "cgroupfs" "/host/sys/fs/cgroup") -}}
{{- toYaml $cfg -}}
{{- end -}}

{{/*
"true" when the agent reads nodes from the Kubernetes API
(config.topology.kubernetes: api): the pod then gets the service account
token and the read-only node RBAC (templates/rbac.yaml).
*/}}
{{- define "netsight.kubernetesAPI" -}}
{{- $topo := .Values.config.topology | default dict -}}
{{- if eq (toString (get $topo "kubernetes")) "api" -}}true{{- end -}}
{{- end -}}
