{{/* Labels of one workload: name, component, and the release's. */}}
{{- define "ecommerce.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: ecommerce
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end }}

{{- define "ecommerce.selector" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end }}

{{- define "ecommerce.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "ecommerce.secretName" -}}
{{ if .Values.secrets.create }}ecommerce-secrets{{ else }}{{ required "secrets.existingSecret is required when secrets.create is false" .Values.secrets.existingSecret }}{{ end }}
{{- end }}

{{/* The pod-level security context of the platform's own pods: never root. */}}
{{- define "ecommerce.podSecurityContext" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 10001
  runAsGroup: 10001
  fsGroup: 10001
  seccompProfile:
    type: RuntimeDefault
{{- end }}

{{- define "ecommerce.containerSecurityContext" -}}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: {{ . }}
  capabilities:
    drop: [ALL]
{{- end }}

{{/* env entries: .secret names from the Secret, .config names from the ConfigMap. */}}
{{- define "ecommerce.env" -}}
env:
{{- range .secret }}
  - name: {{ . }}
    valueFrom:
      secretKeyRef:
        name: {{ include "ecommerce.secretName" $.root }}
        key: {{ . }}
{{- end }}
{{- range .config }}
  - name: {{ . }}
    valueFrom:
      configMapKeyRef:
        name: platform-config
        key: {{ . }}
{{- end }}
{{- end }}

{{/* What every Nameko process reads from config.yml, besides its secret ones. */}}
{{- define "ecommerce.namekoConfig" -}}
{{- list "MAX_WORKERS" "METRICS_PORT_BASE" "LOG_LEVEL" "LOGSTASH_HOST" "LOGSTASH_PORT" | toJson -}}
{{- end }}

{{- define "ecommerce.tmpVolume" -}}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- end }}

{{- define "ecommerce.logstashHost" -}}
{{- if .Values.logging.logstash.enabled -}}logstash{{- else -}}{{ .Values.logging.logstashHost }}{{- end -}}
{{- end }}

{{- define "ecommerce.podPeer" -}}
- podSelector:
    matchLabels:
      app.kubernetes.io/name: {{ . }}
{{- end }}
{{- define "ecommerce.externalPeers" -}}
{{- range . }}
- ipBlock:
    cidr: {{ . }}
{{- end }}
{{- end }}

{{- define "ecommerce.infraPod" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: {{ . }}
  runAsGroup: {{ . }}
  fsGroup: {{ . }}
  seccompProfile:
    type: RuntimeDefault
{{- end }}
{{- define "ecommerce.headless" -}}
apiVersion: v1
kind: Service
metadata:
  name: {{ .name }}
  labels:
    app.kubernetes.io/name: {{ .name }}
    app.kubernetes.io/part-of: ecommerce
spec:
  clusterIP: None
  selector:
    app.kubernetes.io/name: {{ .name }}
  ports:
    {{- range $name, $port := .ports }}
    - name: {{ $name }}
      port: {{ $port }}
      targetPort: {{ $port }}
    {{- end }}
{{- end }}
