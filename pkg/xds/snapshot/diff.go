package snapshot

import (
	"maps"
	"slices"
)

// Update is the change of one mesh between the snapshot a consumer saw
// last and the current one.
type Update struct {
	// Mesh is the mesh name.
	Mesh string
	// Old is the snapshot the consumer saw last; nil for a new mesh.
	Old *Snapshot
	// New is the current snapshot; nil when the mesh was deleted.
	New *Snapshot
	// Delta is Diff(Old, New).
	Delta Delta
}

// Delta says what differs between two snapshots of a mesh, by name, so that
// a consumer can regenerate only what depends on it.
type Delta struct {
	// Created is set when there was no snapshot before (a new mesh, or the
	// first load); everything counts as changed.
	Created bool
	// Deleted is set when the mesh is gone.
	Deleted bool
	// MeshChanged is set when the Mesh resource changed: a mesh-wide change.
	MeshChanged bool
	// CAChanged is set when the mTLS settings or CA secrets changed.
	CAChanged bool
	// Services lists the services added, removed or changed, sorted.
	Services []string
	// ServicesAdded lists the services that did not exist before, sorted.
	ServicesAdded []string
	// ServicesRemoved lists the services that no longer exist, sorted.
	ServicesRemoved []string
	// Dataplanes lists the dataplanes added, removed or changed, sorted.
	Dataplanes []string
	// Policies lists, per policy type, the policies added, removed or
	// changed, sorted.
	Policies map[string][]string
}

// Empty reports whether nothing changed.
func (d *Delta) Empty() bool {
	return !d.Created && !d.Deleted && !d.MeshChanged && !d.CAChanged &&
		len(d.Services) == 0 && len(d.Dataplanes) == 0 && len(d.Policies) == 0
}

// Diff compares two snapshots of one mesh; old is nil for a new mesh and
// new is nil for a deleted one. It compares hashes only, and skips a whole
// part (dataplanes, services, a policy type) whose set hash is unchanged.
func Diff(old, new *Snapshot) Delta {
	var d Delta
	switch {
	case old == nil && new == nil:
		return d
	case old == nil:
		d.Created = true
		old = &Snapshot{}
	case new == nil:
		d.Deleted = true
		new = &Snapshot{}
	}
	d.MeshChanged = old.meshHash != new.meshHash
	d.CAChanged = old.caHash != new.caHash
	if old.servicesHash != new.servicesHash {
		for _, n := range unionKeys(old.services, new.services) {
			o, n2 := old.services[n], new.services[n]
			switch {
			case o == nil:
				d.ServicesAdded = append(d.ServicesAdded, n)
			case n2 == nil:
				d.ServicesRemoved = append(d.ServicesRemoved, n)
			case o.Hash == n2.Hash:
				continue
			}
			d.Services = append(d.Services, n)
		}
	}
	if old.dpHash != new.dpHash || len(old.dataplanes) != len(new.dataplanes) {
		for _, n := range unionKeys(old.dataplanes, new.dataplanes) {
			o, n2 := old.dataplanes[n], new.dataplanes[n]
			if o == nil || n2 == nil || o.Hash != n2.Hash {
				d.Dataplanes = append(d.Dataplanes, n)
			}
		}
	}
	for _, typ := range unionKeys(old.policies, new.policies) {
		o, n2 := old.policies[typ], new.policies[typ]
		if o != nil && n2 != nil && o.Hash == n2.Hash {
			continue
		}
		var ob, nb map[string]policyEntry
		if o != nil {
			ob = o.byName
		}
		if n2 != nil {
			nb = n2.byName
		}
		var names []string
		for _, n := range unionKeys(ob, nb) {
			if ob[n].hash != nb[n].hash {
				names = append(names, n)
			}
		}
		if len(names) > 0 {
			if d.Policies == nil {
				d.Policies = map[string][]string{}
			}
			d.Policies[typ] = names
		}
	}
	return d
}

// unionKeys returns the keys of a and b, sorted, without duplicates.
func unionKeys[V any](a, b map[string]V) []string {
	keys := make([]string, 0, max(len(a), len(b)))
	keys = slices.AppendSeq(keys, maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}
