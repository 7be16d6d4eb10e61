{{/*
Labels of every object: those of the kustomize tree (part-of, component) plus
Helm's own. Pod templates and selectors carry only the kustomize ones, so that
the two renderings select the same pods.
*/}}
{{- define "edgebridge.labels" -}}
app.kubernetes.io/part-of: edgebridge
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{/* The image of the agent and the controller. */}}
{{- define "edgebridge.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The agent's ServiceAccount as the API server names its user. */}}
{{- define "edgebridge.agentUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:edgebridge-agent
{{- end }}
