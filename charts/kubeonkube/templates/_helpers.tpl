{{- define "kubeonkube.labels" -}}
app.kubernetes.io/name: kubeonkube
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}
{{- define "kubeonkube.selector" -}}
app.kubernetes.io/name: kubeonkube
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}
