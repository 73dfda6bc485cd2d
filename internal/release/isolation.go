package release

import (
	"context"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
)

// Isolation is what every namespace shipper makes holds besides the app
// (deploy/rbac/isolation.yaml checks the same on the apiserver, from the
// same settings): a NetworkPolicy that admits connections only from the
// namespace's own pods and from the router's namespaces, a ResourceQuota
// and a LimitRange whose defaults fill the containers that name no
// resources. The platform team sets them in the settings ConfigMap
// (docs/security.md#network-and-resources); the built-in defaults apply
// where it is silent.
const (
	IsolationPolicy = "shipper-isolation" // the NetworkPolicy
	IsolationQuota  = "shipper"           // the ResourceQuota and the LimitRange
	// LabelRouter marks the namespaces whose pods may connect to every
	// app when the setting router-namespaces is unset. Only an admin can
	// set it: a project's namespaces carry only shipper's labels (policy
	// shipper-namespaces), and it has no right to relabel any namespace.
	LabelRouter = "shipper.dev/router"
	// SettingRouterNamespaces names the router's namespaces instead.
	SettingRouterNamespaces = "router-namespaces"
	// settingNone removes a built-in default.
	settingNone = "none"
)

// An isolationSetting is one key of the settings ConfigMap: the quota
// resource or LimitRange field it sets, and its built-in default ("" for
// none).
type isolationSetting struct {
	key      string
	resource corev1.ResourceName
	def      string
}

// quotaSettings: each key sets one hard limit of ResourceQuota "shipper".
// ConfigMap keys cannot hold a "/", hence quota.poddisruptionbudgets.
var quotaSettings = []isolationSetting{
	{"quota.pods", corev1.ResourcePods, "20"},
	{"quota.requests.cpu", corev1.ResourceRequestsCPU, "4"},
	{"quota.requests.memory", corev1.ResourceRequestsMemory, "8Gi"},
	{"quota.limits.cpu", corev1.ResourceLimitsCPU, ""},
	{"quota.limits.memory", corev1.ResourceLimitsMemory, "16Gi"},
	{"quota.poddisruptionbudgets", "count/poddisruptionbudgets.policy", "1"},
}

// limitSettings: each key sets one field of LimitRange "shipper"'s
// Container item: limits.default-request.* the requests, limits.default.*
// the limits of a container that names none, limits.max.* the most one
// container may ask.
var limitSettings = []isolationSetting{
	{"limits.default-request.cpu", corev1.ResourceCPU, "10m"},
	{"limits.default-request.memory", corev1.ResourceMemory, "32Mi"},
	{"limits.default.cpu", corev1.ResourceCPU, ""},
	{"limits.default.memory", corev1.ResourceMemory, "256Mi"},
	{"limits.max.cpu", corev1.ResourceCPU, ""},
	{"limits.max.memory", corev1.ResourceMemory, ""},
}

// isolation is the parsed settings: what ensureIsolation writes.
type isolation struct {
	// manifests says the settings ConfigMap exists, and so deploy/rbac of
	// this version with its policies (isolation.yaml ships it).
	manifests bool
	routers   []string // namespace names; nil: namespaces labelled LabelRouter=true
	quota     corev1.ResourceList
	limits    corev1.LimitRangeItem
}

// isolationSettings reads and checks the settings before anything changes:
// a bad one is a *UsageError naming its key.
func (c *Configuration) isolationSettings(ctx context.Context) (*isolation, error) {
	s, err := c.settings(ctx)
	if err != nil {
		return nil, err
	}
	return parseIsolation(s)
}

func parseIsolation(s Settings) (*isolation, error) {
	bad := func(key, rule string) error {
		return &UsageError{Input: "cluster setting", Value: key, Rule: rule + " (ConfigMap " + SettingsNamespace + "/" + SettingsName + ", docs/security.md#network-and-resources)"}
	}
	known := map[string]bool{SettingRouterNamespaces: true}
	iso := &isolation{manifests: s.Found, quota: corev1.ResourceList{}, limits: corev1.LimitRangeItem{Type: corev1.LimitTypeContainer}}
	for _, ns := range s.List(SettingRouterNamespaces) {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, bad(SettingRouterNamespaces, "must list namespace names, separated by commas: "+errs[0])
		}
		iso.routers = append(iso.routers, ns)
	}
	value := func(st isolationSetting) (resource.Quantity, bool, error) {
		known[st.key] = true
		v, ok := s.Data[st.key]
		if !ok {
			v = st.def
		}
		v = strings.TrimSpace(v)
		if v == "" || v == settingNone {
			return resource.Quantity{}, false, nil
		}
		q, err := resource.ParseQuantity(v)
		if err != nil || q.Sign() < 0 {
			return q, false, bad(st.key, "must be a quantity such as 2, 500m or 4Gi, or none")
		}
		return q, true, nil
	}
	for _, st := range quotaSettings {
		q, ok, err := value(st)
		if err != nil {
			return nil, err
		}
		if ok {
			iso.quota[st.resource] = q
		}
	}
	for _, st := range limitSettings {
		q, ok, err := value(st)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		field := &iso.limits.Max
		switch {
		case strings.HasPrefix(st.key, "limits.default-request."):
			field = &iso.limits.DefaultRequest
		case strings.HasPrefix(st.key, "limits.default."):
			field = &iso.limits.Default
		}
		if *field == nil {
			*field = corev1.ResourceList{}
		}
		(*field)[st.resource] = q
	}
	for k := range s.Data {
		if (strings.HasPrefix(k, "quota.") || strings.HasPrefix(k, "limits.")) && !known[k] {
			return nil, bad(k, "is no setting: quota.* and limits.* are "+strings.Join(settingKeys(), ", "))
		}
	}
	return iso, iso.check(bad)
}

func settingKeys() []string {
	var keys []string
	for _, st := range append(append([]isolationSetting{}, quotaSettings...), limitSettings...) {
		keys = append(keys, st.key)
	}
	return keys
}

// check refuses settings under which the apiserver would refuse every pod:
// a quota on a compute resource needs a default for containers that name
// none (the ResourceQuota plugin refuses a pod without it), and a default
// must fit the maximum and the request its limit.
func (iso *isolation) check(bad func(key, rule string) error) error {
	// What a container that names nothing gets (the apiserver's
	// LimitRange defaulting: the maximum, else the default limit).
	limits := mergeLists(iso.limits.Max, iso.limits.Default)
	requests := mergeLists(limits, iso.limits.DefaultRequest)
	needs := []struct {
		quota  corev1.ResourceName
		dflt   corev1.ResourceList
		res    corev1.ResourceName
		key    string
		setter string
	}{
		{corev1.ResourceRequestsCPU, requests, corev1.ResourceCPU, "quota.requests.cpu", "limits.default-request.cpu"},
		{corev1.ResourceRequestsMemory, requests, corev1.ResourceMemory, "quota.requests.memory", "limits.default-request.memory"},
		{corev1.ResourceLimitsCPU, limits, corev1.ResourceCPU, "quota.limits.cpu", "limits.default.cpu"},
		{corev1.ResourceLimitsMemory, limits, corev1.ResourceMemory, "quota.limits.memory", "limits.default.memory"},
	}
	for _, n := range needs {
		if _, quota := iso.quota[n.quota]; quota {
			if _, ok := n.dflt[n.res]; !ok {
				return bad(n.key, "needs "+n.setter+": the apiserver refuses a pod that names no "+string(n.quota)+" when a quota limits it")
			}
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := iso.limits.DefaultRequest[r]
		lim, hasLim := iso.limits.Default[r]
		maxQ, hasMax := iso.limits.Max[r]
		switch {
		case hasReq && hasLim && req.Cmp(lim) > 0:
			return bad("limits.default-request."+string(r), "must not exceed limits.default."+string(r))
		case hasLim && hasMax && lim.Cmp(maxQ) > 0:
			return bad("limits.default."+string(r), "must not exceed limits.max."+string(r))
		case hasReq && hasMax && req.Cmp(maxQ) > 0:
			return bad("limits.default-request."+string(r), "must not exceed limits.max."+string(r))
		}
	}
	return nil
}

// mergeLists is a and b in one list; b wins.
func mergeLists(a, b corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

// objects are the three objects of namespace ns.
func (iso *isolation) objects(ns string) (*networkingv1.NetworkPolicy, *corev1.ResourceQuota, *corev1.LimitRange) {
	meta := func(name string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{LabelManagedBy: ManagedBy}}
	}
	// Only namespaces shipper did not make: a router namespace named in
	// the settings that does not exist yet is no project's to create.
	router := &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{
		{Key: LabelManagedBy, Operator: metav1.LabelSelectorOpNotIn, Values: []string{ManagedBy}},
	}}
	if len(iso.routers) > 0 {
		router.MatchExpressions = append(router.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: corev1.LabelMetadataName, Operator: metav1.LabelSelectorOpIn, Values: iso.routers})
	} else {
		router.MatchLabels = map[string]string{LabelRouter: "true"}
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: meta(IsolationPolicy), Spec: networkingv1.NetworkPolicySpec{
		PodSelector: metav1.LabelSelector{},
		PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress},
		// The router reaches a pod on its ports named http and public
		// only: the app's, or, in a protected preview, the gate's (the
		// app's port is then named app, and only the namespace's own pods
		// reach it; public is the gate's listener production's route
		// targets, docs/protection.md).
		Ingress: []networkingv1.NetworkPolicyIngressRule{
			{From: []networkingv1.NetworkPolicyPeer{{PodSelector: &metav1.LabelSelector{}}}},
			{From: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: router}},
				Ports: []networkingv1.NetworkPolicyPort{
					{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromString("http"))},
					{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromString("public"))},
				}},
		},
	}}
	rq := &corev1.ResourceQuota{ObjectMeta: meta(IsolationQuota), Spec: corev1.ResourceQuotaSpec{Hard: iso.quota}}
	// The apiserver's defaulting, done here so that what is read back
	// equals what is written: a default limit is the maximum unless set,
	// a default request the default limit.
	item := corev1.LimitRangeItem{Type: corev1.LimitTypeContainer,
		Max: iso.limits.Max, Default: mergeLists(iso.limits.Max, iso.limits.Default)}
	item.DefaultRequest = mergeLists(item.Default, iso.limits.DefaultRequest)
	lr := &corev1.LimitRange{ObjectMeta: meta(IsolationQuota), Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{item}}}
	return np, rq, lr
}

// ensureIsolation makes namespace ns's NetworkPolicy, ResourceQuota and
// LimitRange, or brings existing ones to the settings (a namespace made
// before them, or settings changed since). created says ns was just made:
// nothing to read then. The quota comes before the NetworkPolicy: the
// apiserver admits a project's Deployment only in a namespace that has it
// (isolation.yaml), and the NetworkPolicy, written last, says by its
// stamp that the other two were written (keepIsolated). The quota and the
// LimitRange go out together; their answers are taken in that order.
func (c *Configuration) ensureIsolation(ctx context.Context, ns string, iso *isolation, created bool) error {
	np, rq, lr := iso.objects(ns)
	metav1.SetMetaDataAnnotation(&np.ObjectMeta, AnnotationIsolation, isolationStamp(np, rq, lr))
	q, l, p := c.client.CoreV1().ResourceQuotas(ns), c.client.CoreV1().LimitRanges(ns), c.client.NetworkingV1().NetworkPolicies(ns)
	limits := readEarly(func() (struct{}, error) {
		return struct{}{}, ensureObject(ctx, created, lr, l.Get, l.Create, l.Update,
			setSpec(lr.Spec, func(o *corev1.LimitRange) *corev1.LimitRangeSpec { return &o.Spec }))
	})
	defer func() { _, _ = limits.get(nil) }() // not left writing past a refusal
	steps := []struct {
		what string
		fn   func() error
	}{
		{"ResourceQuota", func() error {
			return ensureObject(ctx, created, rq, q.Get, q.Create, q.Update,
				setSpec(rq.Spec, func(o *corev1.ResourceQuota) *corev1.ResourceQuotaSpec { return &o.Spec }))
		}},
		{"LimitRange", func() error {
			_, err := limits.get(nil)
			return err
		}},
		{"NetworkPolicy", func() error {
			return ensureObject(ctx, created, np, p.Get, p.Create, p.Update, stamped(np))
		}},
	}
	for _, s := range steps {
		err := s.fn()
		switch {
		case err == nil:
		case apierrors.IsForbidden(err) && !iso.manifests:
			// deploy/rbac from before these objects: no right to them, and
			// no policy that would refuse the Deployment without them. The
			// app deploys as it did before the upgrade, and the job says
			// so; once deploy/rbac is applied, a refusal here is an error.
			c.log.Warn("namespace not isolated: the cluster's deploy/rbac predates NetworkPolicies and quotas; apply deploy/rbac of this version (docs/security.md#network-and-resources)", "namespace", ns)
			return nil
		case apierrors.IsForbidden(err):
			return fmt.Errorf("isolating namespace %q (%s): %w (deploy/rbac of this version grants it: docs/security.md#network-and-resources)", ns, s.what, err)
		default:
			return fmt.Errorf("isolating namespace %q (%s): %w", ns, s.what, err)
		}
	}
	c.log.Debug("isolated", "namespace", ns)
	return nil
}

// setSpec is ensureObject's differ for objects whose spec is what shipper
// writes: it sets want into an object read whose spec differs.
func setSpec[T any, S any](want S, spec func(T) *S) func(T) bool {
	return func(got T) bool {
		if apiequality.Semantic.DeepEqual(*spec(got), want) {
			return false
		}
		*spec(got) = want
		return true
	}
}

// ensureObject creates want, or reads it and updates it when differ says
// it changed the object read (which then holds the wanted spec).
func ensureObject[T any](ctx context.Context, created bool, want T,
	get func(context.Context, string, metav1.GetOptions) (T, error),
	create func(context.Context, T, metav1.CreateOptions) (T, error),
	update func(context.Context, T, metav1.UpdateOptions) (T, error),
	differ func(T) bool,
) error {
	name := any(want).(metav1.Object).GetName()
	if !created {
		got, err := get(ctx, name, metav1.GetOptions{})
		if err == nil {
			if differ(got) {
				_, err = update(ctx, got, metav1.UpdateOptions{})
			}
			return err
		}
		if !apierrors.IsNotFound(err) {
			return err
		}
	}
	_, err := create(ctx, want, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) { // another job made it meanwhile
		return nil
	}
	return err
}
