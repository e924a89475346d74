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
{{- /* What the operator reads and writes where Clusters live: every namespace, or the one it watches. */ -}}
{{- define "kubeonkube.namespacedRules" }}
  # Verbs the code uses, nothing more (get: a read before creating what the cache has not seen;
  # delete: objects a Cluster no longer wants, never claims or member Pods).
  - apiGroups: [kubeonkube.io]
    resources: [clusters]
    verbs: [get, list, watch]
  - apiGroups: [kubeonkube.io]
    resources: [clusters/status]
    verbs: [patch]
  # owner references with blockOwnerDeletion need this where OwnerReferencesPermissionEnforcement is on
  - apiGroups: [kubeonkube.io]
    resources: [clusters/finalizers]
    verbs: [update]
  # the Node-Operator: Machines (their finalizer is patched on the object), their status
  - apiGroups: [kubeonkube.io]
    resources: [machines]
    verbs: [get, list, watch, patch]
  - apiGroups: [kubeonkube.io]
    resources: [machines/status]
    verbs: [patch]
  - apiGroups: [""]
    resources: [secrets, services]
    verbs: [get, list, watch, create, patch, delete]
  # etcd member Pods are deleted only when their member left the etcd cluster (to start it anew);
  # claims are never deleted, only annotated with the data directory of the member using them
  - apiGroups: [""]
    resources: [pods]
    verbs: [get, list, watch, create, delete]
  # the apiserver Pods' readiness gate: set once a tunnel agent reached the Pod's server
  - apiGroups: [""]
    resources: [pods/status]
    verbs: [patch]
  - apiGroups: [""]
    resources: [persistentvolumeclaims]
    verbs: [get, list, watch, create, patch]
  - apiGroups: [apps]
    resources: [deployments]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [networking.k8s.io]
    resources: [networkpolicies]
    verbs: [get, list, watch, create, patch, delete]
  # etcd snapshots (a CronJob per Cluster) and restores (a Job per member, kept until its TTL)
  - apiGroups: [batch]
    resources: [cronjobs]
    verbs: [get, list, watch, create, patch, delete]
  - apiGroups: [batch]
    resources: [jobs]
    verbs: [get, list, watch, create]
  # the templates of users' own add-ons (spec.addons[].template.configMapRef), read by name
  - apiGroups: [""]
    resources: [configmaps]
    verbs: [get]
  - apiGroups: [""]
    resources: [events]
    verbs: [create]
{{- end }}
