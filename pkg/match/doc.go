// Package match is the policy-agnostic matcher of targetRef policies: for one
// dataplane it selects the policies of one type that apply, orders them from
// least to most specific, and merges their confs per traffic direction. Every
// bundled policy plugin uses it, and `atollctl inspect` and the /_rules
// endpoint show its output, which says for every merged conf which policy
// entries contributed to it and in which order.
//
// # Use
//
// Prepare indexes the policies of one type once per mesh snapshot; the
// Prepared value is immutable and its Match method answers per proxy:
//
//	prep, err := match.Prepare[meshtimeout.Conf](match.Inputs{
//		Type: "MeshTimeout", Mesh: "default", MeshServices: services,
//	}, timeouts)
//	...
//	res := prep.Match(dp.Meta, dpSpec)
//	out, ok := res.To.For(match.Destination{Kind: targetref.MeshService, Name: "backend", Port: 8080})
//	// out.Conf is the effective conf, out.Explain() says which entries made it.
//	in := res.Inbound(8080) // in.Rules, in.From.For(sourceTags)
//
// Prepared.Skipped lists what is never applied and why (an unsupported
// kind, a sectionName naming no port), for resource status and inspect.
//
// A policy spec exposes its sections through small interfaces (Targeted,
// ToLister, FromLister, RulesLister, Defaulter) that api/ types implement
// without importing this package, and its conf type C implements
// Mergeable[C] with typed code (no JSON round trip, no reflection).
//
// # Selecting proxies (top-level targetRef)
//
// Follows https://kuma.io/docs/2.13.x/policies/introduction/ ("Referencing
// data planes, services, and routes") and, for the kinds Kuma deprecated in
// 2.10, https://kuma.io/docs/2.9.x/policies/introduction/ and
// https://kuma.io/docs/2.9.x/policies/targetref/ (the list of kinds):
//   - absent or Mesh: every proxy of the mesh (proxyTypes narrows to
//     "Sidecar" proxies, delegated gateways included, or builtin "Gateway"
//     proxies);
//   - MeshSubset: proxies with an inbound carrying all tags (a builtin
//     gateway's tags count as one inbound);
//   - MeshService: proxies backing the service. When a MeshService resource
//     of that name (or matching the labels) is known, its
//     selector.dataplaneTags (or dataplaneRef) decide; when none is known,
//     inbounds whose kuma.io/service equals the name do (Kuma's behaviour
//     before MeshService resources). sectionName narrows to the inbound that
//     serves that port of the MeshService;
//   - MeshServiceSubset: inbounds with kuma.io/service = name and all tags;
//   - Dataplane: all proxies, or by name (namespace: "name.namespace" or the
//     k8s.kuma.io/namespace label), or by labels; sectionName narrows to one
//     inbound, by inbound name first, then by port number for unnamed
//     inbounds. Ignored inbounds are never selected.
//
// Other top-level kinds (MeshGateway, MeshHTTPRoute) are not matched yet; such
// policies are reported by Prepared.Skipped instead of being applied silently.
//
// # Order
//
// Policies are totally ordered, least specific first, by the attributes of
// https://kuma.io/docs/2.13.x/policies/introduction/ ("How policies are
// combined"), each breaking the ties of the one before:
//  1. top-level targetRef: Mesh < MeshSubset < MeshService < MeshServiceSubset
//     < Dataplane < Dataplane/sectionName < Dataplane with labels < with
//     labels/sectionName < with name < with name/sectionName. The deprecated
//     kinds keep their order of the 2.9 page ("Merging configuration": Mesh <
//     MeshSubset < MeshService < MeshServiceSubset) and rank below every
//     Dataplane form, which names proxies more precisely; "Dataplane with
//     sectionName" (no name, no labels) is not in Kuma's table and sits
//     between Dataplane and Dataplane with labels;
//  2. origin, label kuma.io/origin: global < zone (no label counts as zone:
//     it was written on this control plane);
//  3. policy role, label kuma.io/policy-role: system (or no label) <
//     producer < consumer < workload-owner;
//  4. display name (label kuma.io/display-name, else the name) in inverted
//     lexicographic order, so that of two otherwise equal policies the one
//     whose name sorts first wins; the full name breaks remaining ties.
//
// # Merging
//
// Confs are merged in that order with RFC 7386 merge-patch semantics, as the
// same page prescribes: fields a more specific conf leaves out keep the less
// specific value, lists replace (an explicit empty list clears), except lists
// whose JSON name starts with "append", which concatenate. An explicit JSON
// null cannot be told from an absent field in typed Go code and is treated
// as absent. Each conf type implements this in its Merge method.
//
// to[] entries of all selected policies are concatenated; for one destination
// the entries that apply (Mesh, the destination's resource, the
// destination's port) are ordered by the policy attributes 1-3, then by the
// to[] kind (Mesh < MeshService < MeshService with sectionName <
// MeshExternalService < MeshMultiZoneService, the page's second table), then
// by attribute 4, then by entry index. This puts the to[] kind after the
// proxy-selecting attributes, as Kuma's rule sorting does: a Dataplane policy
// with a Mesh-wide to[] entry overrides a Mesh policy's MeshService entry.
// to[] entries naming a MeshHTTPRoute apply on top of the conf of the
// outbound that owns the route (ToResult.ForRoute). A policy whose top-level
// targetRef has a sectionName selects one inbound; its to[] entries are not
// applied (outbound traffic belongs to the whole proxy) and are reported as
// skipped.
//
// rules[] entries apply to every inbound the policy selects. from[] entries
// (Mesh, MeshSubset, MeshService, MeshServiceSubset sources) are grouped per
// inbound: the conf for a source selector merges every entry whose selector
// includes it (Mesh includes all; a selector includes another when its tags
// are a subset of the other's, kuma.io/service standing for MeshService
// names), ordered like to[] entries with the from[] kind in place of the to[]
// kind.
//
// # Output
//
// A Result lists the selected policies in order, and every merged conf comes
// with its contributors (type, mesh, name, section and index) in merge
// order. Results are deterministic and serialise to JSON and YAML. Confs in
// results may share memory with the policies' specs: treat them as
// read-only.
package match
