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
{{- include "sso.commonLabels" . }}
{{- end }}

{{/* commonLabels, on every object the chart renders; never in a selector. */}}
{{- define "sso.commonLabels" -}}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
crds.enabled and crds.keep, "true" or "": true unless set to false. `helm upgrade
--reuse-values` from a release of a chart without these values renders with no crds value
at all, and must still install (and keep) the CRDs as the defaults say.
*/}}
{{- define "sso.crdsEnabled" -}}
{{- $crds := .Values.crds | default dict }}
{{- if or (not (hasKey $crds "enabled")) $crds.enabled }}true{{ end }}
{{- end }}

{{- define "sso.crdsKept" -}}
{{- $crds := .Values.crds | default dict }}
{{- if or (not (hasKey $crds "keep")) $crds.keep }}true{{ end }}
{{- end }}

{{/* Labels of the CRDs: the release's, but they belong to no component of it. */}}
{{- define "sso.crdLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "sso.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: crds
app.kubernetes.io/part-of: shared-services-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- include "sso.commonLabels" . }}
{{- end }}

{{- define "sso.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sso.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sso.image" -}}
{{- $repository := .Values.image.repository }}
{{- with .Values.image.registry }}
{{- $repository = printf "%s/%s" (trimSuffix "/" .) $repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret that holds a remote cluster's kubeconfig. */}}
{{- define "sso.kubeconfigSecret" -}}
{{- default (printf "%s-kubeconfig" .name) .existingSecret }}
{{- end }}

{{/*
Whether a remote cluster signs in as a vCenter SSO user, "true" or "": it has a
vsphereSignIn, even an empty one (which the chart then refuses). null is no vsphereSignIn,
as null means "not set" everywhere else in Helm's values.
*/}}
{{- define "sso.signsIn" -}}
{{- if and (hasKey . "vsphereSignIn") (not (kindIs "invalid" .vsphereSignIn)) }}true{{ end }}
{{- end }}

{{/*
The kubernetes.io/basic-auth Secret that holds a remote cluster's vCenter SSO user, for
vsphereSignIn: its existingSecret, or the <name>-sso that the chart makes.
*/}}
{{- define "sso.signInSecret" -}}
{{- $signIn := .vsphereSignIn | default dict }}
{{- default (printf "%s-sso" .name) $signIn.existingSecret }}
{{- end }}

{{/*
Rules for the objects the operator reads and writes in the namespaces it serves; the same
rules go into a ClusterRole (every namespace) or into a Role in each listed namespace.
*/}}
{{- define "sso.namespacedRules" -}}
# Imports: kopf lists and watches them; the operator lists them at start and at each resync.
# It creates, patches and deletes only the imports a catalog holds (the admission policy
# holds it to those: owned by a SharedServiceCatalog and labelled with its name).
- apiGroups: ["sharedservices.io"]
  resources: ["sharedserviceimports"]
  verbs: ["list", "watch", "create", "patch", "delete"]
# Their status (conditions, addresses) is the operator's output.
- apiGroups: ["sharedservices.io"]
  resources: ["sharedserviceimports/status"]
  verbs: ["patch"]
# Catalogs: kopf lists and watches them; their status is the operator's output, the spec
# is never written.
- apiGroups: ["sharedservices.io"]
  resources: ["sharedservicecatalogs"]
  verbs: ["list", "watch"]
- apiGroups: ["sharedservices.io"]
  resources: ["sharedservicecatalogs/status"]
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
either mode; so do Pods, since a tenant's import may point at any namespace's Pod.
*/}}
{{- define "sso.clusterRules" -}}
- apiGroups: ["sharedservices.io"]
  resources: ["remoteclusters"]
  verbs: ["list", "watch"]
- apiGroups: ["sharedservices.io"]
  resources: ["remoteclusters/status"]
  verbs: ["patch"]
# The address policy keeps endpoints out of the cluster itself: the Nodes' addresses and
# Pod ranges, the addresses Pods really have (whichever CNI gave them), and the Service
# ranges. Read through watches, trimmed to the addresses; never written.
- apiGroups: [""]
  resources: ["nodes", "pods"]
  verbs: ["list", "watch"]
- apiGroups: ["networking.k8s.io"]
  resources: ["servicecidrs"]
  verbs: ["list", "watch"]
{{- end }}

{{/*
imports.allowSystemNamespaces, "true" or "": false unless set (also when `helm upgrade
--reuse-values` from a chart without the value renders with none).
*/}}
{{- define "sso.allowSystemNamespaces" -}}
{{- if dig "allowSystemNamespaces" false (.Values.imports | default dict) }}true{{ end }}
{{- end }}

{{/*
A CIDR of the address policy as CEL's cidr() reads it. An IPv4-mapped IPv6 range
(::ffff:192.0.2.0/120), which cidr() refuses, becomes the IPv4 range it stands for, as the
operator reads it too.
*/}}
{{- define "sso.celCIDR" -}}
{{- $text := lower . }}
{{- if and (hasPrefix "::ffff:" $text) (contains "." $text) }}
{{- $parts := split "/" (trimPrefix "::ffff:" $text) }}
{{- $bits := atoi $parts._1 }}
{{- if lt $bits 96 }}
{{- fail (printf "addressPolicy: %s has host bits set" .) }}
{{- end }}
{{- printf "%s/%d" $parts._0 (sub $bits 96) }}
{{- else }}
{{- $text }}
{{- end }}
{{- end }}

{{/*
The admission policy's judgement of one endpoint address, the CEL expression "address"
(a string). With CEL's IP library (Kubernetes 1.31 on): a global unicast address (no
loopback, link-local, unspecified, multicast or broadcast one) within the allowed ranges and
outside the denied ones. Without it (1.30), by the text alone: no IPv4 or IPv6 multicast
address and no IPv6 address written with an IPv4 one inside (::ffff:233.252.0.1); the API
server itself refuses loopback, link-local and unspecified endpoint addresses.
*/}}
{{- define "sso.celAddress" -}}
{{- $a := .address }}
{{- if .ipLibrary -}}
(isIP({{ $a }}) && ip({{ $a }}).isGlobalUnicast()
&& (size(variables.allowed) == 0 || variables.allowed.exists(n, n.containsIP({{ $a }})))
&& !variables.denied.exists(n, n.containsIP({{ $a }})))
{{- else -}}
(!({{ $a }}.contains(':') && {{ $a }}.contains('.'))
&& !{{ $a }}.matches('^0*2(2[4-9]|3[0-9])[.]')
&& !{{ $a }}.matches('^[fF][fF][0-9a-fA-F]{2}:'))
{{- end }}
{{- end }}

{{/*
The Secrets the operator may read, as a JSON list: those of remoteClusters[] (each one's
kubeconfig, then its sign-in credentials with vsphereSignIn; the chart's own or
existingSecret), then rbac.kubeconfigSecrets, each once.
*/}}
{{- define "sso.kubeconfigSecrets" -}}
{{- $names := list }}
{{- range .Values.remoteClusters }}
{{- $names = append $names (include "sso.kubeconfigSecret" .) }}
{{- if include "sso.signsIn" . }}
{{- $names = append $names (include "sso.signInSecret" .) }}
{{- end }}
{{- end }}
{{- $rbac := .Values.rbac | default dict }}
{{- $names = concat $names ($rbac.kubeconfigSecrets | default list) | uniq }}
{{- toJson $names }}
{{- end }}
