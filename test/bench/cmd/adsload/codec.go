package main

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// The load generator never unmarshals the xDS resources it receives: it
// runs on the same machine as the control plane, and decoding thousands
// of clusters per response would take CPU from the process being
// measured. wireCodec marshals requests with the real protobuf types and
// reads responses with protowire, keeping only what a proxy's bookkeeping
// needs: version, nonce, type, the names of the resources (and, for a
// SotW proxy that behaves like Envoy, the EDS and RDS names they refer
// to) and a hash of each watched resource's bytes.

// Field numbers of the messages read here (envoy/service/discovery/v3,
// envoy/config/{cluster,listener}/v3, http_connection_manager/v3,
// google.protobuf.Any). codec_test.go checks them against the generated
// descriptors.
const (
	fieldSotwVersion   = 1 // DiscoveryResponse.version_info
	fieldSotwResources = 2 // DiscoveryResponse.resources (Any)
	fieldSotwTypeURL   = 4 // DiscoveryResponse.type_url
	fieldSotwNonce     = 5 // DiscoveryResponse.nonce

	fieldDeltaVersion   = 1 // DeltaDiscoveryResponse.system_version_info
	fieldDeltaResources = 2 // DeltaDiscoveryResponse.resources (Resource)
	fieldDeltaTypeURL   = 4 // DeltaDiscoveryResponse.type_url
	fieldDeltaNonce     = 5 // DeltaDiscoveryResponse.nonce
	fieldDeltaRemoved   = 6 // DeltaDiscoveryResponse.removed_resources

	fieldResourceVersion = 1 // Resource.version
	fieldResourceBody    = 2 // Resource.resource (Any)
	fieldResourceName    = 3 // Resource.name

	fieldAnyTypeURL = 1 // Any.type_url
	fieldAnyValue   = 2 // Any.value

	fieldName = 1 // Cluster.name, Listener.name, RouteConfiguration.name, Secret.name, ClusterLoadAssignment.cluster_name

	fieldClusterType      = 2 // Cluster.type
	fieldClusterEDSConfig = 3 // Cluster.eds_cluster_config
	fieldEDSServiceName   = 2 // EdsClusterConfig.service_name
	clusterTypeEDS        = 3 // Cluster.DiscoveryType EDS

	fieldListenerChains       = 3  // Listener.filter_chains
	fieldListenerAPIListener  = 19 // Listener.api_listener
	fieldListenerDefaultChain = 25 // Listener.default_filter_chain
	fieldChainFilters         = 3  // FilterChain.filters
	fieldFilterTypedConfig    = 4  // Filter.typed_config (Any)
	fieldAPIListener          = 1  // ApiListener.api_listener (Any)
	fieldHCMRds               = 3  // HttpConnectionManager.rds
	fieldRdsRouteConfigName   = 2  // Rds.route_config_name
)

// hcmType is the type URL of the HTTP connection manager.
const hcmType = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"

// wireCodec is a gRPC codec: requests are proto messages, responses are
// *sotwResponse or *deltaResponse, decoded without unmarshalling resources.
type wireCodec struct{}

var _ encoding.CodecV2 = wireCodec{}

// Name is the codec's content subtype.
func (wireCodec) Name() string { return "proto" }

// Marshal encodes a request.
func (wireCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("adsload codec: cannot marshal %T", v)
	}
	b, err := proto.Marshal(m)
	if err != nil {
		return nil, err
	}
	return mem.BufferSlice{mem.SliceBuffer(b)}, nil
}

// Unmarshal decodes a response.
func (wireCodec) Unmarshal(data mem.BufferSlice, v any) error {
	var b []byte
	if len(data) == 1 {
		b = data[0].ReadOnlyData()
	} else {
		b = data.Materialize()
	}
	d, ok := v.(interface{ decode([]byte) error })
	if !ok {
		return fmt.Errorf("adsload codec: cannot unmarshal into %T", v)
	}
	return d.decode(b)
}

// decodeOptions say what to extract besides names.
type decodeOptions struct {
	// watched names, per type, the resources whose content hash is kept.
	watched [numTypes]map[string]bool
	// refs extracts the EDS names of clusters and the RDS names of
	// listeners (a SotW proxy subscribes to them by name).
	refs bool
}

// resourceInfo is what is kept of one resource.
type resourceInfo struct {
	name string
	// hash of the resource bytes; only for watched resources.
	hash uint64
}

// sotwResponse is a DiscoveryResponse as the generator sees it.
type sotwResponse struct {
	opts      decodeOptions
	version   string
	typeURL   string
	nonce     string
	count     int
	watched   []resourceInfo
	refs      []string // EDS or RDS names the resources refer to
	sizeBytes int
}

// deltaResponse is a DeltaDiscoveryResponse as the generator sees it.
type deltaResponse struct {
	opts      decodeOptions
	version   string
	typeURL   string
	nonce     string
	count     int
	removed   int
	watched   []resourceInfo
	sizeBytes int
}

var errMalformed = errors.New("malformed protobuf")

// fields calls fn with every field of a message.
func fields(b []byte, fn func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

// bytesField returns the last value of a bytes field (nil when absent).
func bytesField(b []byte, want protowire.Number) []byte {
	var out []byte
	_ = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == want && typ == protowire.BytesType {
			out = v
		}
		return nil
	})
	return out
}

// anyParts splits an Any into its type URL and value.
func anyParts(b []byte) (string, []byte) {
	var typeURL string
	var value []byte
	_ = fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case typ != protowire.BytesType:
		case num == fieldAnyTypeURL:
			typeURL = string(v)
		case num == fieldAnyValue:
			value = v
		}
		return nil
	})
	return typeURL, value
}

func hashBytes(b []byte) uint64 {
	h := fnv.New64a()
	_, _ = h.Write(b)
	return h.Sum64()
}

func (r *sotwResponse) decode(b []byte) error {
	opts := r.opts
	*r = sotwResponse{opts: opts, sizeBytes: len(b)}
	var resources [][]byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldSotwVersion:
			r.version = string(v)
		case fieldSotwTypeURL:
			r.typeURL = string(v)
		case fieldSotwNonce:
			r.nonce = string(v)
		case fieldSotwResources:
			resources = append(resources, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.count = len(resources)
	watched := opts.watchedOf(r.typeURL)
	for _, a := range resources {
		_, value := anyParts(a)
		name := string(bytesField(value, fieldName))
		if watched[name] {
			r.watched = append(r.watched, resourceInfo{name: name, hash: hashBytes(value)})
		}
		if opts.refs {
			r.refs = appendRefs(r.refs, r.typeURL, name, value)
		}
	}
	return nil
}

func (r *deltaResponse) decode(b []byte) error {
	opts := r.opts
	*r = deltaResponse{opts: opts, sizeBytes: len(b)}
	var resources [][]byte
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if typ != protowire.BytesType {
			return nil
		}
		switch num {
		case fieldDeltaVersion:
			r.version = string(v)
		case fieldDeltaTypeURL:
			r.typeURL = string(v)
		case fieldDeltaNonce:
			r.nonce = string(v)
		case fieldDeltaRemoved:
			r.removed++
		case fieldDeltaResources:
			resources = append(resources, v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	r.count = len(resources)
	watched := opts.watchedOf(r.typeURL)
	if len(watched) == 0 {
		return nil
	}
	for _, res := range resources {
		var name string
		var body []byte
		if err := fields(res, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			switch {
			case typ != protowire.BytesType:
			case num == fieldResourceName:
				name = string(v)
			case num == fieldResourceBody:
				body = v
			}
			return nil
		}); err != nil {
			return err
		}
		if watched[name] {
			_, value := anyParts(body)
			r.watched = append(r.watched, resourceInfo{name: name, hash: hashBytes(value)})
		}
	}
	return nil
}

// watchedOf returns the watched names of a type URL.
func (o decodeOptions) watchedOf(typeURL string) map[string]bool {
	if t := typeOfURL(typeURL); t >= 0 {
		return o.watched[t]
	}
	return nil
}

// appendRefs adds the names a resource makes an Envoy proxy subscribe to:
// the EDS name of an EDS cluster, the route configurations of a
// listener's HTTP connection managers.
func appendRefs(refs []string, typeURL, name string, value []byte) []string {
	switch {
	case strings.HasSuffix(typeURL, ".Cluster"):
		eds := false
		service := ""
		_ = fields(value, func(num protowire.Number, typ protowire.Type, v []byte, x uint64) error {
			switch {
			case num == fieldClusterType && typ == protowire.VarintType:
				eds = x == clusterTypeEDS
			case num == fieldClusterEDSConfig && typ == protowire.BytesType:
				service = string(bytesField(v, fieldEDSServiceName))
			}
			return nil
		})
		if eds {
			if service == "" {
				service = name
			}
			refs = append(refs, service)
		}
	case strings.HasSuffix(typeURL, ".Listener"):
		_ = fields(value, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
			if typ != protowire.BytesType {
				return nil
			}
			switch num {
			case fieldListenerChains, fieldListenerDefaultChain:
				refs = chainRefs(refs, v)
			case fieldListenerAPIListener:
				refs = hcmRefs(refs, bytesField(v, fieldAPIListener))
			}
			return nil
		})
	}
	return refs
}

// chainRefs adds the RDS names of a filter chain's HTTP connection managers.
func chainRefs(refs []string, chain []byte) []string {
	_ = fields(chain, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num == fieldChainFilters && typ == protowire.BytesType {
			refs = hcmRefs(refs, bytesField(v, fieldFilterTypedConfig))
		}
		return nil
	})
	return refs
}

// hcmRefs adds the RDS name of an Any holding an HTTP connection manager.
func hcmRefs(refs []string, anyMsg []byte) []string {
	if anyMsg == nil {
		return refs
	}
	typeURL, value := anyParts(anyMsg)
	if typeURL != hcmType {
		return refs
	}
	if rds := bytesField(value, fieldHCMRds); rds != nil {
		if name := bytesField(rds, fieldRdsRouteConfigName); len(name) > 0 {
			refs = append(refs, string(name))
		}
	}
	return refs
}
