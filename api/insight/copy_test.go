package insight

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// fill sets every field reachable from v to a value that is not zero and
// depends on seed: nil pointers get targets, nil slices and maps two
// elements; existing ones are written through, so that memory a copy
// shares with its original shows. A field DeepCopy forgets shows up as a
// difference.
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		fill(v.Elem(), seed)
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Date(2026, 1, 1, 0, 0, seed, 0, time.UTC)))
			return
		}
		for i := range v.NumField() {
			fill(v.Field(i), seed+i+1)
		}
	case reflect.Slice:
		if v.IsNil() {
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		}
		for i := range v.Len() {
			fill(v.Index(i), seed+i)
		}
	case reflect.Map:
		if v.IsNil() {
			v.Set(reflect.MakeMap(v.Type()))
			for i := range 2 {
				k := reflect.New(v.Type().Key()).Elem()
				fill(k, seed+i)
				v.SetMapIndex(k, reflect.New(v.Type().Elem()).Elem())
			}
		}
		for i, k := range v.MapKeys() {
			e := reflect.New(v.Type().Elem()).Elem()
			fill(e, seed+i+10)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		v.SetString("s" + time.Duration(seed).String())
	case reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed + 1))
	default:
		panic("fill: unhandled kind " + v.Kind().String())
	}
}

func TestDeepCopyCopiesEveryFieldAndSharesNothing(t *testing.T) {
	orig := &DataplaneInsight{}
	fill(reflect.ValueOf(orig).Elem(), 1)
	before, err := json.Marshal(orig)
	require.NoError(t, err)

	cp := orig.DeepCopy()
	require.Equal(t, orig, cp, "every field is copied")
	var viaJSON DataplaneInsight
	require.NoError(t, json.Unmarshal(before, &viaJSON))
	require.Equal(t, &viaJSON, cp, "the same as a JSON round trip")

	fill(reflect.ValueOf(cp).Elem(), 100) // overwrites every field, through every pointer
	after, err := json.Marshal(orig)
	require.NoError(t, err)
	require.JSONEq(t, string(before), string(after), "changing the copy leaves the original alone")
	require.Nil(t, (*DataplaneInsight)(nil).DeepCopy())
}
