package ads

import (
	"fmt"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/atoll-mesh/atoll/pkg/xds/cache"
)

// codec is gRPC's proto codec, except that a *response is sent as the
// buffers it holds: a header of its own and the resource encodings the
// cache shares between every stream. Nothing is marshalled per response.
type codec struct{ proto encoding.CodecV2 }

var _ encoding.CodecV2 = codec{}

func newCodec() codec { return codec{proto: encoding.GetCodecV2(proto.Name)} }

// Name is the content subtype: the codec reads and writes protobuf.
func (c codec) Name() string { return proto.Name }

// Marshal encodes v.
func (c codec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*response); ok {
		return r.bufs, nil
	}
	if c.proto == nil {
		return nil, fmt.Errorf("ads codec: no proto codec to marshal %T", v)
	}
	return c.proto.Marshal(v)
}

// Unmarshal decodes a request.
func (c codec) Unmarshal(data mem.BufferSlice, v any) error {
	if c.proto == nil {
		return fmt.Errorf("ads codec: no proto codec to unmarshal %T", v)
	}
	return c.proto.Unmarshal(data, v)
}

// response is an encoded DiscoveryResponse or DeltaDiscoveryResponse. The
// fields of a protobuf message may come in any order, so the header (the
// version, type URL, nonce and removed names) comes first and the shared
// encodings of the resources follow.
type response struct {
	bufs mem.BufferSlice
}

// Field numbers of envoy.service.discovery.v3's responses.
const (
	fieldVersion = 1 // DiscoveryResponse.version_info, DeltaDiscoveryResponse.system_version_info
	fieldTypeURL = 4 // type_url of both
	fieldNonce   = 5 // nonce of both
	fieldRemoved = 6 // DeltaDiscoveryResponse.removed_resources
)

// gRPC's writer gathers the buffers of each HTTP/2 frame (16 KiB) into a
// slice it keeps only up to 64 entries long, and allocates one per frame
// beyond. So small encodings are copied into pooled chunks, and only large
// ones are sent from the cache's own buffers.
const (
	// fewFields are sent as buffers of their own, whatever their size.
	fewFields = 16
	// largeField is the size from which a field is never copied.
	largeField = 2 << 10
	// chunkSize is the size of the chunks small fields are copied into.
	chunkSize = 16 << 10
)

// newResponse encodes a response: its header, then the resources'
// encodings (as delta or SotW fields). removed only exists in delta
// responses.
func newResponse(version, typeURL, nonce string, removed []string, entries []*cache.Entry, delta bool) *response {
	hdr := header(version, typeURL, nonce, removed)
	if len(entries) <= fewFields {
		bufs := make(mem.BufferSlice, 0, 1+len(entries))
		bufs = append(bufs, mem.SliceBuffer(hdr))
		for _, e := range entries {
			bufs = append(bufs, e.Buffer(delta))
		}
		return &response{bufs: bufs}
	}
	pool := mem.DefaultBufferPool()
	bufs := mem.BufferSlice{mem.SliceBuffer(hdr)}
	var chunk *[]byte
	flush := func() {
		if chunk != nil {
			bufs = append(bufs, mem.NewBuffer(chunk, pool))
			chunk = nil
		}
	}
	for _, e := range entries {
		f := e.Field(delta)
		if len(f) >= largeField {
			flush()
			bufs = append(bufs, e.Buffer(delta))
			continue
		}
		if chunk != nil && len(*chunk)+len(f) > cap(*chunk) {
			flush()
		}
		if chunk == nil {
			chunk = pool.Get(chunkSize)
			*chunk = (*chunk)[:0]
		}
		*chunk = append(*chunk, f...)
	}
	flush()
	return &response{bufs: bufs}
}

func header(version, typeURL, nonce string, removed []string) []byte {
	n := 3 + protowire.SizeBytes(len(version)) + protowire.SizeBytes(len(typeURL)) + protowire.SizeBytes(len(nonce))
	for _, r := range removed {
		n += 1 + protowire.SizeBytes(len(r))
	}
	b := make([]byte, 0, n)
	b = protowire.AppendTag(b, fieldVersion, protowire.BytesType)
	b = protowire.AppendString(b, version)
	b = protowire.AppendTag(b, fieldTypeURL, protowire.BytesType)
	b = protowire.AppendString(b, typeURL)
	b = protowire.AppendTag(b, fieldNonce, protowire.BytesType)
	b = protowire.AppendString(b, nonce)
	for _, r := range removed {
		b = protowire.AppendTag(b, fieldRemoved, protowire.BytesType)
		b = protowire.AppendString(b, r)
	}
	return b
}
