{{- /*
Every value is rendered with quote or toYaml (numbers with int), never raw,
so a string cannot add YAML; values.schema.json refuses the hostile ones
before rendering. .Release.Name is not a value: Helm has checked it is a
DNS name.
*/ -}}
{{/* Labels every object of a commit carries. */}}
{{- define "preview-app.labels" -}}
app.kubernetes.io/name: {{ .Values.app | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
app.kubernetes.io/version: {{ .Values.shortSha | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | quote }}
shipper.dev/app: {{ .Values.app | quote }}
shipper.dev/sha: {{ .Values.shortSha | quote }}
{{- end -}}

{{/* Labels that select a commit's pods; immutable once deployed. */}}
{{- define "preview-app.selector" -}}
app.kubernetes.io/name: {{ .Values.app | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end -}}

{{/* image reference: repository@digest, else repository:tag. Callers
render it with quote. */}}
{{- define "preview-app.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* TLS block and cert-manager annotation of an Ingress for host. */}}
{{- define "preview-app.ingressAnnotations" -}}
{{- with .Values.url }}
shipper.dev/url: {{ . | quote }}
{{- end }}
{{- with .Values.ingress.annotations }}
{{ toYaml . }}
{{- end }}
{{- if .Values.ingress.tls.enabled }}
{{- with .Values.ingress.tls.clusterIssuer }}
cert-manager.io/cluster-issuer: {{ . | quote }}
{{- end }}
{{- with .Values.ingress.tls.issuer }}
cert-manager.io/issuer: {{ . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* A probe of the app: (dict "p" probe values "port" the app's port name). */}}
{{- define "preview-app.probe" -}}
httpGet:
  path: {{ .p.path | quote }}
  port: {{ .port }}
initialDelaySeconds: {{ .p.initialDelaySeconds | int }}
periodSeconds: {{ .p.periodSeconds | int }}
timeoutSeconds: {{ .p.timeoutSeconds | int }}
failureThreshold: {{ .p.failureThreshold | int }}
{{- end -}}

{{/* A backendRef's filter naming the commit (its SHA, the argument) that
answered, in the response header Shipper-Commit. */}}
{{- define "preview-app.commitHeader" -}}
filters:
  - type: ResponseHeaderModifier
    responseHeaderModifier:
      set:
        - name: Shipper-Commit
          value: {{ . | quote }}
{{- end -}}
