{{/* Names, labels and the pieces every loraforge pod shares. */}}

{{- define "loraforge.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "loraforge.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* A component's resource name: <fullname>-<component>, within the 63 characters. */}}
{{- define "loraforge.componentName" -}}
{{- printf "%s-%s" (include "loraforge.fullname" .root | trunc (int (sub 62 (len .component))) | trimSuffix "-") .component -}}
{{- end -}}

{{- define "loraforge.selectorLabels" -}}
app.kubernetes.io/name: {{ include "loraforge.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "loraforge.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "loraforge.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: loraforge
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end -}}

{{- define "loraforge.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "loraforge.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "loraforge.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The Secret the pods read: the user's existingSecret, or the chart's own. */}}
{{- define "loraforge.secretName" -}}
{{- default (include "loraforge.fullname" .) .Values.existingSecret -}}
{{- end -}}

{{- define "loraforge.redisAuth" -}}
{{- if and .Values.externalRedis.host (or .Values.externalRedis.auth .Values.externalRedis.password) -}}true{{- end -}}
{{- end -}}

{{/* Whether the chart's own Secret has anything to hold. */}}
{{- define "loraforge.chartSecret" -}}
{{- if and (not .Values.existingSecret) (or .Values.secrets.jwtSecret (and .Values.externalDatabase.enabled .Values.externalDatabase.password) (include "loraforge.redisAuth" .)) -}}true{{- end -}}
{{- end -}}

{{/* The chart's own Secret's data (also copied into the migration hook's Secret). */}}
{{- define "loraforge.secretData" -}}
{{- include "loraforge.validate" . -}}
{{- with .Values.secrets.jwtSecret }}
jwt-secret: {{ . | b64enc | quote }}
{{- end }}
{{- if and .Values.externalDatabase.enabled .Values.externalDatabase.password }}
database-password: {{ .Values.externalDatabase.password | b64enc | quote }}
{{- end }}
{{- if eq (include "loraforge.redisAuth" .) "true" }}
redis-password: {{ .Values.externalRedis.password | b64enc | quote }}
{{- end }}
{{- end -}}

{{- define "loraforge.redisHost" -}}
{{- if .Values.externalRedis.host -}}
{{- .Values.externalRedis.host -}}
{{- else -}}
{{- include "loraforge.componentName" (dict "root" . "component" "redis") -}}
{{- end -}}
{{- end -}}

{{- define "loraforge.redisPort" -}}
{{- if .Values.externalRedis.host -}}{{ .Values.externalRedis.port }}{{- else -}}6379{{- end -}}
{{- end -}}

{{- define "loraforge.redisDatabase" -}}
{{- if .Values.externalRedis.host -}}{{ .Values.externalRedis.database }}{{- else -}}0{{- end -}}
{{- end -}}

{{/* The Celery broker URL; a password is referenced as $(REDIS_PASSWORD), which the kubelet
fills in from the Secret, so no manifest or ConfigMap holds it. */}}
{{- define "loraforge.brokerUrl" -}}
{{- $scheme := ternary "rediss" "redis" (and (not (empty .Values.externalRedis.host)) .Values.externalRedis.tls) -}}
{{- $auth := ternary ":$(REDIS_PASSWORD)@" "" (eq (include "loraforge.redisAuth" .) "true") -}}
{{- $query := ternary "?ssl_cert_reqs=required" "" (eq $scheme "rediss") -}}
{{- printf "%s://%s%s:%s/%s%s" $scheme $auth (include "loraforge.redisHost" .) (include "loraforge.redisPort" .) (include "loraforge.redisDatabase" .) $query -}}
{{- end -}}

{{/* Refusals, with what to do instead. Included by the ConfigMap, which always renders. */}}
{{- define "loraforge.validate" -}}
{{- if and (eq .Values.environment "production") (not .Values.existingSecret) -}}
{{- $secret := required "production needs a JWT secret: set secrets.jwtSecret (at least 32 random characters, e.g. `openssl rand -hex 32`) or existingSecret (a Secret with the key jwt-secret)" .Values.secrets.jwtSecret -}}
{{- if lt (len $secret) 32 -}}
{{- fail (printf "secrets.jwtSecret has %d characters; production needs at least 32 (e.g. `openssl rand -hex 32`)" (len $secret)) -}}
{{- end -}}
{{- end -}}
{{- if and .Values.worker.keda.enabled .Values.worker.autoscaling.enabled -}}
{{- fail "worker.keda.enabled and worker.autoscaling.enabled are both on: KEDA makes the workers' HPA itself; turn worker.autoscaling off" -}}
{{- end -}}
{{- if and (eq (include "loraforge.redisAuth" .) "true") (not .Values.existingSecret) (not .Values.externalRedis.password) -}}
{{- fail "externalRedis.auth is on: set externalRedis.password, or existingSecret (a Secret with the key redis-password)" -}}
{{- end -}}
{{- if and .Values.externalDatabase.enabled (not .Values.externalDatabase.host) -}}
{{- fail "externalDatabase.enabled needs externalDatabase.host (the PostgreSQL server)" -}}
{{- end -}}
{{- if and .Values.externalRedis.password (not (regexMatch "^[A-Za-z0-9._~-]+$" .Values.externalRedis.password)) -}}
{{- fail "externalRedis.password may only use letters, digits and -._~ (it is part of the broker URL): e.g. `openssl rand -hex 32`" -}}
{{- end -}}
{{- end -}}

{{/* Settings for every service: no secrets here (they are in the Secret, see
loraforge.secretEnv). A map, so that the ConfigMap and the migration Job share it. */}}
{{- define "loraforge.configData" -}}
{{- include "loraforge.validate" . -}}
{{- $config := dict
  "LORAFORGE_ENV" .Values.environment
  "LORAFORGE_DATA_DIR" "/var/lib/loraforge/data"
  "LORAFORGE_RESULTS_DIR" "/var/lib/loraforge/results"
  "LORAFORGE_API_URL" (printf "http://%s:%v" (include "loraforge.componentName" (dict "root" . "component" "api")) .Values.api.service.port)
  "HOME" "/tmp"
  "HF_HOME" "/var/lib/loraforge/data/huggingface"
  "MPLCONFIGDIR" "/tmp/matplotlib"
  "PYTHONDONTWRITEBYTECODE" "1"
-}}
{{- /* The root file system is read-only: home and caches live in /tmp or on the data volume. */ -}}
{{- if .Values.externalDatabase.enabled -}}
{{- $db := .Values.externalDatabase -}}
{{- /* libpq reads the password from PGPASSWORD (the Secret): this URL carries none. */ -}}
{{- $query := ternary (printf "?%s" $db.options) "" (not (empty $db.options)) -}}
{{- $_ := set $config "LORAFORGE_DATABASE_URL" (printf "postgresql+psycopg://%s@%s:%v/%s%s" (urlquery $db.user) $db.host $db.port $db.database $query) -}}
{{- end -}}
{{- with .Values.mlflow.trackingUri -}}
{{- $_ := set $config "LORAFORGE_MLFLOW_TRACKING_URI" . -}}
{{- end -}}
{{- with .Values.mlflow.uiUrl -}}
{{- $_ := set $config "LORAFORGE_MLFLOW_UI_URL" . -}}
{{- end -}}
{{- range $key, $value := .Values.config -}}
{{- $from := dict "LORAFORGE_JWT_SECRET" "secrets.jwtSecret or existingSecret (a ConfigMap is no place for a secret)" "LORAFORGE_BROKER_URL" "externalRedis (or the bundled Redis)" "LORAFORGE_DATABASE_URL" "externalDatabase (its password then stays in the Secret)" -}}
{{- if hasKey $from $key -}}
{{- fail (printf "config.%s: the chart sets it from %s" $key (get $from $key)) -}}
{{- end -}}
{{- $_ := set $config $key (toString $value) -}}
{{- end -}}
{{- toYaml $config -}}
{{- end -}}

{{/* Environment variables from the Secret, and the broker URL that refers to one. */}}
{{- define "loraforge.secretEnv" -}}
{{- $name := .secretName | default (include "loraforge.secretName" .root) -}}
{{- $values := .root.Values -}}
{{- if or $values.existingSecret $values.secrets.jwtSecret }}
- name: LORAFORGE_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: jwt-secret
      {{- if and $values.existingSecret (ne $values.environment "production") }}
      optional: true
      {{- end }}
{{- end }}
{{- if and $values.externalDatabase.enabled (or $values.existingSecret $values.externalDatabase.password) }}
- name: PGPASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: database-password
      {{- if $values.existingSecret }}
      optional: true
      {{- end }}
{{- end }}
{{- if eq (include "loraforge.redisAuth" .root) "true" }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: redis-password
{{- end }}
- name: LORAFORGE_BROKER_URL
  value: {{ include "loraforge.brokerUrl" .root | quote }}
{{- end -}}

{{/* The Secret's checksum, so that pods restart when a secret changes. */}}
{{- define "loraforge.checksums" -}}
checksum/config: {{ include "loraforge.configData" . | sha256sum }}
checksum/secret: {{ include (print .Template.BasePath "/secret.yaml") . | sha256sum }}
{{- end -}}

{{- define "loraforge.podSecurityContext" -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}

{{/* /tmp for every container, and the two volumes for those that read or write them. */}}
{{- define "loraforge.volumes" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .root.Values.tmpSizeLimit }}
{{- if .storage }}
- name: data
  persistentVolumeClaim:
    claimName: {{ .root.Values.persistence.data.existingClaim | default (include "loraforge.componentName" (dict "root" .root "component" "data")) }}
- name: results
  persistentVolumeClaim:
    claimName: {{ .root.Values.persistence.results.existingClaim | default (include "loraforge.componentName" (dict "root" .root "component" "results")) }}
{{- end }}
{{- end -}}

{{- define "loraforge.volumeMounts" -}}
- name: tmp
  mountPath: /tmp
{{- if .storage }}
- name: data
  mountPath: /var/lib/loraforge/data
- name: results
  mountPath: /var/lib/loraforge/results
{{- end }}
{{- end -}}

{{/* The spec of a loraforge pod, less its containers: .component names the part. */}}
{{- define "loraforge.podSpec" -}}
{{- $root := .root -}}
{{- $values := index $root.Values .component -}}
serviceAccountName: {{ include "loraforge.serviceAccountName" $root }}
automountServiceAccountToken: false
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- include "loraforge.podSecurityContext" $root | nindent 2 }}
{{- with (merge (dict) ($values.nodeSelector | default dict) $root.Values.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($values.tolerations | default $root.Values.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with ($values.affinity | default $root.Values.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pod metadata: labels, checksums, and Prometheus' scrape annotations where .metricsPort. */}}
{{- define "loraforge.podMetadata" -}}
{{- $root := .root -}}
{{- $values := index $root.Values .component -}}
labels:
  {{- include "loraforge.selectorLabels" . | nindent 2 }}
  {{- with $root.Values.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
annotations:
  {{- include "loraforge.checksums" $root | nindent 2 }}
  {{- if .metricsPort }}
  prometheus.io/scrape: "true"
  prometheus.io/port: {{ .metricsPort | quote }}
  prometheus.io/path: /metrics
  {{- end }}
  {{- with (merge (dict) ($values.podAnnotations | default dict) $root.Values.podAnnotations) }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}

{{/* What every loraforge container shares: image, settings, secrets, security, /tmp. */}}
{{- define "loraforge.containerBase" -}}
{{- $root := .root -}}
{{- $values := index $root.Values .component -}}
image: {{ include "loraforge.image" $root }}
imagePullPolicy: {{ $root.Values.image.pullPolicy }}
workingDir: /tmp
command:
  - loraforge
envFrom:
  - configMapRef:
      name: {{ include "loraforge.fullname" $root }}
env:
  {{- include "loraforge.secretEnv" (dict "root" $root) | trim | nindent 2 }}
  {{- with $values.extraEnv }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
securityContext:
  {{- toYaml $root.Values.securityContext | nindent 2 }}
resources:
  {{- toYaml $values.resources | nindent 2 }}
volumeMounts:
  {{- include "loraforge.volumeMounts" . | nindent 2 }}
{{- end -}}

{{/* A Deployment's replicas, left out when an autoscaler owns the count. */}}
{{- define "loraforge.replicas" -}}
{{- $values := index .root.Values .component -}}
{{- $scaled := and $values.autoscaling $values.autoscaling.enabled -}}
{{- if eq .component "worker" -}}
{{- $scaled = or $scaled .root.Values.worker.keda.enabled -}}
{{- end -}}
{{- if not $scaled -}}
replicas: {{ $values.replicaCount }}
{{- end -}}
{{- end -}}
