{{/* The chart's name, shortened to fit a DNS label. */}}
{{- define "sso.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: the prefix of every object it creates. */}}
{{- define "sso.fullname" -}}
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

{{- define "sso.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sso.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object the chart creates. "managed-by: Helm" is what Helm itself expects;
the operator marks its own objects "managed-by: shared-services-operator" instead.
*/}}
{{- define "sso.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sso.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: shared-services-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sso.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sso.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sso.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret that holds a remote cluster's kubeconfig. */}}
{{- define "sso.kubeconfigSecret" -}}
{{- default (printf "%s-kubeconfig" .name) .existingSecret }}
{{- end }}

{{/*
Rules for the objects the operator reads and writes in the namespaces it serves; the same
rules go into a ClusterRole (every namespace) or into a Role in each listed namespace.
*/}}
{{- define "sso.namespacedRules" -}}
# Imports: kopf lists and watches them; the operator lists them at start and at each resync.
- apiGroups: ["sharedservices.io"]
  resources: ["sharedserviceimports"]
  verbs: ["list", "watch"]
# Their status (conditions, addresses) is the operator's output; the spec is never written.
- apiGroups: ["sharedservices.io"]
  resources: ["sharedserviceimports/status"]
  verbs: ["patch"]
# The selectorless Service and its endpoints, in both APIs. list/watch fill the caches
# (a label selector limits them to managed objects); get reads an object whose create
# collided, to tell "ours" from a conflict; patch restores drift; delete removes what an
# import no longer needs. No update: every change is a merge patch.
- apiGroups: [""]
  resources: ["services", "endpoints"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
- apiGroups: ["discovery.k8s.io"]
  resources: ["endpointslices"]
  verbs: ["get", "list", "watch", "create", "patch", "delete"]
# Events about address changes and conflicts, on the import. Never read; a repeat raises
# the count of the Event it repeats (patch), as client-go's recorder does.
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}

{{/*
RemoteClusters, Nodes and ServiceCIDRs are cluster-scoped, so they need a ClusterRole in
either mode.
*/}}
{{- define "sso.clusterRules" -}}
- apiGroups: ["sharedservices.io"]
  resources: ["remoteclusters"]
  verbs: ["list", "watch"]
- apiGroups: ["sharedservices.io"]
  resources: ["remoteclusters/status"]
  verbs: ["patch"]
# The address policy keeps endpoints out of the cluster itself: the Nodes' addresses and
# Pod ranges, and the Service ranges. Read through watches; never written.
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["list", "watch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["servicecidrs"]
  verbs: ["list", "watch"]
{{- end }}
