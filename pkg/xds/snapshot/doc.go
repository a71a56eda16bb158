// Package snapshot is hop 2 of the xDS pipeline: an immutable, hashed view
// of one mesh (Snapshot), the Builder that derives snapshots incrementally,
// and Diff. Package track keeps one snapshot per mesh current from store
// events; FromResources builds one offline (tests, dry runs).
//
// # What a snapshot holds
//
// The Mesh resource; its Dataplanes; its services; its policies per type
// (every mesh-scoped policy type of the registry); and a hash of the mesh's
// CA material (the mTLS section and the Secrets its backends live in), so
// that consumers see when certificates must be issued again. Services are
// both explicit and implicit (see Service): every MeshService resource is a
// service with the ports and backing dataplanes its spec selects, and every
// kuma.io/service value of an inbound that is not Ignored is an implicit
// service unless a MeshService of that name exists (the mesh's
// meshServices.mode Exclusive keeps explicit services only, Disabled implicit
// ones only). Only Ready inbounds are endpoints. VIPs come from the
// MeshService status or are derived from the names, stable across restarts
// and control-plane instances.
//
// # Hashes
//
// Every dataplane, policy and service has a content hash (store versions
// and times are left out, so rewriting the same content changes nothing);
// each part of the snapshot has a set hash and the snapshot a hash of them
// all. Diff compares two snapshots by those hashes and names what changed
// (services, dataplanes, policies per type, mesh, CA), which is what lets the
// reconciler regenerate only the proxies a change touches.
//
// # Incremental updates and batching
//
// The tracker (package track) lists every mesh once, then applies store
// events in batches.
// A batch re-reads only the resources its events name, derives again only
// the services those resources touch (a dataplane's services, the
// MeshServices selecting it), and copies the snapshot's maps only when they
// change; unchanged Service values are shared between successive snapshots.
// A Resync event (events were lost) or the slow periodic relist reads
// everything again and publishes only meshes whose hash changed.
//
// A batch ends when no event arrived for track.Options.Quiet (default 10 ms)
// or when its first event has waited track.Options.MaxDelay (default 100 ms). Measured
// with BenchmarkSnapshotBatching (test/bench) on a 2-core EPYC: one write
// shows up in a snapshot after ~10.6 ms; a burst of 100 writes made back to
// back becomes 1 snapshot, and 100 writes spaced by 1 ms (a bulk apply over
// REST) become 2. A 1 ms window answers in ~1.3 ms but turns the spaced burst
// into ~64 snapshots, 5 ms into 3; 25 ms adds latency without coalescing
// more. The window is small against the 500 ms end-to-end target of DESIGN
// §12 and keeps a bulk apply from regenerating proxies dozens of times.
package snapshot
