{{/* The chart's name, and the release's full name (63 characters at most: DNS labels). */}}
{{- define "glia.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "glia.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "glia.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "glia.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* The gateway's Deployment, Service and ServiceAccount: <release>-gateway (the name
templates/gateway-rbac.yaml binds its roles to). */}}
{{- define "glia.gateway.name" -}}
{{- printf "%s-gateway" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "glia.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "glia.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{- define "glia.selectorLabels" -}}
app.kubernetes.io/name: {{ include "glia.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: control-plane
{{- end -}}

{{- define "glia.gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "glia.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "glia.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The Secret the chart makes for URLs given as values (they may hold passwords). */}}
{{- define "glia.configSecret" -}}
{{- printf "%s-endpoints" (include "glia.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Where GLIA_DATABASE_URL comes from: "name key", failing when neither is given. */}}
{{- define "glia.database.secretRef" -}}
{{- if .Values.database.existingSecret -}}
{{- printf "%s %s" .Values.database.existingSecret .Values.database.existingSecretKey -}}
{{- else -}}
{{- $_ := required "database.url (postgresql+asyncpg://USER:PASSWORD@HOST:5432/DB) or database.existingSecret is required: Glia keeps its state in an external PostgreSQL" .Values.database.url -}}
{{- printf "%s database-url" (include "glia.configSecret" .) -}}
{{- end -}}
{{- end -}}

{{/* Where GLIA_REDIS_URL comes from: "name key", or nothing without Redis. */}}
{{- define "glia.redis.secretRef" -}}
{{- if .Values.redis.existingSecret -}}
{{- printf "%s %s" .Values.redis.existingSecret .Values.redis.existingSecretKey -}}
{{- else if .Values.redis.url -}}
{{- printf "%s redis-url" (include "glia.configSecret" .) -}}
{{- else if gt (int .Values.controlPlane.replicas) 1 -}}
{{- required "redis.url or redis.existingSecret is required with more than one control-plane replica: the replicas share their events through Redis" "" -}}
{{- end -}}
{{- end -}}

{{- define "glia.publicUrl" -}}
{{- if .Values.controlPlane.publicUrl -}}
{{- .Values.controlPlane.publicUrl -}}
{{- else if and .Values.ingress.enabled .Values.ingress.host -}}
{{- printf "%s://%s" (ternary "https" "http" (not (empty .Values.ingress.tlsSecretName))) .Values.ingress.host -}}
{{- end -}}
{{- end -}}
