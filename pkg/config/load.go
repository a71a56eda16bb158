package config

import (
	"encoding"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"sigs.k8s.io/yaml"

	"github.com/atoll-mesh/atoll/api/decode"
	"github.com/atoll-mesh/atoll/api/validate"
)

// EnvPrefix starts the name of every environment variable read by Load.
const EnvPrefix = "ATOLL_"

// Load returns the configuration made of the defaults, then the YAML file at
// path (skipped when path is empty), then the ATOLL_* variables of environ
// (entries in os.Environ's "KEY=value" form). It does not validate the result:
// call Config.Validate once command-line flags are applied too.
//
// Load also returns, sorted, the names of ATOLL_* variables that match no key,
// so that the caller can warn about likely typos.
func Load(path string, environ []string) (Config, []string, error) {
	cfg := Default()
	if path != "" {
		if err := LoadFile(&cfg, path); err != nil {
			return Config{}, nil, err
		}
	}
	unknown, err := ApplyEnv(&cfg, environ)
	if err != nil {
		return Config{}, nil, fmt.Errorf("invalid environment variables: %w", err)
	}
	return cfg, unknown, nil
}

// LoadFile reads the YAML file at path into cfg, keeping the values of keys
// the file does not set. See DecodeYAML.
func LoadFile(cfg *Config, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading config file: %w", err)
	}
	if err := DecodeYAML(cfg, data); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	return nil
}

// DecodeYAML reads the YAML document data into cfg, keeping the values of
// keys the document does not set; a list in the document replaces the list in
// cfg. Unknown keys, duplicate keys and values of the wrong kind are all
// reported at once, as validate.Errors naming each key path.
func DecodeYAML(cfg *Config, data []byte) error {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return fmt.Errorf("malformed YAML: %w", err)
	}
	return decode.Strict(js, cfg, validate.Root)
}

// EnvVar is one environment variable Load reads.
type EnvVar struct {
	// Name of the variable, for example "ATOLL_API_SERVER_HTTP_PORT".
	Name string
	// Path of the key it sets, for example "apiServer.http.port".
	Path string
	// Default is the key's default value as the variable would spell it.
	Default string
}

// EnvVars returns every environment variable Load reads, sorted by name.
// Documentation generators use it to list them.
func EnvVars() []EnvVar {
	def := reflect.ValueOf(Default())
	keys := keysOf(def.Type())
	out := make([]EnvVar, 0, len(keys))
	for _, k := range keys {
		out = append(out, EnvVar{Name: k.env, Path: k.path, Default: envText(def.FieldByIndex(k.index))})
	}
	slices.SortFunc(out, func(a, b EnvVar) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// EnvName returns the environment variable for the key path p, for example
// "ATOLL_STORE_POSTGRES_DB_NAME" for "store.postgres.dbName". It does not
// check that p is a key.
func EnvName(p string) string {
	parts := strings.Split(p, ".")
	for i, part := range parts {
		parts[i] = upperSnake(part)
	}
	return EnvPrefix + strings.Join(parts, "_")
}

// upperSnake converts a camelCase name to UPPER_SNAKE_CASE: "dbName" becomes
// "DB_NAME", "tlsCertFile" "TLS_CERT_FILE" and "HTTPPort" "HTTP_PORT".
func upperSnake(s string) string {
	runes := []rune(s)
	var b strings.Builder
	for i, r := range runes {
		if i > 0 && unicode.IsUpper(r) {
			prev := runes[i-1]
			nextLower := i+1 < len(runes) && unicode.IsLower(runes[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('_')
			}
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// ApplyEnv sets the keys named by the ATOLL_* variables of environ (entries in
// "KEY=value" form) on cfg. Malformed values are all reported at once, as
// validate.Errors whose Field is the variable name; cfg is then left
// unchanged. The sorted names of ATOLL_* variables that match no key are
// returned.
func ApplyEnv(cfg *Config, environ []string) ([]string, error) {
	byName := map[string]key{}
	for _, k := range keysOf(reflect.TypeFor[Config]()) {
		byName[k.env] = k
	}
	next := *cfg // leaves are replaced, never mutated in place, so a shallow copy is enough
	target := reflect.ValueOf(&next).Elem()
	var unknown []string
	var errs validate.Errors
	for _, entry := range environ {
		name, value, ok := strings.Cut(entry, "=")
		if !ok || !strings.HasPrefix(name, EnvPrefix) {
			continue
		}
		k, known := byName[name]
		if !known {
			unknown = append(unknown, name)
			continue
		}
		if err := setFromText(target.FieldByIndex(k.index), value); err != nil {
			errs.Add(validate.Path(name), "%v (sets %s)", err, k.path)
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	*cfg = next
	slices.Sort(unknown)
	return slices.Compact(unknown), nil
}

// key is one leaf of the configuration tree.
type key struct {
	path  string // "apiServer.http.port"
	env   string // "ATOLL_API_SERVER_HTTP_PORT"
	index []int  // reflect field index from Config
}

var textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()

// keysOf lists the leaves of the struct type t in field order. A leaf is a
// field that is not a struct, or a struct that decodes itself from text.
func keysOf(t reflect.Type) []key {
	var out []key
	var walk func(t reflect.Type, path string, index []int)
	walk = func(t reflect.Type, path string, index []int) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if !f.IsExported() || name == "-" || name == "" {
				continue
			}
			p := name
			if path != "" {
				p = path + "." + name
			}
			idx := append(slices.Clone(index), i)
			if f.Type.Kind() == reflect.Struct && !reflect.PointerTo(f.Type).Implements(textUnmarshaler) {
				walk(f.Type, p, idx)
				continue
			}
			out = append(out, key{path: p, env: EnvName(p), index: idx})
		}
	}
	walk(t, "", nil)
	return out
}

// setFromText parses text into the leaf v.
func setFromText(v reflect.Value, text string) error {
	if u, ok := v.Addr().Interface().(encoding.TextUnmarshaler); ok {
		return u.UnmarshalText([]byte(text))
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(text)
	case reflect.Bool:
		b, err := strconv.ParseBool(strings.TrimSpace(text))
		if err != nil {
			return fmt.Errorf("must be true or false, got %q", text)
		}
		v.SetBool(b)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, v.Type().Bits())
		if err != nil {
			return fmt.Errorf("must be an integer, got %q", text)
		}
		v.SetInt(n)
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("cannot be set from the environment (list of %s)", v.Type().Elem())
		}
		items := []string{}
		for item := range strings.SplitSeq(text, ",") {
			if item = strings.TrimSpace(item); item != "" {
				items = append(items, item)
			}
		}
		v.Set(reflect.ValueOf(items).Convert(v.Type()))
	default:
		return fmt.Errorf("cannot be set from the environment (%s)", v.Type())
	}
	return nil
}

// envText spells the leaf v as an environment variable value.
func envText(v reflect.Value) string {
	if m, ok := v.Interface().(encoding.TextMarshaler); ok {
		text, err := m.MarshalText()
		if err != nil {
			return ""
		}
		return string(text)
	}
	switch v.Kind() {
	case reflect.Slice:
		items := make([]string, v.Len())
		for i := range v.Len() {
			items[i] = fmt.Sprint(v.Index(i).Interface())
		}
		return strings.Join(items, ",")
	default:
		return fmt.Sprint(v.Interface())
	}
}
