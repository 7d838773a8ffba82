{{/* Names and labels. */}}
{{- define "sluice.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sluice.fullname" -}}
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

{{- define "sluice.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sluice.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "sluice.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sluice.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sluice
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{- define "sluice.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "sluice.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "sluice.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* The Secret the chart creates (when any secret value is given inline). */}}
{{- define "sluice.secretName" -}}
{{- include "sluice.fullname" . -}}
{{- end -}}

{{/* "true" when the chart must create its own Secret: some value is given inline. */}}
{{- define "sluice.createSecret" -}}
{{- $v := .Values -}}
{{- if or (and $v.externalPostgresql.url (not $v.externalPostgresql.existingSecret)) (and $v.externalRedis.url (not $v.externalRedis.existingSecret)) (and (or $v.adminTokens.token $v.adminTokens.tokens) (not $v.adminTokens.existingSecret)) (and (or $v.audit.signingKey $v.audit.subjectKek) (not $v.audit.existingSecret)) -}}
true
{{- end -}}
{{- end -}}

{{- define "sluice.redisEnabled" -}}
{{- if or .Values.externalRedis.url .Values.externalRedis.existingSecret -}}true{{- end -}}
{{- end -}}

{{- define "sluice.auditKeysEnabled" -}}
{{- if or .Values.audit.signingKey .Values.audit.subjectKek .Values.audit.existingSecret -}}true{{- end -}}
{{- end -}}

{{/*
The config as a map: configYaml parsed, else `config` with the chart's ports, the audit outbox
in /var/lib/sluice and, with an external Redis, `redis.url: ${REDIS_URL}`. Used for checks and the drain arithmetic.
*/}}
{{- define "sluice.configMap" -}}
{{- if .Values.configYaml -}}
{{- $cfg := fromYaml .Values.configYaml -}}
{{- if hasKey $cfg "Error" -}}
{{- fail (printf "configYaml is not valid YAML: %s" (get $cfg "Error")) -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- else -}}
{{- $cfg := deepCopy .Values.config -}}
{{- $listen := default dict (get $cfg "listen") -}}
{{- $_ := set $listen "port" (int .Values.containerPorts.public) -}}
{{- if not (hasKey $listen "host") }}{{ $_ := set $listen "host" "0.0.0.0" }}{{ end -}}
{{- $_ := set $cfg "listen" $listen -}}
{{- $admin := default dict (get $cfg "admin") -}}
{{- $_ := set $admin "port" (int .Values.containerPorts.admin) -}}
{{- if not (hasKey $admin "host") }}{{ $_ := set $admin "host" "0.0.0.0" }}{{ end -}}
{{- $_ := set $cfg "admin" $admin -}}
{{- /* The audit outbox defaults to ./data/sluice under the working directory, which is read-only. */ -}}
{{- $audit := get $cfg "audit" -}}
{{- if and (kindIs "map" $audit) (get $audit "enabled") -}}
{{- $outbox := default dict (get $audit "outbox") -}}
{{- if not (hasKey $outbox "dir") }}{{ $_ := set $outbox "dir" "/var/lib/sluice/audit-outbox" }}{{ end -}}
{{- $_ := set $audit "outbox" $outbox -}}
{{- end -}}
{{- if and (include "sluice.redisEnabled" .) (not (hasKey $cfg "redis")) -}}
{{- $_ := set $cfg "redis" (dict "url" "${REDIS_URL}") -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
{{- end -}}

{{/* The text of the config file as written into the ConfigMap. */}}
{{- define "sluice.configText" -}}
{{- if .Values.configYaml -}}
{{- $cfg := include "sluice.configMap" . | fromYaml -}}
{{- $listen := default dict (get $cfg "listen") -}}
{{- $admin := default dict (get $cfg "admin") -}}
{{- if and (hasKey $listen "port") (ne (int (get $listen "port")) (int .Values.containerPorts.public)) -}}
{{- fail (printf "configYaml listen.port (%v) must equal containerPorts.public (%v)" (get $listen "port") .Values.containerPorts.public) -}}
{{- end -}}
{{- if and (hasKey $admin "port") (ne (int (get $admin "port")) (int .Values.containerPorts.admin)) -}}
{{- fail (printf "configYaml admin.port (%v) must equal containerPorts.admin (%v)" (get $admin "port") .Values.containerPorts.admin) -}}
{{- end -}}
{{- .Values.configYaml -}}
{{- else -}}
# Rendered by the Sluice Helm chart from its `config` value; reference: docs/config-reference.md.
{{ include "sluice.configMap" . }}
{{- end -}}
{{- end -}}

{{/*
A Sluice duration (milliseconds as a number, or "250ms", "5s", "2m", "1h") in whole seconds,
rounded up. Only whole numbers of a unit; anything else fails the render with a message.
*/}}
{{- define "sluice.durationSeconds" -}}
{{- $v := toString . -}}
{{- if regexMatch "^[0-9]+$" $v -}}
{{- div (add (int64 $v) 999) 1000 -}}
{{- else if regexMatch "^[0-9]+ms$" $v -}}
{{- div (add (int64 (trimSuffix "ms" $v)) 999) 1000 -}}
{{- else if regexMatch "^[0-9]+s$" $v -}}
{{- int64 (trimSuffix "s" $v) -}}
{{- else if regexMatch "^[0-9]+m$" $v -}}
{{- mul (int64 (trimSuffix "m" $v)) 60 -}}
{{- else if regexMatch "^[0-9]+h$" $v -}}
{{- mul (int64 (trimSuffix "h" $v)) 3600 -}}
{{- else -}}
{{- fail (printf "cannot read the duration %q (write a whole number of ms, s, m or h)" $v) -}}
{{- end -}}
{{- end -}}

{{/* preStop sleep + drain.delay + drain.timeout (defaults 0 and 30s), in seconds. */}}
{{- define "sluice.shutdownSeconds" -}}
{{- $cfg := include "sluice.configMap" . | fromYaml -}}
{{- $drain := default dict (get (default dict (get $cfg "listen")) "drain") -}}
{{- $delay := include "sluice.durationSeconds" (default 0 (get $drain "delay")) | int64 -}}
{{- $timeout := include "sluice.durationSeconds" (default "30s" (get $drain "timeout")) | int64 -}}
{{- add (int64 .Values.lifecycle.preStopSleepSeconds) $delay $timeout -}}
{{- end -}}

{{- define "sluice.terminationGracePeriodSeconds" -}}
{{- $need := include "sluice.shutdownSeconds" . | int64 -}}
{{- if kindIs "invalid" .Values.terminationGracePeriodSeconds -}}
{{- add $need (int64 .Values.lifecycle.marginSeconds) -}}
{{- else -}}
{{- $given := int64 .Values.terminationGracePeriodSeconds -}}
{{- if le $given $need -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStop sleep + listen.drain.delay + listen.drain.timeout (%d s), or the drain is cut by SIGKILL" $given $need) -}}
{{- end -}}
{{- $given -}}
{{- end -}}
{{- end -}}
